//! The update cycle.

use std::{future::Future, sync::Arc, time::Duration};

use cfn_stack::StackUpdater;
use chrono::{DateTime, Utc};
use ecs_rollout::{
    EcsApi, ProgressSink, ResumePoint, Rollout, RolloutConfig, RolloutOutcome, RolloutReport,
    RolloutRequest, RunningRunner, ServiceDescription,
};
use runner_version::{AdmittedRelease, InfraVersion, ReleaseSource};
use update_clock::Clock;
use update_lock::{Lease, LeaseGuard, LockError, UpdateLock};
use update_policy::{
    CheckSchedule, CurrentState, Decision, Hold, QuarantineEntry, UpdatePolicy, WaveSeed, evaluate,
};

use crate::{
    CycleOutcome, CycleReport, Error, Journal, JournalEntry, JournalStep, LastOutcome,
    METRIC_BLOCKED, METRIC_CHECKS, METRIC_DECISIONS, METRIC_DEPLOYMENT_DURATION, METRIC_LAST_CHECK,
    METRIC_LOCK_WAIT, METRIC_NOTIFY_FAILURES, METRIC_QUARANTINED, METRIC_UPDATES,
    METRIC_VERSION_INFO, NoNotifier, Notification, Notifier, QuarantineStore, Reporter, Result,
    Target, TargetProgress, TargetReport,
    gate::{JournalGate, JournalWriter},
    modify, validate_targets,
};

/// Where the running infrastructure version comes from.
#[derive(Debug, Clone)]
pub enum InfraVersionSource {
    /// A fixed value (tests, or a runner without a stack).
    Fixed(InfraVersion),
    /// The runner's CloudFormation stack (an output or tag, as the
    /// [`StackUpdater`]'s configuration says), read on every check.
    Stack {
        /// The reader.
        updater: Arc<StackUpdater>,
        /// The stack name or id.
        stack: String,
    },
}

impl InfraVersionSource {
    async fn read(&self) -> Result<Option<InfraVersion>> {
        match self {
            Self::Fixed(v) => Ok(Some(v.clone())),
            Self::Stack { updater, stack } => Ok(updater.read_stack(stack).await?.infra_version),
        }
    }
}

/// The updater's settings (the rest are the backends given to the
/// builder).
#[derive(Debug, Clone)]
pub struct UpdaterConfig {
    /// The runner's identity: the lock key, the journal key and the
    /// quarantine key. One per runner (per set of services updated
    /// together), fleet-wide.
    pub runner: String,
    /// This updater's identity as a lock owner (host, task id).
    pub owner: String,
    /// The services, in deployment order; the first runs the runner image.
    pub targets: Vec<Target>,
    /// The lease held during an update. Must be much longer than the step
    /// budget. With a heartbeat the lease is renewed in the background;
    /// without one (simulations on an auto-advancing clock) the updater
    /// renews it before each journalled step, and a lease that lapsed while
    /// monitoring may be taken over by another updater, which then resumes
    /// from the journal while this one is fenced off.
    pub lease: Lease,
    /// How long to wait for a lock held by another updater.
    pub lock_wait: Duration,
    /// Lease time that must be left before each state-changing ECS call.
    pub step_budget: Duration,
    /// The rollout settings; the container and version label are taken
    /// from each target.
    pub rollout: RolloutConfig,
    /// This runner's place in a release's staged rollout waves. `None`
    /// (the default) draws it from [`runner`](Self::runner), so each
    /// runner keeps its place across restarts and hosts; pin it with
    /// [`WaveSeed::at_percent`] for a canary (`0.0`: in the first wave).
    pub wave_seed: Option<WaveSeed>,
}

impl UpdaterConfig {
    /// Settings with a 5-minute lease renewed every minute, a 60 s step
    /// budget, no lock wait and the default rollout settings. On an
    /// auto-advancing [`ManualClock`](update_clock::ManualClock) (simulations)
    /// use a lease without heartbeat: a background heartbeat would move the
    /// simulated time ahead on its own.
    pub fn new(runner: impl Into<String>, owner: impl Into<String>, targets: Vec<Target>) -> Self {
        #[allow(clippy::expect_used)]
        let lease = Lease::new(Duration::from_secs(300))
            .and_then(|l| l.with_heartbeat(Duration::from_secs(60)))
            .expect("the default lease is valid");
        Self {
            runner: runner.into(),
            owner: owner.into(),
            targets,
            lease,
            lock_wait: Duration::ZERO,
            step_budget: Duration::from_secs(60),
            rollout: RolloutConfig::default(),
            wave_seed: None,
        }
    }

    /// The wave seed in effect: the pinned one, else the one drawn from the
    /// runner's identity.
    pub fn effective_wave_seed(&self) -> WaveSeed {
        self.wave_seed
            .unwrap_or_else(|| WaveSeed::from_identity(&self.runner))
    }

    /// Checks every setting; names the key of the first invalid one.
    pub fn validate(&self) -> Result<()> {
        let invalid = |field: &str, reason: String| {
            Err(Error::InvalidConfig {
                field: field.into(),
                reason,
            })
        };
        if self.runner.trim().is_empty() {
            return invalid(
                "runner",
                "is empty; name the runner (e.g. its cluster/service)".into(),
            );
        }
        if self.owner.trim().is_empty() {
            return invalid("owner", "is empty; use the host name or task id".into());
        }
        validate_targets(&self.targets)?;
        self.lease.validate()?;
        if self.step_budget.is_zero() {
            return invalid(
                "lock.step_budget_secs",
                "is zero; use at least a few seconds".into(),
            );
        }
        let heartbeat = self.lease.heartbeat().unwrap_or(Duration::ZERO);
        if self.step_budget + heartbeat >= self.lease.duration() {
            return invalid(
                "lock.step_budget_secs",
                format!(
                    "({} s) plus the heartbeat ({} s) must be shorter than the lease ({} s), or a \
                     step could outlive the lease between two renewals",
                    self.step_budget.as_secs(),
                    heartbeat.as_secs(),
                    self.lease.duration().as_secs()
                ),
            );
        }
        for (i, t) in self.targets.iter().enumerate() {
            self.rollout_config(t)
                .validate()
                .map_err(|e| Error::InvalidConfig {
                    field: format!("targets[{i}].rollout"),
                    reason: e.to_string(),
                })?;
        }
        Ok(())
    }

    fn rollout_config(&self, target: &Target) -> RolloutConfig {
        let mut config = self.rollout.clone();
        config.runner_container = target.container.clone();
        config.version_label = target.version_label.clone();
        config
    }
}

