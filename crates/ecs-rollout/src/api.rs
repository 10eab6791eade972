//! The [`EcsApi`] trait: the ECS operations a rollout needs, in domain
//! terms (no AWS SDK type), and the values it speaks.
//!
//! Backends: [`SimulatedEcs`](crate::SimulatedEcs) (always built) and
//! `AwsEcs` over `aws-sdk-ecs` (feature `aws`). An embedder may bring its own.
//!
//! Contract shared by every method:
//! - A missing cluster, service or task definition is [`Error::NotFound`].
//! - Backend failures are [`Error::Api`] with an [`ErrorClass`](crate::ErrorClass):
//!   `Throttled` and `Transient` may be retried, `Permanent` not.
//! - Backends do **not** retry on their own beyond what the embedder's SDK
//!   client does; the crate retries in one place, [`RetryingEcs`](crate::RetryingEcs).

use std::{collections::BTreeMap, fmt::Debug, sync::Arc};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Error, Result, TaskDefinitionSpec};

/// Status of a deployment of a service (`PRIMARY`, `ACTIVE`, `INACTIVE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeploymentStatus {
    /// The most recent deployment: the one ECS is driving to.
    Primary,
    /// An older deployment still running tasks (being drained, or the one
    /// being replaced).
    Active,
    /// A finished deployment whose tasks are gone.
    Inactive,
}

/// The rollout state of a deployment (`IN_PROGRESS`, `COMPLETED`, `FAILED`);
/// present only on services with the rolling-update controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RolloutState {
    /// Tasks are being started or replaced.
    InProgress,
    /// Every desired task runs this deployment's task definition and is healthy.
    Completed,
    /// The circuit breaker (or a CloudWatch alarm) failed the deployment.
    Failed,
}

/// One deployment of a service, as `DescribeServices` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Deployment {
    /// The deployment id (`ecs-svc/…`); tasks it starts carry it as `startedBy`.
    pub id: String,
    /// PRIMARY, ACTIVE or INACTIVE (`None` only if the backend sent an
    /// unknown value).
    pub status: Option<DeploymentStatus>,
    /// The task definition this deployment runs.
    pub task_definition_arn: String,
    /// IN_PROGRESS, COMPLETED or FAILED.
    pub rollout_state: Option<RolloutState>,
    /// Why the rollout state is what it is (e.g. the circuit breaker's message).
    pub rollout_state_reason: Option<String>,
    /// Tasks this deployment wants.
    pub desired_count: i32,
    /// Tasks of this deployment in PENDING.
    pub pending_count: i32,
    /// Tasks of this deployment in RUNNING.
    pub running_count: i32,
    /// Tasks of this deployment that failed to start or to become healthy
    /// (what the circuit breaker counts).
    pub failed_tasks: i32,
    /// When the deployment was created.
    pub created_at: Option<DateTime<Utc>>,
    /// When it last changed.
    pub updated_at: Option<DateTime<Utc>>,
}

/// The deployment circuit breaker of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CircuitBreaker {
    /// Whether the breaker fails deployments whose tasks keep failing.
    pub enable: bool,
    /// Whether a failed deployment is rolled back to the last COMPLETED one.
    pub rollback: bool,
    /// `resetOnHealthyTask`: whether a task reaching a healthy state resets
    /// the failure count to 0 (`None` = not set, which ECS takes as `true`).
    pub reset_on_healthy_task: Option<bool>,
    /// `thresholdConfiguration`: how many failed tasks trip the breaker
    /// (`None` = not set, or a type this crate does not know: ECS's
    /// default, 50 % of the desired count within 3..=200).
    pub threshold: Option<BreakerThreshold>,
}

impl CircuitBreaker {
    /// Enabled, with rollback, everything else left to ECS's defaults.
    pub fn enabled_with_rollback() -> Self {
        Self {
            enable: true,
            rollback: true,
            ..Self::default()
        }
    }

