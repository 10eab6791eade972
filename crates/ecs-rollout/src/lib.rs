//! Lossless ECS task-definition updates, rolling deploys with the circuit
//! breaker, deployment monitoring, typed outcomes and rollback.
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
mod monitor;
mod outcome;
mod progress;
mod retention;
mod retry;
mod revision;
mod rollout;
pub mod simulated;
pub mod task_definition;

pub use api::{
    CircuitBreaker, ContainerState, Deployment, DeploymentConfiguration, DeploymentStatus,
    DesiredStatus, EcsApi, HealthStatus, ListTasksRequest, Page, PageToken,
    RegisteredTaskDefinition, RolloutState, ServiceDeploymentInfo, ServiceDescription,
    ServiceEvent, TaskDefinitionStatus, TaskDescription, UpdateServiceRequest, UpdateServiceResult,
};
pub use circuit_breaker::circuit_breaker_threshold;
pub use config::{DeploymentConfigurationPolicy, MonitorConfig, RolloutConfig, RolloutTarget};
pub use current::{RunningRunner, VersionSource};
pub use error::{BoxError, Error, ErrorClass, ResourceKind, Result};
pub use monitor::list_all_tasks;
pub use outcome::{
    FailureReason, QuarantineNotice, RollbackEvidence, RolloutEvidence, RolloutOutcome,
    RolloutReport, StoppedTaskEvidence,
};
pub use progress::{
    NoProgress, ProgressEvent, ProgressFn, ProgressSink, RecordedProgress, RollbackInitiator,
};
pub use retention::{list_all_revisions, prune_revisions, revisions_to_deregister};
pub use retry::{CallStats, RetryPolicy, RetryingEcs};
pub use revision::{FieldChange, MARKER_TAG_PREFIX, diff};
pub use rollout::{Rollout, RolloutRequest, deployment_configuration_problems};
pub use simulated::{FaultPlan, ImageBehaviour, ServiceSetup, SimTimings, SimulatedEcs};
pub use task_definition::{ContainerDefinition, HealthCheck, TaskDefinitionSpec};
