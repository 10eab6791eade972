//! Services whose deployments report no `rolloutState` (ECS sends it only
//! for rolling updates not behind a Classic Load Balancer) are judged by
//! their service deployments, or refused before anything is registered;
//! never a 30-minute false `TimedOut` followed by rolling back a healthy
//! version (issue 10, "Monitoring that matches ECS").
//!
//! Simulated (`SimulatedEcs::set_rollout_state_absent`): `DescribeServices`
//! reports no `rolloutState` and no `rolloutStateReason`; ECS's deployments
//! still progress, trip the breaker and roll back, which the
//! ServiceDeployment API (`enable_service_deployments`) shows.

mod common;

use common::*;
use ecs_rollout::{
    Error, ImageBehaviour, RolloutConfig, RolloutOutcome, TaskDefinitionStatus, VerdictSource,
};

#[tokio::test]
async fn without_the_service_deployment_api_it_is_refused_before_anything_is_registered() {
    let fx = Fixture::safe(2);
    fx.sim.set_rollout_state_absent(true);
    let error = fx.run_err(RolloutConfig::default()).await;
    assert!(
        matches!(&error, Error::NeedsServiceDeployments { service, .. } if service == "runner"),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("ecs:DescribeServiceDeployments"),
        "{error}"
    );
    // Nothing registered, nothing deployed.
    assert!(
        fx.sim.peek_task_definition("gitpod-runner:2").is_err(),
        "a revision was registered"
    );
    let service = fx.sim.peek_service("runners", "runner").unwrap();
    assert_eq!(service.task_definition_arn, fx.old_task_definition);
    assert_eq!(service.deployments.len(), 1);
}

#[tokio::test]
async fn with_the_service_deployment_api_a_healthy_version_succeeds_by_its_status() {
    let fx = Fixture::safe(2);
    fx.sim.set_rollout_state_absent(true);
    fx.sim.enable_service_deployments(true);
    let report = fx.run(RolloutConfig::default()).await;
    let RolloutOutcome::Succeeded { evidence } = &report.outcome else {
        panic!("expected Succeeded, got {:#?}", report.outcome);
    };
    assert_eq!(evidence.decided_by, Some(VerdictSource::ServiceDeployment));
    assert_eq!(
        evidence.service_deployment_status.as_deref(),
        Some("SUCCESSFUL")
    );
    // Well inside the monitor's 30 minutes: no timeout.
    assert!(
        evidence.deployment_duration < RolloutConfig::default().monitor.timeout / 4,
        "{:?}",
        evidence.deployment_duration
    );
    let service = fx.sim.peek_service("runners", "runner").unwrap();
    assert_ne!(service.task_definition_arn, fx.old_task_definition);
}

#[tokio::test]
async fn with_the_service_deployment_api_a_crashing_version_is_rolled_back_by_ecs() {
    let fx = Fixture::safe(2);
    fx.sim.set_rollout_state_absent(true);
    fx.sim.enable_service_deployments(true);
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
    assert!(report.quarantine.is_some());
    let service = fx.sim.peek_service("runners", "runner").unwrap();
    assert_eq!(service.task_definition_arn, fx.old_task_definition);
    let failed = fx
        .sim
        .peek_task_definition(&evidence.task_definition_arn)
        .unwrap();
    assert_eq!(failed.status, TaskDefinitionStatus::Active);
}

#[tokio::test]
async fn our_own_rollback_of_a_service_without_rollout_state_is_watched_to_its_end() {
    // Breaker off and left off (Warn): ECS does not roll back, we do.
    let fx = Fixture::new(
        2,
        ecs_rollout::DeploymentConfiguration {
            circuit_breaker: None,
            ..ecs_rollout::DeploymentConfiguration::safe_rolling()
        },
    );
    fx.sim.set_rollout_state_absent(true);
    fx.sim.enable_service_deployments(true);
    fx.new_image_behaves(ImageBehaviour::CrashLoop);
    let config = RolloutConfig {
        deployment_configuration_policy: ecs_rollout::DeploymentConfigurationPolicy::Warn,
        ..Default::default()
    };
    let report = fx.run(config).await;
    let RolloutOutcome::RolledBackByUs { rollback, .. } = &report.outcome else {
        panic!("expected RolledBackByUs, got {:#?}", report.outcome);
    };
    assert!(rollback.completed, "{rollback:?}");
    let service = fx.sim.peek_service("runners", "runner").unwrap();
    assert_eq!(service.task_definition_arn, fx.old_task_definition);
}

/// When the probe of the service deployments fails for a reason that may
/// pass (every `ListServiceDeployments` throttled, beyond the retries),
/// the run stops before registering anything, but without claiming the API
/// is absent: the error is the throttling, to be retried later.
#[tokio::test]
async fn a_throttled_probe_is_not_taken_for_an_absent_api() {
    use ecs_rollout::simulated::{ApiCategory, BucketLimit, RateLimits};
    let fx = Fixture::safe(2);
    fx.sim.set_rollout_state_absent(true);
    fx.sim.enable_service_deployments(true);
    fx.sim.set_rate_limits(RateLimits::none().with(
        ApiCategory::ServiceDeployment,
        BucketLimit {
            burst: 0,
            refill_per_second: 0,
        },
    ));
    let error = fx.run_err(RolloutConfig::default()).await;
    assert!(
        !matches!(error, Error::NeedsServiceDeployments { .. }),
        "{error:?}"
    );
    assert_eq!(
        error.class(),
        Some(ecs_rollout::ErrorClass::Throttled),
        "{error:?}"
    );
    assert!(fx.sim.peek_task_definition("gitpod-runner:2").is_err());
}
