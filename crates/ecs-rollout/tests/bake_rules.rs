//! The bake judges the tasks that existed when it started, and only
//! failures of the version count (issue 10, "Monitoring that matches ECS").
//!
//! Simulated (`SimulatedEcs`): the rollout of a healthy runner image to a
//! safe-rolling service of 2 tasks, whose deployment completes about a
//! minute in; a 300 s bake then starts. Two minutes later ECS does
//! something that is not a failure of the version:
//! - an autoscaling policy scales the service out to 4 (`desiredCount`
//!   changes, no new deployment; the PRIMARY deployment launches two tasks
//!   that are PENDING, then RUNNING with their health check UNKNOWN, during
//!   the bake);
//! - a running task is stopped for a reason that is not the version's
//!   fault (`schedule_task_interruption`): Fargate Spot interruption, an EC2
//!   termination notice, Fargate task retirement, Availability Zone
//!   rebalancing, an operator's `StopTask`; ECS starts a replacement.
//!
//! None of these may fail the bake, roll back and quarantine a healthy
//! version. A crash during the bake still fails it (see `scenarios.rs`).

mod common;

use std::{sync::Arc, time::Duration};

use common::*;
use ecs_rollout::{
    DeploymentConfiguration, DeploymentConfigurationPolicy, FailureReason, ImageBehaviour,
    MonitorConfig, ProgressEvent, RecordedProgress, RolloutConfig, RolloutOutcome, RolloutTarget,
    ServiceSetup, SimTimings, SimulatedEcs, TaskInterruption,
};
use update_clock::ManualClock;

const BAKE: Duration = Duration::from_secs(300);
/// Well inside the bake: the deployment completes about a minute in.
const DURING_BAKE: Duration = Duration::from_secs(180);

