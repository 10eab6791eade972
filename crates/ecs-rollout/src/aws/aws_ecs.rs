//! [`AwsEcs`]: [`EcsApi`] over a ready-built `aws_sdk_ecs::Client`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_sdk_ecs::types as sdk;

use super::error_mapping::to_error;
use super::service_mapping::{
    overlay_deployment_configuration, service_deployment_from_sdk, service_from_sdk, task_from_sdk,
};
use super::task_definition_mapping::{register_request, spec_from_sdk};
use crate::api::{
    DesiredStatus, EcsApi, ListTasksRequest, Page, PageToken, RegisteredTaskDefinition,
    ServiceDeploymentInfo, ServiceDescription, StopType, TaskDefinitionStatus, TaskDescription,
    UpdateServiceRequest, UpdateServiceResult, parse_task_definition_arn,
};
use crate::{Error, ResourceKind, Result, TaskDefinitionSpec};

/// Messages of the `ClientException` ECS answers for an unknown task
/// definition (lower case).
const TASK_DEFINITION_MISSING: &[&str] = &[
    "unable to describe task definition",
    "task definition does not exist",
    "revision not found",
    "not found",
];

/// How many task ARNs one `DescribeTasks` call accepts.
const DESCRIBE_TASKS_BATCH: usize = 100;

/// Page size of `ListServiceDeployments`, and the batch size of
/// `DescribeServiceDeployments` (which accepts at most 20 ARNs); every page
/// is read.
const SERVICE_DEPLOYMENTS_PAGE: i32 = 20;

/// [`EcsApi`] over the AWS SDK for Rust.
///
/// Takes a ready-built client: the embedder owns its credentials, region,
/// endpoint and retry configuration, and this backend adds no retry of its
/// own. Errors are classified (see [`Error`]): throttling is `Throttled`,
/// 5xx, timeouts and connection failures `Transient`, everything else
/// `Permanent`; an unknown cluster, service or task definition is
/// [`Error::NotFound`].
///
/// In an application, build the client from `aws_config::load_defaults`;
/// the configuration below is spelled out so the example reads no
/// environment:
///
/// ```no_run
/// # async fn example() -> ecs_rollout::Result<()> {
/// use ecs_rollout::{EcsApi, aws::AwsEcs};
///
/// let config = aws_sdk_ecs::Config::builder()
///     .behavior_version(aws_sdk_ecs::config::BehaviorVersion::latest())
///     .region(aws_sdk_ecs::config::Region::new("eu-west-1"))
///     .build();
/// let ecs = AwsEcs::new(aws_sdk_ecs::Client::from_conf(config));
/// let service = ecs.describe_service("runners", "runner").await?;
/// println!("PRIMARY runs {}", service.task_definition_arn);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct AwsEcs {
    client: aws_sdk_ecs::Client,
    page_size: Option<i32>,
    /// Essential flags per container, per task-definition ARN. A registered
    /// revision never changes, so this cache is never stale.
    essential: Arc<Mutex<HashMap<String, HashMap<String, bool>>>>,
    /// The task definition of each service revision read so far. A service
    /// revision never changes, so `DescribeServiceRevisions` is asked only
    /// for the ones not seen before.
    revisions: Arc<Mutex<HashMap<String, String>>>,
}

/// The per-attempt timeout [`AwsEcs::new`] gives a client that sets none:
/// an ECS call answers in well under a second, so an attempt still
/// unanswered after this hangs (a stalled connection, a black-holed
/// endpoint). It fails as a timeout, a `Transient` error the retry layer
/// retries, so a monitor's timeout holds even when a call hangs.
pub const DEFAULT_ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

impl AwsEcs {
    /// A backend over `client`. A client without an operation-attempt
    /// timeout gets [`DEFAULT_ATTEMPT_TIMEOUT`] (its other settings are
    /// kept); set your own with the client's `timeout_config`.
    pub fn new(client: aws_sdk_ecs::Client) -> Self {
        let config = client.config();
        let timeouts = config.timeout_config();
        let client = if timeouts.is_some_and(|t| t.operation_attempt_timeout().is_some()) {
            client
        } else {
            let timeouts = timeouts
                .map(|t| t.to_builder())
                .unwrap_or_default()
                .operation_attempt_timeout(DEFAULT_ATTEMPT_TIMEOUT)
                .build();
            aws_sdk_ecs::Client::from_conf(config.to_builder().timeout_config(timeouts).build())
        };
        Self {
            client,
            page_size: None,
            essential: Arc::default(),
            revisions: Arc::default(),
        }
    }

