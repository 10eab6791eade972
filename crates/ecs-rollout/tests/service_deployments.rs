//! The ServiceDeployment status as the authority, our rollback through
//! `StopServiceDeployment`, waiting for ECS's own rollback, and
//! `Rollout::watch`, on the simulated ECS (manual clock).
//!
//! Simulated: the ServiceDeployment API (`SimulatedEcs::enable_service_deployments`,
//! off = the `DescribeServices` fallback), its statuses (SUCCESSFUL,
//! ROLLBACK_IN_PROGRESS/SUCCESSFUL/FAILED, STOPPED) as ECS sets them,
//! statuses read late (`set_service_deployment_lag`), and a rollback
//! deployment taking over the running tasks of the last COMPLETED one
//! (`set_rollback_adopts_running_tasks`).

mod common;

use std::time::Duration;

use common::{Fixture, OLD_IMAGE, request, runner_spec};
use ecs_rollout::{
    CircuitBreaker, DeploymentConfiguration, DeploymentConfigurationPolicy, DesiredStatus, EcsApi,
    FailureReason, ImageBehaviour, MonitorConfig, ProgressEvent, RecordedDeployment,
    RollbackInitiator, RolloutConfig, RolloutOutcome, RolloutState, SimTimings,
    UpdateServiceRequest, VerdictSource, list_all_tasks,
};

fn calls(fx: &Fixture, op: &str) -> u64 {
    fx.sim.calls().get(op).copied().unwrap_or(0)
}

fn primary_task_definition(fx: &Fixture) -> String {
    let service = fx.sim.peek_service("runners", "runner").unwrap();
    service.primary().unwrap().task_definition_arn.clone()
}

fn warn() -> RolloutConfig {
    RolloutConfig {
        deployment_configuration_policy: DeploymentConfigurationPolicy::Warn,
        ..Default::default()
    }
}

#[tokio::test]
async fn a_successful_service_deployment_decides_and_its_absence_falls_back_to_describe_services() {
    for api in [true, false] {
        let fx = Fixture::safe(3);
        fx.sim.enable_service_deployments(api);
        let report = fx.run(RolloutConfig::default()).await;
        let RolloutOutcome::Succeeded { evidence } = &report.outcome else {
            panic!("api {api}: expected Succeeded, got {:#?}", report.outcome);
        };
        if api {
            assert_eq!(evidence.decided_by, Some(VerdictSource::ServiceDeployment));
            let arn = evidence.service_deployment_arn.as_deref().unwrap();
            assert!(arn.contains(":service-deployment/runners/runner/"), "{arn}");
            assert_eq!(
                evidence.service_deployment_status.as_deref(),
                Some("SUCCESSFUL")
            );
            assert!(fx.progress.events().iter().any(|e| matches!(
                e,
                ProgressEvent::ServiceDeploymentRecorded { service_deployment_arn, .. }
                    if service_deployment_arn == arn
            )));
        } else {
            assert_eq!(evidence.decided_by, Some(VerdictSource::DescribeServices));
            assert_eq!(evidence.service_deployment_arn, None);
            // Asked once; an API that is not there is not asked again.
            assert_eq!(calls(&fx, "DescribeServiceDeployments"), 1);
        }
    }
}

#[tokio::test]
async fn a_found_service_deployment_is_polled_by_its_arn_not_by_listing_the_history() {
    let fx = Fixture::safe(3);
    fx.sim.enable_service_deployments(true);
    let report = fx.run(RolloutConfig::default()).await;
    let RolloutOutcome::Succeeded { evidence } = &report.outcome else {
        panic!("expected Succeeded, got {:#?}", report.outcome);
    };
    assert_eq!(evidence.decided_by, Some(VerdictSource::ServiceDeployment));
    let (listed, by_arn) = (
        calls(&fx, "DescribeServiceDeployments"),
        calls(&fx, "DescribeServiceDeploymentsByArn"),
    );
    // Listed until ours shows up (the first poll here), then read by ARN
    // on every poll through the bake.
    assert_eq!(listed, 1, "{:?}", fx.sim.calls());
    assert!(by_arn >= 5, "{:?}", fx.sim.calls());
}

/// A backend that lists service deployments but reads one by its ARN only
/// as `by_arn` says: never (`None`: the trait's default, `Unsupported`), or
/// after failing the first `failures` attempts with an error of `class`.
#[derive(Debug)]
struct ListOnly(std::sync::Arc<ecs_rollout::SimulatedEcs>, Option<ByArn>);

