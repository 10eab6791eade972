//! One ECS backend shared by many rollouts in one process: [`SharedEcs`]
//! paces every request with client-side token buckets that mirror ECS's
//! per-account buckets, so a fleet waits for its turn instead of being
//! throttled, and merges the reads that wait together into one request:
//! `DescribeServices` of up to [`DESCRIBE_SERVICES_BATCH`] services of one
//! cluster, `DescribeServiceDeployments` of up to
//! [`DESCRIBE_SERVICE_DEPLOYMENTS_BATCH`] known service deployments of any
//! services, `DescribeTasks` of up to [`DESCRIBE_TASKS_BATCH`] tasks of one
//! cluster (any services' tasks).
//!
//! Why: ECS throttles per account and Region
//! ([`RateLimits::ecs_documented`]). A thousand rollouts that each retry
//! their own throttled calls with backoff waste the bucket's refills in
//! their backoff gaps and, past the retry budget, surface the throttling to
//! the caller ([`Error::RetriesExhausted`]). Pacing books each request a
//! slot in a bucket modelled on ECS's (a reservation, first come first
//! served, like GCRA), so the refills are used as they come and nobody
//! gives up. Other clients of the same account share ECS's buckets, so
//! throttling stays possible: [`Rollout`](crate::Rollout)'s retry layer
//! (which wraps this one) absorbs it.
//!
//! ```
//! use std::{sync::Arc, time::Duration};
//! use ecs_rollout::{EcsApi, SharedEcs, SharedEcsConfig, SimulatedEcs};
//! use update_clock::{Clock, ManualClock};
//!
//! let clock = Arc::new(ManualClock::new(ManualClock::EPOCH_2025));
//! let backend: Arc<dyn EcsApi> = Arc::new(SimulatedEcs::new(clock.clone(), 1));
//! let config = SharedEcsConfig {
//!     batch_window: Duration::from_millis(500),
//!     ..SharedEcsConfig::default()
//! };
//! // One per process (per account and Region); give every Rollout a clone.
//! let shared: Arc<dyn EcsApi> = Arc::new(SharedEcs::new(backend, clock, config).unwrap());
//! # let _ = shared;
//! ```

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use async_trait::async_trait;
use futures::future::{BoxFuture, join_all};
use tokio::sync::oneshot;
use update_clock::Clock;

use crate::{
    EcsApi, Error, ErrorClass, ListTasksRequest, Page, PageToken, RegisteredTaskDefinition, Result,
    ServiceDeploymentInfo, ServiceDescription, StopType, TaskDefinitionSpec, TaskDescription,
    UpdateServiceRequest, UpdateServiceResult,
    simulated::{ApiCategory, BucketLimit, RateLimits, wire_actions},
};

/// The most services one `DescribeServices` request may name (ECS's limit).
pub const DESCRIBE_SERVICES_BATCH: usize = 10;

/// The most service deployments one `DescribeServiceDeployments` request
/// may name (ECS's limit).
pub const DESCRIBE_SERVICE_DEPLOYMENTS_BATCH: usize = 20;

/// The most tasks one `DescribeTasks` request may name (ECS's limit).
pub const DESCRIBE_TASKS_BATCH: usize = 100;

/// Added to every wait for a token, so that a request paced to the instant
/// the modelled bucket refills does not reach ECS a moment before ECS's own
/// bucket has (clocks and rounding differ).
const SLACK: Duration = Duration::from_millis(10);

/// How a [`SharedEcs`] paces and batches.
#[derive(Debug, Clone, PartialEq)]
pub struct SharedEcsConfig {
    /// The buckets to pace by. Default: [`RateLimits::ecs_documented`];
    /// lower them when other clients use the same account heavily.
    /// [`RateLimits::none`] paces nothing.
    pub limits: RateLimits,
    /// How long a `DescribeServices` of one service waits for others of the
    /// same cluster to share its request (a `DescribeServiceDeployments` of
    /// one known deployment for others, a `DescribeTasks` for other tasks of
    /// the cluster), even when a token is free.
    /// Default zero: only reads that already wait for a token are merged.
    /// A window of about a second merges the polls of a large fleet at the
    /// cost of that much latency per poll.
    pub batch_window: Duration,
    /// The longest a request may be booked ahead. A request that would
    /// wait longer fails at once as throttled ([`ErrorClass::Throttled`],
    /// so the retry layer tries again later) without booking a slot.
    /// Default 30 minutes.
    pub max_wait: Duration,
}

impl Default for SharedEcsConfig {
    fn default() -> Self {
        Self {
            limits: RateLimits::ecs_documented(),
            batch_window: Duration::ZERO,
            max_wait: Duration::from_secs(30 * 60),
        }
    }
}

impl SharedEcsConfig {
    /// Rejects a configuration that cannot work.
    pub fn validate(&self) -> Result<()> {
        for category in ApiCategory::ALL {
            if let Some(limit) = self.limits.get(category)
                && (limit.burst == 0 || limit.refill_per_second == 0)
            {
                return Err(Error::InvalidConfig {
                    field: "SharedEcsConfig::limits",
                    reason: format!(
                        "the {category} bucket must hold and refill at least one token \
                         (burst {}, refill {} per second); leave a category out to not pace it",
                        limit.burst, limit.refill_per_second
                    ),
                });
            }
        }
        if self.batch_window > self.max_wait {
            return Err(Error::InvalidConfig {
                field: "SharedEcsConfig::batch_window",
                reason: "must not exceed max_wait".into(),
            });
        }
        Ok(())
    }
}

/// What a [`SharedEcs`] did so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SharedEcsStats {
    /// ECS requests booked, per action (wire name).
    pub requests: BTreeMap<&'static str, u64>,
    /// Requests that had to wait for a token.
    pub waited: u64,
    /// Their total wait.
    pub total_wait: Duration,
    /// Requests refused because they would have waited longer than
    /// [`SharedEcsConfig::max_wait`].
    pub refused: u64,
    /// `DescribeServices` requests sent for more than one service.
    pub batches: u64,
    /// Services read by those batched requests.
    pub batched_services: u64,
    /// `DescribeServiceDeployments` requests sent for more than one known
    /// service deployment.
    pub deployment_batches: u64,
    /// Service deployments read by those batched requests.
    pub batched_deployments: u64,
    /// `DescribeTasks` requests that carried the tasks of more than one
    /// caller (rollouts polling their services).
    pub task_batches: u64,
    /// The callers' `describe_tasks` reads those requests answered.
    pub batched_task_reads: u64,
}

/// A bucket of the client-side model: `tokens` may go negative, which
/// books the future (each request takes the next slot).
#[derive(Debug, Clone)]
struct Pacer {
    burst: f64,
    rate: f64,
    tokens: f64,
    last: Duration,
}

impl Pacer {
    fn new(limit: BucketLimit, now: Duration) -> Self {
        Self {
            burst: f64::from(limit.burst),
            rate: f64::from(limit.refill_per_second),
            tokens: f64::from(limit.burst),
            last: now,
        }
    }

    fn refill(&mut self, now: Duration) {
        let elapsed = now.saturating_sub(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = self.last.max(now);
    }

    /// How long a request booked now would wait.
    fn wait(&mut self, now: Duration) -> Duration {
        self.refill(now);
        let after = self.tokens - 1.0;
        if after >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-after / self.rate) + SLACK
        }
    }

    fn book(&mut self) {
        self.tokens -= 1.0;
    }
}

