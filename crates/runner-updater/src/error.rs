//! The error type of this crate.

use update_lock::FencingToken;

/// A boxed error source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Whether retrying the failed operation may help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorClass {
    /// A time-out, a 5xx, a lost connection: retry later.
    Transient,
    /// Throttled: retry later, more slowly.
    Throttled,
    /// Retrying the same call will fail the same way.
    Permanent,
}

/// Everything that can go wrong in an update cycle or its stores.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The updater's configuration is invalid; nothing was done.
    #[error("invalid updater configuration: {field} {reason}")]
    InvalidConfig {
        /// The configuration key.
        field: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// A journal write was refused because the writer's fencing token is no
    /// longer the lock's: another updater took the lock over. The writer
    /// must stop before touching ECS.
    #[error(
        "journal write for {key:?} refused: fencing token {token} of {owner:?} is stale \
         (the lock is now {current}); this updater stopped before touching ECS"
    )]
    Fenced {
        /// The journal (lock) key.
        key: String,
        /// The writer.
        owner: String,
        /// The writer's token.
        token: FencingToken,
        /// Who holds the lock now, in words.
        current: String,
    },
    /// A journal or quarantine store failed.
    #[error("{class:?} failure of the {what} store at {resource}: {source}")]
    Store {
        /// `journal` or `quarantine`.
        what: &'static str,
        /// The file, table or key.
        resource: String,
        /// Whether a retry may help.
        class: ErrorClass,
        /// The cause.
        #[source]
        source: BoxError,
    },
    /// A stored record could not be read back (corrupt or from a newer
    /// build).
    #[error("the {what} record at {resource} is unreadable: {reason}; inspect it before deleting")]
    CorruptRecord {
        /// `journal` or `quarantine`.
        what: &'static str,
        /// Where it is.
        resource: String,
        /// Why.
        reason: String,
    },
    /// A concurrent writer changed a quarantine record faster than this
    /// updater could apply its change.
    #[error("the quarantine record of {key:?} kept changing under concurrent writers; retry")]
    Contended {
        /// The runner key.
        key: String,
    },
    /// The lock could not be taken or was lost.
    #[error(transparent)]
    Lock(#[from] update_lock::LockError),
    /// The release source failed (network, signature, expiry, rollback).
    #[error("release check failed: {0}")]
    Release(#[from] runner_version::Error),
    /// ECS failed in a way that left no verdict (the journal says what is
    /// live; the next cycle resumes it).
    #[error("ECS: {0}")]
    Ecs(#[from] ecs_rollout::Error),
    /// CloudFormation failed while reading the infrastructure version.
    #[error("CloudFormation: {0}")]
    Cfn(#[from] cfn_stack::Error),
    /// The policy is invalid.
    #[error("update policy: {0}")]
    Policy(#[from] update_policy::Error),
    /// A notification could not be delivered (reported, never fatal to a
    /// cycle).
    #[error("notification to {target} failed after {attempts} attempt(s): {reason}")]
    Notify {
        /// Where it was sent (a URL without credentials).
        target: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last failure.
        reason: String,
    },
    /// Another cycle of this updater is running.
    #[error("an update cycle is already running in this updater; wait for it to finish")]
    CycleInProgress,
    /// The journal holds an unfinished update the operator asked to act on
    /// in a way that conflicts with it.
    #[error("{0}")]
    Conflict(String),
}

impl Error {
    /// Whether a retry may help.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Store { class, .. } => *class,
            Self::Contended { .. } | Self::CycleInProgress => ErrorClass::Transient,
            Self::Lock(e) => match e.backend_kind() {
                Some(update_lock::BackendErrorKind::Throttled) => ErrorClass::Throttled,
                Some(update_lock::BackendErrorKind::Permanent) => ErrorClass::Permanent,
                _ => ErrorClass::Transient,
            },
            Self::Ecs(e) => match e.class() {
                Some(ecs_rollout::ErrorClass::Throttled) => ErrorClass::Throttled,
                Some(ecs_rollout::ErrorClass::Transient) => ErrorClass::Transient,
                _ => ErrorClass::Permanent,
            },
            Self::Release(e) => match e.class() {
                Some(runner_version::ErrorClass::Transient) => ErrorClass::Transient,
                Some(runner_version::ErrorClass::Throttled) => ErrorClass::Throttled,
                _ => ErrorClass::Permanent,
            },
            _ => ErrorClass::Permanent,
        }
    }

    /// A store error.
    pub fn store(
        what: &'static str,
        resource: impl Into<String>,
        class: ErrorClass,
        source: impl Into<BoxError>,
    ) -> Self {
        Self::Store {
            what,
            resource: resource.into(),
            class,
            source: source.into(),
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