#[derive(Debug)]
struct ByArn {
    class: ecs_rollout::ErrorClass,
    failures: std::sync::atomic::AtomicU32,
    attempts: std::sync::atomic::AtomicU32,
    /// Answers each ARN with another service's service deployment (rolled
    /// back), breaking the trait's "one answer per ARN, in the order asked".
    misanswers: bool,
}

impl ByArn {
    fn failing(class: ecs_rollout::ErrorClass, failures: u32) -> Option<Self> {
        Some(Self {
            class,
            failures: failures.into(),
            attempts: 0.into(),
            misanswers: false,
        })
    }

    fn misanswering() -> Option<Self> {
        Some(Self {
            misanswers: true,
            ..Self::failing(ecs_rollout::ErrorClass::Transient, 0)?
        })
    }
}

#[async_trait::async_trait]
impl EcsApi for ListOnly {
    async fn describe_service(
        &self,
        cluster: &str,
        service: &str,
    ) -> ecs_rollout::Result<ecs_rollout::ServiceDescription> {
        self.0.describe_service(cluster, service).await
    }
    async fn describe_task_definition(
        &self,
        task_definition: &str,
    ) -> ecs_rollout::Result<ecs_rollout::RegisteredTaskDefinition> {
        self.0.describe_task_definition(task_definition).await
    }
    async fn register_task_definition(
        &self,
        spec: &ecs_rollout::TaskDefinitionSpec,
    ) -> ecs_rollout::Result<ecs_rollout::RegisteredTaskDefinition> {
        self.0.register_task_definition(spec).await
    }
    async fn tag_resource(
        &self,
        arn: &str,
        tags: &std::collections::BTreeMap<String, String>,
    ) -> ecs_rollout::Result<()> {
        self.0.tag_resource(arn, tags).await
    }
    async fn deregister_task_definition(&self, arn: &str) -> ecs_rollout::Result<()> {
        self.0.deregister_task_definition(arn).await
    }
    async fn list_task_definition_revisions(
        &self,
        family: &str,
        next_token: ecs_rollout::PageToken,
    ) -> ecs_rollout::Result<ecs_rollout::Page<String>> {
        self.0
            .list_task_definition_revisions(family, next_token)
            .await
    }
    async fn update_service(
        &self,
        request: &UpdateServiceRequest,
    ) -> ecs_rollout::Result<ecs_rollout::UpdateServiceResult> {
        self.0.update_service(request).await
    }
    async fn list_tasks(
        &self,
        request: &ecs_rollout::ListTasksRequest,
    ) -> ecs_rollout::Result<ecs_rollout::Page<String>> {
        self.0.list_tasks(request).await
    }
    async fn describe_tasks(
        &self,
        cluster: &str,
        task_arns: &[String],
    ) -> ecs_rollout::Result<Vec<ecs_rollout::TaskDescription>> {
        self.0.describe_tasks(cluster, task_arns).await
    }
    async fn describe_service_deployments(
        &self,
        cluster: &str,
        service: &str,
    ) -> ecs_rollout::Result<Vec<ecs_rollout::ServiceDeploymentInfo>> {
        self.0.describe_service_deployments(cluster, service).await
    }
    async fn describe_service_deployments_by_arn(
        &self,
        arns: &[String],
    ) -> ecs_rollout::Result<Vec<ecs_rollout::Result<ecs_rollout::ServiceDeploymentInfo>>> {
        use std::sync::atomic::Ordering::SeqCst;
        let Some(by_arn) = &self.1 else {
            return Err(ecs_rollout::Error::Unsupported {
                operation: "DescribeServiceDeployments by ARN",
                backend: "ListOnly",
            });
        };
        by_arn.attempts.fetch_add(1, SeqCst);
        let failing = by_arn.failures.load(SeqCst) > 0;
        if failing {
            by_arn.failures.fetch_sub(1, SeqCst);
            let message = match by_arn.class {
                ecs_rollout::ErrorClass::Permanent => "AccessDeniedException: not authorized",
                _ => "ServerException (HTTP 503): Service unavailable",
            };
            return Err(ecs_rollout::Error::api(
                "DescribeServiceDeployments",
                arns.first().map_or("", String::as_str),
                by_arn.class,
                message,
            ));
        }
        let answers = self.0.describe_service_deployments_by_arn(arns).await?;
        if !by_arn.misanswers {
            return Ok(answers);
        }
        Ok(answers
            .into_iter()
            .map(|answer| {
                answer.map(|d| ecs_rollout::ServiceDeploymentInfo {
                    arn: format!("{}-of-another-service", d.arn),
                    status: "ROLLBACK_SUCCESSFUL".into(),
                    status_reason: Some("another service's rollback".into()),
                    ..d
                })
            })
            .collect())
    }
}

