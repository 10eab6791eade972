//! The operator's update policy.

use std::time::Duration;

use chrono::{DateTime, Utc, Weekday};
use runner_version::{Channel, Version};
use serde::{Deserialize, Serialize};

use crate::{CheckScheduleConfig, Error, QuarantineBackoff, UpdateWindow, VersionRequirement};

/// The longest minimum release age accepted by [`UpdatePolicy::validate`]:
/// a year. Longer is a unit mistake.
const MAXIMUM_MINIMUM_AGE: Duration = Duration::from_secs(366 * 24 * 3600);

/// An operator pin: no update while the hold is active, whatever the
/// release. Without `expires_at` the hold lasts until the operator lifts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// Why the operator holds (shown in every skip decision).
    pub reason: String,
    /// When the hold lifts by itself, if ever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

impl Hold {
    /// Whether the hold applies at `now` (no expiry, or `now < expires_at`).
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_none_or(|expiry| now < expiry)
    }
}

/// What an operator allows the updater to do. Every optional rule is off by
/// default; [`UpdatePolicy::default`] is the seed's policy: stable channel,
/// auto-update on, no window, no age, version or weekday limits, no hold.
///
/// Serialises with durations in whole seconds
/// (`minimum_release_age_secs`); missing fields take their defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UpdatePolicy {
    /// The channel this runner follows. Default: [`Channel::Stable`].
    pub channel: Channel,
    /// Whether the runner updates itself at all. Default: `true`.
    pub auto_update: bool,
    /// The daily UTC window updates may start in. Default: none (any time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<UpdateWindow>,
    /// The weekdays updates may start on. A window crossing midnight is
    /// judged on the day it opened (see [`UpdateWindow`]). Default: none
    /// (every day).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_weekdays: Option<Vec<Weekday>>,
    /// How old a release must be (from its release date) before it is
    /// deployed; a release without a date is then skipped. Default: none.
    #[serde(
        rename = "minimum_release_age_secs",
        with = "crate::duration_secs::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub minimum_release_age: Option<Duration>,
    /// The highest version to deploy. Default: none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maximum_version: Option<Version>,
    /// The versions to deploy. Default: none (any).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_requirement: Option<VersionRequirement>,
    /// An operator hold. Default: none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold: Option<Hold>,
    /// How long failed releases stay quarantined. Default:
    /// [`QuarantineBackoff::default`].
    pub quarantine_backoff: QuarantineBackoff,
}

impl Default for UpdatePolicy {
    fn default() -> Self {
        Self {
            channel: Channel::Stable,
            auto_update: true,
            window: None,
            allowed_weekdays: None,
            minimum_release_age: None,
            maximum_version: None,
            version_requirement: None,
            hold: None,
            quarantine_backoff: QuarantineBackoff::default(),
        }
    }
}

impl UpdatePolicy {
    /// Rejects a policy that cannot work: an empty window, an empty weekday
    /// list, a minimum age over a year, a maximum version of another scheme
    /// than the version requirement, a back-off that cannot work.
    pub fn validate(&self) -> Result<(), Error> {
        if let Some(window) = &self.window {
            UpdateWindow::new(window.start(), window.end())?;
        }
        if self.allowed_weekdays.as_ref().is_some_and(Vec::is_empty) {
            return Err(Error::InvalidPolicy {
                field: "allowed_weekdays",
                reason: "is empty, so no update could ever start; list at least one day, or \
                         set auto_update to false to stop updates"
                    .into(),
            });
        }
        if self
            .minimum_release_age
            .is_some_and(|age| age > MAXIMUM_MINIMUM_AGE)
        {
            return Err(Error::InvalidPolicy {
                field: "minimum_release_age",
                reason: "is over a year; the value is in seconds".into(),
            });
        }
        if let (Some(maximum), Some(requirement)) =
            (&self.maximum_version, &self.version_requirement)
            && maximum.scheme() != requirement.scheme()
        {
            return Err(Error::InvalidPolicy {
                field: "version_requirement",
                reason: format!(
                    "requirement \"{requirement}\" is for {} versions but maximum_version {maximum} is {}, so \
                     no release could satisfy both; use one scheme",
                    requirement.scheme(),
                    maximum.scheme()
                ),
            });
        }
        self.quarantine_backoff.validate()
    }

