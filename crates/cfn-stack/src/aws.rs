//! `AwsCfn`: the [`CfnApi`] backend over `aws-sdk-cloudformation`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_cloudformation::{
    Client,
    error::ProvideErrorMetadata,
    types::{Capability, ChangeSetType, Parameter, TemplateStage},
};
use aws_smithy_runtime_api::client::{orchestrator::HttpResponse, result::SdkError};
use chrono::{DateTime, Utc};

use crate::{
    CfnApi, ChangeSetDescription, ChangeSetRef, ChangeSetStart, DeclaredParameter, Error,
    ParameterValue, ResourceChange, ResourceChangeDetail, StackDescription, StackEvent,
    StackStatus, StackUpdateRequest, TemplateSource, TemplateSummary, UpdateStart,
    outcome::means_no_changes,
    sdk_error::{backend_error, code_and_message},
};

/// [`CfnApi`] over a ready-built CloudFormation client (feature `aws`).
/// The client's retry, timeout, endpoint and credential settings are used
/// as they are; this backend adds no retry of its own.
#[derive(Debug, Clone)]
pub struct AwsCfn {
    client: Client,
}

impl AwsCfn {
    /// Wraps `client`.
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// The wrapped client.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

fn to_chrono(time: &aws_sdk_cloudformation::primitives::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(time.secs(), time.subsec_nanos())
}

/// "Stack with id X does not exist" (ValidationError) means not found.
fn stack_missing(message: Option<&str>) -> bool {
    message.is_some_and(|m| m.contains("does not exist") && m.contains("Stack"))
}

/// Maps a failed `operation` on `stack`: "Stack ... does not exist" is
/// [`Error::StackNotFound`], anything else a backend error on `stack`.
fn stack_error<E>(operation: &'static str, stack: &str, error: SdkError<E, HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    if stack_missing(error.message()) {
        Error::StackNotFound {
            stack: stack.to_string(),
        }
    } else {
        backend_error(operation, stack, error)
    }
}

fn change_set_not_found(change_set: &ChangeSetRef) -> Error {
    Error::ChangeSetNotFound {
        stack: change_set.stack.clone(),
        change_set: change_set.change_set.clone(),
    }
}

/// The token of the next page; none (or an empty one) means this was the last.
fn next_page(token: Option<&str>) -> Option<String> {
    token.filter(|next| !next.is_empty()).map(str::to_string)
}

/// `(UsePreviousTemplate, TemplateURL, TemplateBody)` of an update or change set.
fn template_fields(template: &TemplateSource) -> (Option<bool>, Option<String>, Option<String>) {
    match template {
        TemplateSource::Existing => (Some(true), None, None),
        TemplateSource::Url(url) => (None, Some(url.clone()), None),
        TemplateSource::Body(body) => (None, None, Some(body.clone())),
    }
}

/// A key/value pair of a stack; a missing key drops it, a missing value is "".
fn key_value(key: Option<&str>, value: Option<&str>) -> Option<(String, String)> {
    Some((key?.to_string(), value.unwrap_or_default().to_string()))
}

/// The SDK's `RollbackConfiguration`; `None` (not sent) keeps the stack's.
fn rollback_configuration(
    request: &StackUpdateRequest,
) -> Option<aws_sdk_cloudformation::types::RollbackConfiguration> {
    use aws_sdk_cloudformation::types::{RollbackConfiguration, RollbackTrigger};
    let config = request.rollback_configuration.as_ref()?;
    Some(
        RollbackConfiguration::builder()
            .set_rollback_triggers(Some(
                config
                    .alarm_arns
                    .iter()
                    .map(|arn| {
                        RollbackTrigger::builder()
                            .arn(arn)
                            .r#type("AWS::CloudWatch::Alarm")
                            .build()
                    })
                    .collect(),
            ))
            .set_monitoring_time_in_minutes(
                config
                    .monitoring_time_minutes
                    .map(|m| i32::try_from(m).unwrap_or(i32::MAX)),
            )
            .build(),
    )
}

