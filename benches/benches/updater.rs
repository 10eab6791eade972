//! One whole update cycle of `runner_updater::Updater` on the simulated ECS
//! with in-memory lock, journal and quarantine: a two-service release that
//! succeeds, one that is rolled back and quarantined, and a check that
//! skips (nothing to do). The ECS calls and journal writes of each are
//! printed once before measuring.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use criterion::{Criterion, criterion_group, criterion_main};
use ecs_rollout::{
    ContainerDefinition, DeploymentConfiguration, HealthCheck, ImageBehaviour, ServiceSetup,
    SimulatedEcs, TaskDefinitionSpec,
};
use runner_updater::{
    CycleReport, InfraVersionSource, MemoryJournal, MemoryQuarantine, ReleaseImage, Target,
    Updater, UpdaterConfig,
};
use runner_version::{Channel, ImageRef, Release, ReleaseVerifier, StaticSource};
use update_clock::ManualClock;
use update_lock::{Lease, LeaseLock, LockConfig, MemoryLockStore};

fn image(repo: &str, version: &str, byte: &str) -> String {
    format!(
        "registry.example.com/gitpod/{repo}:{version}@sha256:{}",
        byte.repeat(32)
    )
}

fn spec(name: &str) -> TaskDefinitionSpec {
    TaskDefinitionSpec {
        family: name.into(),
        container_definitions: vec![ContainerDefinition {
            name: name.into(),
            image: image(name, "20250101.1", "01"),
            docker_labels: BTreeMap::from([(
                "org.opencontainers.image.version".into(),
                "20250101.1".into(),
            )]),
            health_check: Some(HealthCheck {
                command: vec!["CMD".into(), "true".into()],
                start_period: Some(20),
                ..Default::default()
            }),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// A fresh world: two services, a published release; returns the updater
/// and the simulator.
fn world(release_byte: &str, runner_behaviour: ImageBehaviour) -> (Updater, Arc<SimulatedEcs>) {
    let clock = Arc::new(ManualClock::auto_advancing(ManualClock::EPOCH_2025));
    let sim = Arc::new(SimulatedEcs::new(clock.clone(), 7));
    for name in ["runner", "proxy"] {
        sim.create_service(ServiceSetup {
            cluster: "runners".into(),
            service: name.into(),
            task_definition: spec(name),
            desired_count: 3,
            deployment_configuration: DeploymentConfiguration::safe_rolling(),
        })
        .expect("service");
    }
    let version = "20250102.1";
    sim.script_image(&image("runner", version, release_byte), runner_behaviour);
    let source = Arc::new(StaticSource::new(
        ReleaseVerifier::builder()
            .allow_unsigned()
            .build()
            .expect("verifier"),
    ));
    source.publish(Release {
        version: version.parse().expect("version"),
        channel: Channel::Stable,
        image: ImageRef::parse(&image("runner", version, release_byte)).expect("image"),
        proxy_image: Some(ImageRef::parse(&image("proxy", version, release_byte)).expect("image")),
        infra_version: Some("7".into()),
        template_url: "https://s3.amazonaws.com/releases/runner.json".into(),
        template_sha256: None,
        released_at: None,
        expires: None,
        waves: Default::default(),
    });
    let locks = MemoryLockStore::new();
    let mut config = UpdaterConfig::new(
        "runners/runner",
        "bench",
        vec![
            Target::new(
                "runner",
                "runners",
                "runner",
                "runner",
                ReleaseImage::Runner,
            ),
            Target::new("proxy", "runners", "proxy", "proxy", ReleaseImage::Proxy),
        ],
    );
    config.lease = Lease::new(Duration::from_secs(300))
        .expect("lease")
        .without_heartbeat();
    config.step_budget = Duration::from_secs(30);
    let updater = Updater::builder()
        .source(source)
        .lock(Arc::new(
            LeaseLock::new(locks.clone(), clock.clone(), LockConfig::default()).expect("lock"),
        ))
        .journal(Arc::new(MemoryJournal::new(locks)))
        .quarantine(Arc::new(MemoryQuarantine::default()))
        .ecs(sim.clone())
        .infra(InfraVersionSource::Fixed("7".into()))
        .clock(clock)
        .config(config)
        .build()
        .expect("updater");
    (updater, sim)
}

async fn cycle(updater: &Updater) -> CycleReport {
    updater.run_once().await.expect("cycle")
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    for (name, byte, behaviour, expected) in [
        (
            "two targets succeed",
            "02",
            ImageBehaviour::Healthy,
            "succeeded",
        ),
        (
            "crash loop rolled back + quarantined",
            "03",
            ImageBehaviour::CrashLoop,
            "rolled_back",
        ),
    ] {
        let (updater, sim) = world(byte, behaviour);
        let report = rt.block_on(cycle(&updater));
        assert_eq!(report.outcome.code(), expected, "{}", report.summary());
        println!(
            "updater cycle, {name}: {} ECS API calls, {} journal writes",
            sim.total_calls(),
            report.journalled.len()
        );
        c.bench_function(&format!("updater cycle, {name}"), |b| {
            b.iter_batched(
                || world(byte, behaviour).0,
                |updater| rt.block_on(cycle(&updater)),
                criterion::BatchSize::SmallInput,
            )
        });
    }
    let (updater, sim) = world("02", ImageBehaviour::Healthy);
    rt.block_on(cycle(&updater));
    let before = sim.total_calls();
    let skip = rt.block_on(cycle(&updater));
    assert_eq!(skip.outcome.code(), "skipped");
    println!(
        "updater cycle, nothing to do: {} ECS API calls",
        sim.total_calls() - before
    );
    c.bench_function("updater cycle, nothing to do (check + decide)", |b| {
        b.iter(|| rt.block_on(cycle(&updater)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
