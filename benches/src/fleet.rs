//! A fleet rollout on one [`SimulatedEcs`] with ECS's per-account token
//! buckets on: `N` services, one [`Rollout`] each (one updater per runner,
//! each with its own retry jitter), at most `C` in flight, on a
//! discrete-event clock ([`ManualClock::run`]).
//!
//! What it measures, in simulated time: the makespan (start to the last
//! verdict), the lower bound the buckets and one service's deployment time
//! set ([`lower_bound`]), the rollouts that ended in an error or a
//! non-success caused by throttling, and the ECS calls per service.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use ecs_rollout::{
    ContainerDefinition, DeploymentConfiguration, EcsApi, ErrorClass, HealthCheck, Rollout,
    RolloutConfig, RolloutOutcome, RolloutRequest, RolloutTarget, ServiceSetup, SharedEcs,
    SharedEcsConfig, SharedEcsStats, SimTimings, SimulatedEcs, TaskDefinitionSpec,
    simulated::{ApiCategory, RateLimitStats, RateLimits},
};
use futures::StreamExt;
use update_clock::{Clock, ManualClock};

/// One fleet run.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// Services to update (N).
    pub services: usize,
    /// Rollouts in flight at once (C).
    pub concurrency: usize,
    /// Tasks per service.
    pub desired_count: i32,
    /// The simulator's throttling.
    pub rate_limits: RateLimits,
    /// Seed of the simulator; rollout `i` jitters its retries with `seed + i`.
    pub seed: u64,
    /// Every rollout goes through one [`SharedEcs`] with this configuration
    /// (client-side pacing by ECS's buckets, batched `DescribeServices`);
    /// `None`: each rollout calls the simulator directly and only retries.
    pub shared: Option<SharedEcsConfig>,
}

impl FleetConfig {
    /// `services` services, `concurrency` in flight, two tasks each, ECS's
    /// documented buckets.
    pub fn new(services: usize, concurrency: usize) -> Self {
        Self {
            services,
            concurrency,
            desired_count: 2,
            rate_limits: RateLimits::ecs_documented(),
            seed: 13,
            shared: Some(SharedEcsConfig::default()),
        }
    }

    /// The same without a [`SharedEcs`]: every rollout on its own.
    pub fn unshared(mut self) -> Self {
        self.shared = None;
        self
    }

    /// The same with a [`SharedEcs`] whose `DescribeServices` wait up to
    /// `window` for company.
    pub fn batch_window(mut self, window: Duration) -> Self {
        let mut shared = self.shared.unwrap_or_default();
        shared.batch_window = window;
        self.shared = Some(shared);
        self
    }

    /// A short name of the client set-up, for reports.
    pub fn client(&self) -> String {
        match &self.shared {
            None => "unshared".into(),
            Some(shared) if shared.batch_window.is_zero() => "shared".into(),
            Some(shared) => format!("shared+{}ms", shared.batch_window.as_millis()),
        }
    }
}

/// What a fleet run did.
#[derive(Debug, Clone)]
pub struct FleetReport {
    /// Services (N).
    pub services: usize,
    /// Rollouts in flight at once (C).
    pub concurrency: usize,
    /// [`FleetConfig::client`].
    pub client: String,
    /// What the [`SharedEcs`] did, if there was one.
    pub shared: Option<SharedEcsStats>,
    /// Simulated time from the start to the last verdict.
    pub makespan: Duration,
    /// Outcomes by kind (`succeeded`, …) and errors (`error:<class>`).
    pub outcomes: BTreeMap<String, usize>,
    /// Rollouts that ended in an error, or an outcome other than success,
    /// caused by throttling (the retry layer gave up, or monitoring was lost
    /// to throttled reads).
    pub throttling_surfaced: usize,
    /// Rollouts that did not succeed, for any reason.
    pub not_succeeded: usize,
    /// Calls the simulator received, per operation (throttled ones included).
    pub calls: BTreeMap<&'static str, u64>,
    /// ECS requests the buckets admitted and throttled, per action.
    pub wire: RateLimitStats,
}

impl FleetReport {
    /// Calls per service of `operation` (simulator operations).
    pub fn calls_per_service(&self, operation: &str) -> f64 {
        self.calls.get(operation).copied().unwrap_or(0) as f64 / self.services as f64
    }

    /// All simulator calls per service.
    pub fn total_calls_per_service(&self) -> f64 {
        self.calls.values().sum::<u64>() as f64 / self.services as f64
    }

    /// Throttled ECS requests per service (absorbed by retries or not).
    pub fn throttled_per_service(&self) -> f64 {
        self.wire.total_throttled() as f64 / self.services as f64
    }
}

const LABEL: &str = "org.opencontainers.image.version";
const OLD_VERSION: &str = "20250101.1";
const NEW_VERSION: &str = "20250102.1";