fn parameters(request: &StackUpdateRequest) -> Vec<Parameter> {
    request
        .parameters
        .iter()
        .map(|(key, value)| {
            let builder = Parameter::builder().parameter_key(key);
            match value {
                ParameterValue::UsePrevious => builder.use_previous_value(true),
                ParameterValue::Set(v) => builder.parameter_value(v),
            }
            .build()
        })
        .collect()
}

fn capabilities(request: &StackUpdateRequest) -> Option<Vec<Capability>> {
    (!request.capabilities.is_empty()).then(|| {
        request
            .capabilities
            .iter()
            .map(|c| Capability::from(c.as_str()))
            .collect()
    })
}

/// The domain form of one SDK resource change. `BeforeValue` and
/// `AfterValue` of the details are deliberately not kept: they can hold
/// parameter values, `NoEcho` ones included.
fn resource_change(r: &aws_sdk_cloudformation::types::ResourceChange) -> ResourceChange {
    ResourceChange {
        action: r
            .action()
            .map(|a| a.as_str())
            .unwrap_or("Unknown")
            .to_string(),
        logical_id: r.logical_resource_id().unwrap_or_default().to_string(),
        physical_id: r.physical_resource_id().map(str::to_string),
        resource_type: r.resource_type().unwrap_or_default().to_string(),
        replacement: r.replacement().map(|x| x.as_str().to_string()),
        policy_action: r.policy_action().map(|p| p.as_str().to_string()),
        scope: r.scope().iter().map(|s| s.as_str().to_string()).collect(),
        details: r
            .details()
            .iter()
            .map(|d| {
                let target = d.target();
                ResourceChangeDetail {
                    attribute: target
                        .and_then(|t| t.attribute())
                        .map(|a| a.as_str().to_string()),
                    name: target.and_then(|t| t.name()).map(str::to_string),
                    requires_recreation: target
                        .and_then(|t| t.requires_recreation())
                        .map(|r| r.as_str().to_string()),
                    evaluation: d.evaluation().map(|e| e.as_str().to_string()),
                    change_source: d.change_source().map(|c| c.as_str().to_string()),
                    causing_entity: d.causing_entity().map(str::to_string),
                }
            })
            .collect(),
        nested_change_set: r
            .change_set_id()
            .filter(|id| !id.is_empty())
            .map(str::to_string),
    }
}

#[async_trait]
impl CfnApi for AwsCfn {
    async fn describe_stack(&self, stack: &str) -> Result<StackDescription, Error> {
        let output = self
            .client
            .describe_stacks()
            .stack_name(stack)
            .send()
            .await
            .map_err(|error| stack_error("DescribeStacks", stack, error))?;
        let Some(s) = output.stacks().first() else {
            return Err(Error::StackNotFound {
                stack: stack.to_string(),
            });
        };
        Ok(StackDescription {
            name: s.stack_name().unwrap_or(stack).to_string(),
            id: s.stack_id().unwrap_or_default().to_string(),
            status: StackStatus::new(s.stack_status().map(|st| st.as_str()).unwrap_or("UNKNOWN")),
            status_reason: s.stack_status_reason().map(str::to_string),
            parameters: s
                .parameters()
                .iter()
                .filter_map(|p| key_value(p.parameter_key(), p.parameter_value()))
                .collect(),
            resolved_parameters: s
                .parameters()
                .iter()
                .filter_map(|p| key_value(p.parameter_key(), p.resolved_value()))
                .collect(),
            outputs: s
                .outputs()
                .iter()
                .filter_map(|o| key_value(o.output_key(), o.output_value()))
                .collect(),
            tags: s
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
                .collect::<BTreeMap<_, _>>(),
            last_updated: s
                .last_updated_time()
                .or(s.creation_time())
                .and_then(to_chrono),
        })
    }

