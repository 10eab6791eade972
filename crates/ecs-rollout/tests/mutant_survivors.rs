//! Timelines that mutants of the engine survived (issue 14: two made by
//! hand, then those of `scripts/mutants.sh`): each test names the real ECS
//! timeline it covers, and fails on the mutant named in its doc comment.
//!
//! Simulated: ECS itself (`SimulatedEcs`, an auto-advancing manual clock),
//! with timings chosen to produce the timeline; nothing else.

mod common;

use std::{sync::Arc, time::Duration};

use common::{OLD_IMAGE, request, runner_spec};
use ecs_rollout::{
    DeploymentConfiguration, EcsApi, FailureReason, ImageBehaviour, MonitorConfig, Rollout,
    RolloutConfig, RolloutOutcome, RolloutTarget, ServiceSetup, SimTimings, SimulatedEcs,
    TaskDefinitionSpec, TaskDefinitionStatus,
};
use update_clock::ManualClock;

/// A simulated runner service with `timings`, one task, breaker with
/// rollback on; returns the simulator, the clock and the running revision.
fn service(timings: SimTimings) -> (Arc<SimulatedEcs>, Arc<ManualClock>, String) {
    service_of(timings, runner_spec(OLD_IMAGE))
}

/// [`service`] running `task_definition`.
fn service_of(
    timings: SimTimings,
    task_definition: TaskDefinitionSpec,
) -> (Arc<SimulatedEcs>, Arc<ManualClock>, String) {
    let clock = Arc::new(ManualClock::auto_advancing(ManualClock::EPOCH_2025));
    let sim = Arc::new(SimulatedEcs::new(clock.clone(), 7).with_timings(timings));
    let running = sim
        .create_service(ServiceSetup {
            cluster: "runners".into(),
            service: "runner".into(),
            task_definition,
            desired_count: 1,
            deployment_configuration: DeploymentConfiguration::safe_rolling(),
        })
        .unwrap();
    (sim, clock, running)
}

fn target() -> RolloutTarget {
    RolloutTarget::new("runners", "runner")
}

/// Timeline: the breaker trips and ECS's rollback completes *between two
/// polls*, and the failed deployment has already left `deployments` when the
/// next poll comes. Our deployment is never seen `FAILED`; the only trace is
/// the service event "(deployment X) deployment failed". The verdict must
/// still be ECS's rollback (a failure of the version, to quarantine), never
/// `Superseded` (which would retry the bad version forever).
///
/// Kills the mutant `ours_failed = seen_failed` in `monitor.rs`
/// (`foreign_primary` ignoring the failure event).
#[tokio::test]
async fn ecs_rollback_completed_before_the_poll_that_would_have_seen_failed() {
    let (sim, clock, running) = service(SimTimings {
        pending: Duration::from_secs(1),
        pending_jitter: Duration::ZERO,
        crash_after: Duration::from_secs(1),
        drained_deployment_linger: Duration::ZERO,
        ..SimTimings::default()
    });
    sim.script_image(&request().image.to_string(), ImageBehaviour::CrashLoop);
    // One poll right after UpdateService, the next long after ECS is done.
    let config = RolloutConfig {
        monitor: MonitorConfig {
            poll_min: Duration::from_secs(600),
            poll_max: Duration::from_secs(600),
            timeout: Duration::from_secs(3600),
            ..MonitorConfig::default()
        },
        ..RolloutConfig::default()
    };
    let rollout = Rollout::new(sim.clone(), clock.clone(), config).unwrap();
    let report = rollout.run(&target(), &request()).await.unwrap();

    let RolloutOutcome::RolledBackByEcs {
        reason, rollback, ..
    } = &report.outcome
    else {
        panic!(
            "an ECS rollback finished between two polls must be RolledBackByEcs, got {:#?}",
            report.outcome
        );
    };
    assert!(
        matches!(reason, FailureReason::CircuitBreaker { .. }),
        "{reason:?}"
    );
    assert_eq!(rollback.task_definition_arn, running);
    assert!(report.outcome.is_version_failure());
    assert!(
        report.quarantine.is_some(),
        "the bad version is quarantined"
    );
    // The timeline really happened: our deployment is gone from the list.
    let service = sim.peek_service("runners", "runner").unwrap();
    assert!(
        service
            .deployments
            .iter()
            .all(|d| d.task_definition_arn == running),
        "{service:#?}"
    );
}

