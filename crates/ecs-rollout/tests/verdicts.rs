//! Verdicts real ECS timelines call for, on the simulated ECS (manual
//! clock): no lost verdict after `UpdateService`, no false `Superseded`
//! from stale reads, refused deployment controllers, desired count 0,
//! transient start errors, an INACTIVE rollback target.
//!
//! Simulated: read outages after `UpdateService`
//! (`SimulatedEcs::fail_reads_after_next_update`), eventually consistent
//! `DescribeServices` (`set_stale_reads`), the deployment controller
//! (`set_deployment_controller`), a transient pull error
//! (`ImageBehaviour::TransientPullError`) and a deregistered running
//! revision (`DeregisterTaskDefinition` on the simulator).

mod common;

use std::time::Duration;

use common::{Fixture, request};
use ecs_rollout::{
    DeploymentConfiguration, DeploymentConfigurationPolicy, EcsApi, Error, ErrorClass,
    ImageBehaviour, MonitorConfig, ProgressEvent, ResumePoint, RollbackInitiator, RolloutConfig,
    RolloutOutcome, TaskDefinitionStatus, diff,
};

fn primary_task_definition(fx: &Fixture) -> String {
    let service = fx.sim.peek_service("runners", "runner").unwrap();
    service.primary().unwrap().task_definition_arn.clone()
}

fn calls(fx: &Fixture, op: &str) -> u64 {
    fx.sim.calls().get(op).copied().unwrap_or(0)
}

fn short_timeout() -> RolloutConfig {
    RolloutConfig {
        monitor: MonitorConfig {
            timeout: Duration::from_secs(10 * 60),
            ..Default::default()
        },
        ..Default::default()
    }
}

#[tokio::test]
async fn reads_failing_after_update_service_until_the_timeout_are_monitoring_lost_then_resume_succeeds()
 {
    for class in [
        ErrorClass::Throttled,
        ErrorClass::Transient,
        ErrorClass::Permanent,
    ] {
        let fx = Fixture::safe(2);
        let outage = Duration::from_secs(3600);
        fx.sim.fail_reads_after_next_update(outage, class);
        let report = fx.run(short_timeout()).await;
        let RolloutOutcome::MonitoringLost {
            deployment_id,
            task_definition_arn,
            previous_task_definition_arn,
            last_error,
            evidence,
        } = &report.outcome
        else {
            panic!(
                "{class}: expected MonitoringLost, got {:#?}",
                report.outcome
            );
        };
        assert_eq!(report.outcome.kind(), "monitoring_lost");
        assert!(!report.outcome.is_success() && !report.outcome.is_version_failure());
        assert!(report.quarantine.is_none(), "{class}: never quarantined");
        assert_eq!(previous_task_definition_arn, &fx.old_task_definition);
        assert!(!last_error.is_empty());
        assert!(evidence.missed_polls > 0 && evidence.missed_polls == evidence.polls);
        assert_eq!(
            calls(&fx, "UpdateService"),
            1,
            "{class}: nothing rolled back"
        );
        assert_eq!(calls(&fx, "TagResource"), 0, "{class}: nothing marked");
        assert!(fx.progress.events().iter().any(|e| matches!(
            e,
            ProgressEvent::PollFailed { deployment_id: id, .. } if id == deployment_id
        )));

        // The outage ends; the orchestrator resumes watching.
        fx.clock.advance(outage);
        let report = fx
            .rollout(RolloutConfig::default())
            .resume(
                &fx.target,
                &request(),
                &ResumePoint::Deployed {
                    deployment_id: deployment_id.clone(),
                    task_definition_arn: task_definition_arn.clone(),
                    previous_task_definition_arn: previous_task_definition_arn.clone(),
                },
            )
            .await
            .unwrap();
        let RolloutOutcome::Succeeded { evidence } = &report.outcome else {
            panic!("{class}: expected Succeeded, got {:#?}", report.outcome);
        };
        assert_eq!(&evidence.deployment_id, deployment_id);
        assert_eq!(primary_task_definition(&fx), *task_definition_arn);
    }
}

#[tokio::test]
async fn a_two_minute_read_outage_after_update_service_is_survived_with_a_verdict() {
    for class in [ErrorClass::Throttled, ErrorClass::Permanent] {
        let fx = Fixture::safe(2);
        fx.sim
            .fail_reads_after_next_update(Duration::from_secs(120), class);
        let report = fx.run(RolloutConfig::default()).await;
        let RolloutOutcome::Succeeded { evidence } = &report.outcome else {
            panic!("{class}: expected Succeeded, got {:#?}", report.outcome);
        };
        assert!(evidence.missed_polls > 0, "{class}: {evidence:?}");
    }
}

