//! When to check for releases: an interval with bounded random jitter.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::Error;

/// The longest interval accepted by [`CheckScheduleConfig::validate`]: 7 days.
const MAXIMUM_INTERVAL: Duration = Duration::from_secs(7 * 24 * 3600);

/// How often to check for releases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CheckScheduleConfig {
    /// The least time between two checks. Default: 1 hour. Serialised as
    /// `interval_secs`.
    #[serde(rename = "interval_secs", with = "crate::duration_secs")]
    pub interval: Duration,
    /// The largest random delay added to each interval, so a fleet started
    /// together does not check together. Default: 10 minutes. At most the
    /// interval. Serialised as `jitter_secs`.
    #[serde(rename = "jitter_secs", with = "crate::duration_secs")]
    pub jitter: Duration,
}

impl Default for CheckScheduleConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(3600),
            jitter: Duration::from_secs(600),
        }
    }
}

impl CheckScheduleConfig {
    /// Rejects a zero interval, an interval over 7 days and a jitter larger
    /// than the interval.
    pub fn validate(&self) -> Result<(), Error> {
        if self.interval.is_zero() {
            return Err(Error::InvalidSchedule {
                field: "interval",
                reason: "is zero, which would check in a loop; use at least a minute".into(),
            });
        }
        if self.interval > MAXIMUM_INTERVAL {
            return Err(Error::InvalidSchedule {
                field: "interval",
                reason: "is over 7 days; the value is in seconds".into(),
            });
        }
        if self.jitter > self.interval {
            return Err(Error::InvalidSchedule {
                field: "jitter",
                reason: "is larger than the interval; use at most the interval (a tenth of it \
                         is usual)"
                    .into(),
            });
        }
        Ok(())
    }
}

/// The check times of one runner: `interval` plus a uniformly random jitter
/// in `[0, jitter]` after the last check, drawn from a ChaCha8 generator
/// seeded by the caller (e.g. [`CheckSchedule::seed_for`] of the runner's
/// identity). Equal seeds give equal schedules; different runners spread
/// their checks over the jitter range.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use update_policy::{CheckSchedule, CheckScheduleConfig};
///
/// let mut schedule =
///     CheckSchedule::new(CheckScheduleConfig::default(), CheckSchedule::seed_for("runner-7")).unwrap();
/// let last = Utc.with_ymd_and_hms(2025, 1, 1, 12, 0, 0).unwrap();
/// let next = schedule.next_check_after(last);
/// let wait = (next - last).num_seconds();
/// assert!((3600..=4200).contains(&wait));
/// ```
#[derive(Debug, Clone)]
pub struct CheckSchedule {
    config: CheckScheduleConfig,
    rng: ChaCha8Rng,
}

impl CheckSchedule {
    /// A schedule after validating `config`.
    pub fn new(config: CheckScheduleConfig, seed: u64) -> Result<Self, Error> {
        config.validate()?;
        Ok(Self {
            config,
            rng: ChaCha8Rng::seed_from_u64(seed),
        })
    }

    /// A stable seed from a runner's identity (FNV-1a of the bytes, the
    /// same on every platform and Rust version).
    pub fn seed_for(identity: &str) -> u64 {
        identity.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    }

    /// The configuration.
    pub fn config(&self) -> &CheckScheduleConfig {
        &self.config
    }

    /// The first check after the updater started at `started_at`: a random
    /// delay in `[0, jitter]`, so a fleet restarted together spreads out at
    /// once.
    pub fn first_check_after(&mut self, started_at: DateTime<Utc>) -> DateTime<Utc> {
        let jitter = self.draw_jitter();
        add(started_at, jitter)
    }

    /// The next check after a check at `last_check`: `interval` plus a
    /// random delay in `[0, jitter]`.
    pub fn next_check_after(&mut self, last_check: DateTime<Utc>) -> DateTime<Utc> {
        let jitter = self.draw_jitter();
        add(last_check, self.config.interval.saturating_add(jitter))
    }