#[tokio::test]
async fn without_reads_by_arn_the_monitor_lists_the_history_each_poll() {
    let fx = Fixture::safe(3);
    fx.sim.enable_service_deployments(true);
    fx.new_image_behaves(ImageBehaviour::CrashLoop);
    let rollout = ecs_rollout::Rollout::new(
        std::sync::Arc::new(ListOnly(fx.sim.clone(), None)),
        fx.clock.clone(),
        RolloutConfig::default(),
    )
    .unwrap();
    let report = rollout.run(&fx.target, &request()).await.unwrap();
    let RolloutOutcome::RolledBackByEcs { evidence, .. } = &report.outcome else {
        panic!("expected RolledBackByEcs, got {:#?}", report.outcome);
    };
    assert_eq!(evidence.decided_by, Some(VerdictSource::ServiceDeployment));
    assert_eq!(calls(&fx, "DescribeServiceDeploymentsByArn"), 0);
    assert!(
        calls(&fx, "DescribeServiceDeployments") >= 3,
        "{:?}",
        fx.sim.calls()
    );
}

#[tokio::test]
async fn success_waits_for_a_late_successful_status() {
    // ECS completes the deployment in well under a minute; its service
    // deployment reads IN_PROGRESS for 5 more minutes.
    let lag = Duration::from_secs(300);
    let fx = Fixture::safe(2);
    fx.sim.enable_service_deployments(true);
    fx.sim.set_service_deployment_lag(lag);
    let config = RolloutConfig {
        monitor: MonitorConfig {
            bake_time: Duration::ZERO,
            ..Default::default()
        },
        ..Default::default()
    };
    let report = fx.run(config).await;
    let RolloutOutcome::Succeeded { evidence } = &report.outcome else {
        panic!("expected Succeeded, got {:#?}", report.outcome);
    };
    assert!(evidence.deployment_duration >= lag, "{evidence:?}");
    assert_eq!(evidence.decided_by, Some(VerdictSource::ServiceDeployment));
}

#[tokio::test]
async fn rollback_successful_is_rolled_back_by_ecs() {
    let fx = Fixture::safe(2);
    fx.sim.enable_service_deployments(true);
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
    assert!(matches!(reason, FailureReason::CircuitBreaker { .. }));
    assert!(rollback.completed, "{rollback:?}");
    assert_eq!(rollback.task_definition_arn, fx.old_task_definition);
    assert_eq!(evidence.decided_by, Some(VerdictSource::ServiceDeployment));
    assert_eq!(
        evidence.service_deployment_status.as_deref(),
        Some("ROLLBACK_SUCCESSFUL")
    );
    assert_eq!(calls(&fx, "UpdateService"), 1, "we never rolled back too");
    assert!(report.quarantine.is_some());
}

/// The measured timeline: the rollback deployment takes over the previous
/// revision's running tasks (COMPLETED, runningCount = desired at once, the
/// tasks still startedBy the earlier deployment). The engine concludes
/// within a bounded number of calls, with the API and without it.
#[tokio::test]
async fn an_ecs_rollback_taking_over_running_tasks_concludes_in_bounded_calls() {
    for api in [true, false] {
        let fx = Fixture::safe(2);
        fx.sim.enable_service_deployments(api);
        fx.sim.set_rollback_adopts_running_tasks(true);
        fx.new_image_behaves(ImageBehaviour::CrashLoop);
        let report = fx.run(RolloutConfig::default()).await;
        let RolloutOutcome::RolledBackByEcs {
            rollback, evidence, ..
        } = &report.outcome
        else {
            panic!(
                "api {api}: expected RolledBackByEcs, got {:#?}",
                report.outcome
            );
        };
        assert!(rollback.completed, "api {api}: {rollback:?}");
        assert_eq!(rollback.task_definition_arn, fx.old_task_definition);
        assert!(
            evidence.api_calls <= 80,
            "api {api}: {} calls",
            evidence.api_calls
        );
        // The timeline really happened: the PRIMARY rollback deployment
        // counts tasks it did not start.
        let service = fx.sim.peek_service("runners", "runner").unwrap();
        let primary = service.primary().unwrap().clone();
        assert_eq!(primary.rollout_state, Some(RolloutState::Completed));
        assert_eq!(primary.running_count, 2);
        let running = list_all_tasks(fx.sim.as_ref(), &fx.target, DesiredStatus::Running)
            .await
            .unwrap();
        let tasks = fx.sim.describe_tasks("runners", &running).await.unwrap();
        assert!(
            tasks
                .iter()
                .all(|t| t.started_by.as_deref() != Some(primary.id.as_str())),
            "api {api}: {tasks:#?}"
        );
    }
}