#[tokio::test]
async fn stale_reads_after_update_service_are_not_superseded() {
    // Healthy: the first reads after UpdateService still list the old
    // PRIMARY only.
    let fx = Fixture::safe(2);
    fx.sim.set_stale_reads(Duration::from_secs(9));
    let report = fx.run(RolloutConfig::default()).await;
    let RolloutOutcome::Succeeded { evidence } = &report.outcome else {
        panic!("expected Succeeded, got {:#?}", report.outcome);
    };
    assert_eq!(primary_task_definition(&fx), evidence.task_definition_arn);

    // Our own rollback (breaker off) is watched through stale reads too.
    let fx = Fixture::new(
        2,
        DeploymentConfiguration {
            circuit_breaker: None,
            ..DeploymentConfiguration::safe_rolling()
        },
    );
    fx.sim.set_stale_reads(Duration::from_secs(9));
    fx.new_image_behaves(ImageBehaviour::Unhealthy);
    let config = RolloutConfig {
        deployment_configuration_policy: DeploymentConfigurationPolicy::Warn,
        ..Default::default()
    };
    let report = fx.run(config).await;
    let RolloutOutcome::RolledBackByUs { rollback, .. } = &report.outcome else {
        panic!("expected RolledBackByUs, got {:#?}", report.outcome);
    };
    assert!(rollback.completed, "{rollback:?}");
    assert_eq!(primary_task_definition(&fx), fx.old_task_definition);
}

#[tokio::test]
async fn code_deploy_and_external_controllers_are_refused_before_anything_is_registered() {
    for controller in ["CODE_DEPLOY", "EXTERNAL"] {
        let fx = Fixture::safe(2);
        fx.sim
            .set_deployment_controller("runners", "runner", Some(controller))
            .unwrap();
        let err = fx.run_err(RolloutConfig::default()).await;
        assert!(
            matches!(&err, Error::UnsupportedDeploymentController { controller: c, service }
                if c == controller && service == "runner"),
            "{err}"
        );
        let message = err.to_string();
        assert!(
            message.contains(controller) && message.contains("runner"),
            "{message}"
        );
        assert_eq!(calls(&fx, "RegisterTaskDefinition"), 0, "{controller}");
        assert_eq!(calls(&fx, "UpdateService"), 0, "{controller}");
    }
    // ECS, explicitly: deployed as usual.
    let fx = Fixture::safe(1);
    fx.sim
        .set_deployment_controller("runners", "runner", Some("ECS"))
        .unwrap();
    assert!(fx.run(RolloutConfig::default()).await.outcome.is_success());
}

#[tokio::test]
async fn desired_count_zero_is_deployed_unverified_never_succeeded() {
    let fx = Fixture::safe(0);
    let report = fx.run(RolloutConfig::default()).await;
    let RolloutOutcome::DeployedUnverified { evidence } = &report.outcome else {
        panic!("expected DeployedUnverified, got {:#?}", report.outcome);
    };
    assert_eq!(report.outcome.kind(), "deployed_unverified");
    assert!(!report.outcome.is_success() && !report.outcome.is_version_failure());
    assert!(report.quarantine.is_none());
    assert_eq!(primary_task_definition(&fx), evidence.task_definition_arn);
    assert!(fx.progress.events().iter().any(|e| matches!(
        e,
        ProgressEvent::Finished {
            outcome: "deployed_unverified"
        }
    )));
}

#[tokio::test]
async fn a_transient_pull_error_is_a_failed_task_not_an_instant_verdict() {
    let fx = Fixture::safe(2);
    fx.new_image_behaves(ImageBehaviour::TransientPullError);
    let report = fx.run(RolloutConfig::default()).await;
    let RolloutOutcome::Succeeded { evidence } = &report.outcome else {
        panic!("expected Succeeded, got {:#?}", report.outcome);
    };
    assert_eq!(evidence.failed_tasks, 1, "{evidence:?}");
    assert!(
        evidence
            .stopped_task_reasons
            .iter()
            .any(|r| r.starts_with("CannotPullContainerError") && r.contains("i/o timeout")),
        "{:?}",
        evidence.stopped_task_reasons
    );
}