    async fn template_summary(
        &self,
        stack: &str,
        template: &TemplateSource,
    ) -> Result<TemplateSummary, Error> {
        let request = self.client.get_template_summary();
        let (request, resource) = match template {
            TemplateSource::Existing => (request.stack_name(stack), stack),
            TemplateSource::Url(url) => (request.template_url(url), url.as_str()),
            TemplateSource::Body(body) => (request.template_body(body), stack),
        };
        let output = match request.send().await {
            Ok(output) => output,
            Err(error) if matches!(template, TemplateSource::Existing) => {
                return Err(stack_error("GetTemplateSummary", stack, error));
            }
            Err(error) => return Err(backend_error("GetTemplateSummary", resource, error)),
        };
        Ok(TemplateSummary {
            parameters: output
                .parameters()
                .iter()
                .filter_map(|p| {
                    Some(DeclaredParameter {
                        key: p.parameter_key()?.to_string(),
                        default_value: p.default_value().map(str::to_string),
                        no_echo: p.no_echo().unwrap_or(false),
                        parameter_type: p.parameter_type().map(str::to_string),
                    })
                })
                .collect(),
            capabilities: output
                .capabilities()
                .iter()
                .map(|c| c.as_str().to_string())
                .collect(),
            capabilities_reason: output.capabilities_reason().map(str::to_string),
            declared_transforms: output.declared_transforms().to_vec(),
        })
    }

    async fn update_stack(&self, request: &StackUpdateRequest) -> Result<UpdateStart, Error> {
        let (use_previous_template, template_url, template_body) =
            template_fields(&request.template);
        let builder = self
            .client
            .update_stack()
            .stack_name(&request.stack)
            .set_parameters(Some(parameters(request)))
            .set_capabilities(capabilities(request))
            .set_rollback_configuration(rollback_configuration(request))
            .set_use_previous_template(use_previous_template)
            .set_template_url(template_url)
            .set_template_body(template_body)
            .set_client_request_token(request.client_request_token.clone());
        match builder.send().await {
            Ok(output) => Ok(UpdateStart::Started {
                stack_id: output.stack_id().unwrap_or_default().to_string(),
            }),
            Err(error) if error.message().is_some_and(means_no_changes) => {
                Ok(UpdateStart::NoChanges)
            }
            Err(error) => Err(stack_error("UpdateStack", &request.stack, error)),
        }
    }

    async fn create_change_set(
        &self,
        name: &str,
        request: &StackUpdateRequest,
    ) -> Result<ChangeSetStart, Error> {
        let (use_previous_template, template_url, template_body) =
            template_fields(&request.template);
        let builder = self
            .client
            .create_change_set()
            .stack_name(&request.stack)
            .change_set_name(name)
            .change_set_type(ChangeSetType::Update)
            // Nested stacks get change sets of their own, so the preview
            // shows what changes inside them.
            .include_nested_stacks(true)
            .set_parameters(Some(parameters(request)))
            .set_capabilities(capabilities(request))
            .set_rollback_configuration(rollback_configuration(request))
            .set_use_previous_template(use_previous_template)
            .set_template_url(template_url)
            .set_template_body(template_body);
        match builder.send().await {
            Ok(output) => Ok(ChangeSetStart::Created(ChangeSetRef {
                stack: request.stack.clone(),
                change_set: output.id().unwrap_or(name).to_string(),
            })),
            Err(error) if error.message().is_some_and(means_no_changes) => {
                Ok(ChangeSetStart::NoChanges {
                    reason: error.message().unwrap_or_default().to_string(),
                })
            }
            Err(error) => Err(stack_error("CreateChangeSet", &request.stack, error)),
        }
    }

