//! [`SimulatedEcs`]: a deterministic, in-process ECS for tests, benches and
//! demos.
//!
//! Time comes from the injected [`Clock`] (usually
//! [`ManualClock::auto_advancing`](update_clock::ManualClock::auto_advancing));
//! every API call first advances the simulation to the clock's monotonic
//! time in [`SimTimings::tick`] steps. Randomness (fault injection, task
//! ids) comes from a seeded ChaCha generator: the same seed, script and
//! call sequence give the same answers.
//!
//! Modelled: rolling deployments honouring minimum healthy / maximum
//! percent; task start (PENDING → RUNNING); container health checks with
//! their start period; the circuit breaker (threshold
//! [`circuit_breaker_threshold`]) and its rollback, which creates a new
//! PRIMARY deployment on the last completed task definition and marks the
//! failed one FAILED; stopped-task reasons (`CannotPullContainerError`,
//! `ResourceInitializationError`, `Essential container in task exited`,
//! failed health checks); per-image [`ImageBehaviour`]; throttling and 5xx
//! faults ([`FaultPlan`]); ECS's per-account request token buckets
//! ([`RateLimits`], off by default, [`rate_limit`]); call latency; an
//! operator updating the service at a scheduled time; and call counting
//! per operation.

pub mod rate_limit;
mod script;
mod state;

use std::{collections::BTreeMap, sync::Arc, sync::Mutex, time::Duration};

use async_trait::async_trait;
use update_clock::Clock;

pub use rate_limit::{ApiCategory, BucketLimit, RateLimitStats, RateLimits, wire_actions};
pub use script::{
    FaultPlan, ImageBehaviour, LifecycleHook, ServiceSetup, SimTimings, TaskInterruption,
};
use state::SimState;

use crate::{
    EcsApi, Error, ErrorClass, ListTasksRequest, Page, PageToken, RegisteredTaskDefinition, Result,
    ServiceDescription, TaskDefinitionSpec, TaskDescription, UpdateServiceRequest,
    UpdateServiceResult, circuit_breaker_threshold,
};

/// The account id in simulated ARNs.
pub const SIM_ACCOUNT: &str = "123456789012";
/// The region in simulated ARNs.
pub const SIM_REGION: &str = "us-east-1";

/// A deterministic in-process ECS. See the [module docs](self).
///
/// ```
/// use std::sync::Arc;
/// use ecs_rollout::{ContainerDefinition, EcsApi, SimulatedEcs, ServiceSetup, TaskDefinitionSpec};
/// use update_clock::ManualClock;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let clock = Arc::new(ManualClock::auto_advancing(ManualClock::EPOCH_2025));
/// let ecs = SimulatedEcs::new(clock, 7);
/// ecs.create_service(ServiceSetup {
///     cluster: "runners".into(),
///     service: "runner".into(),
///     desired_count: 2,
///     task_definition: TaskDefinitionSpec {
///         family: "runner".into(),
///         container_definitions: vec![ContainerDefinition {
///             name: "runner".into(),
///             image: "example.com/runner:1".into(),
///             ..Default::default()
///         }],
///         ..Default::default()
///     },
///     ..Default::default()
/// }).unwrap();
/// let service = ecs.describe_service("runners", "runner").await.unwrap();
/// assert_eq!(service.running_count, 2);
/// # });
/// ```
#[derive(Debug)]
pub struct SimulatedEcs {
    clock: Arc<dyn Clock>,
    state: Mutex<SimState>,
}