    /// Sets the page size (`maxResults`) of `ListTaskDefinitions` and of
    /// `ListTasks` requests that name none. Default: ECS's own (100).
    pub fn with_page_size(mut self, page_size: i32) -> Self {
        self.page_size = Some(page_size);
        self
    }

    /// The SDK client.
    pub fn client(&self) -> &aws_sdk_ecs::Client {
        &self.client
    }

    /// Remembers the essential flags of a revision this backend read or
    /// registered (through `DescribeTaskDefinition` or
    /// `RegisterTaskDefinition`, calls the retry layer retries and counts):
    /// `DescribeTasks` copies them onto its containers and makes no call of
    /// its own to find them.
    fn remember_essential(&self, registered: &RegisteredTaskDefinition) {
        let flags: HashMap<String, bool> = registered
            .spec
            .container_definitions
            .iter()
            .map(|c| (c.name.clone(), c.essential.unwrap_or(true)))
            .collect();
        self.lock_essential().insert(registered.arn.clone(), flags);
    }

    fn lock_revisions(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        // Plain data, as in `lock_essential`.
        self.revisions.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_essential(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<String, bool>>> {
        // The cache holds plain data: a panic elsewhere cannot leave it
        // half-updated, so a poisoned lock is safe to use.
        self.essential.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `DescribeServiceDeployments` of `arns` (20 per request) and
    /// `DescribeServiceRevisions` of the revisions they name (for the task
    /// definitions): the deployments ECS knows and its failures.
    async fn describe_deployment_arns(
        &self,
        arns: &[String],
        resource: &str,
    ) -> Result<(Vec<ServiceDeploymentInfo>, Vec<sdk::Failure>)> {
        if arns.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let mut failures = Vec::new();
        // DescribeServiceDeployments takes at most 20 ARNs per call.
        let mut deployments = Vec::with_capacity(arns.len());
        for batch in arns.chunks(SERVICE_DEPLOYMENTS_PAGE as usize) {
            let described = self
                .client
                .describe_service_deployments()
                .set_service_deployment_arns(Some(batch.to_vec()))
                .send()
                .await
                .map_err(|e| to_error("DescribeServiceDeployments", resource, e, None))?;
            deployments.extend(described.service_deployments.unwrap_or_default());
            failures.extend(described.failures.unwrap_or_default());
        }
        let mut revision_arns: Vec<String> = deployments
            .iter()
            .flat_map(|d| {
                d.target_service_revision
                    .iter()
                    .chain(d.source_service_revisions.iter().flatten())
                    .filter_map(|r| r.arn.clone())
                    .chain(
                        d.rollback
                            .as_ref()
                            .and_then(|r| r.service_revision_arn.clone()),
                    )
            })
            .collect();
        revision_arns.sort();
        revision_arns.dedup();
        let mut task_definitions: HashMap<String, String> = {
            let known = self.lock_revisions();
            revision_arns
                .iter()
                .filter_map(|arn| Some((arn.clone(), known.get(arn)?.clone())))
                .collect()
        };
        revision_arns.retain(|arn| !task_definitions.contains_key(arn));
        for batch in revision_arns.chunks(SERVICE_DEPLOYMENTS_PAGE as usize) {
            let revisions = self
                .client
                .describe_service_revisions()
                .set_service_revision_arns(Some(batch.to_vec()))
                .send()
                .await
                .map_err(|e| to_error("DescribeServiceRevisions", resource, e, None))?;
            for revision in revisions.service_revisions.unwrap_or_default() {
                if let (Some(arn), Some(td)) =
                    (revision.service_revision_arn, revision.task_definition)
                {
                    self.lock_revisions().insert(arn.clone(), td.clone());
                    task_definitions.insert(arn, td);
                }
            }
        }
        let infos = deployments
            .into_iter()
            .map(|d| service_deployment_from_sdk(d, |arn| task_definitions.get(arn).cloned()))
            .collect();
        Ok((infos, failures))
    }
}

fn registered(definition: sdk::TaskDefinition, tags: Vec<sdk::Tag>) -> RegisteredTaskDefinition {
    let status = match definition.status {
        Some(sdk::TaskDefinitionStatus::Inactive) => TaskDefinitionStatus::Inactive,
        Some(sdk::TaskDefinitionStatus::DeleteInProgress) => TaskDefinitionStatus::DeleteInProgress,
        _ => TaskDefinitionStatus::Active,
    };
    RegisteredTaskDefinition {
        arn: definition.task_definition_arn.clone().unwrap_or_default(),
        revision: definition.revision,
        status,
        spec: spec_from_sdk(definition, tags),
    }
}

fn missing_answer(operation: &str, resource: &str, what: &str) -> Error {
    Error::UnexpectedResponse {
        resource: resource.to_owned(),
        reason: format!("{operation} answered without {what}"),
    }
}

#[async_trait]
impl EcsApi for AwsEcs {
    async fn describe_service(&self, cluster: &str, service: &str) -> Result<ServiceDescription> {
        let resource = format!("{cluster}/{service}");
        let out = self
            .client
            .describe_services()
            .cluster(cluster)
            .services(service)
            .send()
            .await
            .map_err(|e| to_error("DescribeServices", &resource, e, None))?;
        if let Some(found) = out.services.unwrap_or_default().into_iter().next() {
            return Ok(service_from_sdk(found));
        }
        // ECS reports an unknown service as a failure with reason MISSING.
        let reasons: Vec<String> = out
            .failures
            .unwrap_or_default()
            .into_iter()
            .map(|f| f.reason.unwrap_or_default())
            .collect();
        if reasons.is_empty() || reasons.iter().any(|r| r == "MISSING") {
            return Err(Error::NotFound {
                kind: ResourceKind::Service,
                name: resource,
            });
        }
        Err(Error::UnexpectedResponse {
            resource,
            reason: format!("DescribeServices failed: {}", reasons.join(", ")),
        })
    }

    async fn describe_services(
        &self,
        cluster: &str,
        services: &[String],
    ) -> Result<Vec<Result<ServiceDescription>>> {
        let out = self
            .client
            .describe_services()
            .cluster(cluster)
            .set_services(Some(services.to_vec()))
            .send()
            .await
            .map_err(|e| to_error("DescribeServices", cluster, e, None))?;
        let found: Vec<ServiceDescription> = out
            .services
            .unwrap_or_default()
            .into_iter()
            .map(service_from_sdk)
            .collect();
        let failures = out.failures.unwrap_or_default();
        // ECS answers in no promised order: match each name (or ARN) asked.
        Ok(services
            .iter()
            .map(|asked| {
                let resource = format!("{cluster}/{asked}");
                let named = |name: &str, arn: &str| {
                    name == asked || arn == asked || arn.ends_with(&format!("/{asked}"))
                };
                if let Some(service) = found
                    .iter()
                    .find(|s| named(&s.service_name, &s.service_arn))
                {
                    return Ok(service.clone());
                }
                let failure = failures
                    .iter()
                    .find(|f| named("", f.arn.as_deref().unwrap_or_default()));
                match failure.and_then(|f| f.reason.as_deref()) {
                    None | Some("MISSING") => Err(Error::NotFound {
                        kind: ResourceKind::Service,
                        name: resource,
                    }),
                    Some(reason) => Err(Error::UnexpectedResponse {
                        resource,
                        reason: format!("DescribeServices failed: {reason}"),
                    }),
                }
            })
            .collect())
    }

    async fn describe_task_definition(
        &self,
        task_definition: &str,
    ) -> Result<RegisteredTaskDefinition> {
        let out = self
            .client
            .describe_task_definition()
            .task_definition(task_definition)
            .include(sdk::TaskDefinitionField::Tags)
            .send()
            .await
            .map_err(|e| {
                to_error(
                    "DescribeTaskDefinition",
                    task_definition,
                    e,
                    Some((ResourceKind::TaskDefinition, TASK_DEFINITION_MISSING)),
                )
            })?;
        let definition = out.task_definition.ok_or_else(|| {
            missing_answer(
                "DescribeTaskDefinition",
                task_definition,
                "a task definition",
            )
        })?;
        let registered = registered(definition, out.tags.unwrap_or_default());
        self.remember_essential(&registered);
        Ok(registered)
    }

    async fn register_task_definition(
        &self,
        spec: &TaskDefinitionSpec,
    ) -> Result<RegisteredTaskDefinition> {
        let request =
            register_request(self.client.register_task_definition(), spec).map_err(|e| {
                Error::InvalidTaskDefinition {
                    task_definition: spec.family.clone(),
                    reason: format!("cannot build RegisterTaskDefinition: {e}"),
                }
            })?;
        let out = request
            .send()
            .await
            .map_err(|e| to_error("RegisterTaskDefinition", &spec.family, e, None))?;
        let definition = out.task_definition.ok_or_else(|| {
            missing_answer("RegisterTaskDefinition", &spec.family, "a task definition")
        })?;
        let mut registered = registered(definition, out.tags.unwrap_or_default());
        // Tags are applied atomically with the registration; ECS echoes them
        // but not every ECS-compatible endpoint does (moto does not).
        if registered.spec.tags.is_empty() {
            registered.spec.tags = spec.tags.clone();
        }
        self.remember_essential(&registered);
        Ok(registered)
    }

    async fn tag_resource(&self, arn: &str, tags: &BTreeMap<String, String>) -> Result<()> {
        if tags.is_empty() {
            return Ok(());
        }
        let tags = tags
            .iter()
            .map(|(k, v)| sdk::Tag::builder().key(k).value(v).build())
            .collect();
        self.client
            .tag_resource()
            .resource_arn(arn)
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| {
                to_error(
                    "TagResource",
                    arn,
                    e,
                    Some((ResourceKind::TaskDefinition, TASK_DEFINITION_MISSING)),
                )
            })?;
        Ok(())
    }

    async fn deregister_task_definition(&self, arn: &str) -> Result<()> {
        let result = self
            .client
            .deregister_task_definition()
            .task_definition(arn)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) => {
                let error = to_error(
                    "DeregisterTaskDefinition",
                    arn,
                    error,
                    Some((ResourceKind::TaskDefinition, TASK_DEFINITION_MISSING)),
                );
                // Deregistering an INACTIVE revision is a no-op by contract.
                if let Error::Api { message, .. } = &error
                    && message.to_ascii_lowercase().contains("inactive")
                {
                    return Ok(());
                }
                Err(error)
            }
        }
    }

