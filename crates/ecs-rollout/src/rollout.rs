//! The rollout engine: clone, deploy, monitor, roll back, mark, prune.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use runner_version::{ImageRef, Version};
use update_clock::Clock;

use crate::{
    CircuitBreaker, DeploymentConfiguration, DeploymentConfigurationPolicy, EcsApi, Error,
    ErrorClass, FailureReason, MARKER_TAG_PREFIX, NoProgress, OpenGate, ProgressEvent,
    ProgressSink, QuarantineNotice, RegisteredTaskDefinition, Result, RetryingEcs,
    RollbackEvidence, RollbackInitiator, RolloutConfig, RolloutEvidence, RolloutOutcome,
    RolloutReport, RolloutStep, RolloutTarget, RunningRunner, ServiceDescription, StepGate,
    StopType, TaskDefinitionSpec, TaskDefinitionStatus, UpdateServiceRequest,
    monitor::{AfterFailure, EcsRollback, Monitor, Observations, Verdict, Watch},
    retention::{list_all_revisions, revisions_to_deregister},
};

mod resume;
mod watch;

pub use resume::ResumePoint;
pub use watch::RecordedDeployment;

/// Polls (`MonitorConfig::poll_min` apart) we wait for ECS's own rollback
/// after a failure, when the service's circuit breaker rolls back, before
/// rolling back ourselves: two rollbacks must never race.
pub const ECS_ROLLBACK_WAIT_POLLS: u32 = 3;

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
///
/// Every state-changing step goes through the [`StepGate`] first (default
/// [`OpenGate`]; see [`Rollout::with_gate`]).
#[derive(Debug)]
pub struct Rollout {
    ecs: RetryingEcs<Arc<dyn EcsApi>>,
    clock: Arc<dyn Clock>,
    config: RolloutConfig,
    progress: Arc<dyn ProgressSink>,
    gate: Arc<dyn StepGate>,
}

/// Our deployment, once it exists: everything the shared tail of
/// [`Rollout::run`] and [`Rollout::resume`] (monitor, verdict, rollback,
/// finish) needs.
struct Tracked<'a> {
    target: &'a RolloutTarget,
    request: &'a RolloutRequest,
    new_td: &'a RegisteredTaskDefinition,
    previous: &'a RegisteredTaskDefinition,
    deployment_id: String,
    /// Our service deployment, when already known (a resumed watch).
    service_deployment_arn: Option<String>,
    configuration_problems: Vec<String>,
    /// What the Fix policy changed in it.
    configuration_changes: Vec<String>,
    /// When the rollout (or the resume) started.
    start: Duration,
}

/// The service's deployment configuration as a rollout found and sent it.
struct ConfigurationFix {
    /// What is unsafe in it.
    problems: Vec<String>,
    /// What the Fix policy changes (`field: old → new`).
    changes: Vec<String>,
    /// What to send with `UpdateService` (`None` = keep the service's).
    fixed: Option<DeploymentConfiguration>,
}

/// Our failed deployment, for rolling it back.
struct Failed<'a> {
    target: &'a RolloutTarget,
    deployment_id: &'a str,
    service_deployment_arn: Option<&'a str>,
    previous: &'a RegisteredTaskDefinition,
    failed_arn: &'a str,
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
            ..
        }) => {}
        Some(CircuitBreaker { enable: true, .. }) => {
            problems.push("the circuit breaker does not roll back".into())
        }
        _ => problems.push("the deployment circuit breaker is off".into()),
    }
    problems
}

