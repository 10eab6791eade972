//! Watching one deployment, by its id, until a verdict.

use std::{collections::HashSet, sync::Arc, time::Duration};

use update_clock::Clock;

use crate::{
    DesiredStatus, EcsApi, Error, FailureReason, HealthStatus, ListTasksRequest, MonitorConfig,
    ProgressEvent, ProgressSink, Result, RolloutState, RolloutTarget, ServiceDescription,
    StoppedReasonClass, StoppedTaskEvidence, TaskDescription, circuit_breaker_threshold,
    classify_stopped_reason,
};

/// The verdict on one deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// PRIMARY, COMPLETED, every essential health-checked container
    /// HEALTHY (through the bake time).
    Completed,
    /// The deployment failed. `ecs_rollback` is the id and the task
    /// definition of the rollback deployment ECS created, if it did (ECS
    /// rolls back to the last COMPLETED deployment, which need not run our
    /// rollback target).
    Failed {
        reason: FailureReason,
        ecs_rollback: Option<(String, String)>,
    },
    /// Someone else's deployment became PRIMARY.
    Superseded {
        by_deployment_id: String,
        task_definition_arn: String,
    },
    /// No verdict within the timeout.
    TimedOut,
    /// The deployment COMPLETED with a desired count of 0: nothing ran, so
    /// nothing was verified.
    CompletedWithoutTasks,
    /// The timeout arrived while polls kept failing: no verdict, and the
    /// deployment's fate is unknown (resume watching it).
    Lost {
        /// The error of the last failed poll.
        last_error: String,
    },
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
    /// Polls that failed (a read error), counted in `polls`.
    pub missed_polls: u32,
    /// The error of the last failed poll.
    pub last_error: Option<String>,
    /// The desired count of our deployment, as last read.
    pub desired_count: Option<i32>,
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

/// Consecutive polls a PRIMARY that is not ours (and not provably newer
/// than ours, by `createdAt`) must persist before it counts as foreign:
/// `DescribeServices` is eventually consistent, and a read right after
/// `UpdateService` may still list the deployments from before it. The
/// polls run `poll_min` apart, so the foreign PRIMARY is seen for at least
/// `2 · poll_min` (10 s by default).
pub const FOREIGN_PRIMARY_POLLS: u32 = 3;

/// The mutable state of one watch, across polls.
#[derive(Debug, Default)]
struct WatchState {
    last_counts: Option<Counts>,
    last_inspection: Option<Duration>,
    seen_failed: bool,
    seen_stopped: HashSet<String>,
    bake_started: Option<Duration>,
    /// When our deployment was created, once a read showed it.
    our_created_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Consecutive polls with a PRIMARY that is not ours and not provably newer.
    foreign_polls: u32,
    /// Whether the last successful poll saw a change (or pending tasks).
    busy: bool,
}

