//! The rollout engine: clone, deploy, monitor, roll back, mark, prune.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use runner_version::{ImageRef, Version};
use update_clock::Clock;

use crate::{
    CircuitBreaker, DeploymentConfiguration, DeploymentConfigurationPolicy, EcsApi, Error,
    FailureReason, MARKER_TAG_PREFIX, NoProgress, ProgressEvent, ProgressSink, QuarantineNotice,
    RegisteredTaskDefinition, Result, RetryingEcs, RollbackEvidence, RollbackInitiator,
    RolloutConfig, RolloutEvidence, RolloutOutcome, RolloutReport, RolloutTarget, RunningRunner,
    ServiceDescription, UpdateServiceRequest,
    monitor::{Monitor, Observations, Verdict, Watch},
    retention::prune_revisions,
};

/// What to deploy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutRequest {
    /// The new runner image (ideally pinned by digest).
    pub image: ImageRef,
    /// Its version, written to the version label when one is configured.
    pub version: Version,
}

/// The rollout engine for one ECS backend.
///
/// Retries: the engine wraps the backend it is given in a [`RetryingEcs`]
/// (the crate's one retry layer, policy [`RolloutConfig::retry`]); pass a
/// backend that does not retry by itself.
#[derive(Debug)]
pub struct Rollout {
    ecs: RetryingEcs<Arc<dyn EcsApi>>,
    clock: Arc<dyn Clock>,
    config: RolloutConfig,
    progress: Arc<dyn ProgressSink>,
}

/// The problems of a deployment configuration, compared with
/// [`DeploymentConfiguration::safe_rolling`].
pub fn deployment_configuration_problems(config: &DeploymentConfiguration) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(min) = config.minimum_healthy_percent.filter(|&m| m < 100) {
        problems.push(format!(
            "minimumHealthyPercent is {min} (needs 100: never drop capacity)"
        ));
    }
    if let Some(max) = config.maximum_percent.filter(|&m| m < 200) {
        problems.push(format!(
            "maximumPercent is {max} (needs 200 to start a full set of new tasks)"
        ));
    }
    match config.circuit_breaker {
        Some(CircuitBreaker {
            enable: true,
            rollback: true,
        }) => {}
        Some(CircuitBreaker { enable: true, .. }) => {
            problems.push("the circuit breaker does not roll back".into())
        }
        _ => problems.push("the deployment circuit breaker is off".into()),
    }
    problems
}

impl Rollout {
    /// An engine over `ecs`, waiting on `clock`. Rejects an invalid config.
    pub fn new(ecs: Arc<dyn EcsApi>, clock: Arc<dyn Clock>, config: RolloutConfig) -> Result<Self> {
        config.validate()?;
        let progress: Arc<dyn ProgressSink> = Arc::new(NoProgress);
        Ok(Self {
            ecs: RetryingEcs::new(ecs, clock.clone(), config.retry.clone()),
            clock,
            config,
            progress,
        })
    }