#[tokio::test]
async fn rollback_failed_needs_a_person() {
    let fx = Fixture::safe(2);
    fx.sim.enable_service_deployments(true);
    fx.new_image_behaves(ImageBehaviour::CrashLoop);
    fx.sim
        .script_image(common::OLD_IMAGE, ImageBehaviour::PullError);
    let report = fx.run(RolloutConfig::default()).await;
    let RolloutOutcome::RollbackFailed {
        rollback, evidence, ..
    } = &report.outcome
    else {
        panic!("expected RollbackFailed, got {:#?}", report.outcome);
    };
    assert_eq!(rollback.initiator, RollbackInitiator::Ecs);
    assert!(!rollback.completed);
    assert!(
        rollback
            .failure
            .as_deref()
            .unwrap()
            .contains("ROLLBACK_FAILED"),
        "{rollback:?}"
    );
    assert_eq!(evidence.decided_by, Some(VerdictSource::ServiceDeployment));
}

/// Timeline: the new image cannot be pulled (we fail fast, before ECS's
/// breaker trips), and the old one now crashes at start (a dependency it
/// needs is gone). We wait for ECS's own rollback instead of racing it; ECS starts it,
/// and it fails too. The rollback is watched through the failed
/// deployment's service deployment, whose ROLLBACK_FAILED is the word:
/// `RollbackFailed`, initiated by ECS, its failure naming that status and
/// its evidence why the rollback's tasks stopped.
///
/// Kills the deleted `RollbackFailed | Stopped` arm of a rollback watch in
/// `Monitor::judge_service_deployment`.
#[tokio::test]
async fn ecs_rollback_failing_after_our_fail_fast_needs_a_person() {
    let fx = Fixture::safe(2);
    fx.sim.enable_service_deployments(true);
    fx.new_image_behaves(ImageBehaviour::PullError);
    fx.sim
        .script_image(common::OLD_IMAGE, ImageBehaviour::CrashLoop);
    // Polls 30 s apart: the wait for ECS's rollback (3 polls) outlasts the
    // breaker's three failed starts.
    let config = RolloutConfig {
        monitor: MonitorConfig {
            poll_min: Duration::from_secs(30),
            poll_max: Duration::from_secs(30),
            ..MonitorConfig::default()
        },
        ..RolloutConfig::default()
    };
    let report = fx.run(config).await;
    let RolloutOutcome::RollbackFailed {
        reason, rollback, ..
    } = &report.outcome
    else {
        panic!("expected RollbackFailed, got {:#?}", report.outcome);
    };
    assert!(
        matches!(reason, FailureReason::DeterministicStartFailure { .. }),
        "{reason:?}"
    );
    assert_eq!(rollback.initiator, RollbackInitiator::Ecs);
    assert!(!rollback.completed);
    assert!(
        rollback
            .failure
            .as_deref()
            .is_some_and(|f| f.contains("ROLLBACK_FAILED")),
        "{rollback:?}"
    );
    // Why the rollback failed: its tasks' stop reason.
    assert_eq!(
        rollback.stopped_task_reasons,
        ["Essential container in task exited (runner)"],
        "{rollback:?}"
    );
    assert_eq!(calls(&fx, "UpdateService"), 1, "{:?}", fx.sim.calls());
}

#[tokio::test]
async fn stopped_needs_a_person_and_nothing_is_rolled_back() {
    // The breaker fails the deployment but does not roll back: ECS stops it.
    let config = DeploymentConfiguration {
        circuit_breaker: Some(CircuitBreaker {
            enable: true,
            rollback: false,
            ..Default::default()
        }),
        ..DeploymentConfiguration::safe_rolling()
    };
    let fx = Fixture::new(2, config);
    fx.sim.enable_service_deployments(true);
    fx.new_image_behaves(ImageBehaviour::CrashLoop);
    let report = fx.run(warn()).await;
    let RolloutOutcome::DeploymentStopped {
        status_reason,
        evidence,
    } = &report.outcome
    else {
        panic!("expected DeploymentStopped, got {:#?}", report.outcome);
    };
    assert!(
        status_reason
            .as_deref()
            .unwrap()
            .contains("circuit breaker")
    );
    assert_eq!(report.outcome.kind(), "deployment_stopped");
    assert!(report.outcome.is_version_failure() && report.quarantine.is_some());
    assert_eq!(evidence.decided_by, Some(VerdictSource::ServiceDeployment));
    assert_eq!(calls(&fx, "UpdateService"), 1);
    assert_eq!(calls(&fx, "StopServiceDeployment"), 0);
    assert_eq!(primary_task_definition(&fx), evidence.task_definition_arn);
}