/// Builds an [`Updater`]; [`build`](Self::build) validates everything.
#[derive(Debug, Default)]
pub struct UpdaterBuilder {
    source: Option<Arc<dyn ReleaseSource>>,
    lock: Option<Arc<dyn UpdateLock>>,
    journal: Option<Arc<dyn Journal>>,
    quarantine: Option<Arc<dyn QuarantineStore>>,
    ecs: Option<Arc<dyn EcsApi>>,
    infra: Option<InfraVersionSource>,
    notifier: Option<Arc<dyn Notifier>>,
    reporter: Option<Arc<dyn Reporter>>,
    clock: Option<Arc<dyn Clock>>,
    policy: Option<UpdatePolicy>,
    config: Option<UpdaterConfig>,
    progress: Option<Arc<dyn ProgressSink>>,
}

macro_rules! setter {
    ($(#[$doc:meta])* $name:ident: $ty:ty) => {
        $(#[$doc])*
        pub fn $name(mut self, value: $ty) -> Self {
            self.$name = Some(value);
            self
        }
    };
}

impl UpdaterBuilder {
    setter!(/// The release source (required).
        source: Arc<dyn ReleaseSource>);
    setter!(/// The lease lock (required; its store must be the journal's).
        lock: Arc<dyn UpdateLock>);
    setter!(/// The journal (required; fenced by the lock's store).
        journal: Arc<dyn Journal>);
    setter!(/// The quarantine store (required).
        quarantine: Arc<dyn QuarantineStore>);
    setter!(/// The ECS backend (required; no retry of its own).
        ecs: Arc<dyn EcsApi>);
    setter!(/// Where the infrastructure version comes from (required).
        infra: InfraVersionSource);
    setter!(/// Where outcomes are sent (default: nowhere).
        notifier: Arc<dyn Notifier>);
    setter!(/// Records a new version after a success (optional).
        reporter: Arc<dyn Reporter>);
    setter!(/// The clock (required).
        clock: Arc<dyn Clock>);
    setter!(/// The eligibility policy (default: [`UpdatePolicy::default`]).
        policy: UpdatePolicy);
    setter!(/// The settings (required).
        config: UpdaterConfig);
    setter!(/// Receives every rollout progress event (optional).
        progress: Arc<dyn ProgressSink>);

    /// Validates the whole configuration and builds the updater.
    pub fn build(self) -> Result<Updater> {
        let missing = |what: &str| Error::InvalidConfig {
            field: what.into(),
            reason: "is required; set it on the builder".into(),
        };
        let config = self.config.ok_or_else(|| missing("config"))?;
        config.validate()?;
        let policy = self.policy.unwrap_or_default();
        policy.validate()?;
        Ok(Updater {
            source: self.source.ok_or_else(|| missing("source"))?,
            lock: self.lock.ok_or_else(|| missing("lock"))?,
            journal: self.journal.ok_or_else(|| missing("journal"))?,
            quarantine: self.quarantine.ok_or_else(|| missing("quarantine"))?,
            ecs: self.ecs.ok_or_else(|| missing("ecs"))?,
            infra: self.infra.ok_or_else(|| missing("infra"))?,
            notifier: self.notifier.unwrap_or_else(|| Arc::new(NoNotifier)),
            reporter: self.reporter,
            clock: self.clock.ok_or_else(|| missing("clock"))?,
            policy,
            config,
            progress: self.progress,
            running: tokio::sync::Mutex::new(()),
            active: std::sync::Mutex::new(None),
            running_cache: std::sync::Mutex::new(None),
        })
    }
}

/// What a check found, without acting: the release, the running state and
/// the decision with every reason.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CheckReport {
    /// The release offered, as the source's verifier admitted it.
    pub release: AdmittedRelease,
    /// The state the decision was made on.
    pub state: CurrentState,
    /// The decision.
    pub decision: Decision,
    /// An unfinished update in the journal (the next cycle resumes it).
    pub unfinished: Option<JournalEntry>,
}

/// The updater: one runner's update cycle over pluggable backends.
///
/// ```
/// use std::sync::Arc;
/// use runner_updater::{
///     InfraVersionSource, MemoryJournal, MemoryQuarantine, ReleaseImage, Target, Updater,
///     UpdaterConfig,
/// };
/// use runner_version::{Channel, ImageRef, Release, ReleaseVerifier, StaticSource};
/// use ecs_rollout::{ContainerDefinition, ServiceSetup, SimulatedEcs, TaskDefinitionSpec};
/// use update_clock::{Clock, ManualClock};
/// use update_lock::{Lease, LeaseLock, LockConfig, MemoryLockStore};
/// use std::time::Duration;
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let clock = Arc::new(ManualClock::auto_advancing(ManualClock::EPOCH_2025));
/// let ecs = Arc::new(SimulatedEcs::new(clock.clone(), 7));
/// let image = |n: &str, b: &str| format!("registry.example.com/runner:{n}@sha256:{}", b.repeat(32));
/// ecs.create_service(ServiceSetup {
///     cluster: "runners".into(),
///     service: "runner".into(),
///     desired_count: 2,
///     task_definition: TaskDefinitionSpec {
///         family: "runner".into(),
///         container_definitions: vec![ContainerDefinition {
///             name: "runner".into(),
///             image: image("20250101.1", "01"),
///             docker_labels: [("org.opencontainers.image.version".to_string(), "20250101.1".to_string())].into(),
///             ..Default::default()
///         }],
///         ..Default::default()
///     },
///     deployment_configuration: ecs_rollout::DeploymentConfiguration::safe_rolling(),
/// }).unwrap();
///
/// let source = Arc::new(StaticSource::new(ReleaseVerifier::builder().allow_unsigned().build().unwrap()));
/// source.publish(Release {
///     version: "20250102.1".parse().unwrap(),
///     channel: Channel::Stable,
///     image: ImageRef::parse(&image("20250102.1", "02")).unwrap(),
///     proxy_image: None,
///     infra_version: Some("7".into()),
///     template_url: "https://s3.amazonaws.com/releases/runner.json".into(),
///     template_sha256: None,
///     released_at: None,
///     expires: None,
///     waves: Default::default(),
/// });
/// let mut config = UpdaterConfig::new(
///     "runners/runner",
///     "host-1",
///     vec![Target::new("runner", "runners", "runner", "runner", ReleaseImage::Runner)],
/// );
/// // On an auto-advancing clock a background heartbeat would race time
/// // ahead; without one the updater renews the lease at every step.
/// config.lease = Lease::new(Duration::from_secs(300)).unwrap().without_heartbeat();
/// let locks = MemoryLockStore::new();
/// let lock = LeaseLock::new(locks.clone(), clock.clone(), LockConfig::default()).unwrap();
/// let updater = Updater::builder()
///     .source(source)
///     .lock(Arc::new(lock))
///     .journal(Arc::new(MemoryJournal::new(locks)))
///     .quarantine(Arc::new(MemoryQuarantine::default()))
///     .ecs(ecs.clone())
///     .infra(InfraVersionSource::Fixed("7".into()))
///     .clock(clock.clone())
///     .config(config)
///     .build()
///     .unwrap();
/// let report = updater.run_once().await.unwrap();
/// assert_eq!(report.outcome.code(), "succeeded", "{}", report.summary());
/// # });
/// ```
#[derive(Debug)]
pub struct Updater {
    source: Arc<dyn ReleaseSource>,
    lock: Arc<dyn UpdateLock>,
    journal: Arc<dyn Journal>,
    quarantine: Arc<dyn QuarantineStore>,
    ecs: Arc<dyn EcsApi>,
    infra: InfraVersionSource,
    notifier: Arc<dyn Notifier>,
    reporter: Option<Arc<dyn Reporter>>,
    clock: Arc<dyn Clock>,
    policy: UpdatePolicy,
    config: UpdaterConfig,
    progress: Option<Arc<dyn ProgressSink>>,
    running: tokio::sync::Mutex<()>,
    active: std::sync::Mutex<Option<Arc<LeaseGuard>>>,
    /// What the runner's PRIMARY task definition runs, by ARN: a task
    /// definition revision never changes, so an idle check reads only
    /// `DescribeServices`.
    running_cache: std::sync::Mutex<Option<RunningRunner>>,
}

/// How deploying the targets ended.
enum Deployed {
    AllSucceeded,
    Failed {
        reason: String,
        rollback_failed: bool,
    },
    Superseded(String),
    Unverified(String),
    Interrupted(String),
}

impl Updater {
    /// A builder.
    pub fn builder() -> UpdaterBuilder {
        UpdaterBuilder::default()
    }

    /// The settings.
    pub fn config(&self) -> &UpdaterConfig {
        &self.config
    }

    /// The policy.
    pub fn policy(&self) -> &UpdatePolicy {
        &self.policy
    }

    /// The ECS backend.
    pub fn ecs(&self) -> &Arc<dyn EcsApi> {
        &self.ecs
    }

    /// The journal.
    pub fn journal(&self) -> &Arc<dyn Journal> {
        &self.journal
    }

    /// The quarantine store.
    pub fn quarantine_store(&self) -> &Arc<dyn QuarantineStore> {
        &self.quarantine
    }

    /// The lock.
    pub fn lock(&self) -> &Arc<dyn UpdateLock> {
        &self.lock
    }

    /// A rollout engine for target `i`, optionally gated by the journal.
    pub fn rollout_for(&self, i: usize) -> Result<Rollout> {
        let target = &self.config.targets[i];
        let mut rollout = Rollout::new(
            self.ecs.clone(),
            self.clock.clone(),
            self.config.rollout_config(target),
        )?;
        if let Some(progress) = &self.progress {
            rollout = rollout.with_progress(progress.clone());
        }
        Ok(rollout)
    }

    /// The ECS backend with `target`'s retry policy, for the reads the
    /// updater makes outside a rollout.
    fn retrying_ecs(&self, target: &Target) -> ecs_rollout::RetryingEcs<Arc<dyn EcsApi>> {
        ecs_rollout::RetryingEcs::new(
            self.ecs.clone(),
            self.clock.clone(),
            self.config.rollout_config(target).retry,
        )
    }

    /// What the first target (the runner) runs now, read from ECS: one
    /// `DescribeServices`, plus one `DescribeTaskDefinition` when the
    /// PRIMARY runs a task definition this updater has not read before
    /// (revisions are immutable, so what it runs is kept by ARN).
    pub async fn running(&self) -> Result<RunningRunner> {
        let target = &self.config.targets[0];
        let config = self.config.rollout_config(target);
        let ecs = self.retrying_ecs(target);
        let service = ecs
            .describe_service(&target.cluster, &target.service)
            .await?;
        let primary = service
            .primary()
            .ok_or_else(|| ecs_rollout::Error::UnexpectedResponse {
                resource: target.service.clone(),
                reason: "the service has no PRIMARY deployment".into(),
            })?;
        let cached = self
            .running_cache
            .lock()
            .unwrap()
            .clone()
            .filter(|r| r.task_definition_arn == primary.task_definition_arn);
        if let Some(running) = cached {
            return Ok(running);
        }
        let td = ecs
            .describe_task_definition(&primary.task_definition_arn)
            .await?;
        let running = RunningRunner::from_task_definition(
            &td,
            &config.runner_container,
            config.version_label.as_deref(),
        )?;
        *self.running_cache.lock().unwrap() = Some(running.clone());
        Ok(running)
    }

    /// Checks the source and decides, touching nothing (the decision with
    /// every reason).
    pub async fn check(&self) -> Result<CheckReport> {
        metrics::gauge!(METRIC_LAST_CHECK).set(self.clock.now().timestamp() as f64);
        let release = match self.source.latest(&self.policy.channel).await {
            Ok(r) => {
                metrics::counter!(METRIC_CHECKS, "result" => "ok").increment(1);
                r
            }
            Err(e) => {
                metrics::counter!(METRIC_CHECKS, "result" => "error").increment(1);
                return Err(e.into());
            }
        };
        self.decide(release).await
    }

    /// Decides on `release` against what is true now: the journal, ECS, the
    /// stack and the quarantine store are read again; the release source is
    /// not (one check is one request to it, and one count in
    /// `runner_updater_checks_total`).
    async fn decide(&self, release: AdmittedRelease) -> Result<CheckReport> {
        let now = self.clock.now();
        let unfinished = self
            .journal
            .load(&self.config.runner)
            .await?
            .filter(|e| !e.is_finished());
        let running = self.running().await?;
        let version = running.version.clone().ok_or_else(|| Error::Conflict(format!(
            "cannot tell the version service {} runs: container {:?} has no version label and its image {} has no version tag; set targets[0].version_label",
            self.config.targets[0].service, running.container, running.image
        )))?;
        let image = running.image_ref.clone().ok_or_else(|| {
            Error::Conflict(format!(
                "the running image {:?} of service {} is not a valid image reference",
                running.image, self.config.targets[0].service
            ))
        })?;
        let infra = self.infra.read().await?;
        let (record, _) = self.quarantine.load(&self.config.runner).await?;
        let mut state = CurrentState::new(
            version,
            image,
            infra.unwrap_or_else(|| InfraVersion::from("unknown")),
        )
        .with_wave_seed(self.config.effective_wave_seed());
        state.highest_successful_version = record.highest_successful_version.clone();
        state.quarantine = record.quarantine.clone();
        let mut policy = self.policy.clone();
        if policy.hold.is_none() {
            policy.hold = record.hold.clone();
        }
        let decision = evaluate(&state, &release, &policy, now);
        metrics::gauge!(METRIC_VERSION_INFO,
            "current" => state.version.to_string(), "available" => release.version.to_string())
        .set(1.0);
        for entry in &record.quarantine {
            metrics::gauge!(METRIC_QUARANTINED, "version" => entry.version.to_string())
                .set(if entry.is_active(now) { 1.0 } else { 0.0 });
        }
        Ok(CheckReport {
            release,
            state,
            decision,
            unfinished,
        })
    }

    /// One cycle: resume an unfinished update, or check, decide, lock,
    /// deploy every target, quarantine or record, notify. Errors mean the
    /// cycle could not start or read what it needs (source, ECS, stores);
    /// what happened to an update is in the report.
    pub async fn run_once(&self) -> Result<CycleReport> {
        let _running = self
            .running
            .try_lock()
            .map_err(|_| Error::CycleInProgress)?;
        let started_at = self.clock.now();
        let mut report = CycleReport {
            runner: self.config.runner.clone(),
            started_at,
            finished_at: started_at,
            current_version: None,
            release_version: None,
            decision: None,
            resumed: false,
            outcome: CycleOutcome::Skipped,
            targets: Vec::new(),
            journalled: Vec::new(),
            fencing_token: None,
            quarantined: false,
            warnings: Vec::new(),
        };
        let check = self.check().await?;
        report.current_version = Some(check.state.version.to_string());
        report.release_version = Some(check.release.version.to_string());
        if let Some(entry) = check.unfinished {
            report.release_version = Some(entry.release.version.to_string());
            return self.with_lock(report, Some(entry), None).await;
        }
        for code in check.decision.reason_codes() {
            metrics::counter!(METRIC_DECISIONS, "reason" => code).increment(1);
        }
        report.decision = Some(check.decision.clone());
        if let Some((required, url)) = check.decision.infrastructure_update_required() {
            metrics::gauge!(METRIC_BLOCKED, "required_infra" => required.to_string()).set(1.0);
            report.outcome = CycleOutcome::Blocked {
                required: required.to_string(),
                running: check.state.infra_version.to_string(),
                template_url: url.to_string(),
            };
            tracing::warn!(runner = %self.config.runner, release = %check.release.version,
                required_infra = %required, template_url = url, "blocked on infrastructure");
            report.finished_at = self.clock.now();
            return Ok(report);
        }
        if !check.decision.is_update() {
            tracing::info!(runner = %self.config.runner, decision = %check.decision, "skip");
            report.finished_at = self.clock.now();
            return Ok(report);
        }
        metrics::counter!(METRIC_DECISIONS, "reason" => "update").increment(1);
        self.with_lock(report, None, Some(check.release)).await
    }

    /// Takes the lock, then resumes `unfinished` or starts `release`;
    /// always releases the lock.
    async fn with_lock(
        &self,
        mut report: CycleReport,
        unfinished: Option<JournalEntry>,
        release: Option<AdmittedRelease>,
    ) -> Result<CycleReport> {
        let wait_start = self.clock.monotonic();
        let guard = match self
            .lock
            .acquire(
                &self.config.runner,
                &self.config.owner,
                self.config.lease,
                self.config.lock_wait,
            )
            .await
        {
            Ok(g) => Arc::new(g),
            Err(LockError::Held { holder, .. }) => {
                report.outcome = CycleOutcome::LockBusy { holder };
                report.finished_at = self.clock.now();
                return Ok(report);
            }
            Err(e) => return Err(e.into()),
        };
        metrics::histogram!(METRIC_LOCK_WAIT)
            .record((self.clock.monotonic() - wait_start).as_secs_f64());
        *self.active.lock().unwrap_or_else(|e| e.into_inner()) = Some(guard.clone());
        report.fencing_token = Some(guard.token().get());
        let result = self
            .under_lock(&mut report, guard.clone(), unfinished, release)
            .await;
        if let Err(e) = self.lock.release(&guard).await {
            report
                .warnings
                .push(format!("could not release the lock: {e}"));
        }
        *self.active.lock().unwrap_or_else(|e| e.into_inner()) = None;
        report.finished_at = self.clock.now();
        result.map(|()| report)
    }

    async fn under_lock(
        &self,
        report: &mut CycleReport,
        guard: Arc<LeaseGuard>,
        unfinished: Option<JournalEntry>,
        release: Option<AdmittedRelease>,
    ) -> Result<()> {
        // Under the lock, the journal and ECS are authoritative: another
        // updater may have started (and died), or finished, since we
        // looked. A new update is decided again on what is true now.
        // An unfinished update seen before the lock may have been finished
        // (or rolled back and quarantined) by the holder we waited for:
        // resume only what the journal holds now, else decide afresh.
        let unfinished = match unfinished {
            Some(_) => self
                .journal
                .load(&self.config.runner)
                .await?
                .filter(|e| !e.is_finished()),
            None => None,
        };
        let (unfinished, release) = match (unfinished, release) {
            (Some(e), _) => (Some(e), None),
            (None, release) => {
                let recheck = match release {
                    Some(release) => self.decide(release).await?,
                    None => self.check().await?,
                };
                match recheck.unfinished {
                    Some(e) => (Some(e), None),
                    None if recheck.decision.is_update() => (None, Some(recheck.release)),
                    None => {
                        tracing::info!(runner = %self.config.runner, decision = %recheck.decision,
                            "skip: the state changed while waiting for the lock");
                        report.decision = Some(recheck.decision);
                        report.outcome = CycleOutcome::Skipped;
                        return Ok(());
                    }
                }
            }
        };
        let now = self.clock.now();
        let resumed = unfinished.is_some();
        let entry = match (unfinished, release) {
            (Some(entry), _) => entry,
            (None, Some(release)) => JournalEntry {
                key: self.config.runner.clone(),
                update_id: format!(
                    "{}-{:08x}",
                    now.format("%Y%m%dT%H%M%SZ"),
                    rand::random::<u32>()
                ),
                release: release.into_release(),
                targets: self
                    .config
                    .targets
                    .iter()
                    .map(|t| TargetProgress {
                        name: t.name.clone(),
                        ..Default::default()
                    })
                    .collect(),
                step: JournalStep::Locked,
                owner: self.config.owner.clone(),
                token: guard.token(),
                started_at: now,
                written_at: now,
                history: Vec::new(),
            },
            (None, None) => return Ok(()),
        };
        if entry.targets.len() != self.config.targets.len()
            || entry
                .targets
                .iter()
                .zip(&self.config.targets)
                .any(|(p, t)| p.name != t.name)
        {
            return Err(Error::Conflict(format!(
                "the journal of {} holds an unfinished update of {} for targets {:?}, but this \
                 updater is configured for {:?}; finish it with the configuration that started it",
                entry.key,
                entry.release.version,
                entry.targets.iter().map(|t| &t.name).collect::<Vec<_>>(),
                self.config
                    .targets
                    .iter()
                    .map(|t| &t.name)
                    .collect::<Vec<_>>()
            )));
        }
        report.resumed = resumed;
        report.release_version = Some(entry.release.version.to_string());
        let writer = Arc::new(JournalWriter {
            journal: self.journal.clone(),
            lock: self.lock.clone(),
            guard: guard.clone(),
            clock: self.clock.clone(),
            step_budget: self.config.step_budget,
            entry: tokio::sync::Mutex::new(entry.clone()),
            written: std::sync::Mutex::new(Vec::new()),
        });
        tracing::info!(runner = %entry.key, release = %entry.release.version,
            fencing_token = guard.token().get(), resumed, step = entry.step.name(), "update under lock");
        let deploy_start = self.clock.monotonic();
        let result = if resumed {
            self.resume(&writer, report).await
        } else {
            match writer.write(JournalStep::Locked).await {
                Ok(()) => Ok(self.deploy_from(&writer, report, 0, None).await),
                Err(e) => Err(e),
            }
        };
        report.journalled = writer.written();
        let deployed = match result {
            Ok(d) => d,
            Err(e @ (Error::Fenced { .. } | Error::Lock(_))) => {
                Deployed::Interrupted(e.to_string())
            }
            Err(e) => return Err(e),
        };
        let final_entry = writer.snapshot().await;
        self.conclude(&writer, report, &final_entry, deployed).await;
        report.journalled = writer.written();
        metrics::histogram!(METRIC_DEPLOYMENT_DURATION)
            .record((self.clock.monotonic() - deploy_start).as_secs_f64());
        Ok(())
    }

    /// Resumes a journalled update from its last step.
    async fn resume(
        &self,
        writer: &Arc<JournalWriter>,
        report: &mut CycleReport,
    ) -> Result<Deployed> {
        let entry = writer.snapshot().await;
        tracing::info!(runner = %entry.key, release = %entry.release.version,
            step = entry.step.name(), "resuming journalled update");
        match entry.step.clone() {
            JournalStep::Locked => Ok(self.deploy_from(writer, report, 0, None).await),
            JournalStep::Registering { target } => {
                Ok(self.deploy_from(writer, report, target, None).await)
            }
            JournalStep::Registered {
                target,
                task_definition_arn,
            } => {
                let previous = entry.targets[target]
                    .previous_task_definition_arn
                    .clone()
                    .unwrap_or_default();
                let point = ResumePoint::Registered {
                    task_definition_arn,
                    previous_task_definition_arn: previous,
                    previous_deployment_id: entry.targets[target].previous_deployment_id.clone(),
                };
                Ok(self.deploy_from(writer, report, target, Some(point)).await)
            }
            JournalStep::ServiceUpdated {
                target,
                deployment_id,
            }
            | JournalStep::Monitoring {
                target,
                deployment_id,
            } => {
                writer
                    .write(JournalStep::Monitoring {
                        target,
                        deployment_id: deployment_id.clone(),
                    })
                    .await?;
                let progress = &entry.targets[target];
                let point = ResumePoint::Deployed {
                    deployment_id,
                    task_definition_arn: progress.task_definition_arn.clone().unwrap_or_default(),
                    previous_task_definition_arn: progress
                        .previous_task_definition_arn
                        .clone()
                        .unwrap_or_default(),
                };
                Ok(self.deploy_from(writer, report, target, Some(point)).await)
            }
            JournalStep::Succeeded => Ok(Deployed::AllSucceeded),
            JournalStep::RollingBack { target, reason } => {
                if entry.targets[target].outcome.is_none() {
                    // Our own rollback of the failing target was under way:
                    // the verdict was failure. Finish that rollback.
                    let ok = self.revert(writer, target, &reason).await?;
                    let rest = self.revert_earlier(writer, target, &reason).await?;
                    Ok(Deployed::Failed {
                        reason,
                        rollback_failed: !(ok && rest),
                    })
                } else {
                    let ok = self.revert_earlier(writer, target + 1, &reason).await?;
                    Ok(Deployed::Failed {
                        reason,
                        rollback_failed: !ok,
                    })
                }
            }
            JournalStep::Quarantined { reason } => {
                let failed = entry
                    .targets
                    .iter()
                    .position(|t| {
                        t.outcome
                            .as_deref()
                            .is_some_and(|o| o != "succeeded" && o != "already_running")
                    })
                    .unwrap_or(0);
                let ok = self.revert_earlier(writer, failed, &reason).await?;
                Ok(Deployed::Failed {
                    reason,
                    rollback_failed: !ok,
                })
            }
            JournalStep::Done { .. } => Ok(Deployed::AllSucceeded),
        }
    }

    /// Deploys targets `from..`, the first one from `point` when resuming.
    async fn deploy_from(
        &self,
        writer: &Arc<JournalWriter>,
        report: &mut CycleReport,
        from: usize,
        mut point: Option<ResumePoint>,
    ) -> Deployed {
        let release = writer.snapshot().await.release;
        for i in from..self.config.targets.len() {
            let target = &self.config.targets[i];
            // A target this update already finished may have been replaced
            // since (an operator rolled it back while this updater was dead
            // or between targets): going on would undo nothing but would
            // leave a mixed release, and the next cycle would redeploy over
            // the operator. Stop here; `conclude` records a hold. A target
            // whose deployment is already under way (resumed after
            // UpdateService) is watched to its verdict first: leaving it
            // unwatched would leave a failing deployment in place.
            // (For the first target there is nothing before it to check.)
            let in_flight = matches!(point, Some(ResumePoint::Deployed { .. }));
            if !in_flight {
                let entry = writer.snapshot().await;
                match self.replaced_targets(&entry, i).await {
                    Ok(replaced) if replaced.is_empty() => {}
                    Ok(replaced) => {
                        let reason = format!(
                            "{}; not deploying target {} (someone else's deployment is respected)",
                            messages(&replaced),
                            target.name
                        );
                        report
                            .targets
                            .push(target_report(target, None, &reason, Vec::new()));
                        return Deployed::Superseded(reason);
                    }
                    Err(e) => return Deployed::Interrupted(e.to_string()),
                }
            }
            let image = match target.image_of(&release) {
                Ok(image) => image.clone(),
                Err(e) => return Deployed::Interrupted(e.to_string()),
            };
            let request = RolloutRequest {
                image,
                version: release.version.clone(),
            };
            let rollout = match self.rollout_for(i) {
                Ok(r) => r.with_gate(Arc::new(JournalGate {
                    target: i,
                    writer: writer.clone(),
                })),
                Err(e) => return Deployed::Interrupted(e.to_string()),
            };
            let rt = target.rollout_target();
            tracing::info!(runner = %self.config.runner, service = %target.service,
                release = %release.version, fencing_token = writer.guard.token().get(), "deploying target");
            let result = match point.take() {
                Some(p) => rollout.resume(&rt, &request, &p).await,
                None => rollout.run(&rt, &request).await,
            };
            let rep = match result {
                Ok(rep) => rep,
                Err(e) => {
                    let reason = match &e {
                        ecs_rollout::Error::StepRefused { .. } => e.to_string(),
                        other => format!("target {}: {other}", target.name),
                    };
                    report
                        .targets
                        .push(target_report(target, None, &reason, Vec::new()));
                    return Deployed::Interrupted(reason);
                }
            };
            let kind = rep.outcome.kind().to_string();
            let summary = rep.outcome.summary();
            tracing::info!(runner = %self.config.runner, service = %target.service,
                outcome = %kind, deployment_id = rep.outcome.evidence().map(|e| e.deployment_id.as_str()).unwrap_or(""),
                "target finished: {summary}");
            report.targets.push(target_report(
                target,
                Some(rep.outcome.clone()),
                &summary,
                rep.warnings.clone(),
            ));
            let outcome_kind = kind.clone();
            let arns = rep.outcome.evidence().map(|e| {
                (
                    e.task_definition_arn.clone(),
                    e.previous_task_definition_arn.clone(),
                )
            });
            let _ = writer
                .write_with(writer.snapshot().await.step, |e| {
                    e.targets[i].outcome = Some(outcome_kind);
                    if let Some((arn, previous)) = arns {
                        e.targets[i].task_definition_arn.get_or_insert(arn);
                        e.targets[i]
                            .previous_task_definition_arn
                            .get_or_insert(previous);
                    }
                })
                .await;
            match classify(&rep) {
                TargetResult::Ok => continue,
                TargetResult::Unverified => {
                    return Deployed::Unverified(format!("target {}: {summary}", target.name));
                }
                TargetResult::Unproven => {
                    return Deployed::Interrupted(format!(
                        "target {}: {summary} (not a verdict on the release; the next cycle \
                         resumes from the journal)",
                        target.name
                    ));
                }
                TargetResult::Superseded => {
                    return Deployed::Superseded(format!("target {}: {summary}", target.name));
                }
                TargetResult::Failed { rollback_failed } => {
                    let reason = format!("target {}: {summary}", target.name);
                    if let Err(e) = writer
                        .write(JournalStep::Quarantined {
                            reason: reason.clone(),
                        })
                        .await
                    {
                        return Deployed::Interrupted(e.to_string());
                    }
                    return match self.revert_earlier(writer, i, &reason).await {
                        Ok(ok) => Deployed::Failed {
                            reason,
                            rollback_failed: rollback_failed || !ok,
                        },
                        Err(e) => Deployed::Interrupted(e.to_string()),
                    };
                }
            }
        }
        // Every target succeeded; one finished earlier may have been
        // replaced while a later one was watched (or the last one right
        // after its verdict). Then the release is not what runs: report it
        // as superseded (and hold), never as success. One DescribeServices
        // per target, once per successful update.
        let entry = writer.snapshot().await;
        match self
            .replaced_targets(&entry, self.config.targets.len())
            .await
        {
            Ok(replaced) if replaced.is_empty() => {}
            Ok(replaced) => {
                return Deployed::Superseded(format!(
                    "{}; replaced after this update deployed it",
                    messages(&replaced)
                ));
            }
            Err(e) => return Deployed::Interrupted(e.to_string()),
        }
        Deployed::AllSucceeded
    }

    /// Rolls back every target before `failed` that was updated (newest
    /// first). Whether every rollback completed.
    async fn revert_earlier(
        &self,
        writer: &Arc<JournalWriter>,
        failed: usize,
        reason: &str,
    ) -> Result<bool> {
        let entry = writer.snapshot().await;
        let replaced = self.replaced_targets(&entry, failed).await?;
        let mut all_ok = true;
        for j in (0..failed.min(entry.targets.len())).rev() {
            let p = &entry.targets[j];
            if p.reverted || p.outcome.as_deref() != Some("succeeded") {
                continue;
            }
            let name = &self.config.targets[j].name;
            if replaced.iter().any(|(k, _)| *k == j) {
                // Someone else deployed it after us: rolling it back to our
                // previous task definition would undo their deployment.
                tracing::warn!(runner = %self.config.runner, target = %name,
                    "not rolling back: someone else deployed this target after this update");
                continue;
            }
            all_ok &= self.revert(writer, j, reason).await?;
        }
        Ok(all_ok)
    }

    /// The targets before `upto` that this update deployed whose PRIMARY
    /// deployment is now someone else's ([`replaced_by`]), each as
    /// (index, "target NAME: ..."). (A target this update reverted is
    /// replaced by our own rollback; the callers skip reverted targets.)
    async fn replaced_targets(
        &self,
        entry: &JournalEntry,
        upto: usize,
    ) -> Result<Vec<(usize, String)>> {
        let mut replaced = Vec::new();
        for (j, p) in entry.targets.iter().enumerate().take(upto) {
            if p.outcome.as_deref() != Some("succeeded") {
                continue;
            }
            let Some(ours) = p.task_definition_arn.as_deref() else {
                continue;
            };
            let target = &self.config.targets[j];
            let service = self
                .retrying_ecs(target)
                .describe_service(&target.cluster, &target.service)
                .await?;
            if let Some(primary) =
                replaced_by(&service, ours, p.deployment_id.as_deref(), entry.started_at)
            {
                replaced.push((
                    j,
                    format!(
                        "target {}: service {} now runs {} (deployment {}), not this update's \
                         {ours}",
                        target.name, target.service, primary.task_definition_arn, primary.id
                    ),
                ));
            }
        }
        Ok(replaced)
    }

    /// Rolls target `j` back to its journalled previous task definition.
    async fn revert(&self, writer: &Arc<JournalWriter>, j: usize, reason: &str) -> Result<bool> {
        let entry = writer.snapshot().await;
        let p = entry.targets[j].clone();
        let (Some(previous), Some(failed)) =
            (p.previous_task_definition_arn, p.task_definition_arn)
        else {
            return Ok(true);
        };
        writer
            .write(JournalStep::RollingBack {
                target: j,
                reason: reason.to_string(),
            })
            .await?;
        let target = &self.config.targets[j];
        let rollout = self.rollout_for(j)?;
        let evidence = rollout
            .revert(&target.rollout_target(), &previous, &failed, reason)
            .await?;
        let completed = evidence.completed;
        writer
            .write_with(writer.snapshot().await.step, |e| {
                e.targets[j].reverted = true;
            })
            .await?;
        tracing::warn!(runner = %self.config.runner, service = %target.service, completed,
            "rolled back an updated target because a later target failed");
        Ok(completed)
    }

    /// Quarantine, success record, journal Done, metrics, notification.
    async fn conclude(
        &self,
        writer: &Arc<JournalWriter>,
        report: &mut CycleReport,
        entry: &JournalEntry,
        deployed: Deployed,
    ) {
        let now = self.clock.now();
        let release = &entry.release;
        for (t, p) in report.targets.iter_mut().filter_map(|t| {
            entry
                .targets
                .iter()
                .find(|p| p.name == t.name)
                .map(|p| (t, p))
        }) {
            if p.reverted {
                t.reverted = Some(true);
            }
        }
        report.outcome = match deployed {
            Deployed::AllSucceeded => CycleOutcome::Succeeded,
            Deployed::Failed {
                reason,
                rollback_failed: false,
            } => CycleOutcome::RolledBack { reason },
            Deployed::Failed {
                reason,
                rollback_failed: true,
            } => CycleOutcome::RollbackFailed { reason },
            Deployed::Superseded(reason) => CycleOutcome::Superseded { reason },
            Deployed::Unverified(reason) => CycleOutcome::DeployedUnverified { reason },
            Deployed::Interrupted(reason) => CycleOutcome::Interrupted { reason },
        };
        let outcome = report.outcome.clone();
        let key = self.config.runner.clone();
        match &outcome {
            CycleOutcome::Succeeded => {
                if let Err(e) = writer.write(JournalStep::Succeeded).await {
                    report.outcome = CycleOutcome::Interrupted {
                        reason: e.to_string(),
                    };
                    return;
                }
                let version = release.version.clone();
                let summary = format!("updated to {version}");
                let stored = modify(self.quarantine.as_ref(), &key, |r| {
                    let higher = r
                        .highest_successful_version
                        .as_ref()
                        .is_none_or(|h| h.try_cmp(&version).is_ok_and(|o| o.is_lt()));
                    if higher {
                        r.highest_successful_version = Some(version.clone());
                    }
                    r.clear_quarantine(&version);
                    r.last_outcome = Some(LastOutcome {
                        at: now,
                        version: version.clone(),
                        outcome: "succeeded".into(),
                        summary: summary.clone(),
                    });
                })
                .await;
                if let Err(e) = stored {
                    report
                        .warnings
                        .push(format!("could not record the success: {e}"));
                }
                if let Some(reporter) = &self.reporter
                    && let Err(e) = reporter.record_success(report).await
                {
                    report
                        .warnings
                        .push(format!("could not report the new version: {e}"));
                }
            }
            CycleOutcome::RolledBack { reason } | CycleOutcome::RollbackFailed { reason } => {
                let reason = reason.clone();
                let backoff = self.policy.quarantine_backoff;
                let code = outcome.code();
                let started = entry.started_at;
                let stored = modify(self.quarantine.as_ref(), &key, |r| {
                    // Idempotent on resume: an entry recorded by this update
                    // (after it started) is not counted twice.
                    let previous = r.quarantine.iter().find(|q| q.matches(release)).cloned();
                    let already = previous
                        .as_ref()
                        .is_some_and(|q| q.retry_after > started && q.reason == reason);
                    if !already {
                        r.quarantine(QuarantineEntry::after_failure(
                            previous.as_ref(),
                            release,
                            reason.clone(),
                            now,
                            &backoff,
                        ));
                    }
                    r.last_outcome = Some(LastOutcome {
                        at: now,
                        version: release.version.clone(),
                        outcome: code.into(),
                        summary: reason.clone(),
                    });
                })
                .await;
                match stored {
                    Ok(_) => {
                        report.quarantined = true;
                        metrics::gauge!(METRIC_QUARANTINED, "version" => release.version.to_string())
                            .set(1.0);
                    }
                    Err(e) => {
                        // Without the quarantine record the next cycle
                        // would retry: keep the journal open so it resumes.
                        report.outcome = CycleOutcome::Interrupted {
                            reason: format!("could not quarantine {}: {e}", release.version),
                        };
                        return;
                    }
                }
            }
            CycleOutcome::Superseded { reason } => {
                // Someone else deployed during ours (an operator's rollback
                // or hotfix): that counts as a hold, not as an invitation to
                // deploy the release again at the next check. Without the
                // hold the next cycle would undo their deployment: keep the
                // journal open so it is recorded then.
                let hold = Hold {
                    reason: format!(
                        "someone else deployed during the update to {} ({reason}); held as \
                         after a manual rollback so the updater does not undo it. Lift with \
                         `runner-updater hold clear`",
                        release.version
                    ),
                    expires_at: None,
                };
                let recorded = modify(self.quarantine.as_ref(), &key, |r| {
                    r.last_outcome = Some(LastOutcome {
                        at: now,
                        version: release.version.clone(),
                        outcome: "superseded".into(),
                        summary: reason.clone(),
                    });
                    r.hold = Some(hold.clone());
                })
                .await;
                if let Err(e) = recorded {
                    report.outcome = CycleOutcome::Interrupted {
                        reason: format!(
                            "could not record the hold after {reason}: {e}; the next cycle \
                             records it before anything else"
                        ),
                    };
                    return;
                }
                tracing::warn!(runner = %key, release = %release.version, %reason,
                    "superseded by someone else's deployment: held");
            }
            CycleOutcome::DeployedUnverified { reason } => {
                let _ = modify(self.quarantine.as_ref(), &key, |r| {
                    r.last_outcome = Some(LastOutcome {
                        at: now,
                        version: release.version.clone(),
                        outcome: "deployed_unverified".into(),
                        summary: reason.clone(),
                    });
                })
                .await;
            }
            CycleOutcome::Interrupted { reason } => {
                tracing::warn!(runner = %key, release = %release.version, %reason,
                    "update interrupted; the journal keeps it for the next cycle");
                metrics::counter!(METRIC_UPDATES, "outcome" => "interrupted").increment(1);
                return;
            }
            _ => {}
        }
        let code = report.outcome.code();
        if let Err(e) = writer
            .write(JournalStep::Done {
                outcome: code.to_string(),
            })
            .await
        {
            report
                .warnings
                .push(format!("could not close the journal: {e}"));
        }
        metrics::counter!(METRIC_UPDATES, "outcome" => code).increment(1);
        tracing::info!(runner = %key, release = %release.version, outcome = code,
            fencing_token = writer.guard.token().get(), "{}", report.summary());
        let notification = Notification {
            runner: key,
            outcome: code.to_string(),
            from_version: report.current_version.clone(),
            to_version: release.version.to_string(),
            summary: report.summary(),
            targets: report
                .targets
                .iter()
                .map(|t| (t.name.clone(), t.outcome_kind.clone()))
                .collect(),
        };
        if let Err(e) = self.notifier.notify(&notification).await {
            metrics::counter!(METRIC_NOTIFY_FAILURES).increment(1);
            tracing::warn!(error = %e, "notification failed");
            report.warnings.push(e.to_string());
        }
    }

    /// Loops: a cycle at every check time of `schedule` until `shutdown`
    /// completes. Never runs two cycles at once. On shutdown during a cycle
    /// the cycle is dropped at its next await point (the journal holds the
    /// last step written, so the next updater resumes it) and the lock is
    /// released. Returns the reports of the cycles that finished.
    pub async fn run(
        &self,
        mut schedule: CheckSchedule,
        shutdown: impl Future<Output = ()>,
        mut on_report: impl FnMut(Result<&CycleReport, &Error>),
    ) {
        tokio::pin!(shutdown);
        let mut next = schedule.first_check_after(self.clock.now());
        loop {
            let wait = until(next, self.clock.now());
            tokio::select! {
                () = &mut shutdown => break,
                () = self.clock.sleep(wait) => {}
            }
            tokio::select! {
                () = &mut shutdown => {
                    self.abandon().await;
                    break;
                }
                result = self.run_once() => match &result {
                    Ok(report) => on_report(Ok(report)),
                    Err(e) => {
                        tracing::warn!(runner = %self.config.runner, error = %e, "cycle failed");
                        on_report(Err(e));
                    }
                },
            }
            next = schedule.next_check_after(self.clock.now());
        }
    }

    /// Releases the lock of a cycle that was dropped mid-way.
    async fn abandon(&self) {
        let guard = self.active.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(guard) = guard {
            match self.lock.release(&guard).await {
                Ok(()) => tracing::info!(runner = %self.config.runner,
                    fencing_token = guard.token().get(), "shutdown: lock released, journal kept for resume"),
                Err(e) => tracing::warn!(error = %e, "shutdown: could not release the lock"),
            }
        }
    }
}

/// The PRIMARY deployment of `service` if it is someone else's, given that
/// this update (started at `started_at`) deployed `ours` in deployment
/// `our_deployment` and saw it succeed. Someone else's: not our task
/// definition, and either the read still lists our deployment (so it is
/// not stale: ours was replaced), or the PRIMARY was created after the
/// update started. A stale read from before our deployment (its PRIMARY
/// older than the update, ours not listed) is no evidence; neither is a
/// PRIMARY without `createdAt` when ours is not listed.
fn replaced_by<'s>(
    service: &'s ServiceDescription,
    ours: &str,
    our_deployment: Option<&str>,
    started_at: DateTime<Utc>,
) -> Option<&'s ecs_rollout::Deployment> {
    let primary = service.primary()?;
    if primary.task_definition_arn == ours {
        return None;
    }
    let ours_listed =
        our_deployment.is_some_and(|id| service.deployments.iter().any(|d| d.id == id));
    let newer = primary.created_at.is_some_and(|at| at > started_at);
    (ours_listed || newer).then_some(primary)
}

