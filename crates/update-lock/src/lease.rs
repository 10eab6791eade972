//! What a caller asks for when acquiring: the lease and its heartbeat.

use std::time::Duration;

use crate::LockError;

/// A lease duration and the period of its background heartbeat.
///
/// Validated when built: the lease is at least one millisecond and at most
/// [`Lease::MAX_DURATION`] (24 h), rounded *up* to whole milliseconds (the
/// unit stored in every backend), and the heartbeat period is non-zero and
/// at most half the lease, so one missed heartbeat never loses the lock.
///
/// The lease must be much longer than the longest step guarded by one
/// [`LeaseGuard::check_for`](crate::LeaseGuard::check_for) call (and than
/// any pause of the process), since a contender takes over one lease after
/// the holder's last write, whatever the holder is doing.
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

    /// The longest lease accepted: 24 hours. Longer stored leases are
    /// refused as corrupt records.
    pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

    /// A lease of `duration` (rounded up to whole milliseconds) with a
    /// heartbeat every third of it.
    pub fn new(duration: Duration) -> Result<Self, LockError> {
        if duration < Self::MIN_DURATION {
            return Err(LockError::invalid_config(
                "lease.duration",
                format!("is {duration:?}; use at least 1 ms (seconds to minutes in production)"),
            ));
        }
        if duration > Self::MAX_DURATION {
            return Err(LockError::invalid_config(
                "lease.duration",
                format!("is {duration:?}; use at most 24 h (seconds to minutes in production)"),
            ));
        }
        let duration = round_up_to_ms(duration);
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
        if self.duration > Self::MAX_DURATION {
            return Err(LockError::invalid_config(
                "lease.duration",
                format!("is {:?}; use at most 24 h", self.duration),
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

/// `duration` rounded up to a whole number of milliseconds (saturating).
fn round_up_to_ms(duration: Duration) -> Duration {
    let ms = duration.as_millis() + u128::from(!duration.subsec_nanos().is_multiple_of(1_000_000));
    Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
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
    /// ε: how much faster, in parts per million, the holder's clock may run
    /// slow relative to a contender's (clock drift between hosts). The
    /// holder's validity is shortened by `lease · ε`. Default 10 000 ppm
    /// (1 %); at most 100 000 (10 %).
    pub clock_drift_ppm: u32,
    /// δ: a fixed margin subtracted from the holder's validity on top of the
    /// drift, for scheduling delays between a successful `check_for` and the
    /// guarded step's first effect. Capped at a tenth of the lease, so short
    /// leases keep most of their validity. Default 1 s.
    pub safety_margin: Duration,
}

impl Default for LockConfig {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(1),
            poll_jitter: Duration::from_millis(200),
            clock_drift_ppm: Self::DEFAULT_CLOCK_DRIFT_PPM,
            safety_margin: Self::DEFAULT_SAFETY_MARGIN,
        }
    }
}

impl LockConfig {
    /// The default ε: 10 000 ppm (1 %).
    pub const DEFAULT_CLOCK_DRIFT_PPM: u32 = 10_000;
    /// The largest ε accepted: 100 000 ppm (10 %).
    pub const MAX_CLOCK_DRIFT_PPM: u32 = 100_000;
    /// The default δ: 1 s.
    pub const DEFAULT_SAFETY_MARGIN: Duration = Duration::from_secs(1);

    /// Rejects a zero poll interval and a clock drift above
    /// [`MAX_CLOCK_DRIFT_PPM`](Self::MAX_CLOCK_DRIFT_PPM).
    pub fn validate(&self) -> Result<(), LockError> {
        if self.poll_interval.is_zero() {
            return Err(LockError::invalid_config(
                "poll_interval",
                "is zero, which would poll the backend in a busy loop; use e.g. 1 s",
            ));
        }
        if self.clock_drift_ppm > Self::MAX_CLOCK_DRIFT_PPM {
            return Err(LockError::invalid_config(
                "clock_drift_ppm",
                format!(
                    "is {} ppm; use at most {} ppm (10 %), typically 10 000 (1 %)",
                    self.clock_drift_ppm,
                    Self::MAX_CLOCK_DRIFT_PPM
                ),
            ));
        }
        Ok(())
    }

    /// How long after *sending* a successful write the holder treats its
    /// lease as valid: `lease · (1 − ε) − δ`, with δ capped at a tenth of
    /// the lease. Always positive and shorter than `lease`, the time after
    /// which a contender may take over.
    ///
    /// ```
    /// use std::time::Duration;
    /// use update_lock::LockConfig;
    ///
    /// let config = LockConfig::default();
    /// // 60 s − 1 % − 1 s
    /// assert_eq!(config.holder_validity(Duration::from_secs(60)), Duration::from_millis(58_400));
    /// // A 1 s lease: δ is capped at 100 ms.
    /// assert_eq!(config.holder_validity(Duration::from_secs(1)), Duration::from_millis(890));
    /// ```
    pub fn holder_validity(&self, lease: Duration) -> Duration {
        let ppm = self.clock_drift_ppm.min(Self::MAX_CLOCK_DRIFT_PPM);
        let drift_nanos = lease.as_nanos() * u128::from(ppm) / 1_000_000;
        let drift = Duration::from_nanos(u64::try_from(drift_nanos).unwrap_or(u64::MAX));
        let margin = self.safety_margin.min(lease / 10);
        lease.saturating_sub(drift).saturating_sub(margin)
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
    fn lease_is_capped_and_rounded_up_to_whole_ms() {
        assert_eq!(
            Lease::new(Duration::from_micros(1_500)).unwrap().duration(),
            MS(2)
        );
        assert_eq!(Lease::new(MS(7)).unwrap().duration(), MS(7));
        assert_eq!(
            Lease::new(Lease::MAX_DURATION).unwrap().duration(),
            Lease::MAX_DURATION
        );
        for too_long in [Lease::MAX_DURATION + Duration::from_nanos(1), Duration::MAX] {
            assert!(matches!(
                Lease::new(too_long),
                Err(LockError::InvalidConfig {
                    field: "lease.duration",
                    ..
                })
            ));
        }
    }

    #[test]
    fn holder_validity_applies_drift_and_capped_margin() {
        let config = LockConfig::default();
        // (lease, validity) with ε = 1 %, δ = min(1 s, lease / 10)
        let cases = [
            (MS(60_000), MS(58_400)),
            (MS(10_000), MS(8_900)),
            (MS(1_000), MS(890)),
            (MS(100), Duration::from_micros(89_000)),
            (Lease::MAX_DURATION, MS(86_400_000 - 864_000 - 1_000)),
        ];
        for (lease, validity) in cases {
            assert_eq!(config.holder_validity(lease), validity, "{lease:?}");
            assert!(config.holder_validity(lease) < lease);
        }
        let none = LockConfig {
            clock_drift_ppm: 0,
            safety_margin: Duration::ZERO,
            ..LockConfig::default()
        };
        assert_eq!(none.holder_validity(MS(10_000)), MS(10_000));
        let bad = LockConfig {
            clock_drift_ppm: LockConfig::MAX_CLOCK_DRIFT_PPM + 1,
            ..LockConfig::default()
        };
        assert!(matches!(
            bad.validate(),
            Err(LockError::InvalidConfig {
                field: "clock_drift_ppm",
                ..
            })
        ));
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

    #[test]
    fn a_clock_drift_of_exactly_the_maximum_is_accepted() {
        let at_max = LockConfig {
            clock_drift_ppm: LockConfig::MAX_CLOCK_DRIFT_PPM,
            ..LockConfig::default()
        };
        at_max.validate().unwrap();
        let over = LockConfig {
            clock_drift_ppm: LockConfig::MAX_CLOCK_DRIFT_PPM + 1,
            ..LockConfig::default()
        };
        assert!(over.validate().is_err());
    }
}
