//! `StackUpdater` on the in-memory `FakeCfn`: outcomes moto cannot produce
//! (rollback, failure), busy stacks, waiting on the manual clock, input
//! errors without API calls, plans and subnet checks.
use std::{sync::Arc, sync::Mutex, time::Duration};

use cfn_stack::{
    ApplyMode, AzParameterNames, CfnApi, CfnOperation, Error, ErrorClass, FakeCfn, FakeFailure,
    FakeTemplate, InMemorySubnets, InfraVersionKey, KeptDefault, ListZoneGap, NoProgress,
    PlanOutcome, RecordingCfn, RollbackConfiguration, SsmParameter, StackChange, StackProgress,
    StackUpdateOutcome, StackUpdater, StackUpdaterConfig, StaticTemplates, UpdateOptions,
    sha256_hex,
};
use update_clock::{Clock, ManualClock};

const V1: &str = "https://runner.s3.eu-west-1.amazonaws.com/v1/runner.yaml";
const V2: &str = "https://runner.s3.eu-west-1.amazonaws.com/v2/runner.yaml";
/// The body served at `V2` (what a hash is checked against).
const V2_BODY: &str = "Resources: {}";

fn template(version: &str) -> FakeTemplate {
    FakeTemplate::new()
        .parameter("Image", None)
        .parameter("AvailabilityZones", None)
        .parameter("SubnetIds", None)
        .parameter("VpcId", None)
        .output("InfrastructureVersion", version)
        .resource("Service", "AWS::ECS::Service")
        .resource("TaskRole", "AWS::IAM::Role")
}

struct Setup {
    cfn: FakeCfn,
    api: RecordingCfn<FakeCfn>,
    clock: Arc<ManualClock>,
    updater: StackUpdater,
}

fn setup_with(config: StackUpdaterConfig) -> Setup {
    let cfn = FakeCfn::new();
    cfn.add_template(V1, template("1"));
    cfn.add_template_body(
        V2,
        V2_BODY,
        template("2").resource("LogGroup", "AWS::Logs::LogGroup"),
    );
    cfn.create_stack(
        "runner",
        V1,
        &[
            ("Image", "runner:1"),
            ("AvailabilityZones", "eu-west-1a,eu-west-1b"),
            ("SubnetIds", "subnet-a,subnet-b"),
            ("VpcId", "vpc-1"),
        ],
        &[("infrastructure-version", "tag-1")],
    )
    .unwrap();
    let api = RecordingCfn::new(cfn.clone());
    let clock = Arc::new(ManualClock::auto_advancing(ManualClock::EPOCH_2025));
    let updater = StackUpdater::new(Arc::new(api.clone()), clock.clone(), config).unwrap();
    Setup {
        cfn,
        api,
        clock,
        updater,
    }
}

fn setup() -> Setup {
    setup_with(StackUpdaterConfig::default())
}

fn image_change() -> StackChange {
    StackChange::parameters([("Image", "runner:2")])
}

/// moto cannot fail or roll back a CloudFormation stack (it has no failure
/// states), so `RolledBack` is covered here on the fake only.
#[tokio::test]
async fn rollback_is_reported_with_the_failed_resource_reasons() {
    for mode in [ApplyMode::Direct, ApplyMode::ChangeSet] {
        let s = setup();
        s.cfn.fail_next_update(
            "runner",
            FakeFailure::RollBack {
                failed_resources: vec![(
                    "Service".into(),
                    "CannotPullContainerError: image runner:2 not found".into(),
                )],
            },
        );
        let outcome = s
            .updater
            .apply("runner", &image_change(), mode, &NoProgress)
            .await
            .unwrap();
        match &outcome {
            StackUpdateOutcome::RolledBack {
                reasons,
                rollback_failures,
            } => {
                assert!(rollback_failures.is_empty(), "{rollback_failures:?}");
                assert_eq!(
                    reasons,
                    &vec![
                        "Service (AWS::ECS::Service) UPDATE_FAILED: CannotPullContainerError: \
                         image runner:2 not found"
                            .to_string()
                    ],
                    "{mode:?}"
                );
            }
            other => panic!("{mode:?}: expected RolledBack, got {other:?}"),
        }
        assert!(!outcome.is_success());
        let stack = s.updater.read_stack("runner").await.unwrap();
        assert_eq!(
            stack.description.parameters["Image"], "runner:1",
            "{mode:?}"
        );
        assert_eq!(
            stack.description.status.as_str(),
            "UPDATE_ROLLBACK_COMPLETE"
        );
    }
}

/// moto cannot produce a failed update either: `Failed` on the fake only.
#[tokio::test]
async fn failed_rollback_is_failed_with_status_and_reasons() {
    let s = setup();
    s.cfn.fail_next_update(
        "runner",
        FakeFailure::Fail {
            final_status: "UPDATE_ROLLBACK_FAILED".into(),
            status_reason: "TaskRole could not be restored".into(),
            failed_resources: vec![("TaskRole".into(), "AccessDenied: iam:PutRolePolicy".into())],
        },
    );
    let outcome = s
        .updater
        .apply("runner", &image_change(), ApplyMode::Direct, &NoProgress)
        .await
        .unwrap();
    let StackUpdateOutcome::Failed {
        status,
        reasons,
        next_step,
    } = outcome
    else {
        panic!("expected Failed, got {outcome:?}");
    };
    assert_eq!(status.as_str(), "UPDATE_ROLLBACK_FAILED");
    assert_eq!(
        reasons,
        vec![
            "TaskRole (AWS::IAM::Role) UPDATE_FAILED: AccessDenied: iam:PutRolePolicy".to_string(),
            // The stack's own event is not repeated: its reason comes once.
            "stack: TaskRole could not be restored".to_string(),
        ]
    );
    assert!(
        next_step.contains("ContinueUpdateRollback") && next_step.contains("[TaskRole]"),
        "{next_step}"
    );
    // The stack is now stuck: a further update is refused with a hint.
    let err = s.updater.plan("runner", &image_change()).await.unwrap_err();
    assert!(
        matches!(&err, Error::StackNotUpdatable { .. })
            && err.to_string().contains("ContinueUpdateRollback"),
        "{err}"
    );
}

#[tokio::test]
async fn busy_stack_is_reported_not_waited_on() {
    for status in [
        "UPDATE_IN_PROGRESS",
        "UPDATE_ROLLBACK_IN_PROGRESS",
        "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
    ] {
        for mode in [ApplyMode::Direct, ApplyMode::ChangeSet] {
            let s = setup();
            s.cfn.set_status("runner", status).unwrap();
            let err = s
                .updater
                .apply("runner", &image_change(), mode, &NoProgress)
                .await
                .unwrap_err();
            assert!(
                matches!(&err, Error::StackBusy { status: st, .. } if st.as_str() == status),
                "{status} {mode:?}: {err}"
            );
            assert_eq!(err.class(), ErrorClass::Transient);
            assert!(s.api.mutating_calls().is_empty(), "{status}");
            assert_eq!(s.clock.monotonic(), Duration::ZERO, "no waiting at all");
        }
    }
}

