//! `AwsEcs` reading deployment states over the wire from moto.
//!
//! moto never progresses or fails a deployment. The plugin
//! `moto_ecs_plugin.py` edits moto's in-process ECS backend the way ECS
//! itself would change the service; each test says which state it
//! simulates. The assertions are on what `AwsEcs` reads back through the
//! real ECS JSON protocol.

mod aws_support;

use aws_support::{account, completed_service, control, runner_task_definition};
use ecs_rollout::{
    DeploymentStatus, DesiredStatus, EcsApi, ListTasksRequest, RegisteredTaskDefinition,
    RolloutState, UpdateServiceRequest,
};
use serde_json::json;

/// A service `runners/runner` with `desired` tasks whose first deployment
/// (revision 1) has COMPLETED, and a registered revision 2.
async fn settled_service(
    a: &aws_support::Account,
    desired: i32,
) -> (RegisteredTaskDefinition, RegisteredTaskDefinition) {
    // Simulates: ECS finished the service's first deployment.
    let old = completed_service(a, "runner", desired).await;
    let new = a
        .ecs
        .register_task_definition(&runner_task_definition("runner"))
        .await
        .unwrap();
    (old, new)
}

async fn deploy(a: &aws_support::Account, arn: &str) -> String {
    a.ecs
        .update_service(&UpdateServiceRequest {
            cluster: "runners".into(),
            service: "runner".into(),
            task_definition: arn.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .deployment_id
}

async fn stopped_tasks(a: &aws_support::Account) -> Vec<ecs_rollout::TaskDescription> {
    let page = a
        .ecs
        .list_tasks(&ListTasksRequest {
            cluster: "runners".into(),
            service: "runner".into(),
            desired_status: DesiredStatus::Stopped,
            ..Default::default()
        })
        .await
        .unwrap();
    a.ecs.describe_tasks("runners", &page.items).await.unwrap()
}

/// Simulates: ECS completes our deployment (its tasks run healthy, the old
/// deployment's tasks are stopped and it drops out).
#[tokio::test]
async fn a_completed_deployment_reads_as_completed_and_primary() {
    let a = account();
    let (_, new) = settled_service(&a, 2).await;
    let ours = deploy(&a, &new.arn).await;
    control(&a.id, "complete", &json!({}));

    let service = a.ecs.describe_service("runners", "runner").await.unwrap();
    assert_eq!(service.deployments.len(), 1);
    let primary = service.primary().unwrap();
    assert_eq!(primary.id, ours);
    assert_eq!(primary.task_definition_arn, new.arn);
    assert_eq!(primary.rollout_state, Some(RolloutState::Completed));
    assert_eq!((primary.running_count, primary.desired_count), (2, 2));
    assert!(service.in_progress_deployments().is_empty());
}

/// Simulates: the circuit breaker fails our deployment without rollback —
/// three tasks stopped on an image pull error; the old deployment stays
/// ACTIVE.
#[tokio::test]
async fn a_failed_deployment_reads_with_failed_tasks_and_stopped_reasons() {
    let a = account();
    let (old, new) = settled_service(&a, 2).await;
    let ours = deploy(&a, &new.arn).await;
    control(
        &a.id,
        "fail",
        &json!({"failed_tasks": 3,
               "stopped_reason": "CannotPullContainerError: pull image manifest has been retried 5 time(s)",
               "stop_code": "TaskFailedToStart",
               "container_reason": "CannotPullContainerError: not found"}),
    );

    let service = a.ecs.describe_service("runners", "runner").await.unwrap();
    let primary = service.primary().unwrap();
    assert_eq!(primary.id, ours);
    assert_eq!(primary.rollout_state, Some(RolloutState::Failed));
    assert_eq!(primary.failed_tasks, 3);
    assert!(
        primary
            .rollout_state_reason
            .as_deref()
            .unwrap()
            .contains("circuit breaker")
    );
    let previous = service
        .deployments
        .iter()
        .find(|d| d.status == Some(DeploymentStatus::Active))
        .unwrap();
    assert_eq!(previous.task_definition_arn, old.arn);

    let stopped = stopped_tasks(&a).await;
    let ours_stopped: Vec<_> = stopped
        .iter()
        .filter(|t| t.started_by.as_deref() == Some(ours.as_str()))
        .collect();
    assert_eq!(ours_stopped.len(), 3);
    for task in ours_stopped {
        assert_eq!(task.stop_code.as_deref(), Some("TaskFailedToStart"));
        assert!(
            task.stopped_reason
                .as_deref()
                .unwrap()
                .starts_with("CannotPullContainerError")
        );
        assert_eq!(task.task_definition_arn, new.arn);
        assert!(task.stopped_at.is_some());
    }
}

/// Simulates: the circuit breaker fails our deployment and ECS rolls back —
/// a new PRIMARY deployment runs the OLD task definition, ours is ACTIVE
/// with rollout FAILED.
#[tokio::test]
async fn an_ecs_rollback_reads_as_a_primary_running_the_old_task_definition() {
    let a = account();
    let (old, new) = settled_service(&a, 2).await;
    let ours = deploy(&a, &new.arn).await;
    control(&a.id, "ecs_rollback", &json!({"failed_tasks": 2}));

    let service = a.ecs.describe_service("runners", "runner").await.unwrap();
    let primary = service.primary().unwrap();
    assert_ne!(primary.id, ours, "the rollback is a new deployment");
    assert_eq!(
        primary.task_definition_arn, old.arn,
        "PRIMARY runs the old revision"
    );
    assert_eq!(primary.rollout_state, Some(RolloutState::InProgress));
    let mine = service.deployment(&ours).unwrap();
    assert_eq!(mine.status, Some(DeploymentStatus::Active));
    assert_eq!(mine.rollout_state, Some(RolloutState::Failed));
    assert_eq!(mine.failed_tasks, 2);
    assert_eq!(service.task_definition_arn, old.arn);

    // Simulates: minutes later the rollback has completed and ours is gone.
    control(&a.id, "complete", &json!({}));
    let service = a.ecs.describe_service("runners", "runner").await.unwrap();
    assert!(service.deployment(&ours).is_none());
    assert_eq!(service.primary().unwrap().task_definition_arn, old.arn);
    assert_eq!(
        service.primary().unwrap().rollout_state,
        Some(RolloutState::Completed)
    );
}

/// Simulates: our deployment fails and ECS rolls back, and the rollback
/// completes. moto has no ServiceDeployment APIs; the plugin answers
/// ListServiceDeployments / DescribeServiceDeployments /
/// DescribeServiceRevisions from the service's deployment history, with the
/// statuses ECS reports (SUCCESSFUL, ROLLBACK_SUCCESSFUL).
#[tokio::test]
async fn service_deployments_read_the_rollback_history_newest_first() {
    let a = account();
    let (old, new) = settled_service(&a, 2).await;
    let ours = deploy(&a, &new.arn).await;
    control(&a.id, "ecs_rollback", &json!({"failed_tasks": 2}));
    control(&a.id, "complete", &json!({}));

    let history = a
        .ecs
        .describe_service_deployments("runners", "runner")
        .await
        .unwrap();
    let summary: Vec<(&str, Option<&str>, Vec<&str>)> = history
        .iter()
        .map(|d| {
            (
                d.status.as_str(),
                d.target_task_definition_arn.as_deref(),
                d.source_task_definition_arns
                    .iter()
                    .map(String::as_str)
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("SUCCESSFUL", Some(old.arn.as_str()), vec![new.arn.as_str()]),
            (
                "ROLLBACK_SUCCESSFUL",
                Some(new.arn.as_str()),
                vec![old.arn.as_str()]
            ),
            ("SUCCESSFUL", Some(old.arn.as_str()), vec![]),
        ]
    );
    let failed = &history[1];
    assert!(
        failed.arn.ends_with(ours.rsplit('/').next().unwrap()),
        "{}",
        failed.arn
    );
    assert!(
        failed
            .status_reason
            .as_deref()
            .is_some_and(|r| r.contains("circuit breaker"))
    );
    assert!(failed.started_at.is_some() && failed.finished_at.is_some());
}

/// Simulates: 25 more deployments of the service (UpdateService calls
/// alternating between two revisions; the plugin keeps each in the history). `ListServiceDeployments`
/// answers 20 per page, `DescribeServiceDeployments` takes at most 20 ARNs:
/// every page is read and every deployment described.
#[tokio::test]
async fn service_deployments_are_read_across_pages_and_batches() {
    let a = account();
    let (old, new) = settled_service(&a, 1).await;
    let mut ids = Vec::new();
    for i in 0..25 {
        let arn = if i % 2 == 0 { &new.arn } else { &old.arn };
        let update = a
            .ecs
            .update_service(&UpdateServiceRequest {
                cluster: "runners".into(),
                service: "runner".into(),
                task_definition: arn.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
        ids.push(update.deployment_id);
    }
    let history = a
        .ecs
        .describe_service_deployments("runners", "runner")
        .await
        .unwrap();
    assert_eq!(history.len(), 26, "{history:#?}");
    let mut arns: Vec<&str> = history.iter().map(|d| d.arn.as_str()).collect();
    arns.sort();
    arns.dedup();
    assert_eq!(arns.len(), 26, "pages overlap");
    for id in &ids {
        let suffix = id.rsplit('/').next().unwrap();
        assert!(
            arns.iter().any(|arn| arn.ends_with(suffix)),
            "{id} missing from {arns:#?} (ids {ids:#?})"
        );
    }
}
