//! The rollout engine over `AwsEcs` over moto: the monitor and rollback
//! paths run against real ECS wire responses.
//!
//! moto never progresses a deployment, so a test scripts what ECS does: the
//! `Scripted` decorator below forwards every call to `AwsEcs` and, when the
//! engine has made the N-th `DescribeServices` call after its K-th
//! `UpdateService`, first asks the moto plugin (`moto_ecs_plugin.py`, running
//! inside moto) to change the service the way ECS would. Each test says what
//! the plugin simulates. The engine waits on an auto-advancing manual clock,
//! so nothing sleeps for real.

#![cfg(feature = "aws")]

mod aws_support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_support::{
    Account, VERSION_LABEL, account, completed_service, control, runner_task_definition,
};
use ecs_rollout::aws::AwsEcs;
use ecs_rollout::{
    DeploymentStatus, EcsApi, FailureReason, ListTasksRequest, MARKER_TAG_PREFIX, Page, PageToken,
    RegisteredTaskDefinition, Result, RollbackInitiator, Rollout, RolloutConfig, RolloutOutcome,
    RolloutReport, RolloutRequest, RolloutState, RolloutTarget, ServiceDescription,
    TaskDefinitionSpec, TaskDescription, UpdateServiceRequest, UpdateServiceResult,
};
use runner_version::{ImageRef, Version};
use serde_json::{Value, json};
use update_clock::ManualClock;

const NEW_IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/runner:20260201.3";

/// Something ECS does to the service.
#[derive(Debug, Clone)]
enum Event {
    /// A plugin operation with extra body fields.
    Plugin(&'static str, Value),
    /// An operator deploys this task definition (UpdateService from outside).
    OperatorDeploys(String),
}

/// `event` happens right before the `describes`-th DescribeServices call
/// after the `update`-th UpdateService call (1 = ours, 2 = our rollback).
#[derive(Debug, Clone)]
struct Step {
    update: usize,
    describes: usize,
    event: Event,
}

#[derive(Debug, Default)]
struct Progress {
    updates: usize,
    describes_since_update: usize,
    steps: Vec<Step>,
}

/// `AwsEcs` plus a script of what ECS does meanwhile.
#[derive(Debug)]
struct Scripted {
    inner: AwsEcs,
    account: String,
    progress: Mutex<Progress>,
    /// Forward the ServiceDeployment APIs (the plugin serves them); off,
    /// they answer `Unsupported` (the `DescribeServices` fallback).
    service_deployments: bool,
}

impl Scripted {
    fn new(a: &Account, steps: Vec<Step>) -> Self {
        Self {
            inner: a.ecs.clone(),
            account: a.id.clone(),
            progress: Mutex::new(Progress {
                steps,
                ..Default::default()
            }),
            service_deployments: false,
        }
    }

    /// As `new`, with the ServiceDeployment APIs forwarded to the plugin.
    fn with_service_deployments(a: &Account, steps: Vec<Step>) -> Self {
        Self {
            service_deployments: true,
            ..Self::new(a, steps)
        }
    }

    fn due(&self) -> Vec<Event> {
        let mut p = self.progress.lock().unwrap();
        if p.updates == 0 {
            return Vec::new();
        }
        p.describes_since_update += 1;
        let (update, describes) = (p.updates, p.describes_since_update);
        let (due, later): (Vec<Step>, Vec<Step>) = std::mem::take(&mut p.steps)
            .into_iter()
            .partition(|s| s.update == update && s.describes == describes);
        p.steps = later;
        due.into_iter().map(|s| s.event).collect()
    }