#[tokio::test]
async fn waiting_streams_events_on_the_injected_clock() {
    let s = setup();
    s.cfn.set_update_polls(5);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = {
        let seen = seen.clone();
        move |p: &StackProgress| seen.lock().unwrap().push(p.clone())
    };
    let outcome = s
        .updater
        .apply("runner", &image_change(), ApplyMode::Direct, &sink)
        .await
        .unwrap();
    // Four 5-second polls while UPDATE_IN_PROGRESS, the fifth sees the end.
    assert_eq!(
        outcome,
        StackUpdateOutcome::Updated {
            status: "UPDATE_COMPLETE".into(),
            waited: Duration::from_secs(20),
            cleanup_pending: false,
        }
    );
    assert_eq!(s.clock.monotonic(), Duration::from_secs(20));
    let seen = seen.lock().unwrap();
    let statuses: Vec<String> = seen
        .iter()
        .filter_map(|p| match p {
            StackProgress::Status { status, .. } => Some(status.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(statuses, vec!["UPDATE_IN_PROGRESS", "UPDATE_COMPLETE"]);
    let events: Vec<(String, String)> = seen
        .iter()
        .filter_map(|p| match p {
            StackProgress::Event(e) => Some((e.logical_id.clone(), e.status.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        events.first().unwrap(),
        &("runner".into(), "UPDATE_IN_PROGRESS".into())
    );
    assert_eq!(
        events.last().unwrap(),
        &("runner".into(), "UPDATE_COMPLETE".into())
    );
    assert_eq!(
        events.len(),
        6,
        "stack + 2 resources, in progress and complete: {events:?}"
    );
}

#[tokio::test]
async fn progress_can_go_to_a_channel() {
    let s = setup();
    let (tx, rx) = std::sync::mpsc::channel();
    s.updater
        .apply("runner", &image_change(), ApplyMode::ChangeSet, &tx)
        .await
        .unwrap();
    drop(tx);
    let items: Vec<StackProgress> = rx.iter().collect();
    assert!(items.iter().any(
        |p| matches!(p, StackProgress::ChangeSet { status, .. } if status == "CREATE_COMPLETE")
    ));
    assert!(
        items
            .iter()
            .any(|p| matches!(p, StackProgress::Event(e) if e.status == "UPDATE_COMPLETE"))
    );
}

#[tokio::test]
async fn waiting_times_out_on_the_clock() {
    let s = setup_with(StackUpdaterConfig {
        update_timeout: Duration::from_secs(60),
        ..StackUpdaterConfig::default()
    });
    s.cfn.set_update_polls(1000);
    let err = s
        .updater
        .apply("runner", &image_change(), ApplyMode::Direct, &NoProgress)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::WaitTimedOut { status, waited, .. }
            if status == "UPDATE_IN_PROGRESS" && *waited == Duration::from_secs(60)),
        "{err}"
    );
    assert_eq!(s.clock.monotonic(), Duration::from_secs(60));
}

/// A settled stack with no new events is not this update's result: waiting
/// for an update that never started times out instead of reporting the
/// previous `CREATE_COMPLETE` as success.
#[tokio::test]
async fn a_stale_terminal_status_is_not_mistaken_for_the_result() {
    let s = setup_with(StackUpdaterConfig {
        update_timeout: Duration::from_secs(30),
        ..StackUpdaterConfig::default()
    });
    let newest = s.cfn.stack_events("runner", None, Some(1)).await.unwrap()[0]
        .event_id
        .clone();
    let err = s
        .updater
        .wait_for_update("runner", Some(newest), &NoProgress)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::WaitTimedOut { .. }), "{err}");
}

#[tokio::test]
async fn bad_input_is_an_error_before_any_call() {
    let body = V2_BODY.as_bytes().to_vec();
    let good_hash = sha256_hex(&body);
    let wrong_hash = sha256_hex(b"something else");
    let with_hash = |url: &str, hash: &str| StackChange::ReplaceTemplate {
        template_url: url.into(),
        parameter_changes: Default::default(),
        expected_sha256: Some(hash.into()),
    };
    type Check = fn(&Error) -> bool;
    let no_calls: &[CfnOperation] = &[];
    let reads = &[CfnOperation::DescribeStack, CfnOperation::TemplateSummary][..];
    let cases: Vec<(&str, StackChange, Check, &[CfnOperation])> = vec![
        (
            "http URL",
            StackChange::replace_template(
                "http://runner.s3.amazonaws.com/v2.yaml",
                [("Image", "x")],
            ),
            |e| matches!(e, Error::InvalidTemplateUrl { reason, .. } if reason.contains("not https")),
            no_calls,
        ),
        (
            "non-S3 URL",
            StackChange::replace_template("https://example.com/v2.yaml", [("Image", "x")]),
            |e| matches!(e, Error::InvalidTemplateUrl { reason, .. } if reason.contains("not an Amazon S3 host")),
            no_calls,
        ),
        (
            "hash mismatch",
            with_hash(V2, &wrong_hash),
            |e| matches!(e, Error::TemplateHashMismatch { .. }),
            no_calls,
        ),
        (
            "malformed hash",
            with_hash(V2, "not-a-hash"),
            |e| matches!(e, Error::InvalidConfig(_)),
            no_calls,
        ),
        (
            "unknown parameter, existing template",
            StackChange::parameters([("SubnetIdz", "subnet-c")]),
            |e| matches!(e, Error::UnknownParameter { parameter, .. } if parameter == "SubnetIdz"),
            reads,
        ),
        (
            "unknown parameter, new template",
            StackChange::replace_template(V2, [("Imagee", "runner:2")]),
            |e| matches!(e, Error::UnknownParameter { parameter, .. } if parameter == "Imagee"),
            reads,
        ),
    ];
    for (name, change, check, allowed) in cases {
        for mode in [ApplyMode::Direct, ApplyMode::ChangeSet] {
            let s = setup();
            let templates = StaticTemplates::new();
            templates.insert(V2, body.clone());
            let updater = s.updater.clone().with_template_fetcher(Arc::new(templates));
            let err = updater
                .apply("runner", &change, mode, &NoProgress)
                .await
                .unwrap_err();
            assert!(check(&err), "{name} {mode:?}: {err}");
            assert_eq!(s.api.calls(), allowed, "{name} {mode:?}: {err}");
            assert!(s.api.mutating_calls().is_empty(), "{name}");
            assert_eq!(
                s.updater
                    .read_stack("runner")
                    .await
                    .unwrap()
                    .description
                    .parameters["Image"],
                "runner:1"
            );
        }
    }
    // The right hash passes.
    let s = setup();
    let templates = StaticTemplates::new();
    templates.insert(V2, body.clone());
    let updater = s
        .updater
        .clone()
        .with_template_fetcher(Arc::new(templates.clone()));
    let outcome = updater
        .apply(
            "runner",
            &with_hash(V2, &good_hash),
            ApplyMode::Direct,
            &NoProgress,
        )
        .await
        .unwrap();
    assert!(
        matches!(outcome, StackUpdateOutcome::Updated { .. }),
        "{outcome:?}"
    );
    assert_eq!(templates.fetched(), vec![V2.to_string()]);
    // An expected hash without a fetcher is refused, not skipped.
    let s = setup();
    let err = s
        .updater
        .plan("runner", &with_hash(V2, &good_hash))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidConfig(_)), "{err}");
    assert!(s.api.calls().is_empty());
}

