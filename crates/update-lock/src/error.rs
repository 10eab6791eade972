//! The error type of this crate.

use chrono::{DateTime, Utc};

use crate::FencingToken;

/// How a failure of a backend (a file system, DynamoDB) is best handled by
/// the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BackendErrorKind {
    /// Likely to succeed on a later attempt (connection reset, timeout, 5xx).
    Transient,
    /// The backend asked us to slow down (DynamoDB throughput exceeded).
    Throttled,
    /// Will fail again until someone changes configuration or data (missing
    /// table, access denied, corrupt state file).
    Permanent,
}

impl std::fmt::Display for BackendErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Transient => "transient",
            Self::Throttled => "throttled",
            Self::Permanent => "permanent",
        })
    }
}

/// Why a lease is no longer valid.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LossReason {
    /// The lease ran out on the holder's own monotonic clock without a
    /// successful renewal.
    Expired,
    /// A renewal or release found the lock record changed: another owner
    /// took the lock over (or it was released) since our last write.
    TakenOver,
    /// The guard was released by its owner.
    Released,
}

impl std::fmt::Display for LossReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Expired => "the lease expired on the local clock before it was renewed",
            Self::TakenOver => "the lock record changed: another owner took the lock over",
            Self::Released => "the lease was released",
        })
    }
}

/// The boxed source of a backend failure.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in `update-lock`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// Another owner (or this owner, through another guard) holds the lock.
    #[error(
        "lock {key:?} is held by {holder:?}; it can be taken over no earlier than {until} \
         if the holder stops renewing: wait, or retry with `acquire` and a longer wait"
    )]
    Held {
        /// The lock key.
        key: String,
        /// The current holder as written in the lock record.
        holder: String,
        /// Best estimate (on this process's clock) of when the lock becomes
        /// free if the holder stops renewing now: one full lease after this
        /// process first saw the holder's current record version.
        until: DateTime<Utc>,
    },
    /// The lease behind a guard is no longer valid: stop acting on it.
    #[error(
        "lease on lock {key:?} held by {owner:?} (fencing token {token}) is lost: {reason}; \
         stop the state-changing step, another holder may be active"
    )]
    LeaseLost {
        /// The lock key.
        key: String,
        /// The owner of the lost lease.
        owner: String,
        /// The fencing token of the lost lease.
        token: FencingToken,
        /// Why it was lost.
        reason: LossReason,
    },
    /// [`LeaseGuard::check_for`](crate::LeaseGuard::check_for): the lease
    /// is valid but has less than the step's budget left, so the step could
    /// outlive it and overlap a new holder's.
    #[error(
        "lease on lock {key:?} held by {owner:?} (fencing token {token}) has {remaining_ms} ms \
         left, less than the {needed_ms} ms budget of the next step; wait for the next renewal \
         or use a longer lease"
    )]
    LeaseTooShort {
        /// The lock key.
        key: String,
        /// The holder.
        owner: String,
        /// Its fencing token.
        token: FencingToken,
        /// Lease time left on the local clock.
        remaining_ms: u64,
        /// The budget asked for.
        needed_ms: u64,
    },
    /// The backend failed; `kind` says whether retrying can help.
    #[error("{kind} failure of lock backend {resource}: {source}")]
    Backend {
        /// Transient, throttled or permanent.
        kind: BackendErrorKind,
        /// What failed: a table, a file path.
        resource: String,
        /// The underlying error.
        #[source]
        source: BoxError,
    },
    /// A lease or lock configuration that cannot work.
    #[error("invalid lock configuration: {field} {reason}")]
    InvalidConfig {
        /// The offending setting.
        field: &'static str,
        /// Why it is rejected and what to use instead.
        reason: String,
    },
    /// A lock key or owner that cannot be stored.
    #[error("invalid lock {what} {value:?}: {reason}")]
    InvalidName {
        /// `key` or `owner`.
        what: &'static str,
        /// The rejected text.
        value: String,
        /// Why.
        reason: &'static str,
    },
}

impl LockError {
    /// A backend failure of the given class.
    pub fn backend(
        kind: BackendErrorKind,
        resource: impl Into<String>,
        source: impl Into<BoxError>,
    ) -> Self {
        Self::Backend {
            kind,
            resource: resource.into(),
            source: source.into(),
        }
    }

    /// The class of a backend failure, `None` for domain outcomes.
    pub fn backend_kind(&self) -> Option<BackendErrorKind> {
        match self {
            Self::Backend { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// Whether this is [`LockError::Held`].
    pub fn is_held(&self) -> bool {
        matches!(self, Self::Held { .. })
    }

    /// Whether this is [`LockError::LeaseLost`].
    pub fn is_lease_lost(&self) -> bool {
        matches!(self, Self::LeaseLost { .. })
    }

    pub(crate) fn invalid_config(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidConfig {
            field,
            reason: reason.into(),
        }
    }
}
