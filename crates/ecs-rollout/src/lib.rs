//! Lossless ECS task-definition updates, rolling deploys with the circuit
//! breaker, deployment monitoring, typed outcomes and rollback.
#![warn(missing_docs)]

pub mod api;
#[cfg(feature = "aws")] pub mod aws;
mod error;
pub mod task_definition;

pub use api::{
    CircuitBreaker, ContainerState, Deployment, DeploymentConfiguration, DeploymentStatus,
    DesiredStatus, EcsApi, HealthStatus, ListTasksRequest, Page, PageToken,
    RegisteredTaskDefinition, RolloutState, ServiceDeploymentInfo, ServiceDescription,
    ServiceEvent, TaskDefinitionStatus, TaskDescription, UpdateServiceRequest, UpdateServiceResult,
};
pub use error::{BoxError, Error, ErrorClass, ResourceKind, Result};
pub use task_definition::{ContainerDefinition, HealthCheck, TaskDefinitionSpec};