#[tokio::test]
async fn our_rollback_goes_through_stop_service_deployment_where_it_exists() {
    for api in [true, false] {
        // Breaker off: ECS never rolls back; our threshold fails the deployment.
        let fx = Fixture::new(
            2,
            DeploymentConfiguration {
                circuit_breaker: None,
                ..DeploymentConfiguration::safe_rolling()
            },
        );
        fx.sim.enable_service_deployments(api);
        fx.new_image_behaves(ImageBehaviour::Unhealthy);
        let report = fx.run(warn()).await;
        let RolloutOutcome::RolledBackByUs {
            rollback, reason, ..
        } = &report.outcome
        else {
            panic!(
                "api {api}: expected RolledBackByUs, got {:#?}",
                report.outcome
            );
        };
        assert!(matches!(reason, FailureReason::FailedTaskThreshold { .. }));
        assert!(rollback.completed, "api {api}: {rollback:?}");
        assert_eq!(rollback.task_definition_arn, fx.old_task_definition);
        assert_eq!(primary_task_definition(&fx), fx.old_task_definition);
        let (stops, updates) = if api { (1, 1) } else { (0, 2) };
        assert_eq!(calls(&fx, "StopServiceDeployment"), stops, "api {api}");
        assert_eq!(calls(&fx, "UpdateService"), updates, "api {api}");
    }
}

#[tokio::test]
async fn a_fail_fast_verdict_waits_for_ecs_own_rollback_instead_of_racing_it() {
    // Three tasks fail to pull at about the same time: we fail fast on the
    // first, the breaker trips on the third and ECS rolls back.
    for api in [true, false] {
        let fx = Fixture::safe(3);
        fx.sim.enable_service_deployments(api);
        fx.new_image_behaves(ImageBehaviour::PullError);
        let report = fx.run(RolloutConfig::default()).await;
        let RolloutOutcome::RolledBackByEcs { rollback, .. } = &report.outcome else {
            panic!(
                "api {api}: expected RolledBackByEcs, got {:#?}",
                report.outcome
            );
        };
        assert!(rollback.completed, "api {api}: {rollback:?}");
        assert_eq!(
            calls(&fx, "UpdateService"),
            1,
            "api {api}: two rollbacks raced"
        );
        assert_eq!(calls(&fx, "StopServiceDeployment"), 0, "api {api}");
    }
}

#[tokio::test]
async fn watch_resumes_a_deployment_recorded_by_its_service_deployment_arn() {
    for behaviour in [ImageBehaviour::Healthy, ImageBehaviour::CrashLoop] {
        let fx = Fixture::safe(2);
        fx.sim.enable_service_deployments(true);
        fx.new_image_behaves(behaviour);
        // An earlier run registered and deployed, recorded the service
        // deployment, and died.
        let rollout = fx.rollout(RolloutConfig::default());
        let (new, _) = fx.deploy_by_hand().await;
        let recorded = fx
            .sim
            .describe_service_deployments("runners", "runner")
            .await
            .unwrap()[0]
            .arn
            .clone();
        let report = rollout
            .watch(
                &fx.target,
                &RecordedDeployment {
                    deployment_id: String::new(),
                    service_deployment_arn: Some(recorded.clone()),
                    task_definition_arn: new.arn.clone(),
                    previous_task_definition_arn: fx.old_task_definition.clone(),
                },
            )
            .await
            .unwrap();
        let evidence = report.outcome.evidence().unwrap();
        assert_eq!(
            evidence.service_deployment_arn.as_deref(),
            Some(recorded.as_str())
        );
        match behaviour {
            ImageBehaviour::Healthy => {
                assert!(report.outcome.is_success(), "{:#?}", report.outcome)
            }
            _ => {
                assert!(
                    matches!(report.outcome, RolloutOutcome::RolledBackByEcs { .. }),
                    "{:#?}",
                    report.outcome
                );
                assert_eq!(
                    report.quarantine.unwrap().version.as_deref(),
                    Some("20250102.1")
                );
            }
        }
    }
}

