//! `FakeCfn`: an in-memory CloudFormation that can also fail and roll back.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::{Arc, Mutex, MutexGuard},
};

use async_trait::async_trait;

use crate::{
    CfnApi, ChangeSetDescription, ChangeSetRef, ChangeSetStart, DeclaredParameter, Error,
    ErrorClass, ParameterValue, ResourceChange, ResourceChangeDetail, RollbackConfiguration,
    StackDescription, StackEvent, StackStatus, StackUpdateRequest, TemplateSource, TemplateSummary,
    UpdateStart,
};

/// A template known to [`FakeCfn`], registered under its URL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FakeTemplate {
    /// Declared parameters, in order.
    pub parameters: Vec<DeclaredParameter>,
    /// Outputs (static values) the stack gets with this template.
    pub outputs: BTreeMap<String, String>,
    /// Resources: logical id → type.
    pub resources: BTreeMap<String, String>,
    /// Capabilities the template needs besides `CAPABILITY_IAM`, which any
    /// `AWS::IAM::*` resource implies (as `GetTemplateSummary` reports).
    pub capabilities: Vec<String>,
    /// Declared transforms (they imply `CAPABILITY_AUTO_EXPAND`).
    pub transforms: Vec<String>,
    /// Nested stacks (`AWS::CloudFormation::Stack` resources): logical id →
    /// the nested stack's template.
    pub nested_stacks: BTreeMap<String, FakeTemplate>,
    /// What a change set moving to this template reports for a `Modify` of
    /// a resource: logical id → its changed attributes.
    pub change_details: BTreeMap<String, Vec<ResourceChangeDetail>>,
    /// `DeletionPolicy` of resources (logical id → `Delete`, `Retain`,
    /// `Snapshot`); unset is `Delete`.
    pub deletion_policies: BTreeMap<String, String>,
}

impl FakeTemplate {
    /// An empty template.
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares a parameter, with an optional default.
    pub fn parameter(mut self, key: &str, default: Option<&str>) -> Self {
        self.parameters.push(DeclaredParameter {
            key: key.into(),
            default_value: default.map(Into::into),
            no_echo: false,
            parameter_type: None,
        });
        self
    }

    /// Declares a parameter of type `AWS::SSM::Parameter::Value<String>`
    /// (its value names an SSM parameter, see [`FakeCfn::set_ssm_parameter`]),
    /// with an optional default name.
    pub fn ssm_parameter(mut self, key: &str, default: Option<&str>) -> Self {
        self.parameters.push(DeclaredParameter {
            key: key.into(),
            default_value: default.map(Into::into),
            no_echo: false,
            parameter_type: Some("AWS::SSM::Parameter::Value<String>".into()),
        });
        self
    }

    /// Declares a `NoEcho` parameter, with an optional default:
    /// `DescribeStacks` reports its value as [`NO_ECHO_MASK`](crate::NO_ECHO_MASK).
    pub fn no_echo_parameter(mut self, key: &str, default: Option<&str>) -> Self {
        self.parameters.push(DeclaredParameter {
            key: key.into(),
            default_value: default.map(Into::into),
            no_echo: true,
            parameter_type: None,
        });
        self
    }

    /// Adds an output.
    pub fn output(mut self, key: &str, value: &str) -> Self {
        self.outputs.insert(key.into(), value.into());
        self
    }

    /// Adds a resource.
    pub fn resource(mut self, logical_id: &str, resource_type: &str) -> Self {
        self.resources
            .insert(logical_id.into(), resource_type.into());
        self
    }

    /// Declares that the template needs `capability` (e.g.
    /// `CAPABILITY_NAMED_IAM` for named IAM resources).
    pub fn capability(mut self, capability: &str) -> Self {
        self.capabilities.push(capability.into());
        self
    }

    /// Adds a nested stack `logical_id` (an `AWS::CloudFormation::Stack`
    /// resource) built from `template`. A change set from a template whose
    /// nested stack has another template reports the nested stack as
    /// `Modify` with a nested change set of its own (as CloudFormation does
    /// with `IncludeNestedStacks`), holding the nested template's changes.
    ///
    /// ```
    /// use cfn_stack::{
    ///     CfnApi, ChangeSetRef, ChangeSetStart, FakeCfn, FakeTemplate, ParameterValue,
    ///     StackUpdateRequest, TemplateSource,
    /// };
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let cfn = FakeCfn::new();
    /// let (v1, v2) = ("https://t.s3.amazonaws.com/v1.json", "https://t.s3.amazonaws.com/v2.json");
    /// let network = FakeTemplate::new().resource("SecurityGroup", "AWS::EC2::SecurityGroup");
    /// cfn.add_template(v1, FakeTemplate::new().nested_stack("RunnerNetwork", network.clone()));
    /// cfn.add_template(v2, FakeTemplate::new().nested_stack(
    ///     "RunnerNetwork",
    ///     network.resource("Endpoint", "AWS::EC2::VPCEndpoint"),
    /// ));
    /// cfn.create_stack("runner", v1, &[], &[]).unwrap();
    /// let request = StackUpdateRequest {
    ///     stack: "runner".into(),
    ///     template: TemplateSource::Url(v2.into()),
    ///     parameters: Default::default(),
    ///     capabilities: vec![],
    ///     no_echo: Default::default(),
    ///     client_request_token: None,
    ///     rollback_configuration: None,
    /// };
    /// let ChangeSetStart::Created(root) = cfn.create_change_set("cs1", &request).await.unwrap()
    /// else { unreachable!() };
    /// let changes = cfn.describe_change_set(&root).await.unwrap().changes;
    /// assert_eq!(changes[0].logical_id, "RunnerNetwork");
    /// let nested = ChangeSetRef {
    ///     stack: changes[0].physical_id.clone().unwrap(),
    ///     change_set: changes[0].nested_change_set.clone().unwrap(),
    /// };
    /// let inner = cfn.describe_change_set(&nested).await.unwrap().changes;
    /// assert!(inner.iter().any(|c| c.action == "Add" && c.logical_id == "Endpoint"));
    /// # });
    /// ```
    pub fn nested_stack(mut self, logical_id: &str, template: FakeTemplate) -> Self {
        self.resources
            .insert(logical_id.into(), "AWS::CloudFormation::Stack".into());
        self.nested_stacks.insert(logical_id.into(), template);
        self
    }