#[tokio::test]
async fn plan_shows_the_diff_and_applies_nothing() {
    let s = setup();
    let change = StackChange::replace_template(V2, [("Image", "runner:2")]);
    let PlanOutcome::Planned(plan) = s.updater.plan("runner", &change).await.unwrap() else {
        panic!("expected a plan")
    };
    let diff: Vec<String> = plan
        .parameter_diff
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(diff, vec![r#"Image: "runner:1" -> "runner:2""#]);
    let mut actions: Vec<(String, String)> = plan
        .resource_changes
        .iter()
        .map(|c| (c.logical_id.clone(), c.action.clone()))
        .collect();
    actions.sort();
    assert_eq!(
        actions,
        vec![
            ("LogGroup".into(), "Add".into()),
            ("Service".into(), "Modify".into()),
            ("TaskRole".into(), "Modify".into())
        ]
    );
    assert!(plan.warnings.is_empty());
    let before = s.updater.read_stack("runner").await.unwrap();
    assert_eq!(before.description.parameters["Image"], "runner:1");
    assert_eq!(before.infra_version.unwrap().as_str(), "1");
    assert!(!s.api.calls().contains(&CfnOperation::ExecuteChangeSet));
    assert!(!s.api.calls().contains(&CfnOperation::UpdateStack));

    let outcome = s.updater.apply_plan(&plan, &NoProgress).await.unwrap();
    assert!(
        matches!(outcome, StackUpdateOutcome::Updated { .. }),
        "{outcome:?}"
    );
    assert_eq!(
        s.api.mutating_calls(),
        vec![
            CfnOperation::CreateChangeSet,
            CfnOperation::ExecuteChangeSet
        ]
    );
    let after = s.updater.read_stack("runner").await.unwrap();
    assert_eq!(after.description.parameters["Image"], "runner:2");
    assert_eq!(
        after.description.parameters["SubnetIds"],
        "subnet-a,subnet-b"
    );
    assert_eq!(after.infra_version.unwrap().as_str(), "2");
}

#[tokio::test]
async fn nothing_to_do_is_no_changes_in_both_modes() {
    let s = setup();
    let same = StackChange::parameters([("Image", "runner:1")]);
    for mode in [ApplyMode::Direct, ApplyMode::ChangeSet] {
        let outcome = s
            .updater
            .apply("runner", &same, mode, &NoProgress)
            .await
            .unwrap();
        assert!(
            matches!(outcome, StackUpdateOutcome::NoChanges { .. }),
            "{mode:?}: {outcome:?}"
        );
        assert!(outcome.is_success());
    }
    assert!(
        s.cfn.change_set_names("runner").is_empty(),
        "the empty change set is deleted"
    );
    assert!(matches!(
        s.updater
            .plan(
                "runner",
                &StackChange::UseExistingTemplate {
                    parameter_changes: Default::default()
                }
            )
            .await
            .unwrap(),
        PlanOutcome::NoChanges { .. }
    ));
}

#[tokio::test]
async fn infra_version_comes_from_the_configured_output_or_tag() {
    let cases = [
        (
            vec![InfraVersionKey::Output("InfrastructureVersion".into())],
            Some("1"),
        ),
        (
            vec![InfraVersionKey::Tag("infrastructure-version".into())],
            Some("tag-1"),
        ),
        (
            vec![
                InfraVersionKey::Output("Missing".into()),
                InfraVersionKey::Tag("infrastructure-version".into()),
            ],
            Some("tag-1"),
        ),
        (vec![InfraVersionKey::Output("Missing".into())], None),
        (vec![], None),
    ];
    for (keys, expected) in cases {
        let s = setup_with(StackUpdaterConfig {
            infra_version_keys: keys.clone(),
            ..StackUpdaterConfig::default()
        });
        let state = s.updater.read_stack("runner").await.unwrap();
        assert_eq!(
            state.infra_version.as_ref().map(|v| v.as_str()),
            expected,
            "{keys:?}"
        );
    }
    let s = setup();
    assert!(matches!(
        s.updater.read_stack("nope").await,
        Err(Error::StackNotFound { .. })
    ));
}

#[tokio::test]
async fn subnet_changes_are_validated_before_any_mutating_call() {
    let subnets = InMemorySubnets::new();
    subnets.insert("subnet-a", "vpc-1", "eu-west-1a");
    subnets.insert("subnet-b", "vpc-1", "eu-west-1b");
    subnets.insert("subnet-c", "vpc-1", "eu-west-1c");
    subnets.insert("subnet-other", "vpc-2", "eu-west-1c");
    let s = setup();
    let updater = s.updater.clone().with_subnet_directory(Arc::new(subnets));

    // Expanding to a third zone with its subnet: fine.
    let expand = StackChange::parameters([
        ("AvailabilityZones", "eu-west-1a,eu-west-1b,eu-west-1c"),
        ("SubnetIds", "subnet-a,subnet-b,subnet-c"),
    ]);
    assert!(matches!(
        updater.plan("runner", &expand).await.unwrap(),
        PlanOutcome::Planned(p) if p.warnings.is_empty()
    ));

    // A subnet from another VPC: refused before any mutating call.
    s.api.clear();
    let other_vpc = StackChange::parameters([
        ("AvailabilityZones", "eu-west-1a,eu-west-1b,eu-west-1c"),
        ("SubnetIds", "subnet-a,subnet-b,subnet-other"),
    ]);
    let err = updater.plan("runner", &other_vpc).await.unwrap_err();
    let Error::InvalidSubnets { report, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(report.subnets_outside_vpc, vec!["subnet-other".to_string()]);
    assert!(err.to_string().contains("more than one VPC"), "{err}");
    assert!(s.api.mutating_calls().is_empty());

    // Zones changed alone: the subnets do not cover the new zone (an
    // error) and the plan would warn; with the directory absent, only the
    // warning remains.
    let zones_only =
        StackChange::parameters([("AvailabilityZones", "eu-west-1a,eu-west-1b,eu-west-1c")]);
    let err = updater.plan("runner", &zones_only).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("availability zones without a subnet: eu-west-1c"),
        "{err}"
    );
    let PlanOutcome::Planned(plan) = s.updater.plan("runner", &zones_only).await.unwrap() else {
        panic!("expected a plan")
    };
    assert_eq!(plan.warnings.len(), 1);
    assert!(plan.warnings[0].contains("AvailabilityZones changes but none of SubnetIds does"));
}

/// A template with EC2 subnets and load-balancer subnets: each list must
/// cover every requested zone by itself; zones may be given by id.
#[tokio::test]
async fn each_subnet_list_is_validated_on_its_own_and_zone_ids_are_accepted() {
    let subnets = InMemorySubnets::new();
    subnets.insert_with_zone_id("subnet-a", "vpc-1", "eu-west-1a", "euw1-az1");
    subnets.insert_with_zone_id("subnet-b", "vpc-1", "eu-west-1b", "euw1-az2");
    subnets.insert_with_zone_id("subnet-c", "vpc-1", "eu-west-1c", "euw1-az3");
    subnets.insert_with_zone_id("subnet-lb-a", "vpc-1", "eu-west-1a", "euw1-az1");
    subnets.insert_with_zone_id("subnet-lb-b", "vpc-1", "eu-west-1b", "euw1-az2");
    let cfn = FakeCfn::new();
    cfn.add_template(
        V1,
        FakeTemplate::new()
            .parameter("AvailabilityZones", None)
            .parameter("SubnetIds", None)
            .parameter("LoadBalancerSubnets", None)
            .parameter("VpcId", None),
    );
    cfn.create_stack(
        "runner",
        V1,
        &[
            ("AvailabilityZones", "euw1-az1,euw1-az2"),
            ("SubnetIds", "subnet-a,subnet-b"),
            ("LoadBalancerSubnets", "subnet-lb-a,subnet-lb-b"),
            ("VpcId", "vpc-1"),
        ],
        &[],
    )
    .unwrap();
    let api = RecordingCfn::new(cfn.clone());
    let config = StackUpdaterConfig {
        az_parameters: AzParameterNames {
            subnets: vec!["SubnetIds".into(), "LoadBalancerSubnets".into()],
            ..AzParameterNames::default()
        },
        ..StackUpdaterConfig::default()
    };
    let updater = StackUpdater::new(
        Arc::new(api.clone()),
        Arc::new(ManualClock::auto_advancing(ManualClock::EPOCH_2025)),
        config,
    )
    .unwrap()
    .with_subnet_directory(Arc::new(subnets.clone()));

    // A third zone (by id) for the EC2 subnets only: the union covers it,
    // but the load-balancer list does not, and the report says so.
    let ec2_only = StackChange::parameters([
        ("AvailabilityZones", "euw1-az1,euw1-az2,euw1-az3"),
        ("SubnetIds", "subnet-a,subnet-b,subnet-c"),
    ]);
    let err = updater.plan("runner", &ec2_only).await.unwrap_err();
    let Error::InvalidSubnets { report, .. } = &err else {
        panic!("{err}")
    };
    assert!(report.zones_without_subnet.is_empty(), "{report}");
    assert_eq!(
        report.list_gaps,
        vec![ListZoneGap {
            parameter: "LoadBalancerSubnets".into(),
            zone: "euw1-az3".into(),
            covered_by: vec!["SubnetIds".into()],
        }]
    );
    assert!(
        err.to_string().contains(
            "subnet parameter LoadBalancerSubnets has no subnet in availability zone euw1-az3 \
             (only SubnetIds does)"
        ),
        "{err}"
    );
    assert!(api.mutating_calls().is_empty());

    // Both lists extended: valid, no warning.
    subnets.insert_with_zone_id("subnet-lb-c", "vpc-1", "eu-west-1c", "euw1-az3");
    let both = StackChange::parameters([
        ("AvailabilityZones", "euw1-az1,euw1-az2,euw1-az3"),
        ("SubnetIds", "subnet-a,subnet-b,subnet-c"),
        ("LoadBalancerSubnets", "subnet-lb-a,subnet-lb-b,subnet-lb-c"),
    ]);
    let PlanOutcome::Planned(plan) = updater.plan("runner", &both).await.unwrap() else {
        panic!("expected a plan")
    };
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
    // Zone names work as well as ids.
    updater.discard_plan(&plan).await.unwrap();
    let by_name = StackChange::parameters([
        ("AvailabilityZones", "eu-west-1a,eu-west-1b,eu-west-1c"),
        ("SubnetIds", "subnet-a,subnet-b,subnet-c"),
        ("LoadBalancerSubnets", "subnet-lb-a,subnet-lb-b,subnet-lb-c"),
    ]);
    assert!(matches!(
        updater.plan("runner", &by_name).await.unwrap(),
        PlanOutcome::Planned(_)
    ));
}

/// A template whose parameters are not the configured names: the plan says
/// so and subnet changes are not refused; without a zone parameter only
/// existence and the VPC are checked.
#[tokio::test]
async fn configured_names_missing_from_the_template_are_reported_not_refused() {
    let subnets = InMemorySubnets::new();
    subnets.insert("subnet-a", "vpc-1", "eu-west-1a");
    subnets.insert("subnet-b", "vpc-1", "eu-west-1b");
    subnets.insert("subnet-x", "vpc-2", "eu-west-1b");
    let cfn = FakeCfn::new();
    // No zone parameter; subnets under another name.
    cfn.add_template(
        V1,
        FakeTemplate::new()
            .parameter("Subnets", None)
            .parameter("Image", None),
    );
    cfn.add_template(
        V2,
        FakeTemplate::new()
            .parameter("SubnetIds", None)
            .parameter("VpcId", None)
            .parameter("Image", None),
    );
    cfn.create_stack(
        "runner",
        V1,
        &[("Subnets", "subnet-a"), ("Image", "runner:1")],
        &[],
    )
    .unwrap();
    let updater = StackUpdater::new(
        Arc::new(cfn.clone()),
        Arc::new(ManualClock::auto_advancing(ManualClock::EPOCH_2025)),
        StackUpdaterConfig::default(),
    )
    .unwrap()
    .with_subnet_directory(Arc::new(subnets));

    let change = StackChange::parameters([("Subnets", "subnet-a,subnet-b")]);
    let PlanOutcome::Planned(plan) = updater.plan("runner", &change).await.unwrap() else {
        panic!("expected a plan")
    };
    assert_eq!(plan.warnings.len(), 1, "{:?}", plan.warnings);
    let warning = &plan.warnings[0];
    assert!(
        warning.contains("declares none of the configured subnet parameters (SubnetIds)")
            && warning.contains("its parameters are: Subnets, Image")
            && warning.contains("no availability-zone parameter AvailabilityZones"),
        "{warning}"
    );
    updater.discard_plan(&plan).await.unwrap();

    // The new template has the subnet and VPC parameters but no zones:
    // existence and the VPC are checked, zones are not.
    let wrong_vpc =
        StackChange::replace_template(V2, [("SubnetIds", "subnet-a,subnet-x"), ("VpcId", "vpc-1")]);
    let err = updater.plan("runner", &wrong_vpc).await.unwrap_err();
    let Error::InvalidSubnets { report, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(report.subnets_outside_vpc, vec!["subnet-x".to_string()]);
    assert!(!report.empty_request && report.zones_without_subnet.is_empty());
    let right =
        StackChange::replace_template(V2, [("SubnetIds", "subnet-a,subnet-b"), ("VpcId", "vpc-1")]);
    let PlanOutcome::Planned(plan) = updater.plan("runner", &right).await.unwrap() else {
        panic!("expected a plan")
    };
    assert_eq!(plan.warnings.len(), 1, "{:?}", plan.warnings);
    assert!(
        plan.warnings[0].contains("checked to exist and share one VPC but not against zones"),
        "{:?}",
        plan.warnings
    );
}

/// Capabilities come from GetTemplateSummary (IAM resources, transforms),
/// are shown in the plan, and one the configuration does not acknowledge
/// is refused before any mutating call.
#[tokio::test]
async fn capabilities_come_from_the_template_summary_and_need_acknowledging() {
    const SAM: &str = "https://runner.s3.eu-west-1.amazonaws.com/sam/runner.yaml";
    const PLAIN: &str = "https://runner.s3.eu-west-1.amazonaws.com/plain/runner.yaml";
    let s = setup();
    s.cfn.add_template(
        SAM,
        template("3")
            .transform("AWS::Serverless-2016-10-31")
            .capability("CAPABILITY_NAMED_IAM"),
    );
    s.cfn.add_template(
        PLAIN,
        FakeTemplate::new()
            .parameter("Image", None)
            .parameter("AvailabilityZones", None)
            .parameter("SubnetIds", None)
            .parameter("VpcId", None)
            .resource("Service", "AWS::ECS::Service"),
    );

    // The runner template has an IAM role: CAPABILITY_IAM, nothing more.
    let PlanOutcome::Planned(plan) = s.updater.plan("runner", &image_change()).await.unwrap()
    else {
        panic!("expected a plan")
    };
    assert_eq!(plan.capabilities, vec!["CAPABILITY_IAM".to_string()]);
    s.updater.discard_plan(&plan).await.unwrap();

    // No IAM resource: no capability at all (not a fixed list).
    let plain = StackChange::replace_template(PLAIN, [("Image", "runner:2")]);
    let PlanOutcome::Planned(plan) = s.updater.plan("runner", &plain).await.unwrap() else {
        panic!("expected a plan")
    };
    assert!(plan.capabilities.is_empty(), "{:?}", plan.capabilities);
    s.updater.discard_plan(&plan).await.unwrap();

    // A transform needs CAPABILITY_AUTO_EXPAND, which the default
    // configuration does not acknowledge.
    s.api.clear();
    let sam = StackChange::replace_template(SAM, [("Image", "runner:3")]);
    for mode in [ApplyMode::ChangeSet, ApplyMode::Direct] {
        let err = s
            .updater
            .apply("runner", &sam, mode, &NoProgress)
            .await
            .unwrap_err();
        let Error::CapabilityNotAcknowledged { missing, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!(missing, &vec!["CAPABILITY_AUTO_EXPAND".to_string()]);
        assert!(
            err.to_string().contains("StackUpdaterConfig::capabilities"),
            "{err}"
        );
    }
    assert!(s.api.mutating_calls().is_empty());

    // Acknowledged: planned with every needed capability, and applied
    // (FakeCfn refuses a change set that lacks one, as CloudFormation does).
    let config = StackUpdaterConfig {
        capabilities: vec![
            "CAPABILITY_NAMED_IAM".into(),
            "CAPABILITY_AUTO_EXPAND".into(),
        ],
        ..StackUpdaterConfig::default()
    };
    let updater = StackUpdater::new(Arc::new(s.cfn.clone()), s.clock.clone(), config).unwrap();
    let PlanOutcome::Planned(plan) = updater.plan("runner", &sam).await.unwrap() else {
        panic!("expected a plan")
    };
    assert_eq!(
        plan.capabilities,
        vec![
            "CAPABILITY_AUTO_EXPAND".to_string(),
            "CAPABILITY_NAMED_IAM".to_string()
        ]
    );
    let outcome = updater.apply_plan(&plan, &NoProgress).await.unwrap();
    assert!(
        matches!(outcome, StackUpdateOutcome::Updated { .. }),
        "{outcome:?}"
    );
}

/// A change set that fails, times out or is abandoned before execution is
/// deleted: nothing is left behind for an operator to trip over.
#[tokio::test]
async fn failed_timed_out_and_abandoned_change_sets_are_deleted() {
    // Failed while being created.
    let s = setup();
    s.cfn
        .fail_next_change_set("Template error: unresolved resource dependencies [Nope]");
    let err = s
        .updater
        .apply("runner", &image_change(), ApplyMode::ChangeSet, &NoProgress)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::ChangeSetFailed { reason, .. } if reason.contains("Nope")),
        "{err}"
    );
    assert!(s.cfn.change_set_names("runner").is_empty());

    // Still being created when the wait runs out.
    let s = setup_with(StackUpdaterConfig {
        change_set_timeout: Duration::from_secs(20),
        ..StackUpdaterConfig::default()
    });
    s.cfn.set_change_set_polls(100);
    let err = s.updater.plan("runner", &image_change()).await.unwrap_err();
    let Error::WaitTimedOut { resume, .. } = &err else {
        panic!("{err}")
    };
    assert!(resume.change_set.is_some());
    assert!(s.cfn.change_set_names("runner").is_empty());

    // Created, then the execute is refused: apply's own change set is
    // abandoned and deleted; the stack is untouched.
    let s = setup();
    s.cfn
        .fail_next_call("ExecuteChangeSet", ErrorClass::Permanent);
    s.updater
        .apply("runner", &image_change(), ApplyMode::ChangeSet, &NoProgress)
        .await
        .unwrap_err();
    assert!(s.cfn.change_set_names("runner").is_empty());
    assert_eq!(
        s.cfn.stored_parameter("runner", "Image").as_deref(),
        Some("runner:1")
    );

    // A change set that is slow to create but finishes in time is used.
    let s = setup();
    s.cfn.set_change_set_polls(2);
    let outcome = s
        .updater
        .apply("runner", &image_change(), ApplyMode::ChangeSet, &NoProgress)
        .await
        .unwrap();
    assert!(
        matches!(outcome, StackUpdateOutcome::Updated { .. }),
        "{outcome:?}"
    );
}

/// Change set names and client request tokens stay within 128 characters
/// (FakeCfn refuses longer names, as CloudFormation does), even with the
/// longest prefix the configuration accepts and a long stack name.
#[tokio::test]
async fn change_set_names_stay_within_128_characters() {
    let prefix = format!("a{}", "-b".repeat(49) + "c");
    assert_eq!(prefix.len(), 100);
    let config = StackUpdaterConfig {
        change_set_prefix: prefix.clone(),
        ..StackUpdaterConfig::default()
    };
    let cfn = FakeCfn::new();
    cfn.add_template(V1, template("1"));
    let stack = "runner-".repeat(18);
    cfn.create_stack(
        &stack,
        V1,
        &[
            ("Image", "runner:1"),
            ("AvailabilityZones", "eu-west-1a"),
            ("SubnetIds", "subnet-a"),
            ("VpcId", "vpc-1"),
        ],
        &[],
    )
    .unwrap();
    let clock = Arc::new(ManualClock::auto_advancing(ManualClock::EPOCH_2025));
    let updater = StackUpdater::new(Arc::new(cfn.clone()), clock, config.clone()).unwrap();
    for _ in 0..3 {
        let PlanOutcome::Planned(plan) = updater.plan(&stack, &image_change()).await.unwrap()
        else {
            panic!("expected a plan")
        };
        updater.discard_plan(&plan).await.unwrap();
    }
    let outcome = updater
        .apply(&stack, &image_change(), ApplyMode::ChangeSet, &NoProgress)
        .await
        .unwrap();
    assert!(
        matches!(outcome, StackUpdateOutcome::Updated { .. }),
        "{outcome:?}"
    );
    for name in cfn.change_set_names(&stack) {
        assert!(
            name.len() <= 128 && name.starts_with(&prefix[..50]),
            "{name}"
        );
    }
    // A prefix too long to leave room for the unique suffix is refused.
    let too_long = StackUpdaterConfig {
        change_set_prefix: format!("{prefix}x"),
        ..config
    };
    assert!(matches!(too_long.validate(), Err(Error::InvalidConfig(_))));
}

/// A new template that changes the default of a parameter the update keeps
/// (UsePreviousValue): the plan lists it; opting in takes the new default.
#[tokio::test]
async fn kept_parameters_whose_default_changed_are_listed_and_can_take_the_new_default() {
    const OLD: &str = "https://runner.s3.eu-west-1.amazonaws.com/d1/runner.yaml";
    const NEW: &str = "https://runner.s3.eu-west-1.amazonaws.com/d2/runner.yaml";
    let cfn = FakeCfn::new();
    cfn.add_template(
        OLD,
        FakeTemplate::new()
            .parameter("Image", None)
            .parameter("LogLevel", Some("info"))
            .parameter("Size", Some("small"))
            .no_echo_parameter("Token", Some("old-default-secret"))
            .resource("Service", "AWS::ECS::Service"),
    );
    cfn.add_template(
        NEW,
        FakeTemplate::new()
            .parameter("Image", None)
            .parameter("LogLevel", Some("debug"))
            .parameter("Size", Some("small"))
            .no_echo_parameter("Token", Some("new-default-secret"))
            .resource("Service", "AWS::ECS::Service"),
    );
    cfn.create_stack(
        "runner",
        OLD,
        &[
            ("Image", "runner:1"),
            ("LogLevel", "info"),
            ("Token", "t0k3n"),
        ],
        &[],
    )
    .unwrap();
    let updater = StackUpdater::new(
        Arc::new(cfn.clone()),
        Arc::new(ManualClock::auto_advancing(ManualClock::EPOCH_2025)),
        StackUpdaterConfig::default(),
    )
    .unwrap();

    let change = StackChange::replace_template(NEW, [("Image", "runner:2")]);
    let PlanOutcome::Planned(plan) = updater.plan("runner", &change).await.unwrap() else {
        panic!("expected a plan")
    };
    assert_eq!(
        plan.kept_defaults,
        vec![KeptDefault {
            key: "LogLevel".into(),
            kept: "info".into(),
            old_default: Some("info".into()),
            new_default: "debug".into(),
        }]
    );
    assert!(
        plan.warnings.contains(
            &r#"kept LogLevel = "info", the new default is "debug" (was "info")"#.to_string()
        ),
        "{:?}",
        plan.warnings
    );
    let shown = format!("{plan:?}");
    assert!(
        !shown.contains("secret") && !shown.contains("t0k3n"),
        "{shown}"
    );
    updater.discard_plan(&plan).await.unwrap();

    // Opted in: LogLevel takes the new default, shown in the diff.
    let options = UpdateOptions {
        take_new_defaults: true,
        ..UpdateOptions::default()
    };
    let PlanOutcome::Planned(plan) = updater
        .plan_with_options("runner", &change, &options, &NoProgress)
        .await
        .unwrap()
    else {
        panic!("expected a plan")
    };
    assert!(plan.kept_defaults.is_empty());
    let diff: Vec<String> = plan
        .parameter_diff
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        diff.contains(&r#"LogLevel: "info" -> "debug""#.to_string()),
        "{diff:?}"
    );
    updater.apply_plan(&plan, &NoProgress).await.unwrap();
    assert_eq!(
        cfn.stored_parameter("runner", "LogLevel").as_deref(),
        Some("debug")
    );
    // The NoEcho secret is kept, never replaced by a default.
    assert_eq!(
        cfn.stored_parameter("runner", "Token").as_deref(),
        Some("t0k3n")
    );
}

/// An SSM-typed parameter is re-resolved by CloudFormation on every update:
/// the plan says so, with the value resolved at the last update
/// (DescribeStacks' ResolvedValue) and the one the change set resolved.
#[tokio::test]
async fn ssm_parameters_show_their_old_and_new_resolved_values() {
    const SSM: &str = "https://runner.s3.eu-west-1.amazonaws.com/ssm/runner.yaml";
    let cfn = FakeCfn::new();
    cfn.add_template(
        SSM,
        FakeTemplate::new()
            .parameter("Image", None)
            .ssm_parameter("AmiId", Some("/runner/ami/latest"))
            .resource("Instance", "AWS::EC2::Instance"),
    );
    cfn.set_ssm_parameter("/runner/ami/latest", "ami-0001");
    cfn.create_stack("runner", SSM, &[("Image", "runner:1")], &[])
        .unwrap();
    let updater = StackUpdater::new(
        Arc::new(cfn.clone()),
        Arc::new(ManualClock::auto_advancing(ManualClock::EPOCH_2025)),
        StackUpdaterConfig::default(),
    )
    .unwrap();
    let before = updater.read_stack("runner").await.unwrap();
    assert_eq!(before.description.resolved_parameters["AmiId"], "ami-0001");

    // The SSM parameter moved on since the last update.
    cfn.set_ssm_parameter("/runner/ami/latest", "ami-0002");
    let PlanOutcome::Planned(plan) = updater
        .plan("runner", &StackChange::parameters([("Image", "runner:2")]))
        .await
        .unwrap()
    else {
        panic!("expected a plan")
    };
    assert_eq!(
        plan.ssm_parameters,
        vec![SsmParameter {
            key: "AmiId".into(),
            parameter_type: "AWS::SSM::Parameter::Value<String>".into(),
            name_before: Some("/runner/ami/latest".into()),
            name_after: Some("/runner/ami/latest".into()),
            resolved_before: Some("ami-0001".into()),
            resolved_after: Some("ami-0002".into()),
        }]
    );
    let line = plan.ssm_parameters[0].to_string();
    assert_eq!(
        line,
        "AmiId (AWS::SSM::Parameter::Value<String>) names SSM parameter \"/runner/ami/latest\": \
         resolved \"ami-0001\" -> \"ami-0002\"; CloudFormation resolves it again on every update"
    );
    assert!(plan.warnings.contains(&line), "{:?}", plan.warnings);
    // The parameter itself does not change: not in the diff.
    assert!(plan.parameter_diff.iter().all(|c| c.key != "AmiId"));
    updater.apply_plan(&plan, &NoProgress).await.unwrap();
    let after = updater.read_stack("runner").await.unwrap();
    assert_eq!(after.description.resolved_parameters["AmiId"], "ami-0002");
}

/// Rollback triggers passed on apply replace the stack's; an apply without
/// them keeps the stack's own; invalid ones are refused before any call.
#[tokio::test]
async fn rollback_triggers_are_passed_on_apply_and_kept_when_not_given() {
    let s = setup();
    let alarm = |name: &str| format!("arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{name}");
    let triggers =
        RollbackConfiguration::alarms([alarm("runner-5xx"), alarm("runner-health")], Some(10));
    let options = UpdateOptions {
        rollback_configuration: Some(triggers.clone()),
        ..UpdateOptions::default()
    };
    let outcome = s
        .updater
        .apply_with_options(
            "runner",
            &image_change(),
            ApplyMode::ChangeSet,
            &options,
            &NoProgress,
        )
        .await
        .unwrap();
    assert!(
        matches!(outcome, StackUpdateOutcome::Updated { .. }),
        "{outcome:?}"
    );
    assert_eq!(
        s.cfn.rollback_configuration("runner"),
        Some(triggers.clone())
    );

    // Not passed: the stack keeps its own triggers (both modes).
    for (mode, image) in [
        (ApplyMode::Direct, "runner:3"),
        (ApplyMode::ChangeSet, "runner:4"),
    ] {
        s.updater
            .apply(
                "runner",
                &StackChange::parameters([("Image", image)]),
                mode,
                &NoProgress,
            )
            .await
            .unwrap();
        assert_eq!(
            s.cfn.rollback_configuration("runner"),
            Some(triggers.clone())
        );
    }

    // An empty list, sent explicitly, removes them.
    let none = UpdateOptions {
        rollback_configuration: Some(RollbackConfiguration::default()),
        ..UpdateOptions::default()
    };
    s.updater
        .apply_with_options(
            "runner",
            &StackChange::parameters([("Image", "runner:5")]),
            ApplyMode::Direct,
            &none,
            &NoProgress,
        )
        .await
        .unwrap();
    assert_eq!(
        s.cfn.rollback_configuration("runner"),
        Some(RollbackConfiguration::default())
    );

    // Invalid triggers: refused before any CloudFormation call.
    s.api.clear();
    let invalid = [
        RollbackConfiguration::alarms((0..6).map(|i| alarm(&format!("a{i}"))), None),
        RollbackConfiguration::alarms(["arn:aws:sns:eu-west-1:123456789012:topic"], None),
        RollbackConfiguration::alarms([alarm("a"), alarm("a")], None),
        RollbackConfiguration::alarms([alarm("a")], Some(181)),
    ];
    for rollback in invalid {
        let options = UpdateOptions {
            rollback_configuration: Some(rollback.clone()),
            ..UpdateOptions::default()
        };
        let err = s
            .updater
            .apply_with_options(
                "runner",
                &image_change(),
                ApplyMode::ChangeSet,
                &options,
                &NoProgress,
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::InvalidConfig(_)),
            "{rollback:?}: {err}"
        );
    }
    assert!(s.api.calls().is_empty(), "{:?}", s.api.calls());
}

/// DescribeStacks can lag behind ExecuteChangeSet / UpdateStack: for a few
/// polls it still shows the previous update's terminal status while the new
/// update's events are already there. The wait must not take that stale
/// status for this update's end.
#[tokio::test]
async fn the_wait_does_not_take_the_previous_terminal_status_after_execute() {
    for mode in [ApplyMode::ChangeSet, ApplyMode::Direct] {
        // The update rolls back, but the stale status says UPDATE_COMPLETE.
        let s = setup();
        s.cfn.set_status("runner", "UPDATE_COMPLETE").unwrap();
        s.cfn.set_execute_lag(3);
        s.cfn.fail_next_update(
            "runner",
            FakeFailure::RollBack {
                failed_resources: vec![("Service".into(), "CannotPullContainerError".into())],
            },
        );
        let outcome = s
            .updater
            .apply("runner", &image_change(), mode, &NoProgress)
            .await
            .unwrap();
        assert!(
            matches!(&outcome, StackUpdateOutcome::RolledBack { reasons, .. }
                if reasons[0].contains("CannotPullContainerError")),
            "{mode:?}: {outcome:?}"
        );

        // A slow update behind the lag: waited for, then Updated.
        let s = setup();
        s.cfn.set_execute_lag(2);
        s.cfn.set_update_polls(3);
        let outcome = s
            .updater
            .apply("runner", &image_change(), mode, &NoProgress)
            .await
            .unwrap();
        assert!(
            matches!(outcome, StackUpdateOutcome::Updated { .. }),
            "{mode:?}: {outcome:?}"
        );
        assert_eq!(
            s.cfn.stored_parameter("runner", "Image").as_deref(),
            Some("runner:2")
        );
    }
}

#[tokio::test]
async fn backend_failures_keep_their_class() {
    for class in [
        ErrorClass::Throttled,
        ErrorClass::Transient,
        ErrorClass::Permanent,
    ] {
        // The first read (not retried outside a wait) and a start request
        // (only throttled / transient ones are retried, see
        // a_start_whose_response_was_lost_keeps_waiting).
        let s = setup();
        s.cfn.fail_next_call("DescribeStacks", class);
        let err = s
            .updater
            .apply("runner", &image_change(), ApplyMode::Direct, &NoProgress)
            .await
            .unwrap_err();
        assert!(
            matches!(
                &err,
                Error::Backend {
                    operation: "DescribeStacks",
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(err.class(), class);
    }
    let s = setup();
    s.cfn.fail_next_call("UpdateStack", ErrorClass::Permanent);
    let err = s
        .updater
        .apply("runner", &image_change(), ApplyMode::Direct, &NoProgress)
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Backend {
                operation: "UpdateStack",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.class(), ErrorClass::Permanent);
}

#[test]
fn config_validation_table() {
    let cases: Vec<(&str, StackUpdaterConfig, bool)> = vec![
        ("default", StackUpdaterConfig::default(), true),
        (
            "zero poll",
            StackUpdaterConfig {
                poll_interval: Duration::ZERO,
                ..Default::default()
            },
            false,
        ),
        (
            "timeout below poll",
            StackUpdaterConfig {
                update_timeout: Duration::from_secs(1),
                ..Default::default()
            },
            false,
        ),
        (
            "bad prefix",
            StackUpdaterConfig {
                change_set_prefix: "1-bad_prefix".into(),
                ..Default::default()
            },
            false,
        ),
        (
            "bad host",
            StackUpdaterConfig {
                template_urls: cfn_stack::TemplateUrlPolicy::allowing(["https://host"]),
                ..Default::default()
            },
            false,
        ),
    ];
    for (name, config, ok) in cases {
        assert_eq!(config.validate().is_ok(), ok, "{name}");
    }
}

#[tokio::test]
async fn a_discarded_plan_leaves_no_change_set_and_no_change() {
    let s = setup();
    let PlanOutcome::Planned(plan) = s.updater.plan("runner", &image_change()).await.unwrap()
    else {
        panic!("expected a plan")
    };
    assert_eq!(s.cfn.change_set_names("runner").len(), 1);
    s.updater.discard_plan(&plan).await.unwrap();
    assert!(s.cfn.change_set_names("runner").is_empty());
    assert_eq!(
        s.updater
            .read_stack("runner")
            .await
            .unwrap()
            .description
            .parameters["Image"],
        "runner:1"
    );
    // Applying a discarded plan fails; nothing changes.
    assert!(s.updater.apply_plan(&plan, &NoProgress).await.is_err());
    assert_eq!(
        s.updater
            .read_stack("runner")
            .await
            .unwrap()
            .description
            .status
            .as_str(),
        "CREATE_COMPLETE"
    );
}

// ---- NoEcho secrets -------------------------------------------------------

const SECRET: &str = "runner-token-7f3a9c";
const NEW_SECRET: &str = "runner-token-b81e04";
const SECRET_URL: &str = "https://runner.s3.eu-west-1.amazonaws.com/v1/secret.yaml";
const SECRET_URL_V2: &str = "https://runner.s3.eu-west-1.amazonaws.com/v2/secret.yaml";

fn secret_setup() -> Setup {
    let s = setup();
    s.cfn.add_template(
        SECRET_URL,
        FakeTemplate::new()
            .parameter("Image", None)
            .no_echo_parameter("RunnerToken", None)
            .resource("Service", "AWS::ECS::Service"),
    );
    s.cfn.add_template(
        SECRET_URL_V2,
        FakeTemplate::new()
            .parameter("Image", None)
            .no_echo_parameter("RunnerToken", None)
            .no_echo_parameter("ProxyToken", None)
            .resource("Service", "AWS::ECS::Service"),
    );
    s.cfn
        .create_stack(
            "secret",
            SECRET_URL,
            &[("Image", "runner:1"), ("RunnerToken", SECRET)],
            &[],
        )
        .unwrap();
    s.api.clear();
    s
}

/// Everything a caller could print about a plan: its Debug, its diff lines
/// and its warnings.
fn printed(plan: &cfn_stack::StackPlan) -> String {
    let diff: Vec<String> = plan
        .parameter_diff
        .iter()
        .map(ToString::to_string)
        .collect();
    format!("{plan:?}\n{}\n{:?}", diff.join("\n"), plan.warnings)
}

#[tokio::test]
async fn no_echo_values_are_masked_on_describe() {
    let s = secret_setup();
    let d = s.updater.read_stack("secret").await.unwrap().description;
    assert_eq!(d.parameters["RunnerToken"], cfn_stack::NO_ECHO_MASK);
    assert_eq!(d.parameters["Image"], "runner:1");
    assert!(!format!("{d:?}").contains(SECRET));
    assert_eq!(
        s.cfn.stored_parameter("secret", "RunnerToken").as_deref(),
        Some(SECRET)
    );
}

/// A caller that copies the parameters it read (`****` included) and edits
/// one never overwrites the secret: the masked value becomes
/// `UsePreviousValue`.
#[tokio::test]
async fn copied_masked_values_keep_the_secret() {
    let s = secret_setup();
    let mut parameters = s
        .updater
        .read_stack("secret")
        .await
        .unwrap()
        .description
        .parameters;
    parameters.insert("Image".into(), "runner:2".into());
    let change = StackChange::parameters(parameters);
    for mode in [ApplyMode::ChangeSet, ApplyMode::Direct] {
        let outcome = s
            .updater
            .apply("secret", &change, mode, &NoProgress)
            .await
            .unwrap();
        assert!(outcome.is_success(), "{mode:?}: {outcome:?}");
        assert_eq!(
            s.cfn.stored_parameter("secret", "RunnerToken").as_deref(),
            Some(SECRET),
            "{mode:?}"
        );
    }
    assert_eq!(
        s.cfn.stored_parameter("secret", "Image").as_deref(),
        Some("runner:2")
    );
}

/// A new secret is sent, always listed in the diff as `(hidden)`, and
/// appears in no plan output, progress item or error.
#[tokio::test]
async fn a_set_secret_is_listed_hidden_and_never_printed() {
    let s = secret_setup();
    let seen = Arc::new(Mutex::new(String::new()));
    let sink = {
        let seen = seen.clone();
        move |p: &StackProgress| seen.lock().unwrap().push_str(&format!("{p:?}\n"))
    };
    let change = StackChange::parameters([("RunnerToken", NEW_SECRET)]);
    let PlanOutcome::Planned(plan) = s
        .updater
        .plan_with_progress("secret", &change, &sink)
        .await
        .unwrap()
    else {
        panic!("expected a plan");
    };
    let diff: Vec<String> = plan
        .parameter_diff
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(diff, vec!["RunnerToken: (hidden) -> (hidden)"]);
    assert!(plan.parameter_diff[0].no_echo);
    let mut output = printed(&plan);
    let outcome = s.updater.apply_plan(&plan, &sink).await.unwrap();
    assert!(outcome.is_success(), "{outcome:?}");
    output.push_str(&format!("{outcome:?}"));
    assert_eq!(
        s.cfn.stored_parameter("secret", "RunnerToken").as_deref(),
        Some(NEW_SECRET)
    );

    // Setting the same secret again is still listed (it cannot be compared).
    let again = StackChange::parameters([("RunnerToken", NEW_SECRET)]);
    let err_or_plan = s.updater.plan("secret", &again).await.unwrap();
    output.push_str(&format!("{err_or_plan:?}"));
    if let PlanOutcome::Planned(plan) = &err_or_plan {
        output.push_str(&printed(plan));
        s.updater.discard_plan(plan).await.unwrap();
    }

    // Errors on a change that sets a secret do not show it either.
    s.cfn
        .fail_next_call("CreateChangeSet", ErrorClass::Permanent);
    let err = s.updater.plan("secret", &change).await.unwrap_err();
    output.push_str(&format!("{err}\n{err:?}\n"));
    let unknown = StackChange::parameters([("RunnerToken", NEW_SECRET), ("Nope", "x")]);
    let err = s.updater.plan("secret", &unknown).await.unwrap_err();
    output.push_str(&format!("{err}\n{err:?}\n"));
    output.push_str(&seen.lock().unwrap());
    for secret in [SECRET, NEW_SECRET] {
        assert!(!output.contains(secret), "{secret} leaked:\n{output}");
    }
    assert!(output.contains("(hidden)"));
}

/// `****` for a NoEcho parameter the stack does not hold (here added by a
/// new template) would set the secret to `****`: refused, naming it, before
/// any mutating call.
#[tokio::test]
async fn a_masked_value_that_would_overwrite_a_secret_is_refused() {
    let s = secret_setup();
    let change =
        StackChange::replace_template(SECRET_URL_V2, [("ProxyToken", cfn_stack::NO_ECHO_MASK)]);
    for mode in [ApplyMode::ChangeSet, ApplyMode::Direct] {
        let err = s
            .updater
            .apply("secret", &change, mode, &NoProgress)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::MaskedNoEchoValue { parameter, .. } if parameter == "ProxyToken"),
            "{err}"
        );
        assert!(err.to_string().contains("\"ProxyToken\""), "{err}");
        assert!(s.api.mutating_calls().is_empty());
    }
    // With a real value, the new secret is listed as added, hidden.
    let change = StackChange::replace_template(SECRET_URL_V2, [("ProxyToken", NEW_SECRET)]);
    let PlanOutcome::Planned(plan) = s.updater.plan("secret", &change).await.unwrap() else {
        panic!("expected a plan");
    };
    let diff: Vec<String> = plan
        .parameter_diff
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(diff, vec!["ProxyToken: (none) -> (hidden)"]);
    assert!(!printed(&plan).contains(NEW_SECRET));
}

// ---- The verified template is the one applied -----------------------------

const BIG_URL: &str = "https://runner.s3.eu-west-1.amazonaws.com/v3/runner.json";

/// A JSON template above the 51,200-byte `TemplateBody` limit.
fn big_body(marker: &str) -> String {
    let padding = "x".repeat(cfn_stack::MAX_TEMPLATE_BODY_BYTES);
    format!(
        r#"{{"Description": "{marker}", "Metadata": {{"Padding": "{padding}"}}, "Resources": {{}}}}"#
    )
}

fn verified_updater(s: &Setup, url: &str, body: &str) -> (StackUpdater, StaticTemplates) {
    let templates = StaticTemplates::new();
    templates.insert(url, body.as_bytes().to_vec());
    let updater = s
        .updater
        .clone()
        .with_template_fetcher(Arc::new(templates.clone()));
    (updater, templates)
}

fn hashed(url: &str, body: &str) -> StackChange {
    StackChange::ReplaceTemplate {
        template_url: url.into(),
        parameter_changes: [("Image".to_string(), "runner:2".to_string())].into(),
        expected_sha256: Some(sha256_hex(body.as_bytes())),
    }
}

#[tokio::test]
async fn a_small_verified_template_is_sent_as_its_body() {
    for mode in [ApplyMode::ChangeSet, ApplyMode::Direct] {
        let s = setup();
        let (updater, _) = verified_updater(&s, V2, V2_BODY);
        let change = hashed(V2, V2_BODY);
        if mode == ApplyMode::ChangeSet {
            let PlanOutcome::Planned(plan) = updater.plan("runner", &change).await.unwrap() else {
                panic!("expected a plan");
            };
            assert_eq!(
                plan.template,
                cfn_stack::TemplateSource::Body(V2_BODY.into())
            );
            assert_eq!(
                plan.template_sha256.as_deref(),
                Some(sha256_hex(V2_BODY.as_bytes()).as_str())
            );
            updater.apply_plan(&plan, &NoProgress).await.unwrap();
        } else {
            updater
                .apply("runner", &change, mode, &NoProgress)
                .await
                .unwrap();
        }
        let state = updater.read_stack("runner").await.unwrap();
        assert_eq!(state.infra_version.unwrap().as_str(), "2", "{mode:?}");
        // The body was sent: nothing to read back.
        assert!(
            !s.api.calls().contains(&CfnOperation::ChangeSetTemplate),
            "{mode:?}"
        );
    }
}

#[tokio::test]
async fn a_large_template_is_read_back_from_the_change_set_before_executing() {
    let s = setup();
    let body = big_body("v3");
    s.cfn.add_template_body(BIG_URL, &body, template("3"));
    let (updater, _) = verified_updater(&s, BIG_URL, &body);
    let PlanOutcome::Planned(plan) = updater
        .plan("runner", &hashed(BIG_URL, &body))
        .await
        .unwrap()
    else {
        panic!("expected a plan");
    };
    assert_eq!(
        plan.template,
        cfn_stack::TemplateSource::Url(BIG_URL.into())
    );
    let calls = s.api.calls();
    let read_back = calls
        .iter()
        .position(|c| *c == CfnOperation::ChangeSetTemplate)
        .expect("the change set's template is read back");
    assert!(
        read_back
            > calls
                .iter()
                .position(|c| *c == CfnOperation::CreateChangeSet)
                .unwrap()
    );
    s.api.clear();
    let outcome = updater.apply_plan(&plan, &NoProgress).await.unwrap();
    assert!(outcome.is_success(), "{outcome:?}");
    // Checked again right before executing.
    let calls = s.api.calls();
    assert!(
        calls
            .iter()
            .position(|c| *c == CfnOperation::ChangeSetTemplate)
            < calls
                .iter()
                .position(|c| *c == CfnOperation::ExecuteChangeSet)
    );
    assert_eq!(
        updater
            .read_stack("runner")
            .await
            .unwrap()
            .infra_version
            .unwrap()
            .as_str(),
        "3"
    );
}

/// The object under a mutable URL changes between our fetch and
/// CloudFormation's: the change set's template does not match, the change
/// set is deleted and nothing is executed.
#[tokio::test]
async fn a_template_republished_after_verification_is_never_applied() {
    let s = setup();
    let verified = big_body("v3");
    let republished = big_body("v3-evil");
    s.cfn
        .add_template_body(BIG_URL, &republished, template("3"));
    let (updater, _) = verified_updater(&s, BIG_URL, &verified);
    let err = updater
        .apply(
            "runner",
            &hashed(BIG_URL, &verified),
            ApplyMode::ChangeSet,
            &NoProgress,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::TemplateHashMismatch { actual, .. } if *actual == sha256_hex(republished.as_bytes())),
        "{err}"
    );
    assert!(!s.api.calls().contains(&CfnOperation::ExecuteChangeSet));
    assert!(s.cfn.change_set_names("runner").is_empty());
    assert_eq!(
        updater
            .read_stack("runner")
            .await
            .unwrap()
            .infra_version
            .unwrap()
            .as_str(),
        "1"
    );
}

/// `UpdateStack` would fetch the URL again, unverified: an expected hash in
/// Direct mode needs the body path.
#[tokio::test]
async fn direct_mode_refuses_a_hash_it_cannot_send_as_a_body() {
    let s = setup();
    let body = big_body("v3");
    s.cfn.add_template_body(BIG_URL, &body, template("3"));
    let (updater, _) = verified_updater(&s, BIG_URL, &body);
    let err = updater
        .apply(
            "runner",
            &hashed(BIG_URL, &body),
            ApplyMode::Direct,
            &NoProgress,
        )
        .await
        .unwrap_err();
    assert!(matches!(&err, Error::TemplateNotVerifiable { .. }), "{err}");
    assert!(err.to_string().contains("ApplyMode::ChangeSet"), "{err}");
    assert!(s.api.calls().is_empty(), "{:?}", s.api.calls());
}

// ---- Bind the template to the release -------------------------------------

const SEED_URL: &str =
    "https://gitpod-flex-releases.s3.amazonaws.com/ec2/stable/gitpod-ec2-runner.json";

fn release(template_url: &str, body: &str) -> runner_version::Release {
    runner_version::Release {
        version: runner_version::Version::parse("20250101.2").unwrap(),
        channel: runner_version::Channel::Stable,
        image: runner_version::ImageRef::parse(&format!(
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/runner@sha256:{}",
            "0".repeat(64)
        ))
        .unwrap(),
        proxy_image: None,
        infra_version: Some("2".into()),
        template_url: template_url.into(),
        template_sha256: Some(sha256_hex(body.as_bytes())),
        released_at: None,
        expires: None,
        waves: Default::default(),
    }
}

#[tokio::test]
async fn a_release_brings_its_template_url_and_hash() {
    let body = r#"{"Description": "runner 2", "Resources": {}}"#;
    let s = setup_with(StackUpdaterConfig {
        template_urls: cfn_stack::TemplateUrlPolicy::default()
            .only_buckets(["gitpod-flex-releases"]),
        ..StackUpdaterConfig::default()
    });
    s.cfn.add_template_body(SEED_URL, body, template("2"));
    let (updater, templates) = verified_updater(&s, SEED_URL, body);
    let change = StackChange::from_release(&release(SEED_URL, body), [("Image", "runner:2")]);
    let outcome = updater
        .apply("runner", &change, ApplyMode::Direct, &NoProgress)
        .await
        .unwrap();
    assert!(outcome.is_success(), "{outcome:?}");
    assert_eq!(templates.fetched(), vec![SEED_URL.to_string()]);
    assert_eq!(
        updater
            .read_stack("runner")
            .await
            .unwrap()
            .infra_version
            .unwrap()
            .as_str(),
        "2"
    );

    // A release whose template lives elsewhere is refused before any call.
    s.api.clear();
    let foreign = "https://someone-else.s3.amazonaws.com/ec2/stable/gitpod-ec2-runner.json";
    let change = StackChange::from_release(&release(foreign, body), [("Image", "runner:3")]);
    let err = updater
        .apply("runner", &change, ApplyMode::ChangeSet, &NoProgress)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidTemplateUrl { .. }), "{err}");
    assert!(s.api.calls().is_empty());

    // The hash travels: a release whose template changed is refused.
    let change = StackChange::from_release(&release(SEED_URL, "{}"), [("Image", "runner:3")]);
    let err = updater
        .apply("runner", &change, ApplyMode::ChangeSet, &NoProgress)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TemplateHashMismatch { .. }), "{err}");
}