/// Timeline: the running revision (the rollback target) is older than the
/// newest `keep_revisions` revisions of the family (revisions registered
/// since by CI, or by earlier failed updates), and its drained deployment has
/// left the service's list by the time retention runs. Retention must keep
/// it: it is what the service goes back to if the new version fails later.
///
/// Kills the mutant that drops `previous.arn` from the revisions retention
/// protects in `rollout.rs`.
#[tokio::test]
async fn retention_keeps_a_rollback_target_older_than_the_newest_revisions() {
    let (sim, clock, running) = service(SimTimings {
        drained_deployment_linger: Duration::ZERO,
        ..SimTimings::default()
    });
    // Three newer revisions of the family that never ran.
    let mut newer = Vec::new();
    for build in 2..=4 {
        let spec = runner_spec(&format!(
            "registry.example.com:5000/team/runner:2024123{build}.1"
        ));
        newer.push(sim.register_task_definition(&spec).await.unwrap().arn);
    }
    let config = RolloutConfig {
        keep_revisions: Some(2),
        monitor: MonitorConfig {
            bake_time: Duration::from_secs(120),
            ..MonitorConfig::default()
        },
        ..RolloutConfig::default()
    };
    let rollout = Rollout::new(sim.clone(), clock.clone(), config).unwrap();
    let report = rollout.run(&target(), &request()).await.unwrap();
    let RolloutOutcome::Succeeded { evidence } = &report.outcome else {
        panic!("expected Succeeded, got {:#?}", report.outcome);
    };
    assert_eq!(evidence.previous_task_definition_arn, running);
    // The drained deployment of the old revision is gone from the list, so
    // only the explicit protection keeps the rollback target.
    let service = sim.peek_service("runners", "runner").unwrap();
    assert!(
        service
            .deployments
            .iter()
            .all(|d| d.task_definition_arn != running),
        "{service:#?}"
    );
    assert_eq!(
        sim.peek_task_definition(&running).unwrap().status,
        TaskDefinitionStatus::Active,
        "the rollback target was deregistered"
    );
    assert!(!report.deregistered.contains(&running), "{report:#?}");
    // The newest two are kept (the new revision and the newest of the
    // never-run ones); the two older never-run ones go.
    assert_eq!(report.deregistered, newer[..2].to_vec(), "{report:#?}");
}

/// Timeline: a container with no health check (ECS calls the deployment
/// complete once its task runs) exits two minutes into the bake; ECS starts
/// a replacement at once, which is RUNNING by the next poll, so that poll
/// sees as many running tasks as desired and none unhealthy. Only the task
/// that stopped since the last poll tells: the bake must fail the version
/// (`BakeFailed`, "1 task(s) stopped"), not let it pass once the bake ends.
///
/// Kills `!healthy || inspection.new_failures > 0` → `&&` (and the
/// comparison's `>` → `<`) in `Monitor::poll`.
#[tokio::test]
async fn a_task_replaced_between_two_bake_polls_still_fails_the_bake() {
    let mut spec = runner_spec(OLD_IMAGE);
    spec.container_definitions[0].health_check = None;
    let (sim, clock, running) = service_of(
        SimTimings {
            pending: Duration::from_secs(1),
            pending_jitter: Duration::ZERO,
            crash_after: Duration::from_secs(120),
            ..SimTimings::default()
        },
        spec,
    );
    sim.script_image(&request().image.to_string(), ImageBehaviour::CrashLoop);
    let config = RolloutConfig {
        monitor: MonitorConfig {
            poll_min: Duration::from_secs(7),
            poll_max: Duration::from_secs(7),
            bake_time: Duration::from_secs(300),
            ..MonitorConfig::default()
        },
        ..RolloutConfig::default()
    };
    let rollout = Rollout::new(sim.clone(), clock.clone(), config).unwrap();
    let report = rollout.run(&target(), &request()).await.unwrap();
    let RolloutOutcome::RolledBackByUs {
        reason, rollback, ..
    } = &report.outcome
    else {
        panic!("expected RolledBackByUs, got {:#?}", report.outcome);
    };
    assert!(
        matches!(reason, FailureReason::BakeFailed { detail } if detail.contains("stopped")),
        "{reason:?}"
    );
    assert_eq!(rollback.task_definition_arn, running);
    assert!(report.quarantine.is_some());
}
