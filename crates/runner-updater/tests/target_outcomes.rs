//! How each rollout outcome of the first target becomes the cycle's outcome
//! (`classify`): an operator's deployment during ours is `Superseded` (never
//! quarantined, never "interrupted" and resumed), unless ECS had failed ours
//! first (`SupersededAfterFailure`: quarantined); a rollback that fails too
//! is `RollbackFailed` (a person must look), never reported as a clean
//! `RolledBack`. Simulated: ECS (`SimulatedEcs`), the clock.

mod common;

use std::{sync::Arc, time::Duration};

use common::*;
use ecs_rollout::{EcsApi, ImageBehaviour, UpdateServiceRequest};
use runner_updater::{CycleOutcome, QuarantineStore};
use update_policy::SkipReason;

/// An operator deploys a hotfix of the runner (`20250101.2`) once `after`
/// has passed.
async fn operator_hotfix_at(fx: &Fixture, after: Duration) {
    let hotfix = fx
        .sim
        .register_task_definition(&spec(
            "runner",
            "runner",
            &runner_image("20250101.2", "0f"),
            "20250101.2",
        ))
        .await
        .unwrap();
    fx.sim.schedule_operator_update(
        after,
        UpdateServiceRequest {
            cluster: "runners".into(),
            service: "runner".into(),
            task_definition: hotfix.arn,
            ..Default::default()
        },
    );
}

#[tokio::test]
async fn an_operator_deploying_during_our_update_supersedes_it() {
    let fx = Fixture::new();
    let new_runner = runner_image("20250102.1", "02");
    fx.publish(release("20250102.1", "02", "7"));
    // Our tasks never get healthy, so the operator's hotfix lands first.
    fx.script(&new_runner, ImageBehaviour::NeverHealthy);
    operator_hotfix_at(&fx, Duration::from_secs(90)).await;
    let report = fx.updater("host-a").run_once().await.unwrap();
    assert!(
        matches!(report.outcome, CycleOutcome::Superseded { .. }),
        "{}",
        report.summary()
    );
    assert!(!report.quarantined, "{}", report.summary());
    let (record, _) = fx.quarantine.load(RUNNER_KEY).await.unwrap();
    assert!(record.quarantine.is_empty(), "{record:?}");
    // The operator's revision stays; we did not fight it.
    assert_eq!(
        fx.primary_image("runner").await,
        runner_image("20250101.2", "0f")
    );
    // Their deployment counts as a hold: the next check does not deploy the
    // release over it (found by the simulation campaign, tests/campaign.rs).
    let hold = record.hold.expect("a hold after being superseded");
    assert!(hold.reason.contains("20250102.1"), "{}", hold.reason);
    assert!(hold.reason.contains("hold clear"), "{}", hold.reason);
    let before = fx.mutations();
    fx.clock.advance(Duration::from_secs(600));
    let next = fx.updater("host-b").run_once().await.unwrap();
    assert_eq!(next.outcome, CycleOutcome::Skipped, "{}", next.summary());
    assert!(
        next.decision
            .unwrap()
            .reasons()
            .iter()
            .any(|r| matches!(r, SkipReason::Held { .. })),
    );
    assert_eq!(fx.mutations(), before, "nothing deployed over the operator");
}

/// Timeline: the new runner crash-loops; ECS's breaker rolls it back
/// between two of our polls (ten minutes apart), then an operator deploys a
/// hotfix before the next poll. The runner target is
/// `SupersededAfterFailure`: the release failed and is quarantined (never
/// retried), the later target is not updated, and the operator's hotfix
/// stays: nothing rolls it back.
#[tokio::test]
async fn a_release_ecs_failed_before_an_operator_deployed_is_quarantined() {
    let fx = Fixture::new();
    fx.publish(release("20250102.1", "02", "7"));
    fx.script(&runner_image("20250102.1", "02"), ImageBehaviour::CrashLoop);
    operator_hotfix_at(&fx, Duration::from_secs(400)).await;
    let mut config = Fixture::config("host-a");
    config.lease = update_lock::Lease::new(Duration::from_secs(7200))
        .unwrap()
        .without_heartbeat();
    config.rollout.monitor.poll_min = Duration::from_secs(600);
    config.rollout.monitor.poll_max = Duration::from_secs(600);
    config.rollout.monitor.timeout = Duration::from_secs(3600);
    let report = fx
        .updater_with("host-a", Arc::new(fx.journal.clone()), config)
        .run_once()
        .await
        .unwrap();

    assert_eq!(report.targets[0].outcome_kind, "superseded_after_failure");
    let CycleOutcome::RolledBack { reason } = &report.outcome else {
        panic!("expected RolledBack, got {}", report.summary());
    };
    assert!(reason.contains("then superseded by deployment"), "{reason}");
    assert!(report.quarantined, "{}", report.summary());
    let (record, _) = fx.quarantine.load(RUNNER_KEY).await.unwrap();
    assert!(!record.quarantine.is_empty(), "{record:?}");
    assert_eq!(
        fx.primary_image("runner").await,
        runner_image("20250101.2", "0f"),
        "the operator's hotfix stays"
    );
    assert_eq!(
        report.targets.len(),
        1,
        "the proxy is not updated: {}",
        report.summary()
    );
}

