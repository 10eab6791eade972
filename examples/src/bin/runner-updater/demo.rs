//! `demo`: whole update cycles on the simulated ECS, with no setup.
//!
//! Everything is real except ECS and CloudFormation, which are simulated
//! in-process: the updater, the policy, the lease lock, the fenced journal,
//! the quarantine, and the release manifests, which are signed with an
//! Ed25519 key made from a fixed seed and verified against a trust policy on
//! every check (the demo serves them from a manifest file it rewrites). The
//! clock is a manual clock that jumps forward whenever something waits, so a
//! 30-minute rollout takes no real time.

use std::{collections::BTreeMap, path::Path, sync::Arc, time::Duration};

use cfn_stack::{
    ApplyMode, FakeCfn, FakeTemplate, NoProgress, StackChange, StackUpdateOutcome, StackUpdater,
    StackUpdaterConfig,
};
use ecs_rollout::{
    ContainerDefinition, DeploymentConfiguration, DeploymentStatus, EcsApi, HealthCheck,
    ImageBehaviour, RolloutState, ServiceSetup, SimulatedEcs, TaskDefinitionSpec,
    UpdateServiceRequest,
};
use runner_updater::{
    CycleOutcome, CycleReport, InfraVersionSource, MemoryJournal, MemoryQuarantine, ReleaseImage,
    Target, Updater, UpdaterConfig,
};
use runner_version::{
    Channel, ImageRef, Release, ReleaseVerifier, SignedManifest, StaticSource, TrustPolicy,
    ed25519_dalek::SigningKey,
};
use update_clock::{Clock, ManualClock};
use update_lock::{Lease, LeaseLock, LockConfig, MemoryLockStore};

use crate::{
    cli::{DemoArgs, OutputFormat},
    exit::{AppError, Exit},
    output::{self, Table, cycle_detail},
    progress::{LiveProgress, Mode},
};

const CLUSTER: &str = "gitpod-runners";
const RUNNER_SERVICE: &str = "gitpod-runner";
const PROXY_SERVICE: &str = "gitpod-proxy";
const STACK: &str = "gitpod-runner";
const LABEL: &str = runner_updater::DEFAULT_VERSION_LABEL;
const KEY_ID: &str = "demo-release-2025";
const TEMPLATES: &str = "https://gitpod-flex-releases.s3.amazonaws.com/ec2/stable";

fn digest(n: u8) -> String {
    format!("sha256:{}", format!("{n:02x}").repeat(32))
}

fn image(kind: &str, version: &str, n: u8) -> String {
    format!("registry.example.com/gitpod/{kind}:{version}@{}", digest(n))
}

fn template_url(infra: &str) -> String {
    format!("{TEMPLATES}/gitpod-ec2-runner-infra-{infra}.json")
}

fn spec(family: &str, container: &str, image: &str, version: &str) -> TaskDefinitionSpec {
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
                    "curl -f http://localhost:8080/healthz || exit 1".into(),
                ],
                interval: Some(10),
                timeout: Some(5),
                retries: Some(3),
                start_period: Some(20),
            }),
            ..Default::default()
        }],
        execution_role_arn: Some("arn:aws:iam::123456789012:role/gitpod-runner-execution".into()),
        task_role_arn: Some("arn:aws:iam::123456789012:role/gitpod-runner-task".into()),
        cpu: Some("1024".into()),
        memory: Some("2048".into()),
        tags: BTreeMap::from([("gitpod.io/runner".into(), "demo".into())]),
        ..Default::default()
    }
}

fn release(version: &str, n: u8, infra: &str) -> Result<Release, AppError> {
    let parse = |s: &str| ImageRef::parse(s).map_err(AppError::failed);
    Ok(Release {
        version: version.parse().map_err(AppError::failed)?,
        channel: Channel::Stable,
        image: parse(&image("runner", version, n))?,
        proxy_image: Some(parse(&image("proxy", version, n))?),
        infra_version: Some(infra.into()),
        template_url: template_url(infra),
        // Signed releases must pin their template's sha256; the demo's
        // templates are fakes, so any 64 hex digits do.
        template_sha256: Some("cd".repeat(32)),
        released_at: Some(ManualClock::EPOCH_2025),
        expires: Some(ManualClock::EPOCH_2025 + chrono::Duration::days(30)),
        waves: Default::default(),
    })
}

