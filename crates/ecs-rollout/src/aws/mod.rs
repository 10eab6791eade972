//! The AWS backend: [`AwsEcs`], [`EcsApi`](crate::EcsApi) over
//! `aws-sdk-ecs` (feature `aws`).
//!
//! - Task definitions are read with `include TAGS` and registered with every
//!   field of `RegisterTaskDefinition` (see
//!   [`TaskDefinitionSpec`](crate::TaskDefinitionSpec)); the mapping's unit
//!   tests fail when the SDK grows a field this backend does not carry.
//! - Lists are paginated by token (`ListTaskDefinitions`, `ListTasks`);
//!   `DescribeTasks` is batched by 100.
//! - `UpdateService` with a deployment configuration keeps every part of the
//!   service's configuration the request does not set.

mod aws_ecs;
mod error_mapping;
mod service_mapping;
mod task_definition_mapping;

pub use aws_ecs::{AwsEcs, DEFAULT_ATTEMPT_TIMEOUT};
