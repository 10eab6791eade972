//! The one place this crate retries: [`RetryingEcs`], a decorator over any
//! [`EcsApi`] that retries throttled and transient failures with capped
//! exponential backoff on the injected clock, and counts every call.
//!
//! [`Rollout`](crate::Rollout) wraps the backend it is given in a
//! `RetryingEcs` itself; backends never retry on their own (the AWS backend
//! takes the embedder's SDK client as is, so configure that client with one
//! attempt, or accept that its own retries multiply with these).

use std::{
    collections::BTreeMap,
    future::Future,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use update_clock::Clock;

use crate::{
    EcsApi, Error, ListTasksRequest, Page, PageToken, ProgressEvent, ProgressSink,
    RegisteredTaskDefinition, Result, ServiceDeploymentInfo, ServiceDescription,
    TaskDefinitionSpec, TaskDescription, UpdateServiceRequest, UpdateServiceResult,
};

/// When and how often to retry a throttled or transient ECS call.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct RetryPolicy {
    /// Attempts per call including the first. Default 10.
    pub max_attempts: u32,
    /// Backoff before the second attempt. Default 200 ms.
    pub initial_backoff: Duration,
    /// Upper bound of one backoff. Default 20 s.
    pub max_backoff: Duration,
    /// Growth factor per attempt. Default 2.
    pub multiplier: f64,
    /// Randomise each backoff within [½·b, b] ("equal jitter") so a fleet
    /// does not retry in lockstep. Default `true`.
    pub jitter: bool,
    /// Seed of the jitter. `None` (default) derives one from the wall clock
    /// at construction (deterministic under a manual clock).
    pub jitter_seed: Option<u64>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(20),
            multiplier: 2.0,
            jitter: true,
            jitter_seed: None,
        }
    }
}

impl RetryPolicy {
    /// Rejects a policy that cannot work.
    pub fn validate(&self) -> Result<()> {
        if self.max_attempts == 0 {
            return Err(Error::InvalidConfig {
                field: "RetryPolicy::max_attempts",
                reason: "must be at least 1 (1 = no retries)".into(),
            });
        }
        if !(self.multiplier >= 1.0 && self.multiplier.is_finite()) {
            return Err(Error::InvalidConfig {
                field: "RetryPolicy::multiplier",
                reason: format!("{} must be a finite number ≥ 1", self.multiplier),
            });
        }
        if self.initial_backoff > self.max_backoff {
            return Err(Error::InvalidConfig {
                field: "RetryPolicy::initial_backoff",
                reason: "must not exceed max_backoff".into(),
            });
        }
        Ok(())
    }

    /// The backoff (without jitter) after failed attempt `attempt` (1-based):
    /// `initial · multiplier^(attempt-1)`, capped at `max_backoff`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .multiplier
            .powi(attempt.saturating_sub(1).min(64) as i32);
        let secs = self.initial_backoff.as_secs_f64() * exp;
        if !secs.is_finite() || secs >= self.max_backoff.as_secs_f64() {
            self.max_backoff
        } else {
            Duration::from_secs_f64(secs)
        }
    }
}

/// Counts of ECS calls made through a [`RetryingEcs`] (every attempt counts).
#[derive(Debug, Default)]
pub struct CallStats {
    attempts: AtomicU64,
    retries: AtomicU64,
    throttled: AtomicU64,
    by_operation: Mutex<BTreeMap<&'static str, u64>>,
}

