//! The `CfnApi` backend trait and the domain types it speaks.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::{self, Debug},
    sync::Arc,
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::{Error, StackStatus};

/// One stack as `DescribeStacks` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackDescription {
    /// The stack name.
    pub name: String,
    /// The stack id (an ARN on AWS).
    pub id: String,
    /// The current status.
    pub status: StackStatus,
    /// CloudFormation's reason for the status, if any.
    pub status_reason: Option<String>,
    /// Parameter values by key (`NoEcho` values read as `****`).
    pub parameters: BTreeMap<String, String>,
    /// For parameters of an SSM parameter type
    /// (`AWS::SSM::Parameter::Value<String>`, ...): the value CloudFormation
    /// resolved at the last update (`ResolvedValue`), by key.
    pub resolved_parameters: BTreeMap<String, String>,
    /// Output values by key.
    pub outputs: BTreeMap<String, String>,
    /// Stack tags by key.
    pub tags: BTreeMap<String, String>,
    /// When the stack was last updated (or created), if reported.
    pub last_updated: Option<DateTime<Utc>>,
}

/// What `DescribeStacks` returns instead of the value of a `NoEcho`
/// parameter.
pub const NO_ECHO_MASK: &str = "****";

/// The largest template CloudFormation accepts as `TemplateBody`, in bytes
/// (larger templates must be passed by `TemplateURL`).
pub const MAX_TEMPLATE_BODY_BYTES: usize = 51_200;

/// Whose template a summary or an update uses. Its `Debug` output shows a
/// body by size and sha256, not in full.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum TemplateSource {
    /// The stack's current template (`UsePreviousTemplate`).
    Existing,
    /// A template at this URL (`TemplateURL`).
    Url(String),
    /// The template itself (`TemplateBody`, at most
    /// [`MAX_TEMPLATE_BODY_BYTES`]): the exact bytes whose sha256 was
    /// verified, so CloudFormation cannot read a different template.
    Body(String),
}

impl Debug for TemplateSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateSource::Existing => f.write_str("Existing"),
            TemplateSource::Url(url) => f.debug_tuple("Url").field(url).finish(),
            TemplateSource::Body(body) => write!(
                f,
                "Body({} bytes, sha256 {})",
                body.len(),
                crate::sha256_hex(body.as_bytes())
            ),
        }
    }
}

/// A parameter a template declares (from `GetTemplateSummary`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredParameter {
    /// The parameter key.
    pub key: String,
    /// The default value, if the template has one.
    pub default_value: Option<String>,
    /// Whether the value is hidden (`NoEcho`).
    pub no_echo: bool,
    /// The declared type (`String`, `List<AWS::EC2::Subnet::Id>`,
    /// `AWS::SSM::Parameter::Value<String>`, ...), if reported.
    pub parameter_type: Option<String>,
}

impl DeclaredParameter {
    /// Whether the parameter names an SSM parameter that CloudFormation
    /// resolves (again) on every update (`AWS::SSM::Parameter::Value<...>`).
    ///
    /// ```
    /// use cfn_stack::DeclaredParameter;
    ///
    /// let parameter = DeclaredParameter {
    ///     key: "AmiId".into(),
    ///     default_value: Some("/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id".into()),
    ///     no_echo: false,
    ///     parameter_type: Some("AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>".into()),
    /// };
    /// assert!(parameter.is_ssm());
    /// ```
    pub fn is_ssm(&self) -> bool {
        self.parameter_type
            .as_deref()
            .is_some_and(|t| t.starts_with("AWS::SSM::Parameter::Value<"))
    }
}

/// What a template declares.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TemplateSummary {
    /// The declared parameters, in template order.
    pub parameters: Vec<DeclaredParameter>,
    /// The capabilities the template needs (`Capabilities` of
    /// `GetTemplateSummary`: `CAPABILITY_IAM`, `CAPABILITY_NAMED_IAM`,
    /// `CAPABILITY_AUTO_EXPAND`).
    pub capabilities: Vec<String>,
    /// Why (`CapabilitiesReason`), if CloudFormation said.
    pub capabilities_reason: Option<String>,
    /// The transforms the template uses (`DeclaredTransforms`, e.g.
    /// `AWS::Serverless-2016-10-31`).
    pub declared_transforms: Vec<String>,
}

/// The capability a template with transforms or macros needs.
pub const CAPABILITY_AUTO_EXPAND: &str = "CAPABILITY_AUTO_EXPAND";

