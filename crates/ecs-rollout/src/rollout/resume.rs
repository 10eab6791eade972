//! Finishing a rollout that was interrupted (the process died, the task
//! running the updater was replaced) from the point an orchestrator
//! journalled.

use serde::{Deserialize, Serialize};

use super::{Rollout, RolloutRequest, Tracked, deployment_configuration_problems};
use crate::{
    Deployment, EcsApi, Error, RegisteredTaskDefinition, Result, RolloutEvidence, RolloutOutcome,
    RolloutReport, RolloutTarget, RunningRunner, ServiceDescription,
};

/// Where an interrupted rollout stood, as the orchestrator journalled it.
///
/// Serializes as `{"at": "registered" | "deployed", …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "at", rename_all = "snake_case")]
pub enum ResumePoint {
    /// The clone `task_definition_arn` was registered; UpdateService may or may not have been sent.
    Registered {
        /// The registered clone.
        task_definition_arn: String,
        /// The task definition the service ran before (the rollback target).
        previous_task_definition_arn: String,
        /// The PRIMARY deployment when the point was journalled (the
        /// [`RolloutStep::UpdateService`](crate::RolloutStep::UpdateService)
        /// step's), if known. With it, a different deployment of the
        /// previous task definition PRIMARY now is not mistaken for "our
        /// `UpdateService` never landed".
        #[serde(default, skip_serializing_if = "Option::is_none")]
        previous_deployment_id: Option<String>,
    },
    /// UpdateService was sent and returned `deployment_id`.
    Deployed {
        /// Our deployment's id, as UpdateService returned it.
        deployment_id: String,
        /// The task definition it deploys (the clone).
        task_definition_arn: String,
        /// The task definition the service ran before (the rollback target).
        previous_task_definition_arn: String,
    },
}

impl ResumePoint {
    /// The clone and the rollback target.
    fn task_definitions(&self) -> (&str, &str) {
        match self {
            Self::Registered {
                task_definition_arn,
                previous_task_definition_arn,
                ..
            }
            | Self::Deployed {
                task_definition_arn,
                previous_task_definition_arn,
                ..
            } => (task_definition_arn, previous_task_definition_arn),
        }
    }
}

/// What resuming from [`ResumePoint::Registered`] found.
enum Registered {
    /// Our deployment (adopted or just started).
    Tracking {
        deployment_id: String,
        problems: Vec<String>,
        changes: Vec<String>,
    },
    /// A third task definition is PRIMARY: someone else deployed.
    Superseded {
        by_deployment_id: String,
        task_definition_arn: String,
        problems: Vec<String>,
    },
}

impl Rollout {
    /// Finishes an interrupted rollout of `request` from `point`: never registers another task definition and never starts a second forward deployment when one for `task_definition_arn` exists. Same RolloutReport semantics as `run`.
    ///
    /// Both task definitions are read by ARN first; the clone must run
    /// `request.image` in the runner container, else
    /// [`Error::InvalidTaskDefinition`] (the point does not belong to this
    /// request).
    ///
    /// - [`ResumePoint::Registered`]: when a deployment of the service
    ///   already runs the clone (the `UpdateService` landed but was not
    ///   journalled), that deployment is adopted (a non-INACTIVE one
    ///   preferred); otherwise, when the PRIMARY runs the previous task
    ///   definition, the clone is deployed (after waiting for, or refusing
    ///   over, a deployment in progress, as `run` does; with the same
    ///   deployment-configuration fix, warning or refusal). When the
    ///   PRIMARY runs a third task definition, the outcome is
    ///   [`RolloutOutcome::Superseded`] and nothing in ECS is changed
    ///   (its evidence has an empty `deployment_id`).
    /// - [`ResumePoint::Deployed`]: the deployment is monitored as `run`
    ///   does, including one that already COMPLETED (it still has to pass
    ///   the bake time) or that ECS already rolled back.
    ///
    /// After the verdict everything is as in [`Rollout::run`]: rollback,
    /// marking, quarantine notice, retention, and the [`StepGate`](crate::StepGate)
    /// is asked before each step, `Monitoring` included.
    ///
    /// Timing: the monitor's timeout ([`MonitorConfig::timeout`](crate::MonitorConfig::timeout))
    /// and the evidence's durations count from this call, not from the
    /// interrupted run.
    pub async fn resume(
        &self,
        target: &RolloutTarget,
        request: &RolloutRequest,
        point: &ResumePoint,
    ) -> Result<RolloutReport> {
        let start = self.clock.monotonic();
        let (task_definition_arn, previous_arn) = point.task_definitions();
        let previous = self.ecs.describe_task_definition(previous_arn).await?;
        let new_td = self
            .ecs
            .describe_task_definition(task_definition_arn)
            .await?;
        self.check_resumed_clone(&new_td, request)?;
        let (deployment_id, configuration_problems, configuration_changes) = match point {
            ResumePoint::Deployed { deployment_id, .. } => {
                (deployment_id.clone(), Vec::new(), Vec::new())
            }
            ResumePoint::Registered {
                previous_deployment_id,
                ..
            } => {
                match self
                    .resume_registered(
                        target,
                        &new_td,
                        &previous,
                        previous_deployment_id.as_deref(),
                    )
                    .await?
                {
                    Registered::Tracking {
                        deployment_id,
                        problems,
                        changes,
                    } => (deployment_id, problems, changes),
                    Registered::Superseded {
                        by_deployment_id,
                        task_definition_arn,
                        problems,
                    } => {
                        let outcome = RolloutOutcome::Superseded {
                            by_deployment_id,
                            task_definition_arn,
                            evidence: RolloutEvidence {
                                task_definition_arn: new_td.arn.clone(),
                                previous_task_definition_arn: previous.arn.clone(),
                                configuration_problems: problems,
                                ..Default::default()
                            },
                        };
                        return self
                            .finish(target, request, outcome, &new_td, &previous, start)
                            .await;
                    }
                }
            }
        };
        self.conclude(Tracked {
            target,
            request,
            new_td: &new_td,
            previous: &previous,
            deployment_id,
            service_deployment_arn: None,
            configuration_problems,
            configuration_changes,
            start,
        })
        .await
    }