#[tokio::test]
async fn a_rollback_that_fails_too_is_rollback_failed_not_rolled_back() {
    let fx = Fixture::new();
    fx.publish(release("20250102.1", "02", "7"));
    fx.script(&runner_image("20250102.1", "02"), ImageBehaviour::CrashLoop);
    // The running image can no longer be pulled: there is no way back.
    fx.script(&runner_image("20250101.1", "01"), ImageBehaviour::PullError);
    let report = assert_rollback_failed(&fx).await;
    assert_eq!(report.targets[0].outcome_kind, "rollback_failed");
}

/// Runs a cycle that must end `RollbackFailed` (a target could not be
/// rolled back: a person must look), with the release quarantined.
async fn assert_rollback_failed(fx: &Fixture) -> runner_updater::CycleReport {
    let report = fx.updater("host-a").run_once().await.unwrap();
    assert!(
        matches!(report.outcome, CycleOutcome::RollbackFailed { .. }),
        "{}",
        report.summary()
    );
    assert!(report.quarantined, "{}", report.summary());
    report
}

#[tokio::test]
async fn an_operator_rollback_of_the_runner_while_the_proxy_is_watched_is_not_a_success() {
    // Timeline: the runner's deployment succeeds; while the proxy's is
    // watched, an operator rolls the runner back by hand. Every target's
    // own verdict is a success, but the release is not what runs: the
    // cycle is Superseded (and holds), never Succeeded.
    let fx = Fixture::new();
    fx.publish(release("20250102.1", "02", "7"));
    let old_runner = fx
        .sim
        .describe_service("runners", "runner")
        .await
        .unwrap()
        .primary()
        .unwrap()
        .task_definition_arn
        .clone();
    fx.sim.schedule_operator_update(
        Duration::from_secs(OPERATOR_AT_SECS),
        UpdateServiceRequest {
            cluster: "runners".into(),
            service: "runner".into(),
            task_definition: old_runner,
            ..Default::default()
        },
    );
    let report = fx.updater("host-a").run_once().await.unwrap();
    let CycleOutcome::Superseded { reason } = &report.outcome else {
        panic!("expected Superseded, got {}", report.summary());
    };
    assert!(
        reason.contains("replaced after this update deployed it"),
        "{reason}"
    );
    assert!(!report.quarantined, "{}", report.summary());
    assert_eq!(
        fx.primary_image("runner").await,
        runner_image("20250101.1", "01")
    );
    let (record, _) = fx.quarantine.load(RUNNER_KEY).await.unwrap();
    assert!(record.hold.is_some(), "{record:?}");
    assert!(record.quarantine.is_empty(), "{record:?}");
}

/// After the runner's verdict (its bake), before the proxy's.
const OPERATOR_AT_SECS: u64 = 130;

#[tokio::test]
async fn a_later_failure_does_not_roll_back_a_target_an_operator_replaced() {
    // Timeline: the runner's deployment succeeds; while the proxy's
    // (crash-looping) deployment is watched, an operator deploys a hotfix
    // to the runner. The proxy fails and is rolled back; the runner is not
    // rolled back to our previous revision over the operator's hotfix.
    let fx = Fixture::new();
    fx.publish(release("20250102.1", "02", "7"));
    fx.script(&proxy_image("20250102.1", "02"), ImageBehaviour::CrashLoop);
    let hotfix = fx
        .sim
        .register_task_definition(&spec(
            "runner",
            "runner",
            &runner_image("20250101.2", "0f"),
            "20250101.2",
        ))
        .await
        .unwrap();
    fx.sim.schedule_operator_update(
        Duration::from_secs(OPERATOR_AT_SECS),
        UpdateServiceRequest {
            cluster: "runners".into(),
            service: "runner".into(),
            task_definition: hotfix.arn.clone(),
            ..Default::default()
        },
    );
    let report = fx.updater("host-a").run_once().await.unwrap();
    assert!(report.quarantined, "{}", report.summary());
    assert_eq!(
        fx.primary_image("runner").await,
        runner_image("20250101.2", "0f"),
        "the operator's hotfix stays: {}",
        report.summary()
    );
}

#[tokio::test]
async fn a_failed_rollback_of_an_earlier_target_is_rollback_failed() {
    // Timeline: the runner's deployment succeeds; the proxy's crash-loops
    // and is rolled back; the runner's rollback to its previous revision
    // cannot pull that image. One target is left on the new release: a
    // person must look, so the cycle is `RollbackFailed`, never `RolledBack`.
    let fx = Fixture::new();
    fx.publish(release("20250102.1", "02", "7"));
    fx.script(&proxy_image("20250102.1", "02"), ImageBehaviour::CrashLoop);
    fx.script(&runner_image("20250101.1", "01"), ImageBehaviour::PullError);
    let report = assert_rollback_failed(&fx).await;
    assert_eq!(report.targets[1].outcome_kind, "rolled_back_by_ecs");
}
