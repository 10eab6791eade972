//! `Rollout::revert`: undoing a deployment that *succeeded* (the
//! orchestrator's move when a later service of the same release fails).
//!
//! Simulated: ECS itself (`SimulatedEcs`, an auto-advancing manual clock),
//! including a refused `UpdateService` and API latency; nothing else.

mod common;

use std::time::Duration;

use common::Fixture;
use ecs_rollout::{EcsApi, ErrorClass, RollbackEvidence, RolloutConfig, UpdateServiceRequest};

/// A rollout of the new runner to a healthy two-task service, succeeded;
/// returns the fixture and the new revision.
async fn rolled_out() -> (Fixture, String) {
    let fx = Fixture::safe(2);
    let report = fx.run(RolloutConfig::default()).await;
    assert!(report.outcome.is_success(), "{:#?}", report.outcome);
    let new = fx
        .sim
        .peek_service("runners", "runner")
        .unwrap()
        .task_definition_arn;
    assert_ne!(new, fx.old_task_definition);
    (fx, new)
}

/// `Rollout::revert` of `new` back to the fixture's old revision.
async fn revert(fx: &Fixture, new: &str) -> RollbackEvidence {
    fx.rollout(RolloutConfig::default())
        .revert(
            &fx.target,
            &fx.old_task_definition,
            new,
            "a later service failed",
        )
        .await
        .unwrap()
}

fn update_service_calls(fx: &Fixture) -> u64 {
    fx.sim
        .calls()
        .get("UpdateService")
        .copied()
        .unwrap_or_default()
}

/// Timeline: the new revision runs, COMPLETED; the revert must deploy the
/// previous revision again (one `UpdateService`) and watch that deployment
/// to the end. Never "revert" by watching the deployment that is to be
/// undone (the mutant `==` → `!=` in `revert`'s PRIMARY check, which
/// reports a completed revert while the new revision keeps running).
#[tokio::test]
async fn revert_of_a_succeeded_deployment_deploys_the_previous_revision_again() {
    let (fx, new) = rolled_out().await;
    let before = update_service_calls(&fx);

    let evidence = revert(&fx, &new).await;

    assert!(evidence.completed, "{evidence:#?}");
    assert_eq!(evidence.task_definition_arn, fx.old_task_definition);
    assert_eq!(
        update_service_calls(&fx),
        before + 1,
        "one UpdateService back"
    );
    let service = fx.sim.peek_service("runners", "runner").unwrap();
    let primary = service.primary().unwrap();
    assert_eq!(primary.task_definition_arn, fx.old_task_definition);
    assert_eq!(evidence.deployment_id.as_deref(), Some(primary.id.as_str()));
    assert_eq!(service.running_count, 2);
}

/// Timeline: a revert died after its `UpdateService` landed; run again, it
/// finds the PRIMARY deployment already on the previous revision, watches
/// that one and starts no other (a second `UpdateService` would be a
/// needless deployment; the mutant `==` → `!=` in `revert` starts one).
#[tokio::test]
async fn a_resumed_revert_whose_update_landed_watches_that_deployment() {
    let (fx, new) = rolled_out().await;
    let landed = fx
        .sim
        .update_service(&UpdateServiceRequest {
            cluster: "runners".into(),
            service: "runner".into(),
            task_definition: fx.old_task_definition.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    let before = update_service_calls(&fx);

    let evidence = revert(&fx, &new).await;

    assert!(evidence.completed, "{evidence:#?}");
    assert_eq!(
        evidence.deployment_id.as_deref(),
        Some(landed.deployment_id.as_str())
    );
    assert_eq!(update_service_calls(&fx), before, "no second UpdateService");
}

/// Timeline: ECS refuses the revert's `UpdateService` (a permanent error,
/// e.g. the role lost `ecs:UpdateService`), each call taking 250 ms. The
/// evidence says the revert did not happen, why, and how long the refused
/// call took, counted from the clock's value before it (the mutant `-` →
/// `+` in that duration adds the clock's whole reading).
#[tokio::test]
async fn a_refused_revert_says_why_and_how_long_the_refused_call_took() {
    let (fx, new) = rolled_out().await;
    fx.sim.set_latency(Duration::from_millis(250));
    fx.sim.schedule_operation_outage(
        Duration::ZERO,
        Duration::from_secs(3600),
        "UpdateService",
        ErrorClass::Permanent,
    );

    let evidence = revert(&fx, &new).await;

    assert!(!evidence.completed);
    assert_eq!(evidence.deployment_id, None);
    let failure = evidence.failure.as_deref().unwrap_or_default();
    assert!(failure.starts_with("UpdateService failed"), "{failure}");
    assert_eq!(evidence.duration, Duration::from_millis(250));
    let service = fx.sim.peek_service("runners", "runner").unwrap();
    assert_eq!(service.task_definition_arn, new, "nothing was changed");
}