fn baking() -> RolloutConfig {
    RolloutConfig {
        monitor: MonitorConfig {
            bake_time: BAKE,
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The bake started before `at` (since the fixture's start) and the
/// rollout succeeded, with the bake waited for in full.
fn assert_baked_and_succeeded(fx: &Fixture, outcome: &RolloutOutcome) {
    let RolloutOutcome::Succeeded { evidence } = outcome else {
        panic!("expected Succeeded, got {outcome:#?}");
    };
    assert!(
        evidence.deployment_duration >= BAKE,
        "{:?}",
        evidence.deployment_duration
    );
    assert!(bakes(fx) >= 1, "the bake never started");
}

#[tokio::test]
async fn a_scale_out_during_the_bake_does_not_fail_a_healthy_version() {
    let fx = Fixture::safe(2);
    fx.sim
        .schedule_desired_count(DURING_BAKE, "runners", "runner", 4);
    let report = fx.run(baking()).await;
    assert_baked_and_succeeded(&fx, &report.outcome);
    // The scale-out happened inside the bake, and its tasks came up after it.
    let service = fx.sim.peek_service("runners", "runner").unwrap();
    assert_eq!(service.desired_count, 4);
    let RolloutOutcome::Succeeded { evidence } = &report.outcome else {
        unreachable!()
    };
    assert!(evidence.deployment_duration > DURING_BAKE);
    assert_eq!(primary_task_definition(&fx), new_task_definition(&fx));
}

#[tokio::test]
async fn tasks_stopped_during_the_bake_for_reasons_that_are_not_failures_do_not_fail_it() {
    for why in [
        TaskInterruption::SpotInterruption,
        TaskInterruption::TerminationNotice,
        TaskInterruption::FargateRetirement,
        TaskInterruption::AzRebalancing,
        TaskInterruption::StopTask,
    ] {
        let fx = Fixture::safe(2);
        fx.sim
            .schedule_task_interruption(DURING_BAKE, "runners", "runner", 1, why);
        let report = fx.run(baking()).await;
        assert!(
            matches!(report.outcome, RolloutOutcome::Succeeded { .. }),
            "{why:?}: {:#?}",
            report.outcome
        );
        assert_baked_and_succeeded(&fx, &report.outcome);
        // The task really was stopped, with ECS's stop code, and replaced.
        let (code, _) = why.stop_code_and_reason();
        let stopped = stopped_tasks(&fx).await;
        assert!(
            stopped.iter().any(|t| t.stop_code.as_deref() == Some(code)),
            "{why:?}: no task stopped with {code}: {stopped:#?}"
        );
        assert_eq!(primary_task_definition(&fx), new_task_definition(&fx));
    }
}

#[tokio::test]
async fn when_every_task_of_the_bake_is_replaced_the_bake_judges_the_replacements_from_the_start() {
    let fx = Fixture::safe(2);
    fx.sim.schedule_task_interruption(
        DURING_BAKE,
        "runners",
        "runner",
        2,
        TaskInterruption::SpotInterruption,
    );
    let report = fx.run(baking()).await;
    assert_baked_and_succeeded(&fx, &report.outcome);
    let RolloutOutcome::Succeeded { evidence } = &report.outcome else {
        unreachable!()
    };
    // The replacements were baked for the whole bake time after they
    // became healthy, which was after the interruption.
    assert!(
        evidence.deployment_duration >= DURING_BAKE + BAKE,
        "{:?}",
        evidence.deployment_duration
    );
    assert_eq!(bakes(&fx), 2, "the bake starts again on the replacements");
}

#[tokio::test]
async fn a_crash_of_a_scaled_out_task_during_the_bake_still_fails_it() {
    // No health check: the deployment completes as soon as the tasks run,
    // and they crash 15 s later; the scale-out adds more crashing tasks.
    let fx = Fixture::safe_without_health_check(2);
    fx.new_image_behaves(ImageBehaviour::CrashLoop);
    fx.sim
        .schedule_desired_count(Duration::from_secs(1), "runners", "runner", 3);
    let report = fx.run(baking()).await;
    assert!(
        matches!(
            &report.outcome,
            RolloutOutcome::RolledBackByUs {
                reason: FailureReason::BakeFailed { .. },
                ..
            } | RolloutOutcome::RolledBackByEcs { .. }
        ),
        "{:#?}",
        report.outcome
    );
    assert_eq!(primary_task_definition(&fx), fx.old_task_definition);
}

/// A version that degrades during the bake: its containers pass their
/// health check, the deployment completes, and 150 s after start their
/// health check fails. ECS keeps an UNHEALTHY task running while it starts
/// its replacement (simulated: `set_unhealthy_tasks_linger`, here for ten
/// minutes, longer than the bake), so no task has stopped yet when the bake
/// looks: the UNHEALTHY tasks themselves must fail it.
#[tokio::test]
async fn a_task_that_turns_unhealthy_during_the_bake_fails_it_before_ecs_stops_it() {
    let fx = Fixture::safe(2);
    fx.sim.set_unhealthy_tasks_linger(Duration::from_secs(600));
    fx.new_image_behaves(ImageBehaviour::DegradesLater);
    let report = fx.run(baking()).await;
    let RolloutOutcome::RolledBackByUs {
        reason: FailureReason::BakeFailed { detail },
        evidence,
        ..
    } = &report.outcome
    else {
        panic!(
            "expected RolledBackByUs(BakeFailed), got {:#?}",
            report.outcome
        );
    };
    assert!(detail.contains("no longer healthy"), "{detail}");
    assert!(
        evidence.stopped_tasks.is_empty(),
        "{:#?}",
        evidence.stopped_tasks
    );
    assert!(!evidence.unhealthy_containers.is_empty());
    assert!(
        evidence.deployment_duration < BAKE,
        "{:?}",
        evidence.deployment_duration
    );
    assert_eq!(primary_task_definition(&fx), fx.old_task_definition);
}

/// ECS completes the deployment on the scheduler's view of health, while
/// `DescribeTasks` may still show the containers UNKNOWN (simulated:
/// `set_task_health_lag`, 60 s). Our own check waits for the task reads to
/// say HEALTHY before the success (here with no bake), so the verdict comes
/// about a minute later than without the lag.
#[tokio::test]
async fn the_success_waits_for_the_task_reads_to_show_healthy_containers() {
    let no_bake = RolloutConfig {
        monitor: MonitorConfig {
            bake_time: Duration::ZERO,
            ..Default::default()
        },
        ..Default::default()
    };
    let duration = |lag: Duration| {
        let no_bake = no_bake.clone();
        async move {
            let fx = Fixture::safe(2);
            fx.sim.set_task_health_lag(lag);
            let report = fx.run(no_bake).await;
            let RolloutOutcome::Succeeded { evidence } = report.outcome else {
                panic!("expected Succeeded, got {:#?}", report.outcome);
            };
            evidence.deployment_duration
        }
    };
    let prompt = duration(Duration::ZERO).await;
    let lagging = duration(Duration::from_secs(60)).await;
    assert!(
        lagging >= prompt + Duration::from_secs(40),
        "{prompt:?} without the lag, {lagging:?} with it"
    );
}

/// With the breaker off, ECS's `failedTasks` is not the only count: with
/// `resetOnHealthyTask` (ECS's default) it goes back to 0 each time a task
/// reaches a healthy state, so for a version whose tasks run and crash 15 s
/// later it stays low (here it reaches the threshold only after about 20
/// crashes, where our own count needs 3), and the deployment never
/// completes (its tasks are never all running at once).
/// Simulated: `set_breaker_resets_on_healthy_task`, no health check (a
/// running task is a healthy one), and task starts spread over a minute.
#[tokio::test]
async fn with_the_breaker_off_our_own_count_of_failed_tasks_trips_the_threshold() {
    let clock = Arc::new(ManualClock::auto_advancing(ManualClock::EPOCH_2025));
    let sim = Arc::new(
        SimulatedEcs::new(clock.clone(), 42).with_timings(SimTimings {
            pending_jitter: Duration::from_secs(60),
            ..SimTimings::default()
        }),
    );
    let mut spec = runner_spec(OLD_IMAGE);
    spec.container_definitions[0].health_check = None;
    let old_task_definition = sim
        .create_service(ServiceSetup {
            cluster: "runners".into(),
            service: "runner".into(),
            task_definition: spec,
            desired_count: 4,
            deployment_configuration: DeploymentConfiguration {
                circuit_breaker: None,
                ..DeploymentConfiguration::safe_rolling()
            },
        })
        .unwrap();
    let fx = Fixture {
        clock,
        sim,
        target: RolloutTarget::new("runners", "runner"),
        progress: RecordedProgress::new(),
        old_task_definition,
    };
    fx.sim.set_breaker_resets_on_healthy_task(true);
    fx.new_image_behaves(ImageBehaviour::CrashLoop);
    let config = RolloutConfig {
        // Keep the breaker off: judge by our own threshold.
        deployment_configuration_policy: DeploymentConfigurationPolicy::Warn,
        ..Default::default()
    };
    let report = fx.run(config).await;
    let RolloutOutcome::RolledBackByUs {
        reason, evidence, ..
    } = &report.outcome
    else {
        panic!("expected RolledBackByUs, got {:#?}", report.outcome);
    };
    let FailureReason::FailedTaskThreshold {
        failed_tasks,
        threshold,
    } = reason
    else {
        panic!("expected FailedTaskThreshold, got {reason:?}");
    };
    assert_eq!(*threshold, 3);
    assert!(*failed_tasks >= 3, "{failed_tasks}");
    // ECS's own count never got there.
    // ECS's own count was still below the threshold at the verdict.
    assert!(
        evidence.failed_tasks < 3,
        "ECS's failedTasks {} (ours {failed_tasks})",
        evidence.failed_tasks
    );
    assert_eq!(primary_task_definition(&fx), fx.old_task_definition);
}

/// How many times the bake started.
fn bakes(fx: &Fixture) -> usize {
    fx.progress
        .events()
        .iter()
        .filter(|e| matches!(e, ProgressEvent::BakeStarted { .. }))
        .count()
}

fn primary_task_definition(fx: &Fixture) -> String {
    let service = fx.sim.peek_service("runners", "runner").unwrap();
    service.primary().unwrap().task_definition_arn.clone()
}

fn new_task_definition(fx: &Fixture) -> String {
    let service = fx.sim.peek_service("runners", "runner").unwrap();
    assert_ne!(service.task_definition_arn, fx.old_task_definition);
    service.task_definition_arn
}

async fn stopped_tasks(fx: &Fixture) -> Vec<ecs_rollout::TaskDescription> {
    use ecs_rollout::{DesiredStatus, EcsApi, list_all_tasks};
    let arns = list_all_tasks(fx.sim.as_ref(), &fx.target, DesiredStatus::Stopped)
        .await
        .unwrap();
    fx.sim.describe_tasks("runners", &arns).await.unwrap()
}
