//! `AwsCfn` and `StackUpdater` against moto's CloudFormation on 127.0.0.1.
//!
//! Templates are uploaded to moto S3 with `MotoServer::put_s3_object`,
//! which stores them in moto's default account; moto's CloudFormation reads
//! a `TemplateURL` from the S3 of the requesting account, so these tests
//! use the default account and isolate themselves with unique stack names.
//! Stacks are created with every parameter given explicitly (moto answers
//! `UsePreviousValue` on a defaulted parameter with a 500).
//!
//! moto cannot fail or roll back a stack: `RolledBack` and `Failed` are
//! covered on `FakeCfn` in `updater_fake.rs`.
use std::sync::{
    Arc, Mutex,
    atomic::{AtomicU32, Ordering},
};

use aws_sdk_cloudformation::types::{Parameter, Tag};
use cfn_stack::{
    ApplyMode, AwsCfn, CfnApi, CfnOperation, Error, NoProgress, PlanOutcome, RecordingCfn,
    StackChange, StackProgress, StackUpdateOutcome, StackUpdater, StackUpdaterConfig,
    StaticTemplates, conformance, sha256_hex,
};
use moto_harness::MotoServer;
use update_clock::ManualClock;

const RUNNER_V1: &str = r#"{
  "AWSTemplateFormatVersion": "2010-09-09",
  "Description": "runner v1",
  "Parameters": {
    "Image": {"Type": "String"},
    "AvailabilityZones": {"Type": "String"},
    "SubnetIds": {"Type": "String"},
    "LogLevel": {"Type": "String", "Default": "info"}
  },
  "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
  "Outputs": {
    "InfrastructureVersion": {"Value": "1"},
    "ImageOut": {"Value": {"Ref": "Image"}}
  }
}"#;

const RUNNER_V2: &str = r#"{
  "AWSTemplateFormatVersion": "2010-09-09",
  "Description": "runner v2",
  "Parameters": {
    "Image": {"Type": "String"},
    "AvailabilityZones": {"Type": "String"},
    "SubnetIds": {"Type": "String"},
    "LogLevel": {"Type": "String", "Default": "info"}
  },
  "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
  "Outputs": {
    "InfrastructureVersion": {"Value": "2"},
    "ImageOut": {"Value": {"Ref": "Image"}},
    "MetricsPort": {"Value": "9100"}
  }
}"#;

const INITIAL: &[(&str, &str)] = &[
    ("Image", "runner:1"),
    ("AvailabilityZones", "us-east-1a,us-east-1b"),
    ("SubnetIds", "subnet-a,subnet-b"),
    ("LogLevel", "info"),
];

fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn client(moto: &MotoServer) -> aws_sdk_cloudformation::Client {
    aws_sdk_cloudformation::Client::new(&moto.sdk_config())
}

/// Uploads both runner templates and returns their URLs.
fn upload(moto: &MotoServer) -> (String, String) {
    let bucket = unique("templates");
    (
        moto.put_s3_object(&bucket, "v1/runner.json", RUNNER_V1.as_bytes()),
        moto.put_s3_object(&bucket, "v2/runner.json", RUNNER_V2.as_bytes()),
    )
}

async fn create_stack(
    client: &aws_sdk_cloudformation::Client,
    name: &str,
    url: &str,
    parameters: &[(&str, &str)],
    tags: &[(&str, &str)],
) {
    client
        .create_stack()
        .stack_name(name)
        .template_url(url)
        .set_parameters(Some(
            parameters
                .iter()
                .map(|(k, v)| {
                    Parameter::builder()
                        .parameter_key(*k)
                        .parameter_value(*v)
                        .build()
                })
                .collect(),
        ))
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
                .collect(),
        ))
        .send()
        .await
        .expect("create stack in moto");
}

struct Setup {
    stack: String,
    v2: String,
    api: RecordingCfn<AwsCfn>,
    updater: StackUpdater,
}

async fn setup() -> Setup {
    let moto = MotoServer::shared();
    let client = client(moto);
    let (v1, v2) = upload(moto);
    let stack = unique("runner");
    create_stack(&client, &stack, &v1, INITIAL, &[("team", "runner")]).await;
    let api = RecordingCfn::new(AwsCfn::new(client));
    let clock = Arc::new(ManualClock::auto_advancing(ManualClock::EPOCH_2025));
    let updater =
        StackUpdater::new(Arc::new(api.clone()), clock, StackUpdaterConfig::default()).unwrap();
    Setup {
        stack,
        v2,
        api,
        updater,
    }
}

