//! The whole update cycle on the simulator: success across two targets,
//! a failed release rolled back and quarantined then skipped, a failure of
//! the second target rolling the first one back, blocked on
//! infrastructure, a manual rollback respected, nothing to do.

mod common;

use common::*;
use ecs_rollout::{EcsApi, ImageBehaviour};
use runner_updater::{CycleOutcome, QuarantineStore};
use update_policy::SkipReason;

#[tokio::test]
async fn a_good_release_updates_both_targets_in_order() {
    let fx = Fixture::new();
    fx.publish(release("20250102.1", "02", "7"));
    let updater = fx.updater("host-a");
    let report = updater.run_once().await.unwrap();
    assert_eq!(
        report.outcome,
        CycleOutcome::Succeeded,
        "{}",
        report.summary()
    );
    assert_eq!(report.targets.len(), 2);
    assert!(
        report.targets.iter().all(|t| t.outcome_kind == "succeeded"),
        "{:?}",
        report.targets
    );
    assert_eq!(
        fx.primary_image("runner").await,
        runner_image("20250102.1", "02")
    );
    assert_eq!(
        fx.primary_image("proxy").await,
        proxy_image("20250102.1", "02")
    );
    assert!(report.fencing_token.is_some());
    // Locked, then per target: registering, registered, service_updated,
    // (outcome re-write); then succeeded, done.
    assert_eq!(
        report.journalled.first().map(String::as_str),
        Some("locked")
    );
    assert_eq!(report.journalled.last().map(String::as_str), Some("done"));
    for step in ["registering", "registered", "service_updated", "succeeded"] {
        assert!(
            report.journalled.iter().any(|s| s == step),
            "{step} missing: {:?}",
            report.journalled
        );
    }
    let (record, _) = fx.quarantine.load(RUNNER_KEY).await.unwrap();
    assert_eq!(
        record.highest_successful_version.unwrap().to_string(),
        "20250102.1"
    );
    assert_eq!(record.last_outcome.unwrap().outcome, "succeeded");
    // The journal is closed and the lock released.
    let entry = fx.journal_entry().await;
    assert!(entry.is_finished());
    let lock = fx.lock().inspect(RUNNER_KEY).await.unwrap().unwrap();
    assert!(lock.holder.is_none());

    // The next cycle has nothing to do.
    let again = updater.run_once().await.unwrap();
    assert_eq!(again.outcome, CycleOutcome::Skipped);
    assert!(
        again
            .decision
            .unwrap()
            .reasons()
            .iter()
            .any(|r| matches!(r, SkipReason::NotNewer { .. }))
    );
    assert_eq!(fx.calls("RegisterTaskDefinition"), 2);
}

#[tokio::test]
async fn a_crash_looping_release_is_rolled_back_quarantined_and_then_skipped() {
    let fx = Fixture::new();
    let bad = release("20250103.1", "03", "7");
    fx.script(&runner_image("20250103.1", "03"), ImageBehaviour::CrashLoop);
    fx.publish(bad);
    let updater = fx.updater("host-a");
    let report = updater.run_once().await.unwrap();
    assert!(
        matches!(report.outcome, CycleOutcome::RolledBack { .. }),
        "{}",
        report.summary()
    );
    assert!(report.quarantined);
    assert_eq!(report.targets[0].outcome_kind, "rolled_back_by_ecs");
    // The proxy target was never reached: the fleet is not mixed.
    assert_eq!(report.targets.len(), 1);
    assert_eq!(
        fx.primary_image("runner").await,
        runner_image("20250101.1", "01")
    );
    assert_eq!(
        fx.primary_image("proxy").await,
        proxy_image("20250101.1", "01")
    );
    let (record, _) = fx.quarantine.load(RUNNER_KEY).await.unwrap();
    assert_eq!(record.quarantine.len(), 1);
    assert_eq!(record.quarantine[0].version.to_string(), "20250103.1");
    assert_eq!(record.quarantine[0].attempts, 1);

    let registered = fx.calls("RegisterTaskDefinition");
    let next = updater.run_once().await.unwrap();
    assert_eq!(next.outcome, CycleOutcome::Skipped);
    let decision = next.decision.unwrap();
    assert!(
        decision
            .reasons()
            .iter()
            .any(|r| matches!(r, SkipReason::Quarantined { .. })),
        "{decision}"
    );
    assert_eq!(
        fx.calls("RegisterTaskDefinition"),
        registered,
        "a quarantined version is not retried"
    );
}