impl SimulatedEcs {
    /// A simulator with no services, default [`SimTimings`], no faults.
    pub fn new(clock: Arc<dyn Clock>, seed: u64) -> Self {
        let state = SimState::new(clock.monotonic(), clock.now(), seed);
        Self {
            clock,
            state: Mutex::new(state),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the timings.
    pub fn with_timings(self, timings: SimTimings) -> Self {
        self.state().timings = timings;
        self
    }

    /// Registers `setup.task_definition` and creates the service with
    /// `desired_count` tasks already running and healthy (one COMPLETED
    /// PRIMARY deployment). Returns the task-definition ARN.
    pub fn create_service(&self, setup: ServiceSetup) -> Result<String> {
        let now = self.clock.monotonic();
        let mut state = self.state();
        state.advance(now);
        state.create_service(setup, now)
    }

    /// Scripts how containers running `image` (exact string of the task
    /// definition) behave. Unscripted images are [`ImageBehaviour::Healthy`].
    pub fn script_image(&self, image: &str, behaviour: ImageBehaviour) {
        self.state().behaviours.insert(image.to_owned(), behaviour);
    }

    /// Sets random fault injection for all later calls.
    pub fn set_faults(&self, faults: FaultPlan) {
        self.state().faults = faults;
    }

    /// ECS's per-account request throttling: from now on every call takes
    /// a token from its category's bucket (full at this call, refilled on
    /// the clock) and fails with `ThrottlingException` when it is empty.
    /// Off by default; [`RateLimits::ecs_documented`] is ECS's table (see
    /// [`rate_limit`] for the categories and the source).
    pub fn set_rate_limits(&self, limits: RateLimits) {
        let now = self.clock.monotonic();
        let mut state = self.state();
        state.advance(now);
        state.rate_limiter = Some(rate_limit::RateLimiter::new(&limits, now));
    }

    /// What the rate limits admitted and throttled so far, per ECS action
    /// (empty while they are off).
    pub fn rate_limit_stats(&self) -> RateLimitStats {
        self.state()
            .rate_limiter
            .as_ref()
            .map(|l| l.stats().clone())
            .unwrap_or_default()
    }

    /// The next `calls` API calls fail with `ThrottlingException` (a storm).
    pub fn throttle_next(&self, calls: u32) {
        self.state().forced_throttles = calls;
    }

    /// After the next `UpdateService` call (ours, through the API), every
    /// read (`Describe*`, `List*`) fails for `window` of clock time with an
    /// error of `class`: `ThrottlingException` (throttled),
    /// `ServerException` 503 (transient) or `AccessDeniedException`
    /// (permanent): a throttling storm, an outage, or a read permission
    /// missing from the updater's role.
    pub fn fail_reads_after_next_update(&self, window: Duration, class: ErrorClass) {
        self.state().pending_read_outage = Some((window, class));
    }

    /// Once `after` has passed on the clock, every call of `operation`
    /// fails for `window` of clock time with an error of `class`, while
    /// the other operations answer: one endpoint's partial outage or
    /// throttling storm. `operation` is matched as a prefix of the names
    /// [`SimulatedEcs::calls`] counts, so `DescribeServiceDeployments`
    /// covers the history's list and the reads by ARN.
    pub fn schedule_operation_outage(
        &self,
        after: Duration,
        window: Duration,
        operation: &'static str,
        class: ErrorClass,
    ) {
        let from = self.clock.monotonic() + after;
        self.state()
            .operation_outages
            .push((from, from + window, operation, class));
    }

    /// Eventually consistent `DescribeServices`: for `lag` of clock time
    /// after each `UpdateService` call (through the API), `DescribeServices`
    /// answers as before that update (the old deployment list, the old
    /// PRIMARY). `Duration::ZERO` (the default) turns it off.
    pub fn set_stale_reads(&self, lag: Duration) {
        self.state().stale_lag = lag;
    }

    /// Eventually consistent `ListTasks`: a task is listed only once `lag`
    /// of clock time has passed since ECS created it, while
    /// `DescribeServices` counts it (PENDING, then RUNNING) at once.
    /// Default zero.
    pub fn set_list_tasks_lag(&self, lag: Duration) {
        self.state().list_tasks_lag = lag;
    }

    /// With [`set_stale_reads`](Self::set_stale_reads): inside the stale
    /// window, reads alternate between fresh and stale (the first fresh),
    /// as when successive requests reach replicas of differing lag: a read
    /// that showed our new deployment PRIMARY may be followed by one that
    /// shows the PRIMARY from before our update again. Default off (every
    /// read of the window is stale).
    pub fn set_stale_reads_flap(&self, flap: bool) {
        self.state().stale_flaps = flap;
    }

    /// A busy service's event log: after each event it records, the
    /// simulator records `routine` more ("has started 1 tasks", as ECS does
    /// for every task of a large service). `DescribeServices` returns the
    /// 100 newest events, so with 100 or more an event such as "(deployment
    /// X) deployment failed" is gone by the next poll. Default 0.
    pub fn set_busy_events(&self, routine: usize) {
        self.state().busy_events = routine;
    }

    /// Switches the ServiceDeployment API (`ListServiceDeployments`,
    /// `DescribeServiceDeployments`, `StopServiceDeployment`) on or off
    /// (default off: those calls answer [`Error::Unsupported`](crate::Error::Unsupported),
    /// as a backend without them does). Every `UpdateService` that starts a
    /// deployment creates a service deployment either way: PENDING →
    /// IN_PROGRESS → SUCCESSFUL; on a circuit-breaker failure
    /// ROLLBACK_IN_PROGRESS → ROLLBACK_SUCCESSFUL (or ROLLBACK_FAILED when
    /// the rollback deployment fails too), or STOPPED when the breaker does
    /// not roll back; STOPPED when another deployment supersedes it.
    pub fn enable_service_deployments(&self, enabled: bool) {
        self.state().service_deployments_api = enabled;
    }

    /// Eventually consistent service deployments: each status is reported
    /// `lag` of clock time late (a new service deployment reads PENDING
    /// until then). `Duration::ZERO` (the default) turns it off.
    pub fn set_service_deployment_lag(&self, lag: Duration) {
        self.state().service_deployment_lag = lag;
    }

    /// Eventually consistent history: a new service deployment is left out
    /// of `ListServiceDeployments` for `lag` of clock time after it started
    /// (a read of it by ARN finds it at once). `Duration::ZERO` (the
    /// default) turns it off.
    pub fn set_service_deployment_listing_lag(&self, lag: Duration) {
        self.state().service_deployment_listing_lag = lag;
    }

    /// `DescribeTasks` leaves out every task's `startedBy` (optional in the
    /// API's `Task` shape: the reference does not promise it), so a task
    /// can be told to belong to a deployment only by its task definition.
    /// Default off (ECS's deployment id, as for every task a service starts).
    pub fn set_started_by_absent(&self, absent: bool) {
        self.state().started_by_absent = absent;
    }

    /// When ECS rolls back (circuit breaker or `StopServiceDeployment`), the
    /// rollback deployment takes over the running tasks of the last
    /// COMPLETED deployment, as real ECS may: it is COMPLETED with
    /// `runningCount` = desired within a tick, while those tasks keep the
    /// earlier deployment's id as `startedBy` (and that deployment leaves
    /// the list). Default off (the rollback deployment starts new tasks).
    pub fn set_rollback_adopts_running_tasks(&self, adopt: bool) {
        self.state().rollback_adopts_tasks = adopt;
    }

    /// A rollback requested with `StopServiceDeployment(ROLLBACK)` reads
    /// ROLLBACK_REQUESTED for `delay` of clock time before ECS starts the
    /// rollback deployment (the request is asynchronous): until then ECS
    /// has stopped the failed deployment where it is, it stays PRIMARY
    /// (FAILED), and no rollback deployment is listed. `Duration::MAX`:
    /// ECS never starts it. Default zero (the rollback starts at once).
    pub fn set_requested_rollback_delay(&self, delay: Duration) {
        self.state().requested_rollback_delay = delay;
    }

    /// `DescribeServices` reports no `rolloutState` (nor its reason) for any
    /// deployment, as ECS does for a service behind a Classic Load Balancer.
    /// The deployments still progress, fail and roll back inside; only the
    /// service deployments (where the API is on) show it. Default off.
    pub fn set_rollout_state_absent(&self, absent: bool) {
        self.state().rollout_state_absent = absent;
    }

    /// A task whose essential container's health check fails keeps running,
    /// UNHEALTHY, for `linger` before ECS stops it ("Task failed container
    /// health checks"), as when ECS first starts its replacement. Default
    /// zero: stopped at once.
    pub fn set_unhealthy_tasks_linger(&self, linger: Duration) {
        self.state().unhealthy_linger = linger;
    }

    /// `DescribeTasks` lags behind the scheduler: a container that became
    /// HEALTHY (which counts toward the deployment's completion at once)
    /// still reads UNKNOWN for `lag`. Default zero.
    pub fn set_task_health_lag(&self, lag: Duration) {
        self.state().task_health_lag = lag;
    }

    /// The circuit breaker's failure count (the deployment's `failedTasks`)
    /// goes back to 0 each time one of the deployment's tasks reaches a
    /// healthy state, as ECS does with `resetOnHealthyTask` (its default;
    /// a breaker configured with `resetOnHealthyTask: false` keeps counting).
    /// Default off: the count only grows.
    pub fn set_breaker_resets_on_healthy_task(&self, reset: bool) {
        self.state().breaker_resets_on_healthy = reset;
    }

    /// Sets the service's deployment alarms (`deploymentConfiguration.alarms`)
    /// and how long ECS keeps watching them after a deployment's tasks
    /// settled (`bake`: the deployment stays IN_PROGRESS meanwhile, as ECS
    /// computes its own bake time from the alarms' configuration).
    pub fn set_deployment_alarms(
        &self,
        cluster: &str,
        service: &str,
        alarms: Option<crate::DeploymentAlarms>,
        bake: Duration,
    ) -> Result<()> {
        self.state().set_alarms(cluster, service, alarms, bake)
    }

    /// Sets the service's deployment strategy (`deploymentConfiguration.strategy`:
    /// `ROLLING`, `BLUE_GREEN`, `LINEAR`, `CANARY`; `None` = not reported)
    /// and ECS's own bake time (`bakeTimeInMinutes`). The simulated
    /// blue/green, linear and canary deployments replace tasks as a
    /// rolling one does, then stay IN_PROGRESS through ECS's bake; their
    /// service deployment reports the lifecycle stage (`SCALE_UP`, then
    /// `BAKE_TIME`).
    pub fn set_deployment_strategy(
        &self,
        cluster: &str,
        service: &str,
        strategy: Option<&str>,
        bake: Duration,
    ) -> Result<()> {
        self.state()
            .set_strategy(cluster, service, strategy.map(str::to_owned), bake)
    }

    /// The lifecycle hooks of the service's blue/green, linear or canary
    /// deployments. The simulator runs them once the new tasks are up (it
    /// models no stage before `SCALE_UP` and no traffic), one after the
    /// other in the order given, each reported as the service deployment's
    /// `lifecycleStage` while it runs; then comes ECS's bake (`BAKE_TIME`).
    /// A hook that fails makes ECS fail the deployment and roll it back to
    /// the last COMPLETED one. A rollback deployment runs no hooks.
    pub fn set_lifecycle_hooks(
        &self,
        cluster: &str,
        service: &str,
        hooks: Vec<LifecycleHook>,
    ) -> Result<()> {
        self.state().set_hooks(cluster, service, hooks)
    }

    /// The CloudWatch alarm `alarm` goes into ALARM once `after` has passed
    /// on the clock: when the service's enabled deployment alarms name it
    /// and its PRIMARY deployment is IN_PROGRESS, ECS fails that deployment
    /// (rolling back when the alarms say so) and its service deployment
    /// names the alarm among its triggered ones.
    pub fn schedule_alarm(&self, after: Duration, cluster: &str, service: &str, alarm: &str) {
        let at = self.clock.monotonic() + after;
        self.state().scheduled_alarms.push((
            at,
            cluster.to_owned(),
            service.to_owned(),
            alarm.to_owned(),
        ));
    }

    /// Sets the service's deployment controller (`deploymentController.type`:
    /// `ECS`, `CODE_DEPLOY`, `EXTERNAL`); `None` = not reported (ECS).
    pub fn set_deployment_controller(
        &self,
        cluster: &str,
        service: &str,
        controller: Option<&str>,
    ) -> Result<()> {
        self.state()
            .set_controller(cluster, service, controller.map(str::to_owned))
    }

    /// Every API call takes `latency` of clock time.
    pub fn set_latency(&self, latency: Duration) {
        self.state().latency = latency;
    }

    /// Page size of `ListTasks` and `ListTaskDefinitions` (default 100, ECS's
    /// maximum).
    pub fn set_page_size(&self, page_size: usize) {
        self.state().page_size = page_size.clamp(1, 100);
    }

    /// An operator (someone else) calls `UpdateService` with `request` once
    /// `after` has passed on the clock.
    pub fn schedule_operator_update(&self, after: Duration, request: UpdateServiceRequest) {
        let at = self.clock.monotonic() + after;
        self.state().scheduled.push((at, request));
    }

    /// The service's desired count becomes `desired` once `after` has passed
    /// on the clock (an autoscaling policy or an operator scaling out or in):
    /// no new deployment; the PRIMARY deployment launches or stops tasks.
    pub fn schedule_desired_count(
        &self,
        after: Duration,
        cluster: &str,
        service: &str,
        desired: i32,
    ) {
        let at = self.clock.monotonic() + after;
        self.state()
            .scheduled_scaling
            .push((at, cluster.to_owned(), service.to_owned(), desired));
    }

    /// Once `after` has passed on the clock, `count` RUNNING tasks of the
    /// service's PRIMARY deployment (the oldest first) are stopped for
    /// `why`, a reason that is not a failure of their version (Spot
    /// interruption, Fargate task retirement, AZ rebalancing, an operator's
    /// `StopTask`). Their deployment's `failedTasks` does not grow, as in
    /// ECS, and the scheduler starts replacements.
    pub fn schedule_task_interruption(
        &self,
        after: Duration,
        cluster: &str,
        service: &str,
        count: usize,
        why: TaskInterruption,
    ) {
        let at = self.clock.monotonic() + after;
        self.state()
            .scheduled_interruptions
            .push(state::ScheduledInterruption {
                at,
                cluster: cluster.to_owned(),
                service: service.to_owned(),
                count,
                why,
            });
    }

    /// Once `after` has passed on the clock, someone stops the service
    /// deployment of the PRIMARY deployment (the console's "stop", or
    /// `StopServiceDeployment` from another tool): it reads STOPPED, and
    /// ECS stops the deployment where it is. `DescribeServices` keeps
    /// showing it PRIMARY and IN_PROGRESS, and it never completes: what
    /// `DescribeServices` shows after such a stop is not documented, and
    /// this is the timeline in which it shows nothing.
    pub fn schedule_service_deployment_stop(&self, after: Duration, cluster: &str, service: &str) {
        let at = self.clock.monotonic() + after;
        self.state()
            .scheduled_stops
            .push((at, cluster.to_owned(), service.to_owned()));
    }

    /// API calls received so far, per operation (including failed ones).
    pub fn calls(&self) -> BTreeMap<&'static str, u64> {
        self.state().calls.clone()
    }

    /// Total API calls received.
    pub fn total_calls(&self) -> u64 {
        self.state().calls.values().sum()
    }

    /// The service as it is now, without counting a call or injecting
    /// faults (for test assertions).
    pub fn peek_service(&self, cluster: &str, service: &str) -> Result<ServiceDescription> {
        let now = self.clock.monotonic();
        let mut state = self.state();
        state.advance(now);
        state.describe_service(cluster, service)
    }

    /// The task definition as it is now, without counting a call.
    pub fn peek_task_definition(&self, task_definition: &str) -> Result<RegisteredTaskDefinition> {
        self.state().describe_task_definition(task_definition)
    }

    /// The failed-task threshold the simulated breaker uses for `desired`.
    pub fn breaker_threshold(desired: i32) -> u32 {
        circuit_breaker_threshold(desired)
    }

    async fn enter(&self, operation: &'static str, resource: &str) -> Result<()> {
        let latency = self.state().latency;
        if !latency.is_zero() {
            self.clock.sleep(latency).await;
        }
        let now = self.clock.monotonic();
        let mut state = self.state();
        state.advance(now);
        state.enter(operation, resource)
    }
}

#[async_trait]
impl EcsApi for SimulatedEcs {
    async fn describe_service(&self, cluster: &str, service: &str) -> Result<ServiceDescription> {
        self.enter("DescribeServices", service).await?;
        self.state().read_service(cluster, service)
    }

