//! ECS's per-account request throttling, modelled as token buckets on the
//! simulator's clock: [`RateLimits`] (what each bucket holds and refills)
//! and the simulator's [`RateLimiter`] (the buckets themselves).
//!
//! Source: "Request throttling for the Amazon ECS API", Amazon ECS API
//! Reference, <https://docs.aws.amazon.com/AmazonECS/latest/APIReference/request-throttling.html>
//! (table "Request Token Bucket Sizes and Refill Rates"). ECS throttles per
//! account and Region; every action of a category shares one bucket; each
//! request takes one token; a bucket refills at its sustained rate up to its
//! maximum capacity (the burst). An empty bucket answers
//! `ThrottlingException: Rate exceeded`.
//!
//! | Category ([`ApiCategory`]) | Actions this crate sends | Burst | Refill / s |
//! | --- | --- | --- | --- |
//! | Service read | `DescribeServices` | 100 | 20 |
//! | Service modify | `UpdateService` | 50 | 5 |
//! | Task definition read | `DescribeTaskDefinition`, `ListTaskDefinitions` | 50 | 20 |
//! | Task definition modify | `RegisterTaskDefinition`, `DeregisterTaskDefinition` | 20 | 1 |
//! | Cluster resource read | `DescribeTasks`, `ListTasks` | 100 | 20 |
//! | Service deployment | `ListServiceDeployments`, `DescribeServiceDeployments` (and `StopServiceDeployment`, see below) | 50 | 20 |
//! | Service revision | `DescribeServiceRevisions` | 50 | 20 |
//! | Tag modify | `TagResource` | 20 | 10 |
//!
//! The page lists no category for `StopServiceDeployment`; it is put in the
//! service-deployment bucket here (an assumption).
//!
//! Refill is continuous (tokens accrue pro rata between calls, in
//! micro-tokens), which matches the page's example of an emptied 50-token
//! bucket refilling at 20 per second being full again after 2.5 s.
//!
//! One simulator call may stand for several ECS requests: the simulator's
//! `describe_service_deployments` is what `AwsEcs` does with
//! `ListServiceDeployments` + `DescribeServiceDeployments` +
//! `DescribeServiceRevisions` (one page of each while a service has at most
//! 20 service deployments), so it takes a token from each of those buckets
//! in turn, and is throttled at the first empty one ([`wire_actions`]).

use std::{collections::BTreeMap, fmt, time::Duration};

/// An ECS throttling category: every action in it shares one token bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ApiCategory {
    /// Service read actions: `DescribeServices`, `ListServices`.
    ServiceRead,
    /// Service modify actions: `CreateService`, `DeleteService`, `UpdateService`.
    ServiceModify,
    /// Task definition read actions: `DescribeTaskDefinition`,
    /// `ListTaskDefinitions`, `ListTaskDefinitionFamilies`.
    TaskDefinitionRead,
    /// Task definition modify actions: `RegisterTaskDefinition`,
    /// `DeregisterTaskDefinition`.
    TaskDefinitionModify,
    /// Cluster resource read actions: `DescribeTasks`, `ListTasks`,
    /// `DescribeContainerInstances`, `ListContainerInstances`, `ListAttributes`.
    ClusterResourceRead,
    /// Service deployment actions: `ListServiceDeployments`,
    /// `DescribeServiceDeployments` (and, by assumption, `StopServiceDeployment`).
    ServiceDeployment,
    /// Service revision actions: `DescribeServiceRevisions`.
    ServiceRevision,
    /// Tag modify actions: `TagResource`, `UntagResource`.
    TagModify,
}

impl ApiCategory {
    /// Every category, in order.
    pub const ALL: [ApiCategory; 8] = [
        ApiCategory::ServiceRead,
        ApiCategory::ServiceModify,
        ApiCategory::TaskDefinitionRead,
        ApiCategory::TaskDefinitionModify,
        ApiCategory::ClusterResourceRead,
        ApiCategory::ServiceDeployment,
        ApiCategory::ServiceRevision,
        ApiCategory::TagModify,
    ];