    fn draw_jitter(&mut self) -> Duration {
        let max_millis = u64::try_from(self.config.jitter.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(self.rng.random_range(0..=max_millis))
    }
}

fn add(at: DateTime<Utc>, delay: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(delay)
        .ok()
        .and_then(|delay| at.checked_add_signed(delay))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn last() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, 1, 12, 0, 0).unwrap()
    }

    #[test]
    fn a_thousand_runners_spread_over_the_jitter_range() {
        const RUNNERS: usize = 1000;
        const BUCKETS: usize = 10;
        let config = CheckScheduleConfig {
            interval: Duration::from_secs(3600),
            jitter: Duration::from_secs(600),
        };
        let mut histogram = [0usize; BUCKETS];
        for runner in 0..RUNNERS {
            let seed = CheckSchedule::seed_for(&format!(
                "arn:aws:ecs:us-east-1:123456789012:task/runners/{runner}"
            ));
            let mut schedule = CheckSchedule::new(config, seed).unwrap();
            let offset = (schedule.next_check_after(last()) - last()).num_milliseconds();
            let jitter = offset - 3_600_000;
            assert!(
                (0..=600_000).contains(&jitter),
                "runner {runner}: jitter {jitter} ms"
            );
            let bucket = ((jitter as usize) * BUCKETS / 600_001).min(BUCKETS - 1);
            histogram[bucket] += 1;
        }
        // Uniform would be 100 per bucket; allow 50 % either way, far
        // outside what 1,000 draws of a good generator produce, and far
        // inside a herd (1,000 in one bucket).
        for (bucket, count) in histogram.iter().enumerate() {
            assert!(
                (50..=150).contains(count),
                "bucket {bucket} holds {count} of {RUNNERS}: {histogram:?}"
            );
        }
    }

    #[test]
    fn equal_seeds_give_equal_schedules_and_different_seeds_do_not() {
        let config = CheckScheduleConfig::default();
        let times = |seed| {
            let mut schedule = CheckSchedule::new(config, seed).unwrap();
            let mut at = schedule.first_check_after(last());
            let mut out = vec![at];
            for _ in 0..5 {
                at = schedule.next_check_after(at);
                out.push(at);
            }
            out
        };
        assert_eq!(times(1), times(1));
        assert_ne!(times(1), times(2));
        for pair in times(3).windows(2) {
            let gap = (pair[1] - pair[0]).num_seconds();
            assert!((3600..=4200).contains(&gap), "{gap}");
        }
    }

    #[test]
    fn zero_jitter_is_exactly_the_interval() {
        let config = CheckScheduleConfig {
            interval: Duration::from_secs(900),
            jitter: Duration::ZERO,
        };
        let mut schedule = CheckSchedule::new(config, 9).unwrap();
        assert_eq!(schedule.first_check_after(last()), last());
        assert_eq!(
            schedule.next_check_after(last()),
            last() + TimeDelta::seconds(900)
        );
    }

    #[test]
    fn validate_rejects_schedules_that_cannot_work() {
        let d = Duration::from_secs;
        let cases = [
            (d(0), d(0), Some("interval")),
            (d(8 * 24 * 3600), d(0), Some("interval")),
            (d(60), d(61), Some("jitter")),
            (d(60), d(60), None),
        ];
        for (interval, jitter, want) in cases {
            let result = CheckScheduleConfig { interval, jitter }.validate();
            match (result, want) {
                (Ok(()), None) => {}
                (Err(Error::InvalidSchedule { field, .. }), Some(want)) => assert_eq!(field, want),
                (other, _) => panic!("{interval:?}/{jitter:?}: {other:?}"),
            }
        }
        assert!(
            CheckSchedule::new(
                CheckScheduleConfig {
                    interval: d(0),
                    jitter: d(0)
                },
                1
            )
            .is_err()
        );
    }

    #[test]
    fn seeds_are_stable() {
        // FNV-1a test vectors.
        assert_eq!(CheckSchedule::seed_for(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(CheckSchedule::seed_for("a"), 0xaf63_dc4c_8601_ec8c);
    }
}
