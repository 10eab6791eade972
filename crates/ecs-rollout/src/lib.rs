//! Lossless ECS task-definition updates, rolling deploys with the circuit
//! breaker, deployment monitoring, typed outcomes and rollback.
#![warn(missing_docs)]

pub mod task_definition;

pub use task_definition::{ContainerDefinition, HealthCheck, TaskDefinitionSpec};