    /// Sends progress events to `sink`.
    pub fn with_progress(mut self, sink: Arc<dyn ProgressSink>) -> Self {
        self.ecs = self.ecs.with_progress(sink.clone());
        self.progress = sink;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &RolloutConfig {
        &self.config
    }

    /// ECS calls made so far through this engine (every attempt).
    pub fn api_calls(&self) -> u64 {
        self.ecs.stats().attempts()
    }

    /// Reads the runner of the service's PRIMARY deployment: task
    /// definition, image and version (label, else image tag).
    pub async fn current_state(&self, target: &RolloutTarget) -> Result<RunningRunner> {
        let service = self
            .ecs
            .describe_service(&target.cluster, &target.service)
            .await?;
        Ok(self.running(&service, target).await?.1)
    }

    async fn running(
        &self,
        service: &ServiceDescription,
        target: &RolloutTarget,
    ) -> Result<(RegisteredTaskDefinition, RunningRunner)> {
        let primary = service.primary().ok_or_else(|| Error::UnexpectedResponse {
            resource: target.service.clone(),
            reason: "the service has no PRIMARY deployment".into(),
        })?;
        let td = self
            .ecs
            .describe_task_definition(&primary.task_definition_arn)
            .await?;
        let runner = RunningRunner::from_task_definition(
            &td,
            &self.config.runner_container,
            self.config.version_label.as_deref(),
        )?;
        Ok((td, runner))
    }

    /// Waits (per [`RolloutConfig::wait_for_idle`]) until no deployment of
    /// the service is in progress, or refuses with [`Error::Busy`].
    async fn idle_service(&self, target: &RolloutTarget) -> Result<ServiceDescription> {
        let start = self.clock.monotonic();
        loop {
            let service = self
                .ecs
                .describe_service(&target.cluster, &target.service)
                .await?;
            let in_progress: Vec<String> = service
                .in_progress_deployments()
                .iter()
                .map(|d| d.id.clone())
                .collect();
            if in_progress.is_empty() {
                return Ok(service);
            }
            let Some(limit) = self.config.wait_for_idle else {
                return Err(Error::Busy {
                    service: target.service.clone(),
                    in_progress,
                });
            };
            let waited = self.clock.monotonic() - start;
            if waited >= limit {
                return Err(Error::BusyTimeout {
                    service: target.service.clone(),
                    waited_secs: waited.as_secs(),
                });
            }
            self.progress
                .emit(&ProgressEvent::WaitingForIdle { in_progress });
            self.clock
                .sleep(self.config.monitor.poll_max.min(limit - waited))
                .await;
        }
    }

    /// Deploys `request` to `target` and watches it to a verdict; rolls back
    /// when needed, marks a failed revision, prunes old revisions after a
    /// success. Errors mean no verdict could be reached (ECS unreachable,
    /// service busy, invalid task definition); rollout failures are
    /// outcomes.
    pub async fn run(
        &self,
        target: &RolloutTarget,
        request: &RolloutRequest,
    ) -> Result<RolloutReport> {
        let start = self.clock.monotonic();
        let service = self.idle_service(target).await?;
        let (current_td, current) = self.running(&service, target).await?;
        self.progress.emit(&ProgressEvent::CurrentState {
            task_definition_arn: current.task_definition_arn.clone(),
            image: current.image.clone(),
            version: current.version.as_ref().map(ToString::to_string),
        });
        if current.runs_image(&request.image) {
            let outcome = RolloutOutcome::AlreadyRunning {
                task_definition_arn: current.task_definition_arn,
            };
            self.progress.emit(&ProgressEvent::Finished {
                outcome: outcome.kind(),
            });
            return Ok(RolloutReport {
                outcome,
                quarantine: None,
                deregistered: Vec::new(),
                warnings: Vec::new(),
            });
        }

        // Deployment configuration: fix, warn or refuse.
        let problems = deployment_configuration_problems(&service.deployment_configuration);
        let fixed_config = match (
            problems.is_empty(),
            self.config.deployment_configuration_policy,
        ) {
            (true, _) => None,
            (false, DeploymentConfigurationPolicy::Fix) => {
                self.progress
                    .emit(&ProgressEvent::DeploymentConfigurationFixed {
                        problems: problems.clone(),
                    });
                Some(DeploymentConfiguration::safe_rolling())
            }
            (false, DeploymentConfigurationPolicy::Warn) => {
                tracing::warn!(service = %target.service, ?problems, "unsafe deployment configuration");
                self.progress
                    .emit(&ProgressEvent::DeploymentConfigurationWarning {
                        problems: problems.clone(),
                    });
                None
            }
            (false, DeploymentConfigurationPolicy::Refuse) => {
                return Err(Error::UnsafeDeploymentConfiguration {
                    service: target.service.clone(),
                    problems,
                });
            }
        };

        // The lossless clone.
        let label = self
            .config
            .version_label
            .as_deref()
            .map(|l| (l, &request.version));
        let spec = current_td.spec.with_runner_image(
            &self.config.runner_container,
            &request.image,
            label,
        )?;
        let new_td = self.ecs.register_task_definition(&spec).await?;
        self.progress
            .emit(&ProgressEvent::TaskDefinitionRegistered {
                arn: new_td.arn.clone(),
            });

        // Deploy; remember OUR deployment's id.
        let update = self
            .ecs
            .update_service(&UpdateServiceRequest {
                cluster: target.cluster.clone(),
                service: target.service.clone(),
                task_definition: new_td.arn.clone(),
                deployment_configuration: fixed_config,
                force_new_deployment: false,
            })
            .await?;
        let deployment_id = update.deployment_id.clone();
        let deploy_start = self.clock.monotonic();
        self.progress.emit(&ProgressEvent::DeploymentStarted {
            deployment_id: deployment_id.clone(),
            task_definition_arn: new_td.arn.clone(),
            rollback: false,
        });

        let health_checked = health_checked_containers(&spec);
        let monitor = self.monitor();
        let (verdict, obs) = monitor
            .watch(&Watch {
                target,
                deployment_id: &deployment_id,
                task_definition_arn: &new_td.arn,
                previous_task_definition_arn: &current_td.arn,
                health_checked: &health_checked,
                bake_time: self.config.monitor.bake_time,
                timeout: self.config.monitor.timeout,
            })
            .await?;
        let mut evidence = RolloutEvidence {
            deployment_id: deployment_id.clone(),
            task_definition_arn: new_td.arn.clone(),
            previous_task_definition_arn: current_td.arn.clone(),
            configuration_problems: problems,
            deployment_duration: self.clock.monotonic() - deploy_start,
            ..Default::default()
        };
        absorb(&mut evidence, &obs);

        let outcome = match verdict {
            Verdict::Completed => RolloutOutcome::Succeeded { evidence },
            Verdict::Superseded {
                by_deployment_id,
                task_definition_arn,
            } => RolloutOutcome::Superseded {
                by_deployment_id,
                task_definition_arn,
                evidence,
            },
            Verdict::Failed {
                reason,
                ecs_rollback: Some(rollback_id),
            } => {
                self.progress.emit(&ProgressEvent::RollbackStarted {
                    initiator: RollbackInitiator::Ecs,
                    task_definition_arn: current_td.arn.clone(),
                    reason: reason.to_string(),
                });
                let rollback = self
                    .watch_rollback(
                        target,
                        RollbackInitiator::Ecs,
                        rollback_id,
                        &current_td,
                        &new_td.arn,
                    )
                    .await?;
                after_rollback(reason, rollback, evidence, |reason, rollback, evidence| {
                    RolloutOutcome::RolledBackByEcs {
                        reason,
                        rollback,
                        evidence,
                    }
                })
            }
            Verdict::Failed {
                reason,
                ecs_rollback: None,
            } => {
                let rollback = self
                    .roll_back(target, &reason, &current_td, &new_td.arn)
                    .await?;
                after_rollback(reason, rollback, evidence, |reason, rollback, evidence| {
                    RolloutOutcome::RolledBackByUs {
                        reason,
                        rollback,
                        evidence,
                    }
                })
            }
            Verdict::TimedOut => {
                let timeout = self.config.monitor.timeout;
                let reason = FailureReason::Timeout { after: timeout };
                let rollback = self
                    .roll_back(target, &reason, &current_td, &new_td.arn)
                    .await?;
                after_rollback(reason, rollback, evidence, |_, rollback, evidence| {
                    RolloutOutcome::TimedOut {
                        timeout,
                        rollback,
                        evidence,
                    }
                })
            }
        };
        Ok(self
            .finish(target, request, outcome, &new_td, &current_td, start)
            .await)
    }

    fn monitor(&self) -> Monitor<'_> {
        Monitor {
            ecs: &self.ecs,
            clock: &self.clock,
            config: &self.config.monitor,
            progress: self.progress.as_ref(),
        }
    }

