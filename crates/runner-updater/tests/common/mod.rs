//! Shared fixture: a simulated ECS with a runner and a proxy service, an
//! in-memory lock, journal and quarantine, a static release source, and an
//! auto-advancing manual clock (a 30-minute rollout takes no real time).
#![allow(dead_code)]

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use ecs_rollout::{
    ContainerDefinition, DeploymentConfiguration, EcsApi, HealthCheck, ImageBehaviour,
    ServiceSetup, SimulatedEcs, TaskDefinitionSpec,
};
use runner_updater::{
    InfraVersionSource, Journal, MemoryJournal, MemoryQuarantine, ReleaseImage, Target, Updater,
    UpdaterConfig,
};
use runner_version::{Channel, ImageRef, Release, ReleaseVerifier, StaticSource};
use update_clock::ManualClock;
use update_lock::{Lease, LeaseLock, LockConfig, MemoryLockStore, UpdateLock};

pub const LABEL: &str = "org.opencontainers.image.version";
pub const RUNNER_KEY: &str = "runners/runner";

pub fn runner_image(version: &str, byte: &str) -> String {
    format!(
        "registry.example.com/gitpod/runner:{version}@sha256:{}",
        byte.repeat(32)
    )
}

pub fn proxy_image(version: &str, byte: &str) -> String {
    format!(
        "registry.example.com/gitpod/proxy:{version}@sha256:{}",
        byte.repeat(32)
    )
}

pub fn spec(family: &str, container: &str, image: &str, version: &str) -> TaskDefinitionSpec {
    TaskDefinitionSpec {
        family: family.into(),
        container_definitions: vec![ContainerDefinition {
            name: container.into(),
            image: image.into(),
            essential: Some(true),
            docker_labels: BTreeMap::from([(LABEL.into(), version.into())]),
            health_check: Some(HealthCheck {
                command: vec![
                    "CMD-SHELL".into(),
                    "curl -f http://localhost/healthz".into(),
                ],
                interval: Some(10),
                timeout: Some(5),
                retries: Some(3),
                start_period: Some(20),
            }),
            secrets: vec![],
            ..Default::default()
        }],
        execution_role_arn: Some("arn:aws:iam::123456789012:role/runner-exec".into()),
        cpu: Some("512".into()),
        memory: Some("1024".into()),
        ..Default::default()
    }
}

pub fn release(version: &str, byte: &str, infra: &str) -> Release {
    Release {
        version: version.parse().unwrap(),
        channel: Channel::Stable,
        image: ImageRef::parse(&runner_image(version, byte)).unwrap(),
        proxy_image: Some(ImageRef::parse(&proxy_image(version, byte)).unwrap()),
        infra_version: Some(infra.into()),
        template_url: format!("https://s3.amazonaws.com/releases/{infra}/runner.json"),
        template_sha256: None,
        released_at: None,
        expires: None,
        waves: Default::default(),
    }
}

pub struct Fixture {
    pub clock: Arc<ManualClock>,
    pub sim: Arc<SimulatedEcs>,
    pub locks: MemoryLockStore,
    pub journal: MemoryJournal,
    pub quarantine: MemoryQuarantine,
    pub source: Arc<StaticSource>,
    pub runner_td: String,
    pub proxy_td: String,
}

impl Fixture {
    pub fn new() -> Self {
        Self::with_desired(2)
    }

    /// Both services with `desired` tasks.
    pub fn with_desired(desired: i32) -> Self {
        let clock = Arc::new(ManualClock::auto_advancing(ManualClock::EPOCH_2025));
        let sim = Arc::new(SimulatedEcs::new(clock.clone(), 11));
        let runner_td = sim
            .create_service(ServiceSetup {
                cluster: "runners".into(),
                service: "runner".into(),
                task_definition: spec(
                    "runner",
                    "runner",
                    &runner_image("20250101.1", "01"),
                    "20250101.1",
                ),
                desired_count: desired,
                deployment_configuration: DeploymentConfiguration::safe_rolling(),
            })
            .unwrap();
        let proxy_td = sim
            .create_service(ServiceSetup {
                cluster: "runners".into(),
                service: "proxy".into(),
                task_definition: spec(
                    "proxy",
                    "proxy",
                    &proxy_image("20250101.1", "01"),
                    "20250101.1",
                ),
                desired_count: desired,
                deployment_configuration: DeploymentConfiguration::safe_rolling(),
            })
            .unwrap();
        let verifier = ReleaseVerifier::builder().allow_unsigned().build().unwrap();
        let locks = MemoryLockStore::new();
        Self {
            journal: MemoryJournal::new(locks.clone()),
            locks,
            quarantine: MemoryQuarantine::default(),
            source: Arc::new(StaticSource::new(verifier)),
            clock,
            sim,
            runner_td,
            proxy_td,
        }
    }