    /// The category of an ECS action (its wire name, e.g. `UpdateService`);
    /// `None` for an action this model does not know.
    pub fn of_action(action: &str) -> Option<Self> {
        Some(match action {
            "DescribeServices" | "ListServices" => Self::ServiceRead,
            "CreateService" | "DeleteService" | "UpdateService" => Self::ServiceModify,
            "DescribeTaskDefinition" | "ListTaskDefinitions" | "ListTaskDefinitionFamilies" => {
                Self::TaskDefinitionRead
            }
            "RegisterTaskDefinition" | "DeregisterTaskDefinition" => Self::TaskDefinitionModify,
            "DescribeTasks"
            | "ListTasks"
            | "DescribeContainerInstances"
            | "ListContainerInstances"
            | "ListAttributes" => Self::ClusterResourceRead,
            "ListServiceDeployments" | "DescribeServiceDeployments" | "StopServiceDeployment" => {
                Self::ServiceDeployment
            }
            "DescribeServiceRevisions" => Self::ServiceRevision,
            "TagResource" | "UntagResource" => Self::TagModify,
            _ => return None,
        })
    }

    /// The category's name as the throttling page writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ServiceRead => "service read",
            Self::ServiceModify => "service modify",
            Self::TaskDefinitionRead => "task definition read",
            Self::TaskDefinitionModify => "task definition modify",
            Self::ClusterResourceRead => "cluster resource read",
            Self::ServiceDeployment => "service deployment",
            Self::ServiceRevision => "service revision",
            Self::TagModify => "tag modify",
        }
    }
}

impl fmt::Display for ApiCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The ECS requests one simulator operation (the name it counts in
/// [`SimulatedEcs::calls`](super::SimulatedEcs::calls)) stands for, in the
/// order `AwsEcs` sends them. Unknown operations stand for nothing.
pub fn wire_actions(operation: &str) -> &'static [&'static str] {
    match operation {
        "DescribeServices" => &["DescribeServices"],
        "DescribeTaskDefinition" => &["DescribeTaskDefinition"],
        "RegisterTaskDefinition" => &["RegisterTaskDefinition"],
        "TagResource" => &["TagResource"],
        "DeregisterTaskDefinition" => &["DeregisterTaskDefinition"],
        "ListTaskDefinitions" => &["ListTaskDefinitions"],
        "UpdateService" => &["UpdateService"],
        "ListTasks" => &["ListTasks"],
        "DescribeTasks" => &["DescribeTasks"],
        "DescribeServiceDeployments" => &[
            "ListServiceDeployments",
            "DescribeServiceDeployments",
            "DescribeServiceRevisions",
        ],
        "DescribeServiceDeploymentsByArn" => {
            &["DescribeServiceDeployments", "DescribeServiceRevisions"]
        }
        "StopServiceDeployment" => &["StopServiceDeployment"],
        _ => &[],
    }
}

/// One bucket: its maximum capacity (the burst) and its refill rate (the
/// sustained rate), in requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketLimit {
    /// Maximum tokens (requests in one burst).
    pub burst: u32,
    /// Tokens added per second.
    pub refill_per_second: u32,
}

impl BucketLimit {
    /// A bucket of `burst` tokens refilled at `refill_per_second`.
    pub const fn new(burst: u32, refill_per_second: u32) -> Self {
        Self {
            burst,
            refill_per_second,
        }
    }
}

/// Which categories are throttled and how. [`Default`] and
/// [`RateLimits::none`] throttle nothing (the simulator's default);
/// [`RateLimits::ecs_documented`] is the table in the [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RateLimits {
    buckets: BTreeMap<ApiCategory, BucketLimit>,
}

impl RateLimits {
    /// No category is throttled.
    pub fn none() -> Self {
        Self::default()
    }

