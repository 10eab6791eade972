//! Lossless ECS task-definition updates, rolling deploys with the circuit
//! breaker, deployment monitoring by deployment id, typed outcomes and
//! rollback.
//!
//! [`Rollout::run`] does one update of a service's runner container:
//!
//! 1. reads the PRIMARY deployment's task definition ([`RunningRunner`]:
//!    image and version from the version label or the image tag);
//! 2. refuses while another deployment is in progress ([`Error::Busy`]),
//!    or waits if [`RolloutConfig::wait_for_idle`] says so;
//! 3. checks the deployment configuration (minimum healthy 100 %, maximum
//!    200 %, circuit breaker with rollback) and fixes, warns or refuses;
//! 4. registers the **lossless clone**: the running task definition with only
//!    the runner image and its version label replaced
//!    ([`TaskDefinitionSpec::with_runner_image`], checked by [`diff`]);
//! 5. calls `UpdateService` and tracks **our** deployment by the id it returns;
//! 6. monitors it with adaptive polling on the injected clock: rollout state,
//!    failed tasks against the breaker threshold, stopped-task reasons
//!    (failing fast on `CannotPullContainerError` and
//!    `ResourceInitializationError`), the health of every essential
//!    container, an optional bake time and a timeout;
//! 7. rolls back when the deployment fails and ECS did not (and watches
//!    that rollback), tags a failed revision, returns what to quarantine,
//!    and optionally deregisters revisions beyond the newest N — never the
//!    rollback target.
//!
//! Every state-changing step is first put to a [`StepGate`] (an
//! orchestrator journalling each step under a lock); a refusal stops the
//! engine before the step with [`Error::StepRefused`]. [`Rollout::resume`]
//! finishes an interrupted rollout from the [`ResumePoint`] the orchestrator
//! journalled, without registering or deploying twice; `run` itself reuses
//! an identical clone an interrupted run left registered.
//!
//! The result is a [`RolloutOutcome`]: `Succeeded` only when the PRIMARY
//! deployment runs our task definition, completed and healthy; a rollback by
//! ECS is `RolledBackByEcs`, never a success.
//!
//! # Backends of [`EcsApi`]
//!
//! - [`SimulatedEcs`]: a deterministic in-process ECS (injected clock, seed)
//!   with rolling deployments, health checks, the circuit breaker and its
//!   rollback, stopped-task reasons, fault injection and a concurrent
//!   operator. Always built.
//! - `aws::AwsEcs` over `aws-sdk-ecs` (feature `aws`), taking a ready-built
//!   client.
//! - Your own: implement [`EcsApi`] and run the `conformance` suite
//!   (feature `conformance`).
//!
//! Retries of throttled and transient calls happen in one place,
//! [`RetryingEcs`], which [`Rollout`] wraps around the backend itself.
//!
//! # Example (offline, on the simulator)
//!
//! ```
//! use std::sync::Arc;
//! use ecs_rollout::{
//!     ContainerDefinition, DeploymentConfiguration, HealthCheck, ImageBehaviour, Rollout, RolloutConfig,
//!     RolloutOutcome, RolloutRequest, RolloutTarget, ServiceSetup, SimulatedEcs,
//!     TaskDefinitionSpec,
//! };
//! use update_clock::ManualClock;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let clock = Arc::new(ManualClock::auto_advancing(ManualClock::EPOCH_2025));
//! let ecs = Arc::new(SimulatedEcs::new(clock.clone(), 1));
//! ecs.create_service(ServiceSetup {
//!     cluster: "runners".into(),
//!     service: "runner".into(),
//!     desired_count: 2,
//!     deployment_configuration: DeploymentConfiguration::safe_rolling(),
//!     task_definition: TaskDefinitionSpec {
//!         family: "runner".into(),
//!         container_definitions: vec![ContainerDefinition {
//!             name: "runner".into(),
//!             image: "registry.example.com/runner:20250101.1".into(),
//!             health_check: Some(HealthCheck {
//!                 command: vec!["CMD-SHELL".into(), "curl -f localhost:8080/healthz".into()],
//!                 ..Default::default()
//!             }),
//!             ..Default::default()
//!         }],
//!         ..Default::default()
//!     },
//! }).unwrap();
//!
//! let rollout = Rollout::new(ecs.clone(), clock, RolloutConfig::default()).unwrap();
//! let target = RolloutTarget::new("runners", "runner");
//!
//! // A healthy image rolls out.
//! let good = RolloutRequest {
//!     image: "registry.example.com/runner:20250102.1".parse().unwrap(),
//!     version: "20250102.1".parse().unwrap(),
//! };
//! let report = rollout.run(&target, &good).await.unwrap();
//! assert!(matches!(report.outcome, RolloutOutcome::Succeeded { .. }));
//!
//! // A crash-looping one trips the circuit breaker: ECS rolls back, and we say so.
//! let bad = RolloutRequest {
//!     image: "registry.example.com/runner:20250103.1".parse().unwrap(),
//!     version: "20250103.1".parse().unwrap(),
//! };
//! ecs.script_image(&bad.image.to_string(), ImageBehaviour::CrashLoop);
//! let report = rollout.run(&target, &bad).await.unwrap();
//! assert!(matches!(report.outcome, RolloutOutcome::RolledBackByEcs { .. }));
//! assert_eq!(report.quarantine.unwrap().version.as_deref(), Some("20250103.1"));
//! assert_eq!(rollout.current_state(&target).await.unwrap().version.unwrap().to_string(), "20250102.1");
//! # });
//! ```
#![warn(missing_docs)]