impl TemplateSummary {
    /// The capabilities an update with this template must acknowledge:
    /// [`capabilities`](Self::capabilities), plus
    /// [`CAPABILITY_AUTO_EXPAND`] when the template declares a transform;
    /// sorted, without duplicates.
    ///
    /// ```
    /// use cfn_stack::TemplateSummary;
    ///
    /// let summary = TemplateSummary {
    ///     capabilities: vec!["CAPABILITY_IAM".into()],
    ///     declared_transforms: vec!["AWS::Serverless-2016-10-31".into()],
    ///     ..TemplateSummary::default()
    /// };
    /// assert_eq!(summary.required_capabilities(), ["CAPABILITY_AUTO_EXPAND", "CAPABILITY_IAM"]);
    /// ```
    pub fn required_capabilities(&self) -> Vec<String> {
        let mut all: BTreeSet<String> = self.capabilities.iter().cloned().collect();
        if !self.declared_transforms.is_empty() {
            all.insert(CAPABILITY_AUTO_EXPAND.to_string());
        }
        all.into_iter().collect()
    }

    /// The declared parameter `key`, if any.
    pub fn parameter(&self, key: &str) -> Option<&DeclaredParameter> {
        self.parameters.iter().find(|p| p.key == key)
    }

    /// The declared parameter keys.
    pub fn keys(&self) -> Vec<String> {
        self.parameters.iter().map(|p| p.key.clone()).collect()
    }
}

/// The value sent for one parameter in an update or a change set.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ParameterValue {
    /// Keep the stack's current value (`UsePreviousValue: true`).
    UsePrevious,
    /// Set this value.
    Set(String),
}

/// The full parameter list of a stack update, as sent to CloudFormation.
/// A declared parameter left out takes its template default.
///
/// Its `Debug` output shows the value of no parameter listed in
/// [`no_echo`](Self::no_echo) (they print as `(hidden)`).
#[derive(Clone, PartialEq, Eq)]
pub struct StackUpdateRequest {
    /// The stack name or id.
    pub stack: String,
    /// The template to use.
    pub template: TemplateSource,
    /// Every parameter sent, by key.
    pub parameters: BTreeMap<String, ParameterValue>,
    /// Capabilities acknowledged (`CAPABILITY_IAM`, ...).
    pub capabilities: Vec<String>,
    /// The keys of `NoEcho` parameters: their values are never printed.
    pub no_echo: BTreeSet<String>,
    /// The `ClientRequestToken` of an `UpdateStack` (letters, digits, `-`;
    /// at most 128): a retry with the same token is the same request, and
    /// the events of the update carry it.
    pub client_request_token: Option<String>,
    /// Rollback triggers for this update; `None` keeps the stack's own.
    pub rollback_configuration: Option<RollbackConfiguration>,
}

impl Debug for StackUpdateRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Shown<'a>(&'a StackUpdateRequest);
        impl Debug for Shown<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut map = f.debug_map();
                for (key, value) in &self.0.parameters {
                    match value {
                        ParameterValue::Set(_) if self.0.no_echo.contains(key) => {
                            map.entry(key, &format_args!("Set((hidden))"))
                        }
                        value => map.entry(key, value),
                    };
                }
                map.finish()
            }
        }
        f.debug_struct("StackUpdateRequest")
            .field("stack", &self.stack)
            .field("template", &self.template)
            .field("parameters", &Shown(self))
            .field("capabilities", &self.capabilities)
            .field("no_echo", &self.no_echo)
            .field("client_request_token", &self.client_request_token)
            .field("rollback_configuration", &self.rollback_configuration)
            .finish()
    }
}

/// CloudFormation's rollback triggers for one update
/// (`RollbackConfiguration`): if one of the CloudWatch alarms goes to
/// `ALARM` while the update runs or during the monitoring time after it,
/// CloudFormation rolls the update back.
///
/// Sending one replaces the stack's triggers; not sending one
/// ([`StackUpdateRequest::rollback_configuration`] `None`) keeps them. An
/// empty `alarm_arns` removes every trigger.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RollbackConfiguration {
    /// CloudWatch alarm ARNs (`arn:aws:cloudwatch:<region>:<account>:alarm:<name>`),
    /// at most [`MAX_ROLLBACK_TRIGGERS`].
    pub alarm_arns: Vec<String>,
    /// How long to keep watching the alarms after the update completes,
    /// 0 to 180 minutes (`MonitoringTimeInMinutes`); `None` leaves it to
    /// CloudFormation.
    pub monitoring_time_minutes: Option<u32>,
}

