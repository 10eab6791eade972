//! `AwsEcs` against moto on 127.0.0.1: task definitions (lossless clone,
//! tags, pagination), services and tasks, error mapping.
//!
//! moto stores task definitions, tags and services faithfully. Where it does
//! not behave like ECS, the plugin `moto_ecs_plugin.py` (loaded into moto's
//! process) does, and each test says so: UpdateService starting a new
//! PRIMARY deployment, and ListTaskDefinitions/ListTasks paginating.

mod aws_support;

use aws_sdk_ecs::types as sdk;
use aws_support::{
    VERSION_LABEL, account, completed_service, control, create_service, moto,
    runner_task_definition,
};
use ecs_rollout::{
    DeploymentConfiguration, DeploymentStatus, DesiredStatus, EcsApi, Error, ListTasksRequest,
    ResourceKind, RolloutState, TaskDefinitionSpec, UpdateServiceRequest, diff,
};
use runner_version::{ImageRef, Version};
use serde_json::json;

async fn all_revisions(ecs: &dyn EcsApi, family: &str) -> (Vec<String>, usize) {
    let (mut arns, mut pages, mut token) = (Vec::new(), 0, None);
    loop {
        let page = ecs
            .list_task_definition_revisions(family, token)
            .await
            .unwrap();
        pages += 1;
        arns.extend(page.items);
        token = page.next_token;
        if token.is_none() {
            return (arns, pages);
        }
    }
}

#[tokio::test]
async fn a_registered_task_definition_reads_back_field_for_field() {
    let a = account();
    let spec = runner_task_definition("runner");
    let registered = a.ecs.register_task_definition(&spec).await.unwrap();
    assert_eq!(registered.revision, 1);
    assert!(
        registered.arn.ends_with(":task-definition/runner:1"),
        "{}",
        registered.arn
    );
    assert_eq!(registered.spec, spec, "RegisterTaskDefinition answer");

    let by_arn = a
        .ecs
        .describe_task_definition(&registered.arn)
        .await
        .unwrap();
    assert_eq!(
        by_arn.spec, spec,
        "DescribeTaskDefinition (include TAGS) by ARN"
    );
    let by_family = a.ecs.describe_task_definition("runner").await.unwrap();
    assert_eq!(
        by_family.arn, registered.arn,
        "a bare family reads the latest revision"
    );
}

#[tokio::test]
async fn a_clone_with_a_new_image_differs_only_in_image_and_version_label() {
    let a = account();
    let first = a
        .ecs
        .register_task_definition(&runner_task_definition("runner"))
        .await
        .unwrap();
    let running = a.ecs.describe_task_definition(&first.arn).await.unwrap();

    let image =
        ImageRef::parse("123456789012.dkr.ecr.us-east-1.amazonaws.com/runner:20260201.3").unwrap();
    let version: Version = "20260201.3".parse().unwrap();
    let clone = running
        .spec
        .with_runner_image("runner", &image, Some((VERSION_LABEL, &version)))
        .unwrap();
    let second = a.ecs.register_task_definition(&clone).await.unwrap();
    assert_eq!(second.revision, 2);
    let stored = a.ecs.describe_task_definition(&second.arn).await.unwrap();

    let paths: Vec<String> = diff(&running.spec, &stored.spec)
        .into_iter()
        .map(|c| c.path)
        .collect();
    assert_eq!(
        paths,
        [
            format!("containerDefinitions[runner].dockerLabels.{VERSION_LABEL}"),
            "containerDefinitions[runner].image".to_owned(),
        ]
    );
    let runner = stored.spec.container("runner").unwrap();
    assert_eq!(runner.image, image.to_string());
    assert_eq!(runner.docker_labels[VERSION_LABEL], "20260201.3");
    // Everything else as read from ECS, tags included.
    let mut expected = running.spec.clone();
    let runner_index = expected
        .container_definitions
        .iter()
        .position(|c| c.name == "runner")
        .unwrap();
    expected.container_definitions[runner_index] = runner.clone();
    assert_eq!(stored.spec, expected);
    assert_eq!(stored.spec.tags, running.spec.tags);
}

