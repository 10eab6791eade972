//! Rollout scenarios on the simulated ECS (manual clock: each runs in
//! milliseconds of real time).

mod common;

use std::time::Duration;

use common::{Fixture, LABEL, request};
use ecs_rollout::{
    CircuitBreaker, DeploymentConfiguration, DeploymentConfigurationPolicy, DesiredStatus, EcsApi,
    Error, FailureReason, FaultPlan, ImageBehaviour, MonitorConfig, ProgressEvent,
    RollbackInitiator, RolloutConfig, RolloutOutcome, RolloutState, TaskDefinitionStatus,
    UpdateServiceRequest, diff, list_all_tasks,
};

fn primary_task_definition(fx: &Fixture) -> String {
    let service = fx.sim.peek_service("runners", "runner").unwrap();
    let primary = service.primary().unwrap();
    primary.task_definition_arn.clone()
}

fn tag(fx: &Fixture, arn: &str, key: &str) -> Option<String> {
    fx.sim
        .peek_task_definition(arn)
        .unwrap()
        .spec
        .tags
        .get(key)
        .cloned()
}

#[tokio::test]
async fn healthy_rollout_succeeds_with_our_task_definition_primary() {
    let fx = Fixture::safe(3);
    let report = fx.run(RolloutConfig::default()).await;
    let RolloutOutcome::Succeeded { evidence } = &report.outcome else {
        panic!("expected Succeeded, got {:#?}", report.outcome);
    };
    assert_eq!(primary_task_definition(&fx), evidence.task_definition_arn);
    let service = fx.sim.peek_service("runners", "runner").unwrap();
    let primary = service.primary().unwrap();
    assert_eq!(primary.id, evidence.deployment_id);
    assert_eq!(primary.rollout_state, Some(RolloutState::Completed));
    assert_eq!(service.running_count, 3);
    assert!(report.quarantine.is_none());
    assert!(evidence.api_calls > 0 && evidence.polls > 0);
    assert_eq!(
        evidence.previous_task_definition_arn,
        fx.old_task_definition
    );

    // The registered revision differs from the running one only in image and label.
    let old = fx
        .sim
        .peek_task_definition(&fx.old_task_definition)
        .unwrap()
        .spec;
    let new = fx
        .sim
        .peek_task_definition(&evidence.task_definition_arn)
        .unwrap()
        .spec;
    let paths: Vec<String> = diff(&old, &new).into_iter().map(|c| c.path).collect();
    assert_eq!(
        paths,
        vec![
            format!("containerDefinitions[runner].dockerLabels.{LABEL}"),
            "containerDefinitions[runner].image".to_owned()
        ]
    );

    let events = fx.progress.events();
    assert!(matches!(
        events.first(),
        Some(ProgressEvent::CurrentState { .. })
    ));
    assert!(matches!(
        events.last(),
        Some(ProgressEvent::Finished {
            outcome: "succeeded"
        })
    ));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ProgressEvent::DeploymentProgress { .. }))
    );
}

#[tokio::test]
async fn crash_loop_is_rolled_back_by_ecs_and_never_reported_as_success() {
    let fx = Fixture::safe(2);
    fx.new_image_behaves(ImageBehaviour::CrashLoop);
    let report = fx.run(RolloutConfig::default()).await;
    assert!(
        !report.outcome.is_success(),
        "the peers' bug: success after ECS rolled back"
    );
    let RolloutOutcome::RolledBackByEcs {
        reason,
        rollback,
        evidence,
    } = &report.outcome
    else {
        panic!("expected RolledBackByEcs, got {:#?}", report.outcome);
    };
    assert!(
        matches!(reason, FailureReason::CircuitBreaker { .. }),
        "{reason:?}"
    );
    assert_eq!(rollback.initiator, RollbackInitiator::Ecs);
    assert!(rollback.completed, "{rollback:?}");
    assert_eq!(rollback.task_definition_arn, fx.old_task_definition);
    assert!(evidence.failed_tasks >= 3, "{evidence:?}");
    assert!(
        evidence
            .stopped_task_reasons
            .iter()
            .any(|r| r.contains("Essential container in task exited")),
        "{:?}",
        evidence.stopped_task_reasons
    );
    // The service runs the old revision again, completed.
    assert_eq!(primary_task_definition(&fx), fx.old_task_definition);
    // Marked on ECS, quarantine data returned, rollback target untouched.
    assert_eq!(
        tag(&fx, &evidence.task_definition_arn, "ecs-rollout:outcome").as_deref(),
        Some("rolled_back_by_ecs")
    );
    let quarantine = report.quarantine.as_ref().unwrap();
    assert_eq!(quarantine.version.as_deref(), Some("20250102.1"));
    assert!(
        quarantine
            .image_digest
            .as_deref()
            .unwrap()
            .starts_with("sha256:")
    );
    let old = fx
        .sim
        .peek_task_definition(&fx.old_task_definition)
        .unwrap();
    assert_eq!(old.status, TaskDefinitionStatus::Active);
}

