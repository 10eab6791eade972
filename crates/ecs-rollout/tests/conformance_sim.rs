//! The `EcsApi` conformance suite on `SimulatedEcs`.
#![cfg(feature = "conformance")]

use std::{collections::BTreeMap, sync::Arc};

use ecs_rollout::{
    ContainerDefinition, EcsApi, ServiceSetup, SimulatedEcs, TaskDefinitionSpec, conformance,
};
use update_clock::ManualClock;

fn spec(family: &str) -> TaskDefinitionSpec {
    TaskDefinitionSpec {
        family: family.into(),
        container_definitions: vec![ContainerDefinition {
            name: "runner".into(),
            image: "registry.example.com:5000/team/runner:20250101.1".into(),
            docker_labels: BTreeMap::from([(
                "org.opencontainers.image.version".into(),
                "20250101.1".into(),
            )]),
            ..Default::default()
        }],
        tags: BTreeMap::from([("team".into(), "runners".into())]),
        execution_role_arn: Some("arn:aws:iam::123456789012:role/exec".into()),
        cpu: Some("512".into()),
        memory: Some("1024".into()),
        ..Default::default()
    }
}

fn simulator(desired: i32) -> SimulatedEcs {
    let clock = Arc::new(ManualClock::auto_advancing(ManualClock::EPOCH_2025));
    let ecs = SimulatedEcs::new(clock, 3);
    ecs.create_service(ServiceSetup {
        cluster: "conformance".into(),
        service: "svc".into(),
        task_definition: spec("svc-family"),
        desired_count: desired,
        ..Default::default()
    })
    .unwrap();
    ecs
}

#[tokio::test]
async fn task_definition_behaviours() {
    let ecs = simulator(1);
    conformance::register_describe_round_trip(&ecs, &spec("round-trip")).await;
    conformance::tag_resource_merges_tags(&ecs, &spec("tags")).await;
    conformance::deregister_hides_revision_from_listing(&ecs, &spec("deregister")).await;
    conformance::missing_resources_are_not_found(&ecs, "conformance").await;
}

#[tokio::test]
async fn revision_listing_paginates() {
    let ecs = simulator(1);
    ecs.set_page_size(4);
    conformance::list_revisions_paginates(&ecs, &spec("paged"), 11).await;
}

#[tokio::test]
async fn service_behaviours() {
    let ecs = simulator(2);
    conformance::update_service_returns_primary_deployment_id(
        &ecs,
        "conformance",
        "svc",
        &spec("svc-family"),
    )
    .await;
    conformance::describe_services_answers_each_in_order(&ecs, "conformance", "svc").await;
    conformance::service_deployments_are_optional(&ecs, "conformance", "svc").await;
    conformance::service_deployments_by_arn_answer_each_in_order(&ecs, "conformance", "svc").await;
    // With the ServiceDeployment API on and a deployment in the history:
    // the by-ARN case compares real answers, not just NotFound.
    ecs.enable_service_deployments(true);
    ecs.update_service(&ecs_rollout::UpdateServiceRequest {
        cluster: "conformance".into(),
        service: "svc".into(),
        task_definition: ecs
            .describe_service("conformance", "svc")
            .await
            .unwrap()
            .task_definition_arn,
        force_new_deployment: true,
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(
        !ecs.describe_service_deployments("conformance", "svc")
            .await
            .unwrap()
            .is_empty()
    );
    conformance::service_deployments_by_arn_answer_each_in_order(&ecs, "conformance", "svc").await;
}

#[tokio::test]
async fn task_listing_paginates_over_more_than_100_tasks() {
    let ecs = simulator(130);
    conformance::list_tasks_paginates(&ecs, "conformance", "svc", 100).await;
    conformance::list_tasks_paginates(&ecs, "conformance", "svc", 7).await;
}