#[tokio::test]
async fn tags_are_written_to_a_revision() {
    let a = account();
    let registered = a
        .ecs
        .register_task_definition(&runner_task_definition("runner"))
        .await
        .unwrap();
    let marks = [
        (
            "ecs-rollout:outcome".to_owned(),
            "RolledBackByEcs".to_owned(),
        ),
        ("team".to_owned(), "platform".to_owned()),
    ]
    .into_iter()
    .collect();
    a.ecs.tag_resource(&registered.arn, &marks).await.unwrap();
    let tags = a
        .ecs
        .describe_task_definition(&registered.arn)
        .await
        .unwrap()
        .spec
        .tags;
    assert_eq!(tags["ecs-rollout:outcome"], "RolledBackByEcs");
    assert_eq!(tags["team"], "platform", "an existing tag is overwritten");
    assert_eq!(tags["cost-center"], "1234", "other tags are kept");
}

/// The plugin makes moto's ListTaskDefinitions paginate and match
/// `familyPrefix` as a prefix, as ECS does (moto returns one page and
/// matches exactly).
#[tokio::test]
async fn revisions_are_listed_across_pages_for_the_exact_family() {
    let a = account();
    let ecs = a.ecs.clone().with_page_size(3);
    for _ in 0..7 {
        ecs.register_task_definition(&runner_task_definition("runner"))
            .await
            .unwrap();
    }
    for _ in 0..2 {
        // Same prefix, another family: must not be listed.
        ecs.register_task_definition(&runner_task_definition("runner-canary"))
            .await
            .unwrap();
    }
    let (arns, pages) = all_revisions(&ecs, "runner").await;
    let revisions: Vec<i32> = arns
        .iter()
        .map(|arn| ecs_rollout::api::parse_task_definition_arn(arn).unwrap())
        .map(|(family, revision)| {
            assert_eq!(family, "runner");
            revision
        })
        .collect();
    assert_eq!(revisions, [1, 2, 3, 4, 5, 6, 7]);
    assert!(
        pages >= 3,
        "7 revisions in pages of 3 need 3 pages, got {pages}"
    );

    let third = &arns[2];
    ecs.deregister_task_definition(third).await.unwrap();
    ecs.deregister_task_definition(third)
        .await
        .expect("deregistering an INACTIVE revision again is not an error");
    let (after, _) = all_revisions(&ecs, "runner").await;
    assert_eq!(after.len(), 6);
    assert!(!after.contains(third));
    let status = ecs.describe_task_definition(third).await.unwrap().status;
    assert_eq!(status, ecs_rollout::TaskDefinitionStatus::Inactive);
}