    /// The resumed clone must be a clone for `request`.
    fn check_resumed_clone(
        &self,
        new_td: &RegisteredTaskDefinition,
        request: &RolloutRequest,
    ) -> Result<()> {
        let runner = RunningRunner::from_task_definition(
            new_td,
            &self.config.runner_container,
            self.config.version_label.as_deref(),
        )?;
        if runner.runs_image(&request.image) {
            return Ok(());
        }
        Err(Error::InvalidTaskDefinition {
            task_definition: new_td.arn.clone(),
            reason: format!(
                "the runner container runs {}, not the requested {}: the resume point does not \
                 belong to this request",
                runner.image, request.image
            ),
        })
    }

    /// Adopts the deployment of the clone if the `UpdateService` landed,
    /// deploys the clone if it did not, or reports that someone else took
    /// over.
    async fn resume_registered(
        &self,
        target: &RolloutTarget,
        new_td: &RegisteredTaskDefinition,
        previous: &RegisteredTaskDefinition,
        previous_deployment_id: Option<&str>,
    ) -> Result<Registered> {
        let mut service = self
            .ecs
            .describe_service(&target.cluster, &target.service)
            .await?;
        super::check_controller(target, &service)?;
        loop {
            if let Some(ours) = super::deployment_of(&service, &new_td.arn) {
                tracing::info!(deployment_id = %ours.id, "adopting the deployment of the interrupted rollout");
                return Ok(Registered::Tracking {
                    deployment_id: ours.id.clone(),
                    problems: deployment_configuration_problems(&service.deployment_configuration),
                    // Whatever the interrupted run changed is not known here.
                    changes: Vec::new(),
                });
            }
            let primary = service.primary().ok_or_else(|| Error::UnexpectedResponse {
                resource: target.service.clone(),
                reason: "the service has no PRIMARY deployment".into(),
            })?;
            if primary.task_definition_arn != previous.arn {
                return Ok(Registered::Superseded {
                    by_deployment_id: primary.id.clone(),
                    task_definition_arn: primary.task_definition_arn.clone(),
                    problems: deployment_configuration_problems(&service.deployment_configuration),
                });
            }
            // The previous revision is PRIMARY again, but in another
            // deployment than when the point was journalled: our
            // UpdateService landed and was replaced (ECS's circuit breaker
            // rolled it back, or an operator did), or an operator redeployed
            // it. Deploying now would undo that. A "deployment failed" event
            // from when that deployment started names our failed
            // deployment: watch it to the verdict (ECS rolled it back).
            // Otherwise someone else deployed.
            let redeployed = previous_deployment_id.is_some_and(|before| primary.id != before);
            if redeployed {
                let problems = deployment_configuration_problems(&service.deployment_configuration);
                if let Some(failed) = failed_deployment_before(&service, primary) {
                    tracing::info!(deployment_id = %failed,
                        "the interrupted rollout's deployment failed and ECS rolled it back");
                    return Ok(Registered::Tracking {
                        deployment_id: failed,
                        problems,
                        changes: Vec::new(),
                    });
                }
                return Ok(Registered::Superseded {
                    by_deployment_id: primary.id.clone(),
                    task_definition_arn: primary.task_definition_arn.clone(),
                    problems,
                });
            }
            if service.in_progress_deployments().is_empty() {
                let fix = self.configuration_fix(target, &service)?;
                let deployment_id = self
                    .deploy(
                        target,
                        (&new_td.arn, &previous.arn),
                        Some(primary.id.clone()),
                        fix.fixed,
                    )
                    .await?;
                return Ok(Registered::Tracking {
                    deployment_id,
                    problems: fix.problems,
                    changes: fix.changes,
                });
            }
            // Busy: wait (or refuse) as `run` does, then look again.
            service = self.idle_service(target).await?;
        }
    }
}

/// How far apart (on ECS's clock) the "deployment failed" event and the
/// circuit breaker's rollback deployment can be.
const ROLLBACK_EVENT_WINDOW: chrono::TimeDelta = chrono::TimeDelta::seconds(120);

/// The id of a deployment that a service event near `rollback`'s creation
/// reports failed ("(service S) (deployment ID) deployment failed: ..."),
/// and that the service no longer lists (ECS rolled it back and dropped
/// it). Events and `createdAt` are both ECS's clock; without a `createdAt`
/// nothing is matched.
fn failed_deployment_before(service: &ServiceDescription, rollback: &Deployment) -> Option<String> {
    let started = rollback.created_at?;
    service
        .events
        .iter()
        .filter(|e| {
            e.created_at
                .is_some_and(|at| (at - started).abs() <= ROLLBACK_EVENT_WINDOW)
        })
        .filter(|e| e.message.contains("deployment failed"))
        .filter_map(|e| {
            let rest = e.message.split("(deployment ").nth(1)?;
            Some(rest.split(')').next()?.trim().to_string())
        })
        .filter(|id| !id.is_empty())
        .find(|id| service.deployments.iter().all(|d| &d.id != id))
}
