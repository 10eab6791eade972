//! The behaviour suite every [`CfnApi`] backend runs (feature
//! `conformance`): one `pub async fn` per behaviour, each taking the backend
//! and a freshly created stack ([`Fixture`]).
//!
//! The fixture stack must be created from [`V1_TEMPLATE`] (a template
//! declaring `Image` and `Size`, with outputs `Version` = `1` and
//! `ImageOut` = the `Image` value) with **both** parameters given
//! explicitly (`Image` = `image-1`, `Size` = `small`) and the tag
//! `team` = `runner`; [`V2_TEMPLATE`] declares the same parameters and adds
//! the output `Extra` = `added`. [`fake_fixture`] sets this up on a
//! [`FakeCfn`]; AWS-compatible backends upload the two templates and call
//! `CreateStack`.
//!
//! The suite polls without sleeping: it suits fakes and emulators where
//! stack operations settle at once, not a real AWS account.

use std::{collections::BTreeMap, future::Future};

use crate::{
    CfnApi, ChangeSetRef, ChangeSetStart, Error, ErrorClass, FakeCfn, FakeTemplate, ParameterValue,
    StackDescription, StackUpdateRequest, TemplateSource, UpdateStart,
};

/// The v1 template (JSON) of the fixture stack.
pub const V1_TEMPLATE: &str = r#"{
  "AWSTemplateFormatVersion": "2010-09-09",
  "Description": "cfn-stack conformance fixture v1",
  "Parameters": {
    "Image": {"Type": "String"},
    "Size": {"Type": "String", "Default": "small"}
  },
  "Resources": {
    "Queue": {"Type": "AWS::SQS::Queue"}
  },
  "Outputs": {
    "Version": {"Value": "1"},
    "ImageOut": {"Value": {"Ref": "Image"}}
  }
}"#;

/// The v2 template (JSON): v1 plus the output `Extra`.
pub const V2_TEMPLATE: &str = r#"{
  "AWSTemplateFormatVersion": "2010-09-09",
  "Description": "cfn-stack conformance fixture v2",
  "Parameters": {
    "Image": {"Type": "String"},
    "Size": {"Type": "String", "Default": "small"}
  },
  "Resources": {
    "Queue": {"Type": "AWS::SQS::Queue"}
  },
  "Outputs": {
    "Version": {"Value": "2"},
    "ImageOut": {"Value": {"Ref": "Image"}},
    "Extra": {"Value": "added"}
  }
}"#;

/// A freshly created fixture stack and its two template URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fixture {
    /// The stack name.
    pub stack: String,
    /// Where [`V1_TEMPLATE`] is.
    pub v1_url: String,
    /// Where [`V2_TEMPLATE`] is.
    pub v2_url: String,
}

/// Registers the fixture templates on `cfn` (once) and creates `stack`.
pub fn fake_fixture(cfn: &FakeCfn, stack: &str) -> Fixture {
    let v1_url = "https://conformance.s3.amazonaws.com/v1.json".to_string();
    let v2_url = "https://conformance.s3.amazonaws.com/v2.json".to_string();
    let base = FakeTemplate::new()
        .parameter("Image", None)
        .parameter("Size", Some("small"))
        .resource("Queue", "AWS::SQS::Queue");
    cfn.add_template(&v1_url, base.clone().output("Version", "1"));
    cfn.add_template(
        &v2_url,
        base.output("Version", "2").output("Extra", "added"),
    );
    cfn.create_stack(
        stack,
        &v1_url,
        &[("Image", "image-1"), ("Size", "small")],
        &[("team", "runner")],
    )
    .expect("fake fixture stack");
    Fixture {
        stack: stack.to_string(),
        v1_url,
        v2_url,
    }
}

fn request(
    fixture: &Fixture,
    template: TemplateSource,
    changes: &[(&str, &str)],
) -> StackUpdateRequest {
    let mut parameters: BTreeMap<String, ParameterValue> = ["Image", "Size"]
        .into_iter()
        .map(|k| (k.to_string(), ParameterValue::UsePrevious))
        .collect();
    for (k, v) in changes {
        parameters.insert(k.to_string(), ParameterValue::Set(v.to_string()));
    }
    StackUpdateRequest {
        stack: fixture.stack.clone(),
        template,
        parameters,
        capabilities: Vec::new(),
        no_echo: Default::default(),
        client_request_token: None,
        rollback_configuration: None,
    }
}

