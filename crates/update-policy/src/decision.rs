//! The decision and the rules that make it.

use std::fmt;

use chrono::{DateTime, Datelike, TimeDelta, Utc};
use runner_version::{FleetPosition, ImageRef, InfraVersion, Release, Version};
use serde::{Deserialize, Serialize};

use crate::{ComparedWith, CurrentState, SkipReason, UpdatePolicy, WaveSeed};

/// The outcome of [`evaluate`]: update, or skip with every reason.
///
/// Serialises as `{"decision":"update",...}` or
/// `{"decision":"skip","reasons":[{"code":...},...]}`; `Display` is one
/// sentence for a human.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// Every rule holds: deploy `image`.
    Update {
        /// The running version.
        from: Version,
        /// The release's version.
        to: Version,
        /// The release's runner image.
        image: ImageRef,
    },
    /// At least one rule fails; `reasons` lists every failing rule, in rule
    /// order (never empty when made by [`evaluate`]).
    Skip {
        /// Every failing rule.
        reasons: Vec<SkipReason>,
    },
}

impl Decision {
    /// Whether the decision is [`Decision::Update`].
    pub fn is_update(&self) -> bool {
        matches!(self, Self::Update { .. })
    }

    /// The skip reasons (empty for an update).
    pub fn reasons(&self) -> &[SkipReason] {
        match self {
            Self::Update { .. } => &[],
            Self::Skip { reasons } => reasons,
        }
    }

    /// The infrastructure version and template an operator must apply
    /// first, when a reason is [`SkipReason::InfrastructureUpdateRequired`]
    /// (the orchestrator reports "blocked: apply this template").
    pub fn infrastructure_update_required(&self) -> Option<(&InfraVersion, &str)> {
        self.reasons().iter().find_map(|reason| match reason {
            SkipReason::InfrastructureUpdateRequired {
                required,
                template_url,
                ..
            } => Some((required, template_url.as_str())),
            _ => None,
        })
    }

    /// The reason codes ([`SkipReason::code`]), for metrics labels.
    pub fn reason_codes(&self) -> Vec<&'static str> {
        self.reasons().iter().map(SkipReason::code).collect()
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Update { from, to, image } => {
                write!(f, "Update from {from} to {to} (image {image}).")
            }
            Self::Skip { reasons } if reasons.is_empty() => {
                f.write_str("Skip the update (no reason was recorded).")
            }
            Self::Skip { reasons } => {
                f.write_str("Skip the update: ")?;
                for (i, reason) in reasons.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{reason}")?;
                }
                f.write_str(".")
            }
        }
    }
}

