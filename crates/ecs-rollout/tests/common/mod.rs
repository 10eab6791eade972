//! Shared fixture of the scenario tests: a simulated ECS with one runner
//! service, an auto-advancing manual clock and a recording progress sink.
#![allow(dead_code)]

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};

use ecs_rollout::{
    ContainerDefinition, DeploymentConfiguration, EcsApi, Error, HealthCheck, ImageBehaviour,
    RecordedProgress, RegisteredTaskDefinition, Rollout, RolloutConfig, RolloutReport,
    RolloutRequest, RolloutTarget, ServiceSetup, SimTimings, SimulatedEcs, TaskDefinitionSpec,
    UpdateServiceRequest, UpdateServiceResult,
};
use runner_version::{ImageRef, Version};
use update_clock::ManualClock;

pub const OLD_IMAGE: &str = "registry.example.com:5000/team/runner:20250101.1";
pub const NEW_IMAGE: &str = "registry.example.com:5000/team/runner:20250102.1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
pub const LABEL: &str = "org.opencontainers.image.version";

pub fn runner_spec(image: &str) -> TaskDefinitionSpec {
    TaskDefinitionSpec {
        family: "gitpod-runner".into(),
        container_definitions: vec![
            ContainerDefinition {
                name: "runner".into(),
                image: image.into(),
                essential: Some(true),
                docker_labels: BTreeMap::from([(LABEL.into(), "20250101.1".into())]),
                health_check: Some(HealthCheck {
                    command: vec![
                        "CMD-SHELL".into(),
                        "curl -f http://localhost:8080/healthz || exit 1".into(),
                    ],
                    interval: Some(10),
                    timeout: Some(5),
                    retries: Some(3),
                    start_period: Some(20),
                }),
                ..Default::default()
            },
            ContainerDefinition {
                name: "proxy".into(),
                image: "registry.example.com:5000/team/proxy:20250101.1".into(),
                essential: Some(true),
                ..Default::default()
            },
        ],
        tags: BTreeMap::from([("team".into(), "runners".into())]),
        execution_role_arn: Some("arn:aws:iam::123456789012:role/runner-exec".into()),
        cpu: Some("1024".into()),
        memory: Some("2048".into()),
        ..Default::default()
    }
}

pub struct Fixture {
    pub clock: Arc<ManualClock>,
    pub sim: Arc<SimulatedEcs>,
    pub target: RolloutTarget,
    pub progress: RecordedProgress,
    pub old_task_definition: String,
}

impl Fixture {
    pub fn new(desired: i32, deployment_configuration: DeploymentConfiguration) -> Self {
        Self::with_spec(desired, deployment_configuration, runner_spec(OLD_IMAGE))
    }

    pub fn with_spec(
        desired: i32,
        deployment_configuration: DeploymentConfiguration,
        task_definition: TaskDefinitionSpec,
    ) -> Self {
        Self::with_timings(
            desired,
            deployment_configuration,
            task_definition,
            SimTimings::default(),
        )
    }

    /// As [`Fixture::with_spec`], on a simulator with `timings`.
    pub fn with_timings(
        desired: i32,
        deployment_configuration: DeploymentConfiguration,
        task_definition: TaskDefinitionSpec,
        timings: SimTimings,
    ) -> Self {
        let clock = Arc::new(ManualClock::auto_advancing(ManualClock::EPOCH_2025));
        let sim = Arc::new(SimulatedEcs::new(clock.clone(), 42).with_timings(timings));
        let old_task_definition = sim
            .create_service(ServiceSetup {
                cluster: "runners".into(),
                service: "runner".into(),
                task_definition,
                desired_count: desired,
                deployment_configuration,
            })
            .unwrap();
        Self {
            clock,
            sim,
            target: RolloutTarget::new("runners", "runner"),
            progress: RecordedProgress::new(),
            old_task_definition,
        }
    }

    pub fn safe(desired: i32) -> Self {
        Self::new(desired, DeploymentConfiguration::safe_rolling())
    }

    /// A safe-rolling service whose runner container has no health check:
    /// ECS calls a deployment complete as soon as its tasks run.
    pub fn safe_without_health_check(desired: i32) -> Self {
        let mut spec = runner_spec(OLD_IMAGE);
        spec.container_definitions[0].health_check = None;
        Self::with_spec(desired, DeploymentConfiguration::safe_rolling(), spec)
    }

    /// A safe-rolling service that is busy: a deployment of another runner
    /// revision (`:other`) is in progress.
    pub async fn safe_and_busy(desired: i32) -> Self {
        let fx = Self::safe(desired);
        fx.busy_with("registry.example.com:5000/team/runner:other")
            .await;
        fx
    }

    /// Someone else deploys a runner revision with `image` (registered for
    /// it): the service is busy until that deployment completes.
    pub async fn busy_with(&self, image: &str) {
        let other = self
            .sim
            .register_task_definition(&runner_spec(image))
            .await
            .unwrap();
        self.sim
            .update_service(&UpdateServiceRequest {
                cluster: "runners".into(),
                service: "runner".into(),
                task_definition: other.arn,
                ..Default::default()
            })
            .await
            .unwrap();
    }

    /// Scripts the behaviour of the new runner image (as the engine writes it).
    pub fn new_image_behaves(&self, behaviour: ImageBehaviour) {
        self.sim.script_image(&new_image().to_string(), behaviour);
    }

    pub fn rollout(&self, config: RolloutConfig) -> Rollout {
        Rollout::new(self.sim.clone(), self.clock.clone(), config)
            .unwrap()
            .with_progress(Arc::new(self.progress.clone()))
    }

    /// Rolls the target out to `request()` with `config`; the run must not fail.
    pub async fn run(&self, config: RolloutConfig) -> RolloutReport {
        self.rollout(config)
            .run(&self.target, &request())
            .await
            .unwrap()
    }

    /// What an earlier run did before it died: registered the running
    /// revision's clone with the new image (as the engine writes it) and
    /// deployed it with `UpdateService`.
    pub async fn deploy_by_hand(&self) -> (RegisteredTaskDefinition, UpdateServiceResult) {
        let old = self
            .sim
            .peek_task_definition(&self.old_task_definition)
            .unwrap();
        let spec = old
            .spec
            .with_runner_image(
                "runner",
                &request().image,
                Some((LABEL, &request().version)),
            )
            .unwrap();
        let new = self.sim.register_task_definition(&spec).await.unwrap();
        let updated = self
            .sim
            .update_service(&UpdateServiceRequest {
                cluster: "runners".into(),
                service: "runner".into(),
                task_definition: new.arn.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
        (new, updated)
    }

    /// When ECS completed `deployment_id` (its "deployment completed"
    /// event), as clock time since `start`.
    pub fn completed_since(&self, deployment_id: &str, start: DateTime<Utc>) -> Option<Duration> {
        let service = self.sim.peek_service("runners", "runner").unwrap();
        let event = service.events.iter().find(|e| {
            e.message.contains(deployment_id) && e.message.contains("deployment completed")
        })?;
        (event.created_at? - start).to_std().ok()
    }

    /// Rolls the target out to `request()` with `config`; the run must fail.
    pub async fn run_err(&self, config: RolloutConfig) -> Error {
        self.rollout(config)
            .run(&self.target, &request())
            .await
            .unwrap_err()
    }
}

pub fn new_image() -> ImageRef {
    ImageRef::parse(NEW_IMAGE).unwrap()
}

pub fn request() -> RolloutRequest {
    RolloutRequest {
        image: new_image(),
        version: Version::parse("20250102.1").unwrap(),
    }
}
