//! What a caller asks for when acquiring: the lease and its heartbeat.

use std::time::Duration;

use crate::LockError;

/// A lease duration and the period of its background heartbeat.
///
/// Validated when built: the lease is at least one millisecond and the
/// heartbeat period is non-zero and at most half the lease, so one missed
/// heartbeat never loses the lock.
///
/// Default: a 60 s lease renewed every 20 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    duration: Duration,
    heartbeat: Option<Duration>,
}

impl Lease {
    /// The shortest lease accepted.
    pub const MIN_DURATION: Duration = Duration::from_millis(1);

    /// A lease of `duration` with a heartbeat every third of it.
    pub fn new(duration: Duration) -> Result<Self, LockError> {
        if duration < Self::MIN_DURATION {
            return Err(LockError::invalid_config(
                "lease.duration",
                format!("is {duration:?}; use at least 1 ms (seconds to minutes in production)"),
            ));
        }
        Ok(Self {
            duration,
            heartbeat: Some(duration / 3),
        })
        .and_then(|lease| lease.validate().map(|()| lease))
    }

    /// The same lease renewed every `period` by a background task.
    /// Rejected unless `0 < period <= duration / 2`.
    pub fn with_heartbeat(self, period: Duration) -> Result<Self, LockError> {
        let lease = Self {
            heartbeat: Some(period),
            ..self
        };
        lease.validate()?;
        Ok(lease)
    }

    /// The same lease without a background heartbeat: the caller renews with
    /// [`UpdateLock::renew`](crate::UpdateLock::renew) or lets it lapse.
    pub fn without_heartbeat(self) -> Self {
        Self {
            heartbeat: None,
            ..self
        }
    }

    /// The lease duration stored in the lock record.
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// The heartbeat period, if a background heartbeat runs.
    pub fn heartbeat(&self) -> Option<Duration> {
        self.heartbeat
    }

    /// Checks the rules above.
    pub fn validate(&self) -> Result<(), LockError> {
        if self.duration < Self::MIN_DURATION {
            return Err(LockError::invalid_config(
                "lease.duration",
                format!("is {:?}; use at least 1 ms", self.duration),
            ));
        }
        if let Some(period) = self.heartbeat {
            if period.is_zero() {
                return Err(LockError::invalid_config(
                    "lease.heartbeat",
                    "is zero; use a period of at most half the lease",
                ));
            }
            if period > self.duration / 2 {
                return Err(LockError::invalid_config(
                    "lease.heartbeat",
                    format!(
                        "is {period:?} but must be at most half the lease ({:?}) so one late \
                         heartbeat does not lose the lock; use at most {:?}",
                        self.duration,
                        self.duration / 2
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl Default for Lease {
    fn default() -> Self {
        Self {
            duration: Duration::from_secs(60),
            heartbeat: Some(Duration::from_secs(20)),
        }
    }
}

/// Settings of a [`LeaseLock`](crate::LeaseLock).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockConfig {
    /// How often [`acquire`](crate::UpdateLock::acquire) polls a held lock.
    /// Default 1 s. A poll never sleeps past the moment the holder's lease
    /// would run out or past the caller's maximum wait.
    pub poll_interval: Duration,
    /// A random extra delay of up to this much is added to every poll so
    /// contenders do not poll in lockstep. Default 200 ms.
    pub poll_jitter: Duration,
}

impl Default for LockConfig {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(1),
            poll_jitter: Duration::from_millis(200),
        }
    }
}

impl LockConfig {
    /// Rejects a zero poll interval.
    pub fn validate(&self) -> Result<(), LockError> {
        if self.poll_interval.is_zero() {
            return Err(LockError::invalid_config(
                "poll_interval",
                "is zero, which would poll the backend in a busy loop; use e.g. 1 s",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn lease_rules_table() {
        // (lease, heartbeat (None = no heartbeat), accepted?)
        let cases: &[(Duration, Option<Duration>, bool)] = &[
            (MS(10_000), Some(MS(5_000)), true),
            (MS(10_000), Some(MS(5_001)), false),
            (MS(10_000), Some(MS(10_000)), false),
            (MS(10_000), Some(MS(20_000)), false),
            (MS(10_000), Some(MS(0)), false),
            (MS(10_000), Some(MS(1)), true),
            (MS(10_000), None, true),
            (MS(1), None, true),
            (MS(0), None, false),
        ];
        for &(duration, heartbeat, ok) in cases {
            let built = Lease::new(duration).and_then(|l| match heartbeat {
                Some(p) => l.with_heartbeat(p),
                None => Ok(l.without_heartbeat()),
            });
            assert_eq!(
                built.is_ok(),
                ok,
                "lease {duration:?} heartbeat {heartbeat:?}: {built:?}"
            );
            if let Err(e) = built {
                assert!(matches!(e, LockError::InvalidConfig { .. }), "{e}");
            }
        }
    }

    #[test]
    fn default_heartbeat_is_a_third_and_valid() {
        let lease = Lease::new(MS(9_000)).unwrap();
        assert_eq!(lease.heartbeat(), Some(MS(3_000)));
        Lease::default().validate().unwrap();
        let tiny = Lease::new(MS(1)).unwrap();
        assert_eq!(tiny.heartbeat(), Some(Duration::from_nanos(333_333)));
    }

    #[test]
    fn lock_config_rejects_zero_poll() {
        LockConfig::default().validate().unwrap();
        let bad = LockConfig {
            poll_interval: Duration::ZERO,
            ..LockConfig::default()
        };
        assert!(matches!(
            bad.validate(),
            Err(LockError::InvalidConfig {
                field: "poll_interval",
                ..
            })
        ));
    }
}