// ---- Waiting ----------------------------------------------------------------

/// Throttled and transient reads while waiting are retried on the clock.
#[tokio::test]
async fn throttled_and_transient_reads_during_a_wait_are_retried() {
    let s = setup();
    s.cfn.set_update_polls(3);
    let injected = Arc::new(Mutex::new(false));
    let sink = {
        let (cfn, injected) = (s.cfn.clone(), injected.clone());
        move |p: &StackProgress| {
            let mut injected = injected.lock().unwrap();
            if matches!(p, StackProgress::Event(_)) && !*injected {
                *injected = true;
                cfn.fail_next_call("DescribeStacks", ErrorClass::Throttled);
                cfn.fail_next_call("DescribeStackEvents", ErrorClass::Transient);
            }
        }
    };
    for mode in [ApplyMode::Direct, ApplyMode::ChangeSet] {
        *injected.lock().unwrap() = false;
        let change = StackChange::parameters([("Image", format!("runner:{mode:?}"))]);
        let outcome = s
            .updater
            .apply("runner", &change, mode, &sink)
            .await
            .unwrap();
        assert!(outcome.is_success(), "{mode:?}: {outcome:?}");
        assert!(*injected.lock().unwrap());
    }
    // Change set creation polls are retried as well.
    s.cfn
        .fail_next_call("DescribeChangeSet", ErrorClass::Throttled);
    let outcome = s
        .updater
        .apply("runner", &image_change(), ApplyMode::ChangeSet, &NoProgress)
        .await
        .unwrap();
    assert!(outcome.is_success(), "{outcome:?}");
    // A permanent read failure still ends the wait at once.
    s.cfn.set_update_polls(3);
    let sink = {
        let cfn = s.cfn.clone();
        move |p: &StackProgress| {
            if matches!(p, StackProgress::Event(_)) {
                cfn.fail_next_call("DescribeStacks", ErrorClass::Permanent);
            }
        }
    };
    let err = s
        .updater
        .apply(
            "runner",
            &StackChange::parameters([("Image", "runner:9")]),
            ApplyMode::Direct,
            &sink,
        )
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Permanent, "{err}");
}