/// The most rollback triggers CloudFormation accepts.
pub const MAX_ROLLBACK_TRIGGERS: usize = 5;

impl RollbackConfiguration {
    /// Triggers on `alarm_arns`, watched for `monitoring_time_minutes`
    /// after the update.
    ///
    /// ```
    /// use cfn_stack::RollbackConfiguration;
    ///
    /// let rollback = RollbackConfiguration::alarms(
    ///     ["arn:aws:cloudwatch:eu-west-1:123456789012:alarm:runner-5xx"],
    ///     Some(10),
    /// );
    /// rollback.validate().unwrap();
    /// assert!(RollbackConfiguration::alarms(["not-an-arn"], None).validate().is_err());
    /// ```
    pub fn alarms(
        alarm_arns: impl IntoIterator<Item = impl Into<String>>,
        monitoring_time_minutes: Option<u32>,
    ) -> Self {
        Self {
            alarm_arns: alarm_arns.into_iter().map(Into::into).collect(),
            monitoring_time_minutes,
        }
    }

    /// Checks the limits CloudFormation enforces: at most
    /// [`MAX_ROLLBACK_TRIGGERS`] CloudWatch alarm ARNs, no duplicates, a
    /// monitoring time of at most 180 minutes.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |why: String| Err(Error::InvalidConfig(format!("rollback triggers: {why}")));
        if self.alarm_arns.len() > MAX_ROLLBACK_TRIGGERS {
            return invalid(format!(
                "{} alarms given, CloudFormation accepts at most {MAX_ROLLBACK_TRIGGERS}",
                self.alarm_arns.len()
            ));
        }
        for (i, arn) in self.alarm_arns.iter().enumerate() {
            let parts: Vec<&str> = arn.splitn(7, ':').collect();
            if parts.len() < 7
                || parts[0] != "arn"
                || parts[2] != "cloudwatch"
                || parts[5] != "alarm"
                || parts[6].is_empty()
            {
                return invalid(format!(
                    "{arn:?} is not a CloudWatch alarm ARN \
                     (arn:aws:cloudwatch:<region>:<account>:alarm:<name>)"
                ));
            }
            if self.alarm_arns[..i].contains(arn) {
                return invalid(format!("{arn:?} is given twice"));
            }
        }
        if self.monitoring_time_minutes.is_some_and(|m| m > 180) {
            return invalid("the monitoring time is at most 180 minutes".into());
        }
        Ok(())
    }
}

/// The result of asking CloudFormation to start an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateStart {
    /// The update started; wait for the stack to settle.
    Started {
        /// The stack id.
        stack_id: String,
    },
    /// CloudFormation said "No updates are to be performed": nothing started.
    NoChanges,
}

/// The identity of a change set.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChangeSetRef {
    /// The stack name or id.
    pub stack: String,
    /// The change set name or id (an ARN on AWS).
    pub change_set: String,
}

/// The result of asking CloudFormation to create a change set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeSetStart {
    /// The change set is being created; describe it until it settles.
    Created(ChangeSetRef),
    /// The request was refused because it changes nothing (some
    /// CloudFormation implementations say so at creation time instead of
    /// failing the change set).
    NoChanges {
        /// What CloudFormation said.
        reason: String,
    },
}

