//! Quarantine records of failed releases and their back-off schedule.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use runner_version::{Release, Version};
use serde::{Deserialize, Serialize};

use crate::Error;

/// A release that failed to deploy on this runner and must not be tried
/// again before `retry_after` (or until an operator removes the entry).
///
/// The store of these records lives elsewhere (a DynamoDB table, a file);
/// this crate defines the record and takes the store's contents as input
/// ([`CurrentState::quarantine`](crate::CurrentState::quarantine)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineEntry {
    /// The failed release's version.
    pub version: Version,
    /// The failed release's image digest (`sha256:<hex>`), if known. A
    /// candidate with the same digest is quarantined too, whatever its
    /// version says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    /// Why the release failed (e.g. "ECS rolled the deployment back:
    /// CannotPullContainerError").
    pub reason: String,
    /// How many times the release has failed (at least 1).
    pub attempts: u32,
    /// The release may be tried again from this instant on.
    pub retry_after: DateTime<Utc>,
}

impl QuarantineEntry {
    /// The entry to store after `release` failed at `failed_at` for
    /// `reason`: one more attempt than `previous` (when `previous` is an
    /// entry for the same release), with `retry_after` from `backoff`.
    pub fn after_failure(
        previous: Option<&QuarantineEntry>,
        release: &Release,
        reason: impl Into<String>,
        failed_at: DateTime<Utc>,
        backoff: &QuarantineBackoff,
    ) -> Self {
        let attempts = previous
            .filter(|entry| entry.matches(release))
            .map_or(1, |entry| entry.attempts.max(1).saturating_add(1));
        Self {
            version: release.version.clone(),
            image_digest: release.image.digest().map(str::to_string),
            reason: reason.into(),
            attempts,
            retry_after: backoff.retry_after(attempts, failed_at),
        }
    }

    /// Whether the entry is about `release`: the same version, or the same
    /// image digest when both have one.
    pub fn matches(&self, release: &Release) -> bool {
        self.version == release.version
            || matches!(
                (&self.image_digest, release.image.digest()),
                (Some(a), Some(b)) if a.eq_ignore_ascii_case(b)
            )
    }

    /// Whether the entry still blocks at `now` (`now < retry_after`).
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        now < self.retry_after
    }
}

/// The back-off between retries of a failed release: exponential,
/// doubling per failure, capped.
///
/// The delay after the `n`-th failure is `initial × 2^(n−1)`, at most
/// `maximum`. With the defaults (1 h, 7 days): 1 h, 2 h, 4 h, … 64 h, 128 h,
/// then 168 h from the 9th failure on.
///
/// ```
/// use std::time::Duration;
/// use update_policy::QuarantineBackoff;
///
/// let backoff = QuarantineBackoff::default();
/// assert_eq!(backoff.delay(1), Duration::from_secs(3600));
/// assert_eq!(backoff.delay(3), Duration::from_secs(4 * 3600));
/// assert_eq!(backoff.delay(50), Duration::from_secs(7 * 24 * 3600));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct QuarantineBackoff {
    /// The delay after the first failure. Default: 1 hour. Serialised as
    /// `initial_secs`.
    #[serde(rename = "initial_secs", with = "crate::duration_secs")]
    pub initial: Duration,
    /// The longest delay. Default: 7 days. Serialised as `maximum_secs`.
    #[serde(rename = "maximum_secs", with = "crate::duration_secs")]
    pub maximum: Duration,
}

impl Default for QuarantineBackoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(3600),
            maximum: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// The longest back-off accepted by [`QuarantineBackoff::validate`]: a
/// year. Longer is a unit mistake; remove the release instead.
const MAXIMUM_BACKOFF: Duration = Duration::from_secs(366 * 24 * 3600);

impl QuarantineBackoff {
    /// The delay after `attempts` failures (`0` counts as `1`).
    pub fn delay(&self, attempts: u32) -> Duration {
        let exponent = attempts.max(1) - 1;
        2u32.checked_pow(exponent)
            .and_then(|factor| self.initial.checked_mul(factor))
            .map_or(self.maximum, |delay| delay.min(self.maximum))
    }

    /// When a release that failed for the `attempts`-th time at `failed_at`
    /// may be tried again.
    pub fn retry_after(&self, attempts: u32, failed_at: DateTime<Utc>) -> DateTime<Utc> {
        TimeDelta::from_std(self.delay(attempts))
            .ok()
            .and_then(|delay| failed_at.checked_add_signed(delay))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// Rejects a zero initial delay (a failed release would be retried at
    /// once, in a loop), a maximum below the initial delay, and delays over
    /// a year.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |reason: &str| {
            Err(Error::InvalidPolicy {
                field: "quarantine_backoff",
                reason: reason.into(),
            })
        };
        if self.initial.is_zero() {
            return invalid(
                "has a zero initial delay, so a failed release would be retried at once; \
                 use at least a few minutes",
            );
        }
        if self.maximum < self.initial {
            return invalid("has a maximum shorter than its initial delay; raise the maximum");
        }
        if self.maximum > MAXIMUM_BACKOFF {
            return invalid(
                "has a maximum over a year; to block a release for good, keep it quarantined \
                 or set a version requirement",
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const HOUR: u64 = 3600;

    #[test]
    fn delays_double_and_cap() {
        let backoff = QuarantineBackoff {
            initial: Duration::from_secs(HOUR),
            maximum: Duration::from_secs(10 * HOUR),
        };
        let cases = [
            (0, HOUR),
            (1, HOUR),
            (2, 2 * HOUR),
            (3, 4 * HOUR),
            (4, 8 * HOUR),
            (5, 10 * HOUR),
            (32, 10 * HOUR),
            (33, 10 * HOUR),
            (u32::MAX, 10 * HOUR),
        ];
        for (attempts, want) in cases {
            assert_eq!(
                backoff.delay(attempts),
                Duration::from_secs(want),
                "{attempts}"
            );
        }
        let failed_at = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(
            backoff.retry_after(3, failed_at),
            Utc.with_ymd_and_hms(2025, 1, 1, 4, 0, 0).unwrap()
        );
    }

    #[test]
    fn validate_rejects_backoffs_that_cannot_work() {
        let d = Duration::from_secs;
        let cases = [
            (d(0), d(HOUR), false),
            (d(2 * HOUR), d(HOUR), false),
            (d(HOUR), d(400 * 24 * HOUR), false),
            (d(HOUR), d(HOUR), true),
            (d(60), d(7 * 24 * HOUR), true),
        ];
        for (initial, maximum, ok) in cases {
            let backoff = QuarantineBackoff { initial, maximum };
            assert_eq!(backoff.validate().is_ok(), ok, "{backoff:?}");
        }
        assert!(QuarantineBackoff::default().validate().is_ok());
    }

    #[test]
    fn a_maximum_of_exactly_the_limit_is_accepted() {
        let limit = QuarantineBackoff {
            initial: Duration::from_secs(HOUR),
            maximum: MAXIMUM_BACKOFF,
        };
        limit.validate().unwrap();
        let over = QuarantineBackoff {
            initial: Duration::from_secs(HOUR),
            maximum: MAXIMUM_BACKOFF + Duration::from_secs(1),
        };
        assert!(over.validate().is_err());
    }
}
