//! The typed result of a rollout and its evidence.

use std::time::Duration;

use serde::Serialize;

use crate::RollbackInitiator;

/// Serializes a `Duration` as fractional seconds.
pub(crate) mod secs {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

/// A stopped task of the tracked deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoppedTaskEvidence {
    /// The task.
    pub task_arn: String,
    /// `stoppedReason`.
    pub reason: String,
    /// `stopCode`.
    pub stop_code: Option<String>,
    /// Reasons and exit codes of its stopped containers (`name: reason (exit N)`).
    pub containers: Vec<String>,
}

/// Why a deployment was judged failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum FailureReason {
    /// ECS set the rollout state to FAILED (circuit breaker or alarm).
    CircuitBreaker {
        /// ECS's `rolloutStateReason`.
        rollout_state_reason: Option<String>,
    },
    /// ECS failed the deployment because deployment alarms went into
    /// ALARM (named by the service deployment's `triggeredAlarmNames`).
    DeploymentAlarm {
        /// The alarms that went off.
        alarm_names: Vec<String>,
        /// ECS's `rolloutStateReason` or service-deployment reason.
        rollout_state_reason: Option<String>,
    },
    /// ECS failed and rolled back a blue/green, linear or canary deployment
    /// while its service deployment was at a lifecycle-hook stage, with no
    /// deployment alarm triggered: a lifecycle hook answered `FAILED` (or
    /// did not answer).
    LifecycleHook {
        /// The lifecycle stage (`POST_SCALE_UP`, `TEST_TRAFFIC_SHIFT`,
        /// `PRODUCTION_TRAFFIC_SHIFT`, …).
        stage: String,
        /// ECS's `rolloutStateReason` or service-deployment reason.
        rollout_state_reason: Option<String>,
    },
    /// A task stopped for a reason that will not pass on retry
    /// (`CannotPullContainerError`, `ResourceInitializationError`): failed fast.
    DeterministicStartFailure {
        /// The stopped reason that matched.
        stopped_reason: String,
    },
    /// Failed tasks reached the threshold while ECS's breaker was off.
    FailedTaskThreshold {
        /// Failed tasks counted.
        failed_tasks: i32,
        /// The threshold.
        threshold: u32,
    },
    /// Essential containers turned unhealthy during the bake time.
    BakeFailed {
        /// What broke.
        detail: String,
    },
    /// The deployment did not complete in time.
    Timeout {
        /// The configured timeout.
        #[serde(with = "secs")]
        after: Duration,
    },
}

impl std::fmt::Display for FailureReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::CircuitBreaker {
                rollout_state_reason,
            } => write!(
                f,
                "deployment failed: {}",
                rollout_state_reason
                    .as_deref()
                    .unwrap_or("rollout state FAILED")
            ),
            Self::DeploymentAlarm {
                alarm_names,
                rollout_state_reason,
            } => write!(
                f,
                "deployment alarm(s) {} went into ALARM: {}",
                alarm_names.join(", "),
                rollout_state_reason
                    .as_deref()
                    .unwrap_or("rollout state FAILED")
            ),
            Self::LifecycleHook {
                stage,
                rollout_state_reason,
            } => write!(
                f,
                "the lifecycle hook at {stage} failed: {}",
                rollout_state_reason.as_deref().unwrap_or("no reason given")
            ),
            Self::DeterministicStartFailure { stopped_reason } => {
                write!(f, "tasks cannot start: {stopped_reason}")
            }
            Self::FailedTaskThreshold {
                failed_tasks,
                threshold,
            } => write!(
                f,
                "{failed_tasks} failed tasks reached the threshold of {threshold}"
            ),
            Self::BakeFailed { detail } => write!(f, "unhealthy during bake time: {detail}"),
            Self::Timeout { after } => write!(
                f,
                "deployment did not complete within {} s",
                after.as_secs()
            ),
        }
    }
}

