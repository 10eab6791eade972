//! What one cycle did: the typed [`CycleReport`].

use chrono::{DateTime, Utc};
use ecs_rollout::RolloutOutcome;
use serde::Serialize;
use update_policy::Decision;

/// How a cycle ended. `code()` is stable (metric label, exit code mapping,
/// JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[non_exhaustive]
pub enum CycleOutcome {
    /// The decision was to skip; nothing was touched.
    Skipped,
    /// The release needs another infrastructure version: an operator must
    /// apply the stack template first. Never applied automatically.
    Blocked {
        /// The infrastructure version the release needs.
        required: String,
        /// The infrastructure version running.
        running: String,
        /// The template to apply.
        template_url: String,
    },
    /// Another updater holds the lock; nothing was touched.
    LockBusy {
        /// The holder.
        holder: String,
    },
    /// Every target runs the release.
    Succeeded,
    /// The release failed and every target is back on its previous task
    /// definition; the release is quarantined.
    RolledBack {
        /// Why.
        reason: String,
    },
    /// The release failed and at least one rollback did not complete: a
    /// person must look. The release is quarantined.
    RollbackFailed {
        /// Why.
        reason: String,
    },
    /// The release was deployed but could not be verified (a service with
    /// a desired count of 0 runs no task to judge): neither a success (the
    /// highest successful version is not raised) nor a failure (not
    /// quarantined). Later targets were not updated.
    DeployedUnverified {
        /// Why.
        reason: String,
    },
    /// Someone else deployed meanwhile; we stepped back (not quarantined).
    Superseded {
        /// What happened.
        reason: String,
    },
    /// The cycle stopped without a verdict (ECS unreachable, lease lost,
    /// stale token refused by the journal); the journal says where it
    /// stood and the next cycle resumes it.
    Interrupted {
        /// Why.
        reason: String,
    },
}

impl CycleOutcome {
    /// A stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Skipped => "skipped",
            Self::Blocked { .. } => "blocked",
            Self::LockBusy { .. } => "lock_busy",
            Self::Succeeded => "succeeded",
            Self::RolledBack { .. } => "rolled_back",
            Self::RollbackFailed { .. } => "rollback_failed",
            Self::DeployedUnverified { .. } => "deployed_unverified",
            Self::Superseded { .. } => "superseded",
            Self::Interrupted { .. } => "interrupted",
        }
    }

    /// Whether an update was attempted and ended in a failure of the
    /// release (rolled back or rollback failed).
    pub fn is_release_failure(&self) -> bool {
        matches!(self, Self::RolledBack { .. } | Self::RollbackFailed { .. })
    }
}

/// What happened to one target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetReport {
    /// The target's name.
    pub name: String,
    /// Its cluster.
    pub cluster: String,
    /// Its service.
    pub service: String,
    /// The rollout outcome (absent when the target was not reached).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<RolloutOutcome>,
    /// The outcome kind (`succeeded`, `rolled_back_by_ecs`, ...,
    /// `not_reached`).
    pub outcome_kind: String,
    /// One sentence.
    pub summary: String,
    /// Set when the target succeeded and was later rolled back because a
    /// later target failed; with whether that rollback completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reverted: Option<bool>,
    /// Warnings of the rollout.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// The result of one [`Updater::run_once`](crate::Updater::run_once).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CycleReport {
    /// The runner (lock key).
    pub runner: String,
    /// When the cycle started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: DateTime<Utc>,
    /// The version running at the start (the first target's), if read.
    pub current_version: Option<String>,
    /// The release offered, if the source answered.
    pub release_version: Option<String>,
    /// The decision, with every reason (absent when resuming a journalled
    /// update, which needs no new decision).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    /// Whether this cycle resumed an unfinished update from the journal.
    pub resumed: bool,
    /// How it ended.
    pub outcome: CycleOutcome,
    /// Per target, in order.
    pub targets: Vec<TargetReport>,
    /// Journal steps written during this cycle, by name, in order.
    pub journalled: Vec<String>,
    /// The fencing token the cycle acted under, if it took the lock.
    pub fencing_token: Option<u64>,
    /// Whether the release was quarantined by this cycle.
    pub quarantined: bool,
    /// Warnings (notification failures, retention problems, ...).
    pub warnings: Vec<String>,
}

impl CycleReport {
    /// One sentence for a person.
    pub fn summary(&self) -> String {
        let release = self.release_version.as_deref().unwrap_or("?");
        match &self.outcome {
            CycleOutcome::Skipped => match &self.decision {
                Some(d) => d.to_string(),
                None => "Skipped.".into(),
            },
            CycleOutcome::Blocked {
                required,
                running,
                template_url,
            } => format!(
                "Blocked: release {release} needs infrastructure version {required} (running \
                 {running}); apply the template {template_url} to the runner stack first."
            ),
            CycleOutcome::LockBusy { holder } => {
                format!("Another updater ({holder}) holds the lock; nothing done.")
            }
            CycleOutcome::Succeeded => format!(
                "Updated every target to {release}{}.",
                if self.resumed {
                    " (resumed from the journal)"
                } else {
                    ""
                }
            ),
            CycleOutcome::RolledBack { reason } => {
                format!("Release {release} failed and was rolled back and quarantined: {reason}")
            }
            CycleOutcome::RollbackFailed { reason } => format!(
                "Release {release} failed and its rollback did not complete; a person must look: \
                 {reason}"
            ),
            CycleOutcome::DeployedUnverified { reason } => format!(
                "Deployed {release} but could not verify it: {reason}; not counted as a success."
            ),
            CycleOutcome::Superseded { reason } => {
                format!("Stepped back from {release}: {reason}")
            }
            CycleOutcome::Interrupted { reason } => format!(
                "Stopped without a verdict on {release}: {reason}; the next cycle resumes from \
                 the journal."
            ),
        }
    }
}