impl Monitor<'_> {
    /// Watches `watch` to a verdict. Never fails: from the first poll on, a
    /// failed read (throttling beyond the retry layer, an outage, a missing
    /// read permission, an answer that cannot be understood) is a missed
    /// poll; when the timeout arrives while the last poll failed, the
    /// verdict is [`Verdict::Lost`].
    pub(crate) async fn watch(&self, watch: &Watch<'_>) -> Result<(Verdict, Observations)> {
        let mut obs = Observations::default();
        let start = self.clock.monotonic();
        let mut interval = self.config.poll_min;
        let mut st = WatchState::default();
        let mut last_error: Option<String>;
        loop {
            obs.polls += 1;
            let now = self.clock.monotonic();
            obs.duration = now - start;
            match self.poll(watch, &mut st, &mut obs, now).await {
                Ok(Some(verdict)) => return Ok((verdict, obs)),
                Ok(None) => last_error = None,
                Err(error) => {
                    obs.missed_polls += 1;
                    let message = error.to_string();
                    tracing::warn!(deployment_id = watch.deployment_id, error = %message, "missed poll");
                    self.progress.emit(&ProgressEvent::PollFailed {
                        deployment_id: watch.deployment_id.to_owned(),
                        error: message.clone(),
                        missed_polls: obs.missed_polls,
                    });
                    obs.last_error = Some(message.clone());
                    last_error = Some(message);
                    // Inspect again at the next successful poll.
                    st.last_inspection = None;
                }
            }

            let elapsed = self.clock.monotonic() - start;
            if elapsed >= watch.timeout {
                obs.duration = elapsed;
                let verdict = match last_error {
                    Some(last_error) => Verdict::Lost { last_error },
                    None => Verdict::TimedOut,
                };
                return Ok((verdict, obs));
            }
            // Adaptive: fast while something changes or tasks are starting
            // (a start failure is imminent or not), slower while stable.
            interval = if st.busy && last_error.is_none() {
                self.config.poll_min
            } else {
                interval
                    .mul_f64(self.config.poll_growth)
                    .min(self.config.poll_max)
            };
            if st.foreign_polls > 0 {
                interval = self.config.poll_min;
            }
            let mut sleep = interval.min(watch.timeout - elapsed);
            if let Some(since) = st.bake_started {
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

    /// One poll: `Some(verdict)`, `None` to poll again, or the error that
    /// made this poll a missed one.
    async fn poll(
        &self,
        watch: &Watch<'_>,
        st: &mut WatchState,
        obs: &mut Observations,
        now: Duration,
    ) -> Result<Option<Verdict>> {
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
            st.seen_failed |= d.rollout_state == Some(RolloutState::Failed);
            if d.created_at.is_some() {
                st.our_created_at = d.created_at;
            }
        }
        let primary = service
            .primary()
            .cloned()
            .ok_or_else(|| Error::UnexpectedResponse {
                resource: watch.target.service.clone(),
                reason: "the service has no PRIMARY deployment".into(),
            })?;
        if primary.id != watch.deployment_id {
            // Foreign only when provably newer than ours, or persistent:
            // a stale read may still show the PRIMARY from before ours.
            let newer = matches!(
                (primary.created_at, st.our_created_at),
                (Some(theirs), Some(mine)) if theirs > mine
            );
            st.foreign_polls += 1;
            st.busy = true;
            if !newer && st.foreign_polls < FOREIGN_PRIMARY_POLLS {
                tracing::info!(
                    primary = %primary.id,
                    polls = st.foreign_polls,
                    "PRIMARY is not our deployment (yet): a stale read or someone else's deployment"
                );
                return Ok(None);
            }
            let verdict = self.foreign_primary(watch, &service, st.seen_failed, obs);
            if matches!(verdict, Verdict::Failed { .. }) {
                // Evidence: why our tasks stopped, even though ECS decided
                // (best effort: the verdict stands without it).
                if let Err(error) = self.inspect(watch, &mut st.seen_stopped, obs).await {
                    tracing::warn!(%error, "could not read the stopped tasks for the evidence");
                }
            }
            return Ok(Some(verdict));
        }
        st.foreign_polls = 0;
        if primary.task_definition_arn != watch.task_definition_arn {
            return Err(Error::UnexpectedResponse {
                resource: watch.target.service.clone(),
                reason: format!(
                    "deployment {} runs {}, expected {}",
                    primary.id, primary.task_definition_arn, watch.task_definition_arn
                ),
            });
        }
        obs.desired_count = Some(primary.desired_count);
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
        let changed = st.last_counts != Some(counts);
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
        st.last_counts = Some(counts);
        st.busy = changed || primary.pending_count > 0;

        if primary.rollout_state == Some(RolloutState::Failed) {
            let reason = FailureReason::CircuitBreaker {
                rollout_state_reason: primary.rollout_state_reason.clone(),
            };
            return Ok(Some(Verdict::Failed {
                reason,
                ecs_rollback: None,
            }));
        }

        let completed = primary.rollout_state == Some(RolloutState::Completed);
        if completed && primary.desired_count == 0 && service.desired_count == 0 {
            // Nothing runs: ECS completes the deployment at once, and no
            // task ever proves the version works.
            return Ok(Some(Verdict::CompletedWithoutTasks));
        }
        let inspection_due = st
            .last_inspection
            .is_none_or(|at| now - at >= self.config.task_inspection_interval);
        if changed || inspection_due || completed || st.bake_started.is_some() {
            let inspection = self.inspect(watch, &mut st.seen_stopped, obs).await?;
            st.last_inspection = Some(now);
            if let Some(stopped_reason) = inspection.fail_fast {
                let reason = FailureReason::DeterministicStartFailure { stopped_reason };
                return Ok(Some(Verdict::Failed {
                    reason,
                    ecs_rollback: None,
                }));
            }
            let healthy = completed
                && inspection.all_healthy
                && inspection.running_ours >= primary.desired_count.max(0) as usize;
            match st.bake_started {
                Some(_) if !healthy || inspection.new_failures > 0 => {
                    let detail = if inspection.new_failures > 0 {
                        format!("{} task(s) stopped", inspection.new_failures)
                    } else {
                        format!(
                            "{} of {} tasks healthy, rollout state {:?}",
                            inspection.running_ours, primary.desired_count, primary.rollout_state
                        )
                    };
                    let reason = FailureReason::BakeFailed { detail };
                    return Ok(Some(Verdict::Failed {
                        reason,
                        ecs_rollback: None,
                    }));
                }
                Some(since) if now - since >= watch.bake_time => {
                    return Ok(Some(Verdict::Completed));
                }
                None if healthy && watch.bake_time.is_zero() => {
                    return Ok(Some(Verdict::Completed));
                }
                None if healthy => {
                    st.bake_started = Some(now);
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
        if !breaker_on && primary.failed_tasks >= 0 && primary.failed_tasks as u32 >= obs.threshold
        {
            let reason = FailureReason::FailedTaskThreshold {
                failed_tasks: primary.failed_tasks,
                threshold: obs.threshold,
            };
            return Ok(Some(Verdict::Failed {
                reason,
                ecs_rollback: None,
            }));
        }
        Ok(None)
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
                ecs_rollback: Some((primary.id, primary.task_definition_arn)),
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
                // Only a deterministic error fails fast; a transient pull or
                // secrets error is a failed task like any other.
                if inspection.fail_fast.is_none()
                    && self
                        .config
                        .fail_fast_reasons
                        .iter()
                        .any(|r| text.contains(r.as_str()))
                    && classify_stopped_reason(text) == StoppedReasonClass::Deterministic
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