/// One resource change of a change set.
///
/// `Display` writes one line, e.g. `Modify RunnerAsg
/// (AWS::AutoScaling::AutoScalingGroup): REPLACEMENT True, policy action
/// ReplaceAndDelete; Properties.LaunchTemplate (requires recreation:
/// Always)`; a replacement is written `REPLACEMENT` so it stands out
/// ([`is_replacement`](Self::is_replacement)).
///
/// ```
/// use cfn_stack::{ResourceChange, ResourceChangeDetail};
///
/// let change = ResourceChange {
///     action: "Modify".into(),
///     logical_id: "RunnerAsg".into(),
///     physical_id: Some("runner-asg".into()),
///     resource_type: "AWS::AutoScaling::AutoScalingGroup".into(),
///     replacement: Some("True".into()),
///     policy_action: Some("ReplaceAndDelete".into()),
///     scope: vec!["Properties".into()],
///     details: vec![ResourceChangeDetail {
///         attribute: Some("Properties".into()),
///         name: Some("LaunchTemplate".into()),
///         requires_recreation: Some("Always".into()),
///         evaluation: Some("Static".into()),
///         change_source: Some("DirectModification".into()),
///         causing_entity: None,
///     }],
///     nested_change_set: None,
/// };
/// assert!(change.is_replacement());
/// assert_eq!(
///     change.to_string(),
///     "Modify RunnerAsg (AWS::AutoScaling::AutoScalingGroup): REPLACEMENT True, policy action \
///      ReplaceAndDelete; Properties.LaunchTemplate (requires recreation: Always)"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResourceChange {
    /// `Add`, `Modify`, `Remove`, `Import`, `Dynamic`.
    pub action: String,
    /// The logical id in the template; for a resource of a nested stack,
    /// its path from the root stack (`RunnerNetwork/SecurityGroup`).
    pub logical_id: String,
    /// The physical id, when the resource exists.
    pub physical_id: Option<String>,
    /// The resource type, e.g. `AWS::ECS::Service`.
    pub resource_type: String,
    /// `True`, `False` or `Conditional` for a `Modify`, if reported.
    pub replacement: Option<String>,
    /// What happens to the resource's data (`PolicyAction`): `Delete`,
    /// `Retain`, `Snapshot`, `ReplaceAndDelete`, `ReplaceAndRetain`,
    /// `ReplaceAndSnapshot`, if reported.
    pub policy_action: Option<String>,
    /// What is changed (`Scope`): `Properties`, `Metadata`,
    /// `CreationPolicy`, `UpdatePolicy`, `DeletionPolicy`, `Tags`, ...
    pub scope: Vec<String>,
    /// Each changed attribute and whether it forces a recreation.
    pub details: Vec<ResourceChangeDetail>,
    /// For an `AWS::CloudFormation::Stack` resource of a change set created
    /// with nested stacks included: the id of the nested stack's own change
    /// set (`ChangeSetId`). [`StackUpdater::plan`](crate::StackUpdater::plan)
    /// reads it and lists its changes under the nested stack's path.
    pub nested_change_set: Option<String>,
}

/// One changed attribute of a [`ResourceChange`] (`ResourceChangeDetail`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResourceChangeDetail {
    /// The attribute changed (`Target.Attribute`): `Properties`, `Tags`, ...
    pub attribute: Option<String>,
    /// The property name, for a `Properties` change (`Target.Name`).
    pub name: Option<String>,
    /// Whether the change recreates the resource
    /// (`Target.RequiresRecreation`): `Never`, `Conditionally`, `Always`.
    pub requires_recreation: Option<String>,
    /// `Static` (known now) or `Dynamic` (known when the update runs).
    pub evaluation: Option<String>,
    /// `ResourceReference`, `ParameterReference`, `ResourceAttribute`,
    /// `DirectModification`, `Automatic`.
    pub change_source: Option<String>,
    /// The parameter or resource causing the change (`CausingEntity`), if
    /// any.
    pub causing_entity: Option<String>,
}

impl fmt::Display for ResourceChangeDetail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.attribute, &self.name) {
            (Some(attribute), Some(name)) => write!(f, "{attribute}.{name}")?,
            (Some(attribute), None) => f.write_str(attribute)?,
            (None, Some(name)) => f.write_str(name)?,
            (None, None) => f.write_str("(attribute not reported)")?,
        }
        let mut notes = Vec::new();
        if let Some(recreation) = &self.requires_recreation {
            notes.push(format!("requires recreation: {recreation}"));
        }
        if self.evaluation.as_deref() == Some("Dynamic") {
            notes.push("known only when the update runs".to_string());
        }
        if let Some(entity) = &self.causing_entity {
            let source = self.change_source.as_deref().unwrap_or("caused");
            notes.push(format!("{source} {entity}"));
        }
        if !notes.is_empty() {
            write!(f, " ({})", notes.join(", "))?;
        }
        Ok(())
    }
}

impl ResourceChange {
    /// CloudFormation replaces the resource (`Replacement` `True` or
    /// `Conditional`, or a `Replace*` policy action): a new physical
    /// resource, the old one deleted or retained.
    pub fn is_replacement(&self) -> bool {
        matches!(self.replacement.as_deref(), Some("True" | "Conditional"))
            || self
                .policy_action
                .as_deref()
                .is_some_and(|p| p.starts_with("Replace"))
    }
}