/// A read waiting in a batch: who asked (one caller may ask for several
/// names), the name, and where its answer goes.
#[derive(Debug)]
struct Member<T> {
    caller: u64,
    name: String,
    answer: oneshot::Sender<Result<T>>,
}

/// The reads of one batch.
type Members<T> = Vec<Member<T>>;

/// One caller's share of a [`SharedEcs::read_many`]: names read alone at
/// once, names that joined someone's batch, or a batch it leads.
enum Part<'a, T> {
    Direct(&'a [String]),
    Join(&'a [String], Vec<oneshot::Receiver<Result<T>>>),
    Lead(
        &'a [String],
        Vec<oneshot::Receiver<Result<T>>>,
        u64,
        Duration,
    ),
}

/// Reads of one kind waiting to share a request: one open batch per key
/// (a cluster for `DescribeServices`), each batch its members' names and
/// where to send their answers.
#[derive(Debug)]
struct Batches<T> {
    /// Every batch not yet sent, by id.
    waiting: HashMap<u64, Members<T>>,
    /// The batch of each key that newcomers join, while it has room.
    open: HashMap<String, u64>,
}

impl<T> Default for Batches<T> {
    fn default() -> Self {
        Self {
            waiting: HashMap::new(),
            open: HashMap::new(),
        }
    }
}

/// A read [`SharedEcs`] batches: `DescribeServices`,
/// `DescribeServiceDeployments` of known ARNs or `DescribeTasks`.
#[async_trait]
trait Batched: Clone + Send + Sized + 'static {
    /// The simulator operation it books ([`wire_actions`]).
    const OPERATION: &'static str;
    /// The most names one request may carry.
    const LIMIT: usize;
    /// What the response is said to have left out.
    const MISSING: &'static str;
    /// Its batches in the state.
    fn batches(state: &mut State) -> &mut Batches<Self>;
    /// Counts one request that answered `callers` callers.
    fn count(stats: &mut SharedEcsStats, callers: u64);
    /// The resource a failure names.
    fn resource(key: &str, name: &str) -> String;
    /// One request for `names` (distinct) under `key`.
    async fn fetch(inner: &dyn EcsApi, key: &str, names: &[String]) -> Result<Vec<Result<Self>>>;
}

#[async_trait]
impl Batched for ServiceDescription {
    const OPERATION: &'static str = "DescribeServices";
    const LIMIT: usize = DESCRIBE_SERVICES_BATCH;
    const MISSING: &'static str = "DescribeServices answered fewer services than it was asked for";
    fn batches(state: &mut State) -> &mut Batches<Self> {
        &mut state.services
    }
    fn count(stats: &mut SharedEcsStats, members: u64) {
        stats.batches += 1;
        stats.batched_services += members;
    }
    fn resource(cluster: &str, service: &str) -> String {
        format!("{cluster}/{service}")
    }
    async fn fetch(
        inner: &dyn EcsApi,
        cluster: &str,
        services: &[String],
    ) -> Result<Vec<Result<Self>>> {
        match services {
            [service] => Ok(vec![inner.describe_service(cluster, service).await]),
            _ => inner.describe_services(cluster, services).await,
        }
    }
}

#[async_trait]
impl Batched for ServiceDeploymentInfo {
    const OPERATION: &'static str = "DescribeServiceDeploymentsByArn";
    const LIMIT: usize = DESCRIBE_SERVICE_DEPLOYMENTS_BATCH;
    const MISSING: &'static str =
        "DescribeServiceDeployments answered fewer service deployments than it was asked for";
    fn batches(state: &mut State) -> &mut Batches<Self> {
        &mut state.deployments
    }
    fn count(stats: &mut SharedEcsStats, members: u64) {
        stats.deployment_batches += 1;
        stats.batched_deployments += members;
    }
    fn resource(_: &str, arn: &str) -> String {
        arn.to_owned()
    }
    async fn fetch(inner: &dyn EcsApi, _: &str, arns: &[String]) -> Result<Vec<Result<Self>>> {
        inner.describe_service_deployments_by_arn(arns).await
    }
}

/// One task of a batched `DescribeTasks`: `None` when ECS left it out (a
/// task it no longer knows, which `DescribeTasks` reports as a failure
/// entry, not an error).
#[derive(Debug, Clone)]
struct TaskSlot(Option<TaskDescription>);

#[async_trait]
impl Batched for TaskSlot {
    const OPERATION: &'static str = "DescribeTasks";
    const LIMIT: usize = DESCRIBE_TASKS_BATCH;
    const MISSING: &'static str = "DescribeTasks answered fewer tasks than it was asked for";
    fn batches(state: &mut State) -> &mut Batches<Self> {
        &mut state.tasks
    }
    fn count(stats: &mut SharedEcsStats, callers: u64) {
        stats.task_batches += 1;
        stats.batched_task_reads += callers;
    }
    fn resource(cluster: &str, _: &str) -> String {
        cluster.to_owned()
    }
    async fn fetch(
        inner: &dyn EcsApi,
        cluster: &str,
        tasks: &[String],
    ) -> Result<Vec<Result<Self>>> {
        let described = inner.describe_tasks(cluster, tasks).await?;
        // ECS answers with full ARNs; a caller may have named a task by its
        // id (the ARN's last segment).
        let mut by_name: HashMap<&str, &TaskDescription> = HashMap::new();
        for task in &described {
            by_name.insert(&task.task_arn, task);
            if let Some((_, id)) = task.task_arn.rsplit_once('/') {
                by_name.entry(id).or_insert(task);
            }
        }
        Ok(tasks
            .iter()
            .map(|name| Ok(TaskSlot(by_name.get(name.as_str()).map(|&t| t.clone()))))
            .collect())
    }
}

#[derive(Debug)]
struct State {
    pacers: BTreeMap<ApiCategory, Pacer>,
    services: Batches<ServiceDescription>,
    deployments: Batches<ServiceDeploymentInfo>,
    tasks: Batches<TaskSlot>,
    next_batch: u64,
    next_caller: u64,
    stats: SharedEcsStats,
}

/// An [`EcsApi`] decorator for a fleet in one process: client-side pacing
/// by ECS's token buckets and batched `DescribeServices` (see the
/// [module docs](self)). Share one (behind an `Arc`) among every
/// [`Rollout`](crate::Rollout) of the same account and Region.
#[derive(Debug)]
pub struct SharedEcs {
    inner: Arc<dyn EcsApi>,
    clock: Arc<dyn Clock>,
    config: SharedEcsConfig,
    state: Mutex<State>,
}

impl SharedEcs {
    /// Wraps `inner`; the buckets start full.
    pub fn new(
        inner: Arc<dyn EcsApi>,
        clock: Arc<dyn Clock>,
        config: SharedEcsConfig,
    ) -> Result<Self> {
        config.validate()?;
        let now = clock.monotonic();
        let pacers = ApiCategory::ALL
            .into_iter()
            .filter_map(|c| Some((c, Pacer::new(config.limits.get(c)?, now))))
            .collect();
        Ok(Self {
            inner,
            clock,
            config,
            state: Mutex::new(State {
                pacers,
                services: Batches::default(),
                deployments: Batches::default(),
                tasks: Batches::default(),
                next_batch: 0,
                next_caller: 0,
                stats: SharedEcsStats::default(),
            }),
        })
    }