/// What happened to the rollback deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RollbackEvidence {
    /// Who rolled back.
    pub initiator: RollbackInitiator,
    /// The rollback deployment's id (`None` if `UpdateService` itself failed).
    pub deployment_id: Option<String>,
    /// The task definition rolled back to.
    pub task_definition_arn: String,
    /// Whether the rollback deployment completed with every task healthy.
    pub completed: bool,
    /// Why it did not complete, if it did not.
    pub failure: Option<String>,
    /// When it did not complete: the distinct reasons its tasks stopped
    /// for (what a person needs to mend the service), as far as the watch
    /// of the rollback read them. Empty otherwise.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stopped_task_reasons: Vec<String>,
    /// From the start of the rollback to its verdict, as watched here
    /// (zero for a rollback of ECS's that was over before a poll saw it).
    #[serde(with = "secs")]
    pub duration: Duration,
}

/// Which ECS view decided the verdict on our deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictSource {
    /// The status of our service deployment (`DescribeServiceDeployments`),
    /// the authority where the API exists.
    ServiceDeployment,
    /// The deployment list of `DescribeServices` (deployment id, rollout
    /// state, PRIMARY): the fallback where the ServiceDeployment API is
    /// absent or did not list ours.
    DescribeServices,
}

/// Facts gathered while deploying and monitoring.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct RolloutEvidence {
    /// Our deployment's id (from `UpdateService`).
    pub deployment_id: String,
    /// The task definition we deployed.
    pub task_definition_arn: String,
    /// The task definition that ran before (the rollback target).
    pub previous_task_definition_arn: String,
    /// Failed tasks of our deployment, as last reported.
    pub failed_tasks: i32,
    /// The failed-task threshold in force.
    pub failed_task_threshold: u32,
    /// ECS's last `rolloutStateReason` for our deployment.
    pub rollout_state_reason: Option<String>,
    /// Stopped tasks of our deployment (up to 20, oldest first).
    pub stopped_tasks: Vec<StoppedTaskEvidence>,
    /// Distinct stopped-task reasons.
    pub stopped_task_reasons: Vec<String>,
    /// Essential containers seen UNHEALTHY (`task/container`).
    pub unhealthy_containers: Vec<String>,
    /// Problems with the service's deployment configuration (fixed or warned).
    pub configuration_problems: Vec<String>,
    /// What the Fix policy changed in the service's deployment configuration
    /// (`field: old → new`), so that drift from CloudFormation is visible.
    pub configuration_changes: Vec<String>,
    /// From `UpdateService` to the verdict on our deployment.
    #[serde(with = "secs")]
    pub deployment_duration: Duration,
    /// From the start of the rollout to the end (rollback included).
    #[serde(with = "secs")]
    pub total_duration: Duration,
    /// Polls of the deployment.
    pub polls: u32,
    /// Polls that failed with a read error (counted in `polls`): missed
    /// polls, never a verdict.
    pub missed_polls: u32,
    /// ECS API calls made (every attempt counts).
    pub api_calls: u64,
    /// Calls answered with throttling (and retried).
    pub throttled_calls: u64,
    /// Our service deployment's ARN, once `DescribeServiceDeployments`
    /// listed it (`None` where the API is absent).
    pub service_deployment_arn: Option<String>,
    /// Its last status as read (`IN_PROGRESS`, `SUCCESSFUL`, …).
    pub service_deployment_status: Option<String>,
    /// Which view decided the verdict (`None` when no verdict was reached).
    pub decided_by: Option<VerdictSource>,
}