#[tokio::test]
async fn missing_resources_are_not_found_with_their_kind() {
    let a = account();
    let err = a
        .ecs
        .describe_task_definition("nothing:3")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotFound {
                kind: ResourceKind::TaskDefinition,
                ..
            }
        ),
        "{err:?}"
    );
    let err = a
        .ecs
        .describe_service("no-cluster", "runner")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotFound {
                kind: ResourceKind::Cluster,
                ..
            }
        ),
        "{err:?}"
    );

    let registered = a
        .ecs
        .register_task_definition(&runner_task_definition("runner"))
        .await
        .unwrap();
    create_service(&a.client, &registered.arn, 1).await;
    let err = a
        .ecs
        .describe_service("runners", "other")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotFound {
                kind: ResourceKind::Service,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("runners/other"), "{err}");
    let err = a
        .ecs
        .update_service(&UpdateServiceRequest {
            cluster: "runners".into(),
            service: "other".into(),
            task_definition: registered.arn.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotFound {
                kind: ResourceKind::Service,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_invalid_registration_is_a_permanent_api_error() {
    let a = account();
    // EC2 task definitions need memory on every container.
    let spec = TaskDefinitionSpec {
        family: "runner".into(),
        container_definitions: vec![ecs_rollout::ContainerDefinition {
            name: "runner".into(),
            image: "runner:1".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let err = a.ecs.register_task_definition(&spec).await.unwrap_err();
    assert_eq!(
        err.class(),
        Some(ecs_rollout::ErrorClass::Permanent),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("RegisterTaskDefinition") && text.contains("memory"),
        "{text}"
    );
    assert!(
        std::error::Error::source(&err).is_some(),
        "the SDK error is kept"
    );
}

/// The plugin makes UpdateService start a new PRIMARY deployment and demote
/// the old one to ACTIVE, as ECS does (moto keeps its single deployment).
#[tokio::test]
async fn update_service_returns_the_deployment_it_created() {
    let a = account();
    let first = completed_service(&a, "runner", 2).await;
    let before = a.ecs.describe_service("runners", "runner").await.unwrap();
    let old_id = before.primary().unwrap().id.clone();
    assert_eq!(
        before.primary().unwrap().rollout_state,
        Some(RolloutState::Completed)
    );
    assert_eq!(before.primary().unwrap().running_count, 2);

    let second = a
        .ecs
        .register_task_definition(&runner_task_definition("runner"))
        .await
        .unwrap();
    let result = a
        .ecs
        .update_service(&UpdateServiceRequest {
            cluster: "runners".into(),
            service: "runner".into(),
            task_definition: second.arn.clone(),
            deployment_configuration: Some(DeploymentConfiguration::safe_rolling()),
            force_new_deployment: false,
        })
        .await
        .unwrap();
    assert_ne!(result.deployment_id, old_id);
    assert_eq!(result.service.primary().unwrap().id, result.deployment_id);

    let after = a.ecs.describe_service("runners", "runner").await.unwrap();
    let primary = after.primary().unwrap();
    assert_eq!(primary.id, result.deployment_id);
    assert_eq!(primary.task_definition_arn, second.arn);
    assert_eq!(primary.rollout_state, Some(RolloutState::InProgress));
    let active = after.deployment(&old_id).unwrap();
    assert_eq!(active.status, Some(DeploymentStatus::Active));
    assert_eq!(active.task_definition_arn, first.arn);
    assert_eq!(after.task_definition_arn, second.arn);
    let in_progress: Vec<&str> = after
        .in_progress_deployments()
        .iter()
        .map(|d| d.id.as_str())
        .collect();
    assert_eq!(
        in_progress,
        [result.deployment_id.as_str(), old_id.as_str()]
    );
}

/// The plugin starts tasks for the service's PRIMARY deployment (moto's
/// services start none) and makes ListTasks paginate and filter by
/// service, as ECS does.
#[tokio::test]
async fn tasks_are_listed_across_pages_and_described_in_batches() {
    let a = account();
    let registered = a
        .ecs
        .register_task_definition(&runner_task_definition("runner"))
        .await
        .unwrap();
    create_service(&a.client, &registered.arn, 105).await;
    control(
        &a.id,
        "run_tasks",
        &json!({"count": 105, "health": "HEALTHY"}),
    );
    control(
        &a.id,
        "run_tasks",
        &json!({"count": 2, "last_status": "STOPPED", "stopped_reason": "CannotPullContainerError: pull access denied",
                "stop_code": "TaskFailedToStart", "container_reason": "CannotPullContainerError"}),
    );

    let mut request = ListTasksRequest {
        cluster: "runners".into(),
        service: "runner".into(),
        desired_status: DesiredStatus::Running,
        next_token: None,
        max_results: None,
        started_by: None,
    };
    let (mut running, mut pages) = (Vec::new(), 0);
    loop {
        let page = a.ecs.list_tasks(&request).await.unwrap();
        pages += 1;
        running.extend(page.items);
        request.next_token = page.next_token;
        if request.next_token.is_none() {
            break;
        }
    }
    assert_eq!((running.len(), pages), (105, 2), "100 per page by default");

    let tasks = a.ecs.describe_tasks("runners", &running).await.unwrap();
    assert_eq!(
        tasks.len(),
        105,
        "DescribeTasks is called in batches of 100"
    );
    let task = &tasks[0];
    assert_eq!(task.task_definition_arn, registered.arn);
    assert_eq!(task.health_status, ecs_rollout::HealthStatus::Healthy);
    assert_eq!(task.containers.len(), 2);
    assert!(
        task.containers.iter().all(|c| c.essential == Some(true)),
        "essential flags come from the task definition: {:?}",
        task.containers
    );

    request.desired_status = DesiredStatus::Stopped;
    request.max_results = Some(1);
    request.next_token = None;
    let first_page = a.ecs.list_tasks(&request).await.unwrap();
    assert_eq!(first_page.items.len(), 1);
    assert!(first_page.next_token.is_some());
    let stopped = a
        .ecs
        .describe_tasks("runners", &first_page.items)
        .await
        .unwrap();
    assert_eq!(stopped[0].last_status, "STOPPED");
    assert_eq!(stopped[0].stop_code.as_deref(), Some("TaskFailedToStart"));
    assert_eq!(
        stopped[0].stopped_reason.as_deref(),
        Some("CannotPullContainerError: pull access denied")
    );
    assert_eq!(
        stopped[0].containers[0].reason.as_deref(),
        Some("CannotPullContainerError")
    );
}

/// The plugin answers the next calls with queued faults, as ECS does under
/// throttling or a server-side failure (moto itself never throttles).
#[tokio::test]
async fn throttling_and_server_errors_are_classified_from_the_wire() {
    let a = account();
    let registered = a
        .ecs
        .register_task_definition(&runner_task_definition("runner"))
        .await
        .unwrap();
    create_service(&a.client, &registered.arn, 1).await;
    let cases = [
        ("ThrottlingException", ecs_rollout::ErrorClass::Throttled),
        ("ServerException", ecs_rollout::ErrorClass::Transient),
        (
            "ServiceUnavailableException",
            ecs_rollout::ErrorClass::Transient,
        ),
        ("AccessDeniedException", ecs_rollout::ErrorClass::Permanent),
    ];
    for (code, class) in cases {
        moto().control(
            "faults",
            &json!({"account": a.id, "operation": "describe_services", "faults": [code]}),
        );
        let err = a
            .ecs
            .describe_service("runners", "runner")
            .await
            .unwrap_err();
        assert_eq!(err.class(), Some(class), "{code}: {err:?}");
        let text = err.to_string();
        assert!(
            text.contains(code) && text.contains("runners/runner"),
            "{text}"
        );
        assert!(
            std::error::Error::source(&err).is_some(),
            "{code}: source kept"
        );
        // The fault was one answer only.
        a.ecs.describe_service("runners", "runner").await.unwrap();
    }
}

/// moto keeps a deployment configuration sent with UpdateService (not one
/// sent with CreateService). Setting the safe rolling configuration replaces
/// minimum/maximum percent and the breaker and keeps what else the service
/// has (alarms, bake time).
#[tokio::test]
async fn a_deployment_configuration_update_keeps_what_it_does_not_set() {
    let a = account();
    let first = a
        .ecs
        .register_task_definition(&runner_task_definition("runner"))
        .await
        .unwrap();
    create_service(&a.client, &first.arn, 1).await;
    a.client
        .update_service()
        .cluster("runners")
        .service("runner")
        .deployment_configuration(
            sdk::DeploymentConfiguration::builder()
                .minimum_healthy_percent(50)
                .maximum_percent(150)
                .alarms(
                    sdk::DeploymentAlarms::builder()
                        .alarm_names("runner-5xx")
                        .enable(true)
                        .rollback(true)
                        .build()
                        .unwrap(),
                )
                .bake_time_in_minutes(5)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let before = a.ecs.describe_service("runners", "runner").await.unwrap();
    assert_eq!(
        before.deployment_configuration.minimum_healthy_percent,
        Some(50)
    );
    assert_eq!(before.deployment_configuration.circuit_breaker, None);

    let second = a
        .ecs
        .register_task_definition(&runner_task_definition("runner"))
        .await
        .unwrap();
    a.ecs
        .update_service(&UpdateServiceRequest {
            cluster: "runners".into(),
            service: "runner".into(),
            task_definition: second.arn,
            deployment_configuration: Some(DeploymentConfiguration::safe_rolling()),
            force_new_deployment: false,
        })
        .await
        .unwrap();
    let after = a.ecs.describe_service("runners", "runner").await.unwrap();
    assert_eq!(
        after.deployment_configuration,
        DeploymentConfiguration::safe_rolling()
    );
    let raw = a
        .client
        .describe_services()
        .cluster("runners")
        .services("runner")
        .send()
        .await
        .unwrap()
        .services
        .unwrap()
        .remove(0)
        .deployment_configuration
        .unwrap();
    assert_eq!(raw.bake_time_in_minutes, Some(5));
    assert_eq!(raw.alarms.unwrap().alarm_names, ["runner-5xx"]);
}
