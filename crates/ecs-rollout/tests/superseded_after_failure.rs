//! Our deployment failed, then someone else's deployment (not a rollback)
//! became PRIMARY: `SupersededAfterFailure`, a failure of the version
//! (quarantined, never retried) that we do not roll back (a rollback would
//! undo their deployment). Before, the first timeline below was reported
//! `Superseded` (the failed version would be retried) and the second rolled
//! the operator's deployment back.
//!
//! Simulated: ECS itself (`SimulatedEcs`, an auto-advancing manual clock)
//! and an operator's `UpdateService` (`schedule_operator_update`); nothing
//! else.

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use common::{Fixture, request, runner_spec};
use ecs_rollout::{
    EcsApi, FailureReason, ImageBehaviour, MonitorConfig, ProgressEvent, ProgressSink, Rollout,
    RolloutConfig, RolloutOutcome, SimTimings, UpdateServiceRequest,
};

const THEIR_IMAGE: &str = "registry.example.com:5000/team/runner:20250103.1";

fn calls(fx: &Fixture, op: &str) -> u64 {
    fx.sim.calls().get(op).copied().unwrap_or(0)
}

/// Their revision of the runner (healthy), registered before our run.
async fn their_revision(fx: &Fixture) -> String {
    fx.sim
        .register_task_definition(&runner_spec(THEIR_IMAGE))
        .await
        .unwrap()
        .arn
}

fn their_update(task_definition: &str) -> UpdateServiceRequest {
    UpdateServiceRequest {
        cluster: "runners".into(),
        service: "runner".into(),
        task_definition: task_definition.to_owned(),
        ..Default::default()
    }
}

/// The outcome must be `SupersededAfterFailure` by their deployment, which
/// the service runs; the version is quarantined; we rolled nothing back.
fn assert_superseded_after_failure(fx: &Fixture, outcome: &RolloutOutcome, theirs: &str) {
    let RolloutOutcome::SupersededAfterFailure {
        by_deployment_id,
        task_definition_arn,
        ..
    } = outcome
    else {
        panic!("expected SupersededAfterFailure, got {outcome:#?}");
    };
    assert_eq!(task_definition_arn, theirs);
    let service = fx.sim.peek_service("runners", "runner").unwrap();
    assert_eq!(service.primary().unwrap().task_definition_arn, theirs);
    assert!(
        service
            .deployments
            .iter()
            .any(|d| d.id == *by_deployment_id),
        "{by_deployment_id} is their deployment: {service:#?}"
    );
    assert!(outcome.is_version_failure());
    assert_eq!(outcome.kind(), "superseded_after_failure");
    assert_eq!(calls(fx, "UpdateService"), 1, "only ours: no rollback");
    assert_eq!(calls(fx, "StopServiceDeployment"), 0);
}

/// Timeline: the breaker trips on our crash-looping deployment and ECS's
/// rollback completes between two of our polls (600 s apart); before the
/// next poll an operator deploys their revision. That poll sees their
/// PRIMARY, ours gone, and ECS's "(deployment ours) deployment failed"
/// event: the version failed, whatever runs now.
///
/// Kills `rollback_like` → `true` in `monitor.rs` (their deployment taken
/// for ECS's rollback).
#[tokio::test]
async fn an_operator_deploying_after_ecs_failed_ours_does_not_clear_the_version() {
    let fx = Fixture::with_timings(
        1,
        ecs_rollout::DeploymentConfiguration::safe_rolling(),
        runner_spec(common::OLD_IMAGE),
        SimTimings {
            pending: Duration::from_secs(1),
            pending_jitter: Duration::ZERO,
            crash_after: Duration::from_secs(1),
            drained_deployment_linger: Duration::ZERO,
            ..SimTimings::default()
        },
    );
    let theirs = their_revision(&fx).await;
    fx.new_image_behaves(ImageBehaviour::CrashLoop);
    fx.sim
        .schedule_operator_update(Duration::from_secs(300), their_update(&theirs));
    let config = RolloutConfig {
        monitor: MonitorConfig {
            timeout: Duration::from_secs(3600),
            poll_min: Duration::from_secs(600),
            poll_max: Duration::from_secs(600),
            ..MonitorConfig::default()
        },
        ..RolloutConfig::default()
    };
    let report = fx.run(config).await;

    assert_superseded_after_failure(&fx, &report.outcome, &theirs);
    let RolloutOutcome::SupersededAfterFailure { reason, .. } = &report.outcome else {
        unreachable!()
    };
    assert!(
        matches!(reason, FailureReason::CircuitBreaker { .. }),
        "{reason:?}"
    );
    assert!(report.quarantine.is_some());
    // The timeline: ECS did report our deployment failed.
    let service = fx.sim.peek_service("runners", "runner").unwrap();
    assert!(
        service
            .events
            .iter()
            .any(|e| e.message.contains("deployment failed")),
        "{:#?}",
        service.events
    );
}