    /// The failed-task count that trips this breaker for `desired` tasks:
    /// the configured threshold, else ECS's default formula.
    ///
    /// ```
    /// use ecs_rollout::{BreakerThreshold, CircuitBreaker, ThresholdKind};
    /// let default = CircuitBreaker::enabled_with_rollback();
    /// assert_eq!(default.failure_threshold(10), 5);
    /// let count = CircuitBreaker {
    ///     threshold: Some(BreakerThreshold { kind: ThresholdKind::Count, value: 2 }),
    ///     ..default
    /// };
    /// assert_eq!(count.failure_threshold(10), 2);
    /// ```
    pub fn failure_threshold(&self, desired: i32) -> u32 {
        match self.threshold {
            Some(t) => t.failures(desired),
            None => crate::circuit_breaker_threshold(desired),
        }
    }
}

/// How the breaker's `thresholdConfiguration.type` turns `value` into a
/// failed-task count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ThresholdKind {
    /// `value` % of the desired count, kept within 3..=200 (ECS's default type).
    BoundedPercent,
    /// `value` % of the desired count, at least 1.
    UnboundedPercent,
    /// `value` failed tasks.
    Count,
}

impl ThresholdKind {
    /// Parses the wire value; `None` for a type this crate does not know.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "BOUNDED_PERCENT" => Some(Self::BoundedPercent),
            "UNBOUNDED_PERCENT" => Some(Self::UnboundedPercent),
            "COUNT" => Some(Self::Count),
            _ => None,
        }
    }

    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BoundedPercent => "BOUNDED_PERCENT",
            Self::UnboundedPercent => "UNBOUNDED_PERCENT",
            Self::Count => "COUNT",
        }
    }
}

/// The breaker's `thresholdConfiguration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BreakerThreshold {
    /// How `value` is read.
    pub kind: ThresholdKind,
    /// A percentage of the desired count, or a count.
    pub value: i32,
}

impl BreakerThreshold {
    /// The failed-task count this threshold means for `desired` tasks.
    ///
    /// ```
    /// use ecs_rollout::{BreakerThreshold, ThresholdKind};
    /// let bounded = BreakerThreshold { kind: ThresholdKind::BoundedPercent, value: 50 };
    /// assert_eq!(bounded.failures(2), 3);
    /// let unbounded = BreakerThreshold { kind: ThresholdKind::UnboundedPercent, value: 50 };
    /// assert_eq!(unbounded.failures(2), 1);
    /// ```
    pub fn failures(&self, desired: i32) -> u32 {
        let value = i64::from(self.value.max(0));
        let share = (value * i64::from(desired.max(0)) + 99) / 100;
        let count = match self.kind {
            ThresholdKind::Count => value.max(1),
            ThresholdKind::UnboundedPercent => share.max(1),
            ThresholdKind::BoundedPercent => share.clamp(3, 200),
        };
        u32::try_from(count).unwrap_or(u32::MAX)
    }
}

/// The deployment configuration of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DeploymentConfiguration {
    /// `minimumHealthyPercent` (ECS default 100 for replica services).
    pub minimum_healthy_percent: Option<i32>,
    /// `maximumPercent` (ECS default 200).
    pub maximum_percent: Option<i32>,
    /// The circuit breaker (`None` = not configured = disabled).
    pub circuit_breaker: Option<CircuitBreaker>,
}

impl DeploymentConfiguration {
    /// The configuration every runner service should have: minimum healthy
    /// 100 %, maximum 200 %, circuit breaker enabled with rollback.
    pub fn safe_rolling() -> Self {
        Self {
            minimum_healthy_percent: Some(100),
            maximum_percent: Some(200),
            circuit_breaker: Some(CircuitBreaker::enabled_with_rollback()),
        }
    }
}