#[tokio::test]
async fn reads_a_stack_created_from_a_template_in_s3() {
    let s = setup().await;
    let state = s.updater.read_stack(&s.stack).await.unwrap();
    let d = &state.description;
    assert_eq!(d.status.as_str(), "CREATE_COMPLETE");
    assert_eq!(d.parameters["Image"], "runner:1");
    assert_eq!(d.parameters["SubnetIds"], "subnet-a,subnet-b");
    assert_eq!(d.outputs["ImageOut"], "runner:1");
    assert_eq!(d.tags["team"], "runner");
    assert_eq!(state.infra_version.unwrap().as_str(), "1");
    assert!(matches!(
        s.updater.read_stack(&unique("missing")).await,
        Err(Error::StackNotFound { .. })
    ));
}

#[tokio::test]
async fn parameter_only_update_keeps_every_other_parameter() {
    let s = setup().await;
    let outcome = s
        .updater
        .apply(
            &s.stack,
            &StackChange::parameters([("Image", "runner:2")]),
            ApplyMode::Direct,
            &NoProgress,
        )
        .await
        .unwrap();
    assert!(
        matches!(outcome, StackUpdateOutcome::Updated { .. }),
        "{outcome:?}"
    );
    let d = s.updater.read_stack(&s.stack).await.unwrap().description;
    assert_eq!(d.parameters["Image"], "runner:2");
    assert_eq!(d.parameters["AvailabilityZones"], "us-east-1a,us-east-1b");
    assert_eq!(d.parameters["SubnetIds"], "subnet-a,subnet-b");
    assert_eq!(d.parameters["LogLevel"], "info");
    assert_eq!(d.outputs["ImageOut"], "runner:2");
}

#[tokio::test]
async fn template_replacement_adds_an_output_and_streams_events() {
    let s = setup().await;
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = {
        let events = events.clone();
        move |p: &StackProgress| {
            if let StackProgress::Event(e) = p {
                events.lock().unwrap().push(e.status.clone());
            }
        }
    };
    let outcome = s
        .updater
        .apply(
            &s.stack,
            &StackChange::replace_template(&s.v2, [("LogLevel", "debug")]),
            ApplyMode::Direct,
            &sink,
        )
        .await
        .unwrap();
    assert!(
        matches!(outcome, StackUpdateOutcome::Updated { .. }),
        "{outcome:?}"
    );
    let state = s.updater.read_stack(&s.stack).await.unwrap();
    assert_eq!(state.description.outputs["MetricsPort"], "9100");
    assert_eq!(state.infra_version.unwrap().as_str(), "2");
    assert_eq!(state.description.parameters["LogLevel"], "debug");
    assert_eq!(state.description.parameters["Image"], "runner:1");
    assert_eq!(
        *events.lock().unwrap(),
        vec![
            "UPDATE_IN_PROGRESS".to_string(),
            "UPDATE_COMPLETE".to_string()
        ]
    );
}

#[tokio::test]
async fn a_no_op_update_is_no_changes() {
    let s = setup().await;
    for mode in [ApplyMode::Direct, ApplyMode::ChangeSet] {
        let outcome = s
            .updater
            .apply(
                &s.stack,
                &StackChange::parameters([("Image", "runner:1")]),
                mode,
                &NoProgress,
            )
            .await
            .unwrap();
        assert!(
            matches!(outcome, StackUpdateOutcome::NoChanges { ref reason } if cfn_stack::means_no_changes(reason)),
            "{mode:?}: {outcome:?}"
        );
    }
}

