//! Deployment alarms (`deploymentConfiguration.alarms` with rollback) are
//! honoured: an alarm rollback is `RolledBackByEcs` naming the alarms, the
//! engine never races ECS's own rollback, and ECS's alarm bake (the
//! deployment stays IN_PROGRESS while ECS watches the alarms) is waited
//! for, not mistaken for a stuck deployment (issue 10, "Deployment
//! controllers and strategies").
//!
//! Simulated (`SimulatedEcs::set_deployment_alarms`, `schedule_alarm`,
//! `enable_service_deployments`): a safe-rolling service of 2 tasks with
//! the alarm `runner-5xx`; ECS keeps a deployment IN_PROGRESS for its alarm
//! bake after the tasks settle; an alarm going into ALARM fails the
//! IN_PROGRESS deployment ("alarm(s) detected", a simulated reason text),
//! rolls it back when the alarms say so, and the service deployment lists
//! it in `triggeredAlarmNames`.

mod common;

use std::time::Duration;

use common::*;
use ecs_rollout::{
    DeploymentAlarms, DeploymentConfiguration, FailureReason, RolloutConfig, RolloutOutcome,
};

const ALARM: &str = "runner-5xx";
const ECS_BAKE: Duration = Duration::from_secs(600);

fn with_alarms(rollback: bool, breaker: bool) -> Fixture {
    let config = if breaker {
        DeploymentConfiguration::safe_rolling()
    } else {
        DeploymentConfiguration {
            circuit_breaker: None,
            ..DeploymentConfiguration::safe_rolling()
        }
    };
    let fx = Fixture::new(2, config);
    fx.sim
        .set_deployment_alarms(
            "runners",
            "runner",
            Some(DeploymentAlarms {
                alarm_names: vec![ALARM.into()],
                enable: true,
                rollback,
            }),
            ECS_BAKE,
        )
        .unwrap();
    fx.sim.enable_service_deployments(true);
    fx
}

/// The alarm goes off five minutes into a rollout of a service whose
/// breaker is off and left off (policy Warn).
async fn alarm_with_the_breaker_off(rollback: bool) -> (Fixture, ecs_rollout::RolloutReport) {
    let fx = with_alarms(rollback, false);
    fx.sim
        .schedule_alarm(Duration::from_secs(300), "runners", "runner", ALARM);
    let config = RolloutConfig {
        deployment_configuration_policy: ecs_rollout::DeploymentConfigurationPolicy::Warn,
        ..Default::default()
    };
    let report = fx.run(config).await;
    (fx, report)
}

#[tokio::test]
async fn an_alarm_during_ecs_bake_is_rolled_back_by_ecs_and_names_the_alarm() {
    let fx = with_alarms(true, true);
    // The tasks are healthy after about a minute; ECS watches the alarm
    // for ten more minutes. It goes off five minutes in.
    fx.sim
        .schedule_alarm(Duration::from_secs(300), "runners", "runner", ALARM);
    let report = fx.run(RolloutConfig::default()).await;
    let RolloutOutcome::RolledBackByEcs {
        reason, rollback, ..
    } = &report.outcome
    else {
        panic!("expected RolledBackByEcs, got {:#?}", report.outcome);
    };
    let FailureReason::DeploymentAlarm {
        alarm_names,
        rollout_state_reason,
    } = reason
    else {
        panic!("expected DeploymentAlarm, got {reason:?}");
    };
    assert_eq!(alarm_names, &[ALARM.to_owned()]);
    // ECS's own reason for the failure (its rolloutStateReason), not the
    // service deployment's later "rolled back" text.
    assert!(
        rollout_state_reason
            .as_deref()
            .is_some_and(|r| r.contains("alarm(s) detected")),
        "{rollout_state_reason:?}"
    );
    assert!(reason.to_string().contains(ALARM), "{reason}");
    assert!(rollback.completed, "{rollback:?}");
    assert!(report.quarantine.is_some());
    let service = fx.sim.peek_service("runners", "runner").unwrap();
    assert_eq!(service.task_definition_arn, fx.old_task_definition);
    // One rollback only: ECS's (no UpdateService or StopServiceDeployment of ours after it).
    assert_eq!(fx.sim.calls().get("StopServiceDeployment"), None);
}