    /// ECS's documented default buckets (per account and Region), see the
    /// [module docs](self).
    pub fn ecs_documented() -> Self {
        use ApiCategory::*;
        Self::none()
            .with(ServiceRead, BucketLimit::new(100, 20))
            .with(ServiceModify, BucketLimit::new(50, 5))
            .with(TaskDefinitionRead, BucketLimit::new(50, 20))
            .with(TaskDefinitionModify, BucketLimit::new(20, 1))
            .with(ClusterResourceRead, BucketLimit::new(100, 20))
            .with(ServiceDeployment, BucketLimit::new(50, 20))
            .with(ServiceRevision, BucketLimit::new(50, 20))
            .with(TagModify, BucketLimit::new(20, 10))
    }

    /// Throttles `category` with `limit` (replacing an earlier limit).
    pub fn with(mut self, category: ApiCategory, limit: BucketLimit) -> Self {
        self.buckets.insert(category, limit);
        self
    }

    /// The limit of `category`, if it is throttled.
    pub fn get(&self, category: ApiCategory) -> Option<BucketLimit> {
        self.buckets.get(&category).copied()
    }
}

/// What the buckets let through and refused, per ECS action (wire name).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateLimitStats {
    /// Requests that took a token (or hit no bucket).
    pub admitted: BTreeMap<&'static str, u64>,
    /// Requests refused with `ThrottlingException`.
    pub throttled: BTreeMap<&'static str, u64>,
}

impl RateLimitStats {
    /// All admitted requests.
    pub fn total_admitted(&self) -> u64 {
        self.admitted.values().sum()
    }
    /// All throttled requests.
    pub fn total_throttled(&self) -> u64 {
        self.throttled.values().sum()
    }
}

/// Micro-tokens per token: refill is computed in whole micro-tokens.
const MICRO: u64 = 1_000_000;

/// A token bucket refilled continuously from the simulation's clock.
#[derive(Debug, Clone)]
struct TokenBucket {
    capacity: u64,
    refill_per_second: u64,
    tokens: u64,
    last: Duration,
}

impl TokenBucket {
    /// A full bucket at `now`.
    fn new(limit: BucketLimit, now: Duration) -> Self {
        let capacity = u64::from(limit.burst) * MICRO;
        Self {
            capacity,
            refill_per_second: u64::from(limit.refill_per_second),
            tokens: capacity,
            last: now,
        }
    }

    fn refill(&mut self, now: Duration) {
        let elapsed = now.saturating_sub(self.last);
        // refill_per_second tokens per 1e9 ns = refill_per_second / 1000 micro-tokens per ns.
        let added = elapsed.as_nanos() * u128::from(self.refill_per_second) / 1_000;
        let tokens = u128::from(self.tokens) + added;
        self.tokens = tokens.min(u128::from(self.capacity)) as u64;
        self.last = self.last.max(now);
    }

    /// Takes one token at `now`, if there is one.
    fn try_take(&mut self, now: Duration) -> bool {
        self.refill(now);
        if self.tokens >= MICRO {
            self.tokens -= MICRO;
            true
        } else {
            false
        }
    }
}

/// The simulator's buckets (one per throttled category) and their counts.
#[derive(Debug, Clone)]
pub(super) struct RateLimiter {
    buckets: BTreeMap<ApiCategory, TokenBucket>,
    stats: RateLimitStats,
}

impl RateLimiter {
    /// Full buckets for `limits` at `now`.
    pub(super) fn new(limits: &RateLimits, now: Duration) -> Self {
        Self {
            buckets: limits
                .buckets
                .iter()
                .map(|(&category, &limit)| (category, TokenBucket::new(limit, now)))
                .collect(),
            stats: RateLimitStats::default(),
        }
    }