#[tokio::test]
async fn failing_health_checks_with_breaker_off_are_rolled_back_by_us() {
    let fx = Fixture::new(
        2,
        DeploymentConfiguration {
            minimum_healthy_percent: Some(100),
            maximum_percent: Some(200),
            circuit_breaker: None,
        },
    );
    fx.new_image_behaves(ImageBehaviour::Unhealthy);
    let config = RolloutConfig {
        deployment_configuration_policy: DeploymentConfigurationPolicy::Warn,
        ..Default::default()
    };
    let report = fx.run(config).await;
    let RolloutOutcome::RolledBackByUs {
        reason,
        rollback,
        evidence,
    } = &report.outcome
    else {
        panic!("expected RolledBackByUs, got {:#?}", report.outcome);
    };
    assert!(
        matches!(
            reason,
            FailureReason::FailedTaskThreshold { threshold: 3, .. }
        ),
        "{reason:?}"
    );
    assert_eq!(rollback.initiator, RollbackInitiator::Us);
    assert!(rollback.completed);
    assert!(
        evidence
            .stopped_task_reasons
            .iter()
            .any(|r| r.contains("failed container health checks"))
    );
    assert!(!evidence.configuration_problems.is_empty());
    assert_eq!(primary_task_definition(&fx), fx.old_task_definition);
    assert_eq!(
        tag(&fx, &evidence.task_definition_arn, "ecs-rollout:outcome").as_deref(),
        Some("rolled_back_by_us")
    );
}

#[tokio::test]
async fn image_pull_error_fails_fast_before_the_breaker() {
    for behaviour in [ImageBehaviour::PullError, ImageBehaviour::ResourceInitError] {
        // One task: the breaker needs three failed starts, we need one.
        let fx = Fixture::safe(1);
        fx.new_image_behaves(behaviour);
        let report = fx.run(RolloutConfig::default()).await;
        let RolloutOutcome::RolledBackByUs {
            reason,
            evidence,
            rollback,
        } = &report.outcome
        else {
            panic!(
                "{behaviour:?}: expected RolledBackByUs, got {:#?}",
                report.outcome
            );
        };
        let FailureReason::DeterministicStartFailure { stopped_reason } = reason else {
            panic!("{behaviour:?}: {reason:?}");
        };
        let expected = match behaviour {
            ImageBehaviour::PullError => "CannotPullContainerError",
            _ => "ResourceInitializationError",
        };
        assert!(stopped_reason.contains(expected), "{stopped_reason}");
        assert!(
            (evidence.failed_tasks as u32) < evidence.failed_task_threshold,
            "{evidence:?}"
        );
        // The first failed start (20–30 s in) is a sign of trouble: the
        // next poll reads the stopped task, well before the once-a-minute
        // inspection would.
        assert!(
            evidence.deployment_duration < Duration::from_secs(50),
            "{:?}",
            evidence.deployment_duration
        );
        assert!(rollback.completed);
        assert_eq!(primary_task_definition(&fx), fx.old_task_definition);
    }
}