/// The Fix policy's configuration: `current` with only what is unsafe
/// changed, and one line per change (`field: old → new`) for the report.
///
/// - `minimumHealthyPercent` below 100 becomes 100.
/// - The circuit breaker is enabled with rollback; its other settings
///   (`resetOnHealthyTask`, `thresholdConfiguration`) are kept as they are.
/// - `maximumPercent` below 200 becomes 200 when `fix_maximum_percent`, or
///   when it is 100 or less: with a minimum of 100 % no new task could start
///   and the deployment would never progress. Otherwise (e.g. 150: ECS
///   replaces the tasks in batches) it stays a reported problem.
/// - Nothing else is touched (and what the overlay does not send, such as
///   alarms, strategy or bake time, stays as the service has it).
///
/// ```
/// use ecs_rollout::{
///     BreakerThreshold, CircuitBreaker, DeploymentConfiguration, ThresholdKind,
///     fix_deployment_configuration,
/// };
/// let threshold = Some(BreakerThreshold { kind: ThresholdKind::Count, value: 2 });
/// let current = DeploymentConfiguration {
///     minimum_healthy_percent: Some(50),
///     maximum_percent: Some(150),
///     circuit_breaker: Some(CircuitBreaker {
///         enable: true,
///         rollback: false,
///         reset_on_healthy_task: Some(false),
///         threshold,
///     }),
/// };
/// let (fixed, changes) = fix_deployment_configuration(&current, false);
/// assert_eq!(fixed.minimum_healthy_percent, Some(100));
/// assert_eq!(fixed.maximum_percent, Some(150));
/// let breaker = fixed.circuit_breaker.unwrap();
/// assert!(breaker.enable && breaker.rollback);
/// assert_eq!((breaker.reset_on_healthy_task, breaker.threshold), (Some(false), threshold));
/// assert_eq!(changes, [
///     "minimumHealthyPercent: 50 → 100",
///     "deploymentCircuitBreaker.rollback: false → true",
/// ]);
///
/// // 100 % would block the deployment once the minimum is 100 %.
/// let blocking = DeploymentConfiguration { maximum_percent: Some(100), ..current };
/// let (fixed, _) = fix_deployment_configuration(&blocking, false);
/// assert_eq!(fixed.maximum_percent, Some(200));
/// ```
pub fn fix_deployment_configuration(
    current: &DeploymentConfiguration,
    fix_maximum_percent: bool,
) -> (DeploymentConfiguration, Vec<String>) {
    let mut fixed = *current;
    let mut changes = Vec::new();
    let shown = |v: Option<i32>| v.map_or_else(|| "unset".to_owned(), |v| v.to_string());
    if let Some(min) = current.minimum_healthy_percent.filter(|&m| m < 100) {
        fixed.minimum_healthy_percent = Some(100);
        changes.push(format!("minimumHealthyPercent: {min} → 100"));
    }
    let blocking = current.maximum_percent.is_some_and(|m| m <= 100);
    if (fix_maximum_percent || blocking) && current.maximum_percent.is_some_and(|m| m < 200) {
        changes.push(format!(
            "maximumPercent: {} → 200",
            shown(current.maximum_percent)
        ));
        fixed.maximum_percent = Some(200);
    }
    let mut breaker = current.circuit_breaker.unwrap_or_default();
    if current.circuit_breaker.is_none() {
        changes.push("deploymentCircuitBreaker: unset → enable, rollback".into());
    } else {
        for (field, value) in [
            ("enable", &mut breaker.enable),
            ("rollback", &mut breaker.rollback),
        ] {
            if !*value {
                changes.push(format!("deploymentCircuitBreaker.{field}: false → true"));
            }
        }
    }
    breaker.enable = true;
    breaker.rollback = true;
    fixed.circuit_breaker = Some(breaker);
    (fixed, changes)
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
            gate: Arc::new(OpenGate),
        })
    }

    /// Sends progress events to `sink`.
    pub fn with_progress(mut self, sink: Arc<dyn ProgressSink>) -> Self {
        self.ecs = self.ecs.with_progress(sink.clone());
        self.progress = sink;
        self
    }

    /// Asks `gate` before every state-changing step (see [`RolloutStep`]);
    /// a refusal stops the engine before that step with
    /// [`Error::StepRefused`]. The default gate is [`OpenGate`].
    pub fn with_gate(mut self, gate: Arc<dyn StepGate>) -> Self {
        self.gate = gate;
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

    /// Asks the gate about `step`; a refusal is [`Error::StepRefused`].
    async fn gate(&self, step: RolloutStep) -> Result<()> {
        self.gate
            .before(&step)
            .await
            .map_err(|source| Error::StepRefused {
                step: step.describe(),
                source,
            })
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
            check_controller(target, &service)?;
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

    /// The service's deployment configuration: its problems, what the Fix
    /// policy changes, and the configuration to send with `UpdateService`
    /// (fix, warn or refuse per
    /// [`RolloutConfig::deployment_configuration_policy`]).
    fn configuration_fix(
        &self,
        target: &RolloutTarget,
        service: &ServiceDescription,
    ) -> Result<ConfigurationFix> {
        let problems = deployment_configuration_problems(&service.deployment_configuration);
        let mut changes = Vec::new();
        let fixed = match (
            problems.is_empty(),
            self.config.deployment_configuration_policy,
        ) {
            (true, _) => None,
            (false, DeploymentConfigurationPolicy::Fix) => {
                let fixed;
                (fixed, changes) = fix_deployment_configuration(
                    &service.deployment_configuration,
                    self.config.fix_maximum_percent,
                );
                if changes.is_empty() {
                    // Only what the Fix policy leaves alone (maximumPercent).
                    tracing::warn!(service = %target.service, ?problems, "deployment configuration left as it is");
                    self.progress
                        .emit(&ProgressEvent::DeploymentConfigurationWarning {
                            problems: problems.clone(),
                        });
                    None
                } else {
                    tracing::info!(service = %target.service, ?changes, "fixing the deployment configuration");
                    self.progress
                        .emit(&ProgressEvent::DeploymentConfigurationFixed {
                            problems: problems.clone(),
                            changes: changes.clone(),
                        });
                    Some(fixed)
                }
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
        Ok(ConfigurationFix {
            problems,
            changes,
            fixed,
        })
    }

    /// Deploys `request` to `target` and watches it to a verdict; rolls back
    /// when needed, marks a failed revision, prunes old revisions after a
    /// success. Errors mean no verdict could be reached (ECS unreachable,
    /// service busy, invalid task definition, a step refused by the
    /// [`StepGate`]); rollout failures are outcomes. Once `UpdateService`
    /// returned our deployment, the run ends with an outcome (only a
    /// refusal by the gate is still an error): a failed read is a missed
    /// poll, and reads failing until the monitor's timeout end in
    /// [`RolloutOutcome::MonitoringLost`], which names the deployment to
    /// resume watching.
    ///
    /// Refused before anything is registered: a service of the
    /// `CODE_DEPLOY` or `EXTERNAL` deployment controller
    /// ([`Error::UnsupportedDeploymentController`]). When the running
    /// revision is INACTIVE, its exact spec is registered again and used as
    /// the rollback target.
    ///
    /// Registration is idempotent: when the family's newest ACTIVE revision
    /// (other than the running one) already equals the clone (marker tags
    /// aside), e.g. because an earlier run was interrupted after
    /// registering, that revision is deployed instead of registering
    /// another one.
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

        self.check_judgeable(target, &service).await?;
        let fix = self.configuration_fix(target, &service)?;

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
        // Never start a deployment that cannot be rolled back.
        let previous = self.usable_rollback_target(&current_td).await?;
        let new_td = match self.reusable_clone(&current_td, &spec).await? {
            Some(existing) => {
                tracing::info!(arn = %existing.arn, "reusing an identical revision registered earlier");
                existing
            }
            None => {
                self.gate(RolloutStep::RegisterTaskDefinition {
                    family: spec.family.clone(),
                    from_task_definition_arn: previous.arn.clone(),
                })
                .await?;
                self.ecs.register_task_definition(&spec).await?
            }
        };
        self.progress
            .emit(&ProgressEvent::TaskDefinitionRegistered {
                arn: new_td.arn.clone(),
            });

        let previous_deployment = service.primary().map(|d| d.id.clone());
        let deployment_id = self
            .deploy(
                target,
                (&new_td.arn, &previous.arn),
                previous_deployment,
                fix.fixed,
            )
            .await?;
        self.conclude(Tracked {
            target,
            request,
            new_td: &new_td,
            previous: &previous,
            deployment_id,
            service_deployment_arn: None,
            configuration_problems: fix.problems,
            configuration_changes: fix.changes,
            start,
        })
        .await
    }

    /// The rollback target: the running revision when it is ACTIVE. When it
    /// is INACTIVE (deregistered by someone), `UpdateService` could not go
    /// back to it, so its exact spec (marker tags aside) is registered
    /// again (gated as [`RolloutStep::RegisterTaskDefinition`]) and that
    /// revision is the rollback target; a re-registration an earlier run
    /// made (the family's newest ACTIVE revision, same spec) is reused.
    async fn usable_rollback_target(
        &self,
        current: &RegisteredTaskDefinition,
    ) -> Result<RegisteredTaskDefinition> {
        if current.status == TaskDefinitionStatus::Active {
            return Ok(current.clone());
        }
        let spec = without_marker_tags(&current.spec);
        match self.ecs.describe_task_definition(&spec.family).await {
            Ok(newest)
                if newest.status == TaskDefinitionStatus::Active
                    && without_marker_tags(&newest.spec) == spec =>
            {
                tracing::info!(arn = %newest.arn, "reusing the re-registered rollback target");
                return Ok(newest);
            }
            Ok(_) | Err(Error::NotFound { .. }) => {}
            Err(error) => return Err(error),
        }
        self.gate(RolloutStep::RegisterTaskDefinition {
            family: spec.family.clone(),
            from_task_definition_arn: current.arn.clone(),
        })
        .await?;
        let registered = self.ecs.register_task_definition(&spec).await?;
        tracing::warn!(
            inactive = %current.arn,
            arn = %registered.arn,
            "the running revision is INACTIVE; re-registered its spec as the rollback target"
        );
        self.progress
            .emit(&ProgressEvent::RollbackTargetReregistered {
                inactive_task_definition_arn: current.arn.clone(),
                task_definition_arn: registered.arn.clone(),
            });
        Ok(registered)
    }

    /// The family's newest ACTIVE revision, if it is not `current` and its
    /// spec equals `spec` apart from marker tags: a clone an interrupted
    /// run registered. One `DescribeTaskDefinition` of the bare family.
    async fn reusable_clone(
        &self,
        current: &RegisteredTaskDefinition,
        spec: &TaskDefinitionSpec,
    ) -> Result<Option<RegisteredTaskDefinition>> {
        let newest = match self.ecs.describe_task_definition(&spec.family).await {
            Ok(newest) => newest,
            Err(Error::NotFound { .. }) => return Ok(None),
            Err(error) => return Err(error),
        };
        let reusable = newest.arn != current.arn
            && newest.status == TaskDefinitionStatus::Active
            && without_marker_tags(&newest.spec) == without_marker_tags(spec);
        Ok(reusable.then_some(newest))
    }

    /// Our forward deployment of `(clone, previous)` over the PRIMARY
    /// deployment `previous_deployment_id`: asks the gate, calls
    /// `UpdateService`, and returns OUR deployment's id.
    async fn deploy(
        &self,
        target: &RolloutTarget,
        (task_definition_arn, previous_task_definition_arn): (&str, &str),
        previous_deployment_id: Option<String>,
        deployment_configuration: Option<DeploymentConfiguration>,
    ) -> Result<String> {
        self.gate(RolloutStep::UpdateService {
            task_definition_arn: task_definition_arn.to_owned(),
            previous_task_definition_arn: previous_task_definition_arn.to_owned(),
            previous_deployment_id,
        })
        .await?;
        let update = self
            .ecs
            .update_service(&UpdateServiceRequest {
                cluster: target.cluster.clone(),
                service: target.service.clone(),
                task_definition: task_definition_arn.to_owned(),
                deployment_configuration,
                force_new_deployment: false,
            })
            .await?;
        self.progress.emit(&ProgressEvent::DeploymentStarted {
            deployment_id: update.deployment_id.clone(),
            task_definition_arn: task_definition_arn.to_owned(),
            rollback: false,
        });
        Ok(update.deployment_id)
    }

    /// The shared tail of [`Rollout::run`] and [`Rollout::resume`]: asks the
    /// gate, monitors our deployment to a verdict, watches ECS's rollback or
    /// rolls back ourselves, then marks, prunes and reports.
    async fn conclude(&self, tracked: Tracked<'_>) -> Result<RolloutReport> {
        let Tracked {
            target,
            request,
            new_td,
            previous,
            deployment_id,
            service_deployment_arn,
            configuration_problems,
            configuration_changes,
            start,
        } = tracked;
        self.gate(RolloutStep::Monitoring {
            deployment_id: deployment_id.clone(),
            task_definition_arn: new_td.arn.clone(),
            previous_task_definition_arn: previous.arn.clone(),
        })
        .await?;
        let deploy_start = self.clock.monotonic();
        let health_checked = health_checked_containers(&new_td.spec);
        let watch = Watch {
            target,
            deployment_id: &deployment_id,
            task_definition_arn: &new_td.arn,
            previous_task_definition_arn: &previous.arn,
            health_checked: &health_checked,
            bake_time: self.config.monitor.bake_time,
            timeout: self.config.monitor.timeout,
            service_deployment_arn: service_deployment_arn.as_deref(),
            rollback: false,
        };
        let (verdict, obs) = self.monitor().watch(&watch).await?;
        let mut evidence = RolloutEvidence {
            deployment_id: deployment_id.clone(),
            task_definition_arn: new_td.arn.clone(),
            previous_task_definition_arn: previous.arn.clone(),
            configuration_problems,
            configuration_changes,
            deployment_duration: self.clock.monotonic() - deploy_start,
            ..Default::default()
        };
        absorb(&mut evidence, &obs);
        let sd_arn = obs.service_deployment_arn.clone();
        let failed = Failed {
            target,
            deployment_id: &deployment_id,
            service_deployment_arn: sd_arn.as_deref(),
            previous,
            failed_arn: &new_td.arn,
        };

        let outcome = match verdict {
            Verdict::Stopped { status_reason } => RolloutOutcome::DeploymentStopped {
                status_reason,
                evidence,
            },
            Verdict::Completed => RolloutOutcome::Succeeded { evidence },
            Verdict::CompletedWithoutTasks => RolloutOutcome::DeployedUnverified { evidence },
            Verdict::Lost { last_error } => RolloutOutcome::MonitoringLost {
                deployment_id: deployment_id.clone(),
                task_definition_arn: new_td.arn.clone(),
                previous_task_definition_arn: previous.arn.clone(),
                last_error,
                evidence,
            },
            Verdict::Superseded {
                by_deployment_id,
                task_definition_arn,
            } => RolloutOutcome::Superseded {
                by_deployment_id,
                task_definition_arn,
                evidence,
            },
            Verdict::FailedThenSuperseded {
                reason,
                by_deployment_id,
                task_definition_arn,
            } => RolloutOutcome::SupersededAfterFailure {
                reason,
                by_deployment_id,
                task_definition_arn,
                evidence,
            },
            Verdict::Failed {
                reason,
                ecs_rollback: Some(ecs_rollback),
            } => {
                self.after_ecs_rollback(&failed, reason, ecs_rollback, evidence)
                    .await?
            }
            Verdict::Failed {
                reason,
                ecs_rollback: None,
            } => {
                // ECS may be about to roll back by itself: never race it.
                let ecs_rollback = if obs.breaker_rolls_back
                    && matches!(
                        reason,
                        FailureReason::CircuitBreaker { .. }
                            | FailureReason::DeploymentAlarm { .. }
                            | FailureReason::DeterministicStartFailure { .. }
                    ) {
                    self.progress.emit(&ProgressEvent::AwaitingEcsRollback {
                        deployment_id: deployment_id.clone(),
                        polls: ECS_ROLLBACK_WAIT_POLLS,
                    });
                    self.monitor()
                        .await_ecs_rollback(&watch, ECS_ROLLBACK_WAIT_POLLS)
                        .await
                } else {
                    None
                };
                match ecs_rollback {
                    Some(AfterFailure::EcsRollback(ecs_rollback)) => {
                        self.after_ecs_rollback(&failed, reason, ecs_rollback, evidence)
                            .await?
                    }
                    // Someone else deployed meanwhile: rolling back would
                    // undo their deployment.
                    Some(AfterFailure::Superseded {
                        by_deployment_id,
                        task_definition_arn,
                    }) => RolloutOutcome::SupersededAfterFailure {
                        reason,
                        by_deployment_id,
                        task_definition_arn,
                        evidence,
                    },
                    None => {
                        let rollback = self.roll_back(&failed, &reason).await?;
                        after_rollback(reason, rollback, evidence, |reason, rollback, evidence| {
                            RolloutOutcome::RolledBackByUs {
                                reason,
                                rollback,
                                evidence,
                            }
                        })
                    }
                }
            }
            Verdict::TimedOut => {
                let timeout = self.config.monitor.timeout;
                let reason = FailureReason::Timeout { after: timeout };
                let rollback = self.roll_back(&failed, &reason).await?;
                after_rollback(reason, rollback, evidence, |_, rollback, evidence| {
                    RolloutOutcome::TimedOut {
                        timeout,
                        rollback,
                        evidence,
                    }
                })
            }
        };
        self.finish(target, request, outcome, new_td, previous, start)
            .await
    }

    fn monitor(&self) -> Monitor<'_> {
        Monitor {
            ecs: &self.ecs,
            clock: &self.clock,
            config: &self.config.monitor,
            progress: self.progress.as_ref(),
        }
    }

    /// ECS rolled (or is rolling) our deployment back: report it, watching
    /// the rollback when it is still running.
    async fn after_ecs_rollback(
        &self,
        failed: &Failed<'_>,
        reason: FailureReason,
        ecs_rollback: EcsRollback,
        evidence: RolloutEvidence,
    ) -> Result<RolloutOutcome> {
        self.progress.emit(&ProgressEvent::RollbackStarted {
            initiator: RollbackInitiator::Ecs,
            task_definition_arn: ecs_rollback.task_definition_arn.clone(),
            reason: reason.to_string(),
        });
        let start = self.clock.monotonic();
        // ECS rolls back to the last COMPLETED deployment: accept whatever
        // revision it runs (same spec as `previous` when `previous` is a
        // re-registration of an INACTIVE revision), and report it.
        let rollback = match ecs_rollback.finished {
            Some(finished) => RollbackEvidence {
                initiator: RollbackInitiator::Ecs,
                deployment_id: ecs_rollback.deployment_id,
                task_definition_arn: ecs_rollback.task_definition_arn,
                completed: finished.is_ok(),
                failure: finished.err(),
                stopped_task_reasons: Vec::new(),
                // Over before we saw it start: none of it was watched.
                duration: Duration::ZERO,
            },
            None => {
                self.follow_rollback(
                    failed,
                    RollbackInitiator::Ecs,
                    ecs_rollback.deployment_id,
                    start,
                )
                .await?
            }
        };
        Ok(after_rollback(
            reason,
            rollback,
            evidence,
            |reason, rollback, evidence| RolloutOutcome::RolledBackByEcs {
                reason,
                rollback,
                evidence,
            },
        ))
    }

    /// Our own rollback of a failed deployment: asks the gate, then
    /// `StopServiceDeployment(ROLLBACK)` of our service deployment where the
    /// API exists (ECS rolls back to the last COMPLETED revision, even when
    /// the service has no rollback configured), else (or when ECS refuses
    /// it, e.g. because the deployment already finished) `UpdateService`
    /// back to the previous task definition; then watches the rollback.
    async fn roll_back(
        &self,
        failed: &Failed<'_>,
        reason: &FailureReason,
    ) -> Result<RollbackEvidence> {
        let reason = reason.to_string();
        let Some(arn) = failed.service_deployment_arn else {
            return self
                .start_rollback(failed.target, &reason, failed.previous, failed.failed_arn)
                .await;
        };
        self.gate(RolloutStep::RollingBack {
            task_definition_arn: failed.previous.arn.clone(),
            failed_task_definition_arn: failed.failed_arn.to_owned(),
            reason: reason.clone(),
        })
        .await?;
        let start = self.clock.monotonic();
        match self
            .ecs
            .stop_service_deployment(arn, StopType::Rollback)
            .await
        {
            Ok(()) => {
                self.progress.emit(&ProgressEvent::RollbackStarted {
                    initiator: RollbackInitiator::Us,
                    task_definition_arn: failed.previous.arn.clone(),
                    reason,
                });
                self.follow_rollback(failed, RollbackInitiator::Us, None, start)
                    .await
            }
            Err(error) => {
                tracing::warn!(service_deployment = arn, %error,
                    "StopServiceDeployment(ROLLBACK) failed; rolling back with UpdateService");
                self.update_service_rollback(
                    failed.target,
                    &reason,
                    failed.previous,
                    failed.failed_arn,
                )
                .await
            }
        }
    }

    /// Watches a rollback of the failed deployment to its end: the rollback
    /// deployment `deployment_id`, or (when not known yet) the first
    /// PRIMARY that is not the failed deployment. Bounded by
    /// [`RolloutConfig::rollback_timeout`] from `start`.
    async fn follow_rollback(
        &self,
        failed: &Failed<'_>,
        initiator: RollbackInitiator,
        deployment_id: Option<String>,
        start: Duration,
    ) -> Result<RollbackEvidence> {
        let timeout = self.config.rollback_timeout;
        let (deployment_id, rollback_arn) = match deployment_id {
            Some(id) => {
                let arn = self
                    .ecs
                    .describe_service(&failed.target.cluster, &failed.target.service)
                    .await
                    .ok()
                    .and_then(|s| s.deployment(&id).map(|d| d.task_definition_arn.clone()))
                    .unwrap_or_else(|| failed.previous.arn.clone());
                (id, arn)
            }
            None => loop {
                let waited = self.clock.monotonic() - start;
                let service = self
                    .ecs
                    .describe_service(&failed.target.cluster, &failed.target.service)
                    .await;
                if let Some(primary) = service
                    .as_ref()
                    .ok()
                    .and_then(|s| s.primary())
                    .filter(|p| p.id != failed.deployment_id)
                {
                    break (primary.id.clone(), primary.task_definition_arn.clone());
                }
                if waited >= timeout {
                    return Ok(RollbackEvidence {
                        initiator,
                        deployment_id: None,
                        task_definition_arn: failed.previous.arn.clone(),
                        completed: false,
                        failure: Some(format!(
                            "no rollback deployment became PRIMARY within {} s",
                            timeout.as_secs()
                        )),
                        stopped_task_reasons: Vec::new(),
                        duration: waited,
                    });
                }
                self.clock
                    .sleep(self.config.monitor.poll_min.min(timeout - waited))
                    .await;
            },
        };
        let mut evidence = self
            .watch_rollback_for(
                failed.target,
                initiator,
                deployment_id,
                (&rollback_arn, failed.previous),
                failed.failed_arn,
                failed.service_deployment_arn,
                timeout.saturating_sub(self.clock.monotonic() - start),
            )
            .await?;
        evidence.duration = self.clock.monotonic() - start;
        Ok(evidence)
    }

    /// The gated `UpdateService` back to `previous`, watched to the end
    /// (shared by our rollback where `StopServiceDeployment` is not
    /// available and [`revert`](Self::revert)).
    async fn start_rollback(
        &self,
        target: &RolloutTarget,
        reason: &str,
        previous: &RegisteredTaskDefinition,
        failed_arn: &str,
    ) -> Result<RollbackEvidence> {
        self.gate(RolloutStep::RollingBack {
            task_definition_arn: previous.arn.clone(),
            failed_task_definition_arn: failed_arn.to_owned(),
            reason: reason.to_owned(),
        })
        .await?;
        self.update_service_rollback(target, reason, previous, failed_arn)
            .await
    }

    /// `UpdateService` back to `previous` (the gate was asked), watched.
    async fn update_service_rollback(
        &self,
        target: &RolloutTarget,
        reason: &str,
        previous: &RegisteredTaskDefinition,
        failed_arn: &str,
    ) -> Result<RollbackEvidence> {
        self.progress.emit(&ProgressEvent::RollbackStarted {
            initiator: RollbackInitiator::Us,
            task_definition_arn: previous.arn.clone(),
            reason: reason.to_owned(),
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
                    stopped_task_reasons: Vec::new(),
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
            (&previous.arn, previous),
            failed_arn,
        )
        .await
    }

    /// Rolls `target` back to `previous_task_definition_arn` after a
    /// deployment of `failed_task_definition_arn` that *succeeded* must be
    /// undone (the orchestrator: a later service of the same release
    /// failed, so this one must not stay on the new release). Gated as
    /// [`RolloutStep::RollingBack`]; watched to completion within
    /// [`RolloutConfig::rollback_timeout`].
    ///
    /// Idempotent: when the service's PRIMARY deployment already runs the
    /// previous task definition (a resumed revert whose `UpdateService`
    /// landed), that deployment is watched and no new one is started.
    pub async fn revert(
        &self,
        target: &RolloutTarget,
        previous_task_definition_arn: &str,
        failed_task_definition_arn: &str,
        reason: &str,
    ) -> Result<RollbackEvidence> {
        let previous = self
            .ecs
            .describe_task_definition(previous_task_definition_arn)
            .await?;
        let service = self
            .ecs
            .describe_service(&target.cluster, &target.service)
            .await?;
        if let Some(primary) = service
            .primary()
            .filter(|d| d.task_definition_arn == previous.arn)
        {
            return self
                .watch_rollback(
                    target,
                    RollbackInitiator::Us,
                    primary.id.clone(),
                    (&previous.arn, &previous),
                    failed_task_definition_arn,
                )
                .await;
        }
        self.start_rollback(target, reason, &previous, failed_task_definition_arn)
            .await
    }

    /// Watches a rollback deployment (ECS's or ours) of `rollback_arn`
    /// (whose spec is `previous`'s) to completion.
    async fn watch_rollback(
        &self,
        target: &RolloutTarget,
        initiator: RollbackInitiator,
        deployment_id: String,
        rollback: (&str, &RegisteredTaskDefinition),
        failed_arn: &str,
    ) -> Result<RollbackEvidence> {
        self.watch_rollback_for(
            target,
            initiator,
            deployment_id,
            rollback,
            failed_arn,
            None,
            self.config.rollback_timeout,
        )
        .await
    }

    /// [`watch_rollback`](Self::watch_rollback) within `timeout`, also
    /// judging by the failed deployment's service deployment
    /// (`ROLLBACK_SUCCESSFUL` / `ROLLBACK_FAILED`) when its ARN is known.
    #[allow(clippy::too_many_arguments)]
    async fn watch_rollback_for(
        &self,
        target: &RolloutTarget,
        initiator: RollbackInitiator,
        deployment_id: String,
        (rollback_arn, previous): (&str, &RegisteredTaskDefinition),
        failed_arn: &str,
        failed_service_deployment_arn: Option<&str>,
        timeout: Duration,
    ) -> Result<RollbackEvidence> {
        let start = self.clock.monotonic();
        let health_checked = health_checked_containers(&previous.spec);
        // A rollback that became PRIMARY at the deadline still gets two
        // polls, `poll_min` apart.
        let timeout = timeout.max(self.config.monitor.poll_min);
        let (verdict, obs) = self
            .monitor()
            .watch(&Watch {
                target,
                deployment_id: &deployment_id,
                task_definition_arn: rollback_arn,
                previous_task_definition_arn: failed_arn,
                health_checked: &health_checked,
                bake_time: Duration::ZERO,
                timeout,
                service_deployment_arn: failed_service_deployment_arn,
                rollback: true,
            })
            .await?;
        let failure = match verdict {
            Verdict::Completed | Verdict::CompletedWithoutTasks => None,
            Verdict::Stopped { status_reason } => Some(format!(
                "the rollback was stopped: {}",
                status_reason.as_deref().unwrap_or("no reason given")
            )),
            Verdict::Lost { last_error } => Some(format!(
                "could not watch the rollback deployment (every poll failed until the \
                 rollback timeout): {last_error}"
            )),
            Verdict::Failed { reason, .. } => Some(reason.to_string()),
            Verdict::Superseded {
                by_deployment_id,
                task_definition_arn,
            }
            | Verdict::FailedThenSuperseded {
                by_deployment_id,
                task_definition_arn,
                ..
            } => Some(format!(
                "superseded by deployment {by_deployment_id} of {task_definition_arn}"
            )),
            Verdict::TimedOut => Some(format!("did not complete within {} s", timeout.as_secs())),
        };
        Ok(RollbackEvidence {
            initiator,
            deployment_id: Some(deployment_id),
            task_definition_arn: rollback_arn.to_owned(),
            completed: failure.is_none(),
            stopped_task_reasons: if failure.is_some() {
                obs.stopped_task_reasons
            } else {
                Vec::new()
            },
            failure,
            duration: self.clock.monotonic() - start,
        })
    }

    /// Marks, prunes, fills the call counts, builds the report. Failures of
    /// tagging and retention are warnings; a refusal by the gate is
    /// [`Error::StepRefused`].
    async fn finish(
        &self,
        target: &RolloutTarget,
        request: &RolloutRequest,
        mut outcome: RolloutOutcome,
        new_td: &RegisteredTaskDefinition,
        previous: &RegisteredTaskDefinition,
        start: Duration,
    ) -> Result<RolloutReport> {
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
                self.gate(RolloutStep::MarkRevision {
                    task_definition_arn: new_td.arn.clone(),
                })
                .await?;
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
            deregistered = self
                .prune(target, keep, new_td, previous, &mut warnings)
                .await?;
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
        Ok(RolloutReport {
            outcome,
            quarantine,
            deregistered,
            warnings,
        })
    }

    /// Retention, protecting the running revision, the rollback target and
    /// every revision a deployment of the service still uses. Asks the gate
    /// (once, with the whole list) before deregistering anything. Returns
    /// what was deregistered; ECS failures become `warnings` (what was
    /// deregistered before one stays deregistered).
    async fn prune(
        &self,
        target: &RolloutTarget,
        keep: usize,
        new_td: &RegisteredTaskDefinition,
        previous: &RegisteredTaskDefinition,
        warnings: &mut Vec<String>,
    ) -> Result<Vec<String>> {
        let doomed = match self
            .retention_candidates(target, keep, new_td, previous)
            .await
        {
            Ok(doomed) => doomed,
            Err(error) => {
                warnings.push(format!("retention failed: {error}"));
                return Ok(Vec::new());
            }
        };
        if doomed.is_empty() {
            return Ok(Vec::new());
        }
        self.gate(RolloutStep::Deregister {
            task_definition_arns: doomed.clone(),
        })
        .await?;
        let mut done = Vec::with_capacity(doomed.len());
        for arn in doomed {
            if let Err(error) = self.ecs.deregister_task_definition(&arn).await {
                warnings.push(format!("retention failed: {error}"));
                break;
            }
            self.progress
                .emit(&ProgressEvent::RevisionDeregistered { arn: arn.clone() });
            done.push(arn);
        }
        Ok(done)
    }

    /// The revisions retention would deregister now.
    async fn retention_candidates(
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
        let protected = protected_revisions(&service, new_td, previous);
        let active = list_all_revisions(&self.ecs, &new_td.spec.family).await?;
        Ok(revisions_to_deregister(&active, keep.max(1), &protected))
    }
}

impl Rollout {
    /// Refuses a service whose deployments report no `rolloutState` (ECS
    /// omits it behind a Classic Load Balancer), or that deploys blue/green,
    /// linear or canary, when its service deployments cannot be read
    /// ([`Error::NeedsServiceDeployments`]): nothing else could tell how our
    /// deployment ends, and the monitor would end in a false `TimedOut`
    /// and roll a healthy version back.
    async fn check_judgeable(
        &self,
        target: &RolloutTarget,
        service: &ServiceDescription,
    ) -> Result<()> {
        let because = if !service.is_rolling() {
            format!(
                "deploys with the {} strategy",
                service.deployment_strategy.as_deref().unwrap_or_default()
            )
        } else if service.primary().is_some_and(|p| p.rollout_state.is_none()) {
            "reports no rolloutState for its deployments (a Classic Load Balancer?)".to_owned()
        } else {
            return Ok(());
        };
        match self
            .ecs
            .describe_service_deployments(&target.cluster, &target.service)
            .await
        {
            Ok(_) => {
                tracing::info!(service = %target.service, %because,
                    "judging by the service deployments alone");
                Ok(())
            }
            Err(error)
                if matches!(error, Error::Unsupported { .. })
                    || error.class() == Some(ErrorClass::Permanent) =>
            {
                Err(Error::NeedsServiceDeployments {
                    service: target.service.clone(),
                    because,
                    reason: error.to_string(),
                })
            }
            Err(error) => Err(error),
        }
    }
}

/// Refuses a service of the `CODE_DEPLOY` or `EXTERNAL` deployment controller.
/// The revisions retention never deregisters: ours, the rollback target,
/// the service's running one, and every revision a listed deployment that
/// is not INACTIVE still uses (ECS may still launch its tasks: a deployment
/// someone started right after ours, draining behind theirs).
fn protected_revisions(
    service: &ServiceDescription,
    new_td: &RegisteredTaskDefinition,
    previous: &RegisteredTaskDefinition,
) -> Vec<String> {
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
    protected
}

/// The deployment of `task_definition_arn` to follow when a run resumes or
/// is watched again: the PRIMARY one, else an ACTIVE one (someone else's
/// deployment took over: the monitor says so), else any other (INACTIVE
/// or without a status). Several can exist when the same revision was
/// deployed twice (a retried `UpdateService`, a forced new deployment).
fn deployment_of<'a>(
    service: &'a ServiceDescription,
    task_definition_arn: &str,
) -> Option<&'a crate::Deployment> {
    service
        .deployments
        .iter()
        .filter(|d| d.task_definition_arn == task_definition_arn)
        .min_by_key(|d| match d.status {
            Some(crate::DeploymentStatus::Primary) => 0,
            Some(crate::DeploymentStatus::Active) => 1,
            _ => 2,
        })
}