    fn steps_left(&self) -> usize {
        self.progress.lock().unwrap().steps.len()
    }
}

#[async_trait]
impl EcsApi for Scripted {
    async fn describe_service(&self, cluster: &str, service: &str) -> Result<ServiceDescription> {
        for event in self.due() {
            match event {
                Event::Plugin(op, extra) => {
                    control(&self.account, op, &extra);
                }
                Event::OperatorDeploys(arn) => {
                    self.inner
                        .client()
                        .update_service()
                        .cluster(cluster)
                        .service(service)
                        .task_definition(arn)
                        .send()
                        .await
                        .unwrap();
                }
            }
        }
        self.inner.describe_service(cluster, service).await
    }
    async fn describe_task_definition(&self, td: &str) -> Result<RegisteredTaskDefinition> {
        self.inner.describe_task_definition(td).await
    }
    async fn register_task_definition(
        &self,
        spec: &TaskDefinitionSpec,
    ) -> Result<RegisteredTaskDefinition> {
        self.inner.register_task_definition(spec).await
    }
    async fn tag_resource(&self, arn: &str, tags: &BTreeMap<String, String>) -> Result<()> {
        self.inner.tag_resource(arn, tags).await
    }
    async fn deregister_task_definition(&self, arn: &str) -> Result<()> {
        self.inner.deregister_task_definition(arn).await
    }
    async fn list_task_definition_revisions(
        &self,
        family: &str,
        token: PageToken,
    ) -> Result<Page<String>> {
        self.inner
            .list_task_definition_revisions(family, token)
            .await
    }
    async fn update_service(&self, request: &UpdateServiceRequest) -> Result<UpdateServiceResult> {
        let result = self.inner.update_service(request).await;
        if result.is_ok() {
            let mut p = self.progress.lock().unwrap();
            p.updates += 1;
            p.describes_since_update = 0;
        }
        result
    }
    async fn list_tasks(&self, request: &ListTasksRequest) -> Result<Page<String>> {
        self.inner.list_tasks(request).await
    }
    async fn describe_tasks(&self, cluster: &str, arns: &[String]) -> Result<Vec<TaskDescription>> {
        self.inner.describe_tasks(cluster, arns).await
    }
    async fn describe_service_deployments(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<Vec<ecs_rollout::ServiceDeploymentInfo>> {
        if !self.service_deployments {
            return Err(ecs_rollout::Error::Unsupported {
                operation: "DescribeServiceDeployments",
                backend: "scripted",
            });
        }
        self.inner
            .describe_service_deployments(cluster, service)
            .await
    }
    async fn describe_service_deployments_by_arn(
        &self,
        arns: &[String],
    ) -> Result<Vec<Result<ecs_rollout::ServiceDeploymentInfo>>> {
        if !self.service_deployments {
            return Err(ecs_rollout::Error::Unsupported {
                operation: "DescribeServiceDeployments",
                backend: "scripted",
            });
        }
        self.inner.describe_service_deployments_by_arn(arns).await
    }
    /// Counts as an update: the script's steps after it are numbered from it.
    async fn stop_service_deployment(
        &self,
        arn: &str,
        stop_type: ecs_rollout::StopType,
    ) -> Result<()> {
        if !self.service_deployments {
            return Err(ecs_rollout::Error::Unsupported {
                operation: "StopServiceDeployment",
                backend: "scripted",
            });
        }
        let result = self.inner.stop_service_deployment(arn, stop_type).await;
        if result.is_ok() {
            let mut p = self.progress.lock().unwrap();
            p.updates += 1;
            p.describes_since_update = 0;
        }
        result
    }
}

/// Service `runners/runner` (2 tasks) running revision 1, whose first
/// deployment has completed. The plugin simulates ECS starting its tasks.
async fn running_service(a: &Account) -> RegisteredTaskDefinition {
    completed_service(a, "runner", 2).await
}

fn engine(ecs: Arc<Scripted>) -> Rollout {
    let config = RolloutConfig {
        runner_container: "runner".into(),
        version_label: Some(VERSION_LABEL.into()),
        ..Default::default()
    };
    let clock = Arc::new(ManualClock::auto_advancing(chrono::Utc::now()));
    Rollout::new(ecs, clock, config).unwrap()
}

/// Runs the engine over `ecs` to `request()` on `target()`; the run must not fail.
async fn run(ecs: &Arc<Scripted>) -> RolloutReport {
    engine(ecs.clone())
        .run(&target(), &request())
        .await
        .unwrap()
}

fn request() -> RolloutRequest {
    RolloutRequest {
        image: ImageRef::parse(NEW_IMAGE).unwrap(),
        version: Version::parse("20260201.3").unwrap(),
    }
}

fn target() -> RolloutTarget {
    RolloutTarget::new("runners", "runner")
}

fn step(update: usize, describes: usize, event: Event) -> Step {
    Step {
        update,
        describes,
        event,
    }
}

async fn marks(a: &Account, arn: &str) -> BTreeMap<String, String> {
    let tags = a.ecs.describe_task_definition(arn).await.unwrap().spec.tags;
    tags.into_iter()
        .filter(|(k, _)| k.starts_with(MARKER_TAG_PREFIX))
        .collect()
}

/// The plugin simulates: two polls after our UpdateService, ECS completes
/// our deployment (two healthy tasks of the new revision, old tasks stopped).
#[tokio::test]
async fn a_healthy_rollout_succeeds_with_our_revision_primary() {
    let a = account();
    let old = running_service(&a).await;
    let ecs = Arc::new(Scripted::new(
        &a,
        vec![step(1, 2, Event::Plugin("complete", json!({})))],
    ));
    let report = run(&ecs).await;

    let RolloutOutcome::Succeeded { evidence } = &report.outcome else {
        panic!("expected Succeeded, got {:#?}", report.outcome);
    };
    assert_eq!(ecs.steps_left(), 0);
    assert_eq!(evidence.previous_task_definition_arn, old.arn);
    let service = a.ecs.describe_service("runners", "runner").await.unwrap();
    let primary = service.primary().unwrap();
    assert_eq!(
        primary.id, evidence.deployment_id,
        "PRIMARY is our deployment"
    );
    assert_eq!(primary.task_definition_arn, evidence.task_definition_arn);
    assert_eq!(primary.rollout_state, Some(RolloutState::Completed));

    let running = a
        .ecs
        .describe_task_definition(&evidence.task_definition_arn)
        .await
        .unwrap();
    let runner = running.spec.container("runner").unwrap();
    assert_eq!(runner.image, NEW_IMAGE);
    assert_eq!(runner.docker_labels[VERSION_LABEL], "20260201.3");
    let changed: Vec<String> = ecs_rollout::diff(&old.spec, &running.spec)
        .into_iter()
        .map(|c| c.path)
        .collect();
    assert_eq!(
        changed,
        [
            format!("containerDefinitions[runner].dockerLabels.{VERSION_LABEL}"),
            "containerDefinitions[runner].image".to_owned()
        ]
    );
    assert!(report.quarantine.is_none());
    assert!(marks(&a, &evidence.task_definition_arn).await.is_empty());
    assert!(evidence.api_calls > 0);
}

/// The plugin simulates: two polls after our UpdateService the circuit
/// breaker fails our deployment (3 failed tasks) and ECS rolls back — a new
/// PRIMARY runs the OLD revision, ours is ACTIVE/FAILED; two polls later the
/// rollback deployment completes.
#[tokio::test]
async fn an_ecs_rollback_is_reported_as_rolled_back_by_ecs() {
    let a = account();
    let old = running_service(&a).await;
    let ecs = Arc::new(Scripted::new(
        &a,
        vec![
            step(
                1,
                2,
                Event::Plugin("ecs_rollback", json!({"failed_tasks": 3})),
            ),
            step(1, 4, Event::Plugin("complete", json!({}))),
        ],
    ));
    let report = run(&ecs).await;

    let RolloutOutcome::RolledBackByEcs {
        reason,
        rollback,
        evidence,
    } = &report.outcome
    else {
        panic!("expected RolledBackByEcs, got {:#?}", report.outcome);
    };
    assert_eq!(ecs.steps_left(), 0);
    assert!(
        matches!(reason, FailureReason::CircuitBreaker { .. }),
        "{reason:?}"
    );
    assert_eq!(rollback.initiator, RollbackInitiator::Ecs);
    assert!(rollback.completed);
    assert_eq!(rollback.task_definition_arn, old.arn);
    assert_eq!(evidence.failed_tasks, 3);

    let service = a.ecs.describe_service("runners", "runner").await.unwrap();
    assert_eq!(service.primary().unwrap().task_definition_arn, old.arn);
    let quarantine = report.quarantine.as_ref().expect("a quarantine notice");
    assert_eq!(quarantine.task_definition_arn, evidence.task_definition_arn);
    let marks = marks(&a, &evidence.task_definition_arn).await;
    assert_eq!(
        marks[&format!("{MARKER_TAG_PREFIX}outcome")],
        "rolled_back_by_ecs"
    );
    // The rollback target is never deregistered.
    let status = a
        .ecs
        .describe_task_definition(&old.arn)
        .await
        .unwrap()
        .status;
    assert_eq!(status, ecs_rollout::TaskDefinitionStatus::Active);
}

/// The plugin simulates: two polls after our UpdateService the circuit
/// breaker fails our deployment WITHOUT rollback (3 tasks stopped: essential
/// container exited); after our own rollback UpdateService, ECS completes
/// the rollback deployment two polls later.
#[tokio::test]
async fn a_failed_deployment_ecs_does_not_roll_back_is_rolled_back_by_us() {
    let a = account();
    let old = running_service(&a).await;
    let ecs = Arc::new(Scripted::new(
        &a,
        vec![
            step(1, 2, Event::Plugin("fail", json!({"failed_tasks": 3}))),
            step(2, 2, Event::Plugin("complete", json!({}))),
        ],
    ));
    let report = run(&ecs).await;

    let RolloutOutcome::RolledBackByUs {
        reason,
        rollback,
        evidence,
    } = &report.outcome
    else {
        panic!("expected RolledBackByUs, got {:#?}", report.outcome);
    };
    assert_eq!(ecs.steps_left(), 0);
    assert!(
        matches!(reason, FailureReason::CircuitBreaker { .. }),
        "{reason:?}"
    );
    assert_eq!(rollback.initiator, RollbackInitiator::Us);
    assert!(rollback.completed);
    assert_eq!(evidence.failed_tasks, 3);

    let service = a.ecs.describe_service("runners", "runner").await.unwrap();
    let primary = service.primary().unwrap();
    assert_eq!(primary.task_definition_arn, old.arn);
    assert_eq!(Some(primary.id.clone()), rollback.deployment_id);
    let marks = marks(&a, &evidence.task_definition_arn).await;
    assert_eq!(
        marks[&format!("{MARKER_TAG_PREFIX}outcome")],
        "rolled_back_by_us"
    );
}

/// The plugin simulates: right after our UpdateService two tasks of our
/// deployment stop with CannotPullContainerError while the rollout is still
/// IN_PROGRESS (the breaker has not tripped); after our rollback, ECS
/// completes it.
#[tokio::test]
async fn an_image_pull_error_fails_fast_and_is_rolled_back_by_us() {
    let a = account();
    let old = running_service(&a).await;
    let stopped = json!({
        "count": 2, "last_status": "STOPPED", "health": "UNKNOWN",
        "stopped_reason": "CannotPullContainerError: pull image manifest has been retried 5 time(s): not found",
        "stop_code": "TaskFailedToStart",
        "container_reason": "CannotPullContainerError: not found"
    });
    let ecs = Arc::new(Scripted::new(
        &a,
        vec![
            step(1, 1, Event::Plugin("run_tasks", stopped)),
            step(2, 2, Event::Plugin("complete", json!({}))),
        ],
    ));
    let report = run(&ecs).await;

    let RolloutOutcome::RolledBackByUs {
        reason, evidence, ..
    } = &report.outcome
    else {
        panic!("expected RolledBackByUs, got {:#?}", report.outcome);
    };
    let FailureReason::DeterministicStartFailure { stopped_reason } = reason else {
        panic!("expected a fail-fast reason, got {reason:?}");
    };
    assert!(
        stopped_reason.contains("CannotPullContainerError"),
        "{stopped_reason}"
    );
    assert!(
        evidence
            .stopped_task_reasons
            .iter()
            .any(|r| r.contains("CannotPullContainerError")),
        "{:?}",
        evidence.stopped_task_reasons
    );
    let service = a.ecs.describe_service("runners", "runner").await.unwrap();
    assert_eq!(service.primary().unwrap().task_definition_arn, old.arn);
}

/// The plugin simulates: two polls after our UpdateService an operator
/// deploys another revision (UpdateService from outside; the plugin makes
/// it a new PRIMARY, as ECS does). Ours never failed.
#[tokio::test]
async fn an_operator_deploying_meanwhile_supersedes_us() {
    let a = account();
    running_service(&a).await;
    let operators = a
        .ecs
        .register_task_definition(&runner_task_definition("runner"))
        .await
        .unwrap();
    let ecs = Arc::new(Scripted::new(
        &a,
        vec![step(1, 2, Event::OperatorDeploys(operators.arn.clone()))],
    ));
    let report = run(&ecs).await;

    let RolloutOutcome::Superseded {
        task_definition_arn,
        by_deployment_id,
        evidence,
    } = &report.outcome
    else {
        panic!("expected Superseded, got {:#?}", report.outcome);
    };
    assert_eq!(task_definition_arn, &operators.arn);
    assert_ne!(by_deployment_id, &evidence.deployment_id);
    let service = a.ecs.describe_service("runners", "runner").await.unwrap();
    let primary = service.primary().unwrap();
    assert_eq!(&primary.id, by_deployment_id);
    let ours = service.deployment(&evidence.deployment_id).unwrap();
    assert_eq!(ours.status, Some(DeploymentStatus::Active));
}

/// The plugin simulates nothing for our deployment: it stays IN_PROGRESS
/// with no task ever running, like a breaker that never trips. The engine
/// times out (30 min on the manual clock), rolls back, and ECS completes
/// the rollback two polls later.
#[tokio::test]
async fn a_deployment_that_never_finishes_times_out_and_is_rolled_back() {
    let a = account();
    let old = running_service(&a).await;
    let ecs = Arc::new(Scripted::new(
        &a,
        vec![step(2, 2, Event::Plugin("complete", json!({})))],
    ));
    let report = run(&ecs).await;
    let RolloutOutcome::TimedOut {
        timeout, rollback, ..
    } = &report.outcome
    else {
        panic!("expected TimedOut, got {:#?}", report.outcome);
    };
    assert_eq!(*timeout, RolloutConfig::default().monitor.timeout);
    assert!(rollback.completed);
    let service = a.ecs.describe_service("runners", "runner").await.unwrap();
    assert_eq!(service.primary().unwrap().task_definition_arn, old.arn);
}

/// The plugin simulates a throttling storm: after our UpdateService, the
/// next 4 DescribeServices and 3 ListTasks calls are answered with
/// ThrottlingException; two polls later ECS completes our deployment. The
/// engine's one retry layer rides it out.
#[tokio::test]
async fn a_throttling_storm_over_the_wire_is_ridden_out() {
    let a = account();
    running_service(&a).await;
    let storm = |operation: &str, n: usize| {
        Event::Plugin(
            "faults",
            json!({"operation": operation, "faults": vec!["ThrottlingException"; n]}),
        )
    };
    let ecs = Arc::new(Scripted::new(
        &a,
        vec![
            step(1, 1, storm("describe_services", 4)),
            step(1, 1, storm("list_tasks", 3)),
            step(1, 3, Event::Plugin("complete", json!({}))),
        ],
    ));
    let report = run(&ecs).await;
    let RolloutOutcome::Succeeded { evidence } = &report.outcome else {
        panic!("expected Succeeded, got {:#?}", report.outcome);
    };
    assert!(
        evidence.throttled_calls >= 7,
        "throttled calls seen: {}",
        evidence.throttled_calls
    );
}

/// The plugin simulates eventually consistent reads: the first two
/// DescribeServices answers after our UpdateService still list only the
/// old PRIMARY deployment; at the fourth ECS completes our deployment. A
/// stale read is not someone else's deployment: no false `Superseded`.
#[tokio::test]
async fn a_stale_first_read_after_update_service_is_not_superseded() {
    let a = account();
    running_service(&a).await;
    control(&a.id, "stale_reads", &json!({"count": 2}));
    let ecs = Arc::new(Scripted::new(
        &a,
        vec![step(1, 4, Event::Plugin("complete", json!({})))],
    ));
    let report = run(&ecs).await;
    let RolloutOutcome::Succeeded { evidence } = &report.outcome else {
        panic!("expected Succeeded, got {:#?}", report.outcome);
    };
    let service = a.ecs.describe_service("runners", "runner").await.unwrap();
    assert_eq!(service.primary().unwrap().id, evidence.deployment_id);
}

/// The plugin simulates a throttling storm of about two minutes: after our
/// UpdateService, the next 30 DescribeServices calls are throttled (three
/// polls in a row exhaust the retry layer); then ECS completes our
/// deployment. The monitor counts missed polls and still reaches a verdict.
#[tokio::test]
async fn a_two_minute_throttling_storm_after_update_service_ends_with_a_verdict() {
    let a = account();
    running_service(&a).await;
    let ecs = Arc::new(Scripted::new(
        &a,
        vec![
            step(
                1,
                1,
                Event::Plugin(
                    "faults",
                    json!({"operation": "describe_services",
                           "faults": vec!["ThrottlingException"; 30]}),
                ),
            ),
            step(1, 32, Event::Plugin("complete", json!({}))),
        ],
    ));
    let report = run(&ecs).await;
    let RolloutOutcome::Succeeded { evidence } = &report.outcome else {
        panic!("expected Succeeded, got {:#?}", report.outcome);
    };
    assert_eq!(evidence.missed_polls, 3, "{evidence:?}");
    assert!(evidence.throttled_calls >= 30, "{evidence:?}");
    assert!(
        evidence.deployment_duration >= std::time::Duration::from_secs(90),
        "{:?}",
        evidence.deployment_duration
    );
}

/// The plugin simulates a read permission missing from the updater's role:
/// after our UpdateService every DescribeServices is AccessDeniedException
/// until the monitor's timeout. The run ends with `MonitoringLost` (nothing
/// rolled back or marked); once the permission is back (faults cleared) and
/// ECS completed the deployment, resuming it reaches `Succeeded`.
#[tokio::test]
async fn reads_denied_after_update_service_are_monitoring_lost_and_resume_succeeds() {
    let a = account();
    running_service(&a).await;
    let ecs = Arc::new(Scripted::new(
        &a,
        vec![step(
            1,
            1,
            Event::Plugin(
                "faults",
                json!({"operation": "describe_services",
                       "faults": vec!["AccessDeniedException"; 1000]}),
            ),
        )],
    ));
    let report = run(&ecs).await;
    let RolloutOutcome::MonitoringLost {
        deployment_id,
        task_definition_arn,
        previous_task_definition_arn,
        last_error,
        ..
    } = &report.outcome
    else {
        panic!("expected MonitoringLost, got {:#?}", report.outcome);
    };
    assert!(last_error.contains("AccessDenied"), "{last_error}");
    assert!(report.quarantine.is_none());
    assert!(marks(&a, task_definition_arn).await.is_empty());

    control(&a.id, "clear_faults", &json!({}));
    control(&a.id, "complete", &json!({}));
    let report = engine(Arc::new(Scripted::new(&a, Vec::new())))
        .resume(
            &target(),
            &request(),
            &ecs_rollout::ResumePoint::Deployed {
                deployment_id: deployment_id.clone(),
                task_definition_arn: task_definition_arn.clone(),
                previous_task_definition_arn: previous_task_definition_arn.clone(),
            },
        )
        .await
        .unwrap();
    let RolloutOutcome::Succeeded { evidence } = &report.outcome else {
        panic!("expected Succeeded, got {:#?}", report.outcome);
    };
    assert_eq!(&evidence.deployment_id, deployment_id);
}

/// moto keeps the `deploymentController` a service was created with. A
/// CODE_DEPLOY or EXTERNAL service is refused before anything is registered.
#[tokio::test]
async fn code_deploy_and_external_services_are_refused_over_the_wire() {
    use aws_sdk_ecs::types::{DeploymentController, DeploymentControllerType};
    for controller in [
        DeploymentControllerType::CodeDeploy,
        DeploymentControllerType::External,
    ] {
        let a = account();
        let registered = a
            .ecs
            .register_task_definition(&runner_task_definition("runner"))
            .await
            .unwrap();
        a.client
            .create_cluster()
            .cluster_name("runners")
            .send()
            .await
            .unwrap();
        a.client
            .create_service()
            .cluster("runners")
            .service_name("runner")
            .task_definition(&registered.arn)
            .desired_count(1)
            .launch_type(aws_sdk_ecs::types::LaunchType::Ec2)
            .deployment_controller(
                DeploymentController::builder()
                    .r#type(controller.clone())
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        let ecs = Arc::new(Scripted::new(&a, Vec::new()));
        let err = engine(ecs).run(&target(), &request()).await.unwrap_err();
        assert!(
            matches!(&err, ecs_rollout::Error::UnsupportedDeploymentController { controller: c, .. }
                if c == controller.as_str()),
            "{err}"
        );
        let revisions = ecs_rollout::list_all_revisions(&a.ecs, "runner")
            .await
            .unwrap();
        assert_eq!(revisions, vec![registered.arn], "nothing registered");
    }
}

/// Verdict by ServiceDeployment status. The plugin serves
/// ListServiceDeployments / DescribeServiceDeployments /
/// DescribeServiceRevisions from the service's deployments and simulates, in
/// three runs: (1) ECS completes our deployment two polls in (SUCCESSFUL);
/// (2) the breaker fails it and ECS rolls back (ROLLBACK_IN_PROGRESS), the
/// rollback completing two polls later (ROLLBACK_SUCCESSFUL); (3) our
/// service deployment turns STOPPED (set by the plugin, as after an
/// operator's stop) while `DescribeServices` still shows it PRIMARY.
#[tokio::test]
async fn verdict_by_service_deployment_status() {
    use ecs_rollout::VerdictSource;
    // (1) SUCCESSFUL.
    let a = account();
    running_service(&a).await;
    let ecs = Arc::new(Scripted::with_service_deployments(
        &a,
        vec![step(1, 2, Event::Plugin("complete", json!({})))],
    ));
    let report = run(&ecs).await;
    let RolloutOutcome::Succeeded { evidence } = &report.outcome else {
        panic!("expected Succeeded, got {:#?}", report.outcome);
    };
    assert_eq!(evidence.decided_by, Some(VerdictSource::ServiceDeployment));
    assert_eq!(
        evidence.service_deployment_status.as_deref(),
        Some("SUCCESSFUL")
    );
    let arn = evidence.service_deployment_arn.as_deref().unwrap();
    assert!(
        arn.ends_with(evidence.deployment_id.rsplit('/').next().unwrap()),
        "{arn}"
    );

    // (2) ROLLBACK_SUCCESSFUL.
    let a = account();
    let old = running_service(&a).await;
    let ecs = Arc::new(Scripted::with_service_deployments(
        &a,
        vec![
            step(
                1,
                2,
                Event::Plugin("ecs_rollback", json!({"failed_tasks": 3})),
            ),
            step(1, 4, Event::Plugin("complete", json!({}))),
        ],
    ));
    let report = run(&ecs).await;
    let RolloutOutcome::RolledBackByEcs {
        rollback, evidence, ..
    } = &report.outcome
    else {
        panic!("expected RolledBackByEcs, got {:#?}", report.outcome);
    };
    assert_eq!(ecs.steps_left(), 0);
    assert!(rollback.completed, "{rollback:?}");
    assert_eq!(rollback.task_definition_arn, old.arn);
    assert_eq!(evidence.decided_by, Some(VerdictSource::ServiceDeployment));
    assert_eq!(
        evidence.service_deployment_status.as_deref(),
        Some("ROLLBACK_SUCCESSFUL")
    );
    assert!(report.quarantine.is_some());

    // (3) STOPPED.
    let a = account();
    running_service(&a).await;
    let ecs = Arc::new(Scripted::with_service_deployments(
        &a,
        vec![step(
            1,
            2,
            Event::Plugin("sd_status", json!({"status": "STOPPED"})),
        )],
    ));
    let report = run(&ecs).await;
    let RolloutOutcome::DeploymentStopped { evidence, .. } = &report.outcome else {
        panic!("expected DeploymentStopped, got {:#?}", report.outcome);
    };
    assert_eq!(evidence.decided_by, Some(VerdictSource::ServiceDeployment));
    let stops = control(&a.id, "stops", &json!({}));
    assert!(
        stops["stops"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["arn"].as_str() != evidence.service_deployment_arn.as_deref()),
        "nothing stopped by us: {stops}"
    );
    let service = a.ecs.describe_service("runners", "runner").await.unwrap();
    assert_eq!(
        service.primary().unwrap().id,
        evidence.deployment_id,
        "nothing rolled back"
    );
}

/// Our rollback through StopServiceDeployment. The plugin simulates: right
/// after our UpdateService two tasks of our deployment stop with
/// CannotPullContainerError (we fail fast; the breaker has not tripped and
/// ECS does not roll back within our wait); our StopServiceDeployment
/// (stopType ROLLBACK) makes ECS start a rollback deployment of the
/// previous revision, which completes two polls later.
#[tokio::test]
async fn our_rollback_through_stop_service_deployment() {
    let a = account();
    let old = running_service(&a).await;
    let stopped = json!({
        "count": 2, "last_status": "STOPPED", "health": "UNKNOWN",
        "stopped_reason": "CannotPullContainerError: pull image manifest has been retried 5 time(s): not found",
        "stop_code": "TaskFailedToStart",
        "container_reason": "CannotPullContainerError: not found"
    });
    let ecs = Arc::new(Scripted::with_service_deployments(
        &a,
        vec![
            step(1, 1, Event::Plugin("run_tasks", stopped)),
            step(2, 2, Event::Plugin("complete", json!({}))),
        ],
    ));
    let report = run(&ecs).await;
    let RolloutOutcome::RolledBackByUs {
        reason,
        rollback,
        evidence,
    } = &report.outcome
    else {
        panic!("expected RolledBackByUs, got {:#?}", report.outcome);
    };
    assert_eq!(ecs.steps_left(), 0);
    assert!(
        matches!(reason, FailureReason::DeterministicStartFailure { .. }),
        "{reason:?}"
    );
    assert!(rollback.completed, "{rollback:?}");
    assert_eq!(rollback.initiator, RollbackInitiator::Us);
    let stops = control(&a.id, "stops", &json!({}));
    assert_eq!(
        stops["stops"],
        json!([{"arn": evidence.service_deployment_arn.clone().unwrap(), "stopType": "ROLLBACK"}])
    );
    let service = a.ecs.describe_service("runners", "runner").await.unwrap();
    let primary = service.primary().unwrap();
    assert_eq!(primary.task_definition_arn, old.arn);
    assert_eq!(Some(primary.id.clone()), rollback.deployment_id);
    assert_eq!(primary.rollout_state, Some(RolloutState::Completed));
}