#[tokio::test]
async fn a_failure_of_the_second_target_rolls_the_first_back() {
    let fx = Fixture::new();
    fx.script(&proxy_image("20250104.1", "04"), ImageBehaviour::PullError);
    fx.publish(release("20250104.1", "04", "7"));
    let updater = fx.updater("host-a");
    let report = updater.run_once().await.unwrap();
    assert!(
        matches!(report.outcome, CycleOutcome::RolledBack { .. }),
        "{}",
        report.summary()
    );
    assert_eq!(report.targets.len(), 2);
    assert_eq!(report.targets[0].outcome_kind, "succeeded");
    assert_eq!(report.targets[0].reverted, Some(true));
    assert_ne!(report.targets[1].outcome_kind, "succeeded");
    // Both services are back on the old release: never a mixed fleet.
    assert_eq!(
        fx.primary_image("runner").await,
        runner_image("20250101.1", "01")
    );
    assert_eq!(
        fx.primary_image("proxy").await,
        proxy_image("20250101.1", "01")
    );
    assert!(report.journalled.iter().any(|s| s == "rolling_back"));
    let (record, _) = fx.quarantine.load(RUNNER_KEY).await.unwrap();
    assert_eq!(record.quarantine.len(), 1);
}

#[tokio::test]
async fn a_release_needing_new_infrastructure_is_blocked_with_its_template() {
    let fx = Fixture::new();
    fx.publish(release("20250105.1", "05", "8"));
    let report = fx.updater("host-a").run_once().await.unwrap();
    match &report.outcome {
        CycleOutcome::Blocked {
            required,
            running,
            template_url,
        } => {
            assert_eq!(required, "8");
            assert_eq!(running, "7");
            assert_eq!(
                template_url,
                "https://s3.amazonaws.com/releases/8/runner.json"
            );
        }
        other => panic!("expected Blocked, got {other:?}"),
    }
    assert!(report.summary().contains("apply the template"));
    assert_eq!(fx.mutations(), 0, "a blocked release touches nothing");
    assert!(
        fx.lock().inspect(RUNNER_KEY).await.unwrap().is_none(),
        "no lock taken"
    );
}

