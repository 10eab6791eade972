//! Watching one deployment, by its id, until a verdict.

use std::{collections::HashSet, sync::Arc, time::Duration};

use update_clock::Clock;

use crate::{
    DesiredStatus, EcsApi, Error, FailureReason, HealthStatus, ListTasksRequest, MonitorConfig,
    ProgressEvent, ProgressSink, Result, RolloutState, RolloutTarget, ServiceDescription,
    StoppedTaskEvidence, TaskDescription, circuit_breaker_threshold,
};

/// The verdict on one deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// PRIMARY, COMPLETED, every essential health-checked container
    /// HEALTHY (through the bake time).
    Completed,
    /// The deployment failed. `ecs_rollback` is the id of the rollback
    /// deployment ECS created, if it did.
    Failed {
        reason: FailureReason,
        ecs_rollback: Option<String>,
    },
    /// Someone else's deployment became PRIMARY.
    Superseded {
        by_deployment_id: String,
        task_definition_arn: String,
    },
    /// No verdict within the timeout.
    TimedOut,
}

/// What one watch collected.
#[derive(Debug, Clone, Default)]
pub(crate) struct Observations {
    pub failed_tasks: i32,
    pub threshold: u32,
    pub rollout_state_reason: Option<String>,
    pub stopped_tasks: Vec<StoppedTaskEvidence>,
    pub stopped_task_reasons: Vec<String>,
    pub unhealthy_containers: Vec<String>,
    pub polls: u32,
    pub duration: Duration,
}

/// The deployment to watch.
#[derive(Debug, Clone)]
pub(crate) struct Watch<'a> {
    pub target: &'a RolloutTarget,
    pub deployment_id: &'a str,
    pub task_definition_arn: &'a str,
    /// The task definition a rollback by ECS goes to.
    pub previous_task_definition_arn: &'a str,
    /// Essential containers that have a health check.
    pub health_checked: &'a [String],
    pub bake_time: Duration,
    pub timeout: Duration,
}

pub(crate) struct Monitor<'a> {
    pub ecs: &'a dyn EcsApi,
    pub clock: &'a Arc<dyn Clock>,
    pub config: &'a MonitorConfig,
    pub progress: &'a dyn ProgressSink,
}

#[derive(Debug, Default, PartialEq, Eq, Clone, Copy)]
struct Counts {
    state: Option<RolloutState>,
    pending: i32,
    running: i32,
    failed: i32,
}

/// Task-level facts of one inspection.
#[derive(Debug, Default)]
struct Inspection {
    running_ours: usize,
    all_healthy: bool,
    fail_fast: Option<String>,
    new_failures: usize,
}