fn check_controller(target: &RolloutTarget, service: &ServiceDescription) -> Result<()> {
    if service.has_ecs_controller() {
        return Ok(());
    }
    Err(Error::UnsupportedDeploymentController {
        service: target.service.clone(),
        controller: service.deployment_controller.clone().unwrap_or_default(),
    })
}

fn evidence_mut(outcome: &mut RolloutOutcome) -> Option<&mut RolloutEvidence> {
    match outcome {
        RolloutOutcome::Succeeded { evidence }
        | RolloutOutcome::RolledBackByEcs { evidence, .. }
        | RolloutOutcome::RolledBackByUs { evidence, .. }
        | RolloutOutcome::RollbackFailed { evidence, .. }
        | RolloutOutcome::TimedOut { evidence, .. }
        | RolloutOutcome::Superseded { evidence, .. }
        | RolloutOutcome::SupersededAfterFailure { evidence, .. }
        | RolloutOutcome::MonitoringLost { evidence, .. }
        | RolloutOutcome::DeployedUnverified { evidence }
        | RolloutOutcome::DeploymentStopped { evidence, .. } => Some(evidence),
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
    evidence.missed_polls = obs.missed_polls;
    evidence.service_deployment_arn = obs.service_deployment_arn.clone();
    evidence.service_deployment_status = obs.service_deployment_status.clone();
    evidence.decided_by = obs.decided_by;
}

/// `spec` without this crate's marker tags (for comparing revisions).
fn without_marker_tags(spec: &TaskDefinitionSpec) -> TaskDefinitionSpec {
    let mut spec = spec.clone();
    spec.tags
        .retain(|key, _| !key.starts_with(MARKER_TAG_PREFIX));
    spec
}

/// Essential containers with a health check: the ones that must be HEALTHY.
fn health_checked_containers(spec: &TaskDefinitionSpec) -> Vec<String> {
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

    /// Right after our deployment completed, someone deployed Y and at
    /// once Z: Y's deployment is still listed ACTIVE behind Z's PRIMARY
    /// (its tasks draining), and a deployment without a status may be
    /// anything. Retention keeps Y and that one; an INACTIVE deployment's
    /// revision is no longer used and may go.
    #[test]
    fn retention_protects_what_a_listed_deployment_still_uses() {
        use crate::{Deployment, DeploymentStatus};
        let td = |n: u32| RegisteredTaskDefinition {
            arn: format!("td:{n}"),
            ..Default::default()
        };
        let deployment = |td: &str, status| Deployment {
            task_definition_arn: td.into(),
            status,
            ..Default::default()
        };
        let service = ServiceDescription {
            task_definition_arn: "td:5".into(),
            deployments: vec![
                deployment("td:5", Some(DeploymentStatus::Primary)),
                deployment("td:4", Some(DeploymentStatus::Active)),
                deployment("td:3", None),
                deployment("td:2", Some(DeploymentStatus::Inactive)),
            ],
            ..Default::default()
        };
        let mut protected = protected_revisions(&service, &td(7), &td(1));
        protected.sort();
        protected.dedup();
        assert_eq!(protected, ["td:1", "td:3", "td:4", "td:5", "td:7"]);
    }

    /// The revision deployed twice (a retried `UpdateService`, a forced new
    /// deployment): a resumed or re-watched run follows its PRIMARY
    /// deployment, else its ACTIVE one, never an INACTIVE one listed first.
    #[test]
    fn the_deployment_to_follow_is_primary_then_active_then_any() {
        use crate::{Deployment, DeploymentStatus};
        let deployment = |id: &str, td: &str, status| Deployment {
            id: id.into(),
            task_definition_arn: td.into(),
            status,
            ..Default::default()
        };
        let service = |deployments| ServiceDescription {
            deployments,
            ..Default::default()
        };
        let of = |s: &ServiceDescription| deployment_of(s, "td:2").map(|d| d.id.clone());
        let all = service(vec![
            deployment("inactive", "td:2", Some(DeploymentStatus::Inactive)),
            deployment("active", "td:2", Some(DeploymentStatus::Active)),
            deployment("other", "td:1", Some(DeploymentStatus::Primary)),
            deployment("primary", "td:2", Some(DeploymentStatus::Primary)),
        ]);
        assert_eq!(of(&all).as_deref(), Some("primary"));
        let no_primary = service(vec![
            deployment("inactive", "td:2", Some(DeploymentStatus::Inactive)),
            deployment("unknown", "td:2", None),
            deployment("active", "td:2", Some(DeploymentStatus::Active)),
        ]);
        assert_eq!(of(&no_primary).as_deref(), Some("active"));
        let only_inactive = service(vec![
            deployment("other", "td:1", Some(DeploymentStatus::Primary)),
            deployment("inactive", "td:2", Some(DeploymentStatus::Inactive)),
        ]);
        assert_eq!(of(&only_inactive).as_deref(), Some("inactive"));
        assert_eq!(of(&service(Vec::new())), None);
    }

    #[test]
    fn tag_values_are_sanitised_and_capped() {
        assert_eq!(tag_value("a (b) \"c\"!"), "a  b   c  ");
        assert_eq!(tag_value(&"x".repeat(300)).len(), 256);
    }

    #[test]
    fn the_fix_changes_nothing_that_is_already_safe() {
        for fix_maximum_percent in [false, true] {
            let (fixed, changes) = fix_deployment_configuration(
                &DeploymentConfiguration::safe_rolling(),
                fix_maximum_percent,
            );
            assert_eq!(fixed, DeploymentConfiguration::safe_rolling());
            assert!(changes.is_empty(), "{changes:?}");
            // Unset percentages are ECS's defaults (100/200): left unset.
            let unset = DeploymentConfiguration {
                circuit_breaker: Some(CircuitBreaker::enabled_with_rollback()),
                ..Default::default()
            };
            let (fixed, changes) = fix_deployment_configuration(&unset, fix_maximum_percent);
            assert_eq!(fixed, unset);
            assert!(changes.is_empty(), "{changes:?}");
        }
        // Above 200 is never lowered.
        let wide = DeploymentConfiguration {
            maximum_percent: Some(300),
            ..DeploymentConfiguration::safe_rolling()
        };
        assert_eq!(fix_deployment_configuration(&wide, true), (wide, vec![]));
    }

    #[test]
    fn deployment_configuration_problems_table() {
        let cb = |enable, rollback| {
            Some(CircuitBreaker {
                enable,
                rollback,
                ..Default::default()
            })
        };
        // What each breaker problem says.
        for (breaker, problem) in [
            (cb(true, false), "the circuit breaker does not roll back"),
            (cb(false, true), "the deployment circuit breaker is off"),
            (None, "the deployment circuit breaker is off"),
        ] {
            let config = DeploymentConfiguration {
                circuit_breaker: breaker,
                ..DeploymentConfiguration::safe_rolling()
            };
            assert_eq!(deployment_configuration_problems(&config), [problem]);
        }
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
