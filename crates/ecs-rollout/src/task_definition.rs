//! The task definition in domain terms: a lossless mirror of the fields of
//! ECS `RegisterTaskDefinition` (camelCase JSON, like an ECS task-definition
//! file), so a running task definition can be re-registered with only the
//! runner image changed.
//!
//! Every struct derives `Default`: build values with `..Default::default()`
//! so adding a field never breaks a caller.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Everything `RegisterTaskDefinition` accepts, as read from a registered
/// task definition (plus its tags).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TaskDefinitionSpec {
    /// The family name.
    pub family: String,
    /// The containers.
    pub container_definitions: Vec<ContainerDefinition>,
    /// Resource tags (`include TAGS` on describe).
    pub tags: BTreeMap<String, String>,
}

/// One container of a task definition.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContainerDefinition {
    /// Container name, unique within the task definition.
    pub name: String,
    /// Image reference as written in the task definition.
    pub image: String,
    /// Whether the task stops when this container stops (`None` = ECS
    /// default, which is `true`).
    pub essential: Option<bool>,
    /// Docker labels (the runner version label lives here).
    pub docker_labels: BTreeMap<String, String>,
    /// Container health check.
    pub health_check: Option<HealthCheck>,
}

/// A container health check.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HealthCheck {
    /// The command, e.g. `["CMD-SHELL", "curl -f http://localhost/ || exit 1"]`.
    pub command: Vec<String>,
    /// Seconds between checks.
    pub interval: Option<i32>,
    /// Seconds before a check counts as failed.
    pub timeout: Option<i32>,
    /// Consecutive failures before unhealthy.
    pub retries: Option<i32>,
    /// Grace period in seconds before failures count.
    pub start_period: Option<i32>,
}
