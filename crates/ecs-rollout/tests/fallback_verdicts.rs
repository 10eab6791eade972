//! The `DescribeServices` verdict (no ServiceDeployment API, the simulator's
//! default) on timelines where the service's event log does not tell the
//! story: each test names the real ECS timeline and the mutant of
//! `monitor.rs` it kills (found by `scripts/mutants.sh --crate ecs-rollout`).
//!
//! Simulated: ECS itself (`SimulatedEcs` on an auto-advancing manual clock),
//! with a busy event log (`set_busy_events`) or an operator's update
//! scheduled at a fixed time; nothing else.

mod common;

use std::time::Duration;

use common::Fixture;
use ecs_rollout::{
    FailureReason, ImageBehaviour, RollbackInitiator, RolloutConfig, RolloutOutcome,
    UpdateServiceRequest,
};
use update_clock::Clock;

/// Timeline: the circuit breaker trips and ECS starts its rollback at once;
/// the poll sees the rollback deployment PRIMARY and ours ACTIVE with
/// `rolloutState` FAILED, but on a busy service (every task start is an
/// event) the "(deployment ours) deployment failed" event is no longer
/// among the 100 that `DescribeServices` returns. Ours seen FAILED is what
/// makes the new PRIMARY ECS's rollback, a failure of the version, and not
/// someone else's deployment (`Superseded`, which never quarantines).
///
/// Kills `st.seen_failed |= …` → `&=` in `Monitor::poll`.
#[tokio::test]
async fn a_failed_deployment_seen_failed_is_rolled_back_by_ecs_without_its_event() {
    let fx = Fixture::safe(2);
    fx.sim.set_busy_events(100);
    fx.new_image_behaves(ImageBehaviour::CrashLoop);
    let report = fx.run(RolloutConfig::default()).await;
    let RolloutOutcome::RolledBackByEcs {
        reason, rollback, ..
    } = &report.outcome
    else {
        panic!("expected RolledBackByEcs, got {:#?}", report.outcome);
    };
    assert!(
        matches!(reason, FailureReason::CircuitBreaker { .. }),
        "{reason:?}"
    );
    assert_eq!(rollback.initiator, RollbackInitiator::Ecs);
    assert_eq!(rollback.task_definition_arn, fx.old_task_definition);
    assert!(
        report.quarantine.is_some(),
        "the bad version is quarantined"
    );
    // The timeline really happened: no "deployment failed" event is left.
    let service = fx.sim.peek_service("runners", "runner").unwrap();
    assert!(
        service
            .events
            .iter()
            .all(|e| !e.message.contains("deployment failed")),
        "{:?}",
        service.events.iter().take(3).collect::<Vec<_>>()
    );
}

/// Timeline: while our deployment is still in progress (its tasks not yet
/// healthy, never FAILED), an operator rolls the service back by hand to
/// the revision it ran before. That deployment looks like a rollback (the
/// previous revision), but ECS did not fail ours: the verdict is
/// `Superseded`, nothing is quarantined, and the operator's deployment
/// stays (a manual rollback is never undone).
///
/// Kills `rolloutState == FAILED` → `!=` in `Monitor::poll` (which would
/// count ours failed for having been IN_PROGRESS).
#[tokio::test]
async fn an_operator_rolling_back_by_hand_supersedes_us_and_quarantines_nothing() {
    let fx = Fixture::safe(2);
    fx.new_image_behaves(ImageBehaviour::NeverHealthy);
    fx.sim.schedule_operator_update(
        Duration::from_secs(90),
        UpdateServiceRequest {
            cluster: "runners".into(),
            service: "runner".into(),
            task_definition: fx.old_task_definition.clone(),
            ..Default::default()
        },
    );
    let report = fx.run(RolloutConfig::default()).await;
    let RolloutOutcome::Superseded {
        task_definition_arn,
        by_deployment_id,
        evidence,
    } = &report.outcome
    else {
        panic!("expected Superseded, got {:#?}", report.outcome);
    };
    assert_eq!(task_definition_arn, &fx.old_task_definition);
    assert_ne!(by_deployment_id, &evidence.deployment_id);
    assert!(report.quarantine.is_none(), "{:?}", report.quarantine);
    let service = fx.sim.peek_service("runners", "runner").unwrap();
    let primary = service.primary().unwrap();
    assert_eq!(&primary.id, by_deployment_id);
    assert_eq!(primary.task_definition_arn, fx.old_task_definition);
}

/// Timeline: `DescribeServices` keeps answering from before our
/// `UpdateService` for 30 s (eventual consistency, seen lagging for tens of
/// seconds), longer than `FOREIGN_PRIMARY_POLLS` polls at `poll_min`. Until
/// our deployment has been listed once, the old PRIMARY is a stale read,
/// not someone else's deployment, for `UNSEEN_DEPLOYMENT_GRACE` after the
/// watch began: the healthy rollout succeeds. The updater has been running
/// for a while, so the watch does not begin at clock zero.
///
/// Kills `obs.duration < UNSEEN_DEPLOYMENT_GRACE` → `>` / `==` and
/// `now - start` → `now + start` in the monitor.
#[tokio::test]
async fn a_stale_window_longer_than_the_foreign_polls_is_not_superseded() {
    let fx = Fixture::safe(2);
    fx.clock.sleep(Duration::from_secs(600)).await;
    fx.sim.set_stale_reads(Duration::from_secs(30));
    let report = fx.run(RolloutConfig::default()).await;
    let RolloutOutcome::Succeeded { evidence } = &report.outcome else {
        panic!("expected Succeeded, got {:#?}", report.outcome);
    };
    let service = fx.sim.peek_service("runners", "runner").unwrap();
    assert_eq!(
        service.primary().unwrap().task_definition_arn,
        evidence.task_definition_arn
    );
    // The stale window really outlasted three polls.
    assert!(evidence.polls > 3, "{evidence:?}");
}
