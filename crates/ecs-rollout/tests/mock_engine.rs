//! The engine against a mocked `EcsApi` (mockall): call order, calls that
//! must never happen, and retention's protection of the rollback target.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use async_trait::async_trait;
use ecs_rollout::{
    ContainerDefinition, ContainerState, Deployment, DeploymentConfiguration, DeploymentStatus,
    EcsApi, Error, HealthStatus, ListTasksRequest, Page, PageToken, RegisteredTaskDefinition,
    Result, Rollout, RolloutConfig, RolloutOutcome, RolloutRequest, RolloutState, RolloutTarget,
    ServiceDescription, TaskDefinitionSpec, TaskDescription, UpdateServiceRequest,
    UpdateServiceResult, prune_revisions,
};
use mockall::{Sequence, mock, predicate::eq};
use update_clock::ManualClock;

mock! {
    pub Ecs {}

    #[async_trait]
    impl EcsApi for Ecs {
        async fn describe_service(&self, cluster: &str, service: &str) -> Result<ServiceDescription>;
        async fn describe_task_definition(&self, task_definition: &str) -> Result<RegisteredTaskDefinition>;
        async fn register_task_definition(&self, spec: &TaskDefinitionSpec) -> Result<RegisteredTaskDefinition>;
        async fn tag_resource(&self, arn: &str, tags: &BTreeMap<String, String>) -> Result<()>;
        async fn deregister_task_definition(&self, arn: &str) -> Result<()>;
        async fn list_task_definition_revisions(&self, family: &str, next_token: PageToken) -> Result<Page<String>>;
        async fn update_service(&self, request: &UpdateServiceRequest) -> Result<UpdateServiceResult>;
        async fn list_tasks(&self, request: &ListTasksRequest) -> Result<Page<String>>;
        async fn describe_tasks(&self, cluster: &str, task_arns: &[String]) -> Result<Vec<TaskDescription>>;
    }
}

impl std::fmt::Debug for MockEcs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MockEcs")
    }
}

const OLD: &str = "arn:aws:ecs:us-east-1:1:task-definition/runner:1";
const NEW: &str = "arn:aws:ecs:us-east-1:1:task-definition/runner:2";

fn arn(revision: i32) -> String {
    format!("arn:aws:ecs:us-east-1:1:task-definition/runner:{revision}")
}

fn deployment(id: &str, td: &str, status: DeploymentStatus, state: RolloutState) -> Deployment {
    Deployment {
        id: id.into(),
        status: Some(status),
        task_definition_arn: td.into(),
        rollout_state: Some(state),
        desired_count: 1,
        running_count: 1,
        ..Default::default()
    }
}

fn service(deployments: Vec<Deployment>) -> ServiceDescription {
    ServiceDescription {
        service_name: "runner".into(),
        status: "ACTIVE".into(),
        task_definition_arn: deployments[0].task_definition_arn.clone(),
        desired_count: 1,
        running_count: 1,
        deployments,
        deployment_configuration: DeploymentConfiguration::safe_rolling(),
        ..Default::default()
    }
}