    /// A change set moving to this template reports `detail` for a
    /// `Modify` of `logical_id`: its `Replacement` is `True` when a detail
    /// requires recreation `Always`, `Conditional` for `Conditionally`
    /// (else `False`), with policy action `ReplaceAnd<DeletionPolicy>`
    /// when replaced, and the details' attributes as its scope.
    pub fn change_detail(mut self, logical_id: &str, detail: ResourceChangeDetail) -> Self {
        self.change_details
            .entry(logical_id.into())
            .or_default()
            .push(detail);
        self
    }

    /// Sets the `DeletionPolicy` of `logical_id` (`Delete`, `Retain`,
    /// `Snapshot`): the policy action of its removal or replacement.
    pub fn deletion_policy(mut self, logical_id: &str, policy: &str) -> Self {
        self.deletion_policies
            .insert(logical_id.into(), policy.into());
        self
    }

    /// Declares a transform, e.g. `AWS::Serverless-2016-10-31`.
    pub fn transform(mut self, transform: &str) -> Self {
        self.transforms.push(transform.into());
        self
    }

    /// What `GetTemplateSummary` reports for this template.
    fn summary(&self) -> TemplateSummary {
        let mut capabilities: Vec<String> = self.capabilities.clone();
        let named = capabilities.iter().any(|c| c == "CAPABILITY_NAMED_IAM");
        if !named
            && self.resources.values().any(|t| t.starts_with("AWS::IAM::"))
            && !capabilities.iter().any(|c| c == "CAPABILITY_IAM")
        {
            capabilities.push("CAPABILITY_IAM".into());
        }
        let iam: Vec<&str> = self
            .resources
            .values()
            .filter(|t| t.starts_with("AWS::IAM::"))
            .map(String::as_str)
            .collect();
        TemplateSummary {
            parameters: self.parameters.clone(),
            capabilities_reason: (!iam.is_empty()).then(|| {
                format!(
                    "The following resource(s) require capabilities: [{}]",
                    iam.join(", ")
                )
            }),
            capabilities,
            declared_transforms: self.transforms.clone(),
        }
    }

