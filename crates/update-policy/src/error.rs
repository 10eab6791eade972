//! The error type of this crate.

use chrono::NaiveTime;

/// Everything that can go wrong in `update-policy`: configuration that
/// cannot work. Evaluating a release never fails; a rule that cannot be
/// judged is a [`SkipReason`](crate::SkipReason), not an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A field of an [`UpdatePolicy`](crate::UpdatePolicy) has a value that
    /// cannot work.
    #[error("invalid update policy: `{field}` {reason}")]
    InvalidPolicy {
        /// The offending field.
        field: &'static str,
        /// What is wrong and what to do instead.
        reason: String,
    },
    /// An update window is empty or ambiguous.
    #[error("invalid update window {start}-{end}: {reason}")]
    InvalidWindow {
        /// The window's start (UTC).
        start: NaiveTime,
        /// The window's end (UTC).
        end: NaiveTime,
        /// What is wrong and what to do instead.
        reason: String,
    },
    /// A version requirement is neither a semver requirement nor a calendar
    /// prefix.
    #[error(
        "invalid version requirement {input:?}: {reason}; use a semver requirement such as \
         \">=1.2, <2\" or a calendar prefix of 4 to 8 digits such as \"2025\" or \"202501\""
    )]
    InvalidVersionRequirement {
        /// The rejected text.
        input: String,
        /// What the parser said.
        reason: String,
    },
    /// A [`CheckScheduleConfig`](crate::CheckScheduleConfig) cannot work.
    #[error("invalid check schedule: `{field}` {reason}")]
    InvalidSchedule {
        /// The offending field.
        field: &'static str,
        /// What is wrong and what to do instead.
        reason: String,
    },
}