/// Decides whether the runner in `current` may update to `candidate` under
/// `policy` at `now`. Pure: no I/O, no clock; equal inputs give equal
/// decisions.
///
/// Rules, in the order their reasons are listed:
/// 1. auto-update is enabled;
/// 2. the release is on the policy's channel;
/// 3. the release states its infrastructure version and it equals the
///    running one (else "apply this template");
/// 4. the release is newer than the running version (same scheme);
/// 5. the release image differs from the running one (by digest when both
///    have one);
/// 6. the release metadata has not expired;
/// 7. no active operator hold;
/// 8. no manual rollback (running version below the highest version run
///    successfully);
/// 9. the release (version or image digest) is not in active quarantine;
/// 10. the release is not above the maximum version;
/// 11. the release satisfies the version requirement;
/// 12. the release is at least the minimum age old (a release without a
///     date fails when a minimum age is set);
/// 13. the runner's rollout wave has opened, when the release has waves:
///     the wave whose share covers the runner's [`WaveSeed`] position (the
///     last wave for a runner without a seed) opens `start_after` the
///     release date (a release with waves but no date fails);
/// 14. now is inside the update window;
/// 15. the day is an allowed weekday (for a window crossing midnight, the
///     day the window opened).
pub fn evaluate(
    current: &CurrentState,
    candidate: &Release,
    policy: &UpdatePolicy,
    now: DateTime<Utc>,
) -> Decision {
    let mut reasons = Vec::new();

    if !policy.auto_update {
        reasons.push(SkipReason::AutoUpdateDisabled);
    }
    if candidate.channel != policy.channel {
        reasons.push(SkipReason::ChannelMismatch {
            release_channel: candidate.channel.clone(),
            configured_channel: policy.channel.clone(),
        });
    }
    match &candidate.infra_version {
        None => reasons.push(SkipReason::InfrastructureVersionUnknown {
            running: current.infra_version.clone(),
            template_url: candidate.template_url.clone(),
        }),
        Some(required) if *required != current.infra_version => {
            reasons.push(SkipReason::InfrastructureUpdateRequired {
                required: required.clone(),
                running: current.infra_version.clone(),
                template_url: candidate.template_url.clone(),
            })
        }
        Some(_) => {}
    }
    match candidate.version.is_newer_than(&current.version) {
        Ok(true) => {}
        Ok(false) => reasons.push(SkipReason::NotNewer {
            candidate: candidate.version.clone(),
            running: current.version.clone(),
        }),
        Err(_) => reasons.push(SkipReason::MixedVersionSchemes {
            version: candidate.version.clone(),
            other: current.version.clone(),
            compared_with: ComparedWith::RunningVersion,
        }),
    }
    if candidate.image.same_image(&current.image) {
        reasons.push(SkipReason::SameImage {
            image: candidate.image.clone(),
        });
    }
    if let Some(expired_at) = candidate.expires
        && expired_at <= now
    {
        reasons.push(SkipReason::ReleaseExpired { expired_at });
    }
    if let Some(hold) = &policy.hold
        && hold.is_active(now)
    {
        reasons.push(SkipReason::Held {
            reason: hold.reason.clone(),
            expires_at: hold.expires_at,
        });
    }
    if let Some(highest) = &current.highest_successful_version {
        match highest.is_newer_than(&current.version) {
            Ok(false) => {}
            Ok(true) => reasons.push(SkipReason::HeldAfterManualRollback {
                running: current.version.clone(),
                highest_successful: highest.clone(),
            }),
            Err(_) => reasons.push(SkipReason::MixedVersionSchemes {
                version: current.version.clone(),
                other: highest.clone(),
                compared_with: ComparedWith::HighestSuccessfulVersion,
            }),
        }
    }
    for entry in &current.quarantine {
        if entry.matches(candidate) && entry.is_active(now) {
            reasons.push(SkipReason::Quarantined {
                candidate: candidate.version.clone(),
                version: entry.version.clone(),
                reason: entry.reason.clone(),
                attempts: entry.attempts,
                retry_after: entry.retry_after,
            });
        }
    }
    if let Some(maximum) = &policy.maximum_version {
        match candidate.version.is_newer_than(maximum) {
            Ok(false) => {}
            Ok(true) => reasons.push(SkipReason::AboveMaximumVersion {
                candidate: candidate.version.clone(),
                maximum: maximum.clone(),
            }),
            Err(_) => reasons.push(SkipReason::MixedVersionSchemes {
                version: candidate.version.clone(),
                other: maximum.clone(),
                compared_with: ComparedWith::MaximumVersion,
            }),
        }
    }
    if let Some(requirement) = &policy.version_requirement
        && !requirement.matches(&candidate.version)
    {
        reasons.push(SkipReason::VersionRequirementNotMet {
            candidate: candidate.version.clone(),
            requirement: requirement.clone(),
        });
    }
    if let Some(minimum_age) = policy.minimum_release_age {
        let minimum_age_secs = minimum_age.as_secs();
        match candidate.released_at {
            None => reasons.push(SkipReason::ReleaseDateUnknown { minimum_age_secs }),
            Some(released_at) => {
                let eligible_at = TimeDelta::from_std(minimum_age)
                    .ok()
                    .and_then(|age| released_at.checked_add_signed(age))
                    .unwrap_or(DateTime::<Utc>::MAX_UTC);
                if now < eligible_at {
                    reasons.push(SkipReason::ReleaseTooNew {
                        released_at,
                        minimum_age_secs,
                        eligible_at,
                    });
                }
            }
        }
    }
    if !candidate.waves.is_empty() {
        match candidate.released_at {
            None => reasons.push(SkipReason::WaveScheduleUndated {
                waves: candidate.waves.waves().len(),
            }),
            Some(released_at) => {
                let position = current.wave_seed.map(WaveSeed::position);
                if let Some(assignment) = candidate
                    .waves
                    .wave_of(position.unwrap_or(FleetPosition::LAST))
                {
                    let opens_at = assignment.wave.opens_at(released_at);
                    if now < opens_at {
                        reasons.push(SkipReason::WaveNotOpen {
                            wave: assignment.number,
                            of: assignment.of,
                            fleet_percentage: assignment.wave.fleet_percentage,
                            position,
                            released_at,
                            opens_at,
                        });
                    }
                }
            }
        }
    }
    if let Some(window) = &policy.window
        && !window.contains(now)
    {
        reasons.push(SkipReason::OutsideUpdateWindow {
            window: *window,
            next_opens_at: window.next_open_after(now),
        });
    }
    if let Some(allowed) = &policy.allowed_weekdays {
        let day = policy
            .window
            .and_then(|window| window.opened_on(now))
            .unwrap_or_else(|| now.date_naive())
            .weekday();
        if !allowed.contains(&day) {
            reasons.push(SkipReason::WeekdayNotAllowed {
                weekday: day,
                allowed: allowed.clone(),
            });
        }
    }

    if reasons.is_empty() {
        Decision::Update {
            from: current.version.clone(),
            to: candidate.version.clone(),
            image: candidate.image.clone(),
        }
    } else {
        Decision::Skip { reasons }
    }
}
