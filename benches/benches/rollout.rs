//! One full runner rollout on the simulated ECS, and the ECS API calls it
//! costs (printed once per scenario before measuring).

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use criterion::{Criterion, criterion_group, criterion_main};
use ecs_rollout::{
    ContainerDefinition, DeploymentConfiguration, DesiredStatus, EcsApi, HealthCheck,
    ImageBehaviour, Rollout, RolloutConfig, RolloutReport, RolloutRequest, RolloutState,
    RolloutTarget, ServiceSetup, SimulatedEcs, TaskDefinitionSpec, UpdateServiceRequest,
    list_all_tasks,
};
use update_clock::{Clock, ManualClock};

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

/// A scenario: the service, the image's behaviour and our configuration.
#[derive(Clone, Copy)]
struct Case {
    name: &'static str,
    desired: i32,
    behaviour: ImageBehaviour,
    /// The simulator serves the ServiceDeployment API (as real ECS does).
    service_deployments: bool,
    /// Our bake time (the default 60 s, or none).
    bake: bool,
}

/// A fresh simulator with the service, the new image scripted.
fn simulator(case: Case) -> (Arc<ManualClock>, Arc<SimulatedEcs>) {
    let clock = Arc::new(ManualClock::auto_advancing(ManualClock::EPOCH_2025));
    let sim = Arc::new(SimulatedEcs::new(clock.clone(), 7));
    sim.enable_service_deployments(case.service_deployments);
    sim.create_service(ServiceSetup {
        cluster: "runners".into(),
        service: "runner".into(),
        task_definition: spec(),
        desired_count: case.desired,
        deployment_configuration: DeploymentConfiguration::safe_rolling(),
    })
    .expect("service");
    sim.script_image(NEW_IMAGE, case.behaviour);
    (clock, sim)
}

/// What one rollout cost.
struct Run {
    report: RolloutReport,
    /// The calls the simulator received, by operation.
    calls: BTreeMap<&'static str, u64>,
    /// Simulated seconds from start to verdict.
    verdict_at: f64,
    /// Simulated seconds from start to ECS's "deployment completed" event
    /// for our deployment, if ECS completed it.
    completed_at: Option<f64>,
}

/// One rollout on a fresh simulator.
async fn one_rollout(case: Case) -> Run {
    let (clock, sim) = simulator(case);
    let image: runner_version::ImageRef = NEW_IMAGE.parse().expect("image");
    let mut config = RolloutConfig::default();
    if !case.bake {
        config.monitor.bake_time = Duration::ZERO;
    }
    let start = clock.monotonic();
    let wall_start = clock.now();
    let rollout = Rollout::new(sim.clone(), clock.clone(), config).expect("config");
    let request = RolloutRequest {
        image,
        version: "20250102.1".parse().expect("version"),
    };
    let report = rollout
        .run(&RolloutTarget::new("runners", "runner"), &request)
        .await
        .expect("rollout");
    let verdict_at = (clock.monotonic() - start).as_secs_f64();
    let deployment_id = report
        .outcome
        .evidence()
        .map(|e| e.deployment_id.clone())
        .unwrap_or_default();
    let service = sim.peek_service("runners", "runner").expect("service");
    let completed_at = service
        .events
        .iter()
        .find(|e| {
            !deployment_id.is_empty()
                && e.message.contains(&deployment_id)
                && e.message.contains("deployment completed")
        })
        .and_then(|e| e.created_at)
        .map(|at| (at - wall_start).as_seconds_f64());
    Run {
        report,
        calls: sim.calls(),
        verdict_at,
        completed_at,
    }
}

