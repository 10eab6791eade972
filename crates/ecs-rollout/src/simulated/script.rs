//! What a [`SimulatedEcs`](super::SimulatedEcs) does: per-image behaviour,
//! timings, faults and operator actions.

use std::time::Duration;

/// How containers running an image behave in the simulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ImageBehaviour {
    /// Starts, and its health check (if any) passes.
    #[default]
    Healthy,
    /// Starts, then exits with code 1 after [`SimTimings::crash_after`]:
    /// `Essential container in task exited` when essential.
    CrashLoop,
    /// Starts; its health check fails after the grace period, so ECS stops
    /// the task (`Task failed container health checks`).
    Unhealthy,
    /// Never starts: `CannotPullContainerError`.
    PullError,
    /// Never starts: `ResourceInitializationError` (secrets, registry auth).
    ResourceInitError,
    /// The first task launched with this image fails to start with a
    /// transient pull error (`CannotPullContainerError: … i/o timeout`);
    /// every later task starts and is healthy.
    TransientPullError,
    /// Starts and passes its health check, then fails it from
    /// [`SimTimings::degrade_after`] after the start on (a leak, a lost
    /// dependency): the container turns UNHEALTHY and ECS stops the task
    /// (`Task failed container health checks`). Without a health check it
    /// behaves as `Healthy`.
    DegradesLater,
    /// Starts and keeps running, but its health check never reports
    /// (health stays `UNKNOWN`): no task ever fails, so the circuit breaker
    /// never trips and the deployment never completes.
    NeverHealthy,
}

/// Durations of the simulated ECS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimTimings {
    /// PROVISIONING/PENDING before a task runs (or fails to start). Default 20 s.
    pub pending: Duration,
    /// Each task's PENDING time is `pending` plus a random share of this.
    /// Default 10 s.
    pub pending_jitter: Duration,
    /// How long a crash-looping container runs before exiting. Default 15 s.
    pub crash_after: Duration,
    /// When a `DegradesLater` container starts failing its health check,
    /// after the task started. Default 150 s.
    pub degrade_after: Duration,
    /// Delay of the first passing health check after start (added to the
    /// health check's start period). Default 10 s.
    pub first_health_check: Duration,
    /// How long a drained deployment stays listed after its last task
    /// stopped. Default 60 s.
    pub drained_deployment_linger: Duration,
    /// How long stopped tasks stay visible to `ListTasks`. Default 1 h.
    pub stopped_task_retention: Duration,
    /// Simulation step. Default 1 s.
    pub tick: Duration,
}

impl Default for SimTimings {
    fn default() -> Self {
        Self {
            pending: Duration::from_secs(20),
            pending_jitter: Duration::from_secs(10),
            crash_after: Duration::from_secs(15),
            degrade_after: Duration::from_secs(150),
            first_health_check: Duration::from_secs(10),
            drained_deployment_linger: Duration::from_secs(60),
            stopped_task_retention: Duration::from_secs(3600),
            tick: Duration::from_secs(1),
        }
    }
}

/// Fault injection: every API call draws from the seeded generator.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FaultPlan {
    /// Probability of `ThrottlingException` per call (0..=1).
    pub throttle_probability: f64,
    /// Probability of a 5xx `ServerException` per call (0..=1).
    pub server_error_probability: f64,
}

/// The service a simulator starts with.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServiceSetup {
    /// Cluster name.
    pub cluster: String,
    /// Service name.
    pub service: String,
    /// The task definition registered and running, healthy, at start.
    pub task_definition: crate::TaskDefinitionSpec,
    /// Desired task count.
    pub desired_count: i32,
    /// The deployment configuration (`Default` = nothing set: ECS defaults
    /// 100/200 and no circuit breaker).
    pub deployment_configuration: crate::DeploymentConfiguration,
}

/// A lifecycle hook of a blue/green, linear or canary deployment (a
/// Lambda function ECS invokes at a lifecycle stage): it answers
/// `IN_PROGRESS` for `holds` (ECS invokes it again meanwhile), then
/// `SUCCEEDED`, or `FAILED` when `fails` (ECS then rolls the deployment
/// back to the last successful one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleHook {
    /// The lifecycle stage it runs at (`POST_SCALE_UP`,
    /// `TEST_TRAFFIC_SHIFT`, `PRODUCTION_TRAFFIC_SHIFT`, …), as the service
    /// deployment's `lifecycleStage` reports it while the hook runs.
    pub stage: &'static str,
    /// How long it answers `IN_PROGRESS`.
    pub holds: Duration,
    /// Whether it then answers `FAILED`.
    pub fails: bool,
}

/// Why ECS (or a person) stops a healthy running task: none of these is a
/// failure of the version the task runs, and the service scheduler starts
/// a replacement. Each stops the task with the stop code and stopped reason
/// real ECS reports for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TaskInterruption {
    /// Fargate Spot reclaimed the capacity: stop code `SpotInterruption`,
    /// "Your Spot Task was interrupted."
    SpotInterruption,
    /// The EC2 instance received a termination notice (Spot, or an
    /// instance being terminated): stop code `TerminationNotice`.
    TerminationNotice,
    /// Fargate task retirement (platform maintenance): stop code
    /// `ServiceSchedulerInitiated`, "ECS is performing maintenance on the
    /// underlying infrastructure hosting the task".
    FargateRetirement,
    /// Availability Zone rebalancing stops a task in the fullest zone: stop
    /// code `ServiceSchedulerInitiated`.
    AzRebalancing,
    /// An operator's `StopTask`: stop code `UserInitiated`, "Task stopped
    /// by user".
    StopTask,
}

impl TaskInterruption {
    /// The stop code and stopped reason ECS reports.
    pub fn stop_code_and_reason(self) -> (&'static str, &'static str) {
        match self {
            Self::SpotInterruption => ("SpotInterruption", "Your Spot Task was interrupted."),
            Self::TerminationNotice => (
                "TerminationNotice",
                "Your Spot Instance was interrupted: the container instance is being terminated.",
            ),
            Self::FargateRetirement => (
                "ServiceSchedulerInitiated",
                "ECS is performing maintenance on the underlying infrastructure hosting the task",
            ),
            Self::AzRebalancing => (
                "ServiceSchedulerInitiated",
                "AZ Rebalancing: the service is not AZ balanced; task stopped to rebalance",
            ),
            Self::StopTask => ("UserInitiated", "Task stopped by user"),
        }
    }
}