/// Timeline: after the first poll found our service deployment, reading it
/// by ARN fails for a while (a 5xx storm that outlasts the retry layer's
/// budget of 10 attempts) and then works again. The failure is a missed
/// read of this poll, judged by `DescribeServices`; reads by ARN resume
/// once ECS answers, instead of listing the history on every later poll.
///
/// Kills the by-ARN error guard → `true` and its `==` → `!=` in
/// `Monitor::service_deployment` (both turn reads by ARN off for good).
#[tokio::test]
async fn a_transient_failure_of_the_read_by_arn_does_not_turn_it_off() {
    use std::sync::atomic::Ordering::SeqCst;
    let fx = Fixture::safe(3);
    fx.sim.enable_service_deployments(true);
    let backend = std::sync::Arc::new(ListOnly(
        fx.sim.clone(),
        ByArn::failing(ecs_rollout::ErrorClass::Transient, 12),
    ));
    let rollout =
        ecs_rollout::Rollout::new(backend.clone(), fx.clock.clone(), RolloutConfig::default())
            .unwrap();
    let report = rollout.run(&fx.target, &request()).await.unwrap();
    let RolloutOutcome::Succeeded { evidence } = &report.outcome else {
        panic!("expected Succeeded, got {:#?}", report.outcome);
    };
    assert_eq!(evidence.decided_by, Some(VerdictSource::ServiceDeployment));
    let by_arn = backend.1.as_ref().unwrap();
    assert_eq!(by_arn.failures.load(SeqCst), 0, "the storm happened");
    // Listed once to find it; by ARN through the storm and after it (the
    // monitor reads it whenever `DescribeServices` shows something it can
    // decide: here the deployment COMPLETED, then each poll of the bake).
    assert_eq!(
        calls(&fx, "DescribeServiceDeployments"),
        1,
        "{:?}",
        fx.sim.calls()
    );
    assert!(
        calls(&fx, "DescribeServiceDeploymentsByArn") >= 2,
        "{:?}",
        fx.sim.calls()
    );
}

/// Timeline: the updater's role may list service deployments but not
/// describe one by ARN (AccessDenied, a permanent error): reads by ARN
/// are tried once and the monitor lists the history from then on.
///
/// Kills the by-ARN error guard's `==` → `!=` the other way (a permanent
/// error would be retried by ARN on every poll).
#[tokio::test]
async fn a_refused_read_by_arn_is_tried_once_then_the_history_is_listed() {
    use std::sync::atomic::Ordering::SeqCst;
    let fx = Fixture::safe(3);
    fx.sim.enable_service_deployments(true);
    let backend = std::sync::Arc::new(ListOnly(
        fx.sim.clone(),
        ByArn::failing(ecs_rollout::ErrorClass::Permanent, u32::MAX),
    ));
    let rollout =
        ecs_rollout::Rollout::new(backend.clone(), fx.clock.clone(), RolloutConfig::default())
            .unwrap();
    let report = rollout.run(&fx.target, &request()).await.unwrap();
    let RolloutOutcome::Succeeded { evidence } = &report.outcome else {
        panic!("expected Succeeded, got {:#?}", report.outcome);
    };
    assert_eq!(evidence.decided_by, Some(VerdictSource::ServiceDeployment));
    assert_eq!(backend.1.as_ref().unwrap().attempts.load(SeqCst), 1);
    assert!(
        calls(&fx, "DescribeServiceDeployments") >= 3,
        "{:?}",
        fx.sim.calls()
    );
}

/// Timeline: `DescribeServiceDeployments` answers 503 for the first minute
/// of the watch (that endpoint's partial outage; the other calls answer).
/// A failure that may pass is not a refusal: the history is listed again
/// on the next polls, our service deployment is found once the endpoint
/// answers, and it decides the verdict. (Only an absent API or a permanent
/// error turns the service deployments off for the watch.)
#[tokio::test]
async fn a_passing_outage_of_the_service_deployment_api_does_not_turn_it_off() {
    let fx = Fixture::safe(2);
    fx.sim.enable_service_deployments(true);
    fx.sim.schedule_operation_outage(
        Duration::ZERO,
        Duration::from_secs(60),
        "DescribeServiceDeployments",
        ecs_rollout::ErrorClass::Transient,
    );
    let report = fx.run(RolloutConfig::default()).await;
    let RolloutOutcome::Succeeded { evidence } = &report.outcome else {
        panic!("expected Succeeded, got {:#?}", report.outcome);
    };
    assert_eq!(evidence.decided_by, Some(VerdictSource::ServiceDeployment));
    assert_eq!(
        evidence.service_deployment_status.as_deref(),
        Some("SUCCESSFUL")
    );
    // The outage was met: listed more than once before ours was found.
    assert!(
        calls(&fx, "DescribeServiceDeployments") >= 2,
        "{:?}",
        fx.sim.calls()
    );
}

