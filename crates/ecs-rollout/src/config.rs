//! Configuration of a rollout.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{Error, Result, RetryPolicy};

/// Which service to update.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct RolloutTarget {
    /// Cluster name or ARN.
    pub cluster: String,
    /// Service name or ARN.
    pub service: String,
}

impl RolloutTarget {
    /// A target from names.
    pub fn new(cluster: impl Into<String>, service: impl Into<String>) -> Self {
        Self {
            cluster: cluster.into(),
            service: service.into(),
        }
    }
}

/// What to do when the service's deployment configuration is not the safe
/// rolling one (minimum healthy 100 %, maximum 200 %, circuit breaker
/// enabled with rollback).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentConfigurationPolicy {
    /// Send the safe configuration with our `UpdateService` (default).
    #[default]
    Fix,
    /// Deploy with the service's configuration; report the problems.
    Warn,
    /// Refuse with [`Error::UnsafeDeploymentConfiguration`].
    Refuse,
}

/// How a deployment is watched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MonitorConfig {
    /// First and shortest poll interval; used again whenever something
    /// changes and once every task of the deployment runs (ECS completes
    /// it next: the verdict then comes within this of ECS's completion).
    /// Default 5 s.
    pub poll_min: Duration,
    /// Longest poll interval while nothing changes. Default 30 s.
    pub poll_max: Duration,
    /// Growth of the interval per unchanged poll. Default 1.5.
    pub poll_growth: f64,
    /// Give up on a deployment that has not completed after this long
    /// (and roll back). Default 30 min.
    pub timeout: Duration,
    /// After completion, every task must stay running (and every essential
    /// health-checked container healthy) this long before `Succeeded`: it
    /// catches tasks that crash right after ECS called the deployment
    /// complete (containers without a health check count as healthy once
    /// RUNNING). Default 60 s; `Duration::ZERO` turns it off.
    pub bake_time: Duration,
    /// Stopped and running tasks are inspected on a sign of trouble (ECS
    /// counted a failed task, or fewer tasks run; with the circuit breaker
    /// off, any change of the counts), at the completion, through the bake,
    /// and at least this often; the service deployment is read at least
    /// this often too (a stop that only it shows). Default 60 s.
    pub task_inspection_interval: Duration,
    /// A stopped task whose reason contains one of these fails the
    /// deployment at once, when the reason is deterministic (image or tag
    /// not found, manifest unknown, access denied: see
    /// [`classify_stopped_reason`](crate::classify_stopped_reason)); a
    /// transient one (throttling, 5xx, timeouts) counts as a failed task.
    /// Default `CannotPullContainerError`, `ResourceInitializationError`.
    pub fail_fast_reasons: Vec<String>,
    /// Failed tasks at which we fail a deployment whose service has the
    /// circuit breaker off. `None` (default) = the breaker's own threshold.
    pub failed_task_threshold: Option<u32>,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            poll_min: Duration::from_secs(5),
            poll_max: Duration::from_secs(30),
            poll_growth: 1.5,
            timeout: Duration::from_secs(30 * 60),
            bake_time: Duration::from_secs(60),
            task_inspection_interval: Duration::from_secs(60),
            fail_fast_reasons: vec![
                "CannotPullContainerError".into(),
                "ResourceInitializationError".into(),
            ],
            failed_task_threshold: None,
        }
    }
}

impl MonitorConfig {
    /// Rejects a configuration that cannot work.
    pub fn validate(&self) -> Result<()> {
        if self.poll_min.is_zero() {
            return Err(Error::InvalidConfig {
                field: "MonitorConfig::poll_min",
                reason: "must be positive".into(),
            });
        }
        if self.poll_max < self.poll_min {
            return Err(Error::InvalidConfig {
                field: "MonitorConfig::poll_max",
                reason: format!(
                    "{:?} is shorter than poll_min {:?}",
                    self.poll_max, self.poll_min
                ),
            });
        }
        if !(self.poll_growth >= 1.0 && self.poll_growth.is_finite()) {
            return Err(Error::InvalidConfig {
                field: "MonitorConfig::poll_growth",
                reason: format!("{} must be a finite number ≥ 1", self.poll_growth),
            });
        }
        if self.timeout <= self.poll_min {
            return Err(Error::InvalidConfig {
                field: "MonitorConfig::timeout",
                reason: "must be longer than poll_min".into(),
            });
        }
        if self.task_inspection_interval.is_zero() {
            return Err(Error::InvalidConfig {
                field: "MonitorConfig::task_inspection_interval",
                reason: "must be positive".into(),
            });
        }
        if self.failed_task_threshold == Some(0) {
            return Err(Error::InvalidConfig {
                field: "MonitorConfig::failed_task_threshold",
                reason: "0 would fail every deployment; use None for the breaker's threshold"
                    .into(),
            });
        }
        Ok(())
    }
}