    /// What it did so far.
    pub fn stats(&self) -> SharedEcsStats {
        self.state().stats.clone()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Books the ECS requests `operation` stands for and returns how long
    /// to wait before sending them, or refuses when that is over `max_wait`.
    fn book(
        state: &mut State,
        config: &SharedEcsConfig,
        now: Duration,
        operation: &'static str,
        resource: &str,
    ) -> Result<Duration> {
        let actions = wire_actions(operation);
        let mut wait = Duration::ZERO;
        for action in actions {
            if let Some(pacer) =
                ApiCategory::of_action(action).and_then(|c| state.pacers.get_mut(&c))
            {
                wait = wait.max(pacer.wait(now));
            }
        }
        if wait > config.max_wait {
            state.stats.refused += 1;
            return Err(Error::api(
                operation,
                resource,
                ErrorClass::Throttled,
                format!(
                    "client-side pacing: ECS's request buckets of this account are booked for \
                     {} s ahead, more than SharedEcsConfig::max_wait ({} s)",
                    wait.as_secs(),
                    config.max_wait.as_secs()
                ),
            ));
        }
        for action in actions {
            if let Some(pacer) =
                ApiCategory::of_action(action).and_then(|c| state.pacers.get_mut(&c))
            {
                pacer.book();
            }
            *state.stats.requests.entry(action).or_default() += 1;
        }
        if !wait.is_zero() {
            state.stats.waited += 1;
            state.stats.total_wait += wait;
        }
        Ok(wait)
    }

    /// Waits for the slot of one `operation` on `resource`.
    async fn pace(&self, operation: &'static str, resource: &str) -> Result<()> {
        let wait = {
            let mut state = self.state();
            Self::book(
                &mut state,
                &self.config,
                self.clock.monotonic(),
                operation,
                resource,
            )?
        };
        if !wait.is_zero() {
            self.clock.sleep(wait).await;
        }
        Ok(())
    }

    /// Takes batch `id` of `key` out of the state (closing it to newcomers).
    fn take_batch<T: Batched>(&self, key: &str, id: u64) -> Option<Members<T>> {
        let mut state = self.state();
        let batches = T::batches(&mut state);
        if batches.open.get(key) == Some(&id) {
            batches.open.remove(key);
        }
        batches.waiting.remove(&id)
    }

    /// Leads the batch `id` of `key`: waits `wait`, closes the batch, sends
    /// one request for its names and answers each member.
    async fn lead<T: Batched>(&self, key: &str, id: u64, wait: Duration) {
        // Dropped before the batch is taken (the leader's caller gave up):
        // the members' senders go with it, so they read alone.
        struct Abandon<'a, T: Batched>(&'a SharedEcs, &'a str, u64, std::marker::PhantomData<T>);
        impl<T: Batched> Drop for Abandon<'_, T> {
            fn drop(&mut self) {
                drop(self.0.take_batch::<T>(self.1, self.2));
            }
        }
        let guard = Abandon::<T>(self, key, id, std::marker::PhantomData);
        self.clock.sleep(wait).await;
        std::mem::forget(guard);
        let Some(members) = self.take_batch::<T>(key, id) else {
            return;
        };
        let mut callers: Vec<u64> = members.iter().map(|m| m.caller).collect();
        callers.sort_unstable();
        callers.dedup();
        if callers.len() > 1 {
            T::count(&mut self.state().stats, callers.len() as u64);
        }
        let mut names: Vec<String> = Vec::with_capacity(members.len());
        for member in &members {
            if !names.contains(&member.name) {
                names.push(member.name.clone());
            }
        }
        match T::fetch(&*self.inner, key, &names).await {
            Ok(answers) => {
                let by_name: HashMap<&str, Result<T>> =
                    names.iter().map(String::as_str).zip(answers).collect();
                for Member { name, answer, .. } in members {
                    let resource = T::resource(key, &name);
                    let reply = match by_name.get(name.as_str()) {
                        Some(Ok(reply)) => Ok(reply.clone()),
                        Some(Err(error)) => Err(copy_error(error, &resource)),
                        None => Err(Error::UnexpectedResponse {
                            resource,
                            reason: T::MISSING.into(),
                        }),
                    };
                    let _ = answer.send(reply);
                }
            }
            Err(error) => {
                for Member { name, answer, .. } in members {
                    let resource = T::resource(key, &name);
                    let _ = answer.send(Err(copy_error(&error, &resource)));
                }
            }
        }
    }

    /// One read of `name` under `key`, batched with the others that wait
    /// (see the [module docs](self)).
    async fn read<T: Batched>(&self, key: &str, name: &str) -> Result<T> {
        let resource = T::resource(key, name);
        Self::one(self.read_many(key, &[name.to_owned()]).await, &resource)
    }

