//! The ECS self-updater's update cycle, composed from the domain crates:
//!
//! ```text
//! source ──► policy ──► lock ──► journal ──► rollout ──► quarantine / report
//! (runner-version) (update-policy) (update-lock)  (fenced)  (ecs-rollout)
//! ```
//!
//! [`Updater::run_once`] performs one cycle: resume an unfinished update
//! found in the [`Journal`], or check the [`ReleaseSource`], read the
//! current state from ECS and the stack, [`evaluate`](update_policy::evaluate)
//! the policy, take the lease lock, deploy the release to every [`Target`]
//! in order (a failure of a later target rolls the earlier ones back, so
//! the fleet never ends on a mixed release), quarantine a failed release,
//! record a success, notify. Every step is journalled *before* it is acted
//! on and every journal write is fenced by the lock's token: a stale holder
//! is stopped before it touches ECS. [`Updater::run`] loops on a
//! [`CheckSchedule`](update_policy::CheckSchedule), never two cycles at
//! once.
//!
//! Metrics (through the `metrics` facade): `runner_updater_checks_total{result}`,
//! `runner_updater_decisions_total{reason}`, `runner_updater_updates_total{outcome}`,
//! `runner_updater_deployment_duration_seconds`, `runner_updater_lock_wait_seconds`,
//! `runner_updater_version_info{current,available}`,
//! `runner_updater_last_check_timestamp_seconds`, `runner_updater_blocked{required_infra}`,
//! `runner_updater_quarantined{version}`.
//!
//! See `Updater` for a complete example on the simulator.

mod error;
mod fs;
mod gate;
pub mod journal;
mod metrics_names;
mod notify;
mod quarantine;
mod report;
mod target;
mod updater;

#[cfg(feature = "aws")]
pub mod dynamodb;

pub use error::{BoxError, Error, ErrorClass, Result};
pub use journal::{
    Fence, FileJournal, Journal, JournalEntry, JournalStep, MemoryJournal, TargetProgress,
};
pub use metrics_names::*;
pub use notify::{
    NoNotifier, Notification, Notifier, Reporter, ServiceTagReporter, VERSION_TAG, WebhookNotifier,
};
pub use quarantine::{
    FileQuarantine, LastOutcome, MemoryQuarantine, QuarantineStore, Revision, RunnerRecord, modify,
};
pub use report::{CycleOutcome, CycleReport, TargetReport};
pub use target::{DEFAULT_VERSION_LABEL, ReleaseImage, Target, validate_targets};
pub use updater::{InfraVersionSource, Updater, UpdaterBuilder, UpdaterConfig};
