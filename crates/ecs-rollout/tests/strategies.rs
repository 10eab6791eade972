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
//! and SUCCESSFUL at the end. Traffic shifting and lifecycle hooks are not
//! modelled.

mod common;

use std::time::Duration;

use common::*;
use ecs_rollout::{
    Error, ImageBehaviour, ProgressEvent, RolloutConfig, RolloutOutcome, VerdictSource,
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
        rollback, evidence, ..
    } = &report.outcome
    else {
        panic!("expected RolledBackByEcs, got {:#?}", report.outcome);
    };
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