impl CallStats {
    /// Every attempt sent to the backend.
    pub fn attempts(&self) -> u64 {
        self.attempts.load(Ordering::Relaxed)
    }
    /// Attempts that were retries.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }
    /// Attempts answered with throttling.
    pub fn throttled(&self) -> u64 {
        self.throttled.load(Ordering::Relaxed)
    }
    /// Attempts per operation.
    pub fn by_operation(&self) -> BTreeMap<&'static str, u64> {
        self.by_operation
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// An [`EcsApi`] decorator retrying throttled and transient failures with
/// capped exponential backoff (sleeping on the injected clock). Permanent
/// failures and domain errors pass through at once. After
/// [`RetryPolicy::max_attempts`] it gives up with
/// [`Error::RetriesExhausted`].
#[derive(Debug)]
pub struct RetryingEcs<E> {
    inner: E,
    clock: Arc<dyn Clock>,
    policy: RetryPolicy,
    stats: Arc<CallStats>,
    rng: Mutex<ChaCha8Rng>,
    progress: Option<Arc<dyn ProgressSink>>,
}

impl<E: EcsApi> RetryingEcs<E> {
    /// Wraps `inner`.
    pub fn new(inner: E, clock: Arc<dyn Clock>, policy: RetryPolicy) -> Self {
        let seed = policy
            .jitter_seed
            .unwrap_or_else(|| clock.now().timestamp_nanos_opt().unwrap_or(0) as u64);
        Self {
            inner,
            clock,
            policy,
            stats: Arc::default(),
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
            progress: None,
        }
    }

    /// Reports each scheduled retry as [`ProgressEvent::RetryScheduled`].
    pub fn with_progress(mut self, sink: Arc<dyn ProgressSink>) -> Self {
        self.progress = Some(sink);
        self
    }