    /// Admits the requests `operation` stands for at `now`, one token each,
    /// in order; the first one that finds its bucket empty is refused (the
    /// earlier ones have taken their tokens, as on the wire). Returns the
    /// refused action and its category.
    pub(super) fn admit(
        &mut self,
        operation: &str,
        now: Duration,
    ) -> Result<(), (&'static str, ApiCategory)> {
        for &action in wire_actions(operation) {
            let bucket = ApiCategory::of_action(action)
                .and_then(|category| Some((category, self.buckets.get_mut(&category)?)));
            if let Some((category, bucket)) = bucket
                && !bucket.try_take(now)
            {
                *self.stats.throttled.entry(action).or_default() += 1;
                return Err((action, category));
            }
            *self.stats.admitted.entry(action).or_default() += 1;
        }
        Ok(())
    }

    pub(super) fn stats(&self) -> &RateLimitStats {
        &self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn admitted_in_a_row(limiter: &mut RateLimiter, operation: &str, now: Duration) -> u32 {
        let mut n = 0;
        while limiter.admit(operation, now).is_ok() {
            n += 1;
            assert!(n < 10_000, "{operation} is not throttled");
        }
        n
    }

    #[test]
    fn every_simulated_operation_maps_to_its_documented_category() {
        use ApiCategory::*;
        // Every operation the simulator counts (one per EcsApi method), with
        // the categories of the ECS requests it stands for.
        let cases: [(&str, &[ApiCategory]); 11] = [
            ("DescribeServices", &[ServiceRead]),
            ("DescribeTaskDefinition", &[TaskDefinitionRead]),
            ("RegisterTaskDefinition", &[TaskDefinitionModify]),
            ("TagResource", &[TagModify]),
            ("DeregisterTaskDefinition", &[TaskDefinitionModify]),
            ("ListTaskDefinitions", &[TaskDefinitionRead]),
            ("UpdateService", &[ServiceModify]),
            ("ListTasks", &[ClusterResourceRead]),
            ("DescribeTasks", &[ClusterResourceRead]),
            (
                "DescribeServiceDeployments",
                &[ServiceDeployment, ServiceDeployment, ServiceRevision],
            ),
            ("StopServiceDeployment", &[ServiceDeployment]),
        ];
        for (operation, expected) in cases {
            let got: Vec<ApiCategory> = wire_actions(operation)
                .iter()
                .map(|a| ApiCategory::of_action(a).unwrap_or_else(|| panic!("{a} unmapped")))
                .collect();
            assert_eq!(got, expected, "{operation}");
        }
        assert!(wire_actions("UpdateService(operator)").is_empty());
        assert_eq!(ApiCategory::of_action("RunTask"), None);
    }

    #[test]
    fn documented_buckets() {
        use ApiCategory::*;
        let limits = RateLimits::ecs_documented();
        let cases = [
            (ServiceRead, 100, 20),
            (ServiceModify, 50, 5),
            (TaskDefinitionRead, 50, 20),
            (TaskDefinitionModify, 20, 1),
            (ClusterResourceRead, 100, 20),
            (ServiceDeployment, 50, 20),
            (ServiceRevision, 50, 20),
            (TagModify, 20, 10),
        ];
        assert_eq!(cases.len(), ApiCategory::ALL.len());
        for (category, burst, refill) in cases {
            assert_eq!(
                limits.get(category),
                Some(BucketLimit::new(burst, refill)),
                "{category}"
            );
        }
        assert_eq!(RateLimits::none().get(ServiceRead), None);
    }

    #[test]
    fn burst_then_refill_at_the_rate_per_category() {
        // (operation, burst, refill per second)
        let cases = [
            ("DescribeServices", 100, 20),
            ("UpdateService", 50, 5),
            ("RegisterTaskDefinition", 20, 1),
            ("DescribeTaskDefinition", 50, 20),
            ("ListTasks", 100, 20),
            ("TagResource", 20, 10),
        ];
        for (operation, burst, refill) in cases {
            let t0 = Duration::from_secs(100);
            let mut limiter = RateLimiter::new(&RateLimits::ecs_documented(), t0);
            assert_eq!(
                admitted_in_a_row(&mut limiter, operation, t0),
                burst,
                "{operation} burst"
            );
            // One second later exactly `refill` more; two seconds later twice that.
            assert_eq!(
                admitted_in_a_row(&mut limiter, operation, t0 + S),
                refill,
                "{operation} 1 s"
            );
            assert_eq!(
                admitted_in_a_row(&mut limiter, operation, t0 + 3 * S),
                2 * refill,
                "{operation} 2 s"
            );
            // A long pause refills to the burst, never beyond it.
            assert_eq!(
                admitted_in_a_row(&mut limiter, operation, t0 + 3600 * S),
                burst,
                "{operation} capped"
            );
            let stats = limiter.stats();
            assert_eq!(stats.total_throttled(), 4, "{operation}");
            assert_eq!(
                stats.total_admitted(),
                u64::from(2 * burst + 3 * refill),
                "{operation}"
            );
        }
    }

    #[test]
    fn refill_accrues_between_whole_seconds() {
        // Task definition modify: 1 per second. Two half seconds make a token.
        let t0 = Duration::ZERO;
        let mut limiter = RateLimiter::new(&RateLimits::ecs_documented(), t0);
        assert_eq!(
            admitted_in_a_row(&mut limiter, "RegisterTaskDefinition", t0),
            20
        );
        let half = Duration::from_millis(500);
        assert!(limiter.admit("RegisterTaskDefinition", half).is_err());
        assert!(limiter.admit("RegisterTaskDefinition", 2 * half).is_ok());
        assert!(limiter.admit("RegisterTaskDefinition", 2 * half).is_err());
        // The page's example: an emptied 50 / 20 bucket is full after 2.5 s.
        let mut limiter = RateLimiter::new(&RateLimits::ecs_documented(), t0);
        assert_eq!(
            admitted_in_a_row(&mut limiter, "DescribeTaskDefinition", t0),
            50
        );
        let full = Duration::from_millis(2500);
        assert_eq!(
            admitted_in_a_row(&mut limiter, "DescribeTaskDefinition", full),
            50
        );
    }

    #[test]
    fn categories_have_their_own_buckets_and_actions_share_theirs() {
        let t0 = Duration::ZERO;
        let mut limiter = RateLimiter::new(&RateLimits::ecs_documented(), t0);
        assert_eq!(
            admitted_in_a_row(&mut limiter, "RegisterTaskDefinition", t0),
            20
        );
        // Deregistration shares the empty task-definition modify bucket...
        assert_eq!(
            limiter.admit("DeregisterTaskDefinition", t0),
            Err((
                "DeregisterTaskDefinition",
                ApiCategory::TaskDefinitionModify
            ))
        );
        // ...while every other category is untouched.
        assert!(limiter.admit("DescribeTaskDefinition", t0).is_ok());
        assert!(limiter.admit("UpdateService", t0).is_ok());
        // DescribeTasks and ListTasks share cluster resource read.
        for _ in 0..50 {
            limiter.admit("DescribeTasks", t0).unwrap();
        }
        assert_eq!(admitted_in_a_row(&mut limiter, "ListTasks", t0), 50);
    }

    #[test]
    fn a_multi_request_operation_is_refused_at_its_first_empty_bucket() {
        let t0 = Duration::ZERO;
        let limits = RateLimits::none()
            .with(ApiCategory::ServiceDeployment, BucketLimit::new(3, 1))
            .with(ApiCategory::ServiceRevision, BucketLimit::new(5, 1));
        let mut limiter = RateLimiter::new(&limits, t0);
        // List + Describe take two service-deployment tokens per call.
        assert!(limiter.admit("DescribeServiceDeployments", t0).is_ok());
        assert_eq!(
            limiter.admit("DescribeServiceDeployments", t0),
            Err(("DescribeServiceDeployments", ApiCategory::ServiceDeployment))
        );
        let stats = limiter.stats();
        assert_eq!(stats.admitted["ListServiceDeployments"], 2);
        assert_eq!(stats.admitted["DescribeServiceDeployments"], 1);
        assert_eq!(stats.admitted["DescribeServiceRevisions"], 1);
        assert_eq!(stats.throttled["DescribeServiceDeployments"], 1);
        // Categories without a bucket are never throttled.
        assert_eq!(
            admitted_in_a_row_bounded(&mut limiter, "UpdateService", t0),
            1000
        );
    }

    mod through_the_simulator {
        use std::sync::Arc;

        use update_clock::{Clock, ManualClock};

        use super::*;
        use crate::{
            ContainerDefinition, EcsApi, Error, ErrorClass, RetryPolicy, RetryingEcs, SimulatedEcs,
            TaskDefinitionSpec,
        };

        fn spec(family: &str) -> TaskDefinitionSpec {
            TaskDefinitionSpec {
                family: family.into(),
                container_definitions: vec![ContainerDefinition {
                    name: "runner".into(),
                    image: "example.com/runner:1".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }
        }

        #[tokio::test]
        async fn off_by_default() {
            let clock = Arc::new(ManualClock::new(ManualClock::EPOCH_2025));
            let sim = SimulatedEcs::new(clock, 1);
            for i in 0..100 {
                sim.register_task_definition(&spec(&format!("f{i}")))
                    .await
                    .unwrap();
            }
            assert_eq!(sim.rate_limit_stats(), RateLimitStats::default());
        }

        #[tokio::test]
        async fn an_empty_bucket_is_a_throttling_exception_until_it_refills() {
            let clock = Arc::new(ManualClock::new(ManualClock::EPOCH_2025));
            let sim = SimulatedEcs::new(clock.clone(), 1);
            sim.set_rate_limits(RateLimits::ecs_documented());
            for i in 0..20 {
                sim.register_task_definition(&spec(&format!("f{i}")))
                    .await
                    .unwrap();
            }
            let err = sim
                .register_task_definition(&spec("late"))
                .await
                .unwrap_err();
            assert!(
                matches!(&err, Error::Api { class: ErrorClass::Throttled, message, .. }
                    if message.starts_with("ThrottlingException: Rate exceeded")),
                "{err}"
            );
            assert!(err.is_retryable());
            // Reads of task definitions have their own bucket.
            sim.describe_task_definition("f0:1").await.unwrap();
            clock.advance(Duration::from_secs(1));
            sim.register_task_definition(&spec("late")).await.unwrap();
            let stats = sim.rate_limit_stats();
            assert_eq!(stats.admitted["RegisterTaskDefinition"], 21);
            assert_eq!(stats.throttled["RegisterTaskDefinition"], 1);
            // The simulator counts every call it received, throttled or not.
            assert_eq!(sim.calls()["RegisterTaskDefinition"], 22);
        }

        #[tokio::test]
        async fn the_retry_layer_absorbs_the_throttling() {
            let clock = Arc::new(ManualClock::auto_advancing(ManualClock::EPOCH_2025));
            let sim = SimulatedEcs::new(clock.clone(), 1);
            sim.set_rate_limits(RateLimits::ecs_documented());
            let policy = RetryPolicy {
                jitter_seed: Some(1),
                ..Default::default()
            };
            let ecs = RetryingEcs::new(sim, clock.clone(), policy);
            for i in 0..25 {
                ecs.register_task_definition(&spec(&format!("f{i}")))
                    .await
                    .unwrap();
            }
            // 20 in the burst, then one per second: at least 5 s of back-off.
            assert!(
                clock.monotonic() >= Duration::from_secs(5),
                "{:?}",
                clock.monotonic()
            );
            assert!(ecs.stats().throttled() > 0);
            assert_eq!(
                ecs.inner().rate_limit_stats().admitted["RegisterTaskDefinition"],
                25
            );
        }
    }

    fn admitted_in_a_row_bounded(limiter: &mut RateLimiter, operation: &str, now: Duration) -> u32 {
        (0..1000)
            .take_while(|_| limiter.admit(operation, now).is_ok())
            .count() as u32
    }
}