/// One entry of a service's event log.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServiceEvent {
    /// Event id.
    pub id: String,
    /// When.
    pub created_at: Option<DateTime<Utc>>,
    /// The message, e.g. `(service runner) has reached a steady state.`
    pub message: String,
}

/// A service as `DescribeServices` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServiceDescription {
    /// Service ARN.
    pub service_arn: String,
    /// Service name.
    pub service_name: String,
    /// Cluster ARN.
    pub cluster_arn: String,
    /// `ACTIVE`, `DRAINING` or `INACTIVE`.
    pub status: String,
    /// The task definition of the PRIMARY deployment.
    pub task_definition_arn: String,
    /// Desired task count of the service.
    pub desired_count: i32,
    /// Running tasks (all deployments).
    pub running_count: i32,
    /// Pending tasks (all deployments).
    pub pending_count: i32,
    /// Every deployment ECS still reports (PRIMARY first when present).
    pub deployments: Vec<Deployment>,
    /// The deployment configuration.
    pub deployment_configuration: DeploymentConfiguration,
    /// `deploymentController.type` as ECS sends it (`ECS`, `CODE_DEPLOY`,
    /// `EXTERNAL`, or a newer value kept as is); `None` = not reported,
    /// which ECS means as `ECS`.
    pub deployment_controller: Option<String>,
    /// Recent service events, newest first.
    pub events: Vec<ServiceEvent>,
    /// `deploymentConfiguration.strategy` as ECS sends it (`ROLLING`,
    /// `BLUE_GREEN`, `LINEAR`, `CANARY`, or a newer value kept as is);
    /// `None` = not reported, which ECS means as `ROLLING`.
    pub deployment_strategy: Option<String>,
    /// `deploymentConfiguration.bakeTimeInMinutes`: how long ECS itself
    /// keeps a blue/green, linear or canary deployment going after the
    /// traffic shifted, before it ends.
    pub ecs_bake_time: Option<std::time::Duration>,
    /// `deploymentConfiguration.alarms`: CloudWatch alarms that fail (and
    /// optionally roll back) a deployment. Read only: an `UpdateService`
    /// of this crate keeps the service's alarms as they are.
    pub deployment_alarms: Option<DeploymentAlarms>,
}

/// The deployment alarms of a service (`deploymentConfiguration.alarms`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DeploymentAlarms {
    /// The CloudWatch alarms.
    pub alarm_names: Vec<String>,
    /// Whether ECS fails a deployment when one of them goes into ALARM.
    pub enable: bool,
    /// Whether ECS then rolls back to the last COMPLETED deployment.
    pub rollback: bool,
}

impl DeploymentAlarms {
    /// Whether ECS rolls a deployment back when one of these goes off.
    pub fn rolls_back(&self) -> bool {
        self.enable && self.rollback && !self.alarm_names.is_empty()
    }
}

impl ServiceDescription {
    /// The PRIMARY deployment, if any.
    pub fn primary(&self) -> Option<&Deployment> {
        self.deployments
            .iter()
            .find(|d| d.status == Some(DeploymentStatus::Primary))
    }

    /// Whether the ECS deployment controller (rolling updates) drives the
    /// service: `deploymentController` absent or `ECS`. Services of the
    /// `CODE_DEPLOY` or `EXTERNAL` controller cannot be deployed with
    /// `UpdateService(taskDefinition)`.
    pub fn has_ecs_controller(&self) -> bool {
        self.deployment_controller
            .as_deref()
            .is_none_or(|c| c == "ECS")
    }

    /// Whether the service deploys with rolling updates (`strategy` absent
    /// or `ROLLING`). The other strategies (`BLUE_GREEN`, `LINEAR`,
    /// `CANARY`) run lifecycle stages and ECS's own bake time, which only
    /// the service deployment shows.
    pub fn is_rolling(&self) -> bool {
        self.deployment_strategy
            .as_deref()
            .is_none_or(|s| s == "ROLLING")
    }