#[tokio::test]
async fn without_an_alarm_the_version_succeeds_after_ecs_bake() {
    let fx = with_alarms(true, true);
    let report = fx.run(RolloutConfig::default()).await;
    let RolloutOutcome::Succeeded { evidence } = &report.outcome else {
        panic!("expected Succeeded, got {:#?}", report.outcome);
    };
    // ECS's alarm bake was waited for (the deployment completed after it),
    // within the monitor's timeout: no false TimedOut, no rollback.
    assert!(evidence.deployment_duration >= ECS_BAKE, "{evidence:#?}");
    assert!(evidence.deployment_duration < RolloutConfig::default().monitor.timeout);
}

#[tokio::test]
async fn an_alarm_without_rollback_stops_the_deployment_for_a_person() {
    // Alarms without rollback, breaker off and left off (Warn): ECS fails
    // the deployment and its service deployment is STOPPED. That needs a
    // person (issue 10: STOPPED is a failure nothing rolls back); the
    // version is quarantined.
    let (_fx, report) = alarm_with_the_breaker_off(false).await;
    let RolloutOutcome::DeploymentStopped { status_reason, .. } = &report.outcome else {
        panic!("expected DeploymentStopped, got {:#?}", report.outcome);
    };
    assert!(
        status_reason.as_deref().is_some_and(|r| r.contains(ALARM)),
        "{status_reason:?}"
    );
    assert!(report.quarantine.is_some(), "{:#?}", report.outcome);
}

#[tokio::test]
async fn alarms_roll_back_even_with_the_breaker_off() {
    // Only the alarms roll back (breaker off, left off): still ECS's
    // rollback, reported as such, and none of ours.
    let (fx, report) = alarm_with_the_breaker_off(true).await;
    let RolloutOutcome::RolledBackByEcs { reason, .. } = &report.outcome else {
        panic!("expected RolledBackByEcs, got {:#?}", report.outcome);
    };
    assert!(
        matches!(reason, FailureReason::DeploymentAlarm { alarm_names, .. } if alarm_names == &[ALARM.to_owned()]),
        "{reason:?}"
    );
    assert_eq!(fx.sim.calls().get("StopServiceDeployment"), None);
    assert_eq!(fx.sim.calls().get("UpdateService"), Some(&1));
}

/// After a failure we decided (an image that cannot be pulled fails fast),
/// the engine gives ECS a few polls to roll back by itself only when ECS
/// would: the breaker with rollback, or the deployment alarms with
/// rollback. A breaker without rollback, or one that is off, never rolls
/// back, and we roll back at once.
#[tokio::test]
async fn we_wait_for_ecs_rollback_only_when_ecs_rolls_back_by_itself() {
    use ecs_rollout::{CircuitBreaker, ImageBehaviour, ProgressEvent};
    let breaker = |enable, rollback| DeploymentConfiguration {
        circuit_breaker: Some(CircuitBreaker {
            enable,
            rollback,
            ..Default::default()
        }),
        ..DeploymentConfiguration::safe_rolling()
    };
    let alarms = |rollback| DeploymentAlarms {
        alarm_names: vec![ALARM.into()],
        enable: true,
        rollback,
    };
    let cases = [
        (breaker(true, true), None, true),
        (breaker(true, false), None, false),
        (breaker(false, true), None, false),
        (breaker(false, false), Some(alarms(true)), true),
        (breaker(false, false), Some(alarms(false)), false),
    ];
    for (config, alarms, waits) in cases {
        let fx = Fixture::new(1, config);
        fx.sim
            .set_deployment_alarms("runners", "runner", alarms.clone(), Duration::ZERO)
            .unwrap();
        fx.new_image_behaves(ImageBehaviour::PullError);
        let report = fx
            .run(RolloutConfig {
                deployment_configuration_policy: ecs_rollout::DeploymentConfigurationPolicy::Warn,
                ..Default::default()
            })
            .await;
        assert!(report.outcome.is_version_failure(), "{:#?}", report.outcome);
        let waited = fx
            .progress
            .events()
            .iter()
            .any(|e| matches!(e, ProgressEvent::AwaitingEcsRollback { .. }));
        assert_eq!(waited, waits, "{config:?} {alarms:?}");
    }
}
