//! The update journal: every step of an update, written before it is acted
//! on, each write fenced by the lock's token.
//!
//! A restarted updater (typically the updater of the *new* task, after ECS
//! stopped the old task it ran in) finds the unfinished entry and finishes
//! the monitoring or the rollback it describes instead of starting again.
//!
//! Every [`Journal::write`] is conditional on the lock: it lands only if the
//! lock record of the entry's key is held by the writer with the writer's
//! fencing token, checked atomically with the write (memory: under the lock
//! store's mutex; file: under the lock file's OS lock; DynamoDB: a
//! `TransactWriteItems` with a `ConditionCheck` on the lock item). A holder
//! whose token was superseded gets [`Error::Fenced`](crate::Error::Fenced)
//! and stops before its next ECS call: the journal is the fence.

mod file;
mod memory;

pub use file::FileJournal;
pub use memory::MemoryJournal;

use std::{fmt::Debug, sync::Arc};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use runner_version::Release;
use serde::{Deserialize, Serialize};
use update_lock::{FencingToken, LockRecord};

use crate::{Error, Result};

/// Who may write: the lock key, the owner and its fencing token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fence {
    /// The lock key (also the journal key).
    pub key: String,
    /// The lock owner.
    pub owner: String,
    /// The owner's fencing token.
    pub token: FencingToken,
}

impl Fence {
    /// Whether `record` (the lock's stored record) is held by this fence's
    /// owner with this fence's token; otherwise the [`Error::Fenced`] to
    /// answer.
    pub fn admits(&self, record: Option<&LockRecord>) -> Result<()> {
        match record {
            Some(r)
                if r.holder.as_deref() == Some(self.owner.as_str()) && r.token == self.token =>
            {
                Ok(())
            }
            other => Err(Error::Fenced {
                key: self.key.clone(),
                owner: self.owner.clone(),
                token: self.token,
                current: match other {
                    None => "absent".into(),
                    Some(r) => match &r.holder {
                        Some(h) => format!("held by {h:?} with token {}", r.token),
                        None => format!("free (last token {})", r.token),
                    },
                },
            }),
        }
    }
}

/// One step of an update, in the order they happen. Each is journalled
/// before the action it announces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
#[non_exhaustive]
pub enum JournalStep {
    /// The lock is held and the release chosen; nothing touched yet.
    Locked,
    /// About to register the clone of `target`'s task definition.
    Registering {
        /// Index into [`JournalEntry::targets`].
        target: usize,
    },
    /// The clone is registered; about to update the service to it.
    Registered {
        /// Index into [`JournalEntry::targets`].
        target: usize,
        /// The registered revision.
        task_definition_arn: String,
    },
    /// `UpdateService` returned our deployment; about to monitor it.
    ServiceUpdated {
        /// Index into [`JournalEntry::targets`].
        target: usize,
        /// ECS's id of our deployment.
        deployment_id: String,
    },
    /// A resumed updater took up the monitoring of the deployment.
    Monitoring {
        /// Index into [`JournalEntry::targets`].
        target: usize,
        /// ECS's id of our deployment.
        deployment_id: String,
    },
    /// Every target succeeded; about to record the success.
    Succeeded,
    /// A target failed; about to roll back `target` (ours or an earlier,
    /// already updated target).
    RollingBack {
        /// Index into [`JournalEntry::targets`].
        target: usize,
        /// Why.
        reason: String,
    },
    /// The release failed; about to quarantine it.
    Quarantined {
        /// Why it failed.
        reason: String,
    },
    /// The update is over; `outcome` is the cycle outcome's code.
    Done {
        /// The outcome code (`succeeded`, `rolled_back`, ...).
        outcome: String,
    },
}

impl JournalStep {
    /// The step's name (`locked`, `registered`, ...), for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Locked => "locked",
            Self::Registering { .. } => "registering",
            Self::Registered { .. } => "registered",
            Self::ServiceUpdated { .. } => "service_updated",
            Self::Monitoring { .. } => "monitoring",
            Self::Succeeded => "succeeded",
            Self::RollingBack { .. } => "rolling_back",
            Self::Quarantined { .. } => "quarantined",
            Self::Done { .. } => "done",
        }
    }
}