    /// The deployment with this id, if ECS still reports it.
    pub fn deployment(&self, id: &str) -> Option<&Deployment> {
        self.deployments.iter().find(|d| d.id == id)
    }

    /// Deployments that are not finished: more than one deployment in
    /// PRIMARY/ACTIVE, or a PRIMARY whose rollout is IN_PROGRESS.
    pub fn in_progress_deployments(&self) -> Vec<&Deployment> {
        let live: Vec<&Deployment> = self
            .deployments
            .iter()
            .filter(|d| d.status != Some(DeploymentStatus::Inactive))
            .collect();
        if live.len() > 1 {
            return live;
        }
        live.into_iter()
            .filter(|d| d.rollout_state == Some(RolloutState::InProgress))
            .collect()
    }
}

/// Lifecycle status of a task-definition revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskDefinitionStatus {
    /// Usable for new deployments.
    #[default]
    Active,
    /// Deregistered: running tasks keep it, new deployments cannot use it.
    Inactive,
    /// Being deleted.
    DeleteInProgress,
}

/// A registered task-definition revision.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RegisteredTaskDefinition {
    /// `arn:aws:ecs:<region>:<account>:task-definition/<family>:<revision>`.
    pub arn: String,
    /// The revision number within the family.
    pub revision: i32,
    /// ACTIVE, INACTIVE or DELETE_IN_PROGRESS.
    pub status: TaskDefinitionStatus,
    /// Everything `RegisterTaskDefinition` accepts, tags included.
    pub spec: TaskDefinitionSpec,
}

/// What to change with `UpdateService`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct UpdateServiceRequest {
    /// Cluster name or ARN.
    pub cluster: String,
    /// Service name or ARN.
    pub service: String,
    /// The task definition to deploy (ARN, or `family:revision`).
    pub task_definition: String,
    /// A new deployment configuration, or `None` to keep the service's.
    pub deployment_configuration: Option<DeploymentConfiguration>,
    /// Start a new deployment even if nothing changed.
    pub force_new_deployment: bool,
}

/// What `UpdateService` returned.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct UpdateServiceResult {
    /// The id of the PRIMARY deployment right after the update: the
    /// deployment this update created. Track this id, never "the latest one".
    pub deployment_id: String,
    /// The service as returned by `UpdateService`.
    pub service: ServiceDescription,
}

/// A page request or answer token.
pub type PageToken = Option<String>;

/// One page of a paginated list.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Pass this to get the next page; `None` on the last page.
    pub next_token: PageToken,
}

/// Which tasks to list, by desired status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DesiredStatus {
    /// Tasks that should be running (includes PENDING ones).
    #[default]
    Running,
    /// Tasks that were stopped (ECS keeps them visible for about an hour).
    Stopped,
}

/// `ListTasks` for one service.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ListTasksRequest {
    /// Cluster name or ARN.
    pub cluster: String,
    /// Service name.
    pub service: String,
    /// RUNNING or STOPPED.
    pub desired_status: DesiredStatus,
    /// The token of the previous page, `None` for the first page.
    pub next_token: PageToken,
    /// Page size (ECS caps it at 100); `None` = backend default.
    pub max_results: Option<i32>,
    /// Only the tasks ECS started for this deployment (`startedBy` = its
    /// id). ECS requires `startedBy` to be the only filter, so such a
    /// request names neither the service nor a desired status, and lists
    /// the RUNNING tasks (ECS's default): `service` and `desired_status`
    /// are then not sent.
    pub started_by: Option<String>,
}

/// Health of a container or task as ECS reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HealthStatus {
    /// The health check passes.
    Healthy,
    /// The health check fails.
    Unhealthy,
    /// No health check, or still in its grace period.
    #[default]
    Unknown,
}

