//! Watching one deployment, by its id, until a verdict.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use update_clock::Clock;

use crate::{
    Deployment, DeploymentAlarms, DesiredStatus, EcsApi, Error, ErrorClass, FailureReason,
    HealthStatus, ListTasksRequest, MonitorConfig, ProgressEvent, ProgressSink, Result,
    RolloutState, RolloutTarget, ServiceDeploymentInfo, ServiceDeploymentStatus,
    ServiceDescription, StoppedReasonClass, StoppedTaskEvidence, TaskDescription, VerdictSource,
    classify_stopped_reason, is_task_failure,
};

/// A rollback ECS made (or is making) of our deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EcsRollback {
    /// The rollback deployment's id, when `DescribeServices` showed it.
    pub deployment_id: Option<String>,
    /// The task definition ECS rolls back to (the last COMPLETED one).
    pub task_definition_arn: String,
    /// `Some(Ok)` when ECS already says the rollback succeeded
    /// (`ROLLBACK_SUCCESSFUL`), `Some(Err(why))` when it failed
    /// (`ROLLBACK_FAILED`), `None` while it runs (watch it).
    pub finished: Option<std::result::Result<(), String>>,
}

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
        ecs_rollback: Option<EcsRollback>,
    },
    /// Our service deployment is STOPPED (not rolled back, not finished).
    Stopped { status_reason: Option<String> },
    /// Someone else's deployment became PRIMARY.
    Superseded {
        by_deployment_id: String,
        task_definition_arn: String,
    },
    /// Ours had failed (ECS said so) when someone else's deployment, not a
    /// rollback, became PRIMARY.
    FailedThenSuperseded {
        reason: FailureReason,
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
    /// Our service deployment, once listed, and its last status.
    pub service_deployment_arn: Option<String>,
    pub service_deployment_status: Option<String>,
    /// Which view decided the verdict.
    pub decided_by: Option<VerdictSource>,
    /// Whether ECS rolls a failed deployment back by itself: the circuit
    /// breaker with rollback, or deployment alarms with rollback (as last
    /// read).
    pub breaker_rolls_back: bool,
    /// The deployment alarms our service deployment reported triggered.
    pub triggered_alarms: Vec<String>,
    /// The lifecycle stage our service deployment last reported.
    pub lifecycle_stage: Option<String>,
}

/// Whether ECS runs lifecycle hooks at `stage` (a service deployment's
/// `lifecycleStage`): every stage but `SCALE_UP`, `BAKE_TIME` and
/// `CLEAN_UP`. Time there is ECS's own process, waiting on the hooks.
pub(crate) fn is_hook_stage(stage: &str) -> bool {
    matches!(
        stage,
        "RECONCILE_SERVICE"
            | "PRE_SCALE_UP"
            | "POST_SCALE_UP"
            | "TEST_TRAFFIC_SHIFT"
            | "POST_TEST_TRAFFIC_SHIFT"
            | "PRODUCTION_TRAFFIC_SHIFT"
            | "POST_PRODUCTION_TRAFFIC_SHIFT"
    )
}

/// A failure ECS decided: by deployment alarms when our service deployment
/// names triggered ones, else by a lifecycle hook when it was at a hook
/// stage, else by the circuit breaker.
fn ecs_failure(obs: &Observations, rollout_state_reason: Option<String>) -> FailureReason {
    if !obs.triggered_alarms.is_empty() {
        return FailureReason::DeploymentAlarm {
            alarm_names: obs.triggered_alarms.clone(),
            rollout_state_reason,
        };
    }
    match obs.lifecycle_stage.as_deref() {
        Some(stage) if is_hook_stage(stage) => FailureReason::LifecycleHook {
            stage: stage.to_owned(),
            rollout_state_reason,
        },
        _ => FailureReason::CircuitBreaker {
            rollout_state_reason,
        },
    }
}

