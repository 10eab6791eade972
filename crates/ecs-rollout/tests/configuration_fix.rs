//! The Fix policy keeps the service's configuration and changes only what
//! is unsafe, listing each change in the report (issue 10, "Keep the
//! service's configuration").
//!
//! Simulated (`SimulatedEcs`): the service's deployment configuration as
//! `DescribeServices` reports it, including the circuit breaker's
//! `resetOnHealthyTask` and `thresholdConfiguration`, which the simulated
//! breaker honours (a `COUNT` threshold of 1 trips it at the first failed
//! task).

mod common;

use common::*;
use ecs_rollout::{
    BreakerThreshold, CircuitBreaker, DeploymentConfiguration, FailureReason, ImageBehaviour,
    ProgressEvent, RolloutConfig, RolloutOutcome, ThresholdKind,
};

const COUNT_OF_ONE: Option<BreakerThreshold> = Some(BreakerThreshold {
    kind: ThresholdKind::Count,
    value: 1,
});

#[tokio::test]
async fn fix_enables_rollback_and_keeps_the_breakers_threshold_and_reset_setting() {
    let fx = Fixture::new(
        2,
        DeploymentConfiguration {
            minimum_healthy_percent: Some(100),
            maximum_percent: Some(200),
            circuit_breaker: Some(CircuitBreaker {
                enable: true,
                rollback: false,
                reset_on_healthy_task: Some(false),
                threshold: COUNT_OF_ONE,
            }),
        },
    );
    let report = fx.run(RolloutConfig::default()).await;
    let RolloutOutcome::Succeeded { evidence } = &report.outcome else {
        panic!("expected Succeeded, got {:#?}", report.outcome);
    };
    assert_eq!(
        evidence.configuration_changes,
        ["deploymentCircuitBreaker.rollback: false → true"]
    );
    let config = fx
        .sim
        .peek_service("runners", "runner")
        .unwrap()
        .deployment_configuration;
    assert_eq!(
        config.circuit_breaker,
        Some(CircuitBreaker {
            enable: true,
            rollback: true,
            reset_on_healthy_task: Some(false),
            threshold: COUNT_OF_ONE,
        })
    );
    assert!(fx.progress.events().iter().any(|e| matches!(
        e,
        ProgressEvent::DeploymentConfigurationFixed { changes, .. } if changes.len() == 1
    )));
}

#[tokio::test]
async fn fix_leaves_a_lower_maximum_percent_alone_unless_asked() {
    let lower = DeploymentConfiguration {
        maximum_percent: Some(150),
        ..DeploymentConfiguration::safe_rolling()
    };
    // Only maximumPercent is off: nothing is sent, the problem is reported.
    let fx = Fixture::new(2, lower);
    let report = fx.run(RolloutConfig::default()).await;
    let RolloutOutcome::Succeeded { evidence } = &report.outcome else {
        panic!("expected Succeeded, got {:#?}", report.outcome);
    };
    assert!(evidence.configuration_changes.is_empty());
    assert_eq!(evidence.configuration_problems.len(), 1);
    assert!(evidence.configuration_problems[0].contains("maximumPercent is 150"));
    let after = fx.sim.peek_service("runners", "runner").unwrap();
    assert_eq!(after.deployment_configuration, lower);
    assert!(
        fx.progress
            .events()
            .iter()
            .any(|e| matches!(e, ProgressEvent::DeploymentConfigurationWarning { .. }))
    );

    // Asked to: raised to 200, and said so.
    let fx = Fixture::new(2, lower);
    let report = fx
        .run(RolloutConfig {
            fix_maximum_percent: true,
            ..Default::default()
        })
        .await;
    let RolloutOutcome::Succeeded { evidence } = &report.outcome else {
        panic!("expected Succeeded, got {:#?}", report.outcome);
    };
    assert_eq!(
        evidence.configuration_changes,
        ["maximumPercent: 150 → 200"]
    );
    let after = fx.sim.peek_service("runners", "runner").unwrap();
    assert_eq!(after.deployment_configuration.maximum_percent, Some(200));
}

#[tokio::test]
async fn the_services_breaker_threshold_is_the_one_in_force() {
    // ECS trips the breaker at the first failed task (COUNT 1), and the
    // evidence reports that threshold, not the default formula's 3.
    let fx = Fixture::new(
        2,
        DeploymentConfiguration {
            circuit_breaker: Some(CircuitBreaker {
                threshold: COUNT_OF_ONE,
                ..CircuitBreaker::enabled_with_rollback()
            }),
            ..DeploymentConfiguration::safe_rolling()
        },
    );
    fx.new_image_behaves(ImageBehaviour::CrashLoop);
    let report = fx.run(RolloutConfig::default()).await;
    let RolloutOutcome::RolledBackByEcs {
        reason, evidence, ..
    } = &report.outcome
    else {
        panic!("expected RolledBackByEcs, got {:#?}", report.outcome);
    };
    assert!(
        matches!(reason, FailureReason::CircuitBreaker { .. }),
        "{reason:?}"
    );
    assert_eq!(evidence.failed_task_threshold, 1);
    assert!(evidence.configuration_changes.is_empty());
}
