//! What a watch reads, and when (issue 10, "Calls and errors": a quarter of
//! ecs-deploy's calls, with the verdict within one poll interval).
//!
//! Simulated (`SimulatedEcs`, manual clock): a safe-rolling service of 3
//! runner tasks with a health check, updated to a healthy image; the
//! ServiceDeployment API on (as in real ECS) unless a test says otherwise;
//! no bake, so the verdict follows ECS's completion. ECS's
//! "(deployment …) deployment completed." event is when ECS settled.
//! `schedule_service_deployment_stop` models someone stopping our service
//! deployment while `DescribeServices` goes on showing it in progress.

mod common;

use std::time::Duration;

use common::{Fixture, OLD_IMAGE, runner_spec};
use ecs_rollout::{
    DeploymentConfiguration, FailureReason, MonitorConfig, RecordedDeployment, RolloutConfig,
    RolloutOutcome, SimTimings, VerdictSource,
};
use update_clock::Clock;

fn no_bake() -> RolloutConfig {
    RolloutConfig {
        monitor: MonitorConfig {
            bake_time: Duration::ZERO,
            ..Default::default()
        },
        ..Default::default()
    }
}

fn calls(fx: &Fixture, op: &str) -> u64 {
    fx.sim.calls().get(op).copied().unwrap_or(0)
}

/// Timeline: a healthy rolling deployment, about 45 s from `UpdateService`
/// to ECS's completion. The service deployment is listed once (the first
/// poll finds and records it) and read again only when `DescribeServices`
/// shows the deployment COMPLETED; tasks are read once, at the completion
/// (their health decides), and the stopped ones not at all (nothing
/// stopped: ECS counted no failure and no task left).
#[tokio::test]
async fn a_healthy_deployment_reads_only_what_can_decide() {
    let fx = Fixture::safe(3);
    fx.sim.enable_service_deployments(true);
    let report = fx.run(no_bake()).await;
    let RolloutOutcome::Succeeded { evidence } = &report.outcome else {
        panic!("expected Succeeded, got {:#?}", report.outcome);
    };
    assert_eq!(evidence.decided_by, Some(VerdictSource::ServiceDeployment));
    let all = fx.sim.calls();
    assert_eq!(calls(&fx, "DescribeServiceDeployments"), 1, "{all:?}");
    assert_eq!(calls(&fx, "DescribeServiceDeploymentsByArn"), 1, "{all:?}");
    // One inspection: the running tasks, once (one page, one DescribeTasks).
    assert_eq!(calls(&fx, "ListTasks"), 1, "{all:?}");
    assert_eq!(calls(&fx, "DescribeTasks"), 1, "{all:?}");
    let total: u64 = all.values().sum();
    assert!(total <= 20, "{total} calls: {all:?}");
}

/// Timeline: the same deployment, with and without the ServiceDeployment
/// API. The monitor polls fast once every task of ours runs (ECS completes
/// the deployment next), so the verdict comes within one `poll_min` of
/// ECS's completion, although it polled slower while the tasks started.
#[tokio::test]
async fn the_verdict_comes_within_one_short_poll_of_ecs_completing() {
    for (api, desired) in [true, false]
        .into_iter()
        .flat_map(|api| (1..=3).map(move |d| (api, d)))
    {
        let fx = Fixture::safe(desired);
        fx.sim.enable_service_deployments(api);
        let start = fx.clock.now();
        let report = fx.run(no_bake()).await;
        let RolloutOutcome::Succeeded { evidence } = &report.outcome else {
            panic!(
                "api {api}, desired {desired}: expected Succeeded, got {:#?}",
                report.outcome
            );
        };
        let settled = fx
            .completed_since(&evidence.deployment_id, start)
            .expect("ECS completed our deployment");
        let verdict = evidence.total_duration;
        let poll_min = MonitorConfig::default().poll_min;
        assert!(
            verdict >= settled && verdict - settled <= poll_min,
            "api {api}, desired {desired}: ECS completed at {settled:?}, verdict at {verdict:?}"
        );
    }
}