#[tokio::test]
async fn change_set_plan_shows_the_parameter_diff_then_applies() {
    let s = setup().await;
    let change = StackChange::parameters([
        ("AvailabilityZones", "us-east-1a,us-east-1b,us-east-1c"),
        ("SubnetIds", "subnet-a,subnet-b,subnet-c"),
    ]);
    let PlanOutcome::Planned(plan) = s.updater.plan(&s.stack, &change).await.unwrap() else {
        panic!("expected a plan");
    };
    let diff: Vec<String> = plan
        .parameter_diff
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        diff,
        vec![
            r#"AvailabilityZones: "us-east-1a,us-east-1b" -> "us-east-1a,us-east-1b,us-east-1c""#,
            r#"SubnetIds: "subnet-a,subnet-b" -> "subnet-a,subnet-b,subnet-c""#,
        ]
    );
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
    // Planning applied nothing.
    let d = s.updater.read_stack(&s.stack).await.unwrap().description;
    assert_eq!(d.parameters["SubnetIds"], "subnet-a,subnet-b");
    assert!(!s.api.calls().contains(&CfnOperation::ExecuteChangeSet));

    let outcome = s.updater.apply_plan(&plan, &NoProgress).await.unwrap();
    assert!(
        matches!(outcome, StackUpdateOutcome::Updated { .. }),
        "{outcome:?}"
    );
    let d = s.updater.read_stack(&s.stack).await.unwrap().description;
    assert_eq!(d.parameters["SubnetIds"], "subnet-a,subnet-b,subnet-c");
    assert_eq!(d.parameters["Image"], "runner:1");
}