/// A timed-out wait says how to resume, and is not classed as retryable
/// (re-applying would start a second update).
#[tokio::test]
async fn a_timed_out_wait_can_be_resumed_and_is_not_retryable() {
    let s = setup_with(StackUpdaterConfig {
        update_timeout: Duration::from_secs(30),
        ..StackUpdaterConfig::default()
    });
    s.cfn.set_update_polls(12);
    let err = s
        .updater
        .apply("runner", &image_change(), ApplyMode::Direct, &NoProgress)
        .await
        .unwrap_err();
    let Error::WaitTimedOut { resume, .. } = &err else {
        panic!("expected WaitTimedOut, got {err}");
    };
    assert!(resume.client_request_token.is_some());
    assert_eq!(err.class(), ErrorClass::Permanent);
    assert!(err.to_string().contains("do not re-apply"), "{err}");
    s.api.clear();
    let outcome = s
        .updater
        .resume_wait("runner", resume, &NoProgress)
        .await
        .unwrap();
    assert!(
        matches!(outcome, StackUpdateOutcome::Updated { .. }),
        "{outcome:?}"
    );
    assert!(s.api.mutating_calls().is_empty());
}

#[tokio::test]
async fn cleanup_in_progress_is_updated_with_cleanup_pending() {
    let s = setup();
    s.cfn.set_cleanup_polls(3);
    let outcome = s
        .updater
        .apply("runner", &image_change(), ApplyMode::ChangeSet, &NoProgress)
        .await
        .unwrap();
    let StackUpdateOutcome::Updated {
        status,
        cleanup_pending,
        ..
    } = &outcome
    else {
        panic!("expected Updated, got {outcome:?}");
    };
    assert_eq!(status.as_str(), "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS");
    assert!(*cleanup_pending);
    assert!(outcome.is_success());
    // The stack stays busy until the cleanup ends.
    let err = s
        .updater
        .plan("runner", &StackChange::parameters([("Image", "runner:3")]))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::StackBusy { .. }), "{err}");
    for _ in 0..3 {
        s.updater.read_stack("runner").await.unwrap();
    }
    assert_eq!(
        s.updater
            .read_stack("runner")
            .await
            .unwrap()
            .description
            .status
            .as_str(),
        "UPDATE_COMPLETE"
    );
}