/// Timeline: the runner warms up slowly: its first passing health check
/// comes 3 minutes after it starts (`SimTimings::first_health_check`), so
/// its tasks run, unchanged, for minutes before ECS calls the deployment
/// complete. Polls stay at `poll_min` through that wait, so the verdict
/// still comes within one short poll of the completion.
#[tokio::test]
async fn a_slow_health_check_still_gets_its_verdict_within_one_short_poll() {
    let fx = Fixture::with_timings(
        2,
        DeploymentConfiguration::safe_rolling(),
        runner_spec(OLD_IMAGE),
        SimTimings {
            first_health_check: Duration::from_secs(180),
            ..SimTimings::default()
        },
    );
    fx.sim.enable_service_deployments(true);
    let start = fx.clock.now();
    let report = fx.run(no_bake()).await;
    let RolloutOutcome::Succeeded { evidence } = &report.outcome else {
        panic!("expected Succeeded, got {:#?}", report.outcome);
    };
    let settled = fx
        .completed_since(&evidence.deployment_id, start)
        .expect("ECS completed our deployment");
    assert!(settled >= Duration::from_secs(180), "{settled:?}");
    let verdict = evidence.total_duration;
    assert!(
        verdict >= settled && verdict - settled <= MonitorConfig::default().poll_min,
        "ECS completed at {settled:?}, verdict at {verdict:?}"
    );
}

/// Timeline: 20 s after our `UpdateService`, someone stops our service
/// deployment. ECS halts the deployment; `DescribeServices` goes on showing
/// it PRIMARY and IN_PROGRESS, and only the service deployment says STOPPED.
/// The monitor reads it at least once per inspection interval, so the
/// verdict is `DeploymentStopped` within about a minute, not a 30-minute
/// timeout followed by our rollback.
#[tokio::test]
async fn a_stop_only_the_service_deployment_shows_is_seen_within_an_inspection_interval() {
    let fx = Fixture::safe(3);
    fx.sim.enable_service_deployments(true);
    fx.sim
        .schedule_service_deployment_stop(Duration::from_secs(20), "runners", "runner");
    let report = fx.run(no_bake()).await;
    let RolloutOutcome::DeploymentStopped { evidence, .. } = &report.outcome else {
        panic!("expected DeploymentStopped, got {:#?}", report.outcome);
    };
    assert_eq!(evidence.decided_by, Some(VerdictSource::ServiceDeployment));
    let interval = MonitorConfig::default().task_inspection_interval;
    assert!(
        evidence.total_duration <= Duration::from_secs(20) + interval + Duration::from_secs(15),
        "{evidence:#?}"
    );
    let service = fx.sim.peek_service("runners", "runner").unwrap();
    assert_eq!(
        service.primary().unwrap().id,
        evidence.deployment_id,
        "nothing rolled back"
    );
}

/// Timeline: a slow deployment, its tasks PENDING for 6 minutes (a large
/// image on cold hosts) before they run. While `DescribeServices` shows it
/// in progress, the service deployment is read once per inspection
/// interval (60 s), not on every poll.
#[tokio::test]
async fn a_slow_deployment_reads_its_service_deployment_once_an_interval() {
    let fx = Fixture::with_timings(
        3,
        DeploymentConfiguration::safe_rolling(),
        runner_spec(OLD_IMAGE),
        SimTimings {
            pending: Duration::from_secs(360),
            ..SimTimings::default()
        },
    );
    fx.sim.enable_service_deployments(true);
    let report = fx.run(no_bake()).await;
    let RolloutOutcome::Succeeded { evidence } = &report.outcome else {
        panic!("expected Succeeded, got {:#?}", report.outcome);
    };
    let interval = MonitorConfig::default().task_inspection_interval;
    let minutes = evidence.total_duration.as_secs() / interval.as_secs();
    assert!(minutes >= 6, "{evidence:#?}");
    let by_arn = calls(&fx, "DescribeServiceDeploymentsByArn");
    // One a minute, and the one at the completion.
    assert!(
        (minutes - 1..=minutes + 1).contains(&by_arn),
        "{by_arn} reads by ARN in {minutes} min: {:?}",
        fx.sim.calls()
    );
    assert!(evidence.polls as u64 > 2 * by_arn, "{evidence:#?}");
    // Tasks too: once a minute both the stopped ones and the running ones
    // (two lists: a failure ECS's counts hide, as after its `failedTasks`
    // "stops being evaluated" once a task ran healthy, still shows), and
    // the running ones at the completion.
    let listed = calls(&fx, "ListTasks");
    assert!(
        (2 * (minutes - 1)..=2 * (minutes + 1) + 1).contains(&listed),
        "{listed} task lists in {minutes} min: {:?}",
        fx.sim.calls()
    );
}