/// Deploys their revision as soon as we start waiting for ECS's rollback.
#[derive(Debug)]
struct DeploysWhileWeWait {
    sim: Arc<ecs_rollout::SimulatedEcs>,
    theirs: String,
    done: AtomicBool,
}

impl ProgressSink for DeploysWhileWeWait {
    fn emit(&self, event: &ProgressEvent) {
        if matches!(event, ProgressEvent::AwaitingEcsRollback { .. })
            && !self.done.swap(true, Ordering::SeqCst)
        {
            self.sim
                .schedule_operator_update(Duration::ZERO, their_update(&self.theirs));
        }
    }
}

/// Timeline: our tasks fail to pull, we fail fast and wait for ECS's own
/// rollback (never racing it); meanwhile an operator deploys their
/// revision, so ours is no longer PRIMARY and ECS's breaker never rolls it
/// back. We must neither wait for a rollback that will not come and then
/// roll back over their deployment, nor call the version anything but
/// failed. With and without the ServiceDeployment API.
///
/// Kills, in `await_ecs_rollback`, `p.id != ours && rollback_like(p)` →
/// `||` and `rollback_like` → `true` (their deployment taken for ECS's
/// rollback).
#[tokio::test]
async fn an_operator_deploying_while_we_wait_for_ecs_rollback_is_not_rolled_back() {
    for api in [true, false] {
        // The three tasks fail over two minutes: we fail fast on the first,
        // the breaker would trip on the third.
        let fx = Fixture::with_timings(
            3,
            ecs_rollout::DeploymentConfiguration::safe_rolling(),
            runner_spec(common::OLD_IMAGE),
            SimTimings {
                pending_jitter: Duration::from_secs(120),
                ..SimTimings::default()
            },
        );
        fx.sim.enable_service_deployments(api);
        let theirs = their_revision(&fx).await;
        fx.new_image_behaves(ImageBehaviour::PullError);
        let sink = Arc::new(DeploysWhileWeWait {
            sim: fx.sim.clone(),
            theirs: theirs.clone(),
            done: AtomicBool::new(false),
        });
        let report = Rollout::new(fx.sim.clone(), fx.clock.clone(), RolloutConfig::default())
            .unwrap()
            .with_progress(sink.clone())
            .run(&fx.target, &request())
            .await
            .unwrap();

        assert!(
            sink.done.load(Ordering::SeqCst),
            "api {api}: we waited: {:#?}",
            report.outcome
        );
        assert_superseded_after_failure(&fx, &report.outcome, &theirs);
        let RolloutOutcome::SupersededAfterFailure { reason, .. } = &report.outcome else {
            unreachable!()
        };
        assert!(
            matches!(reason, FailureReason::DeterministicStartFailure { .. }),
            "api {api}: {reason:?}"
        );
        assert!(report.quarantine.is_some(), "api {api}");
    }
}