#[tokio::test]
async fn an_operators_manual_rollback_is_held() {
    let fx = Fixture::new();
    fx.publish(release("20250102.1", "02", "7"));
    let updater = fx.updater("host-a");
    assert_eq!(
        updater.run_once().await.unwrap().outcome,
        CycleOutcome::Succeeded
    );
    // The operator rolls the runner back by hand.
    use ecs_rollout::{EcsApi, UpdateServiceRequest};
    fx.sim
        .update_service(&UpdateServiceRequest {
            cluster: "runners".into(),
            service: "runner".into(),
            task_definition: fx.runner_td.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    fx.clock.advance(std::time::Duration::from_secs(600));
    let _ = fx.sim.describe_service("runners", "runner").await.unwrap();
    let before = fx.mutations();
    let report = updater.run_once().await.unwrap();
    assert_eq!(
        report.outcome,
        CycleOutcome::Skipped,
        "{}",
        report.summary()
    );
    assert!(
        report
            .decision
            .unwrap()
            .reasons()
            .iter()
            .any(|r| matches!(r, SkipReason::HeldAfterManualRollback { .. })),
    );
    assert_eq!(fx.mutations(), before, "the manual rollback is not undone");
}

#[tokio::test]
async fn two_cycles_of_one_updater_never_overlap() {
    let fx = Fixture::new();
    fx.publish(release("20250102.1", "02", "7"));
    let updater = fx.updater("host-a");
    let (a, b) = tokio::join!(updater.run_once(), updater.run_once());
    let results = [a, b];
    assert_eq!(
        results
            .iter()
            .filter(|r| matches!(r, Err(runner_updater::Error::CycleInProgress)))
            .count(),
        1
    );
    assert_eq!(fx.calls("RegisterTaskDefinition"), 2);
}

#[tokio::test]
async fn the_builder_names_the_invalid_key() {
    let fx = Fixture::new();
    let mut config = Fixture::config("host-a");
    config.targets.clear();
    let err = runner_updater::Updater::builder()
        .source(fx.source.clone())
        .lock(fx.lock())
        .journal(std::sync::Arc::new(fx.journal.clone()))
        .quarantine(std::sync::Arc::new(fx.quarantine.clone()))
        .ecs(fx.sim.clone())
        .infra(runner_updater::InfraVersionSource::Fixed("7".into()))
        .clock(fx.clock.clone())
        .config(config)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("targets"), "{err}");
    let mut config = Fixture::config("host-a");
    config.step_budget = std::time::Duration::from_secs(400);
    let err = fx.updater_result(config).unwrap_err();
    assert!(err.to_string().contains("lock.step_budget_secs"), "{err}");
}

#[tokio::test]
async fn a_service_with_no_tasks_is_deployed_but_never_counted_as_a_success() {
    let fx = Fixture::with_desired(0);
    fx.publish(release("20250102.1", "02", "7"));
    let report = fx.updater("host-a").run_once().await.unwrap();
    assert!(
        matches!(report.outcome, CycleOutcome::DeployedUnverified { .. }),
        "{}",
        report.summary()
    );
    assert!(!report.quarantined);
    assert_eq!(
        report.targets.len(),
        1,
        "the proxy is not updated on an unverified runner"
    );
    let (record, _) = fx.quarantine.load(RUNNER_KEY).await.unwrap();
    assert!(record.highest_successful_version.is_none());
    assert!(record.quarantine.is_empty());
    assert!(fx.journal_entry().await.is_finished());
}

#[tokio::test]
async fn losing_sight_of_the_deployment_is_resumed_not_quarantined() {
    let fx = Fixture::new();
    fx.publish(release("20250102.1", "02", "7"));
    // Every ECS read fails for two hours after the runner's UpdateService:
    // longer than the monitor's 30-minute timeout.
    fx.sim.fail_reads_after_next_update(
        std::time::Duration::from_secs(7200),
        ecs_rollout::ErrorClass::Throttled,
    );
    let updater = fx.updater("host-a");
    let report = updater.run_once().await.unwrap();
    assert!(
        matches!(report.outcome, CycleOutcome::Interrupted { .. }),
        "{}",
        report.summary()
    );
    assert_eq!(report.targets[0].outcome_kind, "monitoring_lost");
    assert!(!report.quarantined);
    assert!(!fx.journal_entry().await.is_finished(), "kept for resume");

    // Later, ECS answers again: the next cycle resumes watching the same
    // deployment and finishes the release; nothing is deployed twice.
    fx.clock.advance(std::time::Duration::from_secs(7200));
    let report = updater.run_once().await.unwrap();
    assert!(report.resumed);
    assert_eq!(
        report.outcome,
        CycleOutcome::Succeeded,
        "{}",
        report.summary()
    );
    assert_eq!(fx.calls("UpdateService"), 2);
    let (record, _) = fx.quarantine.load(RUNNER_KEY).await.unwrap();
    assert!(record.quarantine.is_empty());
}

#[tokio::test]
async fn an_idle_check_reads_the_task_definition_only_when_the_primary_changed() {
    // Nothing to do: the release is what runs. The first check reads the
    // service and its task definition; the next ones only the service.
    let fx = Fixture::new();
    fx.publish(release("20250101.1", "01", "7"));
    let updater = fx.updater("host-a");
    let first = updater.check().await.unwrap();
    assert!(!first.decision.is_update(), "{}", first.decision);
    let (services, tds) = (
        fx.calls("DescribeServices"),
        fx.calls("DescribeTaskDefinition"),
    );
    for _ in 0..3 {
        updater.check().await.unwrap();
    }
    assert_eq!(fx.calls("DescribeServices"), services + 3);
    assert_eq!(
        fx.calls("DescribeTaskDefinition"),
        tds,
        "revisions are immutable"
    );
    // Someone deploys another revision: the next check reads and reports it.
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
    fx.operator_deploys("runner", &hotfix.arn).await;
    let running = updater.running().await.unwrap();
    assert_eq!(running.task_definition_arn, hotfix.arn);
    assert_eq!(running.image, runner_image("20250101.2", "0f"));
    assert_eq!(fx.calls("DescribeTaskDefinition"), tds + 1);
}