/// Timeline: the running revision was deregistered (INACTIVE) and an
/// earlier run already registered its exact spec again (the family's
/// newest ACTIVE revision). That revision is the rollback target: no
/// second re-registration. When the family's newest ACTIVE revision is
/// another spec (CI registered one since), it is never taken for the
/// rollback target: the running spec is registered again.
///
/// Kills every mutant of the reuse guard in `Rollout::usable_rollback_target`.
#[tokio::test]
async fn an_earlier_re_registration_of_an_inactive_rollback_target_is_reused_and_only_it() {
    // Reused: the newest ACTIVE revision has the running spec.
    let fx = Fixture::safe(1);
    let running = fx
        .sim
        .peek_task_definition(&fx.old_task_definition)
        .unwrap();
    fx.sim
        .deregister_task_definition(&fx.old_task_definition)
        .await
        .unwrap();
    let again = fx
        .sim
        .register_task_definition(&running.spec)
        .await
        .unwrap();
    let registered_before = calls(&fx, "RegisterTaskDefinition");
    let report = fx.run(RolloutConfig::default()).await;
    let RolloutOutcome::Succeeded { evidence } = &report.outcome else {
        panic!("expected Succeeded, got {:#?}", report.outcome);
    };
    assert_eq!(evidence.previous_task_definition_arn, again.arn);
    // Only the clone was registered.
    assert_eq!(calls(&fx, "RegisterTaskDefinition"), registered_before + 1);
    assert!(
        !fx.progress
            .events()
            .iter()
            .any(|e| matches!(e, ProgressEvent::RollbackTargetReregistered { .. }))
    );

    // Not reused: the newest ACTIVE revision is another spec.
    let fx = Fixture::safe(1);
    let running = fx
        .sim
        .peek_task_definition(&fx.old_task_definition)
        .unwrap();
    fx.sim
        .deregister_task_definition(&fx.old_task_definition)
        .await
        .unwrap();
    let other = fx
        .sim
        .register_task_definition(&common::runner_spec(
            "registry.example.com:5000/team/runner:20241231.1",
        ))
        .await
        .unwrap();
    let report = fx.run(RolloutConfig::default()).await;
    let RolloutOutcome::Succeeded { evidence } = &report.outcome else {
        panic!("expected Succeeded, got {:#?}", report.outcome);
    };
    assert_ne!(evidence.previous_task_definition_arn, other.arn);
    let target = fx
        .sim
        .peek_task_definition(&evidence.previous_task_definition_arn)
        .unwrap();
    assert_eq!(target.status, TaskDefinitionStatus::Active);
    assert!(
        diff(&running.spec, &target.spec).is_empty(),
        "the running spec"
    );
    assert!(
        fx.progress
            .events()
            .iter()
            .any(|e| matches!(e, ProgressEvent::RollbackTargetReregistered { .. }))
    );
}

#[tokio::test]
async fn an_inactive_running_revision_is_re_registered_as_the_rollback_target() {
    // Breaker off: our own rollback goes to the re-registered revision.
    let fx = Fixture::new(
        2,
        DeploymentConfiguration {
            circuit_breaker: None,
            ..DeploymentConfiguration::safe_rolling()
        },
    );
    fx.sim
        .deregister_task_definition(&fx.old_task_definition)
        .await
        .unwrap();
    fx.new_image_behaves(ImageBehaviour::Unhealthy);
    let config = RolloutConfig {
        deployment_configuration_policy: DeploymentConfigurationPolicy::Warn,
        ..Default::default()
    };
    let report = fx.run(config).await;
    let RolloutOutcome::RolledBackByUs {
        rollback, evidence, ..
    } = &report.outcome
    else {
        panic!("expected RolledBackByUs, got {:#?}", report.outcome);
    };
    assert!(rollback.completed, "{rollback:?}");
    assert_ne!(rollback.task_definition_arn, fx.old_task_definition);
    assert_eq!(
        evidence.previous_task_definition_arn,
        rollback.task_definition_arn
    );
    let old = fx
        .sim
        .peek_task_definition(&fx.old_task_definition)
        .unwrap();
    let target = fx
        .sim
        .peek_task_definition(&rollback.task_definition_arn)
        .unwrap();
    assert_eq!(target.status, TaskDefinitionStatus::Active);
    assert!(diff(&old.spec, &target.spec).is_empty(), "the exact spec");
    assert_eq!(primary_task_definition(&fx), target.arn);
    assert!(fx.progress.events().iter().any(|e| matches!(
        e,
        ProgressEvent::RollbackTargetReregistered { inactive_task_definition_arn, .. }
            if *inactive_task_definition_arn == fx.old_task_definition
    )));

    // Breaker on: ECS rolls back to the last COMPLETED deployment (the
    // INACTIVE revision); that rollback is accepted and reported as is.
    let fx = Fixture::safe(2);
    fx.sim
        .deregister_task_definition(&fx.old_task_definition)
        .await
        .unwrap();
    fx.new_image_behaves(ImageBehaviour::CrashLoop);
    let report = fx.run(RolloutConfig::default()).await;
    let RolloutOutcome::RolledBackByEcs { rollback, .. } = &report.outcome else {
        panic!("expected RolledBackByEcs, got {:#?}", report.outcome);
    };
    assert_eq!(rollback.initiator, RollbackInitiator::Ecs);
    assert!(rollback.completed, "{rollback:?}");
    assert_eq!(rollback.task_definition_arn, fx.old_task_definition);
    assert_eq!(primary_task_definition(&fx), fx.old_task_definition);

    // Healthy: the run succeeds and the re-registered revision is the
    // recorded rollback target.
    let fx = Fixture::safe(1);
    fx.sim
        .deregister_task_definition(&fx.old_task_definition)
        .await
        .unwrap();
    let report = fx.run(RolloutConfig::default()).await;
    let RolloutOutcome::Succeeded { evidence } = &report.outcome else {
        panic!("expected Succeeded, got {:#?}", report.outcome);
    };
    assert_ne!(
        evidence.previous_task_definition_arn,
        fx.old_task_definition
    );
    assert_eq!(
        fx.sim
            .peek_task_definition(&evidence.previous_task_definition_arn)
            .unwrap()
            .status,
        TaskDefinitionStatus::Active
    );
}