/// The publisher's side: signs `release` and writes the manifest the
/// updater's source reads (and verifies) on its next check.
fn publish(path: &Path, key: &SigningKey, release: &Release) -> Result<(), AppError> {
    let manifest = SignedManifest::sign(release, &[(KEY_ID, key)]).map_err(AppError::failed)?;
    std::fs::write(path, manifest.to_json()).map_err(|e| {
        AppError::failed(format!(
            "cannot write the demo manifest {}: {e}",
            path.display()
        ))
    })
}

/// What a step must end in, for the self-check.
#[derive(Debug, Clone, Copy)]
enum Expect {
    Outcome(&'static str),
    SkipBecause(&'static str),
}

impl Expect {
    fn check(self, report: &CycleReport) -> Result<(), String> {
        match self {
            Self::Outcome(code) if report.outcome.code() == code => Ok(()),
            Self::SkipBecause(reason)
                if report.outcome == CycleOutcome::Skipped
                    && report
                        .decision
                        .as_ref()
                        .is_some_and(|d| d.reason_codes().contains(&reason)) =>
            {
                Ok(())
            }
            Self::Outcome(code) => Err(format!(
                "expected {code}, got {}: {}",
                report.outcome.code(),
                report.summary()
            )),
            Self::SkipBecause(reason) => Err(format!(
                "expected a skip because of {reason}, got {}: {}",
                report.outcome.code(),
                report.summary()
            )),
        }
    }

    fn label(self) -> String {
        match self {
            Self::Outcome(code) => code.to_string(),
            Self::SkipBecause(reason) => format!("skipped ({reason})"),
        }
    }
}

struct Demo {
    clock: Arc<ManualClock>,
    sim: Arc<SimulatedEcs>,
    updater: Updater,
    progress: Arc<LiveProgress>,
    manifest: tempfile::TempDir,
    key: SigningKey,
    stacks: Arc<StackUpdater>,
    runner_v1: String,
    text: bool,
}

impl Demo {
    fn manifest_path(&self) -> std::path::PathBuf {
        self.manifest.path().join("stable.json")
    }

    fn say(&self, line: &str) {
        if self.text {
            println!("{line}");
        }
    }

    async fn setup(args: &DemoArgs, format: OutputFormat) -> Result<Self, AppError> {
        let clock = Arc::new(ManualClock::auto_advancing(ManualClock::EPOCH_2025));
        let sim = Arc::new(SimulatedEcs::new(clock.clone(), args.seed));
        let v1 = "20250101.1";
        let runner_v1 = sim
            .create_service(ServiceSetup {
                cluster: CLUSTER.into(),
                service: RUNNER_SERVICE.into(),
                task_definition: spec(RUNNER_SERVICE, "runner", &image("runner", v1, 1), v1),
                desired_count: 2,
                deployment_configuration: DeploymentConfiguration::safe_rolling(),
            })
            .map_err(AppError::failed)?;
        sim.create_service(ServiceSetup {
            cluster: CLUSTER.into(),
            service: PROXY_SERVICE.into(),
            task_definition: spec(PROXY_SERVICE, "proxy", &image("proxy", v1, 1), v1),
            desired_count: 2,
            deployment_configuration: DeploymentConfiguration::safe_rolling(),
        })
        .map_err(AppError::failed)?;

        // The runner's CloudFormation stack, at infrastructure version 7.
        let cfn = FakeCfn::new();
        for infra in ["7", "8"] {
            cfn.add_template(
                &template_url(infra),
                FakeTemplate::new()
                    .parameter("SubnetIds", Some("subnet-0a,subnet-0b"))
                    .output("InfrastructureVersion", infra),
            );
        }
        cfn.create_stack(STACK, &template_url("7"), &[], &[])
            .map_err(AppError::failed)?;
        let stacks = Arc::new(
            StackUpdater::new(Arc::new(cfn), clock.clone(), StackUpdaterConfig::default())
                .map_err(AppError::failed)?,
        );

        // Signed releases, verified on every check.
        let key = SigningKey::from_bytes(&[0x5e; 32]);
        let verifier = ReleaseVerifier::builder()
            .trust_policy(TrustPolicy::new(1).with_key(KEY_ID, key.verifying_key()))
            .clock(clock.clone())
            .build()
            .map_err(AppError::failed)?;
        let manifest = tempfile::tempdir()
            .map_err(|e| AppError::failed(format!("cannot make a temporary directory: {e}")))?;
        let source = Arc::new(
            StaticSource::new(verifier)
                .with_manifest_file(Channel::Stable, manifest.path().join("stable.json")),
        );

        let locks = MemoryLockStore::new();
        let lock = LeaseLock::new(locks.clone(), clock.clone(), LockConfig::default())
            .map_err(AppError::failed)?;
        let targets = vec![
            Target::new(
                "runner",
                CLUSTER,
                RUNNER_SERVICE,
                "runner",
                ReleaseImage::Runner,
            ),
            Target::new(
                "proxy",
                CLUSTER,
                PROXY_SERVICE,
                "proxy",
                ReleaseImage::Proxy,
            ),
        ];
        let mut config =
            UpdaterConfig::new(format!("{CLUSTER}/{RUNNER_SERVICE}"), "demo-host", targets);
        // No background heartbeat on a clock that jumps: the updater renews
        // the lease before each journalled step instead.
        config.lease = Lease::new(Duration::from_secs(600))
            .map_err(AppError::failed)?
            .without_heartbeat();
        config.step_budget = Duration::from_secs(60);

        let text = format == OutputFormat::Text;
        let mode = match (text, args.quiet) {
            (true, false) => Mode::for_stdout(),
            _ => Mode::Off,
        };
        let progress = Arc::new(LiveProgress::new(mode, "    "));
        let updater = Updater::builder()
            .source(source)
            .lock(Arc::new(lock))
            .journal(Arc::new(MemoryJournal::new(locks)))
            .quarantine(Arc::new(MemoryQuarantine::default()))
            .ecs(sim.clone())
            .infra(InfraVersionSource::Stack {
                updater: stacks.clone(),
                stack: STACK.into(),
            })
            .clock(clock.clone())
            .config(config)
            .progress(progress.clone())
            .build()?;
        Ok(Self {
            clock,
            sim,
            updater,
            progress,
            manifest,
            key,
            stacks,
            runner_v1,
            text,
        })
    }

    async fn cycle(&self) -> Result<CycleReport, AppError> {
        let result = self.updater.run_once().await;
        self.progress.close();
        let report = result?;
        if self.text {
            println!("  → {}", report.summary());
        }
        Ok(report)
    }

    /// The operator applies the template a blocked release asked for.
    async fn apply_template(&self, infra: &str) -> Result<(), AppError> {
        let change = StackChange::replace_template(
            template_url(infra),
            std::iter::empty::<(String, String)>(),
        );
        let outcome = self
            .stacks
            .apply(STACK, &change, ApplyMode::ChangeSet, &NoProgress)
            .await
            .map_err(AppError::failed)?;
        if !matches!(outcome, StackUpdateOutcome::Updated { .. }) {
            return Err(AppError::failed(format!(
                "the demo stack update did not complete: {outcome:?}"
            )));
        }
        let state = self
            .stacks
            .read_stack(STACK)
            .await
            .map_err(AppError::failed)?;
        self.say(&format!(
            "  operator: applied {} to stack {STACK} (change set) → infrastructure version {}",
            template_url(infra),
            state
                .infra_version
                .as_ref()
                .map_or("?", runner_version::InfraVersion::as_str)
        ));
        Ok(())
    }

    /// The operator rolls the runner service back by hand, straight on ECS.
    async fn manual_rollback(&self) -> Result<(), AppError> {
        self.sim
            .update_service(&UpdateServiceRequest {
                cluster: CLUSTER.into(),
                service: RUNNER_SERVICE.into(),
                task_definition: self.runner_v1.clone(),
                ..Default::default()
            })
            .await
            .map_err(AppError::failed)?;
        let started = self.clock.monotonic();
        for _ in 0..720 {
            self.clock.sleep(Duration::from_secs(5)).await;
            let service = self
                .sim
                .peek_service(CLUSTER, RUNNER_SERVICE)
                .map_err(AppError::failed)?;
            let live = service
                .deployments
                .iter()
                .filter(|d| d.status != Some(DeploymentStatus::Inactive))
                .count();
            if live == 1
                && service.primary().is_some_and(|p| {
                    p.task_definition_arn == self.runner_v1
                        && p.rollout_state == Some(RolloutState::Completed)
                        && p.running_count == service.desired_count
                })
            {
                self.say(&format!(
                    "  operator: UpdateService {RUNNER_SERVICE} → {} by hand; completed after {} s (simulated)",
                    self.runner_v1.rsplit('/').next().unwrap_or(&self.runner_v1),
                    (self.clock.monotonic() - started).as_secs()
                ));
                return Ok(());
            }
        }
        Err(AppError::failed(
            "the operator's manual rollback did not complete in the simulator",
        ))
    }
}

/// Runs the story; exit 0 when every step gave the expected outcome.
pub async fn run(args: &DemoArgs, format: OutputFormat) -> Result<Exit, AppError> {
    let wall = std::time::Instant::now();
    let demo = Demo::setup(args, format).await?;
    let started = demo.clock.now();
    let path = demo.manifest_path();
    demo.say(&format!(
        "runner-updater demo: cluster {CLUSTER}, services {RUNNER_SERVICE} (runner) and \
         {PROXY_SERVICE} (proxy), 2 tasks each, stack {STACK} at infrastructure version 7."
    ));
    demo.say(&format!(
        "Releases are signed with Ed25519 key {KEY_ID} and verified (threshold 1) on every check; \
         ECS and CloudFormation are simulated, time jumps ahead while the updater waits.\n"
    ));

    let mut results: Vec<(u32, Expect, CycleReport)> = Vec::new();

    demo.say("Step 1: release 20250102.1 is published (healthy images).");
    publish(&path, &demo.key, &release("20250102.1", 2, "7")?)?;
    results.push((1, Expect::Outcome("succeeded"), demo.cycle().await?));

    demo.say("\nStep 2: release 20250103.1 is published; its runner image crash-loops.");
    let bad = release("20250103.1", 3, "7")?;
    demo.sim
        .script_image(&bad.image.to_string(), ImageBehaviour::CrashLoop);
    publish(&path, &demo.key, &bad)?;
    results.push((2, Expect::Outcome("rolled_back"), demo.cycle().await?));

    demo.say("\nStep 3: the next check finds 20250103.1 again.");
    results.push((3, Expect::SkipBecause("quarantined"), demo.cycle().await?));

    demo.say("\nStep 4: release 20250104.1 is published; it needs infrastructure version 8.");
    publish(&path, &demo.key, &release("20250104.1", 4, "8")?)?;
    results.push((4, Expect::Outcome("blocked"), demo.cycle().await?));

    demo.say(
        "\nStep 5: the operator applies the new template, then rolls the runner back by hand.",
    );
    demo.apply_template("8").await?;
    demo.manual_rollback().await?;
    results.push((
        5,
        Expect::SkipBecause("held_after_manual_rollback"),
        demo.cycle().await?,
    ));
    demo.say(
        "  (on a real runner the operator resumes updates with \
         `runner-updater hold clear --acknowledge-rollback`)",
    );

    let failures: Vec<String> = results
        .iter()
        .filter_map(|(step, expect, report)| {
            expect
                .check(report)
                .err()
                .map(|e| format!("step {step}: {e}"))
        })
        .collect();

    match format {
        OutputFormat::Json => {
            let reports: Vec<&CycleReport> = results.iter().map(|(_, _, r)| r).collect();
            output::json(&reports);
        }
        OutputFormat::Text => {
            let mut table = Table::new(&["step", "release", "outcome", "detail"]);
            for (step, expect, report) in &results {
                let ok = expect.check(report).is_ok();
                table.row(vec![
                    step.to_string(),
                    report.release_version.clone().unwrap_or_else(|| "?".into()),
                    if ok {
                        report.outcome.code().to_string()
                    } else {
                        format!("{} ✗ expected {}", report.outcome.code(), expect.label())
                    },
                    cycle_detail(report),
                ]);
            }
            println!("\nSummary\n{}", table.render());
            let simulated = demo.clock.now() - started;
            println!(
                "\n{} Simulated time {}h{:02}m, wall time {:.2} s, {} ECS calls.",
                if failures.is_empty() {
                    "Every step gave the expected outcome."
                } else {
                    "Some steps did NOT give the expected outcome."
                },
                simulated.num_hours(),
                simulated.num_minutes() % 60,
                wall.elapsed().as_secs_f64(),
                demo.sim.total_calls()
            );
        }
    }
    for failure in &failures {
        eprintln!("runner-updater demo: {failure}");
    }
    Ok(if failures.is_empty() {
        Exit::Success
    } else {
        Exit::Failed
    })
}
