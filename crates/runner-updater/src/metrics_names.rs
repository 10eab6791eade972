//! The metric names this crate emits, in Prometheus style.

/// Counter: checks, by `result` (`ok`, `error`).
pub const METRIC_CHECKS: &str = "runner_updater_checks_total";
/// Counter: decisions, by `reason` (`update` or a skip reason code).
pub const METRIC_DECISIONS: &str = "runner_updater_decisions_total";
/// Counter: finished updates, by `outcome` (a cycle outcome code).
pub const METRIC_UPDATES: &str = "runner_updater_updates_total";
/// Histogram: seconds from lock to verdict of an update.
pub const METRIC_DEPLOYMENT_DURATION: &str = "runner_updater_deployment_duration_seconds";
/// Histogram: seconds spent waiting for the lock.
pub const METRIC_LOCK_WAIT: &str = "runner_updater_lock_wait_seconds";
/// Gauge (1): the running and the available version, as labels
/// `current`, `available`.
pub const METRIC_VERSION_INFO: &str = "runner_updater_version_info";
/// Gauge: Unix time of the last check.
pub const METRIC_LAST_CHECK: &str = "runner_updater_last_check_timestamp_seconds";
/// Gauge: 1 while blocked on infrastructure version `required_infra`, else 0.
pub const METRIC_BLOCKED: &str = "runner_updater_blocked";
/// Gauge: 1 for each quarantined `version`.
pub const METRIC_QUARANTINED: &str = "runner_updater_quarantined";
/// Counter: journal writes refused by the fence.
pub const METRIC_FENCED: &str = "runner_updater_journal_fenced_total";
/// Counter: notifications that could not be delivered.
pub const METRIC_NOTIFY_FAILURES: &str = "runner_updater_notification_failures_total";