#[tokio::test]
async fn bad_input_is_refused_without_any_mutating_call() {
    let s = setup().await;
    let templates = StaticTemplates::new();
    templates.insert(&s.v2, RUNNER_V2.as_bytes().to_vec());
    let updater = s.updater.clone().with_template_fetcher(Arc::new(templates));
    let moto_ip_url =
        s.v2.replace("https://s3.amazonaws.com", "https://127.0.0.1");
    let cases: Vec<(&str, StackChange, bool)> = vec![
        (
            "http",
            StackChange::replace_template(s.v2.replace("https://", "http://"), [("Image", "x")]),
            false,
        ),
        (
            "non-S3",
            StackChange::replace_template("https://example.com/t.json", [("Image", "x")]),
            false,
        ),
        (
            "IP host",
            StackChange::replace_template(moto_ip_url, [("Image", "x")]),
            false,
        ),
        (
            "hash mismatch",
            StackChange::ReplaceTemplate {
                template_url: s.v2.clone(),
                parameter_changes: Default::default(),
                expected_sha256: Some(sha256_hex(RUNNER_V1.as_bytes())),
            },
            false,
        ),
        (
            "unknown parameter",
            StackChange::parameters([("Subnets", "subnet-c")]),
            true,
        ),
    ];
    for (name, change, reads_allowed) in cases {
        s.api.clear();
        let err = updater
            .apply(&s.stack, &change, ApplyMode::ChangeSet, &NoProgress)
            .await
            .unwrap_err();
        match name {
            "hash mismatch" => assert!(matches!(err, Error::TemplateHashMismatch { .. }), "{err}"),
            "unknown parameter" => assert!(matches!(err, Error::UnknownParameter { .. }), "{err}"),
            _ => assert!(
                matches!(err, Error::InvalidTemplateUrl { .. }),
                "{name}: {err}"
            ),
        }
        assert!(s.api.mutating_calls().is_empty(), "{name}");
        if !reads_allowed {
            assert!(s.api.calls().is_empty(), "{name}: {:?}", s.api.calls());
        }
    }
    // The right hash goes through.
    let outcome = updater
        .apply(
            &s.stack,
            &StackChange::ReplaceTemplate {
                template_url: s.v2.clone(),
                parameter_changes: Default::default(),
                expected_sha256: Some(sha256_hex(RUNNER_V2.as_bytes())),
            },
            ApplyMode::Direct,
            &NoProgress,
        )
        .await
        .unwrap();
    assert!(
        matches!(outcome, StackUpdateOutcome::Updated { .. }),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn aws_cfn_passes_the_conformance_suite() {
    let moto = MotoServer::shared();
    let client = client(moto);
    let bucket = unique("conformance");
    let v1_url = moto.put_s3_object(&bucket, "v1.json", conformance::V1_TEMPLATE.as_bytes());
    let v2_url = moto.put_s3_object(&bucket, "v2.json", conformance::V2_TEMPLATE.as_bytes());
    let api = AwsCfn::new(client.clone());
    conformance::run_all(&api, |name| {
        let (client, v1_url, v2_url) = (client.clone(), v1_url.clone(), v2_url.clone());
        async move {
            let stack = unique(name);
            create_stack(
                &client,
                &stack,
                &v1_url,
                &[("Image", "image-1"), ("Size", "small")],
                &[("team", "runner")],
            )
            .await;
            conformance::Fixture {
                stack,
                v1_url,
                v2_url,
            }
        }
    })
    .await;
}

#[tokio::test]
async fn backend_errors_are_classified() {
    let moto = MotoServer::shared();
    // Nothing listens on the discard port: a connection failure is transient.
    let dead = aws_sdk_cloudformation::Config::from(&moto.sdk_config())
        .to_builder()
        .endpoint_url("http://127.0.0.1:9")
        .build();
    let api = AwsCfn::new(aws_sdk_cloudformation::Client::from_conf(dead));
    let err = api.describe_stack("runner").await.unwrap_err();
    assert!(
        matches!(&err, Error::Backend { operation: "DescribeStacks", resource, .. } if resource == "runner"),
        "{err}"
    );
    assert_eq!(err.class(), cfn_stack::ErrorClass::Transient, "{err}");

    // A request moto refuses (a change set that does not exist) is permanent.
    let api = AwsCfn::new(client(moto));
    let err = api
        .describe_change_set(&cfn_stack::ChangeSetRef {
            stack: unique("nope"),
            change_set: "no-such-change-set".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.class(), cfn_stack::ErrorClass::Permanent, "{err}");
}

const SECRET_TEMPLATE: &str = r#"{
  "AWSTemplateFormatVersion": "2010-09-09",
  "Parameters": {
    "Image": {"Type": "String"},
    "RunnerToken": {"Type": "String", "NoEcho": true}
  },
  "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
  "Outputs": {
    "ImageOut": {"Value": {"Ref": "Image"}},
    "TokenOut": {"Value": {"Ref": "RunnerToken"}}
  }
}"#;

/// moto 5.2.1 masks a NoEcho value on DescribeStacks only when the value
/// equals a NoEcho parameter's *key* (it compares values with keys), so the
/// seeded secret here is the key name; CloudFormation masks every value.
const SECRET: &str = "RunnerToken";
const NEW_SECRET: &str = "moto-runner-token-9c07";

/// A caller that copies what it read (`****` included) and edits one
/// parameter keeps the secret (the template's `TokenOut` output shows what
/// the stack really holds); a new secret is shown only as `(hidden)`.
/// moto does not refresh outputs when it executes a change set, so each
/// check ends with a Direct update, which does.
#[tokio::test]
async fn no_echo_parameters_are_masked_kept_and_never_printed() {
    let s = setup().await;
    let moto = MotoServer::shared();
    let url = moto.put_s3_object(
        &unique("secrets"),
        "runner.json",
        SECRET_TEMPLATE.as_bytes(),
    );
    let stack = unique("secret");
    create_stack(
        &client(moto),
        &stack,
        &url,
        &[("Image", "runner:1"), ("RunnerToken", SECRET)],
        &[],
    )
    .await;
    let read = s.updater.read_stack(&stack).await.unwrap().description;
    assert_eq!(read.parameters["RunnerToken"], cfn_stack::NO_ECHO_MASK);

    for (mode, image) in [
        (ApplyMode::ChangeSet, "runner:2"),
        (ApplyMode::Direct, "runner:3"),
    ] {
        let mut parameters = s
            .updater
            .read_stack(&stack)
            .await
            .unwrap()
            .description
            .parameters;
        assert_eq!(
            parameters["RunnerToken"],
            cfn_stack::NO_ECHO_MASK,
            "{mode:?}"
        );
        parameters.insert("Image".into(), image.into());
        let outcome = s
            .updater
            .apply(
                &stack,
                &StackChange::parameters(parameters),
                mode,
                &NoProgress,
            )
            .await
            .unwrap();
        assert!(outcome.is_success(), "{mode:?}: {outcome:?}");
    }
    let d = s.updater.read_stack(&stack).await.unwrap().description;
    assert_eq!(d.outputs["ImageOut"], "runner:3");
    assert_eq!(d.outputs["TokenOut"], SECRET, "the secret was overwritten");

    let change = StackChange::parameters([("RunnerToken", NEW_SECRET)]);
    let PlanOutcome::Planned(plan) = s.updater.plan(&stack, &change).await.unwrap() else {
        panic!("expected a plan");
    };
    let diff: Vec<String> = plan
        .parameter_diff
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(diff, vec!["RunnerToken: (hidden) -> (hidden)"]);
    let mut printed = format!("{plan:?}\n{}", diff.join("\n"));
    s.updater.discard_plan(&plan).await.unwrap();
    let outcome = s
        .updater
        .apply(&stack, &change, ApplyMode::Direct, &NoProgress)
        .await
        .unwrap();
    assert!(outcome.is_success(), "{outcome:?}");
    printed.push_str(&format!("\n{outcome:?}"));
    assert!(!printed.contains(NEW_SECRET), "{printed}");
    let d = s.updater.read_stack(&stack).await.unwrap().description;
    assert_eq!(d.outputs["TokenOut"], NEW_SECRET);
}

/// With an expected hash, the verified bytes are sent as `TemplateBody`
/// (change set and Direct): CloudFormation never reads the mutable URL.
#[tokio::test]
async fn a_verified_template_is_sent_as_its_body() {
    let s = setup().await;
    let templates = StaticTemplates::new();
    templates.insert(&s.v2, RUNNER_V2.as_bytes().to_vec());
    let updater = s.updater.clone().with_template_fetcher(Arc::new(templates));
    let change = |image: &str| StackChange::ReplaceTemplate {
        template_url: s.v2.clone(),
        parameter_changes: [("Image".to_string(), image.to_string())].into(),
        expected_sha256: Some(sha256_hex(RUNNER_V2.as_bytes())),
    };
    let PlanOutcome::Planned(plan) = updater.plan(&s.stack, &change("runner:2")).await.unwrap()
    else {
        panic!("expected a plan");
    };
    assert_eq!(
        plan.template,
        cfn_stack::TemplateSource::Body(RUNNER_V2.into())
    );
    let outcome = updater.apply_plan(&plan, &NoProgress).await.unwrap();
    assert!(outcome.is_success(), "{outcome:?}");
    let d = updater.read_stack(&s.stack).await.unwrap().description;
    assert_eq!(d.parameters["Image"], "runner:2");
    // Direct: UpdateStack with the body (moto refreshes outputs here).
    let outcome = updater
        .apply(
            &s.stack,
            &change("runner:3"),
            ApplyMode::Direct,
            &NoProgress,
        )
        .await
        .unwrap();
    assert!(outcome.is_success(), "{outcome:?}");
    let state = updater.read_stack(&s.stack).await.unwrap();
    assert_eq!(state.infra_version.unwrap().as_str(), "2");
    assert_eq!(state.description.outputs["MetricsPort"], "9100");
    assert!(!s.api.calls().contains(&CfnOperation::ChangeSetTemplate));
}

/// Rollback triggers go over the wire with `CreateChangeSet` and
/// `UpdateStack` and moto accepts them (moto does not store or act on them;
/// their effect is covered on `FakeCfn`).
#[tokio::test]
async fn rollback_triggers_are_accepted_by_moto() {
    let s = setup().await;
    let options = cfn_stack::UpdateOptions {
        rollback_configuration: Some(cfn_stack::RollbackConfiguration::alarms(
            ["arn:aws:cloudwatch:us-east-1:123456789012:alarm:runner-health"],
            Some(5),
        )),
        ..cfn_stack::UpdateOptions::default()
    };
    for (mode, image) in [
        (ApplyMode::ChangeSet, "runner:2"),
        (ApplyMode::Direct, "runner:3"),
    ] {
        let outcome = s
            .updater
            .apply_with_options(
                &s.stack,
                &StackChange::parameters([("Image", image)]),
                mode,
                &options,
                &NoProgress,
            )
            .await
            .unwrap();
        assert!(
            matches!(outcome, StackUpdateOutcome::Updated { .. }),
            "{mode:?}: {outcome:?}"
        );
    }
}

/// Records the body of every request the client sends.
#[derive(Debug, Clone, Default)]
struct RequestBodies(Arc<Mutex<Vec<String>>>);

impl aws_sdk_cloudformation::config::Intercept for RequestBodies {
    fn name(&self) -> &'static str {
        "RequestBodies"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_cloudformation::config::interceptors::BeforeTransmitInterceptorContextRef<
            '_,
        >,
        _components: &aws_sdk_cloudformation::config::RuntimeComponents,
        _cfg: &mut aws_sdk_cloudformation::config::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        if let Some(bytes) = context.request().body().bytes() {
            self.0
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(bytes).into_owned());
        }
        Ok(())
    }
}

