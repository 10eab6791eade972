//! Why an update is skipped.

use std::fmt;

use chrono::{DateTime, Utc, Weekday};
use runner_version::{Channel, FleetPercentage, FleetPosition, ImageRef, InfraVersion, Version};
use serde::{Deserialize, Serialize};

use crate::{UpdateWindow, VersionRequirement, duration_secs::human};

/// Which version a release (or the running version) was compared with when
/// the schemes differed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ComparedWith {
    /// The candidate release against the running version.
    RunningVersion,
    /// The candidate release against the policy's maximum version.
    MaximumVersion,
    /// The running version against the highest version this runner ran
    /// successfully (the manual-rollback check).
    HighestSuccessfulVersion,
}

impl fmt::Display for ComparedWith {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::RunningVersion => "the running version",
            Self::MaximumVersion => "the configured maximum version",
            Self::HighestSuccessfulVersion => "the highest version this runner ran successfully",
        })
    }
}

/// One failed rule of [`evaluate`](crate::evaluate), with its evidence.
///
/// Serialises with a `code` tag equal to [`SkipReason::code`]; `Display` is
/// one sentence for a human (lower-case, no final full stop, so that
/// [`Decision`](crate::Decision) can list several).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
#[non_exhaustive]
pub enum SkipReason {
    /// The policy turns automatic updates off.
    AutoUpdateDisabled,
    /// The release is published on another channel than the runner follows.
    ChannelMismatch {
        /// The release's channel.
        release_channel: Channel,
        /// The channel the policy follows.
        configured_channel: Channel,
    },
    /// The release needs another infrastructure version: an operator must
    /// apply `template_url` first (never done automatically).
    InfrastructureUpdateRequired {
        /// The infrastructure version the release needs.
        required: InfraVersion,
        /// The infrastructure version deployed now.
        running: InfraVersion,
        /// The CloudFormation template of the required version.
        template_url: String,
    },
    /// The release source does not say which infrastructure version the
    /// release needs; the policy refuses to guess.
    InfrastructureVersionUnknown {
        /// The infrastructure version deployed now.
        running: InfraVersion,
        /// The release's CloudFormation template, to check by hand.
        template_url: String,
    },
    /// The release is not newer than the running version (equal or older).
    NotNewer {
        /// The release's version.
        candidate: Version,
        /// The running version.
        running: Version,
    },
    /// Two versions of different schemes (calendar, semver) had to be
    /// compared; the policy does not guess an order.
    MixedVersionSchemes {
        /// The version being judged (the candidate's, or the running one for
        /// [`ComparedWith::HighestSuccessfulVersion`]).
        version: Version,
        /// The version it was compared with.
        other: Version,
        /// What `other` is.
        compared_with: ComparedWith,
    },
    /// The release's image is the image running now (same digest).
    SameImage {
        /// The image.
        image: ImageRef,
    },
    /// The release metadata expired (freeze-attack protection); the release
    /// source must publish fresh metadata.
    ReleaseExpired {
        /// When the metadata expired.
        expired_at: DateTime<Utc>,
    },
    /// An operator holds the runner at its current version.
    Held {
        /// The operator's reason.
        reason: String,
        /// When the hold lifts, if ever.
        expires_at: Option<DateTime<Utc>>,
    },
    /// The running version is lower than one this runner already ran
    /// successfully: an operator rolled back by hand, and the updater does
    /// not undo a human until the operator clears it.
    HeldAfterManualRollback {
        /// The running version.
        running: Version,
        /// The highest version this runner ran successfully.
        highest_successful: Version,
    },
    /// The release (by version or image digest) failed before and its
    /// back-off has not expired.
    Quarantined {
        /// The release's version.
        candidate: Version,
        /// The quarantined version (differs from `candidate` when the entry
        /// matched by image digest).
        version: Version,
        /// Why it failed.
        reason: String,
        /// How many times it failed.
        attempts: u32,
        /// When it may be tried again.
        retry_after: DateTime<Utc>,
    },
    /// The release is above the policy's maximum version.
    AboveMaximumVersion {
        /// The release's version.
        candidate: Version,
        /// The configured maximum.
        maximum: Version,
    },
    /// The release does not satisfy the policy's version requirement.
    VersionRequirementNotMet {
        /// The release's version.
        candidate: Version,
        /// The configured requirement.
        requirement: VersionRequirement,
    },
    /// The release is younger than the policy's minimum age.
    ReleaseTooNew {
        /// When the release was published.
        released_at: DateTime<Utc>,
        /// The configured minimum age, in seconds.
        minimum_age_secs: u64,
        /// When the release becomes old enough.
        eligible_at: DateTime<Utc>,
    },
    /// A minimum age is configured but the release has no release date.
    ReleaseDateUnknown {
        /// The configured minimum age, in seconds.
        minimum_age_secs: u64,
    },
    /// The release rolls out in waves and this runner's wave has not
    /// opened yet.
    WaveNotOpen {
        /// The runner's wave, counting from 1.
        wave: usize,
        /// How many waves the release has.
        of: usize,
        /// The (cumulative) share of the fleet the wave opens to.
        fleet_percentage: FleetPercentage,
        /// The runner's position in the fleet; `None` when the runner has
        /// no [`WaveSeed`](crate::WaveSeed) and so waits for the last wave.
        position: Option<FleetPosition>,
        /// When the release was published (the waves count from it).
        released_at: DateTime<Utc>,
        /// When the runner's wave opens.
        opens_at: DateTime<Utc>,
    },
    /// The release has rollout waves but no release date to measure them
    /// from; no wave can open.
    WaveScheduleUndated {
        /// How many waves the release has.
        waves: usize,
    },
    /// Now is outside the daily update window.
    OutsideUpdateWindow {
        /// The window.
        window: UpdateWindow,
        /// When it opens next.
        next_opens_at: DateTime<Utc>,
    },
    /// Today (or the day the current window opened) is not an allowed
    /// weekday.
    WeekdayNotAllowed {
        /// The day judged.
        weekday: Weekday,
        /// The allowed days.
        allowed: Vec<Weekday>,
    },
}

