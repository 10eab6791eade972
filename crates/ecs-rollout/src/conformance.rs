//! The behaviour suite every [`EcsApi`] backend runs (feature
//! `conformance`): one `pub async fn` per behaviour, each taking
//! `&dyn EcsApi`. They panic with a message on a violation, like a test.
//!
//! [`SimulatedEcs`](crate::SimulatedEcs) runs them in `tests/conformance_sim.rs`;
//! the AWS backend runs them against moto. Pass a family name no other
//! test uses (the suite registers revisions of it), and for the service
//! behaviours a cluster and service that exist and run a revision of
//! `spec.family`.

use std::collections::{BTreeMap, HashSet};

use crate::{
    DesiredStatus, EcsApi, Error, ListTasksRequest, TaskDefinitionSpec, TaskDefinitionStatus,
    UpdateServiceRequest, list_all_revisions,
};

/// Register → describe returns the same spec (tags included); a second
/// register is the next revision; a bare family describes the latest.
pub async fn register_describe_round_trip(ecs: &dyn EcsApi, spec: &TaskDefinitionSpec) {
    let first = ecs.register_task_definition(spec).await.expect("register");
    assert_eq!(first.status, TaskDefinitionStatus::Active);
    assert!(
        first
            .arn
            .ends_with(&format!("{}:{}", spec.family, first.revision)),
        "{}",
        first.arn
    );
    let described = ecs
        .describe_task_definition(&first.arn)
        .await
        .expect("describe by ARN");
    assert_eq!(
        &described.spec, spec,
        "describe(register(spec)) must equal spec"
    );
    assert_eq!(described.revision, first.revision);

    let second = ecs
        .register_task_definition(spec)
        .await
        .expect("register again");
    assert_eq!(second.revision, first.revision + 1, "revisions count up");
    let latest = ecs
        .describe_task_definition(&spec.family)
        .await
        .expect("describe family");
    assert_eq!(
        latest.arn, second.arn,
        "a bare family names its latest ACTIVE revision"
    );
    let by_revision = ecs
        .describe_task_definition(&format!("{}:{}", spec.family, first.revision))
        .await
        .expect("describe family:revision");
    assert_eq!(by_revision.arn, first.arn);
}

/// `TagResource` adds and overwrites tags; describe shows them.
pub async fn tag_resource_merges_tags(ecs: &dyn EcsApi, spec: &TaskDefinitionSpec) {
    let td = ecs.register_task_definition(spec).await.expect("register");
    let tag = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    ecs.tag_resource(
        &td.arn,
        &tag(&[("ecs-rollout:outcome", "rolled_back_by_ecs")]),
    )
    .await
    .expect("tag");
    ecs.tag_resource(
        &td.arn,
        &tag(&[
            ("ecs-rollout:outcome", "rolled_back_by_us"),
            ("ecs-rollout:reason", "x"),
        ]),
    )
    .await
    .expect("tag again");
    let tags = ecs
        .describe_task_definition(&td.arn)
        .await
        .expect("describe")
        .spec
        .tags;
    let mut expected = spec.tags.clone();
    expected.insert("ecs-rollout:outcome".into(), "rolled_back_by_us".into());
    expected.insert("ecs-rollout:reason".into(), "x".into());
    assert_eq!(tags, expected);
}

/// A deregistered revision is INACTIVE, still describable, gone from the
/// ACTIVE listing; deregistering it again is not an error.
pub async fn deregister_hides_revision_from_listing(ecs: &dyn EcsApi, spec: &TaskDefinitionSpec) {
    let old = ecs.register_task_definition(spec).await.expect("register");
    let new = ecs.register_task_definition(spec).await.expect("register");
    ecs.deregister_task_definition(&old.arn)
        .await
        .expect("deregister");
    let described = ecs
        .describe_task_definition(&old.arn)
        .await
        .expect("describe deregistered");
    assert_eq!(described.status, TaskDefinitionStatus::Inactive);
    let active = list_all_revisions(ecs, &spec.family).await.expect("list");
    assert!(
        !active.contains(&old.arn),
        "{active:?} lists a deregistered revision"
    );
    assert!(active.contains(&new.arn), "{active:?} misses {}", new.arn);
    ecs.deregister_task_definition(&old.arn)
        .await
        .expect("deregister twice");
}