    async fn describe_services(
        &self,
        cluster: &str,
        services: &[String],
    ) -> Result<Vec<Result<ServiceDescription>>> {
        if services.len() > 10 {
            return Err(Error::api(
                "DescribeServices",
                cluster,
                ErrorClass::Permanent,
                format!(
                    "InvalidParameterException: at most 10 services per request, {} given",
                    services.len()
                ),
            ));
        }
        // One request: one call counted, one token, one fault draw.
        self.enter("DescribeServices", cluster).await?;
        let mut state = self.state();
        Ok(services
            .iter()
            .map(|service| state.read_service(cluster, service))
            .collect())
    }

    async fn describe_task_definition(
        &self,
        task_definition: &str,
    ) -> Result<RegisteredTaskDefinition> {
        self.enter("DescribeTaskDefinition", task_definition)
            .await?;
        self.state().describe_task_definition(task_definition)
    }

    async fn register_task_definition(
        &self,
        spec: &TaskDefinitionSpec,
    ) -> Result<RegisteredTaskDefinition> {
        self.enter("RegisterTaskDefinition", &spec.family).await?;
        self.state().register_task_definition(spec)
    }

    async fn tag_resource(&self, arn: &str, tags: &BTreeMap<String, String>) -> Result<()> {
        self.enter("TagResource", arn).await?;
        self.state().tag_resource(arn, tags)
    }