impl fmt::Display for ResourceChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} ({})",
            self.action, self.logical_id, self.resource_type
        )?;
        let mut parts = Vec::new();
        if let Some(replacement) = &self.replacement {
            let label = if self.is_replacement() {
                "REPLACEMENT"
            } else {
                "replacement"
            };
            parts.push(format!("{label} {replacement}"));
        } else if self.is_replacement() {
            parts.push("REPLACEMENT".to_string());
        }
        if let Some(policy) = &self.policy_action {
            parts.push(format!("policy action {policy}"));
        }
        if !parts.is_empty() {
            write!(f, ": {}", parts.join(", "))?;
        }
        if !self.details.is_empty() {
            let details: Vec<String> = self.details.iter().map(ToString::to_string).collect();
            let separator = if parts.is_empty() { ": " } else { "; " };
            write!(f, "{separator}{}", details.join("; "))?;
        } else if !self.scope.is_empty() {
            let separator = if parts.is_empty() { ": " } else { "; " };
            write!(f, "{separator}scope {}", self.scope.join(", "))?;
        }
        Ok(())
    }
}

/// A change set as `DescribeChangeSet` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeSetDescription {
    /// The change set id.
    pub id: String,
    /// The change set name.
    pub name: String,
    /// `CREATE_PENDING`, `CREATE_IN_PROGRESS`, `CREATE_COMPLETE`, `FAILED`, ...
    pub status: String,
    /// `AVAILABLE`, `UNAVAILABLE`, `EXECUTE_IN_PROGRESS`, `EXECUTE_COMPLETE`, ...
    pub execution_status: Option<String>,
    /// Why the change set failed, if it did.
    pub status_reason: Option<String>,
    /// Every resource change (all pages).
    pub changes: Vec<ResourceChange>,
    /// For parameters of an SSM parameter type: the value CloudFormation
    /// resolved for this change set (`ResolvedValue`), by key.
    pub resolved_parameters: BTreeMap<String, String>,
}

impl ChangeSetDescription {
    /// Creation still running.
    pub fn is_pending(&self) -> bool {
        matches!(
            self.status.as_str(),
            "CREATE_PENDING" | "CREATE_IN_PROGRESS"
        )
    }

    /// The change set failed because it changes nothing ("didn't contain
    /// changes" / "No updates are to be performed").
    pub fn failed_without_changes(&self) -> bool {
        self.status == "FAILED"
            && self
                .status_reason
                .as_deref()
                .is_some_and(crate::outcome::means_no_changes)
    }
}

/// One stack event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackEvent {
    /// The event id (unique per stack).
    pub event_id: String,
    /// When it happened.
    pub timestamp: Option<DateTime<Utc>>,
    /// The logical id of the resource (the stack name for stack events).
    pub logical_id: String,
    /// The resource type.
    pub resource_type: String,
    /// The resource status, e.g. `UPDATE_FAILED`.
    pub status: String,
    /// The reason, if any.
    pub reason: Option<String>,
    /// The `ClientRequestToken` of the operation that caused the event, if
    /// it had one.
    pub client_request_token: Option<String>,
}

impl StackEvent {
    /// A resource (or the stack) failed in this event.
    pub fn is_failure(&self) -> bool {
        self.status.ends_with("_FAILED")
    }
}