/// Timeline: a backend that breaks `describe_service_deployments_by_arn`'s
/// contract (one answer per ARN, in the order asked): a batching layer in
/// front of ECS that pairs the answers of a fleet's request wrongly, so our
/// read by ARN comes back with another service's service deployment, rolled
/// back. An answer for an ARN we did not ask about is no answer: this poll
/// is judged by `DescribeServices`, our own service deployment (found by
/// listing) stays the recorded one, and the healthy version succeeds; it is
/// never reported rolled back by ECS for another service's rollback.
///
/// Kills the guard `&d.arn == arn` → `true` in `Monitor::service_deployment`.
#[tokio::test]
async fn an_answer_for_another_service_deployment_is_no_answer() {
    let fx = Fixture::safe(2);
    fx.sim.enable_service_deployments(true);
    let rollout = ecs_rollout::Rollout::new(
        std::sync::Arc::new(ListOnly(fx.sim.clone(), ByArn::misanswering())),
        fx.clock.clone(),
        RolloutConfig::default(),
    )
    .unwrap();
    let report = rollout.run(&fx.target, &request()).await.unwrap();
    let RolloutOutcome::Succeeded { evidence } = &report.outcome else {
        panic!("expected Succeeded, got {:#?}", report.outcome);
    };
    let ours = fx
        .sim
        .describe_service_deployments("runners", "runner")
        .await
        .unwrap()
        .into_iter()
        .find(|d| {
            d.target_task_definition_arn.as_deref() == Some(evidence.task_definition_arn.as_str())
        })
        .unwrap();
    assert_eq!(
        evidence.service_deployment_arn.as_deref(),
        Some(ours.arn.as_str())
    );
    assert!(calls(&fx, "DescribeServiceDeploymentsByArn") >= 1);
}

/// A service whose breaker is off, with the ServiceDeployment API, on an
/// updater that has run for a day (its monotonic clock far from zero): the
/// new image fails its health checks, our threshold fails the deployment
/// and we roll back with `StopServiceDeployment(ROLLBACK)`, which ECS acts
/// on `delay` after the request.
fn rollback_requested_late(delay: Duration) -> Fixture {
    rollback_requested_late_with(delay, SimTimings::default())
}

/// [`rollback_requested_late`] on a simulator with `timings`.
fn rollback_requested_late_with(delay: Duration, timings: SimTimings) -> Fixture {
    let fx = Fixture::with_timings(
        2,
        DeploymentConfiguration {
            circuit_breaker: None,
            ..DeploymentConfiguration::safe_rolling()
        },
        runner_spec(OLD_IMAGE),
        timings,
    );
    fx.clock.advance(Duration::from_secs(86_400));
    fx.sim.enable_service_deployments(true);
    fx.sim.set_requested_rollback_delay(delay);
    fx.new_image_behaves(ImageBehaviour::Unhealthy);
    fx
}

/// Our rollback, polling every 30 s, within `rollback_timeout`.
fn polling_every_30_s(rollback_timeout: Duration) -> RolloutConfig {
    RolloutConfig {
        rollback_timeout,
        monitor: MonitorConfig {
            poll_min: Duration::from_secs(30),
            poll_max: Duration::from_secs(30),
            ..MonitorConfig::default()
        },
        ..warn()
    }
}

/// Timeline: ECS accepts our `StopServiceDeployment(ROLLBACK)` but starts
/// the rollback deployment only 90 s later (the request is asynchronous;
/// the service deployment reads ROLLBACK_REQUESTED, the failed deployment
/// stays PRIMARY). We keep polling for it, then follow it to COMPLETED: a
/// completed rollback, whose duration counts from the request.
///
/// Kills, in `follow_rollback`, `waited = now - start` → `+` (a clock a
/// day old reads as the timeout long gone) and `waited >= timeout` → `<`.
#[tokio::test]
async fn a_rollback_ecs_starts_late_is_awaited_then_followed_to_its_end() {
    let fx = rollback_requested_late(Duration::from_secs(90));
    let report = fx.run(polling_every_30_s(Duration::from_secs(600))).await;
    let RolloutOutcome::RolledBackByUs { rollback, .. } = &report.outcome else {
        panic!("expected RolledBackByUs, got {:#?}", report.outcome);
    };
    assert!(rollback.completed, "{rollback:#?}");
    assert_eq!(rollback.task_definition_arn, fx.old_task_definition);
    let service = fx.sim.peek_service("runners", "runner").unwrap();
    let primary = service.primary().unwrap();
    assert_eq!(primary.task_definition_arn, fx.old_task_definition);
    assert_eq!(rollback.deployment_id.as_deref(), Some(primary.id.as_str()));
    assert!(
        rollback.duration >= Duration::from_secs(90)
            && rollback.duration < Duration::from_secs(600),
        "from the request to the end of the rollback: {:?}",
        rollback.duration
    );
    assert_eq!(calls(&fx, "StopServiceDeployment"), 1);
    assert_eq!(calls(&fx, "UpdateService"), 1, "no second rollback");
}