/// The replaced targets' messages, joined.
fn messages(replaced: &[(usize, String)]) -> String {
    replaced
        .iter()
        .map(|(_, m)| m.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

fn until(at: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    (at - now).to_std().unwrap_or(Duration::ZERO)
}

enum TargetResult {
    Ok,
    Superseded,
    Failed {
        rollback_failed: bool,
    },
    /// Deployed, but nothing could be verified (desired count 0).
    Unverified,
    /// Neither a success nor a proven failure of the release (e.g. the
    /// monitor lost sight of the deployment): never quarantined; the journal
    /// stays open and the next cycle resumes watching.
    Unproven,
}

fn classify(report: &RolloutReport) -> TargetResult {
    match &report.outcome {
        RolloutOutcome::Succeeded { .. } | RolloutOutcome::AlreadyRunning { .. } => {
            TargetResult::Ok
        }
        RolloutOutcome::Superseded { .. } => TargetResult::Superseded,
        // A STOPPED deployment was neither finished nor rolled back: like a
        // failed rollback, it needs a person.
        RolloutOutcome::RollbackFailed { .. } | RolloutOutcome::DeploymentStopped { .. } => {
            TargetResult::Failed {
                rollback_failed: true,
            }
        }
        RolloutOutcome::DeployedUnverified { .. } => TargetResult::Unverified,
        outcome if outcome.is_version_failure() => TargetResult::Failed {
            rollback_failed: false,
        },
        _ => TargetResult::Unproven,
    }
}

fn target_report(
    target: &Target,
    outcome: Option<RolloutOutcome>,
    summary: &str,
    warnings: Vec<String>,
) -> TargetReport {
    TargetReport {
        name: target.name.clone(),
        cluster: target.cluster.clone(),
        service: target.service.clone(),
        outcome_kind: outcome
            .as_ref()
            .map_or("not_reached".to_string(), |o| o.kind().to_string()),
        outcome,
        summary: summary.to_string(),
        reverted: None,
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use ecs_rollout::{Deployment, DeploymentStatus};

    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_735_689_600 + secs, 0).unwrap()
    }

    fn deployment(
        id: &str,
        td: &str,
        status: DeploymentStatus,
        created: Option<i64>,
    ) -> Deployment {
        Deployment {
            id: id.into(),
            status: Some(status),
            task_definition_arn: td.into(),
            created_at: created.map(at),
            ..Default::default()
        }
    }

    fn service(deployments: Vec<Deployment>) -> ServiceDescription {
        ServiceDescription {
            deployments,
            ..Default::default()
        }
    }

    const STARTED: i64 = 100;

    fn judge(s: &ServiceDescription) -> Option<String> {
        replaced_by(s, "runner:2", Some("ecs-svc/ours"), at(STARTED)).map(|d| d.id.clone())
    }

    #[test]
    fn who_runs_a_target_this_update_finished() {
        use DeploymentStatus::{Active, Primary};
        // Ours is PRIMARY: not replaced.
        let s = service(vec![deployment(
            "ecs-svc/ours",
            "runner:2",
            Primary,
            Some(STARTED + 5),
        )]);
        assert_eq!(judge(&s), None);
        // Someone else's PRIMARY, ours still listed (draining): replaced.
        let s = service(vec![
            deployment("ecs-svc/op", "runner:1", Primary, Some(STARTED - 50)),
            deployment("ecs-svc/ours", "runner:2", Active, Some(STARTED + 5)),
        ]);
        assert_eq!(judge(&s).as_deref(), Some("ecs-svc/op"));
        // Someone else's PRIMARY created after the update started, ours
        // gone from the list: replaced.
        let s = service(vec![deployment(
            "ecs-svc/op",
            "runner:1",
            Primary,
            Some(STARTED + 1),
        )]);
        assert_eq!(judge(&s).as_deref(), Some("ecs-svc/op"));
        // A stale read from before our deployment: the old PRIMARY, created
        // before the update (or exactly at its start), ours not listed.
        for created in [STARTED - 3_600, STARTED] {
            let s = service(vec![deployment(
                "ecs-svc/old",
                "runner:1",
                Primary,
                Some(created),
            )]);
            assert_eq!(judge(&s), None, "created at {created}");
        }
        // No createdAt and ours not listed: no evidence.
        let s = service(vec![deployment("ecs-svc/op", "runner:1", Primary, None)]);
        assert_eq!(judge(&s), None);
        // Without our deployment id only the time tells.
        let s = service(vec![
            deployment("ecs-svc/old", "runner:1", Primary, Some(STARTED - 1)),
            deployment("ecs-svc/ours", "runner:2", Active, Some(STARTED + 5)),
        ]);
        assert_eq!(replaced_by(&s, "runner:2", None, at(STARTED)), None);
        // No PRIMARY at all: nothing to say.
        let s = service(vec![deployment(
            "ecs-svc/ours",
            "runner:2",
            Active,
            Some(STARTED + 5),
        )]);
        assert_eq!(judge(&s), None);
    }
}
