//! One full runner rollout on the simulated ECS, and the ECS API calls it
//! costs (printed once per scenario before measuring).

use std::{collections::BTreeMap, sync::Arc};

use criterion::{Criterion, criterion_group, criterion_main};
use ecs_rollout::{
    ContainerDefinition, DeploymentConfiguration, HealthCheck, ImageBehaviour, Rollout,
    RolloutConfig, RolloutReport, RolloutRequest, RolloutTarget, ServiceSetup, SimulatedEcs,
    TaskDefinitionSpec,
};
use update_clock::ManualClock;

const NEW_IMAGE: &str = "registry.example.com/gitpod/runner:20250102.1";

fn spec() -> TaskDefinitionSpec {
    TaskDefinitionSpec {
        family: "gitpod-runner".into(),
        container_definitions: vec![ContainerDefinition {
            name: "runner".into(),
            image: "registry.example.com/gitpod/runner:20250101.1".into(),
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

/// One rollout on a fresh simulator; returns the report and the calls the
/// simulator received.
async fn one_rollout(desired: i32, behaviour: ImageBehaviour) -> (RolloutReport, u64) {
    let clock = Arc::new(ManualClock::auto_advancing(ManualClock::EPOCH_2025));
    let sim = Arc::new(SimulatedEcs::new(clock.clone(), 7));
    sim.create_service(ServiceSetup {
        cluster: "runners".into(),
        service: "runner".into(),
        task_definition: spec(),
        desired_count: desired,
        deployment_configuration: DeploymentConfiguration::safe_rolling(),
    })
    .expect("service");
    let image: runner_version::ImageRef = NEW_IMAGE.parse().expect("image");
    sim.script_image(&image.to_string(), behaviour);
    let rollout = Rollout::new(sim.clone(), clock, RolloutConfig::default()).expect("config");
    let request = RolloutRequest {
        image,
        version: "20250102.1".parse().expect("version"),
    };
    let report = rollout
        .run(&RolloutTarget::new("runners", "runner"), &request)
        .await
        .expect("rollout");
    (report, sim.total_calls())
}

fn rollout(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let cases = [
        ("healthy_desired_3", 3, ImageBehaviour::Healthy),
        ("healthy_desired_150", 150, ImageBehaviour::Healthy),
        (
            "crashloop_rolled_back_by_ecs_desired_3",
            3,
            ImageBehaviour::CrashLoop,
        ),
    ];
    for (name, desired, behaviour) in cases {
        let (report, calls) = rt.block_on(one_rollout(desired, behaviour));
        let evidence = report.outcome.evidence().expect("evidence");
        println!(
            "rollout/{name}: outcome {}, {calls} ECS API calls per rollout ({} polls, {:.0} s simulated)",
            report.outcome.kind(),
            evidence.polls,
            evidence.total_duration.as_secs_f64()
        );
        c.bench_function(&format!("rollout/{name}"), |b| {
            b.iter(|| rt.block_on(one_rollout(desired, behaviour)))
        });
    }
}

criterion_group!(benches, rollout);
criterion_main!(benches);