    /// Reads `names` under `key`, the answers in their order: the names join
    /// the open batch of `key` as far as it has room, the rest go in new
    /// requests of up to [`Batched::LIMIT`] each, booked now, which others
    /// join while they wait (or, with no wait, sent at once).
    async fn read_many<T: Batched>(&self, key: &str, names: &[String]) -> Result<Vec<Result<T>>> {
        let mut parts: Vec<Part<'_, T>> = Vec::new();
        {
            let mut state = self.state();
            let state = &mut *state;
            let caller = state.next_caller;
            state.next_caller += 1;
            let mut rest = names;
            // First into the open batch of `key`, as far as it has room.
            let batches = T::batches(state);
            let open = batches.open.get(key).copied();
            if let Some(members) = open.and_then(|id| batches.waiting.get_mut(&id)) {
                let room = T::LIMIT.saturating_sub(members.len());
                let (taken, left) = rest.split_at(room.min(rest.len()));
                if !taken.is_empty() {
                    parts.push(Part::Join(taken, Self::enlist(members, caller, taken)));
                }
                rest = left;
            }
            // The rest in requests of their own, each booked now.
            for taken in rest.chunks(T::LIMIT) {
                let now = self.clock.monotonic();
                let resource = T::resource(key, &taken[0]);
                let wait = match Self::book(state, &self.config, now, T::OPERATION, &resource) {
                    Ok(wait) => wait.max(self.config.batch_window),
                    Err(refused) => {
                        // Nobody joined the batches this caller booked (the
                        // lock is held): drop them.
                        let batches = T::batches(state);
                        for part in &parts {
                            if let Part::Lead(_, _, id, _) = part {
                                batches.waiting.remove(id);
                                batches.open.retain(|_, open| open != id);
                            }
                        }
                        return Err(refused);
                    }
                };
                if wait.is_zero() {
                    parts.push(Part::Direct(taken));
                } else {
                    let id = state.next_batch;
                    state.next_batch += 1;
                    let mut members = Vec::with_capacity(taken.len());
                    let receivers = Self::enlist(&mut members, caller, taken);
                    // The newest batch is the one newcomers join (a full
                    // one leaves them no room: they open another).
                    let batches = T::batches(state);
                    batches.waiting.insert(id, members);
                    batches.open.insert(key.to_owned(), id);
                    parts.push(Part::Lead(taken, receivers, id, wait));
                }
            }
        }
        if let [Part::Direct(taken)] = parts.as_slice() {
            // The whole read in one request at once: its failure as it is.
            let answers = T::fetch(&*self.inner, key, taken).await?;
            return Ok(Self::align(answers, key, taken));
        }
        let answers = join_all(
            parts
                .into_iter()
                .map(|part| -> BoxFuture<'_, Vec<Result<T>>> {
                    match part {
                        Part::Direct(taken) => Box::pin(async move {
                            match T::fetch(&*self.inner, key, taken).await {
                                Ok(answers) => Self::align(answers, key, taken),
                                Err(error) => taken
                                    .iter()
                                    .map(|name| Err(copy_error(&error, &T::resource(key, name))))
                                    .collect(),
                            }
                        }),
                        Part::Join(taken, receivers) => {
                            Box::pin(self.collect(key, taken, receivers))
                        }
                        Part::Lead(taken, receivers, id, wait) => Box::pin(async move {
                            self.lead::<T>(key, id, wait).await;
                            self.collect(key, taken, receivers).await
                        }),
                    }
                }),
        )
        .await;
        Ok(answers.into_iter().flatten().collect())
    }

    /// Adds `caller`'s reads of `names` to a batch's members.
    fn enlist<T>(
        members: &mut Members<T>,
        caller: u64,
        names: &[String],
    ) -> Vec<oneshot::Receiver<Result<T>>> {
        names
            .iter()
            .map(|name| {
                let (answer, receiver) = oneshot::channel();
                members.push(Member {
                    caller,
                    name: name.clone(),
                    answer,
                });
                receiver
            })
            .collect()
    }

    /// The answers a batch sent for `names`; a name whose leader was dropped
    /// (its caller gave up) is read alone.
    async fn collect<T: Batched>(
        &self,
        key: &str,
        names: &[String],
        receivers: Vec<oneshot::Receiver<Result<T>>>,
    ) -> Vec<Result<T>> {
        let mut answers = Vec::with_capacity(names.len());
        for (name, receiver) in names.iter().zip(receivers) {
            answers.push(match receiver.await {
                Ok(answer) => answer,
                Err(_) => self.read_alone(key, name).await,
            });
        }
        answers
    }

    /// One read of `name`, paced, in a request of its own.
    async fn read_alone<T: Batched>(&self, key: &str, name: &str) -> Result<T> {
        let resource = T::resource(key, name);
        self.pace(T::OPERATION, &resource).await?;
        Self::one(
            T::fetch(&*self.inner, key, &[name.to_owned()]).await,
            &resource,
        )
    }

    /// One answer per name: a short response leaves the last names
    /// [`Batched::MISSING`].
    fn align<T: Batched>(answers: Vec<Result<T>>, key: &str, names: &[String]) -> Vec<Result<T>> {
        let mut answers = answers.into_iter();
        names
            .iter()
            .map(|name| {
                answers.next().unwrap_or_else(|| {
                    Err(Error::UnexpectedResponse {
                        resource: T::resource(key, name),
                        reason: T::MISSING.into(),
                    })
                })
            })
            .collect()
    }

    /// The one answer of a request for one name.
    fn one<T: Batched>(answers: Result<Vec<Result<T>>>, resource: &str) -> Result<T> {
        answers?.into_iter().next().unwrap_or_else(|| {
            Err(Error::UnexpectedResponse {
                resource: resource.to_owned(),
                reason: T::MISSING.into(),
            })
        })
    }
}

/// The same failure for another caller ([`Error`] is not `Clone`: its
/// source is not).
fn copy_error(error: &Error, resource: &str) -> Error {
    match error {
        Error::Api {
            operation,
            class,
            message,
            ..
        } => Error::api(operation, resource, *class, message.clone()),
        Error::NotFound { kind, name } => Error::NotFound {
            kind: *kind,
            name: name.clone(),
        },
        Error::RetriesExhausted { last, .. } => copy_error(last, resource),
        other => Error::UnexpectedResponse {
            resource: resource.to_owned(),
            reason: other.to_string(),
        },
    }
}