fn image(version: &str) -> String {
    let byte = if version == OLD_VERSION { "01" } else { "02" };
    format!(
        "registry.example.com/gitpod/runner:{version}@sha256:{}",
        byte.repeat(32)
    )
}

fn spec(family: &str) -> TaskDefinitionSpec {
    TaskDefinitionSpec {
        family: family.into(),
        container_definitions: vec![ContainerDefinition {
            name: "runner".into(),
            image: image(OLD_VERSION),
            essential: Some(true),
            docker_labels: BTreeMap::from([(LABEL.into(), OLD_VERSION.into())]),
            health_check: Some(HealthCheck {
                command: vec!["CMD".into(), "true".into()],
                start_period: Some(20),
                ..Default::default()
            }),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// The simulator's timings for the fleet: no start-up jitter, so every
/// service takes the same time to deploy and the single-service makespan
/// is the deployment time of each one.
pub fn fleet_timings() -> SimTimings {
    SimTimings {
        pending_jitter: Duration::ZERO,
        ..Default::default()
    }
}

fn is_throttling(error: &ecs_rollout::Error) -> bool {
    error.class() == Some(ErrorClass::Throttled)
}

/// Runs one fleet rollout: every service from `OLD_VERSION` to `NEW_VERSION`
/// (a healthy image).
pub fn run_fleet(config: &FleetConfig) -> FleetReport {
    let clock = Arc::new(ManualClock::new(ManualClock::EPOCH_2025));
    let sim = Arc::new(SimulatedEcs::new(clock.clone(), config.seed).with_timings(fleet_timings()));
    sim.enable_service_deployments(true);
    let targets: Vec<RolloutTarget> = (0..config.services)
        .map(|i| {
            let name = format!("runner-{i:04}");
            sim.create_service(ServiceSetup {
                cluster: "fleet".into(),
                service: name.clone(),
                task_definition: spec(&name),
                desired_count: config.desired_count,
                deployment_configuration: DeploymentConfiguration::safe_rolling(),
            })
            .expect("service");
            RolloutTarget::new("fleet", name)
        })
        .collect();
    sim.set_rate_limits(config.rate_limits.clone());
    let request = RolloutRequest {
        image: image(NEW_VERSION).parse().expect("image"),
        version: NEW_VERSION.parse().expect("version"),
    };
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let shared = config.shared.clone().map(|shared_config| {
        Arc::new(SharedEcs::new(sim.clone(), dyn_clock.clone(), shared_config).expect("config"))
    });
    let ecs: Arc<dyn EcsApi> = match &shared {
        Some(shared) => shared.clone(),
        None => sim.clone(),
    };
    let rollouts: Vec<Rollout> = (0..config.services)
        .map(|i| {
            let mut rollout_config = RolloutConfig::default();
            rollout_config.retry.jitter_seed = Some(config.seed + i as u64);
            Rollout::new(ecs.clone(), dyn_clock.clone(), rollout_config).expect("config")
        })
        .collect();

    let start = clock.monotonic();
    let results = clock.run(async {
        futures::stream::iter(rollouts.iter().zip(&targets))
            .map(|(rollout, target)| {
                let clock = clock.clone();
                let request = &request;
                async move {
                    let result = rollout.run(target, request).await;
                    (result, clock.monotonic())
                }
            })
            .buffer_unordered(config.concurrency.max(1))
            .collect::<Vec<_>>()
            .await
    });

    let mut outcomes = BTreeMap::new();
    let mut throttling_surfaced = 0;
    let mut not_succeeded = 0;
    let mut end = start;
    for (result, at) in results {
        end = end.max(at);
        let kind = match &result {
            Ok(report) => report.outcome.kind().to_owned(),
            Err(error) => format!(
                "error:{}",
                error.class().map_or("none".into(), |c| c.to_string())
            ),
        };
        *outcomes.entry(kind).or_insert(0) += 1;
        let succeeded = matches!(&result, Ok(r) if r.outcome.is_success());
        if !succeeded {
            not_succeeded += 1;
        }
        let by_throttling = match &result {
            Err(error) => is_throttling(error),
            Ok(report) => match &report.outcome {
                RolloutOutcome::MonitoringLost { last_error, .. } => {
                    last_error.contains("ThrottlingException")
                }
                other => !other.is_success() && other.summary().contains("Throttling"),
            },
        };
        if by_throttling {
            throttling_surfaced += 1;
        }
    }
    FleetReport {
        services: config.services,
        concurrency: config.concurrency,
        client: config.client(),
        shared: shared.map(|s| s.stats()),
        makespan: end - start,
        outcomes,
        throttling_surfaced,
        not_succeeded,
        calls: sim.calls(),
        wire: sim.rate_limit_stats(),
    }
}

/// Requests one service's rollout must make before its deployment can
/// start (`Rollout::run`: `DescribeServices` for the idle check,
/// `DescribeTaskDefinition` of the running revision and of the family's
/// newest, `RegisterTaskDefinition`, `UpdateService`), by category.
pub const PRE_DEPLOY_REQUESTS: [(ApiCategory, u32); 4] = [
    (ApiCategory::ServiceRead, 1),
    (ApiCategory::TaskDefinitionRead, 2),
    (ApiCategory::TaskDefinitionModify, 1),
    (ApiCategory::ServiceModify, 1),
];

/// The lower bound of a fleet's makespan, and what sets it: the larger of
/// - the buckets: the last service cannot start deploying before every
///   bucket has let through the requests all `n` services make before their
///   deployments (a bucket of burst `b` refilled at `r` per second lets
///   `k > b` requests through in no less than `(k − b) / r` seconds), and it
///   then takes `deployment` (one service's makespan on its own) to its
///   verdict;
/// - the concurrency: with at most `concurrency` rollouts in flight, each
///   taking `deployment`, the `n` services need `⌈n / concurrency⌉` rounds.
pub fn lower_bound(
    n: usize,
    concurrency: usize,
    limits: &RateLimits,
    deployment: Duration,
) -> (Duration, Bound) {
    let mut worst = (0.0f64, ApiCategory::TaskDefinitionModify);
    for (category, per_service) in PRE_DEPLOY_REQUESTS {
        let Some(limit) = limits.get(category) else {
            continue;
        };
        let requests = (n as u64 * u64::from(per_service)) as f64;
        let over = (requests - f64::from(limit.burst)).max(0.0);
        let secs = over / f64::from(limit.refill_per_second.max(1));
        if secs > worst.0 {
            worst = (secs, category);
        }
    }
    let buckets = deployment + Duration::from_secs_f64(worst.0);
    let rounds = n.div_ceil(concurrency.max(1)) as u32;
    let concurrency_bound = deployment * rounds;
    if concurrency_bound > buckets {
        (concurrency_bound, Bound::Concurrency)
    } else {
        (buckets, Bound::Bucket(worst.1))
    }
}

/// What sets a [`lower_bound`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// The requests every service makes before deploying, through this bucket.
    Bucket(ApiCategory),
    /// Rounds of `concurrency` deployments.
    Concurrency,
}

impl std::fmt::Display for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Bucket(category) => write!(f, "{category} bucket"),
            Self::Concurrency => f.write_str("concurrency"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_bound_is_set_by_the_registrations() {
        let limits = RateLimits::ecs_documented();
        let d = Duration::from_secs(100);
        // 1,000 registrations: 20 in the burst, then one per second.
        assert_eq!(
            lower_bound(1000, 100, &limits, d),
            (
                d + Duration::from_secs(980),
                Bound::Bucket(ApiCategory::TaskDefinitionModify)
            )
        );
        // Ten services fit in every burst.
        assert_eq!(lower_bound(10, 10, &limits, d).0, d);
        // Ten at a time: a hundred take ten rounds, more than the buckets.
        assert_eq!(
            lower_bound(100, 10, &limits, d),
            (d * 10, Bound::Concurrency)
        );
        // 101 take eleven.
        assert_eq!(lower_bound(101, 10, &limits, d).0, d * 11);
    }

    #[test]
    fn a_small_fleet_succeeds_without_surfacing_throttling() {
        let report = run_fleet(&FleetConfig::new(5, 5));
        assert_eq!(report.outcomes.get("succeeded"), Some(&5), "{report:?}");
        assert_eq!(report.throttling_surfaced, 0);
        assert!(report.makespan > Duration::from_secs(60));
    }

    #[test]
    fn a_fleet_past_the_registration_burst_waits_its_turn_instead_of_being_throttled() {
        // 40 registrations: 20 in ECS's burst, the rest one per second.
        let shared = run_fleet(&FleetConfig::new(40, 40));
        assert_eq!(shared.outcomes.get("succeeded"), Some(&40), "{shared:?}");
        assert_eq!(shared.wire.total_throttled(), 0, "{shared:?}");
        let stats = shared.shared.as_ref().expect("shared client");
        assert!(stats.waited >= 20, "{stats:?}");
        let deployment = run_fleet(&FleetConfig::new(1, 1)).makespan;
        let limits = RateLimits::ecs_documented();
        let (bound, set_by) = lower_bound(40, 40, &limits, deployment);
        assert_eq!(set_by, Bound::Bucket(ApiCategory::TaskDefinitionModify));
        assert!(
            shared.makespan >= bound,
            "{:?} < {bound:?}",
            shared.makespan
        );
        assert!(
            shared.makespan.as_secs_f64() <= bound.as_secs_f64() * 1.15,
            "{:?} vs {bound:?}",
            shared.makespan
        );
        // On their own, the same rollouts are throttled (and absorb it).
        let alone = run_fleet(&FleetConfig::new(40, 40).unshared());
        assert!(alone.wire.total_throttled() > 0, "{alone:?}");
    }
}
