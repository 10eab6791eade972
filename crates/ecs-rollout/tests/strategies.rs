//! Blue/green, linear and canary deployments (ECS's 2025 strategies) are
//! judged by their service deployments, with the lifecycle stage in the
//! progress events, and the monitor's timeout extended by ECS's own bake
//! time: the engine never rolls back while ECS is still inside its own
//! process within the configured time. Without the ServiceDeployment API
//! such a service is refused before anything is registered (issue 10,
//! "Deployment controllers and strategies").
//!
//! Simulated (`SimulatedEcs::set_deployment_strategy`): the strategy and
//! `bakeTimeInMinutes` as `DescribeServices` reports them; the deployment
//! replaces tasks as a rolling one does, then stays IN_PROGRESS through
//! ECS's bake; its service deployment reports `SCALE_UP`, then `BAKE_TIME`,
//! and SUCCESSFUL at the end. Lifecycle hooks
//! (`SimulatedEcs::set_lifecycle_hooks`) run once the new tasks are up, one
//! after the other, each reported as the stage while it answers
//! IN_PROGRESS; one that answers FAILED makes ECS roll the deployment back.
//! Traffic itself is not modelled, nor stages before `SCALE_UP`.

mod common;

use std::time::Duration;

use common::*;
use ecs_rollout::{
    Error, ErrorClass, FailureReason, ImageBehaviour, LifecycleHook, ProgressEvent, RolloutConfig,
    RolloutOutcome, VerdictSource,
};

/// Longer than the monitor's default timeout (30 min).
const ECS_BAKE: Duration = Duration::from_secs(45 * 60);

fn staged(strategy: &str, service_deployments: bool) -> Fixture {
    let fx = Fixture::safe(2);
    fx.sim
        .set_deployment_strategy("runners", "runner", Some(strategy), ECS_BAKE)
        .unwrap();
    fx.sim.enable_service_deployments(service_deployments);
    fx
}