/// ECS's rollback of our deployment as our service deployment `sd` reports
/// it: while ECS rolls back (`ROLLBACK_REQUESTED`, `ROLLBACK_IN_PROGRESS`:
/// `finished` is `None`) and once it ended (`ROLLBACK_SUCCESSFUL`,
/// `ROLLBACK_FAILED`). `None` for any other status. The rollback's
/// deployment is the PRIMARY that is not ours (as `service` lists it); its
/// task definition is the one the service deployment names, else that
/// PRIMARY's, else the previous one.
fn ecs_rollback_of(
    watch: &Watch<'_>,
    service: Option<&ServiceDescription>,
    sd: &ServiceDeploymentInfo,
) -> Option<EcsRollback> {
    let finished = match sd.state() {
        ServiceDeploymentStatus::RollbackRequested
        | ServiceDeploymentStatus::RollbackInProgress => None,
        ServiceDeploymentStatus::RollbackSuccessful => Some(Ok(())),
        ServiceDeploymentStatus::RollbackFailed => Some(Err(format!(
            "ECS's rollback failed (service deployment {}: {})",
            sd.status,
            sd.status_reason.as_deref().unwrap_or("no reason given")
        ))),
        _ => return None,
    };
    let foreign = service
        .and_then(ServiceDescription::primary)
        .filter(|p| p.id != watch.deployment_id);
    Some(EcsRollback {
        deployment_id: foreign.map(|p| p.id.clone()),
        task_definition_arn: sd
            .rollback_task_definition_arn
            .clone()
            .or_else(|| foreign.map(|p| p.task_definition_arn.clone()))
            .unwrap_or_else(|| watch.previous_task_definition_arn.to_owned()),
        finished,
    })
}

/// What replaced our failed deployment while we waited for ECS's rollback
/// ([`Monitor::await_ecs_rollback`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AfterFailure {
    /// ECS's rollback.
    EcsRollback(EcsRollback),
    /// Someone else's deployment (not a rollback) became PRIMARY.
    Superseded {
        by_deployment_id: String,
        task_definition_arn: String,
    },
}

