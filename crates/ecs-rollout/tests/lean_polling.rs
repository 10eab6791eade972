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

use common::Fixture;
use ecs_rollout::{MonitorConfig, RolloutConfig, RolloutOutcome, VerdictSource};
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
    for api in [true, false] {
        let fx = Fixture::safe(3);
        fx.sim.enable_service_deployments(api);
        let start = fx.clock.now();
        let report = fx.run(no_bake()).await;
        let RolloutOutcome::Succeeded { evidence } = &report.outcome else {
            panic!("api {api}: expected Succeeded, got {:#?}", report.outcome);
        };
        let service = fx.sim.peek_service("runners", "runner").unwrap();
        let completed = service
            .events
            .iter()
            .find(|e| {
                e.message.contains(&evidence.deployment_id)
                    && e.message.contains("deployment completed")
            })
            .and_then(|e| e.created_at)
            .expect("ECS completed our deployment");
        let settled = (completed - start).to_std().unwrap();
        let verdict = evidence.total_duration;
        let poll_min = MonitorConfig::default().poll_min;
        assert!(
            verdict >= settled && verdict - settled <= poll_min,
            "api {api}: ECS completed at {settled:?}, verdict at {verdict:?}"
        );
    }
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