    /// The call counters (shared: clone the `Arc` to read them later).
    pub fn stats(&self) -> Arc<CallStats> {
        self.stats.clone()
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &E {
        &self.inner
    }

    fn delay(&self, attempt: u32) -> Duration {
        let base = self.policy.backoff(attempt);
        if !self.policy.jitter || base.is_zero() {
            return base;
        }
        let half = base / 2;
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        half + Duration::from_nanos(
            rng.random_range(0..=half.as_nanos().min(u64::MAX as u128) as u64),
        )
    }

    async fn call<T, F, Fut>(&self, operation: &'static str, f: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.stats.attempts.fetch_add(1, Ordering::Relaxed);
            if attempt > 1 {
                self.stats.retries.fetch_add(1, Ordering::Relaxed);
            }
            *self
                .stats
                .by_operation
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(operation)
                .or_default() += 1;
            let error = match f().await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            let Some(class) = error.class().filter(|_| error.is_retryable()) else {
                return Err(error);
            };
            if class == crate::ErrorClass::Throttled {
                self.stats.throttled.fetch_add(1, Ordering::Relaxed);
            }
            if attempt >= self.policy.max_attempts {
                tracing::warn!(operation, attempt, %error, "giving up on ECS call");
                return Err(Error::RetriesExhausted {
                    operation,
                    attempts: attempt,
                    last: Box::new(error),
                });
            }
            let delay = self.delay(attempt);
            tracing::debug!(operation, attempt, %class, ?delay, "retrying ECS call");
            if let Some(sink) = &self.progress {
                sink.emit(&ProgressEvent::RetryScheduled {
                    operation,
                    attempt,
                    class,
                    delay,
                });
            }
            self.clock.sleep(delay).await;
        }
    }
}

#[async_trait]
impl<E: EcsApi> EcsApi for RetryingEcs<E> {
    async fn describe_service(&self, cluster: &str, service: &str) -> Result<ServiceDescription> {
        self.call("DescribeServices", || {
            self.inner.describe_service(cluster, service)
        })
        .await
    }
    async fn describe_services(
        &self,
        cluster: &str,
        services: &[String],
    ) -> Result<Vec<Result<ServiceDescription>>> {
        self.call("DescribeServices", || {
            self.inner.describe_services(cluster, services)
        })
        .await
    }
    async fn describe_task_definition(
        &self,
        task_definition: &str,
    ) -> Result<RegisteredTaskDefinition> {
        self.call("DescribeTaskDefinition", || {
            self.inner.describe_task_definition(task_definition)
        })
        .await
    }
    async fn register_task_definition(
        &self,
        spec: &TaskDefinitionSpec,
    ) -> Result<RegisteredTaskDefinition> {
        self.call("RegisterTaskDefinition", || {
            self.inner.register_task_definition(spec)
        })
        .await
    }
    async fn tag_resource(&self, arn: &str, tags: &BTreeMap<String, String>) -> Result<()> {
        self.call("TagResource", || self.inner.tag_resource(arn, tags))
            .await
    }
    async fn deregister_task_definition(&self, arn: &str) -> Result<()> {
        self.call("DeregisterTaskDefinition", || {
            self.inner.deregister_task_definition(arn)
        })
        .await
    }
    async fn list_task_definition_revisions(
        &self,
        family: &str,
        next_token: PageToken,
    ) -> Result<Page<String>> {
        self.call("ListTaskDefinitions", || {
            self.inner
                .list_task_definition_revisions(family, next_token.clone())
        })
        .await
    }
    async fn update_service(&self, request: &UpdateServiceRequest) -> Result<UpdateServiceResult> {
        self.call("UpdateService", || self.inner.update_service(request))
            .await
    }
    async fn list_tasks(&self, request: &ListTasksRequest) -> Result<Page<String>> {
        self.call("ListTasks", || self.inner.list_tasks(request))
            .await
    }
    async fn describe_tasks(
        &self,
        cluster: &str,
        task_arns: &[String],
    ) -> Result<Vec<TaskDescription>> {
        self.call("DescribeTasks", || {
            self.inner.describe_tasks(cluster, task_arns)
        })
        .await
    }
    async fn describe_service_deployments(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<Vec<ServiceDeploymentInfo>> {
        self.call("DescribeServiceDeployments", || {
            self.inner.describe_service_deployments(cluster, service)
        })
        .await
    }
    async fn describe_service_deployments_by_arn(
        &self,
        arns: &[String],
    ) -> Result<Vec<Result<ServiceDeploymentInfo>>> {
        self.call("DescribeServiceDeployments", || {
            self.inner.describe_service_deployments_by_arn(arns)
        })
        .await
    }
    async fn stop_service_deployment(
        &self,
        service_deployment_arn: &str,
        stop_type: crate::StopType,
    ) -> Result<()> {
        self.call("StopServiceDeployment", || {
            self.inner
                .stop_service_deployment(service_deployment_arn, stop_type)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy = RetryPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            ..Default::default()
        };
        let got: Vec<u128> = (1..=6).map(|a| policy.backoff(a).as_millis()).collect();
        assert_eq!(got, vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!(policy.backoff(10_000), Duration::from_secs(1));
    }

    #[test]
    fn invalid_policies_are_rejected() {
        let cases = [
            RetryPolicy {
                max_attempts: 0,
                ..Default::default()
            },
            RetryPolicy {
                multiplier: 0.5,
                ..Default::default()
            },
            RetryPolicy {
                multiplier: f64::NAN,
                ..Default::default()
            },
            RetryPolicy {
                initial_backoff: Duration::from_secs(30),
                ..Default::default()
            },
        ];
        for policy in cases {
            assert!(policy.validate().is_err(), "{policy:?}");
        }
        RetryPolicy::default().validate().unwrap();
        // A constant backoff (initial = max) is valid.
        RetryPolicy {
            initial_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(2),
            ..Default::default()
        }
        .validate()
        .unwrap();
    }

    #[test]
    fn jittered_delays_stay_between_half_and_the_whole_backoff() {
        let clock = Arc::new(ManualClock::auto_advancing(ManualClock::EPOCH_2025));
        let policy = RetryPolicy {
            jitter: true,
            jitter_seed: Some(7),
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(8),
            ..Default::default()
        };
        let ecs = RetryingEcs::new(SimulatedEcs::new(clock.clone(), 1), clock, policy.clone());
        for attempt in 1..=6 {
            let base = policy.backoff(attempt);
            let delays: Vec<Duration> = (0..50).map(|_| ecs.delay(attempt)).collect();
            assert!(
                delays.iter().all(|d| *d >= base / 2 && *d <= base),
                "attempt {attempt}, backoff {base:?}: {delays:?}"
            );
            assert!(
                delays.iter().any(|d| *d != delays[0]),
                "jittered: {delays:?}"
            );
        }
    }

    use crate::{ErrorClass, SimulatedEcs};
    use update_clock::ManualClock;

    fn clock() -> Arc<ManualClock> {
        Arc::new(ManualClock::auto_advancing(ManualClock::EPOCH_2025))
    }

    #[tokio::test]
    async fn throttling_is_retried_with_backoff_on_the_clock() {
        let clock = clock();
        let sim = SimulatedEcs::new(clock.clone(), 1);
        sim.throttle_next(4);
        let policy = RetryPolicy {
            jitter: false,
            initial_backoff: Duration::from_secs(1),
            ..Default::default()
        };
        let ecs = RetryingEcs::new(sim, clock.clone(), policy);
        let err = ecs.describe_task_definition("missing:1").await.unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{err}");
        // 1 + 2 + 4 + 8 seconds of backoff, then the real (permanent) answer.
        assert_eq!(clock.monotonic(), Duration::from_secs(15));
        let stats = ecs.stats();
        assert_eq!(
            (stats.attempts(), stats.retries(), stats.throttled()),
            (5, 4, 4)
        );
        assert_eq!(stats.by_operation()["DescribeTaskDefinition"], 5);
    }

    #[tokio::test]
    async fn gives_up_after_max_attempts_and_keeps_the_class() {
        let clock = clock();
        let sim = SimulatedEcs::new(clock.clone(), 1);
        sim.throttle_next(100);
        let policy = RetryPolicy {
            max_attempts: 3,
            ..Default::default()
        };
        let ecs = RetryingEcs::new(sim, clock, policy);
        let err = ecs.describe_task_definition("x:1").await.unwrap_err();
        assert!(
            matches!(err, Error::RetriesExhausted { attempts: 3, .. }),
            "{err}"
        );
        assert_eq!(err.class(), Some(ErrorClass::Throttled));
        assert!(!err.is_retryable(), "exhausted retries are final");
    }

    #[tokio::test]
    async fn permanent_errors_are_not_retried() {
        let clock = clock();
        let sim = SimulatedEcs::new(clock.clone(), 1);
        let ecs = RetryingEcs::new(sim, clock.clone(), RetryPolicy::default());
        let spec = crate::TaskDefinitionSpec::default(); // empty family: ClientException
        let err = ecs.register_task_definition(&spec).await.unwrap_err();
        assert_eq!(err.class(), Some(ErrorClass::Permanent));
        assert_eq!(ecs.stats().attempts(), 1);
        assert_eq!(clock.monotonic(), Duration::ZERO);
    }

    #[tokio::test]
    async fn a_throttled_describe_services_is_retried_whole_and_answers_each_service() {
        let clock = clock();
        let sim = SimulatedEcs::new(clock.clone(), 1);
        for name in ["a", "b"] {
            sim.create_service(crate::ServiceSetup {
                cluster: "c".into(),
                service: name.into(),
                task_definition: crate::TaskDefinitionSpec {
                    family: name.into(),
                    container_definitions: vec![crate::ContainerDefinition {
                        name: "app".into(),
                        image: "nginx:1".into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                },
                desired_count: 1,
                deployment_configuration: crate::DeploymentConfiguration::safe_rolling(),
            })
            .unwrap();
        }
        sim.throttle_next(2);
        let ecs = RetryingEcs::new(sim, clock, RetryPolicy::default());
        let asked = ["b".to_owned(), "nobody".to_owned(), "a".to_owned()];
        let answers = ecs.describe_services("c", &asked).await.unwrap();
        assert_eq!(answers.len(), 3);
        assert_eq!(answers[0].as_ref().unwrap().service_name, "b");
        assert!(
            matches!(answers[1], Err(Error::NotFound { .. })),
            "{:?}",
            answers[1]
        );
        assert_eq!(answers[2].as_ref().unwrap().service_name, "a");
        let stats = ecs.stats();
        assert_eq!((stats.attempts(), stats.throttled()), (3, 2));
        assert_eq!(stats.by_operation()["DescribeServices"], 3);
        // ECS takes at most ten services per request.
        let eleven: Vec<String> = (0..11).map(|i| i.to_string()).collect();
        let error = ecs.describe_services("c", &eleven).await.unwrap_err();
        assert_eq!(error.class(), Some(ErrorClass::Permanent));
        assert!(error.to_string().contains("at most 10"), "{error}");
    }
}