/// The CloudFormation operations this crate needs, in domain types.
///
/// Contract (checked by the `conformance` suite):
/// - an unknown stack is [`Error::StackNotFound`];
/// - [`update_stack`](CfnApi::update_stack) and
///   [`create_change_set`](CfnApi::create_change_set) send exactly the given
///   parameters; a parameter sent as [`ParameterValue::UsePrevious`] keeps its
///   value; an update that changes nothing is
///   [`UpdateStart::NoChanges`], never an error;
/// - [`stack_events`](CfnApi::stack_events) returns events newest first;
/// - backend failures are [`Error::Backend`] with a class.
#[async_trait]
pub trait CfnApi: Send + Sync + Debug + 'static {
    /// Describes one stack.
    async fn describe_stack(&self, stack: &str) -> Result<StackDescription, Error>;

    /// The parameters declared by the stack's current template
    /// ([`TemplateSource::Existing`]) or by the template at a URL.
    async fn template_summary(
        &self,
        stack: &str,
        template: &TemplateSource,
    ) -> Result<TemplateSummary, Error>;

    /// Starts a stack update (`UpdateStack`).
    async fn update_stack(&self, request: &StackUpdateRequest) -> Result<UpdateStart, Error>;

    /// Creates an `UPDATE` change set named `name` for `request`.
    async fn create_change_set(
        &self,
        name: &str,
        request: &StackUpdateRequest,
    ) -> Result<ChangeSetStart, Error>;

    /// Describes a change set with every page of its changes.
    async fn describe_change_set(
        &self,
        change_set: &ChangeSetRef,
    ) -> Result<ChangeSetDescription, Error>;

    /// Executes a change set, with a `ClientRequestToken` when given (a
    /// retry with the same token is the same request; the events of the
    /// update carry it).
    async fn execute_change_set(
        &self,
        change_set: &ChangeSetRef,
        client_request_token: Option<&str>,
    ) -> Result<(), Error>;

    /// Deletes a change set that will not be executed.
    async fn delete_change_set(&self, change_set: &ChangeSetRef) -> Result<(), Error>;

    /// The template body a change set will apply, as submitted
    /// (`GetTemplate` with `ChangeSetName` and `TemplateStage=Original`).
    async fn change_set_template(&self, change_set: &ChangeSetRef) -> Result<String, Error>;

    /// The stack's events, newest first, stopping before the event
    /// `after_event_id` (exclusive) when given, so callers read only what is
    /// new since they last looked, and after `limit` events when given.
    async fn stack_events(
        &self,
        stack: &str,
        after_event_id: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Vec<StackEvent>, Error>;
}

macro_rules! forward_cfn_api {
    ($wrapper:ty) => {
        #[async_trait]
        impl<T: CfnApi + ?Sized> CfnApi for $wrapper {
            async fn describe_stack(&self, stack: &str) -> Result<StackDescription, Error> {
                (**self).describe_stack(stack).await
            }
            async fn template_summary(
                &self,
                stack: &str,
                template: &TemplateSource,
            ) -> Result<TemplateSummary, Error> {
                (**self).template_summary(stack, template).await
            }
            async fn update_stack(
                &self,
                request: &StackUpdateRequest,
            ) -> Result<UpdateStart, Error> {
                (**self).update_stack(request).await
            }
            async fn create_change_set(
                &self,
                name: &str,
                request: &StackUpdateRequest,
            ) -> Result<ChangeSetStart, Error> {
                (**self).create_change_set(name, request).await
            }
            async fn describe_change_set(
                &self,
                change_set: &ChangeSetRef,
            ) -> Result<ChangeSetDescription, Error> {
                (**self).describe_change_set(change_set).await
            }
            async fn execute_change_set(
                &self,
                change_set: &ChangeSetRef,
                client_request_token: Option<&str>,
            ) -> Result<(), Error> {
                (**self)
                    .execute_change_set(change_set, client_request_token)
                    .await
            }
            async fn delete_change_set(&self, change_set: &ChangeSetRef) -> Result<(), Error> {
                (**self).delete_change_set(change_set).await
            }
            async fn change_set_template(
                &self,
                change_set: &ChangeSetRef,
            ) -> Result<String, Error> {
                (**self).change_set_template(change_set).await
            }
            async fn stack_events(
                &self,
                stack: &str,
                after_event_id: Option<&str>,
                limit: Option<usize>,
            ) -> Result<Vec<StackEvent>, Error> {
                (**self).stack_events(stack, after_event_id, limit).await
            }
        }
    };
}

forward_cfn_api!(Arc<T>);
forward_cfn_api!(Box<T>);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_debug_hides_no_echo_values() {
        let request = StackUpdateRequest {
            stack: "runner".into(),
            template: TemplateSource::Existing,
            parameters: BTreeMap::from([
                ("Image".to_string(), ParameterValue::Set("runner:2".into())),
                ("Token".to_string(), ParameterValue::Set("s3cr3t".into())),
                ("Zones".to_string(), ParameterValue::UsePrevious),
            ]),
            capabilities: Vec::new(),
            no_echo: BTreeSet::from(["Token".to_string()]),
            client_request_token: None,
            rollback_configuration: None,
        };
        let shown = format!("{request:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("\"Token\": Set((hidden))"), "{shown}");
        assert!(shown.contains("runner:2"), "{shown}");
        assert!(shown.contains("UsePrevious"), "{shown}");
        let body = TemplateSource::Body("{}".into());
        assert_eq!(
            format!("{body:?}"),
            format!("Body(2 bytes, sha256 {})", crate::sha256_hex(b"{}"))
        );
    }
}