fn parent_template(nested_url: &str) -> String {
    format!(
        r#"{{
  "AWSTemplateFormatVersion": "2010-09-09",
  "Parameters": {{"Image": {{"Type": "String"}}}},
  "Resources": {{
    "Queue": {{"Type": "AWS::SQS::Queue"}},
    "RunnerNetwork": {{
      "Type": "AWS::CloudFormation::Stack",
      "Properties": {{"TemplateURL": "{nested_url}"}}
    }}
  }}
}}"#
    )
}

/// moto 5.2.1 ignores `IncludeNestedStacks` and reports resource changes
/// with only `Action`, `LogicalResourceId` and `ResourceType`: no
/// `Replacement`, `PolicyAction`, `Scope`, `Details` or nested `ChangeSetId`
/// (real CloudFormation reports all of them). So this checks what moto can
/// show: the change set is created with `IncludeNestedStacks=true`, the
/// nested stack whose template changes is a `Modify` of an
/// `AWS::CloudFormation::Stack`, and a change without details or nested
/// change set maps to empty fields (not a failure). The nested changes and
/// the details are covered on `FakeCfn` in `updater_fake.rs`
/// (`the_plan_shows_nested_stack_changes_and_change_details`).
#[tokio::test]
async fn nested_stacks_are_requested_in_the_preview() {
    let moto = MotoServer::shared();
    let bucket = unique("nested");
    let network = |extra: &str| {
        format!(
            r#"{{"AWSTemplateFormatVersion": "2010-09-09",
                "Resources": {{"SecurityGroup": {{"Type": "AWS::SQS::Queue"}}{extra}}}}}"#
        )
    };
    let network_v1 = moto.put_s3_object(&bucket, "v1/network.json", network("").as_bytes());
    let network_v2 = moto.put_s3_object(
        &bucket,
        "v2/network.json",
        network(r#", "Endpoint": {"Type": "AWS::SQS::Queue"}"#).as_bytes(),
    );
    let v1 = moto.put_s3_object(
        &bucket,
        "v1/runner.json",
        parent_template(&network_v1).as_bytes(),
    );
    let v2 = moto.put_s3_object(
        &bucket,
        "v2/runner.json",
        parent_template(&network_v2).as_bytes(),
    );
    let bodies = RequestBodies::default();
    let config = aws_sdk_cloudformation::config::Builder::from(&moto.sdk_config())
        .interceptor(bodies.clone())
        .build();
    let client = aws_sdk_cloudformation::Client::from_conf(config);
    let stack = unique("nested-runner");
    create_stack(&client, &stack, &v1, &[("Image", "runner:1")], &[]).await;
    let clock = Arc::new(ManualClock::auto_advancing(ManualClock::EPOCH_2025));
    let updater = StackUpdater::new(
        Arc::new(AwsCfn::new(client)),
        clock,
        StackUpdaterConfig::default(),
    )
    .unwrap();
    let change = StackChange::replace_template(&v2, Vec::<(String, String)>::new());
    let PlanOutcome::Planned(plan) = updater.plan(&stack, &change).await.unwrap() else {
        panic!("expected a plan");
    };
    let create: Vec<String> = bodies
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|b| b.contains("Action=CreateChangeSet"))
        .cloned()
        .collect();
    assert_eq!(create.len(), 1, "{create:?}");
    assert!(
        create[0].contains("IncludeNestedStacks=true"),
        "{}",
        create[0]
    );
    let nested = plan
        .resource_changes
        .iter()
        .find(|c| c.logical_id == "RunnerNetwork")
        .unwrap_or_else(|| panic!("no nested stack change in\n{plan}"));
    assert_eq!(nested.action, "Modify");
    assert_eq!(nested.resource_type, "AWS::CloudFormation::Stack");
    // What moto does not report (see above).
    assert_eq!(nested.nested_change_set, None);
    assert_eq!((&nested.policy_action, &nested.details), (&None, &vec![]));
    assert!(!plan.to_string().contains("REPLACED"), "{plan}");
    updater.discard_plan(&plan).await.unwrap();
}