/// How a rollout ended. A rollback by ECS is a failure, never a success:
/// `Succeeded` requires that the PRIMARY deployment runs our task
/// definition, COMPLETED, with every essential container healthy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RolloutOutcome {
    /// Our task definition is PRIMARY, COMPLETED and healthy (through the
    /// bake time, if set).
    Succeeded {
        /// Evidence.
        evidence: RolloutEvidence,
    },
    /// Our deployment failed and the ECS circuit breaker rolled it back.
    RolledBackByEcs {
        /// Why it failed.
        reason: FailureReason,
        /// The rollback ECS made, as we monitored it.
        rollback: RollbackEvidence,
        /// Evidence.
        evidence: RolloutEvidence,
    },
    /// Our deployment failed, ECS did not roll back, and we did.
    RolledBackByUs {
        /// Why it failed.
        reason: FailureReason,
        /// Our rollback.
        rollback: RollbackEvidence,
        /// Evidence.
        evidence: RolloutEvidence,
    },
    /// Our deployment failed and the rollback (ours or ECS's) did not
    /// complete: the service needs an operator.
    RollbackFailed {
        /// Why the deployment failed.
        reason: FailureReason,
        /// The rollback that failed.
        rollback: RollbackEvidence,
        /// Evidence.
        evidence: RolloutEvidence,
    },
    /// Our deployment did not finish in time; we rolled back.
    TimedOut {
        /// The configured timeout.
        #[serde(with = "secs")]
        timeout: Duration,
        /// Our rollback (completed).
        rollback: RollbackEvidence,
        /// Evidence.
        evidence: RolloutEvidence,
    },
    /// Someone else started a deployment while ours was running; we stop
    /// watching and change nothing.
    Superseded {
        /// Their deployment.
        by_deployment_id: String,
        /// Their task definition.
        task_definition_arn: String,
        /// Evidence.
        evidence: RolloutEvidence,
    },
    /// The service already runs the requested image: nothing was deployed.
    AlreadyRunning {
        /// The running task definition.
        task_definition_arn: String,
    },
    /// Our deployment exists, but every poll failed until the monitor's
    /// timeout (throttling beyond the retry layer, an outage, a missing read
    /// permission): no verdict. Neither a success nor a failure of the
    /// version: resume watching with
    /// [`ResumePoint::Deployed`](crate::ResumePoint::Deployed) built from
    /// these fields. Nothing was rolled back, marked or pruned.
    MonitoringLost {
        /// Our deployment (what to resume watching).
        deployment_id: String,
        /// The task definition it deploys.
        task_definition_arn: String,
        /// The rollback target.
        previous_task_definition_arn: String,
        /// The error of the last failed poll.
        last_error: String,
        /// Evidence.
        evidence: RolloutEvidence,
    },
    /// Our deployment failed (ECS said so: `FAILED` or its "deployment
    /// failed" event; or we failed it fast and were waiting for ECS's own
    /// rollback), then someone else's deployment, not a rollback, became
    /// PRIMARY. We do not roll back (that would undo their deployment),
    /// whether or not ECS rolled ours back before they deployed. A failure
    /// of the version (quarantine it, never retry it); the service runs
    /// their deployment.
    SupersededAfterFailure {
        /// Why ours failed.
        reason: FailureReason,
        /// Their deployment.
        by_deployment_id: String,
        /// Their task definition.
        task_definition_arn: String,
        /// Evidence.
        evidence: RolloutEvidence,
    },
    /// The deployment COMPLETED, but the service's desired count is 0: no
    /// task ran, so nothing proves the version works (or fails). Never
    /// `Succeeded`, not a failure of the version; the service stays on the
    /// new task definition.
    DeployedUnverified {
        /// Evidence.
        evidence: RolloutEvidence,
    },
    /// Our service deployment is `STOPPED` (a person stopped it, or ECS
    /// failed it with rollback not configured): ECS neither finished nor
    /// rolled it back, and we did not roll back either (that would fight
    /// whoever stopped it). A failure of the version that needs a person:
    /// the service may run a mix of revisions.
    DeploymentStopped {
        /// ECS's `statusReason`.
        status_reason: Option<String>,
        /// Evidence.
        evidence: RolloutEvidence,
    },
}