    /// Our own rollback: `UpdateService` back to the previous task
    /// definition, then watch that deployment.
    async fn roll_back(
        &self,
        target: &RolloutTarget,
        reason: &FailureReason,
        previous: &RegisteredTaskDefinition,
        failed_arn: &str,
    ) -> Result<RollbackEvidence> {
        self.progress.emit(&ProgressEvent::RollbackStarted {
            initiator: RollbackInitiator::Us,
            task_definition_arn: previous.arn.clone(),
            reason: reason.to_string(),
        });
        let start = self.clock.monotonic();
        let update = self
            .ecs
            .update_service(&UpdateServiceRequest {
                cluster: target.cluster.clone(),
                service: target.service.clone(),
                task_definition: previous.arn.clone(),
                deployment_configuration: None,
                force_new_deployment: false,
            })
            .await;
        let update = match update {
            Ok(update) => update,
            Err(error) => {
                return Ok(RollbackEvidence {
                    initiator: RollbackInitiator::Us,
                    deployment_id: None,
                    task_definition_arn: previous.arn.clone(),
                    completed: false,
                    failure: Some(format!("UpdateService failed: {error}")),
                    duration: self.clock.monotonic() - start,
                });
            }
        };
        self.progress.emit(&ProgressEvent::DeploymentStarted {
            deployment_id: update.deployment_id.clone(),
            task_definition_arn: previous.arn.clone(),
            rollback: true,
        });
        self.watch_rollback(
            target,
            RollbackInitiator::Us,
            update.deployment_id,
            previous,
            failed_arn,
        )
        .await
    }