#[tokio::test]
async fn a_blue_green_deployment_succeeds_after_ecs_bake_beyond_our_timeout() {
    let fx = staged("BLUE_GREEN", true);
    let config = RolloutConfig::default();
    assert!(config.monitor.timeout < ECS_BAKE);
    let report = fx.run(config).await;
    let RolloutOutcome::Succeeded { evidence } = &report.outcome else {
        panic!("expected Succeeded, got {:#?}", report.outcome);
    };
    assert_eq!(evidence.decided_by, Some(VerdictSource::ServiceDeployment));
    assert!(evidence.deployment_duration >= ECS_BAKE, "{evidence:#?}");
    let stages: Vec<String> = fx
        .progress
        .events()
        .iter()
        .filter_map(|e| match e {
            ProgressEvent::LifecycleStage { stage, .. } => Some(stage.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(stages, ["SCALE_UP", "BAKE_TIME"]);
    // Read on every poll for 45 minutes, recorded (and announced) once.
    let recorded = fx
        .progress
        .events()
        .iter()
        .filter(|e| matches!(e, ProgressEvent::ServiceDeploymentRecorded { .. }))
        .count();
    assert_eq!(recorded, 1);
}

/// Timeline: `DescribeServiceDeployments` fails (a 503 storm on that
/// endpoint alone) from before ECS completes a blue/green deployment until
/// ten minutes later, while `DescribeServices` already shows the deployment
/// COMPLETED. A staged deployment is judged by its service deployment only:
/// the watch waits the outage out and succeeds on the service deployment's
/// SUCCESSFUL, never on `DescribeServices`' COMPLETED alone (which, for a
/// staged deployment, may come before ECS's last word).
#[tokio::test]
async fn a_blue_green_deployment_completes_on_its_service_deployment_only() {
    let fx = staged("BLUE_GREEN", true);
    // ECS completes the deployment its 45-minute bake after the new tasks
    // settled, so after ECS_BAKE: the outage covers that moment.
    let outage = Duration::from_secs(10 * 60);
    fx.sim.schedule_operation_outage(
        ECS_BAKE,
        outage,
        "DescribeServiceDeployments",
        ErrorClass::Transient,
    );
    let mut config = RolloutConfig::default();
    config.monitor.bake_time = Duration::ZERO;
    let report = fx.run(config).await;
    let RolloutOutcome::Succeeded { evidence } = &report.outcome else {
        panic!("expected Succeeded, got {:#?}", report.outcome);
    };
    assert_eq!(evidence.decided_by, Some(VerdictSource::ServiceDeployment));
    assert!(
        evidence.deployment_duration >= ECS_BAKE + outage,
        "{evidence:#?}"
    );
    let service = fx.sim.peek_service("runners", "runner").unwrap();
    assert_eq!(
        service.primary().unwrap().rollout_state,
        Some(ecs_rollout::RolloutState::Completed)
    );
}

#[tokio::test]
async fn without_the_service_deployment_api_a_canary_service_is_refused() {
    for strategy in ["BLUE_GREEN", "LINEAR", "CANARY"] {
        let fx = staged(strategy, false);
        let error = fx.run_err(RolloutConfig::default()).await;
        assert!(
            matches!(&error, Error::NeedsServiceDeployments { because, .. } if because.contains(strategy)),
            "{error:?}"
        );
        assert!(fx.sim.peek_task_definition("gitpod-runner:2").is_err());
    }
}

#[tokio::test]
async fn a_crashing_version_of_a_linear_service_is_rolled_back_by_ecs() {
    let fx = staged("LINEAR", true);
    fx.new_image_behaves(ImageBehaviour::CrashLoop);
    let report = fx.run(RolloutConfig::default()).await;
    let RolloutOutcome::RolledBackByEcs {
        reason,
        rollback,
        evidence,
    } = &report.outcome
    else {
        panic!("expected RolledBackByEcs, got {:#?}", report.outcome);
    };
    // Its tasks failed while they started (`SCALE_UP`, no hook runs
    // there): the circuit breaker's failure, not a lifecycle hook's.
    assert!(
        matches!(reason, FailureReason::CircuitBreaker { .. }),
        "{reason:?}"
    );
    assert!(rollback.completed, "{rollback:?}");
    assert_eq!(evidence.decided_by, Some(VerdictSource::ServiceDeployment));
    let service = fx.sim.peek_service("runners", "runner").unwrap();
    assert_eq!(service.task_definition_arn, fx.old_task_definition);
}

#[tokio::test]
async fn an_explicit_rolling_strategy_is_a_rolling_update() {
    // ROLLING needs no service deployments, and ECS's bake time does not
    // apply to it.
    let fx = staged("ROLLING", false);
    let report = fx.run(RolloutConfig::default()).await;
    let RolloutOutcome::Succeeded { evidence } = &report.outcome else {
        panic!("expected Succeeded, got {:#?}", report.outcome);
    };
    assert!(evidence.deployment_duration < Duration::from_secs(10 * 60));
    assert_eq!(evidence.decided_by, Some(VerdictSource::DescribeServices));
}

fn stages(fx: &Fixture) -> Vec<String> {
    fx.progress
        .events()
        .iter()
        .filter_map(|e| match e {
            ProgressEvent::LifecycleStage { stage, .. } => Some(stage.clone()),
            _ => None,
        })
        .collect()
}

/// Timeline: a blue/green deployment whose test-traffic hook (a Lambda
/// running integration tests) answers IN_PROGRESS for 40 minutes, longer
/// than the monitor's 30-minute timeout, then SUCCEEDED; then ECS's own
/// 45-minute bake. ECS is inside its own process the whole time: the watch
/// waits it out (its timeout extended by the hooks' wait and ECS's bake)
/// and succeeds, instead of timing out and rolling back a healthy version.
#[tokio::test]
async fn a_long_lifecycle_hook_is_waited_for_not_timed_out() {
    let fx = staged("BLUE_GREEN", true);
    let hook = Duration::from_secs(40 * 60);
    fx.sim
        .set_lifecycle_hooks(
            "runners",
            "runner",
            vec![
                LifecycleHook {
                    stage: "POST_SCALE_UP",
                    holds: Duration::from_secs(60),
                    fails: false,
                },
                LifecycleHook {
                    stage: "TEST_TRAFFIC_SHIFT",
                    holds: hook,
                    fails: false,
                },
            ],
        )
        .unwrap();
    let config = RolloutConfig::default();
    assert!(config.monitor.timeout < hook);
    let report = fx.run(config).await;
    let RolloutOutcome::Succeeded { evidence } = &report.outcome else {
        panic!("expected Succeeded, got {:#?}", report.outcome);
    };
    assert!(
        evidence.deployment_duration >= hook + ECS_BAKE,
        "{evidence:#?}"
    );
    assert_eq!(
        stages(&fx),
        [
            "SCALE_UP",
            "POST_SCALE_UP",
            "TEST_TRAFFIC_SHIFT",
            "BAKE_TIME"
        ]
    );
}

/// Timeline: a hook that never answers anything but IN_PROGRESS. ECS's
/// process never ends; the watch does, once the hooks' wait has used up the
/// timeout a second time (plus ECS's bake): `TimedOut`, and our rollback.
#[tokio::test]
async fn a_hook_that_never_answers_still_ends_the_watch() {
    let fx = staged("CANARY", true);
    fx.sim
        .set_lifecycle_hooks(
            "runners",
            "runner",
            vec![LifecycleHook {
                stage: "PRODUCTION_TRAFFIC_SHIFT",
                holds: Duration::from_secs(24 * 3600),
                fails: false,
            }],
        )
        .unwrap();
    let config = RolloutConfig::default();
    let timeout = config.monitor.timeout;
    let report = fx.run(config).await;
    let RolloutOutcome::TimedOut {
        rollback, evidence, ..
    } = &report.outcome
    else {
        panic!("expected TimedOut, got {:#?}", report.outcome);
    };
    assert!(rollback.completed, "{rollback:?}");
    // The timeout, extended by ECS's bake and by the hook's wait (at most
    // the timeout again): about 2 × 30 + 45 minutes.
    let limit = 2 * timeout + ECS_BAKE;
    assert!(
        evidence.deployment_duration >= limit - Duration::from_secs(120)
            && evidence.deployment_duration <= limit + Duration::from_secs(60),
        "{:?}",
        evidence.deployment_duration
    );
}

/// Timeline: a canary deployment whose production-traffic hook (a Lambda
/// checking the canary's error rate) answers FAILED after 2 minutes. ECS
/// rolls the deployment back (it always does after a failed hook, whatever
/// the breaker says): `RolledBackByEcs`, the reason naming the hook's stage,
/// and we never start a rollback of our own.
#[tokio::test]
async fn a_failed_lifecycle_hook_is_rolled_back_by_ecs_and_named() {
    let fx = staged("CANARY", true);
    fx.sim
        .set_lifecycle_hooks(
            "runners",
            "runner",
            vec![LifecycleHook {
                stage: "PRODUCTION_TRAFFIC_SHIFT",
                holds: Duration::from_secs(120),
                fails: true,
            }],
        )
        .unwrap();
    let report = fx.run(RolloutConfig::default()).await;
    let RolloutOutcome::RolledBackByEcs {
        reason,
        rollback,
        evidence,
    } = &report.outcome
    else {
        panic!("expected RolledBackByEcs, got {:#?}", report.outcome);
    };
    let FailureReason::LifecycleHook {
        stage,
        rollout_state_reason,
    } = reason
    else {
        panic!("{reason:?}");
    };
    assert_eq!(stage, "PRODUCTION_TRAFFIC_SHIFT");
    assert!(
        rollout_state_reason
            .as_deref()
            .is_some_and(|r| r.contains("lifecycle hook")),
        "{rollout_state_reason:?}"
    );
    assert!(rollback.completed, "{rollback:?}");
    assert_eq!(evidence.decided_by, Some(VerdictSource::ServiceDeployment));
    assert!(report.quarantine.is_some());
    assert_eq!(fx.sim.calls().get("UpdateService").copied(), Some(1));
    assert_eq!(fx.sim.calls().get("StopServiceDeployment"), None);
    let service = fx.sim.peek_service("runners", "runner").unwrap();
    assert_eq!(service.task_definition_arn, fx.old_task_definition);
}