impl SkipReason {
    /// A stable `snake_case` code for metrics labels and scripts; equal to
    /// the `code` tag of the serialised form.
    pub fn code(&self) -> &'static str {
        match self {
            Self::AutoUpdateDisabled => "auto_update_disabled",
            Self::ChannelMismatch { .. } => "channel_mismatch",
            Self::InfrastructureUpdateRequired { .. } => "infrastructure_update_required",
            Self::InfrastructureVersionUnknown { .. } => "infrastructure_version_unknown",
            Self::NotNewer { .. } => "not_newer",
            Self::MixedVersionSchemes { .. } => "mixed_version_schemes",
            Self::SameImage { .. } => "same_image",
            Self::ReleaseExpired { .. } => "release_expired",
            Self::Held { .. } => "held",
            Self::HeldAfterManualRollback { .. } => "held_after_manual_rollback",
            Self::Quarantined { .. } => "quarantined",
            Self::AboveMaximumVersion { .. } => "above_maximum_version",
            Self::VersionRequirementNotMet { .. } => "version_requirement_not_met",
            Self::ReleaseTooNew { .. } => "release_too_new",
            Self::ReleaseDateUnknown { .. } => "release_date_unknown",
            Self::WaveNotOpen { .. } => "wave_not_open",
            Self::WaveScheduleUndated { .. } => "wave_schedule_undated",
            Self::OutsideUpdateWindow { .. } => "outside_update_window",
            Self::WeekdayNotAllowed { .. } => "weekday_not_allowed",
        }
    }

    /// Every code [`SkipReason::code`] can return, for pre-registering
    /// metrics labels.
    pub const ALL_CODES: &'static [&'static str] = &[
        "auto_update_disabled",
        "channel_mismatch",
        "infrastructure_update_required",
        "infrastructure_version_unknown",
        "not_newer",
        "mixed_version_schemes",
        "same_image",
        "release_expired",
        "held",
        "held_after_manual_rollback",
        "quarantined",
        "above_maximum_version",
        "version_requirement_not_met",
        "release_too_new",
        "release_date_unknown",
        "wave_not_open",
        "wave_schedule_undated",
        "outside_update_window",
        "weekday_not_allowed",
    ];
}