    /// Watches a rollback deployment (ECS's or ours) to completion.
    async fn watch_rollback(
        &self,
        target: &RolloutTarget,
        initiator: RollbackInitiator,
        deployment_id: String,
        previous: &RegisteredTaskDefinition,
        failed_arn: &str,
    ) -> Result<RollbackEvidence> {
        let start = self.clock.monotonic();
        let health_checked = health_checked_containers(&previous.spec);
        let (verdict, _) = self
            .monitor()
            .watch(&Watch {
                target,
                deployment_id: &deployment_id,
                task_definition_arn: &previous.arn,
                previous_task_definition_arn: failed_arn,
                health_checked: &health_checked,
                bake_time: Duration::ZERO,
                timeout: self.config.rollback_timeout,
            })
            .await?;
        let failure = match verdict {
            Verdict::Completed => None,
            Verdict::Failed { reason, .. } => Some(reason.to_string()),
            Verdict::Superseded {
                by_deployment_id,
                task_definition_arn,
            } => Some(format!(
                "superseded by deployment {by_deployment_id} of {task_definition_arn}"
            )),
            Verdict::TimedOut => Some(format!(
                "did not complete within {} s",
                self.config.rollback_timeout.as_secs()
            )),
        };
        Ok(RollbackEvidence {
            initiator,
            deployment_id: Some(deployment_id),
            task_definition_arn: previous.arn.clone(),
            completed: failure.is_none(),
            failure,
            duration: self.clock.monotonic() - start,
        })
    }

    /// Marks, prunes, fills the call counts, builds the report.
    async fn finish(
        &self,
        target: &RolloutTarget,
        request: &RolloutRequest,
        mut outcome: RolloutOutcome,
        new_td: &RegisteredTaskDefinition,
        previous: &RegisteredTaskDefinition,
        start: Duration,
    ) -> RolloutReport {
        let mut warnings = Vec::new();
        let mut quarantine = None;
        if outcome.is_version_failure() {
            let reason = outcome.summary();
            if self.config.mark_failed_revisions {
                let tags = BTreeMap::from([
                    (
                        format!("{MARKER_TAG_PREFIX}outcome"),
                        outcome.kind().to_owned(),
                    ),
                    (format!("{MARKER_TAG_PREFIX}reason"), tag_value(&reason)),
                    (
                        format!("{MARKER_TAG_PREFIX}at"),
                        self.clock.now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                    ),
                ]);
                match self.ecs.tag_resource(&new_td.arn, &tags).await {
                    Ok(()) => self.progress.emit(&ProgressEvent::RevisionMarked {
                        arn: new_td.arn.clone(),
                        outcome: outcome.kind().to_owned(),
                    }),
                    Err(error) => warnings.push(format!("could not tag {}: {error}", new_td.arn)),
                }
            }
            quarantine = Some(QuarantineNotice {
                version: Some(request.version.to_string()),
                image: request.image.to_string(),
                image_digest: request.image.digest().map(str::to_owned),
                outcome: outcome.kind(),
                reason,
                task_definition_arn: new_td.arn.clone(),
            });
        }
        let mut deregistered = Vec::new();
        if let (true, Some(keep)) = (outcome.is_success(), self.config.keep_revisions) {
            match self.prune(target, keep, new_td, previous).await {
                Ok(arns) => {
                    for arn in &arns {
                        self.progress
                            .emit(&ProgressEvent::RevisionDeregistered { arn: arn.clone() });
                    }
                    deregistered = arns;
                }
                Err(error) => warnings.push(format!("retention failed: {error}")),
            }
        }
        let stats = self.ecs.stats();
        if let Some(evidence) = evidence_mut(&mut outcome) {
            evidence.total_duration = self.clock.monotonic() - start;
            evidence.api_calls = stats.attempts();
            evidence.throttled_calls = stats.throttled();
        }
        self.progress.emit(&ProgressEvent::Finished {
            outcome: outcome.kind(),
        });
        RolloutReport {
            outcome,
            quarantine,
            deregistered,
            warnings,
        }
    }