/// One container of a running or stopped task.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContainerState {
    /// Container name (as in the task definition).
    pub name: String,
    /// The image the container runs.
    pub image: String,
    /// The image digest the agent resolved, if reported.
    pub image_digest: Option<String>,
    /// PENDING, RUNNING, STOPPED.
    pub last_status: String,
    /// Exit code once stopped.
    pub exit_code: Option<i32>,
    /// Why it stopped (e.g. `CannotPullContainerError: …`).
    pub reason: Option<String>,
    /// Health-check result.
    pub health_status: HealthStatus,
    /// Whether the container is essential (copied from the task definition
    /// by backends that know it: `AwsEcs` for the revisions it read or
    /// registered, without a call of its own; `None` = unknown, treat as
    /// essential).
    pub essential: Option<bool>,
}

/// A task as `DescribeTasks` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TaskDescription {
    /// Task ARN.
    pub task_arn: String,
    /// The task definition it runs.
    pub task_definition_arn: String,
    /// Who started it: for service tasks, the deployment id.
    pub started_by: Option<String>,
    /// PROVISIONING, PENDING, ACTIVATING, RUNNING, DEACTIVATING, STOPPING,
    /// DEPROVISIONING, STOPPED.
    pub last_status: String,
    /// RUNNING or STOPPED.
    pub desired_status: String,
    /// Aggregated health of the essential containers.
    pub health_status: HealthStatus,
    /// Why the task stopped, e.g. `Essential container in task exited`.
    pub stopped_reason: Option<String>,
    /// `TaskFailedToStart`, `EssentialContainerExited`, `UserInitiated`, …
    pub stop_code: Option<String>,
    /// The containers.
    pub containers: Vec<ContainerState>,
    /// When the task started running.
    pub started_at: Option<DateTime<Utc>>,
    /// When the task stopped.
    pub stopped_at: Option<DateTime<Utc>>,
}

/// A `ServiceDeployment` (the newer deployment-history API), where the
/// backend has it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServiceDeploymentInfo {
    /// The service-deployment ARN.
    pub arn: String,
    /// PENDING, SUCCESSFUL, STOPPED, STOP_REQUESTED, IN_PROGRESS,
    /// ROLLBACK_REQUESTED, ROLLBACK_IN_PROGRESS, ROLLBACK_SUCCESSFUL,
    /// ROLLBACK_FAILED.
    pub status: String,
    /// Why.
    pub status_reason: Option<String>,
    /// The task definition being deployed.
    pub target_task_definition_arn: Option<String>,
    /// The task definitions being replaced.
    pub source_task_definition_arns: Vec<String>,
    /// When it started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it finished.
    pub finished_at: Option<DateTime<Utc>>,
    /// The task definition ECS rolled back to (`rollback.serviceRevisionArn`),
    /// once a rollback of this deployment started: the last COMPLETED
    /// revision, which need not be the one the service ran before.
    pub rollback_task_definition_arn: Option<String>,
    /// The lifecycle stage of a blue/green, linear or canary deployment
    /// (`RECONCILE_SERVICE`, `PRE_SCALE_UP`, `SCALE_UP`, …, `BAKE_TIME`,
    /// `CLEAN_UP`), as ECS sends it.
    pub lifecycle_stage: Option<String>,
    /// The deployment alarms that went into ALARM during this deployment
    /// (`alarms.triggeredAlarmNames`): why ECS failed it, when not empty.
    pub triggered_alarms: Vec<String>,
}

impl ServiceDeploymentInfo {
    /// The status as a [`ServiceDeploymentStatus`].
    pub fn state(&self) -> ServiceDeploymentStatus {
        ServiceDeploymentStatus::parse(&self.status)
    }
}