    async fn deregister_task_definition(&self, arn: &str) -> Result<()> {
        self.enter("DeregisterTaskDefinition", arn).await?;
        self.state().deregister_task_definition(arn)
    }

    async fn list_task_definition_revisions(
        &self,
        family: &str,
        next_token: PageToken,
    ) -> Result<Page<String>> {
        self.enter("ListTaskDefinitions", family).await?;
        self.state()
            .list_task_definition_revisions(family, next_token)
    }

    async fn update_service(&self, request: &UpdateServiceRequest) -> Result<UpdateServiceResult> {
        self.enter("UpdateService", &request.service).await?;
        let now = self.clock.monotonic();
        let mut state = self.state();
        let before = state
            .describe_service(&request.cluster, &request.service)
            .ok();
        let result = state.update_service(request, now, "UpdateService")?;
        state.after_update(request, now, before);
        Ok(result)
    }

    async fn list_tasks(&self, request: &ListTasksRequest) -> Result<Page<String>> {
        self.enter("ListTasks", &request.service).await?;
        self.state().list_tasks(request)
    }

    async fn describe_tasks(
        &self,
        cluster: &str,
        task_arns: &[String],
    ) -> Result<Vec<TaskDescription>> {
        self.enter("DescribeTasks", cluster).await?;
        self.state().describe_tasks(cluster, task_arns)
    }