/// Listing revisions follows `nextToken` over every page, oldest first,
/// without duplicates.
pub async fn list_revisions_paginates(ecs: &dyn EcsApi, spec: &TaskDefinitionSpec, count: usize) {
    let mut registered = Vec::new();
    for _ in 0..count {
        registered.push(
            ecs.register_task_definition(spec)
                .await
                .expect("register")
                .arn,
        );
    }
    let mut token = None;
    let mut listed = Vec::new();
    let mut pages = 0;
    loop {
        let page = ecs
            .list_task_definition_revisions(&spec.family, token)
            .await
            .expect("list page");
        pages += 1;
        listed.extend(page.items);
        match page.next_token {
            Some(next) => token = Some(next),
            None => break,
        }
        assert!(pages <= count + 1, "pagination does not end");
    }
    let distinct: HashSet<&String> = listed.iter().collect();
    assert_eq!(distinct.len(), listed.len(), "pages overlap: {listed:?}");
    for arn in &registered {
        assert!(listed.contains(arn), "{arn} missing from {listed:?}");
    }
    let position = |arn: &String| listed.iter().position(|a| a == arn);
    assert!(
        registered
            .windows(2)
            .all(|w| position(&w[0]) < position(&w[1])),
        "not oldest first: {listed:?}"
    );
}

/// `UpdateService` returns the id of the deployment it created, which is
/// the PRIMARY deployment running the requested task definition.
pub async fn update_service_returns_primary_deployment_id(
    ecs: &dyn EcsApi,
    cluster: &str,
    service: &str,
    spec: &TaskDefinitionSpec,
) {
    let td = ecs.register_task_definition(spec).await.expect("register");
    let result = ecs
        .update_service(&UpdateServiceRequest {
            cluster: cluster.into(),
            service: service.into(),
            task_definition: td.arn.clone(),
            ..Default::default()
        })
        .await
        .expect("update service");
    assert!(!result.deployment_id.is_empty());
    let described = ecs
        .describe_service(cluster, service)
        .await
        .expect("describe service");
    let primary = described.primary().expect("a PRIMARY deployment");
    assert_eq!(
        primary.id, result.deployment_id,
        "UpdateService must name the new PRIMARY"
    );
    assert_eq!(primary.task_definition_arn, td.arn);
    assert_eq!(described.task_definition_arn, td.arn);
}

/// Task listing follows `nextToken`; pages do not overlap; every listed
/// task can be described (in chunks of at most 100).
pub async fn list_tasks_paginates(ecs: &dyn EcsApi, cluster: &str, service: &str, page_size: i32) {
    for desired_status in [DesiredStatus::Running, DesiredStatus::Stopped] {
        let mut token = None;
        let mut arns = Vec::new();
        loop {
            let page = ecs
                .list_tasks(&ListTasksRequest {
                    cluster: cluster.into(),
                    service: service.into(),
                    desired_status,
                    next_token: token,
                    max_results: Some(page_size),
                    started_by: None,
                })
                .await
                .expect("list tasks");
            assert!(
                page.items.len() <= page_size as usize,
                "page larger than max_results"
            );
            arns.extend(page.items);
            match page.next_token {
                Some(next) => token = Some(next),
                None => break,
            }
        }
        let distinct: HashSet<&String> = arns.iter().collect();
        assert_eq!(distinct.len(), arns.len(), "task pages overlap");
        let mut described = 0;
        for chunk in arns.chunks(100) {
            let tasks = ecs
                .describe_tasks(cluster, chunk)
                .await
                .expect("describe tasks");
            assert!(tasks.iter().all(|t| chunk.contains(&t.task_arn)));
            described += tasks.len();
        }
        assert_eq!(described, arns.len(), "every listed task is described");
    }
}