/// The status of a service deployment, as `DescribeServiceDeployments`
/// reports it. Only `Successful` is a success; `RollbackSuccessful` is a
/// rollback by ECS (a failure of the version); `RollbackFailed` and
/// `Stopped` need a person; the others are still in progress.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum ServiceDeploymentStatus {
    /// Created, not started.
    Pending,
    /// Running.
    InProgress,
    /// Finished: the target revision runs.
    Successful,
    /// Someone asked to stop it.
    StopRequested,
    /// Stopped (by a person, or failed with rollback not configured).
    Stopped,
    /// A rollback was asked for (by the breaker, an alarm or `StopServiceDeployment`).
    RollbackRequested,
    /// ECS is rolling back.
    RollbackInProgress,
    /// ECS rolled back: the rollback revision runs.
    RollbackSuccessful,
    /// ECS could not roll back.
    RollbackFailed,
    /// A value this crate does not know, kept as its wire string.
    Other(String),
}

impl ServiceDeploymentStatus {
    /// Parses the wire value (`IN_PROGRESS`, …); unknown values are kept in `Other`.
    pub fn parse(value: &str) -> Self {
        match value {
            "PENDING" => Self::Pending,
            "IN_PROGRESS" => Self::InProgress,
            "SUCCESSFUL" => Self::Successful,
            "STOP_REQUESTED" => Self::StopRequested,
            "STOPPED" => Self::Stopped,
            "ROLLBACK_REQUESTED" => Self::RollbackRequested,
            "ROLLBACK_IN_PROGRESS" => Self::RollbackInProgress,
            "ROLLBACK_SUCCESSFUL" => Self::RollbackSuccessful,
            "ROLLBACK_FAILED" => Self::RollbackFailed,
            other => Self::Other(other.to_owned()),
        }
    }

    /// Whether a rollback of the deployment was asked for or is running.
    pub fn is_rolling_back(&self) -> bool {
        matches!(self, Self::RollbackRequested | Self::RollbackInProgress)
    }
}

/// How `StopServiceDeployment` stops a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StopType {
    /// Roll back to the last COMPLETED revision (works even when the
    /// service has no rollback configured).
    Rollback,
    /// Stop where it is.
    Abort,
}

impl StopType {
    /// The wire value (`ROLLBACK`, `ABORT`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rollback => "ROLLBACK",
            Self::Abort => "ABORT",
        }
    }
}