    /// Refuses `request` when it lacks a capability this template needs
    /// (`InsufficientCapabilitiesException`); `CAPABILITY_NAMED_IAM` covers
    /// `CAPABILITY_IAM`.
    fn check_capabilities(
        &self,
        operation: &'static str,
        request: &StackUpdateRequest,
    ) -> Result<(), Error> {
        let sent = &request.capabilities;
        for needed in self.summary().required_capabilities() {
            let ok = sent.contains(&needed)
                || (needed == "CAPABILITY_IAM" && sent.iter().any(|c| c == "CAPABILITY_NAMED_IAM"));
            if !ok {
                return Err(Error::backend(
                    operation,
                    &request.stack,
                    ErrorClass::Permanent,
                    format!(
                        "InsufficientCapabilitiesException: Requires capabilities : [{needed}]"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// How the next update of a stack ends (see [`FakeCfn::fail_next_update`]).
/// Real CloudFormation does this; moto cannot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FakeFailure {
    /// The listed resources fail (`(logical id, reason)`), CloudFormation
    /// rolls back and the stack ends in `UPDATE_ROLLBACK_COMPLETE` with its
    /// old template and parameters.
    RollBack {
        /// The failing resources and their reasons.
        failed_resources: Vec<(String, String)>,
    },
    /// The listed resources fail and the stack ends in `final_status`
    /// (e.g. `UPDATE_ROLLBACK_FAILED`) with `status_reason`.
    Fail {
        /// The final stack status.
        final_status: String,
        /// The stack's status reason.
        status_reason: String,
        /// The failing resources and their reasons.
        failed_resources: Vec<(String, String)>,
    },
}

#[derive(Debug, Clone)]
struct FakeStack {
    id: String,
    name: String,
    template_url: String,
    status: StackStatus,
    status_reason: Option<String>,
    parameters: BTreeMap<String, String>,
    outputs: BTreeMap<String, String>,
    tags: BTreeMap<String, String>,
    /// Oldest first.
    events: Vec<StackEvent>,
    pending: Option<Pending>,
    /// Describes left in `UPDATE_COMPLETE_CLEANUP_IN_PROGRESS`.
    cleanup_left: u32,
    /// The `ClientRequestToken` of the last update.
    token: Option<String>,
    /// SSM parameter values resolved at the last update, by key.
    resolved: BTreeMap<String, String>,
    /// The stack's rollback triggers.
    rollback: Option<RollbackConfiguration>,
    /// After an update started: describes left that still show the status
    /// (and reason) from before it.
    lag: Option<(u32, StackStatus, Option<String>)>,
}

/// An update still "running": completed after `polls_left` describes.
#[derive(Debug, Clone)]
struct Pending {
    polls_left: u32,
    final_status: StackStatus,
    status_reason: Option<String>,
    final_events: Vec<StackEvent>,
    new_state: Option<NewState>,
    /// Describes the stack then stays in `UPDATE_COMPLETE_CLEANUP_IN_PROGRESS`.
    cleanup_polls: u32,
}

/// What a successful update leaves: template URL, parameters, outputs.
/// SSM parameters are resolved when the update starts (`resolved`).
type NewState = (
    String,
    BTreeMap<String, String>,
    BTreeMap<String, String>,
    BTreeMap<String, String>,
);

#[derive(Debug, Clone)]
struct FakeChangeSet {
    id: String,
    name: String,
    stack: String,
    request: StackUpdateRequest,
    status: String,
    execution_status: String,
    status_reason: Option<String>,
    changes: Vec<ResourceChange>,
    /// The body CloudFormation read when the change set was created.
    template_body: Option<String>,
    /// The `ClientRequestToken` it was executed with.
    executed_with: Option<String>,
    /// For the change set of a nested stack: the id of the root change
    /// set (deleted with it).
    root: Option<String>,
    /// Describes left in `CREATE_IN_PROGRESS`.
    pending_polls: u32,
    /// SSM parameter values resolved when it was created.
    resolved: BTreeMap<String, String>,
}

#[derive(Debug, Default)]
struct State {
    templates: BTreeMap<String, FakeTemplate>,
    /// The body served at a template URL (see [`FakeCfn::add_template_body`]).
    bodies: BTreeMap<String, String>,
    stacks: BTreeMap<String, FakeStack>,
    change_sets: Vec<FakeChangeSet>,
    failures: BTreeMap<String, VecDeque<FakeFailure>>,
    call_errors: VecDeque<(&'static str, ErrorClass)>,
    lost_responses: VecDeque<&'static str>,
    update_polls: u32,
    cleanup_polls: u32,
    change_set_polls: u32,
    execute_lag: u32,
    change_set_failures: VecDeque<String>,
    /// SSM parameters by name.
    ssm: BTreeMap<String, String>,
    seq: u64,
}

/// The root change set whose nested change sets [`State::diff_templates`]
/// creates.
struct NestedContext<'a> {
    root_id: &'a str,
    name: &'a str,
    request: &'a StackUpdateRequest,
}

impl State {
    /// The resource changes from `old` to `new` of stack `stack`; for each
    /// nested stack whose template changed, a `Modify` carrying the id of a
    /// nested change set (created here) with the nested template's changes.
    fn diff_templates(
        &mut self,
        root: &NestedContext<'_>,
        stack: &str,
        old: &FakeTemplate,
        new: &FakeTemplate,
        depth: usize,
    ) -> Vec<ResourceChange> {
        let physical = |logical: &str| format!("{logical}-physical");
        let mut changes = Vec::new();
        for (logical, kind) in &new.resources {
            if !old.resources.contains_key(logical) {
                changes.push(ResourceChange {
                    action: "Add".into(),
                    logical_id: logical.clone(),
                    resource_type: kind.clone(),
                    ..ResourceChange::default()
                });
                continue;
            }
            if let (Some(old_nested), Some(new_nested)) = (
                old.nested_stacks.get(logical),
                new.nested_stacks.get(logical),
            ) {
                if old_nested == new_nested {
                    continue;
                }
                let nested_stack = format!("{stack}-{logical}-NESTED");
                let nested_id = format!(
                    "arn:aws:cloudformation:us-east-1:000000000000:changeSet/{}-{logical}/{}",
                    root.name,
                    self.next("cs")
                );
                let nested_changes =
                    self.diff_templates(root, &nested_stack, old_nested, new_nested, depth + 1);
                self.change_sets.push(FakeChangeSet {
                    id: nested_id.clone(),
                    name: format!("{}-{logical}", root.name),
                    stack: nested_stack.clone(),
                    request: root.request.clone(),
                    status: "CREATE_COMPLETE".into(),
                    execution_status: "AVAILABLE".into(),
                    status_reason: None,
                    changes: nested_changes,
                    template_body: None,
                    executed_with: None,
                    root: Some(root.root_id.to_string()),
                    pending_polls: 0,
                    resolved: BTreeMap::new(),
                });
                changes.push(ResourceChange {
                    action: "Modify".into(),
                    logical_id: logical.clone(),
                    physical_id: Some(format!(
                        "arn:aws:cloudformation:us-east-1:000000000000:stack/{nested_stack}/{depth}"
                    )),
                    resource_type: kind.clone(),
                    replacement: Some("False".into()),
                    scope: vec!["Properties".into()],
                    nested_change_set: Some(nested_id),
                    ..ResourceChange::default()
                });
                continue;
            }
            let details = new.change_details.get(logical).cloned().unwrap_or_default();
            let recreation = |level: &str| {
                details
                    .iter()
                    .any(|d| d.requires_recreation.as_deref() == Some(level))
            };
            let replacement = if recreation("Always") {
                "True"
            } else if recreation("Conditionally") {
                "Conditional"
            } else {
                "False"
            };
            let policy = new
                .deletion_policies
                .get(logical)
                .map_or("Delete", String::as_str);
            let mut scope: Vec<String> = Vec::new();
            for attribute in details.iter().filter_map(|d| d.attribute.clone()) {
                if !scope.contains(&attribute) {
                    scope.push(attribute);
                }
            }
            changes.push(ResourceChange {
                action: "Modify".into(),
                logical_id: logical.clone(),
                physical_id: Some(physical(logical)),
                resource_type: kind.clone(),
                replacement: Some(replacement.into()),
                policy_action: (replacement != "False").then(|| format!("ReplaceAnd{policy}")),
                scope,
                details,
                nested_change_set: None,
            });
        }
        for (logical, kind) in &old.resources {
            if !new.resources.contains_key(logical) {
                let policy = old
                    .deletion_policies
                    .get(logical)
                    .map_or("Delete", String::as_str);
                changes.push(ResourceChange {
                    action: "Remove".into(),
                    logical_id: logical.clone(),
                    physical_id: Some(physical(logical)),
                    resource_type: kind.clone(),
                    policy_action: Some(policy.into()),
                    ..ResourceChange::default()
                });
            }
        }
        changes
    }

    /// The SSM values the SSM-typed parameters of `template` resolve to
    /// for `values` (an SSM parameter that does not exist is left out).
    fn ssm_resolved(
        &self,
        template: &FakeTemplate,
        values: &BTreeMap<String, String>,
    ) -> BTreeMap<String, String> {
        template
            .parameters
            .iter()
            .filter(|p| p.is_ssm())
            .filter_map(|p| {
                let name = values.get(&p.key)?;
                Some((p.key.clone(), self.ssm.get(name)?.clone()))
            })
            .collect()
    }

    fn next(&mut self, prefix: &str) -> String {
        self.seq += 1;
        format!("{prefix}-{:06}", self.seq)
    }

    fn stack_mut(&mut self, name_or_id: &str) -> Result<&mut FakeStack, Error> {
        self.stacks
            .values_mut()
            .find(|s| s.name == name_or_id || s.id == name_or_id)
            .ok_or_else(|| Error::StackNotFound {
                stack: name_or_id.to_string(),
            })
    }

    fn template(&self, url: &str, operation: &'static str) -> Result<&FakeTemplate, Error> {
        self.templates.get(url).ok_or_else(|| {
            Error::backend(
                operation,
                url,
                ErrorClass::Permanent,
                format!("ValidationError: TemplateURL must reference a valid S3 object: {url}"),
            )
        })
    }

    /// The registered URL a template source stands for: the stack's own
    /// template, the URL itself, or the URL whose body is the given body.
    fn template_key(
        &self,
        stack_url: Option<&str>,
        source: &TemplateSource,
        operation: &'static str,
    ) -> Result<String, Error> {
        match source {
            TemplateSource::Existing => stack_url.map(str::to_string).ok_or_else(|| {
                Error::backend(
                    operation,
                    "UsePreviousTemplate",
                    ErrorClass::Permanent,
                    "ValidationError: no stack to take the previous template from",
                )
            }),
            TemplateSource::Url(url) => Ok(url.clone()),
            TemplateSource::Body(body) => self
                .bodies
                .iter()
                .find(|(_, b)| *b == body)
                .map(|(url, _)| url.clone())
                .ok_or_else(|| {
                    Error::backend(
                        operation,
                        "TemplateBody",
                        ErrorClass::Permanent,
                        "ValidationError: Template format error: FakeCfn knows no template with \
                         this body (register it with add_template_body)",
                    )
                }),
        }
    }

    /// The body CloudFormation would read for `source`.
    fn body_of(&self, stack_url: Option<&str>, source: &TemplateSource) -> Option<String> {
        match source {
            TemplateSource::Body(body) => Some(body.clone()),
            _ => {
                let url = self.template_key(stack_url, source, "GetTemplate").ok()?;
                self.bodies.get(&url).cloned()
            }
        }
    }

    /// The call `operation` succeeded but its response is "lost": a
    /// transient error, as after a network failure.
    fn lost_response(&mut self, operation: &'static str, resource: &str) -> Result<(), Error> {
        if let Some(pos) = self.lost_responses.iter().position(|op| *op == operation) {
            self.lost_responses.remove(pos);
            return Err(Error::backend(
                operation,
                resource,
                ErrorClass::Transient,
                "injected lost response (FakeCfn::lose_next_response): the call took effect",
            ));
        }
        Ok(())
    }

    fn injected_error(&mut self, operation: &'static str, resource: &str) -> Result<(), Error> {
        if let Some(pos) = self.call_errors.iter().position(|(op, _)| *op == operation) {
            let (_, class) = self.call_errors.remove(pos).expect("position exists");
            return Err(Error::backend(
                operation,
                resource,
                class,
                "injected failure (FakeCfn::fail_next_call)",
            ));
        }
        Ok(())
    }

    /// Resolves the parameters of `request` as CloudFormation does.
    fn resolve(
        &self,
        operation: &'static str,
        request: &StackUpdateRequest,
    ) -> Result<(String, BTreeMap<String, String>), Error> {
        let stack = self
            .stacks
            .values()
            .find(|s| s.name == request.stack || s.id == request.stack)
            .ok_or_else(|| Error::StackNotFound {
                stack: request.stack.clone(),
            })?;
        let url = self.template_key(Some(&stack.template_url), &request.template, operation)?;
        let template = self.template(&url, operation)?;
        let invalid = |message: String| {
            Error::backend(operation, &request.stack, ErrorClass::Permanent, message)
        };
        if let Some(key) = request
            .parameters
            .keys()
            .find(|k| !template.parameters.iter().any(|p| &p.key == *k))
        {
            return Err(invalid(format!(
                "ValidationError: Parameters: [{key}] do not exist in the template"
            )));
        }
        let mut values = BTreeMap::new();
        for declared in &template.parameters {
            let value = match request.parameters.get(&declared.key) {
                Some(ParameterValue::Set(v)) => v.clone(),
                Some(ParameterValue::UsePrevious) => stack
                    .parameters
                    .get(&declared.key)
                    .cloned()
                    .ok_or_else(|| {
                    invalid(format!(
                        "ValidationError: Invalid input for parameter key {}. Cannot specify \
                             usePreviousValue for a parameter the stack does not have",
                        declared.key
                    ))
                })?,
                None => declared.default_value.clone().ok_or_else(|| {
                    invalid(format!(
                        "ValidationError: Parameters: [{}] must have values",
                        declared.key
                    ))
                })?,
            };
            values.insert(declared.key.clone(), value);
        }
        Ok((url, values))
    }

    fn event(
        &mut self,
        logical: &str,
        kind: &str,
        status: &str,
        reason: Option<String>,
    ) -> StackEvent {
        StackEvent {
            event_id: self.next("event"),
            timestamp: None,
            logical_id: logical.to_string(),
            resource_type: kind.to_string(),
            status: status.to_string(),
            reason,
            client_request_token: None,
        }
    }

    /// Starts an update of `stack` to `url` with `values` (already
    /// resolved), honouring injected failures and the update duration.
    fn start_update(
        &mut self,
        stack_key: &str,
        url: String,
        values: BTreeMap<String, String>,
        token: Option<String>,
    ) -> Result<(), Error> {
        const STACK: &str = "AWS::CloudFormation::Stack";
        let new_template = self.template(&url, "UpdateStack")?.clone();
        let name = self.stack_mut(stack_key)?.name.clone();
        let polls = self.update_polls;
        let cleanup_polls = self.cleanup_polls;
        let failure = self
            .failures
            .get_mut(&name)
            .and_then(|queue| queue.pop_front());
        let mut first_events = vec![self.event(
            &name,
            STACK,
            "UPDATE_IN_PROGRESS",
            Some("User Initiated".into()),
        )];
        for (logical, kind) in &new_template.resources {
            first_events.push(self.event(logical, kind, "UPDATE_IN_PROGRESS", None));
        }
        let kind_of = |logical: &str| {
            new_template
                .resources
                .get(logical)
                .cloned()
                .unwrap_or_else(|| "AWS::CloudFormation::CustomResource".into())
        };
        let mut final_events = Vec::new();
        let (final_status, status_reason, new_state) = match failure {
            None => {
                for (logical, kind) in &new_template.resources {
                    final_events.push(self.event(logical, kind, "UPDATE_COMPLETE", None));
                }
                let status = if cleanup_polls > 0 {
                    "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"
                } else {
                    "UPDATE_COMPLETE"
                };
                final_events.push(self.event(&name, STACK, status, None));
                let resolved = self.ssm_resolved(&new_template, &values);
                (
                    StackStatus::new(status),
                    None,
                    Some((url, values, new_template.outputs.clone(), resolved)),
                )
            }
            Some(FakeFailure::RollBack { failed_resources }) => {
                for (logical, reason) in &failed_resources {
                    let kind = kind_of(logical);
                    final_events.push(self.event(
                        logical,
                        &kind,
                        "UPDATE_FAILED",
                        Some(reason.clone()),
                    ));
                }
                // CloudFormation stops the other resources being updated.
                for (logical, kind) in &new_template.resources {
                    if !failed_resources.iter().any(|(l, _)| l == logical) {
                        final_events.push(self.event(
                            logical,
                            kind,
                            "UPDATE_FAILED",
                            Some("Resource update cancelled".into()),
                        ));
                    }
                }
                let names: Vec<&str> = failed_resources.iter().map(|(l, _)| l.as_str()).collect();
                let why = format!(
                    "The following resource(s) failed to update: [{}].",
                    names.join(", ")
                );
                final_events.push(self.event(
                    &name,
                    STACK,
                    "UPDATE_ROLLBACK_IN_PROGRESS",
                    Some(why),
                ));
                final_events.push(self.event(&name, STACK, "UPDATE_ROLLBACK_COMPLETE", None));
                (StackStatus::new("UPDATE_ROLLBACK_COMPLETE"), None, None)
            }
            Some(FakeFailure::Fail {
                final_status,
                status_reason,
                failed_resources,
            }) => {
                for (logical, reason) in &failed_resources {
                    let kind = kind_of(logical);
                    final_events.push(self.event(
                        logical,
                        &kind,
                        "UPDATE_FAILED",
                        Some(reason.clone()),
                    ));
                }
                final_events.push(self.event(
                    &name,
                    STACK,
                    &final_status,
                    Some(status_reason.clone()),
                ));
                (StackStatus::new(final_status), Some(status_reason), None)
            }
        };
        for event in first_events.iter_mut().chain(final_events.iter_mut()) {
            event.client_request_token = token.clone();
        }
        let lag = self.execute_lag;
        let stack = self.stack_mut(&name)?;
        if lag > 0 {
            stack.lag = Some((lag, stack.status.clone(), stack.status_reason.clone()));
        }
        stack.token = token;
        stack.events.extend(first_events);
        stack.status = StackStatus::new("UPDATE_IN_PROGRESS");
        stack.status_reason = Some("User Initiated".into());
        stack.pending = Some(Pending {
            polls_left: polls,
            final_status,
            status_reason,
            final_events,
            new_state,
            cleanup_polls,
        });
        if polls == 0 {
            complete(stack);
        }
        Ok(())
    }
}

/// Finishes a pending update: final events, status, new state.
fn complete(stack: &mut FakeStack) {
    let Some(pending) = stack.pending.take() else {
        return;
    };
    stack.events.extend(pending.final_events);
    stack.status = pending.final_status;
    stack.status_reason = pending.status_reason;
    if stack.status.as_str() == "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS" {
        stack.cleanup_left = pending.cleanup_polls;
    }
    if let Some((url, values, outputs, resolved)) = pending.new_state {
        stack.template_url = url;
        stack.parameters = values;
        stack.outputs = outputs;
        stack.resolved = resolved;
    }
}

/// An in-memory CloudFormation for tests and demos. Clones share state.
///
/// Register templates with [`add_template`](Self::add_template), create
/// stacks with [`create_stack`](Self::create_stack); updates complete
/// immediately unless [`set_update_polls`](Self::set_update_polls) makes
/// them run for a few polls. Unlike moto, it can fail an update and roll it
/// back ([`fail_next_update`](Self::fail_next_update)), hold a stack in any
/// status ([`set_status`](Self::set_status)) and fail single calls
/// ([`fail_next_call`](Self::fail_next_call)).
///
/// Its `Debug` output names the stacks and counts the rest: it never shows
/// a parameter value (the fake holds `NoEcho` values unmasked).
#[derive(Clone, Default)]
pub struct FakeCfn {
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for FakeCfn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state();
        f.debug_struct("FakeCfn")
            .field("stacks", &state.stacks.keys().collect::<Vec<_>>())
            .field("templates", &state.templates.len())
            .field("change_sets", &state.change_sets.len())
            .finish_non_exhaustive()
    }
}

impl FakeCfn {
    /// An empty fake.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers `template` under `url`.
    pub fn add_template(&self, url: &str, template: FakeTemplate) {
        self.state().templates.insert(url.to_string(), template);
    }

    /// Registers `template` under `url` with the body served there: a
    /// `TemplateBody` equal to `body` stands for this template, and
    /// `GetTemplate` of a change set created from `url` returns the body
    /// served at creation time. Calling it again with another body models a
    /// template republished under the same (mutable) URL.
    ///
    /// ```
    /// use cfn_stack::{CfnApi, FakeCfn, FakeTemplate, NO_ECHO_MASK, TemplateSource};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let cfn = FakeCfn::new();
    /// let url = "https://runner.s3.amazonaws.com/runner.json";
    /// let template = FakeTemplate::new().no_echo_parameter("Token", None);
    /// cfn.add_template_body(url, r#"{"Resources": {}}"#, template);
    /// cfn.create_stack("runner", url, &[("Token", "s3cr3t")], &[]).unwrap();
    /// // DescribeStacks masks NoEcho values; the stack keeps the real one.
    /// let described = cfn.describe_stack("runner").await.unwrap();
    /// assert_eq!(described.parameters["Token"], NO_ECHO_MASK);
    /// assert_eq!(cfn.stored_parameter("runner", "Token").as_deref(), Some("s3cr3t"));
    /// // The body stands for the template registered with it.
    /// let body = TemplateSource::Body(r#"{"Resources": {}}"#.into());
    /// let summary = cfn.template_summary("runner", &body).await.unwrap();
    /// assert!(summary.parameter("Token").unwrap().no_echo);
    /// # });
    /// ```
    pub fn add_template_body(&self, url: &str, body: &str, template: FakeTemplate) {
        let mut state = self.state();
        state.templates.insert(url.to_string(), template);
        state.bodies.insert(url.to_string(), body.to_string());
    }

    /// Creates a stack from a registered template (complete at once).
    pub fn create_stack(
        &self,
        name: &str,
        template_url: &str,
        parameters: &[(&str, &str)],
        tags: &[(&str, &str)],
    ) -> Result<String, Error> {
        let mut state = self.state();
        if state.stacks.contains_key(name) {
            return Err(Error::backend(
                "CreateStack",
                name,
                ErrorClass::Permanent,
                format!("AlreadyExistsException: Stack [{name}] already exists"),
            ));
        }
        let template = state.template(template_url, "CreateStack")?.clone();
        let mut values = BTreeMap::new();
        for declared in &template.parameters {
            let value = parameters
                .iter()
                .find(|(k, _)| *k == declared.key)
                .map(|(_, v)| v.to_string())
                .or(declared.default_value.clone())
                .ok_or_else(|| {
                    Error::backend(
                        "CreateStack",
                        name,
                        ErrorClass::Permanent,
                        format!(
                            "ValidationError: Parameters: [{}] must have values",
                            declared.key
                        ),
                    )
                })?;
            values.insert(declared.key.clone(), value);
        }
        let resolved = state.ssm_resolved(&template, &values);
        let id = format!(
            "arn:aws:cloudformation:us-east-1:000000000000:stack/{name}/{}",
            state.next("id")
        );
        let e1 = state.next("event");
        let e2 = state.next("event");
        let stack_event = |event_id: String, status: &str| StackEvent {
            event_id,
            timestamp: None,
            logical_id: name.to_string(),
            resource_type: "AWS::CloudFormation::Stack".into(),
            status: status.into(),
            reason: None,
            client_request_token: None,
        };
        state.stacks.insert(
            name.to_string(),
            FakeStack {
                id: id.clone(),
                name: name.to_string(),
                template_url: template_url.to_string(),
                status: StackStatus::new("CREATE_COMPLETE"),
                status_reason: None,
                parameters: values,
                outputs: template.outputs.clone(),
                tags: tags
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                events: vec![
                    stack_event(e1, "CREATE_IN_PROGRESS"),
                    stack_event(e2, "CREATE_COMPLETE"),
                ],
                pending: None,
                cleanup_left: 0,
                token: None,
                resolved,
                rollback: None,
                lag: None,
            },
        );
        Ok(id)
    }

    /// The next update (direct or change set) of `stack` ends with `failure`.
    pub fn fail_next_update(&self, stack: &str, failure: FakeFailure) {
        self.state()
            .failures
            .entry(stack.to_string())
            .or_default()
            .push_back(failure);
    }

    /// The next call of `operation` (e.g. `"UpdateStack"`, `"DescribeStacks"`)
    /// fails with a backend error of `class`.
    pub fn fail_next_call(&self, operation: &'static str, class: ErrorClass) {
        self.state().call_errors.push_back((operation, class));
    }

    /// Updates stay `UPDATE_IN_PROGRESS` for `polls` describes before they
    /// settle (default 0: settled at once).
    pub fn set_update_polls(&self, polls: u32) {
        self.state().update_polls = polls;
    }

    /// The rollback triggers the stack has (set by the last update that
    /// sent a [`RollbackConfiguration`]; an update without one keeps them).
    pub fn rollback_configuration(&self, stack: &str) -> Option<RollbackConfiguration> {
        self.state()
            .stack_mut(stack)
            .ok()
            .and_then(|s| s.rollback.clone())
    }

    /// After an update starts (`UpdateStack`, `ExecuteChangeSet`),
    /// `DescribeStacks` still reports the stack's previous status for
    /// `polls` describes, as CloudFormation can; the update's first events
    /// are there at once (default 0: no lag).
    pub fn set_execute_lag(&self, polls: u32) {
        self.state().execute_lag = polls;
    }

    /// Sets the SSM parameter `name` (what SSM-typed stack parameters
    /// naming it resolve to at the next update or change set).
    pub fn set_ssm_parameter(&self, name: &str, value: &str) {
        self.state().ssm.insert(name.into(), value.into());
    }

    /// New change sets stay `CREATE_IN_PROGRESS` for `polls` describes
    /// before they settle (default 0: settled at once).
    pub fn set_change_set_polls(&self, polls: u32) {
        self.state().change_set_polls = polls;
    }

    /// The next change set created ends `FAILED` with `reason` (e.g. a
    /// template validation error found while creating it).
    pub fn fail_next_change_set(&self, reason: &str) {
        self.state()
            .change_set_failures
            .push_back(reason.to_string());
    }

    /// Appends `event` to the stack's events (e.g. one of another
    /// operation, with its own token); its `event_id` is replaced by a new
    /// one.
    pub fn record_event(&self, stack: &str, mut event: StackEvent) -> Result<(), Error> {
        let mut state = self.state();
        event.event_id = state.next("event");
        state.stack_mut(stack)?.events.push(event);
        Ok(())
    }

    /// The next call of `operation` (`"UpdateStack"` or
    /// `"ExecuteChangeSet"`) takes effect but answers with a transient
    /// error, as when the response is lost on the network.
    pub fn lose_next_response(&self, operation: &'static str) {
        self.state().lost_responses.push_back(operation);
    }

    /// Successful updates then stay `UPDATE_COMPLETE_CLEANUP_IN_PROGRESS`
    /// for `polls` more describes before `UPDATE_COMPLETE` (default 0: no
    /// cleanup phase).
    pub fn set_cleanup_polls(&self, polls: u32) {
        self.state().cleanup_polls = polls;
    }

    /// Forces a stack's status (e.g. `UPDATE_IN_PROGRESS` to test busy
    /// stacks).
    pub fn set_status(&self, stack: &str, status: &str) -> Result<(), Error> {
        self.state().stack_mut(stack)?.status = StackStatus::new(status);
        Ok(())
    }

    /// The value CloudFormation holds for a parameter, unmasked (for tests
    /// that check a `NoEcho` secret was kept or replaced).
    pub fn stored_parameter(&self, stack: &str, key: &str) -> Option<String> {
        self.state()
            .stack_mut(stack)
            .ok()
            .and_then(|s| s.parameters.get(key).cloned())
    }

    /// How many change sets are stored, for every stack, nested stacks'
    /// change sets included.
    pub fn change_set_count(&self) -> usize {
        self.state().change_sets.len()
    }

    /// The names of the change sets currently stored for `stack`.
    pub fn change_set_names(&self, stack: &str) -> Vec<String> {
        self.state()
            .change_sets
            .iter()
            .filter(|c| c.stack == stack)
            .map(|c| c.name.clone())
            .collect()
    }

    fn find_change_set<'a>(
        state: &'a mut State,
        change_set: &ChangeSetRef,
    ) -> Result<&'a mut FakeChangeSet, Error> {
        state
            .change_sets
            .iter_mut()
            .find(|c| {
                (c.id == change_set.change_set || c.name == change_set.change_set)
                    && (c.stack == change_set.stack || change_set.change_set.starts_with("arn:"))
            })
            .ok_or_else(|| Error::ChangeSetNotFound {
                stack: change_set.stack.clone(),
                change_set: change_set.change_set.clone(),
            })
    }
}

/// What `DescribeStacks` shows: `NoEcho` values of the stack's template
/// read as [`NO_ECHO_MASK`](crate::NO_ECHO_MASK).
fn describe(stack: &FakeStack, template: Option<&FakeTemplate>) -> StackDescription {
    let hidden = |key: &str| {
        template.is_some_and(|t| t.parameters.iter().any(|p| p.key == key && p.no_echo))
    };
    StackDescription {
        name: stack.name.clone(),
        id: stack.id.clone(),
        status: stack.status.clone(),
        status_reason: stack.status_reason.clone(),
        parameters: stack
            .parameters
            .iter()
            .map(|(k, v)| {
                let shown = if hidden(k) {
                    crate::NO_ECHO_MASK.to_string()
                } else {
                    v.clone()
                };
                (k.clone(), shown)
            })
            .collect(),
        resolved_parameters: stack.resolved.clone(),
        outputs: stack.outputs.clone(),
        tags: stack.tags.clone(),
        last_updated: None,
    }
}

#[async_trait]
impl CfnApi for FakeCfn {
    async fn describe_stack(&self, stack: &str) -> Result<StackDescription, Error> {
        let mut state = self.state();
        state.injected_error("DescribeStacks", stack)?;
        let s = state.stack_mut(stack)?;
        if let Some((left, status, reason)) = s.lag.take() {
            // DescribeStacks still shows the stack from before the update
            // (its events are already there).
            let mut shown = s.clone();
            shown.status = status.clone();
            shown.status_reason = reason.clone();
            if left > 1 {
                s.lag = Some((left - 1, status, reason));
            }
            return Ok(describe(&shown, state.templates.get(&shown.template_url)));
        }
        let mut cleaned_up = false;
        if let Some(pending) = &mut s.pending {
            if pending.polls_left <= 1 {
                complete(s);
            } else {
                pending.polls_left -= 1;
            }
        } else if s.cleanup_left > 0 {
            s.cleanup_left -= 1;
            cleaned_up = s.cleanup_left == 0;
        }
        if cleaned_up {
            let name = s.name.clone();
            let mut event =
                state.event(&name, "AWS::CloudFormation::Stack", "UPDATE_COMPLETE", None);
            let s = state.stack_mut(stack)?;
            event.client_request_token = s.token.clone();
            s.events.push(event);
            s.status = StackStatus::new("UPDATE_COMPLETE");
        }
        let s = state.stack_mut(stack)?.clone();
        Ok(describe(&s, state.templates.get(&s.template_url)))
    }

    async fn template_summary(
        &self,
        stack: &str,
        template: &TemplateSource,
    ) -> Result<TemplateSummary, Error> {
        let mut state = self.state();
        state.injected_error("GetTemplateSummary", stack)?;
        let stack_url = match template {
            TemplateSource::Existing => Some(state.stack_mut(stack)?.template_url.clone()),
            _ => None,
        };
        let url = state.template_key(stack_url.as_deref(), template, "GetTemplateSummary")?;
        Ok(state.template(&url, "GetTemplateSummary")?.summary())
    }

    async fn update_stack(&self, request: &StackUpdateRequest) -> Result<UpdateStart, Error> {
        let mut state = self.state();
        state.injected_error("UpdateStack", &request.stack)?;
        let (url, values) = state.resolve("UpdateStack", request)?;
        state
            .template(&url, "UpdateStack")?
            .check_capabilities("UpdateStack", request)?;
        let stack = state.stack_mut(&request.stack)?;
        if request.client_request_token.is_some() && stack.token == request.client_request_token {
            // A retry of the request that started the current update.
            return Ok(UpdateStart::Started {
                stack_id: stack.id.clone(),
            });
        }
        if stack.status.is_in_progress() {
            return Err(Error::backend(
                "UpdateStack",
                &request.stack,
                ErrorClass::Permanent,
                format!(
                    "ValidationError: Stack:{} is in {} state and can not be updated.",
                    stack.id, stack.status
                ),
            ));
        }
        if stack.template_url == url && stack.parameters == values {
            return Ok(UpdateStart::NoChanges);
        }
        let (key, id) = (stack.name.clone(), stack.id.clone());
        if let Some(rollback) = &request.rollback_configuration {
            stack.rollback = Some(rollback.clone());
        }
        state.start_update(&key, url, values, request.client_request_token.clone())?;
        state.lost_response("UpdateStack", &request.stack)?;
        Ok(UpdateStart::Started { stack_id: id })
    }

    async fn create_change_set(
        &self,
        name: &str,
        request: &StackUpdateRequest,
    ) -> Result<ChangeSetStart, Error> {
        let mut state = self.state();
        state.injected_error("CreateChangeSet", &request.stack)?;
        if name.len() > 128
            || !name.starts_with(|c: char| c.is_ascii_alphabetic())
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(Error::backend(
                "CreateChangeSet",
                name,
                ErrorClass::Permanent,
                format!(
                    "ValidationError: 1 validation error detected: Value '{name}' at \
                     'changeSetName' failed to satisfy constraint: Member must have length less \
                     than or equal to 128 and match [a-zA-Z][-a-zA-Z0-9]*"
                ),
            ));
        }
        let (url, values) = state.resolve("CreateChangeSet", request)?;
        state
            .template(&url, "CreateChangeSet")?
            .check_capabilities("CreateChangeSet", request)?;
        let new_template = state.template(&url, "CreateChangeSet")?.clone();
        let stack = state.stack_mut(&request.stack)?;
        let stack_name = stack.name.clone();
        let unchanged = stack.template_url == url && stack.parameters == values;
        let old_url = stack.template_url.clone();
        let template_body = state.body_of(Some(&old_url), &request.template);
        let old_template = state.template(&old_url, "CreateChangeSet")?.clone();
        let id = format!(
            "arn:aws:cloudformation:us-east-1:000000000000:changeSet/{name}/{}",
            state.next("cs")
        );
        let changes = if unchanged {
            Vec::new()
        } else {
            let root = NestedContext {
                root_id: &id,
                name,
                request,
            };
            state.diff_templates(&root, &stack_name, &old_template, &new_template, 1)
        };
        let injected = state.change_set_failures.pop_front();
        let (status, execution_status, status_reason) = if let Some(reason) = injected {
            ("FAILED", "UNAVAILABLE", Some(reason))
        } else if unchanged {
            (
                "FAILED",
                "UNAVAILABLE",
                Some(
                    "The submitted information didn't contain changes. Submit different \
                     information to create a change set."
                        .to_string(),
                ),
            )
        } else {
            ("CREATE_COMPLETE", "AVAILABLE", None)
        };
        let pending_polls = state.change_set_polls;
        let resolved = {
            let template = state.template(&url, "CreateChangeSet")?;
            state.ssm_resolved(template, &values)
        };
        state.change_sets.push(FakeChangeSet {
            id: id.clone(),
            name: name.to_string(),
            stack: stack_name.clone(),
            request: request.clone(),
            status: status.into(),
            execution_status: execution_status.into(),
            status_reason,
            changes,
            template_body,
            executed_with: None,
            root: None,
            pending_polls,
            resolved,
        });
        Ok(ChangeSetStart::Created(ChangeSetRef {
            stack: stack_name,
            change_set: id,
        }))
    }

    async fn describe_change_set(
        &self,
        change_set: &ChangeSetRef,
    ) -> Result<ChangeSetDescription, Error> {
        let mut state = self.state();
        state.injected_error("DescribeChangeSet", &change_set.change_set)?;
        let c = Self::find_change_set(&mut state, change_set)?;
        if c.pending_polls > 0 {
            c.pending_polls -= 1;
            return Ok(ChangeSetDescription {
                id: c.id.clone(),
                name: c.name.clone(),
                status: "CREATE_IN_PROGRESS".into(),
                execution_status: Some("UNAVAILABLE".into()),
                status_reason: None,
                changes: Vec::new(),
                resolved_parameters: BTreeMap::new(),
            });
        }
        Ok(ChangeSetDescription {
            id: c.id.clone(),
            name: c.name.clone(),
            status: c.status.clone(),
            execution_status: Some(c.execution_status.clone()),
            status_reason: c.status_reason.clone(),
            changes: c.changes.clone(),
            resolved_parameters: c.resolved.clone(),
        })
    }

    async fn execute_change_set(
        &self,
        change_set: &ChangeSetRef,
        client_request_token: Option<&str>,
    ) -> Result<(), Error> {
        let mut state = self.state();
        state.injected_error("ExecuteChangeSet", &change_set.change_set)?;
        let c = Self::find_change_set(&mut state, change_set)?;
        if client_request_token.is_some() && c.executed_with.as_deref() == client_request_token {
            // A retry of the execute that already took effect.
            return Ok(());
        }
        if c.execution_status != "AVAILABLE" || c.pending_polls > 0 {
            return Err(Error::backend(
                "ExecuteChangeSet",
                &change_set.change_set,
                ErrorClass::Permanent,
                format!(
                    "InvalidChangeSetStatus: ChangeSet [{}] cannot be executed in its current \
                     execution status of [{}]",
                    c.name, c.execution_status
                ),
            ));
        }
        c.execution_status = "EXECUTE_COMPLETE".into();
        c.executed_with = client_request_token.map(str::to_string);
        let request = c.request.clone();
        let (url, values) = state.resolve("ExecuteChangeSet", &request)?;
        let stack = state.stack_mut(&request.stack)?;
        if let Some(rollback) = &request.rollback_configuration {
            stack.rollback = Some(rollback.clone());
        }
        let key = stack.name.clone();
        state.start_update(&key, url, values, client_request_token.map(str::to_string))?;
        state.lost_response("ExecuteChangeSet", &change_set.change_set)?;
        Ok(())
    }

    async fn delete_change_set(&self, change_set: &ChangeSetRef) -> Result<(), Error> {
        let mut state = self.state();
        state.injected_error("DeleteChangeSet", &change_set.change_set)?;
        let id = Self::find_change_set(&mut state, change_set)?.id.clone();
        // Deleting a root change set deletes its nested ones.
        state
            .change_sets
            .retain(|c| c.id != id && c.root.as_ref() != Some(&id));
        Ok(())
    }

    async fn change_set_template(&self, change_set: &ChangeSetRef) -> Result<String, Error> {
        let mut state = self.state();
        state.injected_error("GetTemplate", &change_set.change_set)?;
        let c = Self::find_change_set(&mut state, change_set)?;
        c.template_body.clone().ok_or_else(|| {
            Error::backend(
                "GetTemplate",
                &change_set.change_set,
                ErrorClass::Permanent,
                "FakeCfn has no body for this change set's template (register it with \
                 add_template_body)",
            )
        })
    }

    async fn stack_events(
        &self,
        stack: &str,
        after_event_id: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Vec<StackEvent>, Error> {
        let mut state = self.state();
        state.injected_error("DescribeStackEvents", stack)?;
        let s = state.stack_mut(stack)?;
        Ok(s.events
            .iter()
            .rev()
            .take_while(|e| Some(e.event_id.as_str()) != after_event_id)
            .take(limit.unwrap_or(usize::MAX))
            .cloned()
            .collect())
    }
}