    async fn describe_service_deployments(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<Vec<crate::ServiceDeploymentInfo>> {
        self.enter("DescribeServiceDeployments", service).await?;
        let state = self.state();
        if !state.service_deployments_api {
            return Err(crate::Error::Unsupported {
                operation: "DescribeServiceDeployments",
                backend: "simulated (service deployments switched off)",
            });
        }
        state.describe_service_deployments(cluster, service)
    }

    async fn describe_service_deployments_by_arn(
        &self,
        arns: &[String],
    ) -> Result<Vec<Result<crate::ServiceDeploymentInfo>>> {
        let first = arns.first().map_or("", String::as_str);
        if arns.len() > crate::DESCRIBE_SERVICE_DEPLOYMENTS_BATCH {
            return Err(Error::api(
                "DescribeServiceDeployments",
                first,
                ErrorClass::Permanent,
                format!(
                    "InvalidParameterException: at most {} service deployments per request, \
                     {} given",
                    crate::DESCRIBE_SERVICE_DEPLOYMENTS_BATCH,
                    arns.len()
                ),
            ));
        }
        self.enter("DescribeServiceDeploymentsByArn", first).await?;
        let state = self.state();
        if !state.service_deployments_api {
            return Err(crate::Error::Unsupported {
                operation: "DescribeServiceDeployments",
                backend: "simulated (service deployments switched off)",
            });
        }
        Ok(state.describe_service_deployments_by_arn(arns))
    }

    async fn stop_service_deployment(
        &self,
        service_deployment_arn: &str,
        stop_type: crate::StopType,
    ) -> Result<()> {
        self.enter("StopServiceDeployment", service_deployment_arn)
            .await?;
        let now = self.clock.monotonic();
        let mut state = self.state();
        if !state.service_deployments_api {
            return Err(crate::Error::Unsupported {
                operation: "StopServiceDeployment",
                backend: "simulated (service deployments switched off)",
            });
        }
        state.stop_service_deployment(service_deployment_arn, stop_type, now)
    }
}