/// Describes until the stack is no longer `*_IN_PROGRESS` (at most 100
/// describes, no sleeping).
async fn settled(api: &dyn CfnApi, stack: &str) -> StackDescription {
    for _ in 0..100 {
        let description = api.describe_stack(stack).await.expect("describe");
        if !description.status.is_in_progress() {
            return description;
        }
    }
    panic!("stack {stack} did not settle within 100 describes");
}

fn strings(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `describe_stack` reads status, parameters, outputs and tags.
pub async fn describe_reads_everything(api: &dyn CfnApi, fixture: &Fixture) {
    let d = api.describe_stack(&fixture.stack).await.expect("describe");
    assert_eq!(d.name, fixture.stack);
    assert!(!d.id.is_empty(), "stack id");
    assert_eq!(d.status.as_str(), "CREATE_COMPLETE");
    assert_eq!(
        d.parameters,
        strings(&[("Image", "image-1"), ("Size", "small")])
    );
    assert_eq!(d.outputs.get("Version").map(String::as_str), Some("1"));
    assert_eq!(d.tags.get("team").map(String::as_str), Some("runner"));
}

/// An unknown stack is [`Error::StackNotFound`].
pub async fn unknown_stack_is_not_found(api: &dyn CfnApi, _fixture: &Fixture) {
    let err = api
        .describe_stack("cfn-stack-conformance-no-such-stack")
        .await
        .expect_err("no such stack");
    assert!(matches!(err, Error::StackNotFound { .. }), "{err}");
}

/// `template_summary` lists the declared parameters of the current
/// template and of a template URL.
pub async fn template_summary_lists_parameters(api: &dyn CfnApi, fixture: &Fixture) {
    for source in [
        TemplateSource::Existing,
        TemplateSource::Url(fixture.v2_url.clone()),
    ] {
        let summary = api
            .template_summary(&fixture.stack, &source)
            .await
            .expect("summary");
        let mut keys = summary.keys();
        keys.sort();
        assert_eq!(
            keys,
            vec!["Image".to_string(), "Size".to_string()],
            "{source:?}"
        );
        assert_eq!(
            summary
                .parameter("Size")
                .and_then(|p| p.default_value.clone()),
            Some("small".into())
        );
    }
}

/// A parameter sent as `UsePrevious` keeps its value while another changes.
pub async fn use_previous_value_keeps_the_others(api: &dyn CfnApi, fixture: &Fixture) {
    let started = api
        .update_stack(&request(
            fixture,
            TemplateSource::Existing,
            &[("Image", "image-2")],
        ))
        .await
        .expect("update");
    assert!(
        matches!(started, UpdateStart::Started { .. }),
        "{started:?}"
    );
    let d = settled(api, &fixture.stack).await;
    assert_eq!(d.status.as_str(), "UPDATE_COMPLETE");
    assert_eq!(
        d.parameters,
        strings(&[("Image", "image-2"), ("Size", "small")])
    );
}

/// An update that changes nothing is [`UpdateStart::NoChanges`], not an
/// error.
pub async fn identical_update_is_no_changes(api: &dyn CfnApi, fixture: &Fixture) {
    let started = api
        .update_stack(&request(fixture, TemplateSource::Existing, &[]))
        .await
        .expect("no-op update is not an error");
    assert_eq!(started, UpdateStart::NoChanges);
}

/// Replacing the template takes effect (a new output appears), keeping
/// every `UsePrevious` parameter.
pub async fn replace_template_adds_output(api: &dyn CfnApi, fixture: &Fixture) {
    let started = api
        .update_stack(&request(
            fixture,
            TemplateSource::Url(fixture.v2_url.clone()),
            &[],
        ))
        .await
        .expect("update");
    assert!(
        matches!(started, UpdateStart::Started { .. }),
        "{started:?}"
    );
    let d = settled(api, &fixture.stack).await;
    assert_eq!(d.outputs.get("Extra").map(String::as_str), Some("added"));
    assert_eq!(
        d.parameters,
        strings(&[("Image", "image-1"), ("Size", "small")])
    );
}

async fn created_change_set(api: &dyn CfnApi, fixture: &Fixture, name: &str) -> ChangeSetRef {
    match api
        .create_change_set(
            name,
            &request(fixture, TemplateSource::Existing, &[("Image", "image-3")]),
        )
        .await
        .expect("create change set")
    {
        ChangeSetStart::Created(change_set) => change_set,
        other => panic!("a real change must create a change set, got {other:?}"),
    }
}

/// A change set is created, described (complete, available) and executed.
pub async fn change_set_executes(api: &dyn CfnApi, fixture: &Fixture) {
    let change_set = created_change_set(api, fixture, "conformance-execute").await;
    let mut description = api
        .describe_change_set(&change_set)
        .await
        .expect("describe");
    for _ in 0..100 {
        if !description.is_pending() {
            break;
        }
        description = api
            .describe_change_set(&change_set)
            .await
            .expect("describe");
    }
    assert_eq!(description.status, "CREATE_COMPLETE");
    assert_eq!(description.execution_status.as_deref(), Some("AVAILABLE"));
    assert_eq!(description.name, "conformance-execute");
    api.execute_change_set(&change_set, Some("cfn-stack-conformance-1"))
        .await
        .expect("execute");
    let d = settled(api, &fixture.stack).await;
    assert_eq!(d.status.as_str(), "UPDATE_COMPLETE");
    assert_eq!(
        d.parameters.get("Image").map(String::as_str),
        Some("image-3")
    );
    assert_eq!(d.parameters.get("Size").map(String::as_str), Some("small"));
}

/// A change set that changes nothing is reported as such: either at
/// creation ([`ChangeSetStart::NoChanges`]) or as a `FAILED` change set
/// that "didn't contain changes".
pub async fn empty_change_set_is_no_changes(api: &dyn CfnApi, fixture: &Fixture) {
    match api
        .create_change_set(
            "conformance-empty",
            &request(fixture, TemplateSource::Existing, &[]),
        )
        .await
        .expect("create change set")
    {
        ChangeSetStart::NoChanges { reason } => {
            assert!(crate::means_no_changes(&reason), "{reason}")
        }
        ChangeSetStart::Created(change_set) => {
            let description = api
                .describe_change_set(&change_set)
                .await
                .expect("describe");
            assert!(description.failed_without_changes(), "{description:?}");
        }
    }
}

/// A deleted change set can no longer be described.
pub async fn deleted_change_set_is_gone(api: &dyn CfnApi, fixture: &Fixture) {
    let change_set = created_change_set(api, fixture, "conformance-delete").await;
    api.delete_change_set(&change_set).await.expect("delete");
    match api.describe_change_set(&change_set).await {
        Err(Error::ChangeSetNotFound { .. }) => {}
        Err(Error::Backend {
            class: ErrorClass::Permanent,
            ..
        }) => {}
        other => panic!("deleted change set still described: {other:?}"),
    }
}

/// Events come newest first; `after_event_id` returns only newer events;
/// `limit` caps the count.
pub async fn events_are_newest_first_and_resumable(api: &dyn CfnApi, fixture: &Fixture) {
    let before = api
        .stack_events(&fixture.stack, None, None)
        .await
        .expect("events");
    assert!(!before.is_empty(), "a created stack has events");
    let newest = before[0].clone();
    assert_eq!(newest.status, "CREATE_COMPLETE", "{before:?}");
    let one = api
        .stack_events(&fixture.stack, None, Some(1))
        .await
        .expect("events");
    assert_eq!(one, vec![newest.clone()]);
    assert!(
        api.stack_events(&fixture.stack, Some(&newest.event_id), None)
            .await
            .expect("events")
            .is_empty()
    );
    api.update_stack(&request(
        fixture,
        TemplateSource::Existing,
        &[("Image", "image-4")],
    ))
    .await
    .expect("update");
    settled(api, &fixture.stack).await;
    let new = api
        .stack_events(&fixture.stack, Some(&newest.event_id), None)
        .await
        .expect("events");
    assert!(!new.is_empty(), "the update produced events");
    assert_eq!(new[0].status, "UPDATE_COMPLETE", "{new:?}");
    assert!(
        new.iter()
            .all(|e| before.iter().all(|b| b.event_id != e.event_id))
    );
}

/// Runs every behaviour, each on a fresh fixture from `fresh`.
pub async fn run_all<F, Fut>(api: &dyn CfnApi, mut fresh: F)
where
    F: FnMut(&'static str) -> Fut,
    Fut: Future<Output = Fixture>,
{
    describe_reads_everything(api, &fresh("describe").await).await;
    unknown_stack_is_not_found(api, &fresh("unknown").await).await;
    template_summary_lists_parameters(api, &fresh("summary").await).await;
    use_previous_value_keeps_the_others(api, &fresh("use-previous").await).await;
    identical_update_is_no_changes(api, &fresh("no-changes").await).await;
    replace_template_adds_output(api, &fresh("replace").await).await;
    change_set_executes(api, &fresh("change-set").await).await;
    empty_change_set_is_no_changes(api, &fresh("empty-change-set").await).await;
    deleted_change_set_is_gone(api, &fresh("delete-change-set").await).await;
    events_are_newest_first_and_resumable(api, &fresh("events").await).await;
}
