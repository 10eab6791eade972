//! Watching a deployment someone recorded (an orchestrator's journal, an
//! earlier `MonitoringLost`) to an outcome.

use serde::{Deserialize, Serialize};

use super::{Rollout, RolloutRequest, Tracked};
use crate::{EcsApi, Error, ResourceKind, Result, RolloutReport, RolloutTarget};

/// A deployment of ours that was recorded: what [`Rollout::watch`] resumes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RecordedDeployment {
    /// The deployment id (`ecs-svc/…`) `UpdateService` returned; empty when
    /// only the service deployment was recorded (it is then looked up by
    /// its task definition among the service's deployments).
    pub deployment_id: String,
    /// Its service-deployment ARN (`RolloutEvidence::service_deployment_arn`),
    /// if recorded: judged by its status where the API exists.
    pub service_deployment_arn: Option<String>,
    /// The task definition it deploys.
    pub task_definition_arn: String,
    /// The task definition the service ran before (the rollback target).
    pub previous_task_definition_arn: String,
}

impl Rollout {
    /// Resumes watching `deployment` (recorded after its `UpdateService`)
    /// and ends with an outcome, exactly as [`Rollout::run`] does after its
    /// own `UpdateService`: the verdict (by the service deployment's status
    /// where the API exists, else by `DescribeServices`), a rollback when
    /// needed (ours, or watching ECS's), marking, the quarantine notice and
    /// retention, every step put to the [`StepGate`](crate::StepGate).
    /// Never registers or deploys anything new.
    ///
    /// The version for the quarantine notice is read from the deployed
    /// task definition (its version label, else its image tag).
    ///
    /// Errors: a task definition that cannot be read; a deployed revision
    /// without a runner container or a readable version
    /// ([`Error::InvalidTaskDefinition`]); an empty `deployment_id` that no
    /// deployment of the service matches ([`Error::NotFound`] of kind
    /// `Deployment`: ECS no longer lists it, so there is nothing to watch).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use ecs_rollout::{
    ///     ContainerDefinition, DeploymentConfiguration, EcsApi, RecordedDeployment, Rollout,
    ///     RolloutConfig, RolloutOutcome, RolloutTarget, ServiceSetup, SimulatedEcs,
    ///     TaskDefinitionSpec, UpdateServiceRequest,
    /// };
    /// use update_clock::ManualClock;
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let clock = Arc::new(ManualClock::auto_advancing(ManualClock::EPOCH_2025));
    /// let ecs = Arc::new(SimulatedEcs::new(clock.clone(), 1));
    /// let spec = |image: &str| TaskDefinitionSpec {
    ///     family: "runner".into(),
    ///     container_definitions: vec![ContainerDefinition {
    ///         name: "runner".into(),
    ///         image: image.into(),
    ///         ..Default::default()
    ///     }],
    ///     ..Default::default()
    /// };
    /// let previous = ecs.create_service(ServiceSetup {
    ///     cluster: "runners".into(),
    ///     service: "runner".into(),
    ///     desired_count: 2,
    ///     deployment_configuration: DeploymentConfiguration::safe_rolling(),
    ///     task_definition: spec("example.com/runner:20250101.1"),
    /// }).unwrap();
    /// ecs.enable_service_deployments(true);
    ///
    /// // An earlier process deployed and recorded the deployment, then died.
    /// let new = ecs.register_task_definition(&spec("example.com/runner:20250102.1")).await.unwrap();
    /// let update = ecs.update_service(&UpdateServiceRequest {
    ///     cluster: "runners".into(),
    ///     service: "runner".into(),
    ///     task_definition: new.arn.clone(),
    ///     ..Default::default()
    /// }).await.unwrap();
    ///
    /// let rollout = Rollout::new(ecs.clone(), clock, RolloutConfig::default()).unwrap();
    /// let report = rollout.watch(&RolloutTarget::new("runners", "runner"), &RecordedDeployment {
    ///     deployment_id: update.deployment_id.clone(),
    ///     service_deployment_arn: None,
    ///     task_definition_arn: new.arn.clone(),
    ///     previous_task_definition_arn: previous,
    /// }).await.unwrap();
    /// let RolloutOutcome::Succeeded { evidence } = &report.outcome else { panic!() };
    /// assert_eq!(evidence.deployment_id, update.deployment_id);
    /// assert!(evidence.service_deployment_arn.is_some());
    /// # });
    /// ```
    pub async fn watch(
        &self,
        target: &RolloutTarget,
        deployment: &RecordedDeployment,
    ) -> Result<RolloutReport> {
        let start = self.clock.monotonic();
        let previous = self
            .ecs
            .describe_task_definition(&deployment.previous_task_definition_arn)
            .await?;
        let new_td = self
            .ecs
            .describe_task_definition(&deployment.task_definition_arn)
            .await?;
        let runner = crate::RunningRunner::from_task_definition(
            &new_td,
            &self.config.runner_container,
            self.config.version_label.as_deref(),
        )?;
        let image = runner
            .image_ref
            .clone()
            .ok_or_else(|| Error::InvalidTaskDefinition {
                task_definition: new_td.arn.clone(),
                reason: format!(
                    "the runner image {} is not a valid image reference",
                    runner.image
                ),
            })?;
        let version = runner.version.ok_or_else(|| Error::InvalidTaskDefinition {
            task_definition: new_td.arn.clone(),
            reason: "the runner container has no version (label or image tag); set \
                     RolloutConfig::version_label to the label that carries it"
                .into(),
        })?;
        let request = RolloutRequest { image, version };
        let deployment_id = if deployment.deployment_id.is_empty() {
            let service = self
                .ecs
                .describe_service(&target.cluster, &target.service)
                .await?;
            super::deployment_of(&service, &new_td.arn)
                .map(|d| d.id.clone())
                .ok_or_else(|| Error::NotFound {
                    kind: ResourceKind::Deployment,
                    name: format!(
                        "{}/{}: a deployment of {}",
                        target.cluster, target.service, new_td.arn
                    ),
                })?
        } else {
            deployment.deployment_id.clone()
        };
        self.conclude(Tracked {
            target,
            request: &request,
            new_td: &new_td,
            previous: &previous,
            deployment_id,
            service_deployment_arn: deployment.service_deployment_arn.clone(),
            configuration_problems: Vec::new(),
            configuration_changes: Vec::new(),
            start,
        })
        .await
    }
}