impl Monitor<'_> {
    pub(crate) async fn watch(&self, watch: &Watch<'_>) -> Result<(Verdict, Observations)> {
        let mut obs = Observations::default();
        let start = self.clock.monotonic();
        let mut interval = self.config.poll_min;
        let mut last_counts: Option<Counts> = None;
        let mut last_inspection: Option<Duration> = None;
        let mut seen_failed = false;
        let mut seen_stopped: HashSet<String> = HashSet::new();
        let mut bake_started: Option<Duration> = None;
        loop {
            obs.polls += 1;
            let now = self.clock.monotonic();
            obs.duration = now - start;
            let service = self
                .ecs
                .describe_service(&watch.target.cluster, &watch.target.service)
                .await?;
            let ours = service.deployment(watch.deployment_id).cloned();
            if let Some(d) = &ours {
                obs.failed_tasks = d.failed_tasks;
                if d.rollout_state_reason.is_some() {
                    obs.rollout_state_reason = d.rollout_state_reason.clone();
                }
                seen_failed |= d.rollout_state == Some(RolloutState::Failed);
            }
            let primary = service
                .primary()
                .cloned()
                .ok_or_else(|| Error::UnexpectedResponse {
                    resource: watch.target.service.clone(),
                    reason: "the service has no PRIMARY deployment".into(),
                })?;
            if primary.id != watch.deployment_id {
                let verdict = self.foreign_primary(watch, &service, seen_failed, &obs);
                if matches!(verdict, Verdict::Failed { .. }) {
                    // Evidence: why our tasks stopped, even though ECS decided.
                    self.inspect(watch, &mut seen_stopped, &mut obs).await?;
                }
                return Ok((verdict, obs));
            }
            if primary.task_definition_arn != watch.task_definition_arn {
                return Err(Error::UnexpectedResponse {
                    resource: watch.target.service.clone(),
                    reason: format!(
                        "deployment {} runs {}, expected {}",
                        primary.id, primary.task_definition_arn, watch.task_definition_arn
                    ),
                });
            }
            obs.threshold = self
                .config
                .failed_task_threshold
                .unwrap_or_else(|| circuit_breaker_threshold(primary.desired_count));
            let counts = Counts {
                state: primary.rollout_state,
                pending: primary.pending_count,
                running: primary.running_count,
                failed: primary.failed_tasks,
            };
            let changed = last_counts != Some(counts);
            if changed {
                self.progress.emit(&ProgressEvent::DeploymentProgress {
                    deployment_id: primary.id.clone(),
                    rollout_state: primary.rollout_state,
                    desired: primary.desired_count,
                    pending: primary.pending_count,
                    running: primary.running_count,
                    failed_tasks: primary.failed_tasks,
                    failed_task_threshold: obs.threshold,
                    elapsed: obs.duration,
                });
            }
            last_counts = Some(counts);

            if primary.rollout_state == Some(RolloutState::Failed) {
                let reason = FailureReason::CircuitBreaker {
                    rollout_state_reason: primary.rollout_state_reason.clone(),
                };
                return Ok((
                    Verdict::Failed {
                        reason,
                        ecs_rollback: None,
                    },
                    obs,
                ));
            }

            let completed = primary.rollout_state == Some(RolloutState::Completed);
            let inspection_due =
                last_inspection.is_none_or(|at| now - at >= self.config.task_inspection_interval);
            if changed || inspection_due || completed || bake_started.is_some() {
                last_inspection = Some(now);
                let inspection = self.inspect(watch, &mut seen_stopped, &mut obs).await?;
                if let Some(stopped_reason) = inspection.fail_fast {
                    let reason = FailureReason::DeterministicStartFailure { stopped_reason };
                    return Ok((
                        Verdict::Failed {
                            reason,
                            ecs_rollback: None,
                        },
                        obs,
                    ));
                }
                let healthy = completed
                    && inspection.all_healthy
                    && inspection.running_ours >= primary.desired_count.max(0) as usize;
                match bake_started {
                    Some(_) if !healthy || inspection.new_failures > 0 => {
                        let detail = if inspection.new_failures > 0 {
                            format!("{} task(s) stopped", inspection.new_failures)
                        } else {
                            format!(
                                "{} of {} tasks healthy, rollout state {:?}",
                                inspection.running_ours,
                                primary.desired_count,
                                primary.rollout_state
                            )
                        };
                        let reason = FailureReason::BakeFailed { detail };
                        return Ok((
                            Verdict::Failed {
                                reason,
                                ecs_rollback: None,
                            },
                            obs,
                        ));
                    }
                    Some(since) if now - since >= watch.bake_time => {
                        return Ok((Verdict::Completed, obs));
                    }
                    None if healthy && watch.bake_time.is_zero() => {
                        return Ok((Verdict::Completed, obs));
                    }
                    None if healthy => {
                        bake_started = Some(now);
                        self.progress.emit(&ProgressEvent::BakeStarted {
                            bake_time: watch.bake_time,
                        });
                    }
                    _ => {}
                }
            }

            let breaker_on = service
                .deployment_configuration
                .circuit_breaker
                .is_some_and(|b| b.enable);
            if !breaker_on
                && primary.failed_tasks >= 0
                && primary.failed_tasks as u32 >= obs.threshold
            {
                let reason = FailureReason::FailedTaskThreshold {
                    failed_tasks: primary.failed_tasks,
                    threshold: obs.threshold,
                };
                return Ok((
                    Verdict::Failed {
                        reason,
                        ecs_rollback: None,
                    },
                    obs,
                ));
            }

            let elapsed = self.clock.monotonic() - start;
            if elapsed >= watch.timeout {
                obs.duration = elapsed;
                return Ok((Verdict::TimedOut, obs));
            }
            // Adaptive: fast while something changes or tasks are starting
            // (a start failure is imminent or not), slower while stable.
            interval = if changed || primary.pending_count > 0 {
                self.config.poll_min
            } else {
                interval
                    .mul_f64(self.config.poll_growth)
                    .min(self.config.poll_max)
            };
            let mut sleep = interval.min(watch.timeout - elapsed);
            if let Some(since) = bake_started {
                let baked = self.clock.monotonic() - since;
                sleep = sleep.min(
                    watch
                        .bake_time
                        .saturating_sub(baked)
                        .max(Duration::from_millis(1)),
                );
            }
            self.clock.sleep(sleep).await;
        }
    }

    /// PRIMARY is not our deployment: ECS rolled ours back, or someone else
    /// deployed.
    fn foreign_primary(
        &self,
        watch: &Watch<'_>,
        service: &ServiceDescription,
        seen_failed: bool,
        obs: &Observations,
    ) -> Verdict {
        let primary = service.primary().cloned().unwrap_or_default();
        let failure_event = service.events.iter().find(|e| {
            e.message.contains(watch.deployment_id) && e.message.contains("deployment failed")
        });
        let ours_failed = seen_failed || failure_event.is_some();
        let rollback_like = primary.task_definition_arn == watch.previous_task_definition_arn
            || primary
                .rollout_state_reason
                .as_deref()
                .is_some_and(|r| r.contains("rolling back"));
        if ours_failed && rollback_like {
            let rollout_state_reason = obs
                .rollout_state_reason
                .clone()
                .or_else(|| failure_event.map(|e| e.message.clone()));
            Verdict::Failed {
                reason: FailureReason::CircuitBreaker {
                    rollout_state_reason,
                },
                ecs_rollback: Some(primary.id),
            }
        } else {
            Verdict::Superseded {
                by_deployment_id: primary.id,
                task_definition_arn: primary.task_definition_arn,
            }
        }
    }

    /// Reads stopped and running tasks of our deployment (every page).
    async fn inspect(
        &self,
        watch: &Watch<'_>,
        seen_stopped: &mut HashSet<String>,
        obs: &mut Observations,
    ) -> Result<Inspection> {
        let mut inspection = Inspection {
            all_healthy: true,
            ..Default::default()
        };
        let ours = |task: &TaskDescription| match &task.started_by {
            Some(by) => by == watch.deployment_id,
            None => task.task_definition_arn == watch.task_definition_arn,
        };
        let stopped = self
            .tasks(watch.target, DesiredStatus::Stopped, |arn| {
                !seen_stopped.contains(arn)
            })
            .await?;
        for task in stopped.into_iter().filter(|t| ours(t)) {
            seen_stopped.insert(task.task_arn.clone());
            let reason = task.stopped_reason.clone().unwrap_or_default();
            if task.stop_code.as_deref() == Some("ServiceSchedulerInitiated")
                && reason.starts_with("Scaling activity")
            {
                continue;
            }
            inspection.new_failures += 1;
            let containers: Vec<String> = task
                .containers
                .iter()
                .filter(|c| c.reason.is_some() || c.exit_code.is_some_and(|code| code != 0))
                .map(|c| {
                    format!(
                        "{}: {}{}",
                        c.name,
                        c.reason.as_deref().unwrap_or("exited"),
                        c.exit_code
                            .map(|e| format!(" (exit {e})"))
                            .unwrap_or_default()
                    )
                })
                .collect();
            self.progress.emit(&ProgressEvent::TaskStopped {
                task_arn: task.task_arn.clone(),
                reason: reason.clone(),
                stop_code: task.stop_code.clone(),
            });
            let texts = std::iter::once(reason.as_str())
                .chain(task.containers.iter().filter_map(|c| c.reason.as_deref()));
            for text in texts {
                if inspection.fail_fast.is_none()
                    && self
                        .config
                        .fail_fast_reasons
                        .iter()
                        .any(|r| text.contains(r.as_str()))
                {
                    inspection.fail_fast = Some(text.to_owned());
                }
            }
            if !reason.is_empty() && !obs.stopped_task_reasons.contains(&reason) {
                obs.stopped_task_reasons.push(reason.clone());
            }
            if obs.stopped_tasks.len() < 20 {
                obs.stopped_tasks.push(StoppedTaskEvidence {
                    task_arn: task.task_arn,
                    reason,
                    stop_code: task.stop_code,
                    containers,
                });
            }
        }
        let running = self
            .tasks(watch.target, DesiredStatus::Running, |_| true)
            .await?;
        for task in running.into_iter().filter(|t| ours(t)) {
            if task.last_status != "RUNNING" {
                inspection.all_healthy = false;
                continue;
            }
            inspection.running_ours += 1;
            for name in watch.health_checked {
                let health = task
                    .containers
                    .iter()
                    .find(|c| &c.name == name)
                    .map_or(HealthStatus::Unknown, |c| c.health_status);
                if health != HealthStatus::Healthy {
                    inspection.all_healthy = false;
                }
                if health == HealthStatus::Unhealthy {
                    let id = format!(
                        "{}/{name}",
                        task.task_arn.rsplit('/').next().unwrap_or_default()
                    );
                    if !obs.unhealthy_containers.contains(&id) {
                        obs.unhealthy_containers.push(id);
                    }
                }
            }
            // Containers we know nothing about: an essential one marked
            // UNHEALTHY still counts.
            if task
                .containers
                .iter()
                .any(|c| c.essential != Some(false) && c.health_status == HealthStatus::Unhealthy)
            {
                inspection.all_healthy = false;
            }
        }
        Ok(inspection)
    }

    /// Every task of the service with `desired` status whose ARN passes
    /// `wanted`, across all pages, described in chunks of 100.
    async fn tasks(
        &self,
        target: &RolloutTarget,
        desired: DesiredStatus,
        wanted: impl Fn(&str) -> bool,
    ) -> Result<Vec<TaskDescription>> {
        let arns = list_all_tasks(self.ecs, target, desired).await?;
        let arns: Vec<String> = arns.into_iter().filter(|a| wanted(a)).collect();
        let mut tasks = Vec::with_capacity(arns.len());
        for chunk in arns.chunks(100) {
            tasks.extend(self.ecs.describe_tasks(&target.cluster, chunk).await?);
        }
        Ok(tasks)
    }
}

/// Every task ARN of a service with the given desired status, following
/// `nextToken` to the last page.
pub async fn list_all_tasks(
    ecs: &dyn EcsApi,
    target: &RolloutTarget,
    desired: DesiredStatus,
) -> Result<Vec<String>> {
    let mut arns = Vec::new();
    let mut next_token = None;
    loop {
        let page = ecs
            .list_tasks(&ListTasksRequest {
                cluster: target.cluster.clone(),
                service: target.service.clone(),
                desired_status: desired,
                next_token,
                max_results: Some(100),
            })
            .await?;
        arns.extend(page.items);
        match page.next_token {
            Some(token) => next_token = Some(token),
            None => return Ok(arns),
        }
    }
}