fn spec(image: &str) -> TaskDefinitionSpec {
    TaskDefinitionSpec {
        family: "runner".into(),
        container_definitions: vec![ContainerDefinition {
            name: "runner".into(),
            image: image.into(),
            health_check: Some(Default::default()),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn request() -> RolloutRequest {
    RolloutRequest {
        image: "example.com/runner:20250102.1".parse().unwrap(),
        version: "20250102.1".parse().unwrap(),
    }
}

fn rollout(mock: MockEcs) -> Rollout {
    let clock = Arc::new(ManualClock::auto_advancing(ManualClock::EPOCH_2025));
    Rollout::new(Arc::new(mock), clock, RolloutConfig::default()).unwrap()
}

#[tokio::test]
async fn busy_service_registers_and_deploys_nothing() {
    let mut mock = MockEcs::new();
    mock.expect_describe_service().returning(|_, _| {
        Ok(service(vec![
            deployment(
                "ecs-svc/2",
                NEW,
                DeploymentStatus::Primary,
                RolloutState::InProgress,
            ),
            deployment(
                "ecs-svc/1",
                OLD,
                DeploymentStatus::Active,
                RolloutState::Completed,
            ),
        ]))
    });
    mock.expect_register_task_definition().never();
    mock.expect_update_service().never();
    mock.expect_deregister_task_definition().never();
    let err = rollout(mock)
        .run(&RolloutTarget::new("c", "runner"), &request())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Busy { in_progress, .. } if in_progress.len() == 2),
        "{err}"
    );
}

#[tokio::test]
async fn healthy_rollout_calls_in_order_and_never_deregisters() {
    let mut mock = MockEcs::new();
    let mut seq = Sequence::new();
    let deployed = Arc::new(AtomicBool::new(false));

    let d = deployed.clone();
    mock.expect_describe_service().returning(move |_, _| {
        Ok(if d.load(Ordering::SeqCst) {
            service(vec![deployment(
                "ecs-svc/ours",
                NEW,
                DeploymentStatus::Primary,
                RolloutState::Completed,
            )])
        } else {
            service(vec![deployment(
                "ecs-svc/1",
                OLD,
                DeploymentStatus::Primary,
                RolloutState::Completed,
            )])
        })
    });
    mock.expect_describe_task_definition()
        .with(eq(OLD))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| {
            Ok(RegisteredTaskDefinition {
                arn: OLD.into(),
                revision: 1,
                spec: spec("example.com/runner:20250101.1"),
                ..Default::default()
            })
        });
    // Idempotent registration: one look at the family's newest revision
    // (the running one here, so nothing to reuse).
    mock.expect_describe_task_definition()
        .with(eq("runner"))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| {
            Ok(RegisteredTaskDefinition {
                arn: OLD.into(),
                revision: 1,
                spec: spec("example.com/runner:20250101.1"),
                ..Default::default()
            })
        });
    mock.expect_register_task_definition()
        .withf(|s| {
            s.container_definitions[0]
                .image
                .ends_with("runner:20250102.1")
        })
        .times(1)
        .in_sequence(&mut seq)
        .returning(|s| {
            Ok(RegisteredTaskDefinition {
                arn: NEW.into(),
                revision: 2,
                spec: s.clone(),
                ..Default::default()
            })
        });
    let d = deployed.clone();
    mock.expect_update_service()
        .withf(|r| r.task_definition == NEW && !r.force_new_deployment)
        .times(1)
        .in_sequence(&mut seq)
        .returning(move |_| {
            d.store(true, Ordering::SeqCst);
            Ok(UpdateServiceResult {
                deployment_id: "ecs-svc/ours".into(),
                ..Default::default()
            })
        });
    mock.expect_list_tasks().returning(|r| {
        Ok(Page {
            items: match r.desired_status {
                ecs_rollout::DesiredStatus::Running => vec!["task/1".into()],
                ecs_rollout::DesiredStatus::Stopped => vec![],
            },
            next_token: None,
        })
    });
    mock.expect_describe_tasks().returning(|_, arns| {
        Ok(arns
            .iter()
            .map(|arn| TaskDescription {
                task_arn: arn.clone(),
                task_definition_arn: NEW.into(),
                started_by: Some("ecs-svc/ours".into()),
                last_status: "RUNNING".into(),
                containers: vec![ContainerState {
                    name: "runner".into(),
                    health_status: HealthStatus::Healthy,
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect())
    });
    mock.expect_deregister_task_definition().never();
    mock.expect_tag_resource().never();

    let report = rollout(mock)
        .run(&RolloutTarget::new("c", "runner"), &request())
        .await
        .unwrap();
    assert!(
        matches!(report.outcome, RolloutOutcome::Succeeded { .. }),
        "{:#?}",
        report.outcome
    );
}

#[tokio::test]
async fn retention_walks_every_page_and_spares_protected_revisions() {
    let mut mock = MockEcs::new();
    let mut seq = Sequence::new();
    mock.expect_list_task_definition_revisions()
        .with(eq("runner"), eq(None::<String>))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| {
            Ok(Page {
                items: (1..=3).map(arn).collect(),
                next_token: Some("page-2".into()),
            })
        });
    mock.expect_list_task_definition_revisions()
        .with(eq("runner"), eq(Some("page-2".to_owned())))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| {
            Ok(Page {
                items: (4..=6).map(arn).collect(),
                next_token: None,
            })
        });
    // Keep the newest 2 (5, 6); revision 2 is the rollback target.
    for revision in [1, 3, 4] {
        mock.expect_deregister_task_definition()
            .with(eq(arn(revision)))
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_| Ok(()));
    }
    let done = prune_revisions(&mock, "runner", 2, &[arn(2)])
        .await
        .unwrap();
    assert_eq!(done, vec![arn(1), arn(3), arn(4)]);
}
