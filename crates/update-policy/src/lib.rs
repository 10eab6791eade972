//! The explainable update-eligibility decision of the ECS self-updater.
//!
//! A pure crate: **no I/O, no clock reads** (time is an argument), no async.
//! The orchestrator reads the current state and the quarantine store, asks
//! the release source, then calls [`evaluate`], which returns a
//! [`Decision`]: [`Decision::Update`] or [`Decision::Skip`] listing
//! **every** failing rule as a [`SkipReason`] with its evidence. Each
//! reason has a `Display` sentence for humans, a serde form for
//! `--output json`, and a stable [`SkipReason::code`] for metrics labels.
//!
//! - Rules from the seed: channel, auto-update, infrastructure version
//!   (a mismatch is [`SkipReason::InfrastructureUpdateRequired`] with the
//!   template to apply), newer version, different image.
//! - Optional rules in [`UpdatePolicy`], all off by default: a daily UTC
//!   [`UpdateWindow`] (may cross midnight), allowed weekdays, minimum release
//!   age, maximum version, a [`VersionRequirement`] (semver or calendar
//!   prefix), an operator [`Hold`].
//! - State-driven rules in [`CurrentState`]: quarantined releases
//!   ([`QuarantineEntry`], with the [`QuarantineBackoff`] that computes
//!   their `retry_after`) and manual rollbacks
//!   ([`SkipReason::HeldAfterManualRollback`]).
//! - Staged rollout waves: a release's
//!   [`WaveSchedule`](runner_version::WaveSchedule) opens to a growing share
//!   of the fleet over time; the runner's stable [`WaveSeed`] (in
//!   [`CurrentState`]) says which wave it is in, and until that wave opens
//!   the decision is [`SkipReason::WaveNotOpen`].
//! - [`CheckSchedule`]: when to check, an interval with seeded, bounded
//!   jitter.
//!
//! This crate has no backends: the quarantine and hold stores live in the
//! orchestrator; their contents are inputs here.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use runner_version::{Channel, ImageRef, Release};
//! use update_policy::{evaluate, CurrentState, Decision, UpdatePolicy, UpdateWindow};
//!
//! let digest = |n: u8| format!("sha256:{}", format!("{n:02x}").repeat(32));
//! let image = |tag: &str, n: u8| -> ImageRef {
//!     format!("registry.example.com/runner:{tag}@{}", digest(n)).parse().unwrap()
//! };
//!
//! let current = CurrentState::new("20250101.1".parse()?, image("20250101.1", 1), "7".into());
//! let release = Release {
//!     version: "20250110.2".parse()?,
//!     channel: Channel::Stable,
//!     image: image("20250110.2", 2),
//!     proxy_image: None,
//!     infra_version: Some("8".into()),
//!     template_url: "https://example.com/runner-v8.json".into(),
//!     template_sha256: None,
//!     released_at: Some(Utc.with_ymd_and_hms(2025, 1, 10, 9, 0, 0).unwrap()),
//!     expires: None,
//!     waves: Default::default(),
//! };
//! let policy = UpdatePolicy {
//!     window: Some(UpdateWindow::from_hm(22, 0, 2, 0)?),
//!     ..UpdatePolicy::default()
//! };
//! let now = Utc.with_ymd_and_hms(2025, 1, 10, 12, 0, 0).unwrap();
//!
//! let decision = evaluate(&current, &release, &policy, now);
//! println!("{decision}");
//! assert_eq!(
//!     decision.to_string(),
//!     "Skip the update: the release needs infrastructure version 8 but 7 is deployed; \
//!      apply the template https://example.com/runner-v8.json first; \
//!      now is outside the update window 22:00-02:00 UTC, which opens next at 2025-01-10T22:00:00Z."
//! );
//! assert_eq!(decision.reason_codes(), ["infrastructure_update_required", "outside_update_window"]);
//! assert!(matches!(decision, Decision::Skip { .. }));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

mod current;
mod decision;
mod duration_secs;
mod error;
mod policy;
mod quarantine;
mod reason;
mod requirement;
mod schedule;
mod wave_seed;
mod window;

pub use current::CurrentState;
pub use decision::{Decision, evaluate};
pub use error::Error;
pub use policy::{Hold, UpdatePolicy};
pub use quarantine::{QuarantineBackoff, QuarantineEntry};
pub use reason::{ComparedWith, SkipReason};
pub use requirement::VersionRequirement;
pub use schedule::{CheckSchedule, CheckScheduleConfig};
pub use wave_seed::WaveSeed;
pub use window::UpdateWindow;
