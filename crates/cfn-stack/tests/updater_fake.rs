//! `StackUpdater` on the in-memory `FakeCfn`: outcomes moto cannot produce
//! (rollback, failure), busy stacks, waiting on the manual clock, input
//! errors without API calls, plans and subnet checks.
use std::{sync::Arc, sync::Mutex, time::Duration};

use cfn_stack::{
    ApplyMode, CfnApi, CfnOperation, Error, ErrorClass, FakeCfn, FakeFailure, FakeTemplate,
    InMemorySubnets, InfraVersionKey, NoProgress, PlanOutcome, RecordingCfn, StackChange,
    StackProgress, StackUpdateOutcome, StackUpdater, StackUpdaterConfig, StaticTemplates,
    sha256_hex,
};
use update_clock::{Clock, ManualClock};

const V1: &str = "https://runner.s3.eu-west-1.amazonaws.com/v1/runner.yaml";
const V2: &str = "https://runner.s3.eu-west-1.amazonaws.com/v2/runner.yaml";

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
    cfn.add_template(
        V2,
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
            StackUpdateOutcome::RolledBack { reasons } => {
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
    let StackUpdateOutcome::Failed { status, reasons } = outcome else {
        panic!("expected Failed, got {outcome:?}");
    };
    assert_eq!(status.as_str(), "UPDATE_ROLLBACK_FAILED");
    assert_eq!(
        reasons,
        vec![
            "TaskRole (AWS::IAM::Role) UPDATE_FAILED: AccessDenied: iam:PutRolePolicy".to_string(),
            "runner (AWS::CloudFormation::Stack) UPDATE_ROLLBACK_FAILED: TaskRole could not be restored"
                .to_string(),
            "stack: TaskRole could not be restored".to_string(),
        ]
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
            waited: Duration::from_secs(20)
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
    let body = b"Resources: {}".to_vec();
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

#[tokio::test]
async fn backend_failures_keep_their_class() {
    for class in [
        ErrorClass::Throttled,
        ErrorClass::Transient,
        ErrorClass::Permanent,
    ] {
        let s = setup();
        s.cfn.fail_next_call("UpdateStack", class);
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
        assert_eq!(err.class(), class);
    }
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