    async fn list_task_definition_revisions(
        &self,
        family: &str,
        next_token: PageToken,
    ) -> Result<Page<String>> {
        let out = self
            .client
            .list_task_definitions()
            .family_prefix(family)
            .status(sdk::TaskDefinitionStatus::Active)
            .sort(sdk::SortOrder::Asc)
            .set_max_results(self.page_size)
            .set_next_token(next_token)
            .send()
            .await
            .map_err(|e| to_error("ListTaskDefinitions", family, e, None))?;
        // `familyPrefix` is a prefix: keep only this exact family.
        let items = out
            .task_definition_arns
            .unwrap_or_default()
            .into_iter()
            .filter(|arn| parse_task_definition_arn(arn).is_some_and(|(f, _)| f == family))
            .collect();
        Ok(Page {
            items,
            next_token: out.next_token,
        })
    }

    async fn update_service(&self, request: &UpdateServiceRequest) -> Result<UpdateServiceResult> {
        let resource = format!("{}/{}", request.cluster, request.service);
        let deployment_configuration = match &request.deployment_configuration {
            None => None,
            Some(wanted) => {
                // Read the service's configuration so that everything we do
                // not set (alarms, strategy, bake time, hooks) is kept.
                let current = self
                    .client
                    .describe_services()
                    .cluster(&request.cluster)
                    .services(&request.service)
                    .send()
                    .await
                    .map_err(|e| to_error("DescribeServices", &resource, e, None))?
                    .services
                    .unwrap_or_default()
                    .into_iter()
                    .next()
                    .ok_or_else(|| Error::NotFound {
                        kind: ResourceKind::Service,
                        name: resource.clone(),
                    })?
                    .deployment_configuration;
                Some(overlay_deployment_configuration(current, wanted))
            }
        };
        let out = self
            .client
            .update_service()
            .cluster(&request.cluster)
            .service(&request.service)
            .task_definition(&request.task_definition)
            .set_deployment_configuration(deployment_configuration)
            .force_new_deployment(request.force_new_deployment)
            .send()
            .await
            .map_err(|e| {
                to_error(
                    "UpdateService",
                    &resource,
                    e,
                    Some((ResourceKind::TaskDefinition, TASK_DEFINITION_MISSING)),
                )
            })?;
        let service = service_from_sdk(
            out.service
                .ok_or_else(|| missing_answer("UpdateService", &resource, "a service"))?,
        );
        let deployment_id = service
            .primary()
            .map(|d| d.id.clone())
            .ok_or_else(|| missing_answer("UpdateService", &resource, "a PRIMARY deployment"))?;
        Ok(UpdateServiceResult {
            deployment_id,
            service,
        })
    }