#[tokio::test]
async fn tasks_that_never_get_healthy_time_out_then_roll_back() {
    let fx = Fixture::safe(2);
    fx.new_image_behaves(ImageBehaviour::NeverHealthy);
    // Not a multiple of the polls' interval: the last sleep must be cut short.
    let timeout = Duration::from_secs(15 * 60 + 7);
    let config = RolloutConfig {
        monitor: MonitorConfig {
            timeout,
            ..Default::default()
        },
        ..Default::default()
    };
    let report = fx.run(config).await;
    let RolloutOutcome::TimedOut {
        timeout: reported,
        rollback,
        evidence,
    } = &report.outcome
    else {
        panic!("expected TimedOut, got {:#?}", report.outcome);
    };
    assert_eq!(*reported, timeout);
    assert_eq!(evidence.failed_tasks, 0, "the breaker never saw a failure");
    assert!(evidence.deployment_duration >= timeout);
    // The timeout holds: the last sleep ends at it, not a poll later.
    assert!(
        evidence.deployment_duration < timeout + Duration::from_secs(1),
        "{:?}",
        evidence.deployment_duration
    );
    assert!(rollback.completed && rollback.initiator == RollbackInitiator::Us);
    assert_eq!(primary_task_definition(&fx), fx.old_task_definition);
    assert!(report.quarantine.is_some());
}

