//! The simulated ECS's state and its step function.

use std::{
    collections::{BTreeMap, HashMap},
    time::Duration,
};

use chrono::{DateTime, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{
    FaultPlan, ImageBehaviour, SIM_ACCOUNT, SIM_REGION, ServiceSetup, SimTimings, TaskInterruption,
};
use crate::{
    ContainerState, Deployment, DeploymentConfiguration, DeploymentStatus, DesiredStatus, Error,
    ErrorClass, HealthCheck, HealthStatus, ListTasksRequest, Page, PageToken,
    RegisteredTaskDefinition, ResourceKind, Result, RolloutState, ServiceDescription, ServiceEvent,
    TaskDefinitionSpec, TaskDefinitionStatus, TaskDescription, UpdateServiceRequest,
    UpdateServiceResult, api::parse_task_definition_arn,
};

/// A scheduled stop of healthy tasks (`schedule_task_interruption`).
#[derive(Debug)]
pub(super) struct ScheduledInterruption {
    pub(super) at: Duration,
    pub(super) cluster: String,
    pub(super) service: String,
    pub(super) count: usize,
    pub(super) why: TaskInterruption,
}

#[derive(Debug)]
pub(super) struct SimState {
    origin_mono: Duration,
    origin_wall: DateTime<Utc>,
    applied: Duration,
    rng: ChaCha8Rng,
    pub(super) timings: SimTimings,
    pub(super) faults: FaultPlan,
    pub(super) forced_throttles: u32,
    pub(super) latency: Duration,
    pub(super) page_size: usize,
    pub(super) behaviours: HashMap<String, ImageBehaviour>,
    families: BTreeMap<String, Vec<RegisteredTaskDefinition>>,
    services: Vec<SimService>,
    tasks: Vec<SimTask>,
    pub(super) scheduled: Vec<(Duration, UpdateServiceRequest)>,
    /// Scheduled changes of a service's desired count: (at, cluster, service, desired).
    pub(super) scheduled_scaling: Vec<(Duration, String, String, i32)>,
    /// Scheduled stops of healthy tasks for reasons that are not failures.
    pub(super) scheduled_interruptions: Vec<ScheduledInterruption>,
    /// (when, cluster, service): someone stops the PRIMARY deployment's
    /// service deployment.
    pub(super) scheduled_stops: Vec<(Duration, String, String)>,
    /// Deployment alarms going into ALARM: (at, cluster, service, alarm).
    pub(super) scheduled_alarms: Vec<(Duration, String, String, String)>,
    pub(super) calls: BTreeMap<&'static str, u64>,
    next_id: u64,
    /// Armed by `fail_reads_after_next_update`: (window, class).
    pub(super) pending_read_outage: Option<(Duration, ErrorClass)>,
    /// Reads fail until this time, with this class.
    pub(super) read_outage: Option<(Duration, ErrorClass)>,
    /// Outages of one operation: (from, until, operation prefix, class).
    pub(super) operation_outages: Vec<(Duration, Duration, &'static str, ErrorClass)>,
    /// How long `DescribeServices` keeps answering from before an `UpdateService`.
    pub(super) stale_lag: Duration,
    /// Whether reads inside the stale window alternate fresh and stale
    /// (replicas of differing lag) instead of all answering stale.
    pub(super) stale_flaps: bool,
    /// How long a new task stays out of `ListTasks` (eventual consistency).
    pub(super) list_tasks_lag: Duration,
    /// Reads of a stale window served so far (for the alternation).
    stale_window_reads: u64,
    /// (cluster, service, until, the answer from before the update).
    pub(super) stale_snapshots: Vec<(String, String, Duration, ServiceDescription)>,
    /// Images whose one transient pull failure happened.
    transient_failed: std::collections::HashSet<String>,
    /// Whether the ServiceDeployment API (List/Describe/StopServiceDeployment) exists.
    pub(super) service_deployments_api: bool,
    /// How far service-deployment statuses lag behind (eventual consistency).
    pub(super) service_deployment_lag: Duration,
    /// How long a new service deployment stays out of the history's list
    /// (`set_service_deployment_listing_lag`).
    pub(super) service_deployment_listing_lag: Duration,
    /// `DescribeTasks` shows no `startedBy` (`set_started_by_absent`).
    pub(super) started_by_absent: bool,
    /// ECS's rollback deployment takes over the running tasks of the last
    /// COMPLETED deployment (which keep that deployment's `startedBy`).
    pub(super) rollback_adopts_tasks: bool,
    /// How long a rollback requested with `StopServiceDeployment(ROLLBACK)`
    /// stays ROLLBACK_REQUESTED before ECS starts the rollback deployment
    /// (`set_requested_rollback_delay`; `Duration::MAX`: never).
    pub(super) requested_rollback_delay: Duration,
    /// Requested rollbacks not started yet: (at, service deployment ARN).
    pending_rollbacks: Vec<(Duration, String)>,
    /// `failedTasks` resets when a task of the deployment becomes healthy
    /// (`set_breaker_resets_on_healthy_task`).
    pub(super) breaker_resets_on_healthy: bool,
    /// `DescribeServices` reports no `rolloutState` (`set_rollout_state_absent`).
    pub(super) rollout_state_absent: bool,
    /// How long an UNHEALTHY task keeps running before ECS stops it
    /// (`set_unhealthy_tasks_linger`).
    pub(super) unhealthy_linger: Duration,
    /// How long `DescribeTasks` still shows a container that became HEALTHY
    /// as UNKNOWN (`set_task_health_lag`).
    pub(super) task_health_lag: Duration,
    /// ECS's request throttling, when switched on (`set_rate_limits`).
    pub(super) rate_limiter: Option<super::rate_limit::RateLimiter>,
    /// Routine events recorded after each event (`set_busy_events`).
    pub(super) busy_events: usize,
}

/// A service deployment (the ServiceDeployment API's view of one
/// `UpdateService`).
#[derive(Debug)]
struct SimServiceDeployment {
    arn: String,
    /// The `DescribeServices` deployment it created.
    deployment_id: String,
    target_task_definition: String,
    source_task_definitions: Vec<String>,
    started: Duration,
    /// (since, status, reason), oldest first.
    history: Vec<(Duration, &'static str, Option<String>)>,
    /// The rollback: the deployment ECS created, and its task definition.
    rollback: Option<(String, String)>,
    /// Deployment alarms that failed it.
    triggered_alarms: Vec<String>,
    /// The lifecycle stage of a blue/green, linear or canary deployment.
    lifecycle_stage: Option<&'static str>,
}

impl SimServiceDeployment {
    fn status(&self) -> &'static str {
        self.history.last().map_or("PENDING", |h| h.1)
    }

    fn set(&mut self, t: Duration, status: &'static str, reason: impl Into<String>) {
        self.history.push((t, status, Some(reason.into())));
    }
}

#[derive(Debug)]
struct SimService {
    cluster: String,
    name: String,
    /// `deploymentController.type` (`None` = not reported: ECS).
    controller: Option<String>,
    desired: i32,
    config: DeploymentConfiguration,
    /// PRIMARY first.
    deployments: Vec<SimDeployment>,
    /// Newest first.
    events: Vec<ServiceEvent>,
    /// (deployment id, task definition) of the last COMPLETED deployment.
    last_completed: Option<(String, String)>,
    /// Service deployments, newest first.
    service_deployments: Vec<SimServiceDeployment>,
    /// `deploymentConfiguration.alarms`.
    alarms: Option<crate::DeploymentAlarms>,
    /// How long ECS keeps an otherwise finished deployment IN_PROGRESS:
    /// while it watches the alarms, or the bake of a blue/green, linear or
    /// canary deployment (`bakeTimeInMinutes`).
    ecs_bake: Duration,
    /// `deploymentConfiguration.strategy` (`None` = not reported: ROLLING).
    strategy: Option<String>,
    /// Lifecycle hooks of its staged deployments, in the order they run.
    hooks: Vec<super::LifecycleHook>,
    /// Indices into `SimState::tasks`, creation order.
    tasks: Vec<usize>,
}

#[derive(Debug)]
struct SimDeployment {
    id: String,
    status: DeploymentStatus,
    task_definition: String,
    rollout_state: RolloutState,
    reason: Option<String>,
    failed_tasks: i32,
    created: Duration,
    updated: Duration,
    drained_since: Option<Duration>,
    /// Deployments whose tasks this one took over (they keep their `startedBy`).
    adopted_from: Vec<String>,
    /// Since when every task runs healthy and no old task is left (ECS's
    /// alarm bake runs from here).
    settled_since: Option<Duration>,
    /// Stopped through its service deployment by someone else
    /// (`schedule_service_deployment_stop`): it never completes.
    halted: bool,
}

impl SimDeployment {
    /// Whether `task` counts as this deployment's.
    fn owns(&self, task: &SimTask) -> bool {
        task.started_by == self.id || self.adopted_from.contains(&task.started_by)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Pending,
    Running,
    Stopped,
}

#[derive(Debug)]
struct SimTask {
    arn: String,
    task_definition: String,
    started_by: String,
    created: Duration,
    /// Extra PENDING time of this task (tasks do not all start at once).
    pending_jitter: Duration,
    phase: Phase,
    started_at: Option<Duration>,
    stopped_at: Option<Duration>,
    stopped_reason: Option<String>,
    stop_code: Option<String>,
    containers: Vec<SimContainer>,
    /// Whether the task has reached a healthy state once.
    was_ready: bool,
}

#[derive(Debug)]
struct SimContainer {
    name: String,
    image: String,
    essential: bool,
    behaviour: ImageBehaviour,
    health_check: Option<HealthCheck>,
    last_status: &'static str,
    exit_code: Option<i32>,
    reason: Option<String>,
    health: HealthStatus,
    /// When the health became what it is (HEALTHY or UNHEALTHY).
    health_since: Duration,
}

/// What happened to a task in one step.
enum TaskChange {
    None,
    /// Stopped by a failure the circuit breaker counts.
    Failed,
}

impl SimTask {
    fn live(&self) -> bool {
        self.phase != Phase::Stopped
    }

    fn has_essential_health_check(&self) -> bool {
        self.containers
            .iter()
            .any(|c| c.essential && c.health_check.is_some())
    }

    fn health(&self) -> HealthStatus {
        let checked: Vec<&SimContainer> = self
            .containers
            .iter()
            .filter(|c| c.essential && c.health_check.is_some())
            .collect();
        if checked.iter().any(|c| c.health == HealthStatus::Unhealthy) {
            HealthStatus::Unhealthy
        } else if !checked.is_empty() && checked.iter().all(|c| c.health == HealthStatus::Healthy) {
            HealthStatus::Healthy
        } else {
            HealthStatus::Unknown
        }
    }

    /// Counts toward the deployment's healthy tasks.
    fn ready(&self) -> bool {
        self.phase == Phase::Running
            && (!self.has_essential_health_check() || self.health() == HealthStatus::Healthy)
    }

    fn stop(&mut self, at: Duration, reason: String, code: &str) {
        self.phase = Phase::Stopped;
        self.stopped_at = Some(at);
        self.stopped_reason = Some(reason);
        self.stop_code = Some(code.to_owned());
        for c in &mut self.containers {
            c.last_status = "STOPPED";
        }
    }

    fn step(
        &mut self,
        t: Duration,
        timings: &SimTimings,
        unhealthy_linger: Duration,
    ) -> TaskChange {
        match self.phase {
            Phase::Stopped => TaskChange::None,
            Phase::Pending => {
                if t < self.created + timings.pending + self.pending_jitter {
                    return TaskChange::None;
                }
                let broken = self.containers.iter().position(|c| {
                    matches!(
                        c.behaviour,
                        ImageBehaviour::PullError
                            | ImageBehaviour::ResourceInitError
                            | ImageBehaviour::TransientPullError
                    )
                });
                if let Some(i) = broken {
                    let c = &mut self.containers[i];
                    let reason = match c.behaviour {
                        ImageBehaviour::PullError => format!(
                            "CannotPullContainerError: pull image manifest has been retried 5 time(s): \
                             failed to resolve ref {}: not found",
                            c.image
                        ),
                        ImageBehaviour::TransientPullError => format!(
                            "CannotPullContainerError: pull image manifest has been retried 5 \
                             time(s): failed to resolve ref {}: failed to do request: Head \
                             \"https://registry.example.com:5000/v2/team/runner/manifests/\
                             20250102.1\": dial tcp 10.0.0.1:5000: i/o timeout",
                            c.image
                        ),
                        _ => {
                            "ResourceInitializationError: unable to pull secrets or registry auth: \
                              execution resource retrieval failed: AccessDeniedException"
                                .to_owned()
                        }
                    };
                    c.reason = Some(reason.clone());
                    self.stop(t, reason, "TaskFailedToStart");
                    return TaskChange::Failed;
                }
                self.phase = Phase::Running;
                self.started_at = Some(t);
                for c in &mut self.containers {
                    c.last_status = "RUNNING";
                }
                TaskChange::None
            }
            Phase::Running => {
                let started = self.started_at.unwrap_or(t);
                let mut essential_exit = None;
                for c in &mut self.containers {
                    if c.last_status != "RUNNING" {
                        continue;
                    }
                    let hc = c.health_check.as_ref();
                    let start_period = Duration::from_secs(
                        hc.and_then(|h| h.start_period).unwrap_or(0).max(0) as u64,
                    );
                    match c.behaviour {
                        ImageBehaviour::CrashLoop if t >= started + timings.crash_after => {
                            c.last_status = "STOPPED";
                            c.exit_code = Some(1);
                            if c.essential {
                                essential_exit = Some(c.name.clone());
                            }
                        }
                        // A crash-looping container exits before its first passing check.
                        ImageBehaviour::DegradesLater
                            if hc.is_some()
                                && c.health != HealthStatus::Unhealthy
                                && t >= started + timings.degrade_after =>
                        {
                            c.health = HealthStatus::Unhealthy;
                            c.health_since = t;
                        }
                        ImageBehaviour::Healthy | ImageBehaviour::DegradesLater
                            if hc.is_some()
                                && c.health == HealthStatus::Unknown
                                && t >= started + timings.first_health_check =>
                        {
                            c.health = HealthStatus::Healthy;
                            c.health_since = t;
                        }
                        ImageBehaviour::Unhealthy if hc.is_some() => {
                            let hc = hc.cloned().unwrap_or_default();
                            let interval = hc.interval.unwrap_or(30).max(1) as u64;
                            let retries = hc.retries.unwrap_or(3).max(1) as u64;
                            if c.health != HealthStatus::Unhealthy
                                && t >= started
                                    + start_period
                                    + Duration::from_secs(interval * retries)
                            {
                                c.health = HealthStatus::Unhealthy;
                                c.health_since = t;
                            }
                        }
                        _ => {}
                    }
                }
                if let Some(name) = essential_exit {
                    self.stop(
                        t,
                        format!("Essential container in task exited ({name})"),
                        "EssentialContainerExited",
                    );
                    return TaskChange::Failed;
                }
                let unhealthy_since = self
                    .containers
                    .iter()
                    .filter(|c| c.essential && c.health == HealthStatus::Unhealthy)
                    .map(|c| c.health_since)
                    .min();
                if self.health() == HealthStatus::Unhealthy
                    && unhealthy_since.is_some_and(|since| t >= since + unhealthy_linger)
                {
                    self.stop(
                        t,
                        "Task failed container health checks".into(),
                        "ServiceSchedulerInitiated",
                    );
                    return TaskChange::Failed;
                }
                TaskChange::None
            }
        }
    }

    /// The task as `DescribeTasks` shows it at `now`: a container that
    /// became HEALTHY less than `health_lag` ago still reads UNKNOWN.
    fn describe(
        &self,
        wall: impl Fn(Duration) -> DateTime<Utc>,
        now: Duration,
        health_lag: Duration,
    ) -> TaskDescription {
        let shown = |c: &SimContainer| {
            if c.health == HealthStatus::Healthy && now < c.health_since + health_lag {
                HealthStatus::Unknown
            } else {
                c.health
            }
        };
        TaskDescription {
            task_arn: self.arn.clone(),
            task_definition_arn: self.task_definition.clone(),
            started_by: Some(self.started_by.clone()),
            last_status: match self.phase {
                Phase::Pending => "PENDING",
                Phase::Running => "RUNNING",
                Phase::Stopped => "STOPPED",
            }
            .into(),
            desired_status: if self.phase == Phase::Stopped {
                "STOPPED"
            } else {
                "RUNNING"
            }
            .into(),
            health_status: self.health(),
            stopped_reason: self.stopped_reason.clone(),
            stop_code: self.stop_code.clone(),
            containers: self
                .containers
                .iter()
                .map(|c| ContainerState {
                    name: c.name.clone(),
                    image: c.image.clone(),
                    image_digest: None,
                    last_status: c.last_status.into(),
                    exit_code: c.exit_code,
                    reason: c.reason.clone(),
                    health_status: shown(c),
                    essential: Some(c.essential),
                })
                .collect(),
            started_at: self.started_at.map(&wall),
            stopped_at: self.stopped_at.map(&wall),
        }
    }
}

fn not_found(kind: ResourceKind, name: &str) -> Error {
    Error::NotFound {
        kind,
        name: name.to_owned(),
    }
}

fn client_error(operation: &'static str, resource: &str, message: impl Into<String>) -> Error {
    Error::api(operation, resource, ErrorClass::Permanent, message)
}

fn short_name(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

fn service_matches(svc: &SimService, cluster: &str, service: &str) -> bool {
    let cluster_name = cluster.rsplit('/').next().unwrap_or(cluster);
    let service_name = service.rsplit('/').next().unwrap_or(service);
    svc.cluster == cluster_name && svc.name == service_name
}

impl SimState {
    pub(super) fn new(mono: Duration, wall: DateTime<Utc>, seed: u64) -> Self {
        Self {
            origin_mono: mono,
            origin_wall: wall,
            applied: mono,
            rng: ChaCha8Rng::seed_from_u64(seed),
            timings: SimTimings::default(),
            faults: FaultPlan::default(),
            forced_throttles: 0,
            latency: Duration::ZERO,
            page_size: 100,
            behaviours: HashMap::new(),
            families: BTreeMap::new(),
            services: Vec::new(),
            tasks: Vec::new(),
            scheduled: Vec::new(),
            scheduled_scaling: Vec::new(),
            scheduled_interruptions: Vec::new(),
            scheduled_stops: Vec::new(),
            scheduled_alarms: Vec::new(),
            calls: BTreeMap::new(),
            next_id: 1,
            pending_read_outage: None,
            read_outage: None,
            operation_outages: Vec::new(),
            stale_lag: Duration::ZERO,
            stale_flaps: false,
            list_tasks_lag: Duration::ZERO,
            stale_window_reads: 0,
            stale_snapshots: Vec::new(),
            transient_failed: std::collections::HashSet::new(),
            service_deployments_api: false,
            service_deployment_lag: Duration::ZERO,
            service_deployment_listing_lag: Duration::ZERO,
            started_by_absent: false,
            rollback_adopts_tasks: false,
            requested_rollback_delay: Duration::ZERO,
            pending_rollbacks: Vec::new(),
            breaker_resets_on_healthy: false,
            rollout_state_absent: false,
            unhealthy_linger: Duration::ZERO,
            task_health_lag: Duration::ZERO,
            rate_limiter: None,
            busy_events: 0,
        }
    }

    fn wall(&self, at: Duration) -> DateTime<Utc> {
        let delta = at.saturating_sub(self.origin_mono);
        self.origin_wall + chrono::Duration::from_std(delta).unwrap_or(chrono::Duration::zero())
    }

    /// Counts the call and injects faults.
    pub(super) fn enter(&mut self, operation: &'static str, resource: &str) -> Result<()> {
        *self.calls.entry(operation).or_default() += 1;
        let read = operation.starts_with("Describe") || operation.starts_with("List");
        if let Some((until, class)) = self.read_outage.filter(|_| read) {
            if self.applied < until {
                return Err(Error::api(
                    operation,
                    resource,
                    class,
                    fault_message(class, operation),
                ));
            }
            self.read_outage = None;
        }
        let applied = self.applied;
        if let Some(&(_, _, _, class)) =
            self.operation_outages.iter().find(|(from, until, op, _)| {
                operation.starts_with(op) && (*from..*until).contains(&applied)
            })
        {
            return Err(Error::api(
                operation,
                resource,
                class,
                fault_message(class, operation),
            ));
        }
        if self.forced_throttles > 0 {
            self.forced_throttles -= 1;
            return Err(Error::api(
                operation,
                resource,
                ErrorClass::Throttled,
                "ThrottlingException: Rate exceeded",
            ));
        }
        let draw: f64 = self.rng.random();
        if draw < self.faults.throttle_probability {
            return Err(Error::api(
                operation,
                resource,
                ErrorClass::Throttled,
                "ThrottlingException: Rate exceeded",
            ));
        }
        if draw < self.faults.throttle_probability + self.faults.server_error_probability {
            return Err(Error::api(
                operation,
                resource,
                ErrorClass::Transient,
                "ServerException (HTTP 500): Service unavailable. Try again later.",
            ));
        }
        if let Some(limiter) = &mut self.rate_limiter
            && let Err((action, category)) = limiter.admit(operation, self.applied)
        {
            return Err(Error::api(
                operation,
                resource,
                ErrorClass::Throttled,
                format!("ThrottlingException: Rate exceeded ({action}, {category} bucket empty)"),
            ));
        }
        Ok(())
    }

    /// Runs the simulation up to monotonic time `now`.
    pub(super) fn advance(&mut self, now: Duration) {
        let tick = self.timings.tick.max(Duration::from_millis(1));
        while self.applied < now {
            let t = (self.applied + tick).min(now);
            self.applied = t;
            self.run_scheduled(t);
            for s in 0..self.services.len() {
                self.step_service(s, t);
            }
        }
    }

    fn run_scheduled(&mut self, t: Duration) {
        let (due, later): (Vec<_>, Vec<_>) = self.scheduled.drain(..).partition(|(at, _)| *at <= t);
        self.scheduled = later;
        for (_, request) in due {
            if let Err(error) = self.update_service(&request, t, "UpdateService(operator)") {
                tracing::warn!(%error, "simulated operator update failed");
            }
        }
        let (due, later): (Vec<_>, Vec<_>) = self
            .scheduled_scaling
            .drain(..)
            .partition(|(at, ..)| *at <= t);
        self.scheduled_scaling = later;
        self.run_interruptions(t);
        self.run_alarms(t);
        self.run_stops(t);
        self.run_requested_rollbacks(t);
        for (_, cluster, service, desired) in due {
            match self.service_index(&cluster, &service) {
                // Like `UpdateService` with only `desiredCount` (an
                // autoscaling policy or an operator): no new deployment,
                // the PRIMARY deployment launches or stops tasks.
                Ok(s) => {
                    self.services[s].desired = desired.max(0);
                    let name = self.services[s].name.clone();
                    self.push_event(
                        s,
                        t,
                        format!("(service {name}) has a desired count of {desired}."),
                    );
                }
                Err(error) => tracing::warn!(%error, "simulated scaling failed"),
            }
        }
    }

    /// Stops the due service deployments: STOPPED, while `DescribeServices`
    /// keeps their deployment PRIMARY and IN_PROGRESS (it never completes).
    fn run_stops(&mut self, t: Duration) {
        let (due, later): (Vec<_>, Vec<_>) = self
            .scheduled_stops
            .drain(..)
            .partition(|(at, ..)| *at <= t);
        self.scheduled_stops = later;
        for (_, cluster, service) in due {
            let Ok(s) = self.service_index(&cluster, &service) else {
                tracing::warn!(cluster, service, "simulated stop: no such service");
                continue;
            };
            let primary = &mut self.services[s].deployments[0];
            primary.halted = true;
            let id = primary.id.clone();
            self.set_service_deployment(s, &id, t, "STOPPED", "stopped by a user");
        }
    }

    /// Starts the due rollbacks requested with
    /// `StopServiceDeployment(ROLLBACK)` (`set_requested_rollback_delay`).
    fn run_requested_rollbacks(&mut self, t: Duration) {
        let (due, later): (Vec<_>, Vec<_>) = self
            .pending_rollbacks
            .drain(..)
            .partition(|(at, _)| *at <= t);
        self.pending_rollbacks = later;
        for (_, arn) in due {
            let Some((s, i)) = self.service_deployment_index(&arn) else {
                continue;
            };
            let failed_id = self.services[s].service_deployments[i]
                .deployment_id
                .clone();
            let Some(failed_td) = self.services[s]
                .deployments
                .iter()
                .find(|d| d.id == failed_id)
                .map(|d| d.task_definition.clone())
            else {
                continue;
            };
            self.roll_back_requested(s, i, t, &failed_id, &failed_td);
        }
    }

    /// ECS acts on a requested rollback: ECS's rollback deployment, or
    /// ROLLBACK_FAILED when there is nothing to go back to.
    fn roll_back_requested(
        &mut self,
        s: usize,
        i: usize,
        t: Duration,
        failed_id: &str,
        failed_td: &str,
    ) {
        if self
            .start_ecs_rollback(s, t, failed_id, failed_td)
            .is_none()
        {
            self.services[s].service_deployments[i].set(
                t,
                "ROLLBACK_FAILED",
                "no COMPLETED deployment to roll back to",
            );
        }
    }

    fn service_deployment_index(&self, arn: &str) -> Option<(usize, usize)> {
        self.services.iter().enumerate().find_map(|(s, svc)| {
            svc.service_deployments
                .iter()
                .position(|sd| sd.arn == arn)
                .map(|i| (s, i))
        })
    }

    /// Stops the due interruptions' tasks: RUNNING tasks of the PRIMARY
    /// deployment, oldest first, with the interruption's stop code.
    fn run_interruptions(&mut self, t: Duration) {
        let (due, later): (Vec<_>, Vec<_>) = self
            .scheduled_interruptions
            .drain(..)
            .partition(|i| i.at <= t);
        self.scheduled_interruptions = later;
        for interruption in due {
            let s = match self.service_index(&interruption.cluster, &interruption.service) {
                Ok(s) => s,
                Err(error) => {
                    tracing::warn!(%error, "simulated interruption failed");
                    continue;
                }
            };
            let primary = &self.services[s].deployments[0];
            let owners: Vec<String> = std::iter::once(primary.id.clone())
                .chain(primary.adopted_from.iter().cloned())
                .collect();
            let mut victims: Vec<usize> = self.services[s]
                .tasks
                .iter()
                .copied()
                .filter(|&i| {
                    self.tasks[i].phase == Phase::Running
                        && owners.contains(&self.tasks[i].started_by)
                })
                .collect();
            victims.sort_by_key(|&i| self.tasks[i].created);
            let (code, reason) = interruption.why.stop_code_and_reason();
            for i in victims.into_iter().take(interruption.count) {
                self.tasks[i].stop(t, reason.to_owned(), code);
            }
        }
    }

    fn next_hex(&mut self) -> String {
        format!("{:032x}", self.rng.random::<u128>())
    }

    fn push_event(&mut self, s: usize, t: Duration, message: String) {
        let created_at = Some(self.wall(t));
        let name = self.services[s].name.clone();
        let routine: Vec<String> = (0..self.busy_events)
            .map(|_| {
                format!(
                    "(service {name}) has started 1 tasks: (task {}).",
                    self.next_hex()
                )
            })
            .collect();
        for message in std::iter::once(message).chain(routine) {
            let id = self.next_hex();
            self.services[s].events.insert(
                0,
                ServiceEvent {
                    id,
                    created_at,
                    message,
                },
            );
        }
        // ECS returns the 100 newest events.
        self.services[s].events.truncate(100);
    }

    fn new_deployment(
        &mut self,
        task_definition: &str,
        t: Duration,
        reason: Option<String>,
    ) -> SimDeployment {
        let id = format!(
            "ecs-svc/{:019}",
            1_000_000_000_000_000_000u64 + self.next_id
        );
        self.next_id += 1;
        SimDeployment {
            id,
            status: DeploymentStatus::Primary,
            task_definition: task_definition.to_owned(),
            rollout_state: RolloutState::InProgress,
            reason,
            failed_tasks: 0,
            created: t,
            updated: t,
            drained_since: None,
            adopted_from: Vec::new(),
            settled_since: None,
            halted: false,
        }
    }

    fn launch_task(&mut self, s: usize, deployment: usize, t: Duration, running: bool) {
        let task_definition = self.services[s].deployments[deployment]
            .task_definition
            .clone();
        let started_by = self.services[s].deployments[deployment].id.clone();
        let spec = self
            .describe_task_definition(&task_definition)
            .map(|td| td.spec)
            .unwrap_or_default();
        let containers = spec
            .container_definitions
            .iter()
            .map(|c| SimContainer {
                name: c.name.clone(),
                image: c.image.clone(),
                essential: c.essential.unwrap_or(true),
                behaviour: match self.behaviours.get(&c.image).copied().unwrap_or_default() {
                    // Only the first task of the image fails.
                    ImageBehaviour::TransientPullError
                        if !self.transient_failed.insert(c.image.clone()) =>
                    {
                        ImageBehaviour::Healthy
                    }
                    behaviour => behaviour,
                },
                health_check: c.health_check.clone(),
                last_status: if running { "RUNNING" } else { "PENDING" },
                exit_code: None,
                reason: None,
                health: if running && c.health_check.is_some() {
                    HealthStatus::Healthy
                } else {
                    HealthStatus::Unknown
                },
                // A task created running has been healthy "forever".
                health_since: Duration::ZERO,
            })
            .collect();
        let id = self.next_hex();
        let arn = format!(
            "arn:aws:ecs:{SIM_REGION}:{SIM_ACCOUNT}:task/{}/{id}",
            self.services[s].cluster
        );
        let jitter_ms = self.timings.pending_jitter.as_millis() as u64;
        let pending_jitter = Duration::from_millis(if jitter_ms == 0 {
            0
        } else {
            self.rng.random_range(0..=jitter_ms)
        });
        self.tasks.push(SimTask {
            arn,
            task_definition,
            started_by,
            created: t,
            pending_jitter,
            phase: if running {
                Phase::Running
            } else {
                Phase::Pending
            },
            started_at: running.then_some(t),
            stopped_at: None,
            stopped_reason: None,
            stop_code: None,
            containers,
            was_ready: false,
        });
        let index = self.tasks.len() - 1;
        self.services[s].tasks.push(index);
    }

    fn step_service(&mut self, s: usize, t: Duration) {
        // 1. Tasks move on; failures count against the deployment that started them.
        let live: Vec<usize> = self.services[s]
            .tasks
            .iter()
            .copied()
            .filter(|&i| self.tasks[i].live())
            .collect();
        let resets = self.breaker_resets_on_healthy
            && self.services[s]
                .config
                .circuit_breaker
                .is_none_or(|b| b.reset_on_healthy_task != Some(false));
        for i in live {
            let change = self.tasks[i].step(t, &self.timings, self.unhealthy_linger);
            let healthy_now = !self.tasks[i].was_ready && self.tasks[i].ready();
            self.tasks[i].was_ready |= healthy_now;
            let by = self.tasks[i].started_by.clone();
            let Some(d) = self.services[s]
                .deployments
                .iter_mut()
                .find(|d| d.id == by || d.adopted_from.contains(&by))
            else {
                continue;
            };
            if let TaskChange::Failed = change {
                d.failed_tasks += 1;
                d.updated = t;
            } else if healthy_now && resets && d.failed_tasks > 0 {
                d.failed_tasks = 0;
                d.updated = t;
            }
        }
        let retention = self.timings.stopped_task_retention;
        let tasks = &self.tasks;
        self.services[s].tasks.retain(|&i| {
            tasks[i].live() || tasks[i].stopped_at.is_some_and(|at| at + retention > t)
        });

        // 2. The circuit breaker.
        let desired = self.services[s].desired;
        let breaker = self.services[s].config.circuit_breaker.unwrap_or_default();
        let primary = &self.services[s].deployments[0];
        if breaker.enable
            && primary.rollout_state == RolloutState::InProgress
            && primary.failed_tasks as u32 >= breaker.failure_threshold(desired)
        {
            self.fail_primary(
                s,
                t,
                "ECS deployment circuit breaker: tasks failed to start.",
                "tasks failed to start",
                breaker.rollback,
                Vec::new(),
            );
        }

        // 3. Launch tasks of the PRIMARY deployment within maximumPercent.
        let config = self.services[s].config;
        let max_percent = config.maximum_percent.unwrap_or(200).max(100);
        let min_percent = config.minimum_healthy_percent.unwrap_or(100).clamp(0, 100);
        let cap = (i64::from(desired) * i64::from(max_percent) / 100) as usize;
        let primary_id = self.services[s].deployments[0].id.clone();
        let adopted = self.services[s].deployments[0].adopted_from.clone();
        let launching = self.services[s].deployments[0].rollout_state != RolloutState::Failed;
        let count = |state: &SimState, f: &dyn Fn(&SimTask) -> bool| {
            state.services[s]
                .tasks
                .iter()
                .filter(|&&i| f(&state.tasks[i]))
                .count()
        };
        let primary_owns =
            |task: &SimTask| task.started_by == primary_id || adopted.contains(&task.started_by);
        let mut live_primary = count(self, &|task| task.live() && primary_owns(task));
        let mut live_total = count(self, &|task| task.live());
        while launching && live_primary < desired.max(0) as usize && live_total < cap {
            self.launch_task(s, 0, t, false);
            live_primary += 1;
            live_total += 1;
        }

        // 4. Stop old tasks while enough healthy tasks remain (minimumHealthyPercent).
        let ready_primary = count(self, &|task| task.ready() && primary_owns(task));
        let min_healthy = (desired.max(0) as u64 * min_percent as u64).div_ceil(100) as usize;
        let mut old: Vec<usize> = self.services[s]
            .tasks
            .iter()
            .copied()
            .filter(|&i| self.tasks[i].live() && !primary_owns(&self.tasks[i]))
            .collect();
        old.sort_by_key(|&i| self.tasks[i].ready());
        let mut old_ready = old.iter().filter(|&&i| self.tasks[i].ready()).count();
        let mut old_live = old.len();
        for i in old {
            let ready = self.tasks[i].ready();
            if ready_primary + old_ready - usize::from(ready) >= min_healthy {
                self.tasks[i].stop(
                    t,
                    format!("Scaling activity initiated by (deployment {primary_id})"),
                    "ServiceSchedulerInitiated",
                );
                old_ready -= usize::from(ready);
                old_live -= 1;
            }
        }

        // 5. Completion.
        let p = &self.services[s].deployments[0];
        let settled = p.rollout_state == RolloutState::InProgress
            && !p.halted
            && ready_primary >= desired.max(0) as usize
            && old_live == 0;
        let staged = self.services[s]
            .strategy
            .as_deref()
            .is_some_and(|s| s != "ROLLING");
        let ecs_bake = if staged || self.services[s].alarms.as_ref().is_some_and(|a| a.enable) {
            self.services[s].ecs_bake
        } else {
            Duration::ZERO
        };
        let settled_since = if settled {
            *self.services[s].deployments[0]
                .settled_since
                .get_or_insert(t)
        } else {
            self.services[s].deployments[0].settled_since = None;
            t
        };
        // Lifecycle hooks run once the new tasks are up (not for a
        // rollback deployment), one after the other, before ECS's bake.
        let id = self.services[s].deployments[0].id.clone();
        let is_rollback = self.services[s]
            .service_deployments
            .iter()
            .any(|sd| sd.rollback.as_ref().is_some_and(|(r, _)| *r == id));
        let hooks: &[super::LifecycleHook] = if staged && !is_rollback {
            &self.services[s].hooks
        } else {
            &[]
        };
        let mut hooks_end = settled_since;
        let mut running_hook = None;
        for hook in hooks {
            if running_hook.is_none() && t < hooks_end + hook.holds {
                running_hook = Some((hook.stage, false));
            } else if running_hook.is_none() && hook.fails {
                running_hook = Some((hook.stage, true));
            }
            hooks_end += hook.holds;
        }
        if staged {
            // The lifecycle stage ECS reports for the PRIMARY deployment.
            let stage = match running_hook {
                _ if !settled => "SCALE_UP",
                Some((stage, _)) => stage,
                None => "BAKE_TIME",
            };
            if let Some(sd) = self.services[s]
                .service_deployments
                .iter_mut()
                .find(|sd| sd.deployment_id == id)
            {
                sd.lifecycle_stage = Some(stage);
            }
        }
        if let Some((stage, true)) = running_hook.filter(|_| settled) {
            let reason = format!("The lifecycle hook at {stage} returned FAILED.");
            self.fail_primary(s, t, &reason, "lifecycle hook failed", true, Vec::new());
        } else if settled && t >= hooks_end + ecs_bake {
            let p = &self.services[s].deployments[0];
            let (id, td) = (p.id.clone(), p.task_definition.clone());
            let p = &mut self.services[s].deployments[0];
            p.rollout_state = RolloutState::Completed;
            p.reason = Some(format!("ECS deployment {id} completed."));
            p.updated = t;
            self.services[s].last_completed = Some((id.clone(), td));
            if let Some(sd) = self.services[s]
                .service_deployments
                .iter_mut()
                .find(|sd| sd.rollback.as_ref().is_some_and(|(r, _)| *r == id))
            {
                sd.set(
                    t,
                    "ROLLBACK_SUCCESSFUL",
                    format!("rolled back with deployment {id}"),
                );
            } else {
                self.set_service_deployment(s, &id, t, "SUCCESSFUL", "completed");
            }
            let name = self.services[s].name.clone();
            self.push_event(
                s,
                t,
                format!("(service {name}) (deployment {id}) deployment completed."),
            );
            self.push_event(
                s,
                t,
                format!("(service {name}) has reached a steady state."),
            );
        }

        // 6. Drained non-primary deployments go INACTIVE and disappear.
        let linger = self.timings.drained_deployment_linger;
        let tasks = &self.tasks;
        let svc = &mut self.services[s];
        let live_by: Vec<String> = svc
            .tasks
            .iter()
            .filter(|&&i| tasks[i].live())
            .map(|&i| tasks[i].started_by.clone())
            .collect();
        for d in svc.deployments.iter_mut().skip(1) {
            if live_by
                .iter()
                .any(|by| *by == d.id || d.adopted_from.contains(by))
            {
                d.drained_since = None;
            } else if d.drained_since.is_none() {
                d.drained_since = Some(t);
            }
        }
        svc.deployments.retain(|d| {
            d.status == DeploymentStatus::Primary
                || d.drained_since.is_none_or(|since| since + linger > t)
        });
    }

    pub(super) fn create_service(&mut self, setup: ServiceSetup, t: Duration) -> Result<String> {
        if self
            .services
            .iter()
            .any(|svc| service_matches(svc, &setup.cluster, &setup.service))
        {
            return Err(client_error(
                "CreateService",
                &setup.service,
                "InvalidParameterException: service already exists",
            ));
        }
        let td = self.register_task_definition(&setup.task_definition)?;
        let mut deployment = self.new_deployment(&td.arn, t, None);
        deployment.rollout_state = RolloutState::Completed;
        deployment.reason = Some(format!("ECS deployment {} completed.", deployment.id));
        let last_completed = Some((deployment.id.clone(), td.arn.clone()));
        self.services.push(SimService {
            cluster: setup.cluster,
            name: setup.service,
            controller: None,
            desired: setup.desired_count.max(0),
            config: setup.deployment_configuration,
            deployments: vec![deployment],
            events: Vec::new(),
            last_completed,
            service_deployments: Vec::new(),
            alarms: None,
            ecs_bake: Duration::ZERO,
            strategy: None,
            hooks: Vec::new(),
            tasks: Vec::new(),
        });
        let s = self.services.len() - 1;
        for _ in 0..setup.desired_count.max(0) {
            self.launch_task(s, 0, t, true);
        }
        Ok(td.arn)
    }

    /// Sets the service's deployment alarms and ECS's alarm bake.
    pub(super) fn set_alarms(
        &mut self,
        cluster: &str,
        service: &str,
        alarms: Option<crate::DeploymentAlarms>,
        bake: Duration,
    ) -> Result<()> {
        let s = self.service_index(cluster, service)?;
        self.services[s].alarms = alarms;
        self.services[s].ecs_bake = bake;
        Ok(())
    }

    /// Sets the service's deployment strategy and ECS's bake time.
    pub(super) fn set_strategy(
        &mut self,
        cluster: &str,
        service: &str,
        strategy: Option<String>,
        bake: Duration,
    ) -> Result<()> {
        let s = self.service_index(cluster, service)?;
        self.services[s].strategy = strategy;
        self.services[s].ecs_bake = bake;
        Ok(())
    }

    /// Sets the lifecycle hooks of the service's staged deployments.
    pub(super) fn set_hooks(
        &mut self,
        cluster: &str,
        service: &str,
        hooks: Vec<super::LifecycleHook>,
    ) -> Result<()> {
        let s = self.service_index(cluster, service)?;
        self.services[s].hooks = hooks;
        Ok(())
    }

    /// Sets the service's deployment controller type.
    pub(super) fn set_controller(
        &mut self,
        cluster: &str,
        service: &str,
        controller: Option<String>,
    ) -> Result<()> {
        let s = self.service_index(cluster, service)?;
        self.services[s].controller = controller;
        Ok(())
    }

    /// The stale answer to `DescribeServices`, while one is due.
    /// What a `DescribeServices` of `service` answers: the stale snapshot
    /// while one is due, else the service as it is.
    pub(super) fn read_service(
        &mut self,
        cluster: &str,
        service: &str,
    ) -> Result<ServiceDescription> {
        let stale = self.stale_service(cluster, service);
        if stale.is_some() {
            self.stale_window_reads += 1;
        }
        // Flapping: the 1st, 3rd, 5th … read of the window is fresh.
        match stale.filter(|_| !(self.stale_flaps && self.stale_window_reads % 2 == 1)) {
            Some(stale) => Ok(stale),
            None => self.describe_service(cluster, service),
        }
    }

    pub(super) fn stale_service(&self, cluster: &str, service: &str) -> Option<ServiceDescription> {
        let (cluster, service) = (short_name(cluster), short_name(service));
        self.stale_snapshots
            .iter()
            .find(|(c, n, until, _)| c == cluster && n == service && self.applied < *until)
            .map(|(.., answer)| answer.clone())
    }

    /// After our `UpdateService` at `t`: arms the read outage and the
    /// stale answer (`before` = the service as it was before the update).
    pub(super) fn after_update(
        &mut self,
        request: &UpdateServiceRequest,
        t: Duration,
        before: Option<ServiceDescription>,
    ) {
        if let Some((window, class)) = self.pending_read_outage.take() {
            self.read_outage = Some((t + window, class));
        }
        if let Some(before) = before.filter(|_| !self.stale_lag.is_zero()) {
            let (cluster, service) = (
                short_name(&request.cluster).to_owned(),
                short_name(&request.service).to_owned(),
            );
            self.stale_snapshots
                .retain(|(c, n, ..)| !(c == &cluster && n == &service));
            self.stale_snapshots
                .push((cluster, service, t + self.stale_lag, before));
            self.stale_window_reads = 0;
        }
    }

    /// A service deployment for the deployment `deployment_id` (of
    /// `task_definition`) just created by `UpdateService`; service
    /// deployments still in progress are STOPPED (superseded).
    fn new_service_deployment(
        &mut self,
        s: usize,
        t: Duration,
        deployment_id: &str,
        task_definition: &str,
    ) {
        let svc = &mut self.services[s];
        for sd in &mut svc.service_deployments {
            if matches!(sd.status(), "PENDING" | "IN_PROGRESS") {
                sd.set(
                    t,
                    "STOPPED",
                    format!("superseded by deployment {deployment_id}"),
                );
            }
        }
        let mut sources: Vec<String> = svc
            .deployments
            .iter()
            .filter(|d| d.id != deployment_id && d.drained_since.is_none())
            .map(|d| d.task_definition.clone())
            .collect();
        sources.dedup();
        let suffix = deployment_id.rsplit('/').next().unwrap_or(deployment_id);
        let arn = format!(
            "arn:aws:ecs:{SIM_REGION}:{SIM_ACCOUNT}:service-deployment/{}/{}/{suffix}",
            svc.cluster, svc.name
        );
        svc.service_deployments.insert(
            0,
            SimServiceDeployment {
                arn,
                deployment_id: deployment_id.to_owned(),
                target_task_definition: task_definition.to_owned(),
                source_task_definitions: sources,
                started: t,
                history: vec![(t, "PENDING", None), (t, "IN_PROGRESS", None)],
                rollback: None,
                triggered_alarms: Vec::new(),
                lifecycle_stage: None,
            },
        );
    }

    /// Sets the status of the service deployment of `deployment_id`, if any.
    /// ECS fails the PRIMARY deployment (its breaker, or a deployment
    /// alarm): FAILED with `reason`, a "deployment failed: {event}" event,
    /// and then a rollback to the last COMPLETED deployment (`rollback`),
    /// else its service deployment STOPPED. A failing rollback deployment
    /// makes the rollback ROLLBACK_FAILED.
    fn fail_primary(
        &mut self,
        s: usize,
        t: Duration,
        reason: &str,
        event: &str,
        rollback: bool,
        triggered_alarms: Vec<String>,
    ) {
        let (failed_id, failed_td) = {
            let p = &mut self.services[s].deployments[0];
            p.rollout_state = RolloutState::Failed;
            p.reason = Some(reason.to_owned());
            p.updated = t;
            (p.id.clone(), p.task_definition.clone())
        };
        let name = self.services[s].name.clone();
        self.push_event(
            s,
            t,
            format!("(service {name}) (deployment {failed_id}) deployment failed: {event}."),
        );
        if let Some(sd) = self.services[s]
            .service_deployments
            .iter_mut()
            .find(|sd| sd.deployment_id == failed_id)
        {
            sd.triggered_alarms = triggered_alarms;
        }
        let rolled_back_by = self.services[s]
            .service_deployments
            .iter()
            .position(|sd| sd.rollback.as_ref().is_some_and(|(id, _)| *id == failed_id));
        if let Some(i) = rolled_back_by {
            // The rollback deployment itself failed.
            self.services[s].service_deployments[i].set(
                t,
                "ROLLBACK_FAILED",
                format!("{reason} The rollback deployment failed."),
            );
        } else if rollback
            && self
                .start_ecs_rollback(s, t, &failed_id, &failed_td)
                .is_none()
        {
            self.set_service_deployment(
                s,
                &failed_id,
                t,
                "ROLLBACK_FAILED",
                &format!("{reason} No COMPLETED deployment to roll back to."),
            );
        } else if !rollback {
            self.set_service_deployment(
                s,
                &failed_id,
                t,
                "STOPPED",
                &format!("{reason} Rollback is not configured."),
            );
        }
    }

    /// Deployment alarms going into ALARM: each due alarm that the
    /// service's enabled deployment alarms name fails an IN_PROGRESS
    /// PRIMARY deployment.
    fn run_alarms(&mut self, t: Duration) {
        let (due, later): (Vec<_>, Vec<_>) =
            self.scheduled_alarms.drain(..).partition(|a| a.0 <= t);
        self.scheduled_alarms = later;
        for (_, cluster, service, alarm) in due {
            let Ok(s) = self.service_index(&cluster, &service) else {
                continue;
            };
            let Some(alarms) = self.services[s].alarms.clone() else {
                continue;
            };
            let primary = &self.services[s].deployments[0];
            if !alarms.enable
                || !alarms.alarm_names.contains(&alarm)
                || primary.rollout_state != RolloutState::InProgress
            {
                continue;
            }
            let reason = format!(
                "ECS deployment {} failed: alarm(s) detected: {alarm}.",
                primary.id
            );
            self.fail_primary(
                s,
                t,
                &reason,
                &format!("alarm(s) detected: {alarm}"),
                alarms.rollback,
                vec![alarm],
            );
        }
    }

    fn set_service_deployment(
        &mut self,
        s: usize,
        deployment_id: &str,
        t: Duration,
        status: &'static str,
        reason: &str,
    ) {
        if let Some(sd) = self.services[s]
            .service_deployments
            .iter_mut()
            .find(|sd| sd.deployment_id == deployment_id)
        {
            sd.set(t, status, reason);
        }
    }

    /// ECS rolls the failed deployment back to the last COMPLETED one: a
    /// new PRIMARY deployment of its task definition (taking over its
    /// running tasks when `rollback_adopts_tasks`), the failed one ACTIVE,
    /// its service deployment ROLLBACK_IN_PROGRESS. `None` when there is
    /// no COMPLETED deployment of another task definition to go back to.
    fn start_ecs_rollback(
        &mut self,
        s: usize,
        t: Duration,
        failed_id: &str,
        failed_td: &str,
    ) -> Option<()> {
        let (prev_id, prev_td) = self.services[s]
            .last_completed
            .clone()
            .filter(|(_, td)| td != failed_td)?;
        if let Some(d) = self.services[s]
            .deployments
            .iter_mut()
            .find(|d| d.id == failed_id)
        {
            d.status = DeploymentStatus::Active;
        }
        let reason =
            format!("ECS deployment circuit breaker: rolling back to deploymentId {prev_id}.");
        let mut rollback = self.new_deployment(&prev_td, t, Some(reason.clone()));
        if self.rollback_adopts_tasks {
            rollback.adopted_from.push(prev_id.clone());
            if let Some(pos) = self.services[s]
                .deployments
                .iter()
                .position(|d| d.id == prev_id)
            {
                let earlier = self.services[s].deployments.remove(pos);
                rollback.adopted_from.extend(earlier.adopted_from);
            }
        }
        let rollback_id = rollback.id.clone();
        self.services[s].deployments.insert(0, rollback);
        let name = self.services[s].name.clone();
        self.push_event(
            s,
            t,
            format!("(service {name}) rolling back to deployment {prev_id}."),
        );
        if let Some(sd) = self.services[s]
            .service_deployments
            .iter_mut()
            .find(|sd| sd.deployment_id == failed_id)
        {
            sd.set(t, "ROLLBACK_IN_PROGRESS", reason);
            sd.rollback = Some((rollback_id, prev_td));
        }
        Some(())
    }

    /// `ListServiceDeployments` + `DescribeServiceDeployments`, newest
    /// first, each status as it was `service_deployment_lag` ago.
    pub(super) fn describe_service_deployments(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<Vec<crate::ServiceDeploymentInfo>> {
        let s = self.service_index(cluster, service)?;
        let lag = self.service_deployment_listing_lag;
        Ok(self.services[s]
            .service_deployments
            .iter()
            .filter(|sd| sd.started.saturating_add(lag) <= self.applied)
            .map(|sd| self.view_service_deployment(sd))
            .collect())
    }

    /// `DescribeServiceDeployments` of known ARNs, of any services: one
    /// answer per ARN, `NotFound` for one no service has.
    pub(super) fn describe_service_deployments_by_arn(
        &self,
        arns: &[String],
    ) -> Vec<Result<crate::ServiceDeploymentInfo>> {
        arns.iter()
            .map(|arn| {
                self.services
                    .iter()
                    .flat_map(|service| &service.service_deployments)
                    .find(|sd| &sd.arn == arn)
                    .map(|sd| self.view_service_deployment(sd))
                    .ok_or_else(|| Error::NotFound {
                        kind: crate::ResourceKind::Deployment,
                        name: arn.clone(),
                    })
            })
            .collect()
    }

    /// One service deployment as `DescribeServiceDeployments` shows it:
    /// its status as it was `service_deployment_lag` ago.
    fn view_service_deployment(&self, sd: &SimServiceDeployment) -> crate::ServiceDeploymentInfo {
        let cutoff = self.applied.saturating_sub(self.service_deployment_lag);
        let (at, status, reason) = sd
            .history
            .iter()
            .rev()
            .find(|h| h.0 <= cutoff)
            .or(sd.history.first())
            .cloned()
            .unwrap_or((sd.started, "PENDING", None));
        let finished = matches!(
            status,
            "SUCCESSFUL" | "STOPPED" | "ROLLBACK_SUCCESSFUL" | "ROLLBACK_FAILED"
        );
        crate::ServiceDeploymentInfo {
            arn: sd.arn.clone(),
            status: status.to_owned(),
            status_reason: reason,
            target_task_definition_arn: Some(sd.target_task_definition.clone()),
            source_task_definition_arns: sd.source_task_definitions.clone(),
            started_at: Some(self.wall(sd.started)),
            finished_at: finished.then(|| self.wall(at)),
            rollback_task_definition_arn: sd
                .rollback
                .as_ref()
                .filter(|_| status.starts_with("ROLLBACK_") && status != "ROLLBACK_REQUESTED")
                .map(|(_, td)| td.clone()),
            triggered_alarms: sd.triggered_alarms.clone(),
            lifecycle_stage: sd
                .lifecycle_stage
                .filter(|_| status == "IN_PROGRESS")
                .map(str::to_owned),
        }
    }

    /// `StopServiceDeployment`: only a PENDING or IN_PROGRESS service
    /// deployment whose deployment is PRIMARY can be stopped. `Rollback`
    /// rolls back to the last COMPLETED deployment (whatever the service's
    /// rollback configuration); `Abort` stops it where it is (STOPPED).
    pub(super) fn stop_service_deployment(
        &mut self,
        arn: &str,
        stop_type: crate::StopType,
        t: Duration,
    ) -> Result<()> {
        let op = "StopServiceDeployment";
        let (s, i) = self
            .service_deployment_index(arn)
            .ok_or_else(|| not_found(ResourceKind::Deployment, arn))?;
        let sd = &self.services[s].service_deployments[i];
        let (status, deployment_id) = (sd.status(), sd.deployment_id.clone());
        let primary = &self.services[s].deployments[0];
        if !matches!(status, "PENDING" | "IN_PROGRESS") || primary.id != deployment_id {
            return Err(client_error(
                op,
                arn,
                format!(
                    "InvalidParameterException: the service deployment is {status}, not in progress"
                ),
            ));
        }
        let failed_td = primary.task_definition.clone();
        let p = &mut self.services[s].deployments[0];
        p.rollout_state = RolloutState::Failed;
        p.updated = t;
        match stop_type {
            crate::StopType::Rollback => {
                p.reason = Some("stopped with StopServiceDeployment (ROLLBACK)".into());
                self.services[s].service_deployments[i].set(
                    t,
                    "ROLLBACK_REQUESTED",
                    "StopServiceDeployment (ROLLBACK)",
                );
                if self.requested_rollback_delay.is_zero() {
                    self.roll_back_requested(s, i, t, &deployment_id, &failed_td);
                } else {
                    // ECS stops the deployment where it is and starts the
                    // rollback later: until then the failed deployment
                    // stays PRIMARY (FAILED) and nothing else is listed.
                    self.services[s].deployments[0].halted = true;
                    self.pending_rollbacks.push((
                        t.saturating_add(self.requested_rollback_delay),
                        arn.to_owned(),
                    ));
                }
            }
            crate::StopType::Abort => {
                p.reason = Some("stopped with StopServiceDeployment (ABORT)".into());
                self.services[s].service_deployments[i].set(
                    t,
                    "STOPPED",
                    "StopServiceDeployment (ABORT)",
                );
            }
        }
        Ok(())
    }

    fn service_index(&self, cluster: &str, service: &str) -> Result<usize> {
        self.services
            .iter()
            .position(|svc| service_matches(svc, cluster, service))
            .ok_or_else(|| not_found(ResourceKind::Service, &format!("{cluster}/{service}")))
    }

    pub(super) fn describe_service(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<ServiceDescription> {
        let s = self.service_index(cluster, service)?;
        let svc = &self.services[s];
        let live: Vec<&SimTask> = svc
            .tasks
            .iter()
            .map(|&i| &self.tasks[i])
            .filter(|t| t.live())
            .collect();
        let deployments = svc
            .deployments
            .iter()
            .enumerate()
            .map(|(n, d)| {
                let mine = live.iter().filter(|task| d.owns(task));
                let running = mine
                    .clone()
                    .filter(|task| task.phase == Phase::Running)
                    .count() as i32;
                let pending = mine.filter(|task| task.phase == Phase::Pending).count() as i32;
                Deployment {
                    id: d.id.clone(),
                    status: Some(if d.drained_since.is_some() && n > 0 {
                        DeploymentStatus::Inactive
                    } else {
                        d.status
                    }),
                    task_definition_arn: d.task_definition.clone(),
                    rollout_state: (!self.rollout_state_absent).then_some(d.rollout_state),
                    rollout_state_reason: d.reason.clone().filter(|_| !self.rollout_state_absent),
                    desired_count: if n == 0 {
                        svc.desired
                    } else {
                        running + pending
                    },
                    pending_count: pending,
                    running_count: running,
                    failed_tasks: d.failed_tasks,
                    created_at: Some(self.wall(d.created)),
                    updated_at: Some(self.wall(d.updated)),
                }
            })
            .collect();
        Ok(ServiceDescription {
            service_arn: format!(
                "arn:aws:ecs:{SIM_REGION}:{SIM_ACCOUNT}:service/{}/{}",
                svc.cluster, svc.name
            ),
            service_name: svc.name.clone(),
            cluster_arn: format!(
                "arn:aws:ecs:{SIM_REGION}:{SIM_ACCOUNT}:cluster/{}",
                svc.cluster
            ),
            status: "ACTIVE".into(),
            task_definition_arn: svc.deployments[0].task_definition.clone(),
            desired_count: svc.desired,
            running_count: live.iter().filter(|t| t.phase == Phase::Running).count() as i32,
            pending_count: live.iter().filter(|t| t.phase == Phase::Pending).count() as i32,
            deployments,
            deployment_configuration: svc.config,
            deployment_controller: svc.controller.clone(),
            events: svc.events.clone(),
            deployment_alarms: svc.alarms.clone(),
            deployment_strategy: svc.strategy.clone(),
            ecs_bake_time: svc
                .strategy
                .as_ref()
                .filter(|s| *s != "ROLLING")
                .map(|_| svc.ecs_bake),
        })
    }

    fn resolve(&self, task_definition: &str) -> Option<&RegisteredTaskDefinition> {
        match parse_task_definition_arn(task_definition) {
            Some((family, revision)) => self
                .families
                .get(family)?
                .get(usize::try_from(revision).ok()?.checked_sub(1)?),
            None => self
                .families
                .get(task_definition)?
                .iter()
                .rev()
                .find(|td| td.status == TaskDefinitionStatus::Active),
        }
    }

    fn resolve_mut(&mut self, task_definition: &str) -> Option<&mut RegisteredTaskDefinition> {
        let arn = self.resolve(task_definition)?.arn.clone();
        let (family, revision) = parse_task_definition_arn(&arn)?;
        self.families
            .get_mut(family)?
            .get_mut(usize::try_from(revision).ok()? - 1)
    }

    pub(super) fn describe_task_definition(
        &self,
        task_definition: &str,
    ) -> Result<RegisteredTaskDefinition> {
        self.resolve(task_definition)
            .cloned()
            .ok_or_else(|| not_found(ResourceKind::TaskDefinition, task_definition))
    }

    pub(super) fn register_task_definition(
        &mut self,
        spec: &TaskDefinitionSpec,
    ) -> Result<RegisteredTaskDefinition> {
        let op = "RegisterTaskDefinition";
        if spec.family.is_empty()
            || spec.family.len() > 255
            || !spec
                .family
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(client_error(
                op,
                &spec.family,
                "ClientException: family must be 1-255 letters, digits, '-' or '_'",
            ));
        }
        if spec.container_definitions.is_empty() {
            return Err(client_error(
                op,
                &spec.family,
                "ClientException: Container list cannot be empty.",
            ));
        }
        if let Some(c) = spec
            .container_definitions
            .iter()
            .find(|c| c.name.is_empty() || c.image.is_empty())
        {
            return Err(client_error(
                op,
                &spec.family,
                format!(
                    "ClientException: container {:?} needs a name and an image",
                    c.name
                ),
            ));
        }
        let revisions = self.families.entry(spec.family.clone()).or_default();
        let revision = revisions.len() as i32 + 1;
        let td = RegisteredTaskDefinition {
            arn: format!(
                "arn:aws:ecs:{SIM_REGION}:{SIM_ACCOUNT}:task-definition/{}:{revision}",
                spec.family
            ),
            revision,
            status: TaskDefinitionStatus::Active,
            spec: spec.clone(),
        };
        revisions.push(td.clone());
        Ok(td)
    }

    pub(super) fn tag_resource(
        &mut self,
        arn: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<()> {
        if !arn.contains(":task-definition/") {
            return Err(client_error(
                "TagResource",
                arn,
                "InvalidParameterException: the simulator tags task definitions only",
            ));
        }
        let td = self
            .resolve_mut(arn)
            .ok_or_else(|| not_found(ResourceKind::TaskDefinition, arn))?;
        td.spec
            .tags
            .extend(tags.iter().map(|(k, v)| (k.clone(), v.clone())));
        Ok(())
    }

    pub(super) fn deregister_task_definition(&mut self, arn: &str) -> Result<()> {
        if parse_task_definition_arn(arn).is_none() {
            return Err(client_error(
                "DeregisterTaskDefinition",
                arn,
                "ClientException: a revision (family:revision or ARN) is required",
            ));
        }
        let td = self
            .resolve_mut(arn)
            .ok_or_else(|| not_found(ResourceKind::TaskDefinition, arn))?;
        td.status = TaskDefinitionStatus::Inactive;
        Ok(())
    }

    fn page<T: Clone>(
        &self,
        items: &[T],
        token: &PageToken,
        size: usize,
        op: &'static str,
    ) -> Result<Page<T>> {
        let start = match token {
            None => 0,
            Some(token) => token
                .parse::<usize>()
                .ok()
                .filter(|&n| n <= items.len())
                .ok_or_else(|| {
                    client_error(op, token, "InvalidParameterException: invalid nextToken")
                })?,
        };
        let end = (start + size).min(items.len());
        Ok(Page {
            items: items[start..end].to_vec(),
            next_token: (end < items.len()).then(|| end.to_string()),
        })
    }

    pub(super) fn list_task_definition_revisions(
        &self,
        family: &str,
        token: PageToken,
    ) -> Result<Page<String>> {
        let arns: Vec<String> = self
            .families
            .get(family)
            .map(|revs| {
                revs.iter()
                    .filter(|td| td.status == TaskDefinitionStatus::Active)
                    .map(|td| td.arn.clone())
                    .collect()
            })
            .unwrap_or_default();
        self.page(&arns, &token, self.page_size, "ListTaskDefinitions")
    }

    pub(super) fn update_service(
        &mut self,
        request: &UpdateServiceRequest,
        t: Duration,
        op: &'static str,
    ) -> Result<UpdateServiceResult> {
        let s = self.service_index(&request.cluster, &request.service)?;
        let td = self
            .resolve(&request.task_definition)
            .ok_or_else(|| not_found(ResourceKind::TaskDefinition, &request.task_definition))?;
        if td.status != TaskDefinitionStatus::Active {
            return Err(client_error(
                op,
                &request.task_definition,
                "ClientException: TaskDefinition is inactive",
            ));
        }
        let arn = td.arn.clone();
        if let Some(config) = request.deployment_configuration {
            self.services[s].config = config;
        }
        let primary = &self.services[s].deployments[0];
        if primary.task_definition != arn || request.force_new_deployment {
            self.services[s].deployments[0].status = DeploymentStatus::Active;
            let deployment = self.new_deployment(&arn, t, None);
            let (id, name) = (deployment.id.clone(), self.services[s].name.clone());
            self.services[s].deployments.insert(0, deployment);
            self.new_service_deployment(s, t, &id, &arn);
            self.push_event(
                s,
                t,
                format!("(service {name}) has started a deployment {id} of {arn}."),
            );
        }
        let service = self.describe_service(&request.cluster, &request.service)?;
        Ok(UpdateServiceResult {
            deployment_id: self.services[s].deployments[0].id.clone(),
            service,
        })
    }

    pub(super) fn list_tasks(&self, request: &ListTasksRequest) -> Result<Page<String>> {
        // Eventually consistent: a task created less than the lag ago is
        // not listed yet (a stopped one, listed, stays listed).
        let listed =
            |task: &SimTask| !task.live() || task.created + self.list_tasks_lag <= self.applied;
        let arns: Vec<String> = match &request.started_by {
            // `startedBy` alone: the cluster's RUNNING tasks it started.
            Some(started_by) => self
                .services
                .iter()
                .filter(|svc| svc.cluster == request.cluster)
                .flat_map(|svc| svc.tasks.iter().map(|&i| &self.tasks[i]))
                .filter(|task| task.live() && &task.started_by == started_by && listed(task))
                .map(|task| task.arn.clone())
                .collect(),
            None => {
                let s = self.service_index(&request.cluster, &request.service)?;
                let want_live = request.desired_status == DesiredStatus::Running;
                self.services[s]
                    .tasks
                    .iter()
                    .map(|&i| &self.tasks[i])
                    .filter(|task| task.live() == want_live && listed(task))
                    .map(|task| task.arn.clone())
                    .collect()
            }
        };
        let size = request
            .max_results
            .map_or(self.page_size, |n| n.clamp(1, 100) as usize)
            .min(self.page_size);
        self.page(&arns, &request.next_token, size, "ListTasks")
    }

    pub(super) fn describe_tasks(
        &self,
        cluster: &str,
        task_arns: &[String],
    ) -> Result<Vec<TaskDescription>> {
        if task_arns.len() > 100 {
            return Err(client_error(
                "DescribeTasks",
                cluster,
                format!(
                    "InvalidParameterException: at most 100 tasks per call, got {}",
                    task_arns.len()
                ),
            ));
        }
        let wall = |d: Duration| self.wall(d);
        // ECS takes a task's ARN or its id (the ARN's last segment).
        let named = |task: &&SimTask, name: &str| {
            task.arn == name || task.arn.rsplit_once('/').is_some_and(|(_, id)| id == name)
        };
        Ok(task_arns
            .iter()
            .filter_map(|arn| self.tasks.iter().find(|task| named(task, arn)))
            .map(|task| {
                let mut shown = task.describe(wall, self.applied, self.task_health_lag);
                if self.started_by_absent {
                    shown.started_by = None;
                }
                shown
            })
            .collect())
    }
}

/// The error text of an injected fault of `class` on `operation`.
fn fault_message(class: ErrorClass, operation: &str) -> String {
    match class {
        ErrorClass::Throttled => "ThrottlingException: Rate exceeded".to_owned(),
        ErrorClass::Transient => {
            "ServerException (HTTP 503): Service unavailable. Try again later.".to_owned()
        }
        ErrorClass::Permanent => format!(
            "AccessDeniedException: User: arn:aws:sts::{SIM_ACCOUNT}:assumed-role/updater \
             is not authorized to perform: ecs:{operation}"
        ),
    }
}