// ---- Client request tokens ----------------------------------------------------

/// Both modes send a `ClientRequestToken`; the wait follows only the events
/// carrying it, so another operation's failure is not this update's reason.
#[tokio::test]
async fn updates_carry_a_token_and_events_of_other_tokens_are_ignored() {
    for mode in [ApplyMode::Direct, ApplyMode::ChangeSet] {
        let s = setup();
        s.cfn.set_update_polls(2);
        s.cfn.fail_next_update(
            "runner",
            FakeFailure::RollBack {
                failed_resources: vec![("Service".into(), "image not found".into())],
            },
        );
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = {
            let (cfn, seen) = (s.cfn.clone(), seen.clone());
            move |p: &StackProgress| {
                if let StackProgress::Event(e) = p {
                    let mut seen = seen.lock().unwrap();
                    if seen.is_empty() {
                        cfn.record_event(
                            "runner",
                            cfn_stack::StackEvent {
                                event_id: String::new(),
                                timestamp: None,
                                logical_id: "Intruder".into(),
                                resource_type: "AWS::SQS::Queue".into(),
                                status: "UPDATE_FAILED".into(),
                                reason: Some("someone else's operation".into()),
                                client_request_token: Some("someone-else-1".into()),
                            },
                        )
                        .unwrap();
                    }
                    seen.push(e.clone());
                }
            }
        };
        let outcome = s
            .updater
            .apply("runner", &image_change(), mode, &sink)
            .await
            .unwrap();
        let StackUpdateOutcome::RolledBack { reasons, .. } = &outcome else {
            panic!("{mode:?}: {outcome:?}");
        };
        assert_eq!(
            reasons,
            &vec!["Service (AWS::ECS::Service) UPDATE_FAILED: image not found".to_string()],
            "{mode:?}"
        );
        let seen = seen.lock().unwrap();
        let token = seen[0].client_request_token.clone();
        assert!(
            token
                .as_deref()
                .is_some_and(|t| t.starts_with("cfn-stack-")),
            "{token:?}"
        );
        assert!(
            seen.iter().all(|e| e.client_request_token == token),
            "{mode:?}: {seen:?}"
        );
        assert!(seen.iter().all(|e| e.logical_id != "Intruder"));
        // The cancelled neighbour was reported as progress but is no reason.
        assert!(
            seen.iter()
                .any(|e| e.reason.as_deref() == Some("Resource update cancelled"))
        );
    }
}