impl RolloutOutcome {
    /// `succeeded`, `rolled_back_by_ecs`, … (the serialized tag).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Succeeded { .. } => "succeeded",
            Self::RolledBackByEcs { .. } => "rolled_back_by_ecs",
            Self::RolledBackByUs { .. } => "rolled_back_by_us",
            Self::RollbackFailed { .. } => "rollback_failed",
            Self::TimedOut { .. } => "timed_out",
            Self::Superseded { .. } => "superseded",
            Self::SupersededAfterFailure { .. } => "superseded_after_failure",
            Self::AlreadyRunning { .. } => "already_running",
            Self::MonitoringLost { .. } => "monitoring_lost",
            Self::DeployedUnverified { .. } => "deployed_unverified",
            Self::DeploymentStopped { .. } => "deployment_stopped",
        }
    }

    /// Whether the new version is running (only `Succeeded`).
    pub fn is_success(&self) -> bool {
        matches!(self, Self::Succeeded { .. })
    }

    /// Whether the version failed and should be quarantined (never for
    /// `MonitoringLost`, `DeployedUnverified`, `Superseded`,
    /// `AlreadyRunning` or `Succeeded`; always for
    /// `SupersededAfterFailure`).
    pub fn is_version_failure(&self) -> bool {
        matches!(
            self,
            Self::RolledBackByEcs { .. }
                | Self::RolledBackByUs { .. }
                | Self::RollbackFailed { .. }
                | Self::TimedOut { .. }
                | Self::SupersededAfterFailure { .. }
                | Self::DeploymentStopped { .. }
        )
    }

    /// The evidence, if the rollout got as far as deploying.
    pub fn evidence(&self) -> Option<&RolloutEvidence> {
        match self {
            Self::Succeeded { evidence }
            | Self::RolledBackByEcs { evidence, .. }
            | Self::RolledBackByUs { evidence, .. }
            | Self::RollbackFailed { evidence, .. }
            | Self::TimedOut { evidence, .. }
            | Self::Superseded { evidence, .. }
            | Self::SupersededAfterFailure { evidence, .. }
            | Self::MonitoringLost { evidence, .. }
            | Self::DeployedUnverified { evidence }
            | Self::DeploymentStopped { evidence, .. } => Some(evidence),
            Self::AlreadyRunning { .. } => None,
        }
    }

    /// A one-line human reason.
    pub fn summary(&self) -> String {
        match self {
            Self::Succeeded { evidence } => format!("{} is running", evidence.task_definition_arn),
            Self::RolledBackByEcs { reason, .. } => format!("ECS rolled back: {reason}"),
            Self::RolledBackByUs { reason, .. } => format!("rolled back: {reason}"),
            Self::RollbackFailed {
                reason, rollback, ..
            } => format!(
                "{reason}; rollback to {} failed: {}",
                rollback.task_definition_arn,
                rollback.failure.as_deref().unwrap_or("unknown")
            ),
            Self::TimedOut { timeout, .. } => {
                format!("no completion within {} s; rolled back", timeout.as_secs())
            }
            Self::Superseded {
                by_deployment_id,
                task_definition_arn,
                ..
            } => format!("superseded by deployment {by_deployment_id} of {task_definition_arn}"),
            Self::SupersededAfterFailure {
                reason,
                by_deployment_id,
                task_definition_arn,
                ..
            } => format!(
                "{reason}; then superseded by deployment {by_deployment_id} of \
                 {task_definition_arn} (not rolled back: that would undo their deployment)"
            ),
            Self::AlreadyRunning {
                task_definition_arn,
            } => format!("already running in {task_definition_arn}"),
            Self::MonitoringLost {
                deployment_id,
                last_error,
                ..
            } => format!(
                "lost sight of deployment {deployment_id} (no verdict; resume watching it): \
                 {last_error}"
            ),
            Self::DeployedUnverified { evidence } => format!(
                "{} deployed with a desired count of 0: not verified",
                evidence.task_definition_arn
            ),
            Self::DeploymentStopped {
                status_reason,
                evidence,
            } => format!(
                "service deployment {} was STOPPED ({}); nothing rolled back: the service \
                 needs a person",
                evidence
                    .service_deployment_arn
                    .as_deref()
                    .unwrap_or(&evidence.deployment_id),
                status_reason.as_deref().unwrap_or("no reason given")
            ),
        }
    }
}

/// What an orchestrator needs to quarantine a failed version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuarantineNotice {
    /// The version that failed, if known.
    pub version: Option<String>,
    /// The image that failed, as deployed.
    pub image: String,
    /// Its digest, if the image was pinned.
    pub image_digest: Option<String>,
    /// The outcome kind (`rolled_back_by_ecs`, …).
    pub outcome: &'static str,
    /// Why.
    pub reason: String,
    /// The failed task-definition revision (tagged with the outcome).
    pub task_definition_arn: String,
}

/// The full result of [`Rollout::run`](crate::Rollout::run).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RolloutReport {
    /// The typed outcome.
    pub outcome: RolloutOutcome,
    /// Set when the version failed: quarantine it.
    pub quarantine: Option<QuarantineNotice>,
    /// Revisions deregistered by retention.
    pub deregistered: Vec<String>,
    /// Non-fatal problems after the verdict (tagging or retention failed).
    pub warnings: Vec<String>,
}