/// Missing resources are [`Error::NotFound`], not a generic failure.
pub async fn missing_resources_are_not_found(ecs: &dyn EcsApi, cluster: &str) {
    let err = ecs
        .describe_task_definition("ecs-rollout-conformance-missing:1")
        .await
        .expect_err("a missing task definition");
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    let err = ecs
        .describe_service(cluster, "ecs-rollout-conformance-missing")
        .await
        .expect_err("a missing service");
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
}

/// `DescribeServices` of several services answers each one, in the order
/// asked, an unknown one as [`Error::NotFound`], and the same description
/// as reading it alone.
pub async fn describe_services_answers_each_in_order(
    ecs: &dyn EcsApi,
    cluster: &str,
    service: &str,
) {
    let missing = "ecs-rollout-conformance-missing".to_owned();
    let asked = [missing.clone(), service.to_owned(), missing];
    let answers = ecs
        .describe_services(cluster, &asked)
        .await
        .expect("describe services");
    assert_eq!(answers.len(), 3, "one answer per service asked");
    for i in [0, 2] {
        assert!(
            matches!(&answers[i], Err(Error::NotFound { name, .. }) if name.ends_with(&asked[i])),
            "{:?}",
            answers[i]
        );
    }
    let batched = answers[1].as_ref().expect("the known service");
    let alone = ecs
        .describe_service(cluster, service)
        .await
        .expect("describe service");
    assert_eq!(batched.service_name, service);
    assert_eq!(batched.service_arn, alone.service_arn);
    assert_eq!(batched.task_definition_arn, alone.task_definition_arn);
    assert_eq!(
        batched.primary().map(|d| &d.id),
        alone.primary().map(|d| &d.id)
    );
}

/// The optional service-deployment history either works or says
/// [`Error::Unsupported`].
pub async fn service_deployments_are_optional(ecs: &dyn EcsApi, cluster: &str, service: &str) {
    match ecs.describe_service_deployments(cluster, service).await {
        Ok(_) | Err(Error::Unsupported { .. }) => {}
        Err(other) => panic!("describe_service_deployments: {other:?}"),
    }
}

/// `DescribeServiceDeployments` of known ARNs answers each one, in the
/// order asked, an unknown one as [`Error::NotFound`], and the same status
/// and task definitions as the listed history; or the backend says
/// [`Error::Unsupported`].
pub async fn service_deployments_by_arn_answer_each_in_order(
    ecs: &dyn EcsApi,
    cluster: &str,
    service: &str,
) {
    let history = match ecs.describe_service_deployments(cluster, service).await {
        Ok(history) => history,
        Err(Error::Unsupported { .. }) => Vec::new(),
        Err(other) => panic!("describe_service_deployments: {other:?}"),
    };
    let missing = match history.first() {
        // Same form as a real one, a deployment no service has.
        Some(known) => format!("{}-missing", known.arn),
        None => "arn:aws:ecs:us-east-1:123456789012:service-deployment/c/s/missing".to_owned(),
    };
    let mut asked = vec![missing.clone()];
    asked.extend(history.iter().take(2).map(|d| d.arn.clone()));
    asked.push(missing);
    let answers = match ecs.describe_service_deployments_by_arn(&asked).await {
        Ok(answers) => answers,
        Err(Error::Unsupported { .. }) => return,
        Err(other) => panic!("describe_service_deployments_by_arn: {other:?}"),
    };
    assert_eq!(answers.len(), asked.len(), "one answer per ARN asked");
    for (asked, answer) in asked.iter().zip(&answers) {
        match history.iter().find(|d| &d.arn == asked) {
            Some(listed) => {
                let read = answer.as_ref().expect("a listed service deployment");
                assert_eq!(&read.arn, asked);
                assert_eq!(read.status, listed.status);
                assert_eq!(
                    read.target_task_definition_arn,
                    listed.target_task_definition_arn
                );
                assert_eq!(
                    read.source_task_definition_arns,
                    listed.source_task_definition_arns
                );
            }
            None => assert!(
                matches!(answer, Err(Error::NotFound { name, .. }) if name == asked),
                "{asked}: {answer:?}"
            ),
        }
    }
}
