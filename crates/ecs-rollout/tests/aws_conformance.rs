//! The `EcsApi` conformance suite (feature `conformance`) on `AwsEcs` over
//! moto. Where moto does not behave like ECS, the plugin
//! `moto_ecs_plugin.py` does: UpdateService starts a new PRIMARY
//! deployment; ListTaskDefinitions/ListTasks paginate; the service's tasks
//! are started by the plugin (`run_tasks`), since moto's services start none;
//! the ServiceDeployment APIs are answered from the deployment history.
#![cfg(all(feature = "aws", feature = "conformance"))]

mod aws_support;

use aws_support::{account, completed_service, control, runner_task_definition};
use ecs_rollout::conformance;
use serde_json::json;

#[tokio::test]
async fn task_definition_behaviours() {
    let a = account();
    conformance::register_describe_round_trip(&a.ecs, &runner_task_definition("round-trip")).await;
    conformance::tag_resource_merges_tags(&a.ecs, &runner_task_definition("tags")).await;
    conformance::deregister_hides_revision_from_listing(
        &a.ecs,
        &runner_task_definition("deregister"),
    )
    .await;
    a.client
        .create_cluster()
        .cluster_name("runners")
        .send()
        .await
        .unwrap();
    conformance::missing_resources_are_not_found(&a.ecs, "runners").await;
}

#[tokio::test]
async fn revision_listing_paginates() {
    let a = account();
    let ecs = a.ecs.clone().with_page_size(3);
    conformance::list_revisions_paginates(&ecs, &runner_task_definition("paged"), 8).await;
}

#[tokio::test]
async fn service_behaviours() {
    let a = account();
    completed_service(&a, "svc-family", 2).await;
    conformance::update_service_returns_primary_deployment_id(
        &a.ecs,
        "runners",
        "runner",
        &runner_task_definition("svc-family"),
    )
    .await;
    conformance::describe_services_answers_each_in_order(&a.ecs, "runners", "runner").await;
    conformance::service_deployments_are_optional(&a.ecs, "runners", "runner").await;
    conformance::service_deployments_by_arn_answer_each_in_order(&a.ecs, "runners", "runner").await;
}

#[tokio::test]
async fn task_listing_paginates_over_more_than_100_tasks() {
    let a = account();
    completed_service(&a, "tasks", 130).await;
    let stopped = json!({"count": 3, "last_status": "STOPPED",
                         "stopped_reason": "Essential container in task exited"});
    control(&a.id, "run_tasks", &stopped);
    conformance::list_tasks_paginates(&a.ecs, "runners", "runner", 100).await;
    conformance::list_tasks_paginates(&a.ecs, "runners", "runner", 7).await;
}