/// Whether a PRIMARY that is not ours looks like ECS's rollback: it runs
/// the previous task definition, or ECS says it is rolling back.
fn rollback_like(watch: &Watch<'_>, primary: &Deployment) -> bool {
    primary.task_definition_arn == watch.previous_task_definition_arn
        || primary
            .rollout_state_reason
            .as_deref()
            .is_some_and(|r| r.contains("rolling back"))
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
    /// The service deployment to judge by, when already known (a resumed
    /// watch); otherwise it is found by its target task definition.
    pub service_deployment_arn: Option<&'a str>,
    /// Watching a rollback deployment: it is complete when ECS says so
    /// (the failed deployment's service deployment `ROLLBACK_SUCCESSFUL`,
    /// or the rollback deployment COMPLETED with its counts), however ECS
    /// accounts the tasks (a rollback deployment may take over the running
    /// tasks of an earlier deployment, which keep that one's `startedBy`).
    pub rollback: bool,
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

/// What the service deployment's status says for this poll.
enum Judgement {
    /// A verdict.
    Verdict(Verdict),
    /// ECS is inside its own process (rolling back): poll again, act on nothing.
    Wait,
    /// Judge by `DescribeServices`; `successful` = the service deployment
    /// allows a success (SUCCESSFUL, or a rollback watch).
    Continue { successful: bool },
}

/// Task-level facts of one inspection.
#[derive(Debug, Default)]
struct Inspection {
    all_healthy: bool,
    fail_fast: Option<String>,
    /// Our tasks that stopped since the last inspection for a failure of
    /// the version ([`is_task_failure`]).
    new_failures: usize,
    /// Our RUNNING tasks, each with whether every essential health-checked
    /// container reads HEALTHY.
    running: HashMap<String, bool>,
}

/// Consecutive polls a PRIMARY that is not ours (and not provably newer
/// than ours, by `createdAt`) must persist before it counts as foreign:
/// `DescribeServices` is eventually consistent, and a read right after
/// `UpdateService` may still list the deployments from before it. The
/// polls run `poll_min` apart, so the foreign PRIMARY is seen for at least
/// `2 · poll_min` (10 s by default).
pub const FOREIGN_PRIMARY_POLLS: u32 = 3;

/// How long a watch waits for its deployment to appear in a
/// `DescribeServices` answer before a PRIMARY that is not ours may count as
/// foreign at all. ECS lists the deployment an `UpdateService` created from
/// the moment it returns, and keeps it listed while it has tasks, so an
/// answer without it predates our update: an eventually consistent read
/// (seen lagging for tens of seconds), not someone else's deployment.
/// Without this, a 30 s stale window outlasts [`FOREIGN_PRIMARY_POLLS`] and
/// our own healthy deployment is reported as superseded (found by the
/// updater's simulation campaign).
pub const UNSEEN_DEPLOYMENT_GRACE: Duration = Duration::from_secs(120);

/// The mutable state of one watch, across polls.
#[derive(Debug, Default)]
struct WatchState {
    last_counts: Option<Counts>,
    last_inspection: Option<Duration>,
    seen_failed: bool,
    seen_stopped: HashSet<String>,
    bake_started: Option<Duration>,
    /// The tasks the bake judges: ours that ran, healthy, when it started
    /// (a scale-out's new tasks are not among them).
    bake_cohort: HashSet<String>,
    /// Our tasks seen stopped for a failure of the version, over the watch
    /// (what the failed-task threshold counts when the breaker is off).
    own_failures: u32,
    /// When our deployment was created, once a read showed it.
    our_created_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Consecutive polls with a PRIMARY that is not ours and not provably newer.
    foreign_polls: u32,
    /// Whether any read listed our deployment.
    seen_ours: bool,
    /// Whether the last successful poll saw a change (or pending tasks).
    busy: bool,
    /// The ServiceDeployment API is absent (or refused): judge by
    /// `DescribeServices` alone for the rest of the watch.
    service_deployments_off: bool,
    /// `DescribeServiceDeployments` of a known ARN is not offered (or
    /// refused): list the history instead for the rest of the watch.
    by_arn_off: bool,
    /// ECS's own bake time of a blue/green, linear or canary deployment
    /// (`bakeTimeInMinutes`, as last read): added to the monitor's timeout.
    ecs_bake: Duration,
    /// When our service deployment was last read (or its read tried).
    service_deployment_read: Option<Duration>,
    /// Time our service deployment spent at lifecycle-hook stages, as its
    /// reads showed (from each read to the next): ECS's own process,
    /// added to the monitor's timeout (at most the timeout again).
    hook_time: Duration,
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
        let mut st = WatchState {
            // The first inspection comes with the first sign of trouble,
            // at completion, or one inspection interval in.
            last_inspection: Some(start),
            ..WatchState::default()
        };
        let mut last_error: Option<String>;
        loop {
            obs.polls += 1;
            let now = self.clock.monotonic();
            obs.duration = now - start;
            match self.poll(watch, &mut st, &mut obs, now).await {
                Ok(Some(verdict)) => {
                    obs.decided_by
                        .get_or_insert(VerdictSource::DescribeServices);
                    return Ok((verdict, obs));
                }
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
            // ECS's own bake of a blue/green, linear or canary deployment,
            // and its wait on lifecycle hooks, are ECS's process, not a
            // stuck deployment: they extend ours (the hooks' wait by at
            // most the timeout again: a hook that never answers still ends
            // the watch).
            let timeout = watch.timeout + st.ecs_bake + st.hook_time.min(watch.timeout);
            if elapsed >= timeout {
                obs.duration = elapsed;
                let verdict = match last_error {
                    Some(last_error) => Verdict::Lost { last_error },
                    None => Verdict::TimedOut,
                };
                return Ok((verdict, obs));
            }
            // Adaptive: fast while the poll says so (`busy`: a change, every
            // task of ours running, a PRIMARY that is not ours yet), slower
            // while stable or while polls fail.
            interval = if st.busy && last_error.is_none() {
                self.config.poll_min
            } else {
                interval
                    .mul_f64(self.config.poll_growth)
                    .min(self.config.poll_max)
            };
            let mut sleep = interval.min(timeout - elapsed);
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
        st.seen_ours |= ours.is_some();
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
        st.ecs_bake = if service.is_rolling() {
            Duration::ZERO
        } else {
            service.ecs_bake_time.unwrap_or_default()
        };
        obs.breaker_rolls_back = service
            .deployment_configuration
            .circuit_breaker
            .is_some_and(|b| b.enable && b.rollback)
            || service
                .deployment_alarms
                .as_ref()
                .is_some_and(DeploymentAlarms::rolls_back);
        let primary = service
            .primary()
            .cloned()
            .ok_or_else(|| Error::UnexpectedResponse {
                resource: watch.target.service.clone(),
                reason: "the service has no PRIMARY deployment".into(),
            })?;
        // The ServiceDeployment, where it exists, is the authority. It is
        // read until it is found (to record it), and from then on whenever
        // its word can decide something: while `DescribeServices` cannot
        // judge (no rolloutState; a blue/green, linear or canary strategy)
        // and whenever it shows anything but our rolling deployment in
        // progress as PRIMARY (completed, failed, another PRIMARY, ours
        // gone); otherwise once per inspection interval, for a stop that
        // only the service deployment shows (someone stopped it: ECS halts
        // the deployment, and `DescribeServices` may go on showing it in
        // progress).
        let in_progress = primary.id == watch.deployment_id
            && primary.rollout_state == Some(RolloutState::InProgress)
            && service.is_rolling();
        let due = !in_progress
            || obs.service_deployment_arn.is_none()
            || st
                .service_deployment_read
                .is_none_or(|at| now - at >= self.config.task_inspection_interval);
        let mut successful = true;
        // Whether our service deployment said SUCCESSFUL on this poll.
        let mut sd_successful = false;
        let sd = if due {
            let since = st.service_deployment_read.replace(now);
            let at_hook = obs.lifecycle_stage.as_deref().is_some_and(is_hook_stage);
            if let Some(since) = since.filter(|_| at_hook) {
                st.hook_time += now.saturating_sub(since);
            }
            self.service_deployment(watch, st, obs).await
        } else {
            None
        };
        if let Some(sd) = sd {
            sd_successful = sd.state() == ServiceDeploymentStatus::Successful;
            match self.judge_service_deployment(watch, &service, &sd, obs) {
                Judgement::Verdict(verdict) => {
                    obs.decided_by = Some(VerdictSource::ServiceDeployment);
                    if matches!(verdict, Verdict::Failed { .. } | Verdict::Stopped { .. }) {
                        // Evidence: why the tasks stopped (best effort): of
                        // ours, or, watching a rollback, why it failed.
                        if let Err(error) =
                            self.inspect(watch, &mut st.seen_stopped, obs, true).await
                        {
                            tracing::warn!(%error, "could not read the stopped tasks for the evidence");
                        }
                    }
                    return Ok(Some(verdict));
                }
                Judgement::Wait => {
                    st.busy = true;
                    return Ok(None);
                }
                Judgement::Continue { successful: ok } => successful = ok,
            }
        }
        if primary.id != watch.deployment_id {
            // Foreign only when provably newer than ours, or persistent:
            // a stale read may still show the PRIMARY from before ours.
            let newer = matches!(
                (primary.created_at, st.our_created_at),
                (Some(theirs), Some(mine)) if theirs > mine
            );
            st.busy = true;
            if !st.seen_ours && obs.duration < UNSEEN_DEPLOYMENT_GRACE {
                tracing::info!(
                    primary = %primary.id,
                    "our deployment is not listed yet: a read from before our update"
                );
                return Ok(None);
            }
            st.foreign_polls += 1;
            if !newer && st.foreign_polls < FOREIGN_PRIMARY_POLLS {
                tracing::info!(
                    primary = %primary.id,
                    polls = st.foreign_polls,
                    "PRIMARY is not our deployment (yet): a stale read or someone else's deployment"
                );
                return Ok(None);
            }
            let verdict = self.foreign_primary(watch, &service, st.seen_failed, obs);
            if matches!(
                verdict,
                Verdict::Failed { .. } | Verdict::FailedThenSuperseded { .. }
            ) {
                // Evidence: why our tasks stopped, even though ECS decided
                // (best effort: the verdict stands without it).
                if let Err(error) = self.inspect(watch, &mut st.seen_stopped, obs, true).await {
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
        obs.threshold = self.config.failed_task_threshold.unwrap_or_else(|| {
            // The service's own breaker threshold (its
            // `thresholdConfiguration`), else ECS's default formula.
            service
                .deployment_configuration
                .circuit_breaker
                .unwrap_or_default()
                .failure_threshold(primary.desired_count)
        });
        let counts = Counts {
            state: primary.rollout_state,
            pending: primary.pending_count,
            running: primary.running_count,
            failed: primary.failed_tasks,
        };
        let changed = st.last_counts != Some(counts);
        let breaker_on = service
            .deployment_configuration
            .circuit_breaker
            .is_some_and(|b| b.enable);
        // A sign that a task failed: ECS counted one more (every failed
        // start, crash and health-check stop counts). With the breaker off,
        // any change: our own count of failed tasks is then what trips the
        // threshold. (A task that stops for another reason is not trouble;
        // the inspections at completion, through the bake and once per
        // interval see it.)
        let trouble = match st.last_counts {
            None => counts.failed > 0,
            Some(last) => counts.failed > last.failed || (!breaker_on && changed),
        };
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
        // Poll fast while something changes, and once every task of ours
        // runs (ECS completes the deployment next); slower while tasks are
        // only starting (a start failure shows as a change, and ECS's
        // breaker acts on it by itself).
        st.busy = changed
            || (primary.pending_count == 0
                && primary.running_count >= primary.desired_count
                && primary.rollout_state == Some(RolloutState::InProgress));

        if primary.rollout_state == Some(RolloutState::Failed) {
            let reason = ecs_failure(obs, primary.rollout_state_reason.clone());
            return Ok(Some(Verdict::Failed {
                reason,
                ecs_rollback: None,
            }));
        }

        // Only a SUCCESSFUL service deployment is a success (where the API
        // exists); a rollback deployment is judged by ECS's counts too.
        let completed = match primary.rollout_state {
            Some(state) if service.is_rolling() => state == RolloutState::Completed && successful,
            // No rolloutState (behind a Classic Load Balancer), or a
            // blue/green, linear or canary deployment (lifecycle stages,
            // ECS's own bake): only the service deployment can say the
            // deployment completed (a run is refused up front where it
            // cannot be read).
            _ => sd_successful,
        };
        if completed && primary.desired_count == 0 {
            // Nothing runs: ECS completes the deployment at once, and no
            // task ever proves the version works. (Whatever the service's
            // own desired count reads: a deployment that counts no task
            // proves nothing, even while a scale-out is on its way.)
            return Ok(Some(Verdict::CompletedWithoutTasks));
        }
        let inspection_due = st
            .last_inspection
            .is_none_or(|at| now - at >= self.config.task_inspection_interval);
        if trouble || inspection_due || completed || st.bake_started.is_some() {
            // Stopped tasks are read when one may have stopped; at the
            // completion ECS declared, only the running ones are judged.
            let list_stopped = trouble || inspection_due || st.bake_started.is_some();
            let inspection = self
                .inspect(watch, &mut st.seen_stopped, obs, list_stopped)
                .await?;
            st.last_inspection = Some(now);
            if let Some(stopped_reason) = inspection.fail_fast {
                let reason = FailureReason::DeterministicStartFailure { stopped_reason };
                return Ok(Some(Verdict::Failed {
                    reason,
                    ecs_rollback: None,
                }));
            }
            let counted = inspection.running.len() >= primary.desired_count.max(0) as usize
                || (watch.rollback
                    && primary.pending_count == 0
                    && primary.running_count >= primary.desired_count.max(0));
            st.own_failures = st
                .own_failures
                .saturating_add(inspection.new_failures as u32);
            let healthy = completed && inspection.all_healthy && counted;
            match st.bake_started {
                Some(since) => {
                    if let Some(verdict) = self.judge_bake(st, &inspection) {
                        return Ok(Some(verdict));
                    }
                    if st.bake_cohort.is_empty() {
                        // Every task the bake judged was replaced for a
                        // reason that is not a failure: judge their
                        // replacements, from the start.
                        tracing::info!(
                            "every task of the bake was stopped for a reason that is not a \
                             failure; the bake starts again"
                        );
                        st.bake_started = None;
                    } else if now - since >= watch.bake_time {
                        return Ok(Some(self.completed(obs)));
                    }
                }
                None if healthy && watch.bake_time.is_zero() => {
                    return Ok(Some(self.completed(obs)));
                }
                None if healthy => {
                    st.bake_started = Some(now);
                    st.bake_cohort = inspection.running.keys().cloned().collect();
                    self.progress.emit(&ProgressEvent::BakeStarted {
                        bake_time: watch.bake_time,
                    });
                }
                None => {}
            }
        }

        // Our own count too: ECS's `failedTasks` may miss tasks (it is reset
        // on a healthy task, and some ECS versions never count health-check
        // stops).
        let failed_tasks = primary.failed_tasks.max(st.own_failures as i32);
        if !breaker_on && failed_tasks >= 0 && failed_tasks as u32 >= obs.threshold {
            let reason = FailureReason::FailedTaskThreshold {
                failed_tasks,
                threshold: obs.threshold,
            };
            return Ok(Some(Verdict::Failed {
                reason,
                ecs_rollback: None,
            }));
        }
        Ok(None)
    }

    /// The bake's judgement of one inspection: a failure when one of our
    /// tasks stopped for a failure of the version, or when a task the bake
    /// started with runs but is no longer healthy (UNHEALTHY, or no longer
    /// reported HEALTHY). Tasks of the bake that are gone for another
    /// reason (Spot interruption, Fargate retirement, AZ rebalancing, an
    /// operator's `StopTask`) leave it; new tasks (a scale-out, the
    /// replacements) are not judged until they fail.
    fn judge_bake(&self, st: &mut WatchState, inspection: &Inspection) -> Option<Verdict> {
        st.bake_cohort
            .retain(|arn| inspection.running.contains_key(arn));
        let sick = st
            .bake_cohort
            .iter()
            .filter(|arn| inspection.running.get(*arn) == Some(&false))
            .count();
        let detail = if inspection.new_failures > 0 {
            format!("{} task(s) stopped", inspection.new_failures)
        } else if sick > 0 {
            format!(
                "{sick} of the {} task(s) the bake started with no longer healthy",
                st.bake_cohort.len()
            )
        } else {
            return None;
        };
        Some(Verdict::Failed {
            reason: FailureReason::BakeFailed { detail },
            ecs_rollback: None,
        })
    }

    /// `Completed`, saying which view decided: the service deployment when
    /// it said SUCCESSFUL, else `DescribeServices`.
    fn completed(&self, obs: &mut Observations) -> Verdict {
        obs.decided_by = Some(
            if obs.service_deployment_status.as_deref() == Some("SUCCESSFUL") {
                VerdictSource::ServiceDeployment
            } else {
                VerdictSource::DescribeServices
            },
        );
        Verdict::Completed
    }

    /// Our service deployment from `DescribeServiceDeployments`: by its
    /// ARN once known, else the newest one whose target is our task
    /// definition (created around our deployment). `None` where the API is
    /// absent (then off for the rest of the watch), refused (a permanent
    /// error: off too), failing this poll, or not listing ours.
    async fn service_deployment(
        &self,
        watch: &Watch<'_>,
        st: &mut WatchState,
        obs: &mut Observations,
    ) -> Option<ServiceDeploymentInfo> {
        if st.service_deployments_off || (watch.rollback && watch.service_deployment_arn.is_none())
        {
            return None;
        }
        let known = obs
            .service_deployment_arn
            .clone()
            .or_else(|| watch.service_deployment_arn.map(str::to_owned));
        // Ours is known: read it alone, one request a fleet can share
        // (SharedEcs batches these by 20), instead of listing the history.
        if let Some(arn) = known.as_ref().filter(|_| !st.by_arn_off) {
            match self
                .ecs
                .describe_service_deployments_by_arn(std::slice::from_ref(arn))
                .await
            {
                Ok(answers) => {
                    return match answers.into_iter().next() {
                        Some(Ok(d)) if &d.arn == arn => {
                            self.record_service_deployment(watch, obs, &d);
                            Some(d)
                        }
                        // Not (yet) readable by its ARN (a failure for it,
                        // or no answer): judge this poll by DescribeServices,
                        // as when the list leaves it out.
                        other => {
                            let why = other.and_then(Result::err).map_or_else(
                                || "no answer for it".to_owned(),
                                |error| error.to_string(),
                            );
                            tracing::warn!(arn, %why, "could not read our service deployment this poll");
                            None
                        }
                    };
                }
                Err(error)
                    if matches!(error, Error::Unsupported { .. })
                        || error.class() == Some(ErrorClass::Permanent) =>
                {
                    tracing::info!(%error, "no DescribeServiceDeployments by ARN: listing the history");
                    st.by_arn_off = true;
                }
                Err(error) => {
                    tracing::warn!(%error, "could not read our service deployment this poll");
                    return None;
                }
            }
        }
        let all = match self
            .ecs
            .describe_service_deployments(&watch.target.cluster, &watch.target.service)
            .await
        {
            Ok(all) => all,
            Err(error) => {
                if matches!(error, Error::Unsupported { .. })
                    || error.class() == Some(ErrorClass::Permanent)
                {
                    tracing::info!(%error, "no ServiceDeployment API: judging by DescribeServices");
                    st.service_deployments_off = true;
                } else {
                    tracing::warn!(%error, "could not read the service deployments this poll");
                }
                return None;
            }
        };
        let found = match known {
            Some(arn) => all.into_iter().find(|d| d.arn == arn),
            // (A rollback watch always knows the ARN: it returned above.)
            None => all.into_iter().find(|d| {
                d.target_task_definition_arn.as_deref() == Some(watch.task_definition_arn)
                    && match (d.started_at, st.our_created_at) {
                        (Some(started), Some(created)) => {
                            started + chrono::Duration::seconds(60) >= created
                        }
                        _ => true,
                    }
            }),
        };
        if let Some(d) = &found {
            self.record_service_deployment(watch, obs, d);
        }
        found
    }

    /// Notes our service deployment and its status (announcing it the
    /// first time).
    fn record_service_deployment(
        &self,
        watch: &Watch<'_>,
        obs: &mut Observations,
        d: &ServiceDeploymentInfo,
    ) {
        if obs.service_deployment_arn.is_none() && !watch.rollback {
            self.progress
                .emit(&ProgressEvent::ServiceDeploymentRecorded {
                    deployment_id: watch.deployment_id.to_owned(),
                    service_deployment_arn: d.arn.clone(),
                });
        }
        if d.lifecycle_stage.is_some() && d.lifecycle_stage != obs.lifecycle_stage {
            self.progress.emit(&ProgressEvent::LifecycleStage {
                deployment_id: watch.deployment_id.to_owned(),
                stage: d.lifecycle_stage.clone().unwrap_or_default(),
            });
            obs.lifecycle_stage = d.lifecycle_stage.clone();
        }
        obs.service_deployment_arn = Some(d.arn.clone());
        obs.service_deployment_status = Some(d.status.clone());
        if !d.triggered_alarms.is_empty() {
            obs.triggered_alarms = d.triggered_alarms.clone();
        }
    }

    /// What our service deployment's status says.
    fn judge_service_deployment(
        &self,
        watch: &Watch<'_>,
        service: &ServiceDescription,
        sd: &ServiceDeploymentInfo,
        obs: &Observations,
    ) -> Judgement {
        let status = sd.state();
        let why = || {
            format!(
                "service deployment {}: {}",
                sd.status,
                sd.status_reason.as_deref().unwrap_or("no reason given")
            )
        };
        if watch.rollback {
            // `sd` is the failed deployment's: its rollback is what we watch.
            return match status {
                ServiceDeploymentStatus::RollbackSuccessful => {
                    Judgement::Verdict(Verdict::Completed)
                }
                ServiceDeploymentStatus::RollbackFailed | ServiceDeploymentStatus::Stopped => {
                    Judgement::Verdict(Verdict::Failed {
                        reason: FailureReason::CircuitBreaker {
                            rollout_state_reason: Some(why()),
                        },
                        ecs_rollback: None,
                    })
                }
                _ => Judgement::Continue { successful: true },
            };
        }
        if let Some(rollback) = ecs_rollback_of(watch, Some(service), sd) {
            if rollback.finished.is_none() {
                // ECS is rolling back: never act meanwhile, wait for its word.
                return Judgement::Wait;
            }
            let reason = ecs_failure(
                obs,
                obs.rollout_state_reason
                    .clone()
                    .filter(|r| !r.ends_with("in progress."))
                    .or_else(|| sd.status_reason.clone()),
            );
            return Judgement::Verdict(Verdict::Failed {
                reason,
                ecs_rollback: Some(rollback),
            });
        }
        let foreign = service.primary().filter(|p| p.id != watch.deployment_id);
        match status {
            ServiceDeploymentStatus::Successful => Judgement::Continue { successful: true },
            // Stopped because someone else deployed: `DescribeServices`
            // shows their PRIMARY (Superseded, once it persists).
            ServiceDeploymentStatus::Stopped
                if foreign.is_some_and(|p| {
                    p.task_definition_arn != watch.previous_task_definition_arn
                }) =>
            {
                Judgement::Continue { successful: false }
            }
            ServiceDeploymentStatus::Stopped => Judgement::Verdict(Verdict::Stopped {
                status_reason: sd.status_reason.clone(),
            }),
            _ => Judgement::Continue { successful: false },
        }
    }

    /// After a failure ECS may roll back by itself (its breaker or an
    /// alarm with rollback on): looks up to `polls` times, `poll_min`
    /// apart, for that rollback (our service deployment rolling back, or a
    /// rollback-like PRIMARY that is not ours), so that we never start a
    /// second rollback racing ECS's. Read errors count as "not seen".
    pub(crate) async fn await_ecs_rollback(
        &self,
        watch: &Watch<'_>,
        polls: u32,
    ) -> Option<AfterFailure> {
        let mut st = WatchState::default();
        let mut obs = Observations::default();
        for _ in 0..polls {
            self.clock.sleep(self.config.poll_min).await;
            let service = self
                .ecs
                .describe_service(&watch.target.cluster, &watch.target.service)
                .await
                .ok();
            if let Some(sd) = self.service_deployment(watch, &mut st, &mut obs).await
                && let Some(rollback) = ecs_rollback_of(watch, service.as_ref(), &sd)
            {
                return Some(AfterFailure::EcsRollback(rollback));
            }
            let Some(service) = service else { continue };
            let Some(primary) = service.primary().filter(|p| p.id != watch.deployment_id) else {
                continue;
            };
            return Some(if rollback_like(watch, primary) {
                AfterFailure::EcsRollback(EcsRollback {
                    deployment_id: Some(primary.id.clone()),
                    task_definition_arn: primary.task_definition_arn.clone(),
                    finished: None,
                })
            } else {
                // Not the pre-update PRIMARY of a stale read either (that
                // runs the previous task definition): someone else's.
                AfterFailure::Superseded {
                    by_deployment_id: primary.id.clone(),
                    task_definition_arn: primary.task_definition_arn.clone(),
                }
            });
        }
        None
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
        if !(seen_failed || failure_event.is_some()) {
            return Verdict::Superseded {
                by_deployment_id: primary.id,
                task_definition_arn: primary.task_definition_arn,
            };
        }
        let rollout_state_reason = obs
            .rollout_state_reason
            .clone()
            .or_else(|| failure_event.map(|e| e.message.clone()));
        let reason = ecs_failure(obs, rollout_state_reason);
        if rollback_like(watch, &primary) {
            Verdict::Failed {
                reason,
                ecs_rollback: Some(EcsRollback {
                    deployment_id: Some(primary.id),
                    task_definition_arn: primary.task_definition_arn,
                    finished: None,
                }),
            }
        } else {
            // Ours failed, and what replaced it is someone else's: still a
            // failure of the version (never retry it), not rolled back.
            Verdict::FailedThenSuperseded {
                reason,
                by_deployment_id: primary.id,
                task_definition_arn: primary.task_definition_arn,
            }
        }
    }

    /// Reads the stopped (when `list_stopped`) and the running tasks of our
    /// deployment (every page).
    async fn inspect(
        &self,
        watch: &Watch<'_>,
        seen_stopped: &mut HashSet<String>,
        obs: &mut Observations,
        list_stopped: bool,
    ) -> Result<Inspection> {
        let mut inspection = Inspection {
            all_healthy: true,
            ..Default::default()
        };
        let ours = |task: &TaskDescription| match &task.started_by {
            Some(by) => by == watch.deployment_id,
            None => task.task_definition_arn == watch.task_definition_arn,
        };
        let stopped = if list_stopped {
            self.tasks(watch.target, DesiredStatus::Stopped, None, |arn| {
                !seen_stopped.contains(arn)
            })
            .await?
        } else {
            Vec::new()
        };
        // Every described stopped task is remembered, ours or not: a
        // stopped task never changes, and is not described again.
        seen_stopped.extend(stopped.iter().map(|t| t.task_arn.clone()));
        for task in stopped.into_iter().filter(|t| ours(t)) {
            let reason = task.stopped_reason.clone().unwrap_or_default();
            if !is_task_failure(task.stop_code.as_deref(), &reason) {
                // Spot interruption, Fargate retirement, AZ rebalancing,
                // scale-in, an operator's StopTask: ECS replaces the task,
                // and its version is not to blame.
                tracing::info!(
                    task_arn = %task.task_arn,
                    stop_code = task.stop_code.as_deref().unwrap_or("none"),
                    %reason,
                    "task stopped for a reason that is not a failure of its version"
                );
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
        // Our running tasks: those our deployment started, not the old
        // deployment's still draining. (A rollback deployment that took
        // over the running tasks of an earlier one, which keep its
        // `startedBy`, lists none of them: its watch counts ECS's
        // `runningCount` instead, and ECS vouches for them.)
        let running = self
            .tasks(
                watch.target,
                DesiredStatus::Running,
                Some(watch.deployment_id),
                |_| true,
            )
            .await?;
        for task in running.into_iter().filter(|t| ours(t)) {
            if task.last_status != "RUNNING" {
                inspection.all_healthy = false;
                continue;
            }
            let mut task_healthy = true;
            for name in watch.health_checked {
                let health = task
                    .containers
                    .iter()
                    .find(|c| &c.name == name)
                    .map_or(HealthStatus::Unknown, |c| c.health_status);
                if health != HealthStatus::Healthy {
                    task_healthy = false;
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
            // Every essential container with a health check is in
            // `health_checked` (from the task definition we registered), so
            // an UNHEALTHY essential container makes the task unhealthy here.
            inspection.all_healthy &= task_healthy;
            inspection.running.insert(task.task_arn, task_healthy);
        }
        Ok(inspection)
    }

    /// Every task of the service with `desired` status (or, with
    /// `started_by`, the RUNNING ones that deployment started) whose ARN
    /// passes `wanted`, across all pages, described in chunks of 100.
    async fn tasks(
        &self,
        target: &RolloutTarget,
        desired: DesiredStatus,
        started_by: Option<&str>,
        wanted: impl Fn(&str) -> bool,
    ) -> Result<Vec<TaskDescription>> {
        let request = ListTasksRequest {
            cluster: target.cluster.clone(),
            service: target.service.clone(),
            desired_status: desired,
            started_by: started_by.map(str::to_owned),
            ..Default::default()
        };
        let arns = list_every_page(self.ecs, request).await?;
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
    let request = ListTasksRequest {
        cluster: target.cluster.clone(),
        service: target.service.clone(),
        desired_status: desired,
        ..Default::default()
    };
    list_every_page(ecs, request).await
}

/// Every task ARN `request` lists, 100 per page, to the last page.
async fn list_every_page(ecs: &dyn EcsApi, mut request: ListTasksRequest) -> Result<Vec<String>> {
    request.max_results = Some(100);
    let mut arns = Vec::new();
    loop {
        let page = ecs.list_tasks(&request).await?;
        arns.extend(page.items);
        match page.next_token {
            Some(token) => request.next_token = Some(token),
            None => return Ok(arns),
        }
    }
}