/// Timeline: ECS accepts our `StopServiceDeployment(ROLLBACK)` and never
/// starts a rollback deployment. The rollback fails at exactly its timeout
/// (100 s, not a multiple of the 30-s poll: the last wait is cut to the
/// 10 s left), says why, and the version is still a failure to quarantine.
///
/// Kills, in `follow_rollback`, the last sleep `timeout - waited` → `+`
/// (which overshoots the timeout by a whole poll).
#[tokio::test]
async fn a_rollback_ecs_never_starts_fails_at_its_timeout() {
    let fx = rollback_requested_late(Duration::MAX);
    let report = fx.run(polling_every_30_s(Duration::from_secs(100))).await;
    let RolloutOutcome::RollbackFailed { rollback, .. } = &report.outcome else {
        panic!("expected RollbackFailed, got {:#?}", report.outcome);
    };
    assert!(!rollback.completed);
    assert_eq!(rollback.deployment_id, None);
    assert_eq!(
        rollback.failure.as_deref(),
        Some("no rollback deployment became PRIMARY within 100 s")
    );
    assert_eq!(rollback.duration, Duration::from_secs(100));
    assert!(report.outcome.is_version_failure());
    assert!(report.quarantine.is_some());
    assert_eq!(calls(&fx, "UpdateService"), 1, "no second rollback");
}

/// Timeline: ECS starts the requested rollback at the very end of our
/// rollback timeout (as the poll at the deadline reads); its tasks are
/// healthy 20 s later. The rollback found at the deadline still gets two
/// polls, `poll_min` (30 s) apart, and the second sees it COMPLETED: a
/// completed rollback, not a timeout.
#[tokio::test]
async fn a_rollback_that_starts_at_the_deadline_still_gets_two_polls() {
    let fx = rollback_requested_late_with(
        Duration::from_secs(90),
        SimTimings {
            pending: Duration::from_secs(10),
            pending_jitter: Duration::ZERO,
            ..SimTimings::default()
        },
    );
    let report = fx.run(polling_every_30_s(Duration::from_secs(90))).await;
    let RolloutOutcome::RolledBackByUs { rollback, .. } = &report.outcome else {
        panic!("expected RolledBackByUs, got {:#?}", report.outcome);
    };
    assert!(rollback.completed, "{rollback:#?}");
    assert!(
        rollback.duration > Duration::from_secs(90)
            && rollback.duration <= Duration::from_secs(120),
        "{:?}",
        rollback.duration
    );
}

/// Timeline: a rollout fails (crash loop, ECS rolls it back: its service
/// deployment reads ROLLBACK_SUCCESSFUL); the image is fixed under the
/// same reference and the same request runs again ten minutes later,
/// reusing the identical revision. ECS's history lists the new service
/// deployment only 30 s after it started (eventually consistent),
/// so for a while the only one of that target revision is the old one.
/// It is not ours (it started long before our deployment was created):
/// the monitor must judge by `DescribeServices` until ours is listed,
/// never take the old ROLLBACK_SUCCESSFUL for a rollback of the new run.
///
/// Kills, in `service_deployment`'s search, `&&` → `||` between the target
/// revision and the start window, and the deleted `(Some(started),
/// Some(created))` arm.
#[tokio::test]
async fn an_older_service_deployment_of_the_same_revision_is_not_ours() {
    let fx = Fixture::safe(2);
    fx.sim.enable_service_deployments(true);
    fx.new_image_behaves(ImageBehaviour::CrashLoop);
    let first = fx.run(RolloutConfig::default()).await;
    let RolloutOutcome::RolledBackByEcs {
        evidence: failed, ..
    } = &first.outcome
    else {
        panic!("expected RolledBackByEcs, got {:#?}", first.outcome);
    };
    let old_sd = failed.service_deployment_arn.clone().expect("recorded");

    fx.new_image_behaves(ImageBehaviour::Healthy);
    fx.clock.advance(Duration::from_secs(600));
    fx.sim
        .set_service_deployment_listing_lag(Duration::from_secs(30));
    let second = fx.run(RolloutConfig::default()).await;
    let RolloutOutcome::Succeeded { evidence } = &second.outcome else {
        panic!("expected Succeeded, got {:#?}", second.outcome);
    };
    assert_eq!(
        evidence.task_definition_arn, failed.task_definition_arn,
        "the timeline: the identical revision is reused"
    );
    let ours = evidence.service_deployment_arn.as_deref();
    assert!(ours.is_some(), "ours is found once listed");
    assert_ne!(ours, Some(old_sd.as_str()));
    assert_eq!(primary_task_definition(&fx), evidence.task_definition_arn);
}
