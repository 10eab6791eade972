//! The step gate: an embedder's say before every state-changing step.
//!
//! An orchestrator that journals each step before the engine takes it (and
//! whose journal write may be refused, e.g. because it lost its lock) plugs
//! in a [`StepGate`]. The engine calls [`StepGate::before`] right before
//! each ECS mutation (and before it starts monitoring its deployment); a
//! refusal stops the engine there with
//! [`Error::StepRefused`](crate::Error::StepRefused), without any further
//! ECS call.

use std::{fmt::Debug, sync::Arc};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::BoxError;

/// A state-changing step the engine is about to take.
///
/// Serializes as `{"step": "<snake_case>", …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RolloutStep {
    /// About to register the clone of `from_task_definition_arn`.
    RegisterTaskDefinition {
        /// The task-definition family the clone is registered in.
        family: String,
        /// The running task definition being cloned.
        from_task_definition_arn: String,
    },
    /// About to call UpdateService to point the service at `task_definition_arn`.
    UpdateService {
        /// The task definition to deploy (the clone).
        task_definition_arn: String,
        /// The task definition the service runs now (the rollback target).
        previous_task_definition_arn: String,
        /// The PRIMARY deployment now (running the previous task
        /// definition), when ECS listed one: a resumed rollout that finds a
        /// different deployment of the previous task definition PRIMARY
        /// knows it was redeployed since ([`ResumePoint::Registered`](crate::ResumePoint::Registered)).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        previous_deployment_id: Option<String>,
    },
    /// UpdateService returned our deployment; about to monitor it.
    Monitoring {
        /// Our deployment's id (the one UpdateService returned).
        deployment_id: String,
        /// The task definition it deploys.
        task_definition_arn: String,
        /// The rollback target.
        previous_task_definition_arn: String,
    },
    /// The deployment failed and ECS did not roll back; about to roll back ourselves.
    RollingBack {
        /// The task definition rolled back to.
        task_definition_arn: String,
        /// The task definition whose deployment failed.
        failed_task_definition_arn: String,
        /// Why the deployment failed.
        reason: String,
    },
    /// About to tag the failed revision / deregister old revisions.
    MarkRevision {
        /// The revision to tag.
        task_definition_arn: String,
    },
    /// About to deregister these revisions (retention after success).
    Deregister {
        /// The revisions to deregister (never empty).
        task_definition_arns: Vec<String>,
    },
}

impl RolloutStep {
    /// A short description for [`Error::StepRefused`](crate::Error::StepRefused).
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::RegisterTaskDefinition {
                family,
                from_task_definition_arn,
            } => format!(
                "RegisterTaskDefinition in family {family} (clone of {from_task_definition_arn})"
            ),
            Self::UpdateService {
                task_definition_arn,
                previous_task_definition_arn,
                ..
            } => format!(
                "UpdateService to {task_definition_arn} (from {previous_task_definition_arn})"
            ),
            Self::Monitoring {
                deployment_id,
                task_definition_arn,
                ..
            } => format!("monitoring deployment {deployment_id} of {task_definition_arn}"),
            Self::RollingBack {
                task_definition_arn,
                failed_task_definition_arn,
                ..
            } => format!(
                "rollback UpdateService to {task_definition_arn} (from failed {failed_task_definition_arn})"
            ),
            Self::MarkRevision {
                task_definition_arn,
            } => format!("TagResource of failed revision {task_definition_arn}"),
            Self::Deregister {
                task_definition_arns,
            } => format!(
                "DeregisterTaskDefinition of {}",
                task_definition_arns.join(", ")
            ),
        }
    }
}

/// Called before each state-changing step; an Err stops the engine before the step.
///
/// Object safe: hold it as `Arc<dyn StepGate>` (see
/// [`Rollout::with_gate`](crate::Rollout::with_gate)).
#[async_trait]
pub trait StepGate: Send + Sync + Debug + 'static {
    /// Approves `step`, or refuses it (the engine then returns Error::StepRefused and makes no further ECS call).
    async fn before(&self, step: &RolloutStep) -> std::result::Result<(), BoxError>;
}

/// The gate that approves everything (the default).
#[derive(Debug, Default, Clone, Copy)]
pub struct OpenGate;

#[async_trait]
impl StepGate for OpenGate {
    async fn before(&self, _step: &RolloutStep) -> std::result::Result<(), BoxError> {
        Ok(())
    }
}

macro_rules! forward_step_gate {
    ($ty:ty) => {
        #[async_trait]
        impl<T: StepGate + ?Sized> StepGate for $ty {
            async fn before(&self, step: &RolloutStep) -> std::result::Result<(), BoxError> {
                (**self).before(step).await
            }
        }
    };
}

forward_step_gate!(Arc<T>);
forward_step_gate!(Box<T>);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_serialize_with_a_snake_case_tag() {
        let step = RolloutStep::UpdateService {
            task_definition_arn: "runner:2".into(),
            previous_task_definition_arn: "runner:1".into(),
            previous_deployment_id: Some("ecs-svc/1".into()),
        };
        let json = serde_json::to_value(&step).unwrap();
        assert_eq!(json["step"], "update_service");
        assert_eq!(json["task_definition_arn"], "runner:2");
        let back: RolloutStep = serde_json::from_value(json).unwrap();
        assert_eq!(back, step);
        assert!(step.describe().starts_with("UpdateService to runner:2"));
    }

    #[tokio::test]
    async fn open_gate_and_forwarders_approve() {
        let step = RolloutStep::MarkRevision {
            task_definition_arn: "runner:2".into(),
        };
        let gate: Arc<dyn StepGate> = Arc::new(OpenGate);
        assert!(gate.before(&step).await.is_ok());
        let boxed: Box<dyn StepGate> = Box::new(OpenGate);
        assert!(boxed.before(&step).await.is_ok());
    }
}
