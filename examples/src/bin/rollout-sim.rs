//! Runs one runner rollout on the simulated ECS — no AWS account needed —
//! and prints the typed outcome.
//!
//! ```text
//! rollout-sim [--scenario healthy|crashloop|unhealthy|pull-error|timeout|superseded]
//!             [--output text|json] [--desired N] [--seed N] [--log-json]
//! ```
//!
//! Time is simulated (a manual clock that jumps forward on every wait), so a
//! 30-minute rollout finishes at once. The exit code is 0 only for
//! `Succeeded`.

use std::{collections::BTreeMap, process::ExitCode, sync::Arc, time::Duration};

use ecs_rollout::{
    ContainerDefinition, DeploymentConfiguration, EcsApi, HealthCheck, ImageBehaviour,
    MonitorConfig, ProgressEvent, ProgressFn, Rollout, RolloutConfig, RolloutRequest,
    RolloutTarget, ServiceSetup, SimulatedEcs, TaskDefinitionSpec, UpdateServiceRequest,
};
use update_clock::{Clock, ManualClock};
use updater_examples::progress_text::{self, Arns};

const USAGE: &str = "usage: rollout-sim [--scenario healthy|crashloop|unhealthy|pull-error|timeout|superseded] \
[--output text|json] [--desired N] [--seed N] [--log-json]";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Output {
    Text,
    Json,
}

#[derive(Debug)]
struct Args {
    scenario: String,
    output: Output,
    desired: i32,
    seed: u64,
    log_json: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        scenario: "healthy".into(),
        output: Output::Text,
        desired: 3,
        seed: 1,
        log_json: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--scenario" => args.scenario = value("--scenario")?,
            "--output" => {
                args.output = match value("--output")?.as_str() {
                    "text" => Output::Text,
                    "json" => Output::Json,
                    other => return Err(format!("unknown output {other:?}")),
                }
            }
            "--desired" => {
                args.desired = value("--desired")?
                    .parse()
                    .map_err(|e| format!("--desired: {e}"))?
            }
            "--seed" => {
                args.seed = value("--seed")?
                    .parse()
                    .map_err(|e| format!("--seed: {e}"))?
            }
            "--log-json" => args.log_json = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if ![
        "healthy",
        "crashloop",
        "unhealthy",
        "pull-error",
        "timeout",
        "superseded",
    ]
    .contains(&args.scenario.as_str())
    {
        return Err(format!("unknown scenario {:?}", args.scenario));
    }
    Ok(args)
}

fn runner_spec(image: &str) -> TaskDefinitionSpec {
    TaskDefinitionSpec {
        family: "gitpod-runner".into(),
        container_definitions: vec![
            ContainerDefinition {
                name: "runner".into(),
                image: image.into(),
                essential: Some(true),
                docker_labels: BTreeMap::from([(
                    "org.opencontainers.image.version".into(),
                    "20250101.1".into(),
                )]),
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
                image: "registry.example.com/gitpod/proxy:20250101.1".into(),
                essential: Some(true),
                ..Default::default()
            },
        ],
        execution_role_arn: Some("arn:aws:iam::123456789012:role/runner-execution".into()),
        cpu: Some("1024".into()),
        memory: Some("2048".into()),
        tags: BTreeMap::from([("gitpod.io/runner".into(), "demo".into())]),
        ..Default::default()
    }
}