/// The start request took effect but its answer was lost: the updater
/// finds its token in the events and waits, instead of failing or
/// starting a second update.
#[tokio::test]
async fn a_start_whose_response_was_lost_keeps_waiting() {
    for (mode, operation, op) in [
        (
            ApplyMode::ChangeSet,
            "ExecuteChangeSet",
            CfnOperation::ExecuteChangeSet,
        ),
        (ApplyMode::Direct, "UpdateStack", CfnOperation::UpdateStack),
    ] {
        let s = setup();
        s.cfn.lose_next_response(operation);
        let outcome = s
            .updater
            .apply("runner", &image_change(), mode, &NoProgress)
            .await
            .unwrap();
        assert!(
            matches!(outcome, StackUpdateOutcome::Updated { .. }),
            "{mode:?}: {outcome:?}"
        );
        let starts = s.api.calls().iter().filter(|c| **c == op).count();
        assert_eq!(starts, 1, "{mode:?}");
        assert_eq!(
            s.cfn.stored_parameter("runner", "Image").as_deref(),
            Some("runner:2")
        );
    }
    // A transient failure that did not take effect is retried (same token).
    for (mode, operation, op) in [
        (
            ApplyMode::ChangeSet,
            "ExecuteChangeSet",
            CfnOperation::ExecuteChangeSet,
        ),
        (ApplyMode::Direct, "UpdateStack", CfnOperation::UpdateStack),
    ] {
        let s = setup();
        s.cfn.fail_next_call(operation, ErrorClass::Throttled);
        let outcome = s
            .updater
            .apply("runner", &image_change(), mode, &NoProgress)
            .await
            .unwrap();
        assert!(outcome.is_success(), "{mode:?}: {outcome:?}");
        let starts = s.api.calls().iter().filter(|c| **c == op).count();
        assert_eq!(starts, 2, "{mode:?}");
    }
}