    async fn list_tasks(&self, request: &ListTasksRequest) -> Result<Page<String>> {
        let resource = format!("{}/{}", request.cluster, request.service);
        let desired = match request.desired_status {
            DesiredStatus::Running => sdk::DesiredStatus::Running,
            DesiredStatus::Stopped => sdk::DesiredStatus::Stopped,
        };
        let list = self.client.list_tasks().cluster(&request.cluster);
        // `startedBy` must be the only filter: RUNNING, ECS's default.
        let list = match &request.started_by {
            Some(started_by) => list.started_by(started_by),
            None => list.service_name(&request.service).desired_status(desired),
        };
        let out = list
            .set_max_results(request.max_results.or(self.page_size))
            .set_next_token(request.next_token.clone())
            .send()
            .await
            .map_err(|e| to_error("ListTasks", &resource, e, None))?;
        Ok(Page {
            items: out.task_arns.unwrap_or_default(),
            next_token: out.next_token,
        })
    }

    async fn describe_tasks(
        &self,
        cluster: &str,
        task_arns: &[String],
    ) -> Result<Vec<TaskDescription>> {
        let mut tasks = Vec::with_capacity(task_arns.len());
        for batch in task_arns.chunks(DESCRIBE_TASKS_BATCH) {
            let out = self
                .client
                .describe_tasks()
                .cluster(cluster)
                .set_tasks(Some(batch.to_vec()))
                .send()
                .await
                .map_err(|e| to_error("DescribeTasks", cluster, e, None))?;
            for task in out.tasks.unwrap_or_default() {
                // Known for the revisions this backend read or registered;
                // unknown (`None`, treat as essential) for the others.
                let flags = task
                    .task_definition_arn
                    .as_deref()
                    .and_then(|arn| self.lock_essential().get(arn).cloned())
                    .unwrap_or_default();
                tasks.push(task_from_sdk(task, &flags));
            }
        }
        Ok(tasks)
    }