/// The same deployment as fabfuel's ecs-deploy (1.17) watches it, on the
/// same simulated timeline: `DescribeServices` and `DescribeTaskDefinition`,
/// `RegisterTaskDefinition`, `UpdateService`, then `DescribeServices` every
/// second until the service has one deployment, then `ListTasks` +
/// `DescribeTasks` of the running tasks, and `DeregisterTaskDefinition` of
/// the old revision. Returns its calls and the simulated seconds from start
/// to the first poll that read the PRIMARY deployment COMPLETED (ECS
/// settled, to within 1 s; ecs-deploy itself waits until the drained old
/// deployment has left the list).
async fn ecs_deploy_like(case: Case) -> (u64, f64) {
    let (clock, sim) = simulator(case);
    let ecs: &dyn EcsApi = sim.as_ref();
    let start = clock.monotonic();
    let service = ecs
        .describe_service("runners", "runner")
        .await
        .expect("describe");
    let current = ecs
        .describe_task_definition(&service.task_definition_arn)
        .await
        .expect("task definition");
    let mut spec = current.spec.clone();
    spec.container_definitions[0].image = NEW_IMAGE.into();
    let registered = ecs.register_task_definition(&spec).await.expect("register");
    ecs.update_service(&UpdateServiceRequest {
        cluster: "runners".into(),
        service: "runner".into(),
        task_definition: registered.arn.clone(),
        ..Default::default()
    })
    .await
    .expect("update");
    let mut completed = None;
    loop {
        clock.sleep(Duration::from_secs(1)).await;
        let service = ecs
            .describe_service("runners", "runner")
            .await
            .expect("describe");
        let at = (clock.monotonic() - start).as_secs_f64();
        if service
            .primary()
            .is_some_and(|p| p.rollout_state == Some(RolloutState::Completed))
        {
            completed.get_or_insert(at);
        }
        if service.deployments.len() == 1 {
            break;
        }
    }
    let listed = list_all_tasks(
        ecs,
        &RolloutTarget::new("runners", "runner"),
        DesiredStatus::Running,
    )
    .await
    .expect("list");
    ecs.describe_tasks("runners", &listed)
        .await
        .expect("describe tasks");
    let _ = ecs.deregister_task_definition(&current.arn).await;
    (
        sim.total_calls(),
        completed.expect("the deployment completed"),
    )
}

fn rollout(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let case = |name, desired, behaviour, service_deployments, bake| Case {
        name,
        desired,
        behaviour,
        service_deployments,
        bake,
    };
    let cases = [
        case("healthy_desired_3", 3, ImageBehaviour::Healthy, false, true),
        case(
            "healthy_desired_150",
            150,
            ImageBehaviour::Healthy,
            false,
            true,
        ),
        case(
            "crashloop_rolled_back_by_ecs_desired_3",
            3,
            ImageBehaviour::CrashLoop,
            false,
            true,
        ),
        case(
            "healthy_desired_3_sd",
            3,
            ImageBehaviour::Healthy,
            true,
            true,
        ),
        case(
            "healthy_desired_3_sd_no_bake",
            3,
            ImageBehaviour::Healthy,
            true,
            false,
        ),
        case(
            "crashloop_rolled_back_by_ecs_desired_3_sd",
            3,
            ImageBehaviour::CrashLoop,
            true,
            true,
        ),
    ];
    for case in cases {
        let Run {
            report,
            calls,
            verdict_at,
            completed_at,
        } = rt.block_on(one_rollout(case));
        let total: u64 = calls.values().sum();
        let evidence = report.outcome.evidence().expect("evidence");
        let by_operation: Vec<String> = calls.iter().map(|(op, n)| format!("{op} {n}")).collect();
        println!(
            "rollout/{}: outcome {}, {total} ECS API calls per rollout ({} polls, verdict at {verdict_at:.1} s simulated{}): {}",
            case.name,
            report.outcome.kind(),
            evidence.polls,
            completed_at
                .map(|at| format!(
                    ", ECS completed our deployment at {at:.1} s: {:.1} s before the verdict",
                    verdict_at - at
                ))
                .unwrap_or_default(),
            by_operation.join(", ")
        );
        if matches!(case.behaviour, ImageBehaviour::Healthy) && case.desired <= 3 {
            let (peer_calls, settled) = rt.block_on(ecs_deploy_like(case));
            println!(
                "rollout/{}: ecs-deploy's way on the same timeline: {peer_calls} calls (ECS completed at {settled:.1} s); ours {total} calls, {:.2} of its",
                case.name,
                total as f64 / peer_calls as f64,
            );
        }
        c.bench_function(&format!("rollout/{}", case.name), |b| {
            b.iter(|| rt.block_on(one_rollout(case)))
        });
    }
}

criterion_group!(benches, rollout);
criterion_main!(benches);