    /// Retention, protecting the running revision, the rollback target and
    /// every revision a deployment of the service still uses.
    async fn prune(
        &self,
        target: &RolloutTarget,
        keep: usize,
        new_td: &RegisteredTaskDefinition,
        previous: &RegisteredTaskDefinition,
    ) -> Result<Vec<String>> {
        let service = self
            .ecs
            .describe_service(&target.cluster, &target.service)
            .await?;
        let mut protected = vec![
            new_td.arn.clone(),
            previous.arn.clone(),
            service.task_definition_arn.clone(),
        ];
        protected.extend(
            service
                .deployments
                .iter()
                .filter(|d| d.status != Some(crate::DeploymentStatus::Inactive))
                .map(|d| d.task_definition_arn.clone()),
        );
        prune_revisions(&self.ecs, &new_td.spec.family, keep, &protected).await
    }
}

fn evidence_mut(outcome: &mut RolloutOutcome) -> Option<&mut RolloutEvidence> {
    match outcome {
        RolloutOutcome::Succeeded { evidence }
        | RolloutOutcome::RolledBackByEcs { evidence, .. }
        | RolloutOutcome::RolledBackByUs { evidence, .. }
        | RolloutOutcome::RollbackFailed { evidence, .. }
        | RolloutOutcome::TimedOut { evidence, .. }
        | RolloutOutcome::Superseded { evidence, .. } => Some(evidence),
        _ => None,
    }
}

fn absorb(evidence: &mut RolloutEvidence, obs: &Observations) {
    evidence.failed_tasks = obs.failed_tasks;
    evidence.failed_task_threshold = obs.threshold;
    evidence.rollout_state_reason = obs.rollout_state_reason.clone();
    evidence.stopped_tasks = obs.stopped_tasks.clone();
    evidence.stopped_task_reasons = obs.stopped_task_reasons.clone();
    evidence.unhealthy_containers = obs.unhealthy_containers.clone();
    evidence.polls = obs.polls;
}

/// Essential containers with a health check: the ones that must be HEALTHY.
fn health_checked_containers(spec: &crate::TaskDefinitionSpec) -> Vec<String> {
    spec.container_definitions
        .iter()
        .filter(|c| c.essential != Some(false) && c.health_check.is_some())
        .map(|c| c.name.clone())
        .collect()
}

/// An ECS tag value: at most 256 characters of letters, digits, spaces and
/// `_ . : / = + - @`.
fn tag_value(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_alphanumeric() || " _.:/=+-@".contains(c) {
                c
            } else {
                ' '
            }
        })
        .take(256)
        .collect()
}

/// The outcome of a failed deployment once its rollback has ended:
/// `completed(..)` when the rollback finished, `RollbackFailed` otherwise.
fn after_rollback(
    reason: FailureReason,
    rollback: RollbackEvidence,
    evidence: RolloutEvidence,
    completed: impl FnOnce(FailureReason, RollbackEvidence, RolloutEvidence) -> RolloutOutcome,
) -> RolloutOutcome {
    if rollback.completed {
        completed(reason, rollback, evidence)
    } else {
        RolloutOutcome::RollbackFailed {
            reason,
            rollback,
            evidence,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_values_are_sanitised_and_capped() {
        assert_eq!(tag_value("a (b) \"c\"!"), "a  b   c  ");
        assert_eq!(tag_value(&"x".repeat(300)).len(), 256);
    }

    #[test]
    fn deployment_configuration_problems_table() {
        let cb = |enable, rollback| Some(CircuitBreaker { enable, rollback });
        let cases = [
            (DeploymentConfiguration::safe_rolling(), 0),
            (
                DeploymentConfiguration {
                    minimum_healthy_percent: Some(50),
                    ..DeploymentConfiguration::safe_rolling()
                },
                1,
            ),
            (
                DeploymentConfiguration {
                    maximum_percent: Some(150),
                    ..DeploymentConfiguration::safe_rolling()
                },
                1,
            ),
            (
                DeploymentConfiguration {
                    circuit_breaker: cb(true, false),
                    ..DeploymentConfiguration::safe_rolling()
                },
                1,
            ),
            (
                DeploymentConfiguration {
                    circuit_breaker: cb(false, true),
                    ..DeploymentConfiguration::safe_rolling()
                },
                1,
            ),
            (DeploymentConfiguration::default(), 1),
            (
                DeploymentConfiguration {
                    minimum_healthy_percent: Some(0),
                    maximum_percent: Some(100),
                    circuit_breaker: None,
                },
                3,
            ),
        ];
        for (config, expected) in cases {
            assert_eq!(
                deployment_configuration_problems(&config).len(),
                expected,
                "{config:?}"
            );
        }
    }
}
