//! Embedding `runner-updater` (`cargo run -p updater-examples --bin embed-updater`): a custom
//! release source and a custom lock store in `Updater`, one cycle on the simulated ECS.

use std::sync::{Arc, atomic::AtomicU64, atomic::Ordering::Relaxed};

use async_trait::async_trait;
use ecs_rollout::{ContainerDefinition, ServiceSetup, SimulatedEcs, TaskDefinitionSpec};
use runner_updater::{InfraVersionSource as Infra, MemoryJournal, MemoryQuarantine, ReleaseImage};
use runner_updater::{Target, Updater, UpdaterConfig};
use runner_version::{Channel, Release, ReleaseCheck, ReleaseSource, ReleaseVerifier};
use update_clock::ManualClock;
use update_lock::{Lease, LeaseLock, LockConfig, LockError, LockRecord, LockStore};
use update_lock::{MemoryLockStore, WriteCondition, WriteOutcome};

/// A release source of one's own: here, always the same release. What it
/// hands out must be admitted by a verifier (a bare release carries no
/// signature, so only an `allow_unsigned()` verifier admits it; signed bytes
/// would go through `verify`).
#[derive(Debug)]
struct FixedRelease(Release, ReleaseVerifier);

#[async_trait]
impl ReleaseSource for FixedRelease {
    async fn check(&self, channel: &Channel) -> Result<ReleaseCheck, runner_version::Error> {
        Ok(ReleaseCheck::Fetched(
            self.1.admit(self.0.clone(), channel).await?,
        ))
    }
}

/// A lock store of one's own: the in-memory store, counting its writes.
#[derive(Debug, Default)]
struct CountingStore(MemoryLockStore, AtomicU64);

#[async_trait]
impl LockStore for CountingStore {
    fn backend_name(&self) -> &'static str {
        "counting-memory"
    }
    async fn load(&self, key: &str) -> Result<Option<LockRecord>, LockError> {
        self.0.load(key).await
    }
    async fn write(&self, r: &LockRecord, c: &WriteCondition) -> Result<WriteOutcome, LockError> {
        self.1.fetch_add(1, Relaxed);
        self.0.write(r, c).await
    }
}

fn image(version: &str, n: u8) -> String {
    let digest = format!("{n:02x}").repeat(32);
    format!("registry.example.com/runner:{version}@sha256:{digest}")
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let clock = Arc::new(ManualClock::auto_advancing(ManualClock::EPOCH_2025));
    let ecs = Arc::new(SimulatedEcs::new(clock.clone(), 3));
    ecs.create_service(ServiceSetup {
        cluster: "runners".into(),
        service: "runner".into(),
        desired_count: 2,
        deployment_configuration: ecs_rollout::DeploymentConfiguration::safe_rolling(),
        task_definition: TaskDefinitionSpec {
            family: "runner".into(),
            container_definitions: vec![ContainerDefinition {
                name: "runner".into(),
                image: image("20250101.1", 1),
                ..Default::default()
            }],
            ..Default::default()
        },
    })?;
    let release: Release = serde_json::from_value(serde_json::json!({
        "version": "20250102.1", "channel": "stable", "image": image("20250102.1", 2),
        "infra_version": "7", "template_url": "https://s3.amazonaws.com/releases/runner.json"
    }))?;
    let unsigned = ReleaseVerifier::builder()
        .allow_unsigned()
        .clock(clock.clone())
        .build()?;
    let store = Arc::new(CountingStore::default());
    let lock = LeaseLock::new(store.clone(), clock.clone(), LockConfig::default())?;
    // No version label: the version is read from the image tag.
    let r = "runner";
    let targets =
        vec![Target::new(r, "runners", r, r, ReleaseImage::Runner).without_version_label()];
    let mut config = UpdaterConfig::new("runners/runner", "embedder-1", targets);
    // The clock jumps, so no background heartbeat: the lease is renewed per step.
    config.lease = Lease::new(std::time::Duration::from_secs(600))?.without_heartbeat();
    let updater = Updater::builder()
        .source(Arc::new(FixedRelease(release, unsigned)))
        .lock(Arc::new(lock))
        .journal(Arc::new(MemoryJournal::new(store.0.clone()))) // fenced by the lock's records
        .quarantine(Arc::new(MemoryQuarantine::default()))
        .ecs(ecs)
        .infra(Infra::Fixed("7".into()))
        .clock(clock)
        .config(config)
        .build()?;
    let report = updater.run_once().await?;
    println!("{}", report.summary());
    let (code, writes) = (report.outcome.code(), store.1.load(Relaxed));
    let steps = report.journalled.join(" → ");
    println!("outcome {code}; journal {steps}; {writes} lock writes");
    Ok(())
}