pub mod api;
#[cfg(feature = "aws")]
pub mod aws;
mod circuit_breaker;
mod config;
#[cfg(feature = "conformance")]
pub mod conformance;
mod current;
mod error;
mod gate;
mod monitor;
mod outcome;
mod progress;
mod retention;
mod retry;
mod revision;
mod rollout;
mod shared;
pub mod simulated;
mod stopped_reason;
pub mod task_definition;

pub use api::{
    BreakerThreshold, CircuitBreaker, ContainerState, Deployment, DeploymentAlarms,
    DeploymentConfiguration, DeploymentStatus, DesiredStatus, EcsApi, HealthStatus,
    ListTasksRequest, Page, PageToken, RegisteredTaskDefinition, RolloutState,
    ServiceDeploymentInfo, ServiceDeploymentStatus, ServiceDescription, ServiceEvent, StopType,
    TaskDefinitionStatus, TaskDescription, ThresholdKind, UpdateServiceRequest,
    UpdateServiceResult,
};
pub use circuit_breaker::circuit_breaker_threshold;
pub use config::{DeploymentConfigurationPolicy, MonitorConfig, RolloutConfig, RolloutTarget};
pub use current::{RunningRunner, VersionSource};
pub use error::{BoxError, Error, ErrorClass, ResourceKind, Result};
pub use gate::{OpenGate, RolloutStep, StepGate};
pub use monitor::{FOREIGN_PRIMARY_POLLS, UNSEEN_DEPLOYMENT_GRACE, list_all_tasks};
pub use outcome::{
    FailureReason, QuarantineNotice, RollbackEvidence, RolloutEvidence, RolloutOutcome,
    RolloutReport, StoppedTaskEvidence, VerdictSource,
};
pub use progress::{
    NoProgress, ProgressEvent, ProgressFn, ProgressSink, RecordedProgress, RollbackInitiator,
};
pub use retention::{list_all_revisions, prune_revisions, revisions_to_deregister};
pub use retry::{CallStats, RetryPolicy, RetryingEcs};
pub use revision::{FieldChange, MARKER_TAG_PREFIX, diff};
pub use rollout::{
    ECS_ROLLBACK_WAIT_POLLS, RecordedDeployment, ResumePoint, Rollout, RolloutRequest,
    deployment_configuration_problems, fix_deployment_configuration,
};
pub use shared::{
    DESCRIBE_SERVICE_DEPLOYMENTS_BATCH, DESCRIBE_SERVICES_BATCH, SharedEcs, SharedEcsConfig,
    SharedEcsStats,
};
pub use simulated::{
    FaultPlan, ImageBehaviour, LifecycleHook, ServiceSetup, SimTimings, SimulatedEcs,
    TaskInterruption,
};
pub use stopped_reason::{StoppedReasonClass, classify_stopped_reason, is_task_failure};
pub use task_definition::{ContainerDefinition, HealthCheck, TaskDefinitionSpec};