/// Timeline: a healthy deployment, then a 5-minute bake. The bake polls
/// at the growing interval (5 s up to 30 s), not at the shortest one,
/// although every task of ours runs: fast polls are for the wait on ECS's
/// completion, and the bake has no completion to wait for.
#[tokio::test]
async fn the_bake_polls_at_the_growing_interval() {
    let fx = Fixture::safe(3);
    fx.sim.enable_service_deployments(true);
    let bake = Duration::from_secs(300);
    let config = RolloutConfig {
        monitor: MonitorConfig {
            bake_time: bake,
            ..Default::default()
        },
        ..Default::default()
    };
    let report = fx.run(config).await;
    let RolloutOutcome::Succeeded { evidence } = &report.outcome else {
        panic!("expected Succeeded, got {:#?}", report.outcome);
    };
    assert!(evidence.total_duration >= bake, "{evidence:#?}");
    // About 8 polls to the completion and 13 through the bake; at the
    // shortest interval the bake alone would take 60.
    assert!(evidence.polls <= 30, "{} polls", evidence.polls);
}

/// Timeline: an earlier run deployed an image that cannot be pulled to a
/// service of one task, and died. 45 s later, with ECS's first failed
/// start already counted (`failedTasks` 1, below the breaker's threshold
/// of 3), `Rollout::watch` resumes: its first poll shows a failure it has
/// not seen, reads the stopped task at once and fails fast, instead of
/// waiting for the next failed start or the once-a-minute inspection.
#[tokio::test]
async fn a_resumed_watch_reads_a_failure_ecs_already_counted_at_once() {
    let fx = Fixture::safe(1);
    fx.sim.enable_service_deployments(true);
    fx.new_image_behaves(ecs_rollout::ImageBehaviour::PullError);
    let (new, updated) = fx.deploy_by_hand().await;
    fx.clock.sleep(Duration::from_secs(45)).await;
    let service = fx.sim.peek_service("runners", "runner").unwrap();
    let ours = service.deployment(&updated.deployment_id).unwrap();
    assert_eq!(ours.failed_tasks, 1, "{ours:#?}");
    let report = fx
        .rollout(RolloutConfig::default())
        .watch(
            &fx.target,
            &RecordedDeployment {
                deployment_id: updated.deployment_id.clone(),
                service_deployment_arn: None,
                task_definition_arn: new.arn.clone(),
                previous_task_definition_arn: fx.old_task_definition.clone(),
            },
        )
        .await
        .unwrap();
    let RolloutOutcome::RolledBackByUs {
        reason, evidence, ..
    } = &report.outcome
    else {
        panic!("expected RolledBackByUs, got {:#?}", report.outcome);
    };
    assert!(
        matches!(reason, FailureReason::DeterministicStartFailure { .. }),
        "{reason:?}"
    );
    assert_eq!(evidence.polls, 1, "{evidence:#?}");
}

/// Timeline: a service of 150 tasks, its new tasks PENDING for 6 minutes
/// while the 150 old ones keep running. The once-a-minute inspection lists
/// the running tasks our deployment started (`ListTasks` by `startedBy`),
/// not the service's 300: two pages and two `DescribeTasks` of 100 each
/// time, not three.
#[tokio::test]
async fn inspections_read_only_the_tasks_our_deployment_started() {
    let fx = Fixture::with_timings(
        150,
        DeploymentConfiguration::safe_rolling(),
        runner_spec(OLD_IMAGE),
        SimTimings {
            pending: Duration::from_secs(360),
            ..SimTimings::default()
        },
    );
    let report = fx.run(no_bake()).await;
    let RolloutOutcome::Succeeded { evidence } = &report.outcome else {
        panic!("expected Succeeded, got {:#?}", report.outcome);
    };
    let inspections = evidence.total_duration.as_secs() / 60 + 1;
    let described = calls(&fx, "DescribeTasks");
    assert!(
        described <= 2 * inspections + 2,
        "{described} DescribeTasks in {inspections} inspections: {:?}",
        fx.sim.calls()
    );
}