    /// [`UpdatePolicy::validate`], and also rejects a window shorter than
    /// the longest gap between two checks (`interval + jitter`) of
    /// `schedule`: checks could then step over the window and never update.
    pub fn validate_with_schedule(&self, schedule: &CheckScheduleConfig) -> Result<(), Error> {
        self.validate()?;
        schedule.validate()?;
        if let Some(window) = &self.window {
            let longest_gap = schedule.interval.saturating_add(schedule.jitter);
            let open = window.length().to_std().unwrap_or_default();
            if open < longest_gap {
                return Err(Error::InvalidPolicy {
                    field: "window",
                    reason: format!(
                        "{window} is open for {} but checks can be {} apart, so a day's window \
                         may pass without a check; widen the window or check more often",
                        crate::duration_secs::human(open.as_secs()),
                        crate::duration_secs::human(longest_gap.as_secs()),
                    ),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn default_is_the_seed_policy_and_valid() {
        let policy = UpdatePolicy::default();
        assert_eq!(policy.channel, Channel::Stable);
        assert!(policy.auto_update);
        assert!(policy.window.is_none() && policy.hold.is_none());
        assert!(policy.validate().is_ok());
        assert!(
            policy
                .validate_with_schedule(&CheckScheduleConfig::default())
                .is_ok()
        );
    }

    #[test]
    fn validate_names_the_field_that_cannot_work() {
        let base = UpdatePolicy::default();
        let cases: Vec<(UpdatePolicy, &str)> = vec![
            (
                UpdatePolicy {
                    allowed_weekdays: Some(vec![]),
                    ..base.clone()
                },
                "allowed_weekdays",
            ),
            (
                UpdatePolicy {
                    minimum_release_age: Some(Duration::from_secs(400 * 24 * 3600)),
                    ..base.clone()
                },
                "minimum_release_age",
            ),
            (
                UpdatePolicy {
                    maximum_version: Some("20250101.1".parse().unwrap()),
                    version_requirement: Some(">=1".parse().unwrap()),
                    ..base.clone()
                },
                "version_requirement",
            ),
            (
                UpdatePolicy {
                    quarantine_backoff: QuarantineBackoff {
                        initial: Duration::ZERO,
                        maximum: Duration::from_secs(60),
                    },
                    ..base.clone()
                },
                "quarantine_backoff",
            ),
        ];
        for (policy, field) in cases {
            match policy.validate() {
                Err(Error::InvalidPolicy { field: got, .. }) => assert_eq!(got, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_window_shorter_than_the_check_gap_is_rejected() {
        let policy = UpdatePolicy {
            window: Some(UpdateWindow::from_hm(2, 0, 2, 30).unwrap()),
            ..UpdatePolicy::default()
        };
        let hourly = CheckScheduleConfig::default();
        let err = policy.validate_with_schedule(&hourly).unwrap_err();
        assert!(err.to_string().contains("widen the window"), "{err}");
        let every_ten_minutes = CheckScheduleConfig {
            interval: Duration::from_secs(600),
            jitter: Duration::from_secs(60),
        };
        assert!(policy.validate_with_schedule(&every_ten_minutes).is_ok());
    }

    #[test]
    fn holds_expire() {
        let t = |h| Utc.with_ymd_and_hms(2025, 1, 1, h, 0, 0).unwrap();
        let forever = Hold {
            reason: "incident".into(),
            expires_at: None,
        };
        let until_noon = Hold {
            reason: "freeze".into(),
            expires_at: Some(t(12)),
        };
        assert!(forever.is_active(t(23)));
        assert!(until_noon.is_active(t(11)));
        assert!(!until_noon.is_active(t(12)));
    }

    #[test]
    fn serde_fills_defaults_and_round_trips() {
        let policy: UpdatePolicy = serde_json::from_str(
            r#"{"channel":"latest","window":{"start":"22:00:00","end":"02:00:00"},
                "allowed_weekdays":["Sat","Sun"],"minimum_release_age_secs":86400}"#,
        )
        .unwrap();
        assert_eq!(policy.channel, Channel::Latest);
        assert!(policy.auto_update);
        assert_eq!(
            policy.minimum_release_age,
            Some(Duration::from_secs(86_400))
        );
        assert_eq!(
            policy.allowed_weekdays,
            Some(vec![Weekday::Sat, Weekday::Sun])
        );
        let json = serde_json::to_string(&policy).unwrap();
        assert_eq!(serde_json::from_str::<UpdatePolicy>(&json).unwrap(), policy);
    }
}