#[async_trait]
impl EcsApi for SharedEcs {
    async fn describe_service(&self, cluster: &str, service: &str) -> Result<ServiceDescription> {
        self.read(cluster, service).await
    }
    async fn describe_services(
        &self,
        cluster: &str,
        services: &[String],
    ) -> Result<Vec<Result<ServiceDescription>>> {
        self.pace("DescribeServices", cluster).await?;
        self.inner.describe_services(cluster, services).await
    }
    async fn describe_task_definition(
        &self,
        task_definition: &str,
    ) -> Result<RegisteredTaskDefinition> {
        self.pace("DescribeTaskDefinition", task_definition).await?;
        self.inner.describe_task_definition(task_definition).await
    }
    async fn register_task_definition(
        &self,
        spec: &TaskDefinitionSpec,
    ) -> Result<RegisteredTaskDefinition> {
        self.pace("RegisterTaskDefinition", &spec.family).await?;
        self.inner.register_task_definition(spec).await
    }
    async fn tag_resource(&self, arn: &str, tags: &BTreeMap<String, String>) -> Result<()> {
        self.pace("TagResource", arn).await?;
        self.inner.tag_resource(arn, tags).await
    }
    async fn deregister_task_definition(&self, arn: &str) -> Result<()> {
        self.pace("DeregisterTaskDefinition", arn).await?;
        self.inner.deregister_task_definition(arn).await
    }
    async fn list_task_definition_revisions(
        &self,
        family: &str,
        next_token: PageToken,
    ) -> Result<Page<String>> {
        self.pace("ListTaskDefinitions", family).await?;
        self.inner
            .list_task_definition_revisions(family, next_token)
            .await
    }
    async fn update_service(&self, request: &UpdateServiceRequest) -> Result<UpdateServiceResult> {
        self.pace("UpdateService", &request.service).await?;
        self.inner.update_service(request).await
    }
    async fn list_tasks(&self, request: &ListTasksRequest) -> Result<Page<String>> {
        self.pace("ListTasks", &request.cluster).await?;
        self.inner.list_tasks(request).await
    }
    async fn describe_tasks(
        &self,
        cluster: &str,
        task_arns: &[String],
    ) -> Result<Vec<TaskDescription>> {
        let mut distinct: Vec<String> = Vec::with_capacity(task_arns.len());
        let mut seen = std::collections::HashSet::with_capacity(task_arns.len());
        for arn in task_arns {
            if seen.insert(arn.as_str()) {
                distinct.push(arn.clone());
            }
        }
        let mut tasks = Vec::with_capacity(distinct.len());
        for answer in self.read_many::<TaskSlot>(cluster, &distinct).await? {
            tasks.extend(answer?.0);
        }
        Ok(tasks)
    }
    async fn describe_service_deployments(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<Vec<ServiceDeploymentInfo>> {
        self.pace("DescribeServiceDeployments", service).await?;
        self.inner
            .describe_service_deployments(cluster, service)
            .await
    }
    async fn describe_service_deployments_by_arn(
        &self,
        arns: &[String],
    ) -> Result<Vec<Result<ServiceDeploymentInfo>>> {
        match arns {
            [arn] => Ok(vec![self.read("", arn).await]),
            _ => {
                let first = arns.first().map_or("", String::as_str);
                self.pace("DescribeServiceDeploymentsByArn", first).await?;
                self.inner.describe_service_deployments_by_arn(arns).await
            }
        }
    }
    async fn stop_service_deployment(
        &self,
        service_deployment_arn: &str,
        stop_type: StopType,
    ) -> Result<()> {
        self.pace("StopServiceDeployment", service_deployment_arn)
            .await?;
        self.inner
            .stop_service_deployment(service_deployment_arn, stop_type)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DeploymentConfiguration, ServiceSetup, SimulatedEcs, TaskDefinitionSpec};
    use futures::future::join_all;
    use update_clock::ManualClock;

    const CLUSTER: &str = "fleet";

    fn spec(family: &str, image: &str) -> TaskDefinitionSpec {
        TaskDefinitionSpec {
            family: family.into(),
            container_definitions: vec![crate::ContainerDefinition {
                name: "app".into(),
                image: image.into(),
                essential: Some(true),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn fixture(
        limits: RateLimits,
        config: SharedEcsConfig,
    ) -> (ManualClock, Arc<SimulatedEcs>, SharedEcs) {
        let clock = ManualClock::new(ManualClock::EPOCH_2025);
        let sim = Arc::new(SimulatedEcs::new(Arc::new(clock.clone()), 7));
        for i in 0..12 {
            sim.create_service(ServiceSetup {
                cluster: CLUSTER.into(),
                service: format!("svc-{i}"),
                task_definition: spec(&format!("svc-{i}"), "nginx:1"),
                desired_count: 1,
                deployment_configuration: DeploymentConfiguration::safe_rolling(),
            })
            .expect("service");
        }
        sim.set_rate_limits(limits);
        let shared = SharedEcs::new(sim.clone(), Arc::new(clock.clone()), config).expect("config");
        (clock, sim, shared)
    }

    fn only(category: ApiCategory, burst: u32, refill: u32) -> SharedEcsConfig {
        SharedEcsConfig {
            limits: RateLimits::none().with(category, BucketLimit::new(burst, refill)),
            ..SharedEcsConfig::default()
        }
    }

    fn names(services: &[Result<ServiceDescription>]) -> Vec<String> {
        services
            .iter()
            .map(|s| match s {
                Ok(s) => s.service_name.clone(),
                Err(e) => format!("error: {e}"),
            })
            .collect()
    }

    #[test]
    fn paced_registrations_wait_their_slot_and_are_never_throttled() {
        let config = only(ApiCategory::TaskDefinitionModify, 20, 1);
        let (clock, sim, shared) = fixture(config.limits.clone(), config);
        let specs: Vec<TaskDefinitionSpec> = (0..30)
            .map(|i| spec(&format!("family-{i}"), "nginx:2"))
            .collect();
        let results = clock.run(join_all(
            specs.iter().map(|s| shared.register_task_definition(s)),
        ));
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        assert_eq!(sim.rate_limit_stats().total_throttled(), 0);
        // 20 in the burst, then one per second: the 30th goes 10 s in.
        let elapsed = clock.monotonic();
        assert!(elapsed >= Duration::from_secs(10), "{elapsed:?}");
        assert!(elapsed <= Duration::from_secs(10) + SLACK, "{elapsed:?}");
        let stats = shared.stats();
        assert_eq!(stats.waited, 10, "{stats:?}");
        assert_eq!(stats.requests.get("RegisterTaskDefinition"), Some(&30));
    }

    #[test]
    fn buckets_refill_at_their_rate_up_to_their_burst() {
        let config = only(ApiCategory::TaskDefinitionModify, 2, 4);
        let (clock, sim, shared) = fixture(config.limits.clone(), config);
        let specs: Vec<TaskDefinitionSpec> = (0..3)
            .map(|i| spec(&format!("family-{i}"), "nginx:2"))
            .collect();
        let three = || join_all(specs.iter().map(|s| shared.register_task_definition(s)));
        // Two in the burst, the third a quarter of a second later (4 per second).
        let results = clock.run(three());
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        let quarter = Duration::from_millis(250) + SLACK;
        assert_eq!(clock.monotonic(), quarter);
        // Ten idle seconds refill the bucket to its burst of two, not 40:
        // the same three take the same quarter of a second again.
        clock.run(clock.sleep(Duration::from_secs(10)));
        let start = clock.monotonic();
        clock.run(three());
        assert_eq!(clock.monotonic() - start, quarter);
        // Half a second idle after draining refills two tokens (4 per
        // second, from -1 booked): two go at once, the third waits 0.25 s.
        clock.run(clock.sleep(Duration::from_millis(500) - SLACK));
        let start = clock.monotonic();
        clock.run(three());
        assert_eq!(clock.monotonic() - start, quarter);
        assert_eq!(sim.rate_limit_stats().total_throttled(), 0);
        assert_eq!(shared.stats().waited, 3);
    }

    #[test]
    fn a_request_may_wait_exactly_max_wait() {
        let config = SharedEcsConfig {
            max_wait: Duration::from_secs(1) + SLACK,
            ..only(ApiCategory::TaskDefinitionModify, 1, 1)
        };
        let (clock, _sim, shared) = fixture(config.limits.clone(), config);
        let specs = [spec("a", "nginx:2"), spec("b", "nginx:2")];
        let results = clock.run(join_all(
            specs.iter().map(|s| shared.register_task_definition(s)),
        ));
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        assert_eq!(shared.stats().refused, 0);
    }

    #[test]
    fn every_call_reaches_the_backend_and_books_its_requests() {
        let (clock, sim, shared) = fixture(RateLimits::none(), SharedEcsConfig::default());
        sim.enable_service_deployments(true);
        clock.run(async {
            let registered = shared
                .register_task_definition(&spec("svc-3", "nginx:2"))
                .await
                .expect("register");
            assert_eq!(registered.spec.family, "svc-3");
            let described = shared
                .describe_task_definition(&registered.arn)
                .await
                .expect("describe");
            assert_eq!(described.arn, registered.arn);
            let tags = BTreeMap::from([("k".to_owned(), "v".to_owned())]);
            shared
                .tag_resource(&registered.arn, &tags)
                .await
                .expect("tag");
            let tagged = sim.peek_task_definition(&registered.arn).expect("peek");
            assert_eq!(tagged.spec.tags.get("k").map(String::as_str), Some("v"));
            let listed = shared
                .list_task_definition_revisions("svc-3", None)
                .await
                .expect("list");
            assert!(listed.items.contains(&registered.arn), "{listed:?}");
            let updated = shared
                .update_service(&UpdateServiceRequest {
                    cluster: CLUSTER.into(),
                    service: "svc-3".into(),
                    task_definition: registered.arn.clone(),
                    ..Default::default()
                })
                .await
                .expect("update");
            assert!(!updated.deployment_id.is_empty());
            let history = shared
                .describe_service_deployments(CLUSTER, "svc-3")
                .await
                .expect("service deployments");
            assert!(!history.is_empty());
            let by_arn = shared
                .describe_service_deployments_by_arn(&[history[0].arn.clone()])
                .await
                .expect("service deployment by ARN");
            assert_eq!(by_arn[0].as_ref().expect("known").arn, history[0].arn);
            let two = shared
                .describe_service_deployments_by_arn(&[
                    history[0].arn.clone(),
                    "arn:aws:ecs:nowhere".to_owned(),
                ])
                .await
                .expect("two service deployments by ARN");
            assert!(matches!(&two[1], Err(Error::NotFound { .. })), "{two:?}");
            clock.sleep(Duration::from_secs(30)).await;
            let tasks = shared
                .list_tasks(&ListTasksRequest {
                    cluster: CLUSTER.into(),
                    service: "svc-3".into(),
                    desired_status: crate::DesiredStatus::Running,
                    next_token: None,
                    max_results: None,
                    started_by: None,
                })
                .await
                .expect("list tasks");
            assert!(!tasks.items.is_empty());
            let described = shared
                .describe_tasks(CLUSTER, &tasks.items)
                .await
                .expect("describe tasks");
            assert_eq!(described.len(), tasks.items.len());
            let batch = shared
                .describe_services(CLUSTER, &["svc-3".to_owned(), "svc-4".to_owned()])
                .await
                .expect("describe services");
            assert_eq!(names(&batch), ["svc-3", "svc-4"]);
            let stop = shared
                .stop_service_deployment("arn:aws:ecs:nowhere", StopType::Rollback)
                .await;
            assert!(stop.is_err(), "an unknown service deployment: {stop:?}");
            let old = sim
                .peek_service(CLUSTER, "svc-0")
                .expect("peek")
                .task_definition_arn;
            shared
                .register_task_definition(&spec("svc-0", "nginx:3"))
                .await
                .expect("register");
            shared
                .deregister_task_definition(&old)
                .await
                .expect("deregister");
            let gone = sim.peek_task_definition(&old).expect("peek");
            assert_eq!(gone.status, crate::TaskDefinitionStatus::Inactive);
        });
        let requests = shared.stats().requests;
        let expected = [
            ("RegisterTaskDefinition", 2),
            ("DescribeTaskDefinition", 1),
            ("TagResource", 1),
            ("ListTaskDefinitions", 1),
            ("UpdateService", 1),
            ("ListServiceDeployments", 1),
            ("DescribeServiceDeployments", 3),
            ("DescribeServiceRevisions", 3),
            ("ListTasks", 1),
            ("DescribeTasks", 1),
            ("DescribeServices", 1),
            ("StopServiceDeployment", 1),
            ("DeregisterTaskDefinition", 1),
        ];
        assert_eq!(requests, BTreeMap::from(expected));
    }

    #[test]
    fn reads_that_wait_together_share_one_describe_services() {
        let config = only(ApiCategory::ServiceRead, 1, 1);
        let (clock, sim, shared) = fixture(config.limits.clone(), config);
        // The token is free: one read alone, at once.
        let first = clock.run(shared.describe_service(CLUSTER, "svc-0"));
        assert_eq!(first.expect("read").service_name, "svc-0");
        assert_eq!(clock.monotonic(), Duration::ZERO);
        // Twelve more (one unknown) wait: ten share the next token, two the one after.
        let mut asked: Vec<String> = (0..11).map(|i| format!("svc-{i}")).collect();
        asked.insert(4, "nobody".into());
        let answers = clock.run(join_all(
            asked.iter().map(|s| shared.describe_service(CLUSTER, s)),
        ));
        for (asked, answer) in asked.iter().zip(&answers) {
            match answer {
                Ok(service) => assert_eq!(&service.service_name, asked),
                Err(Error::NotFound { name, .. }) => {
                    assert_eq!(asked, "nobody");
                    assert_eq!(name, "fleet/nobody");
                }
                Err(other) => panic!("{asked}: {other}"),
            }
        }
        assert_eq!(
            sim.calls().get("DescribeServices"),
            Some(&3),
            "{:?}",
            names(&answers)
        );
        assert_eq!(sim.rate_limit_stats().total_throttled(), 0);
        let stats = shared.stats();
        assert_eq!(
            (stats.batches, stats.batched_services),
            (2, 12),
            "{stats:?}"
        );
        assert!(clock.monotonic() <= Duration::from_secs(2) + SLACK);
    }

    #[test]
    fn a_batch_window_merges_reads_even_when_tokens_are_free() {
        let config = SharedEcsConfig {
            batch_window: Duration::from_secs(1),
            ..SharedEcsConfig::default()
        };
        let (clock, sim, shared) = fixture(RateLimits::none(), config);
        let asked = ["svc-1", "svc-2", "svc-1"];
        let answers = clock.run(join_all(
            asked.iter().map(|s| shared.describe_service(CLUSTER, s)),
        ));
        assert_eq!(names(&answers), asked);
        assert_eq!(sim.calls().get("DescribeServices"), Some(&1));
        assert_eq!(clock.monotonic(), Duration::from_secs(1));
        assert_eq!(
            (shared.stats().batches, shared.stats().batched_services),
            (1, 3)
        );
        // Alone in its window: one request, no batch.
        let alone = clock.run(shared.describe_service(CLUSTER, "svc-3"));
        assert_eq!(alone.expect("read").service_name, "svc-3");
        assert_eq!(sim.calls().get("DescribeServices"), Some(&2));
        assert_eq!(
            (shared.stats().batches, shared.stats().batched_services),
            (1, 3)
        );
    }

    /// Every service's newest service deployment, after one deployment each.
    fn deployed(clock: &ManualClock, sim: &SimulatedEcs, services: usize) -> Vec<String> {
        sim.enable_service_deployments(true);
        clock.run(async {
            let mut arns = Vec::new();
            for i in 0..services {
                let service = format!("svc-{i}");
                let registered = sim
                    .register_task_definition(&spec(&service, "nginx:2"))
                    .await
                    .expect("register");
                sim.update_service(&UpdateServiceRequest {
                    cluster: CLUSTER.into(),
                    service: service.clone(),
                    task_definition: registered.arn,
                    ..Default::default()
                })
                .await
                .expect("update");
                let history = sim
                    .describe_service_deployments(CLUSTER, &service)
                    .await
                    .expect("history");
                arns.push(history[0].arn.clone());
            }
            arns
        })
    }

    #[test]
    fn known_service_deployments_of_any_services_share_one_describe_by_twenty() {
        let config = SharedEcsConfig {
            batch_window: Duration::from_secs(1),
            ..SharedEcsConfig::default()
        };
        let (clock, sim, shared) = fixture(RateLimits::none(), config);
        let mut asked = deployed(&clock, &sim, 12);
        // 24 reads of 13 ARNs (one unknown, each known one twice): 20 fill
        // the first request (its 12 distinct ARNs), 4 the next.
        asked.push(format!("{}-missing", asked[0]));
        let asked: Vec<String> = asked.iter().chain(&asked[..11]).cloned().collect();
        assert_eq!(asked.len(), 24);
        let before = sim.calls().get("DescribeServiceDeploymentsByArn").copied();
        let answers = clock.run(join_all(asked.iter().map(|arn| {
            shared.describe_service_deployments_by_arn(std::slice::from_ref(arn))
        })));
        for (arn, answer) in asked.iter().zip(answers) {
            let mut answer = answer.expect("the request");
            assert_eq!(answer.len(), 1);
            match answer.remove(0) {
                Ok(d) => assert_eq!(&d.arn, arn),
                Err(Error::NotFound { name, .. }) => {
                    assert!(arn.ends_with("-missing"), "{arn}");
                    assert_eq!(&name, arn);
                }
                Err(other) => panic!("{arn}: {other}"),
            }
        }
        assert_eq!(before, None);
        assert_eq!(sim.calls().get("DescribeServiceDeploymentsByArn"), Some(&2));
        let stats = shared.stats();
        assert_eq!(
            (stats.deployment_batches, stats.batched_deployments),
            (2, 24),
            "{stats:?}"
        );
        assert_eq!((stats.batches, stats.batched_services), (0, 0));
        assert_eq!(stats.requests.get("DescribeServiceDeployments"), Some(&2));
        assert_eq!(stats.requests.get("DescribeServiceRevisions"), Some(&2));
    }

    #[test]
    fn a_failed_deployment_batch_gives_each_member_the_failure_on_its_own_arn() {
        let config = SharedEcsConfig {
            batch_window: Duration::from_secs(1),
            ..SharedEcsConfig::default()
        };
        let (clock, sim, shared) = fixture(RateLimits::none(), config);
        let asked = deployed(&clock, &sim, 3);
        sim.throttle_next(1);
        let answers = clock.run(join_all(asked.iter().map(|arn| {
            shared.describe_service_deployments_by_arn(std::slice::from_ref(arn))
        })));
        for (arn, answer) in asked.iter().zip(answers) {
            match answer.expect("one answer each").remove(0) {
                Err(Error::Api {
                    class, resource, ..
                }) => {
                    assert_eq!(class, ErrorClass::Throttled);
                    assert_eq!(&resource, arn);
                }
                other => panic!("{arn}: {other:?}"),
            }
        }
        assert_eq!(sim.calls().get("DescribeServiceDeploymentsByArn"), Some(&1));
        // Several ARNs asked at once go as they are, paced, not batched.
        let answers = clock
            .run(shared.describe_service_deployments_by_arn(&asked))
            .expect("three at once");
        assert!(answers.iter().all(Result::is_ok), "{answers:?}");
        assert_eq!(sim.calls().get("DescribeServiceDeploymentsByArn"), Some(&2));
        assert_eq!(shared.stats().deployment_batches, 1);
    }

    /// The running tasks of `svc-0` .. `svc-{services - 1}`, once ECS has
    /// started them.
    fn running_tasks(clock: &ManualClock, sim: &SimulatedEcs, services: usize) -> Vec<Vec<String>> {
        clock.run(async {
            clock.sleep(Duration::from_secs(30)).await;
            let mut tasks = Vec::new();
            for i in 0..services {
                let page = sim
                    .list_tasks(&ListTasksRequest {
                        cluster: CLUSTER.into(),
                        service: format!("svc-{i}"),
                        desired_status: crate::DesiredStatus::Running,
                        next_token: None,
                        max_results: None,
                        started_by: None,
                    })
                    .await
                    .expect("list tasks");
                assert!(!page.items.is_empty(), "svc-{i} has no task yet");
                tasks.push(page.items);
            }
            tasks
        })
    }

    fn arns(tasks: &[TaskDescription]) -> Vec<String> {
        tasks.iter().map(|t| t.task_arn.clone()).collect()
    }

    #[test]
    fn tasks_of_any_services_share_one_describe_tasks_by_a_hundred() {
        let config = SharedEcsConfig {
            batch_window: Duration::from_secs(1),
            ..SharedEcsConfig::default()
        };
        let (clock, sim, shared) = fixture(RateLimits::none(), config);
        let running = running_tasks(&clock, &sim, 3);
        let before = sim.calls().get("DescribeTasks").copied().unwrap_or(0);
        // svc-0's poll names 150 tasks (149 long gone): its first 100 fill
        // a request of their own, the other 50 open a second, which svc-1's
        // and svc-2's polls join. svc-2 names its task by id, as ECS allows.
        let mut first: Vec<String> = running[0].clone();
        first.extend(
            (0..149).map(|i| format!("arn:aws:ecs:us-east-1:123456789012:task/{CLUSTER}/gone{i}")),
        );
        let by_id: Vec<String> = running[2]
            .iter()
            .map(|arn| arn.rsplit_once('/').expect("an ARN").1.to_owned())
            .collect();
        let asked = [first, running[1].clone(), by_id];
        let answers = clock.run(join_all(
            asked
                .iter()
                .map(|tasks| shared.describe_tasks(CLUSTER, tasks)),
        ));
        for (i, answer) in answers.iter().enumerate() {
            let answer = answer.as_ref().expect("described");
            assert_eq!(arns(answer), running[i], "svc-{i}");
        }
        assert_eq!(sim.calls().get("DescribeTasks"), Some(&(before + 2)));
        let stats = shared.stats();
        assert_eq!(
            (stats.task_batches, stats.batched_task_reads),
            (1, 3),
            "{stats:?}"
        );
        assert_eq!(stats.requests.get("DescribeTasks"), Some(&2));
        assert_eq!(clock.monotonic(), Duration::from_secs(31));
        assert!(shared.state().tasks.waiting.is_empty());
        assert!(shared.state().tasks.open.is_empty());
        // Alone, with no window: at once, one request, each task once.
        let alone = SharedEcs::new(
            sim.clone(),
            Arc::new(clock.clone()),
            SharedEcsConfig::default(),
        )
        .expect("config");
        let twice: Vec<String> = running[1].iter().chain(&running[1]).cloned().collect();
        let start = clock.monotonic();
        let answer = clock
            .run(alone.describe_tasks(CLUSTER, &twice))
            .expect("described");
        assert_eq!(arns(&answer), running[1]);
        assert_eq!(clock.monotonic(), start);
        assert_eq!(sim.calls().get("DescribeTasks"), Some(&(before + 3)));
        assert_eq!(alone.stats().task_batches, 0);
        assert!(
            clock
                .run(alone.describe_tasks(CLUSTER, &[]))
                .expect("none")
                .is_empty()
        );
        assert_eq!(sim.calls().get("DescribeTasks"), Some(&(before + 3)));
    }

    #[test]
    fn a_failed_task_batch_fails_each_caller_on_the_cluster() {
        let config = SharedEcsConfig {
            batch_window: Duration::from_secs(1),
            ..SharedEcsConfig::default()
        };
        let (clock, sim, shared) = fixture(RateLimits::none(), config);
        let running = running_tasks(&clock, &sim, 3);
        sim.throttle_next(1);
        let answers = clock.run(join_all(
            running
                .iter()
                .map(|tasks| shared.describe_tasks(CLUSTER, tasks)),
        ));
        for answer in answers {
            match answer {
                Err(Error::Api {
                    class,
                    resource,
                    operation,
                    ..
                }) => {
                    assert_eq!(class, ErrorClass::Throttled);
                    assert_eq!(operation, "DescribeTasks");
                    assert_eq!(resource, CLUSTER);
                }
                other => panic!("{other:?}"),
            }
        }
        // Alone, the failure comes back as the backend gave it.
        let alone = SharedEcs::new(
            sim.clone(),
            Arc::new(clock.clone()),
            SharedEcsConfig::default(),
        )
        .expect("config");
        sim.throttle_next(1);
        let failed = clock.run(alone.describe_tasks(CLUSTER, &running[0]));
        assert!(
            matches!(
                &failed,
                Err(Error::Api {
                    class: ErrorClass::Throttled,
                    ..
                })
            ),
            "{failed:?}"
        );
    }

    #[test]
    fn a_task_read_refused_by_pacing_leaves_no_batch_behind() {
        let config = SharedEcsConfig {
            max_wait: Duration::from_secs(3) + SLACK,
            ..only(ApiCategory::ClusterResourceRead, 1, 1)
        };
        let (clock, sim, shared) = fixture(RateLimits::none(), config);
        let running = running_tasks(&clock, &sim, 1);
        let many = |n: usize| -> Vec<String> {
            running[0]
                .iter()
                .cloned()
                .chain((1..n).map(|i| format!("gone{i}")))
                .collect()
        };
        let (first, again) = (many(250), many(350));
        let refused = clock.run(async {
            // 250 tasks, three requests: one now, batches booked at 1 s and
            // 2 s (the second has room for 50).
            let mut read = Box::pin(shared.describe_tasks(CLUSTER, &first));
            assert!(futures::poll!(read.as_mut()).is_pending());
            // 350 more: 50 join that batch, 100 open one at 3 s, and the
            // next 100 would wait 4 s, past max_wait: refused, and the batch
            // this read opened is closed again.
            let refused = shared.describe_tasks(CLUSTER, &again).await;
            let answer = read.await.expect("the first read");
            assert_eq!(arns(&answer), running[0]);
            refused
        });
        match refused {
            Err(Error::Api { class, .. }) => assert_eq!(class, ErrorClass::Throttled),
            other => panic!("{other:?}"),
        }
        assert_eq!(shared.stats().refused, 1);
        assert_eq!(shared.stats().requests.get("DescribeTasks"), Some(&4));
        assert_eq!(sim.calls().get("DescribeTasks"), Some(&3));
        assert!(shared.state().tasks.waiting.is_empty());
        assert!(shared.state().tasks.open.is_empty());
    }

    #[test]
    fn a_failed_batch_gives_each_member_the_failure_on_its_own_service() {
        let config = only(ApiCategory::ServiceRead, 1, 1);
        let (clock, sim, shared) = fixture(config.limits.clone(), config);
        clock
            .run(shared.describe_service(CLUSTER, "svc-0"))
            .expect("read");
        sim.throttle_next(1);
        let asked = ["svc-1", "svc-2", "svc-3"];
        let answers = clock.run(join_all(
            asked.iter().map(|s| shared.describe_service(CLUSTER, s)),
        ));
        for (asked, answer) in asked.iter().zip(answers) {
            match answer {
                Err(Error::Api {
                    class,
                    resource,
                    operation,
                    ..
                }) => {
                    assert_eq!(class, ErrorClass::Throttled);
                    assert_eq!(operation, "DescribeServices");
                    assert_eq!(resource, format!("{CLUSTER}/{asked}"));
                }
                other => panic!("{asked}: {other:?}"),
            }
        }
        assert_eq!(sim.calls().get("DescribeServices"), Some(&2));
    }

    #[test]
    fn a_dropped_leader_leaves_its_members_to_read_alone() {
        let config = only(ApiCategory::ServiceRead, 1, 1);
        let (clock, _sim, shared) = fixture(config.limits.clone(), config);
        clock
            .run(shared.describe_service(CLUSTER, "svc-0"))
            .expect("read");
        let answer = clock.run(async {
            let mut leader = Box::pin(shared.describe_service(CLUSTER, "svc-1"));
            assert!(futures::poll!(leader.as_mut()).is_pending());
            let mut member = Box::pin(shared.describe_service(CLUSTER, "svc-2"));
            assert!(futures::poll!(member.as_mut()).is_pending());
            drop(leader);
            member.await
        });
        assert_eq!(answer.expect("read alone").service_name, "svc-2");
        assert!(shared.state().services.waiting.is_empty());
        assert!(shared.state().services.open.is_empty());
    }

    #[test]
    fn a_request_booked_too_far_ahead_is_refused_as_throttled_and_books_nothing() {
        let config = SharedEcsConfig {
            max_wait: Duration::from_secs(3),
            ..only(ApiCategory::TaskDefinitionModify, 1, 1)
        };
        let (clock, sim, shared) = fixture(config.limits.clone(), config);
        let specs: Vec<TaskDefinitionSpec> = (0..5)
            .map(|i| spec(&format!("family-{i}"), "nginx:2"))
            .collect();
        // Slots at 0, 1, 2 and 3 s (each plus the slack): the fourth is past 3 s.
        let results = clock.run(join_all(
            specs.iter().map(|s| shared.register_task_definition(s)),
        ));
        let refused: Vec<&Error> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        assert_eq!(refused.len(), 2, "{results:?}");
        for error in refused {
            assert_eq!(error.class(), Some(ErrorClass::Throttled));
            let text = error.to_string();
            assert!(text.contains("SharedEcsConfig::max_wait"), "{text}");
        }
        let stats = shared.stats();
        assert_eq!(stats.refused, 2);
        assert_eq!(stats.requests.get("RegisterTaskDefinition"), Some(&3));
        assert_eq!(sim.calls().get("RegisterTaskDefinition"), Some(&3));
    }

    #[test]
    fn configurations_that_cannot_work_are_refused() {
        let zero = only(ApiCategory::ServiceModify, 0, 5);
        let error = zero.validate().expect_err("empty bucket");
        assert!(error.to_string().contains("service modify"), "{error}");
        let never = only(ApiCategory::ServiceModify, 5, 0);
        assert!(never.validate().is_err());
        let window = SharedEcsConfig {
            batch_window: Duration::from_secs(10),
            max_wait: Duration::from_secs(1),
            ..SharedEcsConfig::default()
        };
        assert!(window.validate().is_err());
        let equal = SharedEcsConfig {
            batch_window: Duration::from_secs(10),
            max_wait: Duration::from_secs(10),
            ..SharedEcsConfig::default()
        };
        assert!(equal.validate().is_ok());
        assert!(SharedEcsConfig::default().validate().is_ok());
    }

    #[test]
    fn copies_of_a_failure_keep_its_class_and_name_their_own_resource() {
        let api = Error::api("DescribeServices", "fleet", ErrorClass::Transient, "503");
        let exhausted = Error::RetriesExhausted {
            operation: "DescribeServices",
            attempts: 3,
            last: Box::new(Error::api(
                "DescribeServices",
                "fleet",
                ErrorClass::Throttled,
                "Rate exceeded",
            )),
        };
        let copy = copy_error(&api, "fleet/a");
        assert!(
            matches!(&copy, Error::Api { class: ErrorClass::Transient, resource, .. } if resource == "fleet/a"),
            "{copy:?}"
        );
        let copy = copy_error(&exhausted, "fleet/b");
        assert_eq!(copy.class(), Some(ErrorClass::Throttled));
        let missing = Error::NotFound {
            kind: crate::ResourceKind::Cluster,
            name: "fleet".into(),
        };
        assert!(
            matches!(copy_error(&missing, "fleet/c"), Error::NotFound { name, .. } if name == "fleet")
        );
        let other = Error::Busy {
            service: "a".into(),
            in_progress: vec![],
        };
        assert!(
            matches!(copy_error(&other, "fleet/d"), Error::UnexpectedResponse { resource, .. } if resource == "fleet/d")
        );
    }
}