// ---- Nested stacks and resource-change details ----------------------------

const NESTED_V1: &str = "https://runner.s3.eu-west-1.amazonaws.com/v1/nested.json";
const NESTED_V2: &str = "https://runner.s3.eu-west-1.amazonaws.com/v2/nested.json";

fn launch_template_detail() -> cfn_stack::ResourceChangeDetail {
    cfn_stack::ResourceChangeDetail {
        attribute: Some("Properties".into()),
        name: Some("LaunchTemplate".into()),
        requires_recreation: Some("Always".into()),
        evaluation: Some("Static".into()),
        change_source: Some("DirectModification".into()),
        causing_entity: None,
    }
}

/// A root stack with a nested network stack, itself nesting a DNS stack;
/// v2 adds an endpoint to the network stack, changes a record in the DNS
/// stack and replaces the root's auto scaling group.
fn nested_setup() -> Setup {
    let s = setup();
    let dns = FakeTemplate::new().resource("Record", "AWS::Route53::RecordSet");
    let network = FakeTemplate::new().resource("SecurityGroup", "AWS::EC2::SecurityGroup");
    s.cfn.add_template(
        NESTED_V1,
        FakeTemplate::new()
            .parameter("Image", None)
            .resource("RunnerAsg", "AWS::AutoScaling::AutoScalingGroup")
            .resource("Bucket", "AWS::S3::Bucket")
            .deletion_policy("Bucket", "Retain")
            .nested_stack(
                "RunnerNetwork",
                network.clone().nested_stack("Dns", dns.clone()),
            ),
    );
    s.cfn.add_template(
        NESTED_V2,
        FakeTemplate::new()
            .parameter("Image", None)
            .resource("RunnerAsg", "AWS::AutoScaling::AutoScalingGroup")
            .change_detail("RunnerAsg", launch_template_detail())
            .nested_stack(
                "RunnerNetwork",
                network
                    .resource("Endpoint", "AWS::EC2::VPCEndpoint")
                    .nested_stack(
                        "Dns",
                        dns.change_detail(
                            "Record",
                            cfn_stack::ResourceChangeDetail {
                                attribute: Some("Properties".into()),
                                name: Some("TTL".into()),
                                requires_recreation: Some("Never".into()),
                                evaluation: Some("Dynamic".into()),
                                change_source: Some("ParameterReference".into()),
                                causing_entity: Some("Ttl".into()),
                            },
                        ),
                    ),
            ),
    );
    s.cfn
        .create_stack("nested", NESTED_V1, &[("Image", "runner:1")], &[])
        .unwrap();
    s
}

/// The plan lists the changes inside nested stacks (two levels) under
/// their paths, right after the nested stack itself; each change keeps its
/// replacement, policy action, scope and details; the replacement is in
/// the plan's text and warnings.
#[tokio::test]
async fn the_plan_shows_nested_stack_changes_and_change_details() {
    let s = nested_setup();
    let change = StackChange::replace_template(NESTED_V2, Vec::<(String, String)>::new());
    let PlanOutcome::Planned(plan) = s.updater.plan("nested", &change).await.unwrap() else {
        panic!("expected a plan");
    };
    let lines: Vec<String> = plan
        .resource_changes
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        lines,
        vec![
            "Modify RunnerAsg (AWS::AutoScaling::AutoScalingGroup): REPLACEMENT True, policy \
             action ReplaceAndDelete; Properties.LaunchTemplate (requires recreation: Always)",
            "Modify RunnerNetwork (AWS::CloudFormation::Stack): replacement False; scope \
             Properties",
            "Modify RunnerNetwork/Dns (AWS::CloudFormation::Stack): replacement False; scope \
             Properties",
            "Modify RunnerNetwork/Dns/Record (AWS::Route53::RecordSet): replacement False; \
             Properties.TTL (requires recreation: Never, known only when the update runs, \
             ParameterReference Ttl)",
            "Add RunnerNetwork/Endpoint (AWS::EC2::VPCEndpoint)",
            "Modify RunnerNetwork/SecurityGroup (AWS::EC2::SecurityGroup): replacement False",
            "Remove Bucket (AWS::S3::Bucket): policy action Retain",
        ],
        "{plan}"
    );
    let asg = &plan.resource_changes[0];
    assert!(asg.is_replacement());
    assert_eq!(asg.scope, vec!["Properties".to_string()]);
    assert_eq!(asg.details, vec![launch_template_detail()]);
    assert!(plan.resource_changes[1].nested_change_set.is_some());
    assert!(!plan.resource_changes[1].is_replacement());
    let shown = plan.to_string();
    assert!(
        shown.contains("REPLACED: RunnerAsg (new physical resources"),
        "{shown}"
    );
    assert_eq!(
        plan.warnings
            .iter()
            .filter(|w| w.contains("CloudFormation replaces this resource"))
            .count(),
        1,
        "{:?}",
        plan.warnings
    );
    assert!(
        plan.warnings[0].starts_with("Modify RunnerAsg"),
        "{:?}",
        plan.warnings
    );
    // Three change sets were read: the root and the two nested ones.
    assert_eq!(
        s.api
            .calls()
            .iter()
            .filter(|c| **c == CfnOperation::DescribeChangeSet)
            .count(),
        3
    );
    // Discarding the plan deletes the nested change sets with the root.
    assert_eq!(s.cfn.change_set_count(), 3);
    s.updater.discard_plan(&plan).await.unwrap();
    assert_eq!(s.cfn.change_set_count(), 0);
    // Planned again and applied, the stack has the new template.
    let PlanOutcome::Planned(plan) = s.updater.plan("nested", &change).await.unwrap() else {
        panic!("expected a plan");
    };
    let outcome = s.updater.apply_plan(&plan, &NoProgress).await.unwrap();
    assert!(outcome.is_success(), "{outcome:?}");
    assert!(matches!(
        s.updater.plan("nested", &change).await.unwrap(),
        PlanOutcome::NoChanges { .. }
    ));
}

/// A failing read of a nested change set fails the plan and deletes the
/// root change set (and with it the nested ones).
#[tokio::test]
async fn a_nested_change_set_that_cannot_be_read_fails_the_plan_and_leaves_nothing() {
    let s = nested_setup();
    let change = StackChange::replace_template(NESTED_V2, Vec::<(String, String)>::new());
    // The root describe succeeds; the first nested describe fails.
    let api = FailSecondDescribe::new(s.cfn.clone());
    let updater = StackUpdater::new(
        Arc::new(api),
        s.clock.clone(),
        StackUpdaterConfig::default(),
    )
    .unwrap();
    let err = updater.plan("nested", &change).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Permanent, "{err}");
    assert!(s.cfn.change_set_names("nested").is_empty());
    assert_eq!(s.cfn.change_set_count(), 0);
}

/// Forwards to `FakeCfn`, failing the second `DescribeChangeSet`.
#[derive(Debug)]
struct FailSecondDescribe {
    inner: FakeCfn,
    describes: Mutex<u32>,
}

impl FailSecondDescribe {
    fn new(inner: FakeCfn) -> Self {
        Self {
            inner,
            describes: Mutex::new(0),
        }
    }
}

#[async_trait::async_trait]
impl CfnApi for FailSecondDescribe {
    async fn describe_stack(&self, stack: &str) -> Result<cfn_stack::StackDescription, Error> {
        self.inner.describe_stack(stack).await
    }
    async fn template_summary(
        &self,
        stack: &str,
        template: &cfn_stack::TemplateSource,
    ) -> Result<cfn_stack::TemplateSummary, Error> {
        self.inner.template_summary(stack, template).await
    }
    async fn update_stack(
        &self,
        request: &cfn_stack::StackUpdateRequest,
    ) -> Result<cfn_stack::UpdateStart, Error> {
        self.inner.update_stack(request).await
    }
    async fn create_change_set(
        &self,
        name: &str,
        request: &cfn_stack::StackUpdateRequest,
    ) -> Result<cfn_stack::ChangeSetStart, Error> {
        self.inner.create_change_set(name, request).await
    }
    async fn describe_change_set(
        &self,
        change_set: &cfn_stack::ChangeSetRef,
    ) -> Result<cfn_stack::ChangeSetDescription, Error> {
        let n = {
            let mut d = self.describes.lock().unwrap();
            *d += 1;
            *d
        };
        if n == 2 {
            return Err(Error::backend(
                "DescribeChangeSet",
                &change_set.change_set,
                ErrorClass::Permanent,
                "AccessDenied: not allowed to describe the nested change set",
            ));
        }
        self.inner.describe_change_set(change_set).await
    }
    async fn execute_change_set(
        &self,
        change_set: &cfn_stack::ChangeSetRef,
        token: Option<&str>,
    ) -> Result<(), Error> {
        self.inner.execute_change_set(change_set, token).await
    }
    async fn delete_change_set(&self, change_set: &cfn_stack::ChangeSetRef) -> Result<(), Error> {
        self.inner.delete_change_set(change_set).await
    }
    async fn change_set_template(
        &self,
        change_set: &cfn_stack::ChangeSetRef,
    ) -> Result<String, Error> {
        self.inner.change_set_template(change_set).await
    }
    async fn stack_events(
        &self,
        stack: &str,
        after: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Vec<cfn_stack::StackEvent>, Error> {
        self.inner.stack_events(stack, after, limit).await
    }
}