/// The ECS operations a rollout needs.
///
/// Object safe: hold it as `Arc<dyn EcsApi>`. See the [module docs](self)
/// for the error contract.
#[async_trait]
pub trait EcsApi: Send + Sync + Debug + 'static {
    /// `DescribeServices` for one service: deployments (PRIMARY first),
    /// counts and deployment configuration. A service that is not ACTIVE
    /// is still returned (check `status`); an unknown one is `NotFound`.
    async fn describe_service(&self, cluster: &str, service: &str) -> Result<ServiceDescription>;

    /// `DescribeServices` for several services of one cluster in one
    /// request (ECS takes at most 10): one answer per name, in the order
    /// asked (`NotFound` for an unknown one); `Err` when the request itself
    /// failed. The default reads them one by one with
    /// [`describe_service`](Self::describe_service).
    async fn describe_services(
        &self,
        cluster: &str,
        services: &[String],
    ) -> Result<Vec<Result<ServiceDescription>>> {
        let mut answers = Vec::with_capacity(services.len());
        for service in services {
            answers.push(self.describe_service(cluster, service).await);
        }
        Ok(answers)
    }

    /// `DescribeTaskDefinition` with `include TAGS`: the revision (by ARN
    /// or `family:revision`, or the latest ACTIVE one for a bare family).
    async fn describe_task_definition(
        &self,
        task_definition: &str,
    ) -> Result<RegisteredTaskDefinition>;

    /// `RegisterTaskDefinition` with every field of `spec`, tags included.
    /// Returns the new revision as ECS stored it.
    async fn register_task_definition(
        &self,
        spec: &TaskDefinitionSpec,
    ) -> Result<RegisteredTaskDefinition>;

    /// `TagResource`: adds or overwrites tags on a resource (task definition ARN).
    async fn tag_resource(&self, arn: &str, tags: &BTreeMap<String, String>) -> Result<()>;

    /// `DeregisterTaskDefinition`. Deregistering an INACTIVE revision is
    /// not an error.
    async fn deregister_task_definition(&self, arn: &str) -> Result<()>;

    /// `ListTaskDefinitions` for one family, ACTIVE revisions only, oldest
    /// first (ascending revision), one page.
    async fn list_task_definition_revisions(
        &self,
        family: &str,
        next_token: PageToken,
    ) -> Result<Page<String>>;

    /// `UpdateService`. Returns the id of the deployment the update created
    /// (the PRIMARY deployment in the response).
    async fn update_service(&self, request: &UpdateServiceRequest) -> Result<UpdateServiceResult>;

    /// `ListTasks` of one service, one page of task ARNs.
    async fn list_tasks(&self, request: &ListTasksRequest) -> Result<Page<String>>;

    /// `DescribeTasks` (at most 100 ARNs per call; unknown ARNs are left out
    /// of the answer, not an error).
    async fn describe_tasks(
        &self,
        cluster: &str,
        task_arns: &[String],
    ) -> Result<Vec<TaskDescription>>;

    /// `ListServiceDeployments` + `DescribeServiceDeployments`, newest
    /// first. Optional: the default is [`Error::Unsupported`].
    async fn describe_service_deployments(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<Vec<ServiceDeploymentInfo>> {
        let _ = (cluster, service);
        Err(Error::Unsupported {
            operation: "DescribeServiceDeployments",
            backend: "this",
        })
    }

    /// `DescribeServiceDeployments` (+ `DescribeServiceRevisions` for the
    /// task definitions) of service deployments whose ARNs are known, in
    /// one request (ECS takes at most 20, of any services): one answer per
    /// ARN, in the order asked (`NotFound` for one ECS does not know);
    /// `Err` when the request itself failed. A monitor that has found its
    /// deployment polls it this way instead of listing the whole history.
    /// Optional: the default is [`Error::Unsupported`] (callers then list
    /// with [`describe_service_deployments`](Self::describe_service_deployments)).
    async fn describe_service_deployments_by_arn(
        &self,
        arns: &[String],
    ) -> Result<Vec<Result<ServiceDeploymentInfo>>> {
        let _ = arns;
        Err(Error::Unsupported {
            operation: "DescribeServiceDeployments",
            backend: "this",
        })
    }

    /// `StopServiceDeployment` of the service deployment
    /// `service_deployment_arn` with `stop_type`. Optional: the default is
    /// [`Error::Unsupported`] (callers then roll back with `UpdateService`).
    /// A deployment that is no longer in progress is refused by ECS
    /// (an [`Error::Api`] of class `Permanent`).
    async fn stop_service_deployment(
        &self,
        service_deployment_arn: &str,
        stop_type: StopType,
    ) -> Result<()> {
        let _ = (service_deployment_arn, stop_type);
        Err(Error::Unsupported {
            operation: "StopServiceDeployment",
            backend: "this",
        })
    }
}