fn progress_line(event: &ProgressEvent) -> String {
    progress_text::describe(event, Arns::Full)
        .unwrap_or_else(|| serde_json::to_string(event).unwrap_or_default())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("rollout-sim: {message}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    if args.log_json {
        tracing_subscriber::fmt()
            .json()
            .with_writer(std::io::stderr)
            .init();
    }

    let clock = Arc::new(ManualClock::auto_advancing(ManualClock::EPOCH_2025));
    let sim = Arc::new(SimulatedEcs::new(clock.clone(), args.seed));
    let old_image = "registry.example.com/gitpod/runner:20250101.1";
    let new_image = "registry.example.com/gitpod/runner:20250102.1@sha256:\
                     4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945";
    let breaker_on = args.scenario != "unhealthy";
    let setup = ServiceSetup {
        cluster: "runners".into(),
        service: "gitpod-runner".into(),
        task_definition: runner_spec(old_image),
        desired_count: args.desired,
        deployment_configuration: if breaker_on {
            DeploymentConfiguration::safe_rolling()
        } else {
            DeploymentConfiguration {
                minimum_healthy_percent: Some(100),
                maximum_percent: Some(200),
                circuit_breaker: None,
            }
        },
    };
    if let Err(e) = sim.create_service(setup) {
        eprintln!("rollout-sim: {e}");
        return ExitCode::from(2);
    }
    let image: runner_version::ImageRef = new_image.parse().expect("demo image parses");
    let behaviour = match args.scenario.as_str() {
        "crashloop" => ImageBehaviour::CrashLoop,
        "unhealthy" => ImageBehaviour::Unhealthy,
        "pull-error" => ImageBehaviour::PullError,
        "timeout" | "superseded" => ImageBehaviour::NeverHealthy,
        _ => ImageBehaviour::Healthy,
    };
    sim.script_image(&image.to_string(), behaviour);
    if args.scenario == "superseded" {
        match sim
            .register_task_definition(&runner_spec("registry.example.com/gitpod/runner:hotfix"))
            .await
        {
            Ok(td) => sim.schedule_operator_update(
                Duration::from_secs(90),
                UpdateServiceRequest {
                    cluster: "runners".into(),
                    service: "gitpod-runner".into(),
                    task_definition: td.arn,
                    ..Default::default()
                },
            ),
            Err(e) => {
                eprintln!("rollout-sim: {e}");
                return ExitCode::from(2);
            }
        }
    }

    let output = args.output;
    let started = clock.now();
    let progress_clock = clock.clone();
    let log_json = args.log_json;
    let sink = ProgressFn(move |event: &ProgressEvent| {
        let json = serde_json::to_string(event).unwrap_or_default();
        if log_json {
            tracing::info!(target: "rollout", progress = %json, "rollout progress");
        }
        match output {
            Output::Text => println!(
                "{} {}",
                progress_clock.now().format("%H:%M:%S"),
                progress_line(event)
            ),
            Output::Json => eprintln!("{json}"),
        }
    });
    let config = RolloutConfig {
        monitor: MonitorConfig {
            timeout: Duration::from_secs(20 * 60),
            ..Default::default()
        },
        deployment_configuration_policy: if breaker_on {
            ecs_rollout::DeploymentConfigurationPolicy::Fix
        } else {
            ecs_rollout::DeploymentConfigurationPolicy::Warn
        },
        ..Default::default()
    };
    let rollout = match Rollout::new(sim.clone(), clock.clone(), config) {
        Ok(r) => r.with_progress(Arc::new(sink)),
        Err(e) => {
            eprintln!("rollout-sim: {e}");
            return ExitCode::from(2);
        }
    };
    let request = RolloutRequest {
        image,
        version: "20250102.1".parse().expect("demo version parses"),
    };
    let report = match rollout
        .run(&RolloutTarget::new("runners", "gitpod-runner"), &request)
        .await
    {
        Ok(report) => report,
        Err(e) => {
            eprintln!("rollout-sim: rollout could not reach a verdict: {e}");
            return ExitCode::from(3);
        }
    };
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        ),
        Output::Text => {
            println!(
                "outcome: {} — {}",
                report.outcome.kind(),
                report.outcome.summary()
            );
            if let Some(evidence) = report.outcome.evidence() {
                println!(
                    "evidence: {} failed tasks (threshold {}), {} polls, {} ECS calls, deployment {:.0} s, total {:.0} s simulated",
                    evidence.failed_tasks,
                    evidence.failed_task_threshold,
                    evidence.polls,
                    evidence.api_calls,
                    evidence.deployment_duration.as_secs_f64(),
                    evidence.total_duration.as_secs_f64()
                );
                for reason in &evidence.stopped_task_reasons {
                    println!("stopped-task reason: {reason}");
                }
            }
            if let Some(q) = &report.quarantine {
                println!(
                    "quarantine: version {} image {} ({})",
                    q.version.as_deref().unwrap_or("?"),
                    q.image,
                    q.reason
                );
            }
            println!(
                "simulated time: {} s",
                (clock.now() - started).num_seconds()
            );
        }
    }
    if report.outcome.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
