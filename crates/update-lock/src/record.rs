//! The lock record every backend stores, and its parts.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A number that strictly increases with every successful acquisition of a
/// key, across all holders, releases and takeovers.
///
/// Pass it to every system you change under the lock; a system that
/// remembers the highest token it has seen can refuse a stale holder (one
/// that lost its lease while paused) even when that holder still believes it
/// owns the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FencingToken(u64);

impl FencingToken {
    /// Wraps a raw token value.
    pub const fn new(value: u64) -> Self {
        Self(value)
    }

    /// The raw value.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The token of the next acquisition after this one.
    pub fn next(self) -> Self {
        Self(self.0.saturating_add(1))
    }

    /// The token of the first acquisition of a key that has no record: the
    /// wall-clock time in microseconds since 1970 (at least 1).
    ///
    /// Starting from the time instead of 1 keeps tokens increasing even when
    /// a record is deleted (DynamoDB TTL cleanup, an operator deleting a state
    /// file) and created again later, as long as a key sees fewer than one
    /// acquisition per microsecond on average and the wall clock does not
    /// step back by more than the record's retention.
    pub fn initial(now: DateTime<Utc>) -> Self {
        Self(u64::try_from(now.timestamp_micros()).unwrap_or(0).max(1))
    }
}

impl std::fmt::Display for FencingToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// The version of a lock record: a random 128-bit value replaced on every
/// write (acquire, heartbeat, release). A contender that sees the same
/// version for one full lease knows the holder stopped renewing.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RecordVersion(String);

impl RecordVersion {
    /// A fresh random version.
    pub fn random() -> Self {
        Self(format!("{:032x}", rand::random::<u128>()))
    }

    /// Wraps a stored version string.
    pub fn from_stored(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The version as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RecordVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The stored state of one lock key.
///
/// A released lock keeps its record (with `holder: None`) so the fencing
/// counter survives release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockRecord {
    /// The lock key.
    pub key: String,
    /// The current holder, `None` once released.
    pub holder: Option<String>,
    /// The lease duration the holder asked for. A duration, never an
    /// absolute time: contenders measure it on their own monotonic clock.
    pub lease: Duration,
    /// Replaced on every write.
    pub version: RecordVersion,
    /// The fencing token of the current (or last) holder.
    pub token: FencingToken,
    /// The writer's wall-clock time of the last write. Informational only:
    /// never compared across hosts to decide staleness.
    pub written_at: DateTime<Utc>,
}

/// The condition a conditional write checks against the stored record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteCondition {
    /// No record exists for the key.
    Absent,
    /// The stored record has exactly this version.
    VersionIs(RecordVersion),
}

/// The result of a conditional write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The condition held and the record was written.
    Written,
    /// The condition did not hold; nothing was written.
    ConditionFailed,
}

/// The result of a conditional write as reported by
/// [`LockStore::write_reporting`](crate::LockStore::write_reporting): like
/// [`WriteOutcome`], and when the condition failed, the record that made it
/// fail if the backend returned it (DynamoDB's
/// `ReturnValuesOnConditionCheckFailure=ALL_OLD`).
///
/// The lock compares that record's version and token with the ones it just
/// tried: a match is its own write that landed behind a timeout or an SDK
/// retry, not somebody else's.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WriteReport {
    /// The condition held and the record was written.
    Written,
    /// The condition did not hold; nothing was written by this call.
    ConditionFailed {
        /// The stored record that failed the condition, when the backend
        /// returned it; `None` when it did not (or no record exists): the
        /// lock then reads the record with a consistent read.
        current: Option<LockRecord>,
    },
}

impl From<WriteOutcome> for WriteReport {
    fn from(outcome: WriteOutcome) -> Self {
        match outcome {
            WriteOutcome::Written => Self::Written,
            WriteOutcome::ConditionFailed => Self::ConditionFailed { current: None },
        }
    }
}

impl From<WriteReport> for WriteOutcome {
    fn from(report: WriteReport) -> Self {
        match report {
            WriteReport::Written => Self::Written,
            WriteReport::ConditionFailed { .. } => Self::ConditionFailed,
        }
    }
}