macro_rules! forward_ecs_api {
    ($ty:ty) => {
        #[async_trait]
        impl<T: EcsApi + ?Sized> EcsApi for $ty {
            async fn describe_service(
                &self,
                cluster: &str,
                service: &str,
            ) -> Result<ServiceDescription> {
                (**self).describe_service(cluster, service).await
            }
            async fn describe_services(
                &self,
                cluster: &str,
                services: &[String],
            ) -> Result<Vec<Result<ServiceDescription>>> {
                (**self).describe_services(cluster, services).await
            }
            async fn describe_task_definition(
                &self,
                task_definition: &str,
            ) -> Result<RegisteredTaskDefinition> {
                (**self).describe_task_definition(task_definition).await
            }
            async fn register_task_definition(
                &self,
                spec: &TaskDefinitionSpec,
            ) -> Result<RegisteredTaskDefinition> {
                (**self).register_task_definition(spec).await
            }
            async fn tag_resource(&self, arn: &str, tags: &BTreeMap<String, String>) -> Result<()> {
                (**self).tag_resource(arn, tags).await
            }
            async fn deregister_task_definition(&self, arn: &str) -> Result<()> {
                (**self).deregister_task_definition(arn).await
            }
            async fn list_task_definition_revisions(
                &self,
                family: &str,
                next_token: PageToken,
            ) -> Result<Page<String>> {
                (**self)
                    .list_task_definition_revisions(family, next_token)
                    .await
            }
            async fn update_service(
                &self,
                request: &UpdateServiceRequest,
            ) -> Result<UpdateServiceResult> {
                (**self).update_service(request).await
            }
            async fn list_tasks(&self, request: &ListTasksRequest) -> Result<Page<String>> {
                (**self).list_tasks(request).await
            }
            async fn describe_tasks(
                &self,
                cluster: &str,
                task_arns: &[String],
            ) -> Result<Vec<TaskDescription>> {
                (**self).describe_tasks(cluster, task_arns).await
            }
            async fn describe_service_deployments(
                &self,
                cluster: &str,
                service: &str,
            ) -> Result<Vec<ServiceDeploymentInfo>> {
                (**self)
                    .describe_service_deployments(cluster, service)
                    .await
            }
            async fn describe_service_deployments_by_arn(
                &self,
                arns: &[String],
            ) -> Result<Vec<Result<ServiceDeploymentInfo>>> {
                (**self).describe_service_deployments_by_arn(arns).await
            }
            async fn stop_service_deployment(
                &self,
                service_deployment_arn: &str,
                stop_type: StopType,
            ) -> Result<()> {
                (**self)
                    .stop_service_deployment(service_deployment_arn, stop_type)
                    .await
            }
        }
    };
}

forward_ecs_api!(Arc<T>);
forward_ecs_api!(Box<T>);

/// Splits `arn:…:task-definition/family:revision` (or `family:revision`)
/// into family and revision.
pub fn parse_task_definition_arn(arn: &str) -> Option<(&str, i32)> {
    let tail = arn.rsplit_once("task-definition/").map_or(arn, |(_, t)| t);
    let (family, revision) = tail.rsplit_once(':')?;
    let revision = revision.parse().ok()?;
    (!family.is_empty()).then_some((family, revision))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_task_definition_arns() {
        let cases = [
            (
                "arn:aws:ecs:us-east-1:123456789012:task-definition/runner:7",
                Some(("runner", 7)),
            ),
            ("runner:12", Some(("runner", 12))),
            ("runner", None),
            ("arn:aws:ecs:us-east-1:1:task-definition/runner:x", None),
            (":3", None),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_task_definition_arn(input), expected, "{input}");
        }
    }

    #[test]
    fn in_progress_deployments_table() {
        let d = |id: &str, status, state| Deployment {
            id: id.into(),
            status: Some(status),
            rollout_state: state,
            ..Default::default()
        };
        use DeploymentStatus::*;
        use RolloutState::*;
        let cases: Vec<(Vec<Deployment>, Vec<&str>)> = vec![
            (vec![d("a", Primary, Some(Completed))], vec![]),
            (vec![d("a", Primary, Some(InProgress))], vec!["a"]),
            (
                vec![
                    d("a", Primary, Some(InProgress)),
                    d("b", Active, Some(Completed)),
                ],
                vec!["a", "b"],
            ),
            (
                vec![
                    d("a", Primary, Some(Completed)),
                    d("b", Inactive, Some(Failed)),
                ],
                vec![],
            ),
        ];
        for (deployments, expected) in cases {
            let service = ServiceDescription {
                deployments,
                ..Default::default()
            };
            let ids: Vec<&str> = service
                .in_progress_deployments()
                .iter()
                .map(|d| d.id.as_str())
                .collect();
            assert_eq!(ids, expected);
        }
    }
}