    pub fn targets() -> Vec<Target> {
        vec![
            Target::new(
                "runner",
                "runners",
                "runner",
                "runner",
                ReleaseImage::Runner,
            ),
            Target::new("proxy", "runners", "proxy", "proxy", ReleaseImage::Proxy),
        ]
    }

    pub fn config(owner: &str) -> UpdaterConfig {
        let mut config = UpdaterConfig::new(RUNNER_KEY, owner, Self::targets());
        config.lease = Lease::new(Duration::from_secs(300))
            .unwrap()
            .without_heartbeat();
        config.step_budget = Duration::from_secs(30);
        config.rollout.monitor.bake_time = Duration::from_secs(60);
        config
    }

    pub fn lock(&self) -> Arc<dyn UpdateLock> {
        Arc::new(
            LeaseLock::new(
                self.locks.clone(),
                self.clock.clone(),
                LockConfig::default(),
            )
            .unwrap(),
        )
    }

    pub fn updater(&self, owner: &str) -> Updater {
        self.updater_with(owner, Arc::new(self.journal.clone()), Self::config(owner))
    }

    pub fn updater_with(
        &self,
        _owner: &str,
        journal: Arc<dyn Journal>,
        config: UpdaterConfig,
    ) -> Updater {
        Updater::builder()
            .source(self.source.clone())
            .lock(self.lock())
            .journal(journal)
            .quarantine(Arc::new(self.quarantine.clone()))
            .ecs(self.sim.clone())
            .infra(InfraVersionSource::Fixed("7".into()))
            .clock(self.clock.clone())
            .config(config)
            .build()
            .unwrap()
    }

    pub fn publish(&self, release: Release) {
        self.source.publish(release);
    }

    pub fn script(&self, image: &str, behaviour: ImageBehaviour) {
        self.sim.script_image(image, behaviour);
    }

    /// The image the PRIMARY deployment of `service` runs.
    pub async fn primary_image(&self, service: &str) -> String {
        let svc = self.sim.describe_service("runners", service).await.unwrap();
        let td = self
            .sim
            .peek_task_definition(&svc.task_definition_arn)
            .unwrap();
        td.spec.container_definitions[0].image.clone()
    }

    /// An operator points `service` at `task_definition` by hand (an
    /// `UpdateService` outside the updater, e.g. a manual rollback).
    pub async fn operator_deploys(&self, service: &str, task_definition: &str) {
        self.sim
            .update_service(&ecs_rollout::UpdateServiceRequest {
                cluster: "runners".into(),
                service: service.into(),
                task_definition: task_definition.into(),
                ..Default::default()
            })
            .await
            .unwrap();
    }

    pub fn calls(&self, op: &str) -> u64 {
        self.sim.calls().get(op).copied().unwrap_or(0)
    }

    /// Every state-changing ECS call made so far.
    pub fn mutations(&self) -> u64 {
        [
            "RegisterTaskDefinition",
            "UpdateService",
            "TagResource",
            "DeregisterTaskDefinition",
        ]
        .iter()
        .map(|op| self.calls(op))
        .sum()
    }
}

impl Fixture {
    pub async fn journal_entry(&self) -> runner_updater::JournalEntry {
        self.journal
            .load(RUNNER_KEY)
            .await
            .unwrap()
            .expect("a journal entry")
    }

    /// The updater of a restarted task (`owner`), waiting out a dead
    /// holder's lease, on the shared journal.
    pub fn resumer(&self, owner: &str) -> Updater {
        let mut config = Self::config(owner);
        config.lock_wait = Duration::from_secs(600);
        self.updater_with(owner, Arc::new(self.journal.clone()), config)
    }

    pub fn updater_result(&self, config: UpdaterConfig) -> runner_updater::Result<Updater> {
        Updater::builder()
            .source(self.source.clone())
            .lock(self.lock())
            .journal(Arc::new(self.journal.clone()))
            .quarantine(Arc::new(self.quarantine.clone()))
            .ecs(self.sim.clone())
            .infra(InfraVersionSource::Fixed("7".into()))
            .clock(self.clock.clone())
            .config(config)
            .build()
    }
}