fn rfc3339(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

fn days(list: &[Weekday]) -> String {
    let names: Vec<String> = list.iter().map(Weekday::to_string).collect();
    names.join(", ")
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AutoUpdateDisabled => f.write_str("automatic updates are disabled in the policy"),
            Self::ChannelMismatch {
                release_channel,
                configured_channel,
            } => write!(
                f,
                "the release is on the {release_channel} channel but this runner follows \
                 {configured_channel}"
            ),
            Self::InfrastructureUpdateRequired {
                required,
                running,
                template_url,
            } => write!(
                f,
                "the release needs infrastructure version {required} but {running} is deployed; \
                 apply the template {template_url} first"
            ),
            Self::InfrastructureVersionUnknown {
                running,
                template_url,
            } => write!(
                f,
                "the release source does not say which infrastructure version the release \
                 needs (deployed: {running}); check the template {template_url} by hand"
            ),
            Self::NotNewer { candidate, running } if candidate == running => {
                write!(f, "version {candidate} is already running")
            }
            Self::NotNewer { candidate, running } => write!(
                f,
                "release {candidate} is not newer than the running version {running}"
            ),
            Self::MixedVersionSchemes {
                version,
                other,
                compared_with,
            } => write!(
                f,
                "version {version} ({}) cannot be compared with {compared_with} {other} ({}); \
                 use one versioning scheme",
                version.scheme(),
                other.scheme()
            ),
            Self::SameImage { image } => {
                write!(f, "the release's image {image} is already running")
            }
            Self::ReleaseExpired { expired_at } => write!(
                f,
                "the release metadata expired at {}; the release source must publish fresh \
                 metadata",
                rfc3339(expired_at)
            ),
            Self::Held {
                reason,
                expires_at: Some(expiry),
            } => write!(
                f,
                "an operator holds this runner at its current version until {} ({reason})",
                rfc3339(expiry)
            ),
            Self::Held {
                reason,
                expires_at: None,
            } => write!(
                f,
                "an operator holds this runner at its current version until the hold is lifted \
                 ({reason})"
            ),
            Self::HeldAfterManualRollback {
                running,
                highest_successful,
            } => write!(
                f,
                "an operator rolled back from {highest_successful} to {running} by hand; \
                 updates resume once the operator clears the rollback"
            ),
            Self::Quarantined {
                candidate,
                version,
                reason,
                attempts,
                retry_after,
            } => {
                if candidate == version {
                    write!(f, "release {version} is quarantined")?;
                } else {
                    write!(
                        f,
                        "release {candidate} has the image of release {version}, which is \
                         quarantined"
                    )?;
                }
                write!(
                    f,
                    " after {attempts} failed attempt{} ({reason}) until {}",
                    if *attempts == 1 { "" } else { "s" },
                    rfc3339(retry_after)
                )
            }
            Self::AboveMaximumVersion { candidate, maximum } => write!(
                f,
                "release {candidate} is above the configured maximum version {maximum}"
            ),
            Self::VersionRequirementNotMet {
                candidate,
                requirement,
            } => write!(
                f,
                "release {candidate} does not satisfy the version requirement \"{requirement}\""
            ),
            Self::ReleaseTooNew {
                released_at,
                minimum_age_secs,
                eligible_at,
            } => write!(
                f,
                "the release was published at {} and must be {} old, so it is eligible from {}",
                rfc3339(released_at),
                human(*minimum_age_secs),
                rfc3339(eligible_at)
            ),
            Self::ReleaseDateUnknown { minimum_age_secs } => write!(
                f,
                "the release has no release date, so its minimum age of {} cannot be checked",
                human(*minimum_age_secs)
            ),
            Self::WaveNotOpen {
                wave,
                of,
                fleet_percentage,
                position: Some(position),
                opens_at,
                ..
            } => write!(
                f,
                "the release rolls out in {of} waves and this runner, at position {position} of \
                 the fleet, is in wave {wave} (the first {fleet_percentage} of the fleet), which \
                 opens at {}",
                rfc3339(opens_at)
            ),
            Self::WaveNotOpen {
                wave,
                of,
                opens_at,
                position: None,
                ..
            } => write!(
                f,
                "the release rolls out in {of} waves and this runner has no wave seed, so it \
                 waits for the last wave (wave {wave}, the whole fleet), which opens at {}; give \
                 the runner an identity to take its place in an earlier wave",
                rfc3339(opens_at)
            ),
            Self::WaveScheduleUndated { waves } => write!(
                f,
                "the release has {waves} rollout wave{} but no release date to count them from, \
                 so no wave can open; the publisher must set released_at",
                if *waves == 1 { "" } else { "s" }
            ),
            Self::OutsideUpdateWindow {
                window,
                next_opens_at,
            } => write!(
                f,
                "now is outside the update window {window}, which opens next at {}",
                rfc3339(next_opens_at)
            ),
            Self::WeekdayNotAllowed { weekday, allowed } => write!(
                f,
                "updates may not start on {weekday} (allowed: {})",
                days(allowed)
            ),
        }
    }
}