/// What the journal knows about one target of the update.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetProgress {
    /// The target's name.
    pub name: String,
    /// The task definition the service ran before (the rollback target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_task_definition_arn: Option<String>,
    /// The registered clone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_definition_arn: Option<String>,
    /// Our deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
    /// The PRIMARY deployment just before our `UpdateService` (it ran the
    /// previous task definition): a resume that finds another deployment
    /// of it PRIMARY knows someone redeployed since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_deployment_id: Option<String>,
    /// The rollout outcome's kind once known (`succeeded`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// Set once this (already updated) target was rolled back because a
    /// later target failed.
    #[serde(default)]
    pub reverted: bool,
}

/// The journal of one update (one lock key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// The lock key.
    pub key: String,
    /// A unique id of the update.
    pub update_id: String,
    /// The release being deployed.
    pub release: Release,
    /// Every target, in deployment order.
    pub targets: Vec<TargetProgress>,
    /// The last step written.
    pub step: JournalStep,
    /// The writer of the last step.
    pub owner: String,
    /// The writer's fencing token.
    pub token: FencingToken,
    /// When the update started.
    pub started_at: DateTime<Utc>,
    /// When the last step was written.
    pub written_at: DateTime<Utc>,
    /// Every step written so far, by name, in order.
    #[serde(default)]
    pub history: Vec<String>,
}

impl JournalEntry {
    /// Whether the update is over ([`JournalStep::Done`]).
    pub fn is_finished(&self) -> bool {
        matches!(self.step, JournalStep::Done { .. })
    }
}

/// A store of journal entries, one per lock key, whose writes are fenced by
/// the lock.
///
/// Contract: [`load`](Journal::load) is strongly consistent;
/// [`write`](Journal::write) replaces the entry of `fence.key` only if the
/// lock record of that key is, at the moment of the write, held by
/// `fence.owner` with `fence.token`, and answers [`Error::Fenced`] otherwise
/// without writing. The journal must live where the lock lives (the same
/// store), or the check cannot be atomic.
#[async_trait]
pub trait Journal: Send + Sync + Debug + 'static {
    /// A short backend name (`memory`, `file`, `dynamodb`).
    fn backend_name(&self) -> &'static str;

    /// The entry of `key`, if any.
    async fn load(&self, key: &str) -> Result<Option<JournalEntry>>;

    /// Writes `entry` under `fence` (see the trait's contract).
    async fn write(&self, entry: &JournalEntry, fence: &Fence) -> Result<()>;
}

macro_rules! forward_journal {
    ($ty:ty) => {
        #[async_trait]
        impl<T: Journal + ?Sized> Journal for $ty {
            fn backend_name(&self) -> &'static str {
                (**self).backend_name()
            }
            async fn load(&self, key: &str) -> Result<Option<JournalEntry>> {
                (**self).load(key).await
            }
            async fn write(&self, entry: &JournalEntry, fence: &Fence) -> Result<()> {
                (**self).write(entry, fence).await
            }
        }
    };
}
forward_journal!(Arc<T>);
forward_journal!(Box<T>);

/// Encodes a key as a file name: `[A-Za-z0-9_-]` kept, other bytes `%XX`.
pub(crate) fn file_name(key: &str, suffix: &str) -> String {
    let mut out = String::with_capacity(key.len() + suffix.len());
    for byte in key.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out.push_str(suffix);
    out
}

#[cfg(test)]
mod tests {
    use super::file_name;

    #[test]
    fn a_key_becomes_one_file_name_with_only_safe_bytes_kept() {
        // `/` and `.` would reach other directories or files.
        assert_eq!(
            file_name("runners/a-b_C9", ".journal.json"),
            "runners%2Fa-b_C9.journal.json"
        );
        assert_eq!(file_name("../x y", ".lock"), "%2E%2E%2Fx%20y.lock");
        assert_ne!(file_name("a-b", ""), file_name("a_b", ""));
    }
}