    async fn describe_change_set(
        &self,
        change_set: &ChangeSetRef,
    ) -> Result<ChangeSetDescription, Error> {
        let mut token: Option<String> = None;
        let mut description: Option<ChangeSetDescription> = None;
        loop {
            let output = self
                .client
                .describe_change_set()
                .stack_name(&change_set.stack)
                .change_set_name(&change_set.change_set)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|error| {
                    let (code, _) = code_and_message(&error);
                    if code
                        .as_deref()
                        .is_some_and(|c| c.starts_with("ChangeSetNotFound"))
                    {
                        change_set_not_found(change_set)
                    } else {
                        backend_error("DescribeChangeSet", &change_set.change_set, error)
                    }
                })?;
            let changes = output
                .changes()
                .iter()
                .filter_map(|c| c.resource_change().map(resource_change));
            match &mut description {
                Some(d) => d.changes.extend(changes),
                None => {
                    description = Some(ChangeSetDescription {
                        id: output
                            .change_set_id()
                            .unwrap_or(&change_set.change_set)
                            .to_string(),
                        name: output.change_set_name().unwrap_or_default().to_string(),
                        status: output
                            .status()
                            .map(|s| s.as_str())
                            .unwrap_or("UNKNOWN")
                            .to_string(),
                        execution_status: output.execution_status().map(|s| s.as_str().to_string()),
                        status_reason: output.status_reason().map(str::to_string),
                        changes: changes.collect(),
                        resolved_parameters: output
                            .parameters()
                            .iter()
                            .filter_map(|p| key_value(p.parameter_key(), p.resolved_value()))
                            .collect(),
                    })
                }
            }
            token = next_page(output.next_token());
            if token.is_none() {
                break;
            }
        }
        description.ok_or_else(|| change_set_not_found(change_set))
    }

    async fn execute_change_set(
        &self,
        change_set: &ChangeSetRef,
        client_request_token: Option<&str>,
    ) -> Result<(), Error> {
        self.client
            .execute_change_set()
            .stack_name(&change_set.stack)
            .change_set_name(&change_set.change_set)
            .set_client_request_token(client_request_token.map(str::to_string))
            .send()
            .await
            .map_err(|error| backend_error("ExecuteChangeSet", &change_set.change_set, error))?;
        Ok(())
    }

    async fn delete_change_set(&self, change_set: &ChangeSetRef) -> Result<(), Error> {
        self.client
            .delete_change_set()
            .stack_name(&change_set.stack)
            .change_set_name(&change_set.change_set)
            .send()
            .await
            .map_err(|error| backend_error("DeleteChangeSet", &change_set.change_set, error))?;
        Ok(())
    }

    async fn change_set_template(&self, change_set: &ChangeSetRef) -> Result<String, Error> {
        let output = self
            .client
            .get_template()
            .stack_name(&change_set.stack)
            .change_set_name(&change_set.change_set)
            .template_stage(TemplateStage::Original)
            .send()
            .await
            .map_err(|error| {
                let (code, _) = code_and_message(&error);
                if code
                    .as_deref()
                    .is_some_and(|c| c.starts_with("ChangeSetNotFound"))
                {
                    change_set_not_found(change_set)
                } else {
                    backend_error("GetTemplate", &change_set.change_set, error)
                }
            })?;
        output.template_body().map(str::to_string).ok_or_else(|| {
            Error::backend(
                "GetTemplate",
                &change_set.change_set,
                crate::ErrorClass::Transient,
                "GetTemplate returned no TemplateBody",
            )
        })
    }

    async fn stack_events(
        &self,
        stack: &str,
        after_event_id: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Vec<StackEvent>, Error> {
        let limit = limit.unwrap_or(usize::MAX);
        let mut events = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let output = self
                .client
                .describe_stack_events()
                .stack_name(stack)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|error| stack_error("DescribeStackEvents", stack, error))?;
            for e in output.stack_events() {
                let id = e.event_id().unwrap_or_default();
                if Some(id) == after_event_id || events.len() >= limit {
                    return Ok(events);
                }
                events.push(StackEvent {
                    event_id: id.to_string(),
                    timestamp: e.timestamp().and_then(to_chrono),
                    logical_id: e.logical_resource_id().unwrap_or_default().to_string(),
                    resource_type: e.resource_type().unwrap_or_default().to_string(),
                    status: e
                        .resource_status()
                        .map(|s| s.as_str())
                        .unwrap_or_default()
                        .to_string(),
                    reason: e.resource_status_reason().map(str::to_string),
                    client_request_token: e.client_request_token().map(str::to_string),
                });
            }
            token = next_page(output.next_token());
            if token.is_none() {
                return Ok(events);
            }
        }
    }
}