/// Everything [`Rollout`](crate::Rollout) needs besides the backend and
/// the clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RolloutConfig {
    /// Name of the container whose image is replaced. Default `runner`.
    pub runner_container: String,
    /// Docker label of the runner container that carries its version.
    /// Default `org.opencontainers.image.version`; `None` = no label
    /// (the version is read from the image tag).
    pub version_label: Option<String>,
    /// Unsafe deployment configuration: fix, warn or refuse. Default Fix.
    pub deployment_configuration_policy: DeploymentConfigurationPolicy,
    /// Whether the Fix policy may raise a `maximumPercent` below 200 (which
    /// makes ECS replace tasks in batches: slower, not unsafe). Default
    /// `false`: it is reported as a problem and left as it is, since it may
    /// be set on purpose (capacity, CloudFormation).
    pub fix_maximum_percent: bool,
    /// When another deployment is in progress: `None` (default) refuses
    /// with [`Error::Busy`]; `Some(d)` waits up to `d` for it to finish.
    pub wait_for_idle: Option<Duration>,
    /// How our deployment is watched.
    pub monitor: MonitorConfig,
    /// How long a rollback deployment may take. Default 30 min.
    pub rollback_timeout: Duration,
    /// Retries of throttled and transient ECS calls.
    pub retry: RetryPolicy,
    /// After a success, deregister ACTIVE revisions of the family beyond
    /// the newest `n` (never the running one, the rollback target or any
    /// revision a deployment still uses). `None` (default) deregisters
    /// nothing. Must be ≥ 2.
    pub keep_revisions: Option<usize>,
    /// Tag a failed revision with the outcome and reason. Default `true`.
    pub mark_failed_revisions: bool,
}

impl Default for RolloutConfig {
    fn default() -> Self {
        Self {
            runner_container: "runner".into(),
            version_label: Some("org.opencontainers.image.version".into()),
            deployment_configuration_policy: DeploymentConfigurationPolicy::Fix,
            fix_maximum_percent: false,
            wait_for_idle: None,
            monitor: MonitorConfig::default(),
            rollback_timeout: Duration::from_secs(30 * 60),
            retry: RetryPolicy::default(),
            keep_revisions: None,
            mark_failed_revisions: true,
        }
    }
}

impl RolloutConfig {
    /// Rejects a configuration that cannot work.
    pub fn validate(&self) -> Result<()> {
        if self.runner_container.trim().is_empty() {
            return Err(Error::InvalidConfig {
                field: "RolloutConfig::runner_container",
                reason: "must name the container whose image is updated".into(),
            });
        }
        if self
            .version_label
            .as_deref()
            .is_some_and(|l| l.trim().is_empty())
        {
            return Err(Error::InvalidConfig {
                field: "RolloutConfig::version_label",
                reason: "use None for no label, not an empty name".into(),
            });
        }
        if self.keep_revisions.is_some_and(|n| n < 2) {
            return Err(Error::InvalidConfig {
                field: "RolloutConfig::keep_revisions",
                reason: "must keep at least 2 revisions (the running one and the rollback target)"
                    .into(),
            });
        }
        if self.rollback_timeout.is_zero() {
            return Err(Error::InvalidConfig {
                field: "RolloutConfig::rollback_timeout",
                reason: "must be positive".into(),
            });
        }
        self.monitor.validate()?;
        self.retry.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        RolloutConfig::default().validate().unwrap();
    }

    #[test]
    fn invalid_configs_name_their_field() {
        let cases: Vec<(RolloutConfig, &str)> = vec![
            (
                RolloutConfig {
                    runner_container: " ".into(),
                    ..Default::default()
                },
                "runner_container",
            ),
            (
                RolloutConfig {
                    version_label: Some(String::new()),
                    ..Default::default()
                },
                "version_label",
            ),
            (
                RolloutConfig {
                    keep_revisions: Some(1),
                    ..Default::default()
                },
                "keep_revisions",
            ),
            (
                RolloutConfig {
                    rollback_timeout: Duration::ZERO,
                    ..Default::default()
                },
                "rollback_timeout",
            ),
            (
                RolloutConfig {
                    monitor: MonitorConfig {
                        poll_max: Duration::from_secs(1),
                        ..Default::default()
                    },
                    ..Default::default()
                },
                "poll_max",
            ),
            (
                RolloutConfig {
                    monitor: MonitorConfig {
                        timeout: Duration::from_secs(1),
                        ..Default::default()
                    },
                    ..Default::default()
                },
                "timeout",
            ),
            (
                RolloutConfig {
                    monitor: MonitorConfig {
                        failed_task_threshold: Some(0),
                        ..Default::default()
                    },
                    ..Default::default()
                },
                "failed_task_threshold",
            ),
            (
                RolloutConfig {
                    retry: RetryPolicy {
                        max_attempts: 0,
                        ..Default::default()
                    },
                    ..Default::default()
                },
                "max_attempts",
            ),
        ];
        for (config, field) in cases {
            let err = config.validate().unwrap_err();
            assert!(err.to_string().contains(field), "{field}: {err}");
        }
    }
}