/// Timeline: an operator deploys a hotfix while ours is still starting.
/// With the ServiceDeployment API, ECS marks our service deployment
/// STOPPED (superseded): someone else's PRIMARY makes that `Superseded`,
/// never `DeploymentStopped` (which would page a person and quarantine our
/// version).
#[tokio::test]
async fn operator_deploying_meanwhile_supersedes_us() {
    for service_deployments in [false, true] {
        let fx = Fixture::safe(2);
        fx.sim.enable_service_deployments(service_deployments);
        fx.new_image_behaves(ImageBehaviour::NeverHealthy);
        let mut operator_spec = common::runner_spec("registry.example.com:5000/team/runner:hotfix");
        operator_spec.tags.insert("by".into(), "operator".into());
        let operator_td = fx
            .sim
            .register_task_definition(&operator_spec)
            .await
            .unwrap();
        fx.sim.schedule_operator_update(
            Duration::from_secs(90),
            UpdateServiceRequest {
                cluster: "runners".into(),
                service: "runner".into(),
                task_definition: operator_td.arn.clone(),
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
            panic!(
                "expected Superseded (service deployments {service_deployments}), got {:#?}",
                report.outcome
            );
        };
        assert_eq!(task_definition_arn, &operator_td.arn);
        assert_ne!(by_deployment_id, &evidence.deployment_id);
        if service_deployments {
            assert_eq!(
                evidence.service_deployment_status.as_deref(),
                Some("STOPPED"),
                "{evidence:#?}"
            );
        }
        assert!(
            report.quarantine.is_none(),
            "someone else's deploy says nothing about our version"
        );
        // We did not fight the operator: their deployment stays PRIMARY.
        assert_eq!(primary_task_definition(&fx), operator_td.arn);
    }
}

#[tokio::test]
async fn throttling_storms_are_survived_with_backoff() {
    let fx = Fixture::safe(3);
    fx.sim.set_faults(FaultPlan {
        throttle_probability: 0.3,
        server_error_probability: 0.1,
    });
    fx.sim.throttle_next(6);
    let report = fx.run(RolloutConfig::default()).await;
    let RolloutOutcome::Succeeded { evidence } = &report.outcome else {
        panic!("expected Succeeded, got {:#?}", report.outcome);
    };
    assert!(evidence.throttled_calls >= 6, "{evidence:?}");
    assert!(
        fx.progress
            .events()
            .iter()
            .any(|e| matches!(e, ProgressEvent::RetryScheduled { .. }))
    );
    assert_eq!(fx.sim.total_calls(), evidence.api_calls);
}

#[tokio::test]
async fn busy_service_is_refused_unless_told_to_wait() {
    let fx = Fixture::safe_and_busy(2).await;
    let calls_before = fx.sim.calls().get("RegisterTaskDefinition").copied();
    let err = fx.run_err(RolloutConfig::default()).await;
    assert!(matches!(err, Error::Busy { .. }), "{err}");
    assert_eq!(
        fx.sim.calls().get("RegisterTaskDefinition").copied(),
        calls_before,
        "nothing registered"
    );

    let fx = Fixture::safe_and_busy(2).await;
    let config = RolloutConfig {
        wait_for_idle: Some(Duration::from_secs(600)),
        ..Default::default()
    };
    let report = fx.run(config).await;
    assert!(report.outcome.is_success(), "{:#?}", report.outcome);
    assert!(
        fx.progress
            .events()
            .iter()
            .any(|e| matches!(e, ProgressEvent::WaitingForIdle { .. }))
    );
}

/// Timeline: the updater has run for an hour when it finds the service busy
/// with someone else's deployment, which completes a minute later. The wait
/// for idle counts from its own start (not from the clock's zero): it waits
/// that minute and deploys. A deployment that never completes makes the
/// wait end exactly at its limit (45 s with 30-s polls: the last sleep is
/// cut to the limit), as `BusyTimeout`, with nothing registered.
#[tokio::test]
async fn the_wait_for_an_idle_service_counts_from_its_start_and_ends_at_its_limit() {
    let fx = Fixture::safe(2);
    fx.clock.advance(Duration::from_secs(3600));
    fx.busy_with("registry.example.com:5000/team/runner:other")
        .await;
    let config = RolloutConfig {
        wait_for_idle: Some(Duration::from_secs(600)),
        ..Default::default()
    };
    let report = fx.run(config).await;
    assert!(report.outcome.is_success(), "{:#?}", report.outcome);

    let fx = Fixture::safe(2);
    let stuck = "registry.example.com:5000/team/runner:stuck";
    fx.sim.script_image(stuck, ImageBehaviour::NeverHealthy);
    fx.busy_with(stuck).await;
    let registered = fx.sim.calls().get("RegisterTaskDefinition").copied();
    let config = RolloutConfig {
        wait_for_idle: Some(Duration::from_secs(45)),
        monitor: MonitorConfig {
            poll_max: Duration::from_secs(30),
            ..MonitorConfig::default()
        },
        ..Default::default()
    };
    let err = fx.run_err(config).await;
    assert!(
        matches!(
            err,
            Error::BusyTimeout {
                waited_secs: 45,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        fx.sim.calls().get("RegisterTaskDefinition").copied(),
        registered
    );
}

#[tokio::test]
async fn unsafe_deployment_configuration_is_fixed_or_refused() {
    let unsafe_config = DeploymentConfiguration {
        minimum_healthy_percent: Some(50),
        maximum_percent: Some(100),
        circuit_breaker: Some(CircuitBreaker {
            enable: false,
            rollback: false,
            ..Default::default()
        }),
    };
    let fx = Fixture::new(2, unsafe_config);
    let refuse = RolloutConfig {
        deployment_configuration_policy: DeploymentConfigurationPolicy::Refuse,
        ..Default::default()
    };
    let err = fx.run_err(refuse).await;
    assert!(
        matches!(&err, Error::UnsafeDeploymentConfiguration { problems, .. } if problems.len() == 3),
        "{err}"
    );

    let report = fx.run(RolloutConfig::default()).await;
    assert!(report.outcome.is_success(), "{:#?}", report.outcome);
    let service = fx.sim.peek_service("runners", "runner").unwrap();
    assert_eq!(
        service.deployment_configuration,
        DeploymentConfiguration::safe_rolling()
    );
}

#[tokio::test]
async fn same_image_is_not_redeployed() {
    let fx = Fixture::safe(1);
    let first = fx.run(RolloutConfig::default()).await;
    assert!(first.outcome.is_success());
    let second = fx.run(RolloutConfig::default()).await;
    assert!(
        matches!(second.outcome, RolloutOutcome::AlreadyRunning { .. }),
        "{:#?}",
        second.outcome
    );
}

#[tokio::test]
async fn bake_time_is_waited_for() {
    let fx = Fixture::safe(2);
    let bake_time = Duration::from_secs(300);
    let config = RolloutConfig {
        monitor: MonitorConfig {
            bake_time,
            ..Default::default()
        },
        ..Default::default()
    };
    let report = fx.run(config).await;
    let RolloutOutcome::Succeeded { evidence } = &report.outcome else {
        panic!("expected Succeeded, got {:#?}", report.outcome);
    };
    assert!(
        evidence.deployment_duration >= bake_time,
        "{:?}",
        evidence.deployment_duration
    );
    assert!(
        fx.progress
            .events()
            .iter()
            .any(|e| matches!(e, ProgressEvent::BakeStarted { .. }))
    );
}

#[tokio::test]
async fn retention_keeps_last_revisions_and_never_the_rollback_target() {
    let fx = Fixture::safe(1);
    let config = RolloutConfig {
        keep_revisions: Some(2),
        ..Default::default()
    };
    let rollout = fx.rollout(config);
    let mut previous = fx.old_task_definition.clone();
    for build in 2..=5 {
        let request = ecs_rollout::RolloutRequest {
            image: format!("registry.example.com:5000/team/runner:2025010{build}.1")
                .parse()
                .unwrap(),
            version: format!("2025010{build}.1").parse().unwrap(),
        };
        let report = rollout.run(&fx.target, &request).await.unwrap();
        let RolloutOutcome::Succeeded { evidence } = &report.outcome else {
            panic!("expected Succeeded, got {:#?}", report.outcome);
        };
        assert_eq!(evidence.previous_task_definition_arn, previous);
        for arn in [&previous, &evidence.task_definition_arn] {
            assert_eq!(
                fx.sim.peek_task_definition(arn).unwrap().status,
                TaskDefinitionStatus::Active,
                "{arn}"
            );
        }
        assert!(!report.deregistered.contains(&previous));
        previous = evidence.task_definition_arn.clone();
    }
    let active = ecs_rollout::list_all_revisions(fx.sim.as_ref(), "gitpod-runner")
        .await
        .unwrap();
    assert_eq!(active.len(), 2, "{active:?}");

    // A failed rollout never deregisters anything, not even with retention on.
    fx.new_image_behaves(ImageBehaviour::CrashLoop);
    let report = rollout.run(&fx.target, &request()).await.unwrap();
    assert!(report.outcome.is_version_failure());
    assert!(report.deregistered.is_empty());
    assert_eq!(
        fx.sim.peek_task_definition(&previous).unwrap().status,
        TaskDefinitionStatus::Active
    );
}

#[tokio::test]
async fn pagination_over_more_than_100_tasks() {
    let fx = Fixture::safe(150);
    let running = list_all_tasks(fx.sim.as_ref(), &fx.target, DesiredStatus::Running)
        .await
        .unwrap();
    assert_eq!(running.len(), 150);
    let mut distinct = running.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 150, "pages overlap");
    assert!(fx.sim.calls()["ListTasks"] >= 2);

    // A rollout of 150 tasks completes only if every page is read.
    let report = fx.run(RolloutConfig::default()).await;
    assert!(report.outcome.is_success(), "{:#?}", report.outcome);
}

#[tokio::test]
async fn current_state_reads_version_and_image() {
    let fx = Fixture::safe(1);
    let rollout = fx.rollout(RolloutConfig::default());
    let current = rollout.current_state(&fx.target).await.unwrap();
    assert_eq!(current.version.unwrap().to_string(), "20250101.1");
    assert_eq!(current.image, common::OLD_IMAGE);
    assert_eq!(current.task_definition_arn, fx.old_task_definition);
    rollout.run(&fx.target, &request()).await.unwrap();
    let current = rollout.current_state(&fx.target).await.unwrap();
    assert_eq!(current.version.as_ref().unwrap().to_string(), "20250102.1");
    assert!(current.runs_image(&common::new_image()));
}

#[tokio::test]
async fn progress_events_stream_through_a_tokio_channel() {
    let fx = Fixture::safe(1);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let rollout =
        ecs_rollout::Rollout::new(fx.sim.clone(), fx.clock.clone(), RolloutConfig::default())
            .unwrap()
            .with_progress(std::sync::Arc::new(tx));
    rollout.run(&fx.target, &request()).await.unwrap();
    drop(rollout);
    let mut kinds = Vec::new();
    while let Some(event) = rx.recv().await {
        kinds.push(
            serde_json::to_value(&event).unwrap()["event"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(kinds.first().map(String::as_str), Some("current_state"));
    assert!(kinds.contains(&"deployment_started".to_owned()));
    assert_eq!(kinds.last().map(String::as_str), Some("finished"));
}

#[tokio::test]
async fn outcome_serializes_with_its_evidence() {
    let fx = Fixture::safe(2);
    fx.new_image_behaves(ImageBehaviour::CrashLoop);
    let report = fx.run(RolloutConfig::default()).await;
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["outcome"]["outcome"], "rolled_back_by_ecs");
    assert_eq!(json["outcome"]["reason"]["kind"], "circuit_breaker");
    assert!(json["outcome"]["evidence"]["api_calls"].as_u64().unwrap() > 0);
    assert_eq!(json["quarantine"]["outcome"], "rolled_back_by_ecs");
    let _ = fx.sim.describe_service("runners", "runner").await.unwrap();
}

#[tokio::test]
async fn crash_right_after_completion_is_caught_by_the_bake_time() {
    // No health check: ECS calls the deployment complete as soon as the
    // tasks run; they crash seconds later.
    let fx = Fixture::safe_without_health_check(2);
    fx.new_image_behaves(ImageBehaviour::CrashLoop);
    let report = fx.run(RolloutConfig::default()).await;
    let RolloutOutcome::RolledBackByUs {
        reason, rollback, ..
    } = &report.outcome
    else {
        panic!("expected RolledBackByUs, got {:#?}", report.outcome);
    };
    assert!(
        matches!(reason, FailureReason::BakeFailed { .. }),
        "{reason:?}"
    );
    assert!(rollback.completed);
    assert_eq!(primary_task_definition(&fx), fx.old_task_definition);

    // Without a bake time the same rollout is (wrongly, but as configured) a success.
    let fx = Fixture::safe_without_health_check(2);
    fx.new_image_behaves(ImageBehaviour::CrashLoop);
    let config = RolloutConfig {
        monitor: MonitorConfig {
            bake_time: Duration::ZERO,
            ..Default::default()
        },
        ..Default::default()
    };
    let report = fx.run(config).await;
    assert!(report.outcome.is_success(), "{:#?}", report.outcome);
}

#[tokio::test]
async fn a_rollback_that_fails_too_is_rollback_failed() {
    // The previous image can no longer be pulled (deleted from the
    // registry) and the new one crash-loops: no way back.
    for breaker in [true, false] {
        let config = if breaker {
            DeploymentConfiguration::safe_rolling()
        } else {
            DeploymentConfiguration {
                circuit_breaker: None,
                ..DeploymentConfiguration::safe_rolling()
            }
        };
        let fx = Fixture::new(2, config);
        fx.new_image_behaves(ImageBehaviour::CrashLoop);
        fx.sim
            .script_image(common::OLD_IMAGE, ImageBehaviour::PullError);
        let rollout_config = RolloutConfig {
            deployment_configuration_policy: DeploymentConfigurationPolicy::Warn,
            ..Default::default()
        };
        let report = fx.run(rollout_config).await;
        let RolloutOutcome::RollbackFailed { rollback, .. } = &report.outcome else {
            panic!(
                "breaker {breaker}: expected RollbackFailed, got {:#?}",
                report.outcome
            );
        };
        let expected = if breaker {
            RollbackInitiator::Ecs
        } else {
            RollbackInitiator::Us
        };
        assert_eq!(rollback.initiator, expected);
        assert!(!rollback.completed);
        assert!(rollback.failure.is_some());
        assert!(report.quarantine.is_some(), "the new version still failed");
        assert!(!report.outcome.is_success());
    }
}