    async fn describe_service_deployments(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<Vec<ServiceDeploymentInfo>> {
        let resource = format!("{cluster}/{service}");
        // Every page of the history.
        let mut arns: Vec<String> = Vec::new();
        let mut next_token = None;
        loop {
            let listed = self
                .client
                .list_service_deployments()
                .cluster(cluster)
                .service(service)
                .max_results(SERVICE_DEPLOYMENTS_PAGE)
                .set_next_token(next_token)
                .send()
                .await
                .map_err(|e| to_error("ListServiceDeployments", &resource, e, None))?;
            arns.extend(
                listed
                    .service_deployments
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|d| d.service_deployment_arn),
            );
            match listed.next_token {
                Some(token) if !token.is_empty() => next_token = Some(token),
                _ => break,
            }
        }
        let (mut infos, _) = self.describe_deployment_arns(&arns, &resource).await?;
        infos.sort_by_key(|d| std::cmp::Reverse(d.started_at));
        Ok(infos)
    }

    async fn describe_service_deployments_by_arn(
        &self,
        arns: &[String],
    ) -> Result<Vec<Result<ServiceDeploymentInfo>>> {
        let resource = arns.first().cloned().unwrap_or_default();
        let (infos, failures) = self.describe_deployment_arns(arns, &resource).await?;
        Ok(arns
            .iter()
            .map(|arn| {
                if let Some(info) = infos.iter().find(|d| &d.arn == arn) {
                    return Ok(info.clone());
                }
                match failures
                    .iter()
                    .find(|f| f.arn.as_deref() == Some(arn.as_str()))
                {
                    Some(failure) if failure.reason.as_deref() != Some("MISSING") => {
                        Err(Error::UnexpectedResponse {
                            resource: arn.clone(),
                            reason: format!(
                                "DescribeServiceDeployments failed: {} {}",
                                failure.reason.as_deref().unwrap_or("(no reason)"),
                                failure.detail.as_deref().unwrap_or("")
                            ),
                        })
                    }
                    _ => Err(Error::NotFound {
                        kind: ResourceKind::Deployment,
                        name: arn.clone(),
                    }),
                }
            })
            .collect())
    }

    async fn stop_service_deployment(
        &self,
        service_deployment_arn: &str,
        stop_type: StopType,
    ) -> Result<()> {
        let stop_type = match stop_type {
            StopType::Rollback => sdk::StopServiceDeploymentStopType::Rollback,
            StopType::Abort => sdk::StopServiceDeploymentStopType::Abort,
        };
        self.client
            .stop_service_deployment()
            .service_deployment_arn(service_deployment_arn)
            .stop_type(stop_type)
            .send()
            .await
            .map_err(|e| to_error("StopServiceDeployment", service_deployment_arn, e, None))?;
        Ok(())
    }
}
