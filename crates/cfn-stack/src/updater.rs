//! `StackUpdater`: read, plan, apply and wait for runner-stack updates.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use runner_version::InfraVersion;
use tracing::{info, warn};
use update_clock::Clock;

use crate::{
    AzParameterNames, CfnApi, ChangeSetRef, ChangeSetStart, Error, ProgressSink, ResourceChange,
    StackDescription, StackEvent, StackProgress, StackStatus, StackUpdateOutcome,
    StackUpdateRequest, StatusKind, SubnetDirectory, TemplateFetcher, TemplateSource,
    TemplateUrlPolicy, UpdateStart,
    parameters::{ParameterChange, resolve_parameters},
    subnets::validate_subnets,
    template_fetch::verify_template_sha256,
};

/// What to change in a stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StackChange {
    /// Use a new template (the seed's "Updating Infrastructure").
    ReplaceTemplate {
        /// An `https` S3 URL (see [`TemplateUrlPolicy`]).
        template_url: String,
        /// The parameters to set; every other parameter keeps its value.
        parameter_changes: BTreeMap<String, String>,
        /// The expected sha256 (hex) of the template body, checked with the
        /// updater's [`TemplateFetcher`] before any CloudFormation call.
        expected_sha256: Option<String>,
    },
    /// Keep the template, change only some parameters (the seed's
    /// "Updating CloudFormation Parameters").
    UseExistingTemplate {
        /// The parameters to set; every other parameter keeps its value.
        parameter_changes: BTreeMap<String, String>,
    },
}

impl StackChange {
    /// A template replacement without a hash check.
    pub fn replace_template(
        template_url: impl Into<String>,
        parameter_changes: impl IntoIterator<Item = (impl Into<String>, impl Into<String>)>,
    ) -> Self {
        StackChange::ReplaceTemplate {
            template_url: template_url.into(),
            parameter_changes: collect(parameter_changes),
            expected_sha256: None,
        }
    }

    /// A parameter-only change.
    pub fn parameters(
        parameter_changes: impl IntoIterator<Item = (impl Into<String>, impl Into<String>)>,
    ) -> Self {
        StackChange::UseExistingTemplate {
            parameter_changes: collect(parameter_changes),
        }
    }

    fn parameter_changes(&self) -> &BTreeMap<String, String> {
        match self {
            StackChange::ReplaceTemplate {
                parameter_changes, ..
            }
            | StackChange::UseExistingTemplate { parameter_changes } => parameter_changes,
        }
    }

    fn template(&self) -> TemplateSource {
        match self {
            StackChange::ReplaceTemplate { template_url, .. } => {
                TemplateSource::Url(template_url.clone())
            }
            StackChange::UseExistingTemplate { .. } => TemplateSource::Existing,
        }
    }
}

fn collect(
    pairs: impl IntoIterator<Item = (impl Into<String>, impl Into<String>)>,
) -> BTreeMap<String, String> {
    pairs
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect()
}

/// Where the infrastructure version of a stack is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InfraVersionKey {
    /// A stack output with this key.
    Output(String),
    /// A stack tag with this key.
    Tag(String),
}

/// Settings of a [`StackUpdater`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackUpdaterConfig {
    /// Which template URLs are accepted. Default: S3 only.
    pub template_urls: TemplateUrlPolicy,
    /// Time between two polls while waiting. Default: 5 s.
    pub poll_interval: Duration,
    /// How long to wait for a stack update. Default: 60 min.
    pub update_timeout: Duration,
    /// How long to wait for a change set to be created. Default: 5 min.
    pub change_set_timeout: Duration,
    /// Prefix of change set names (letters, digits, `-`; starts with a
    /// letter). Default: `cfn-stack-`.
    pub change_set_prefix: String,
    /// Capabilities acknowledged on every update. Default:
    /// `CAPABILITY_IAM`, `CAPABILITY_NAMED_IAM` (runner templates create
    /// IAM roles).
    pub capabilities: Vec<String>,
    /// Where the infrastructure version is read, first match wins.
    /// Default: output `InfrastructureVersion`, then tag
    /// `infrastructure-version`.
    pub infra_version_keys: Vec<InfraVersionKey>,
    /// Which parameters hold zones, subnets and the VPC. Default:
    /// [`AzParameterNames::default`].
    pub az_parameters: AzParameterNames,
}

impl Default for StackUpdaterConfig {
    fn default() -> Self {
        Self {
            template_urls: TemplateUrlPolicy::default(),
            poll_interval: Duration::from_secs(5),
            update_timeout: Duration::from_secs(60 * 60),
            change_set_timeout: Duration::from_secs(5 * 60),
            change_set_prefix: "cfn-stack-".into(),
            capabilities: vec!["CAPABILITY_IAM".into(), "CAPABILITY_NAMED_IAM".into()],
            infra_version_keys: vec![
                InfraVersionKey::Output("InfrastructureVersion".into()),
                InfraVersionKey::Tag("infrastructure-version".into()),
            ],
            az_parameters: AzParameterNames::default(),
        }
    }
}

impl StackUpdaterConfig {
    /// Rejects settings that cannot work.
    pub fn validate(&self) -> Result<(), Error> {
        self.template_urls.validate()?;
        self.az_parameters.validate()?;
        if self.poll_interval.is_zero() {
            return Err(Error::InvalidConfig(
                "poll_interval must be above zero".into(),
            ));
        }
        if self.update_timeout < self.poll_interval || self.change_set_timeout < self.poll_interval
        {
            return Err(Error::InvalidConfig(
                "update_timeout and change_set_timeout must be at least poll_interval".into(),
            ));
        }
        let prefix = &self.change_set_prefix;
        if !prefix.starts_with(|c: char| c.is_ascii_alphabetic())
            || !prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
            || prefix.len() > 100
        {
            return Err(Error::InvalidConfig(format!(
                "change_set_prefix {prefix:?} must start with a letter and hold only letters, digits and '-'"
            )));
        }
        Ok(())
    }
}

/// A stack as read for the update policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackState {
    /// Everything `DescribeStacks` said.
    pub description: StackDescription,
    /// The infrastructure version, if an output or tag carries it.
    pub infra_version: Option<InfraVersion>,
}

/// A previewed update: a created, not executed, change set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackPlan {
    /// The change set to execute with [`StackUpdater::apply_plan`].
    pub change_set: ChangeSetRef,
    /// The template the update uses.
    pub template: TemplateSource,
    /// Every parameter whose value changes, old → new, sorted by key.
    pub parameter_diff: Vec<ParameterChange>,
    /// What CloudFormation will do to the resources.
    pub resource_changes: Vec<ResourceChange>,
    /// Things an operator should read before applying (e.g. zones changed
    /// without subnets).
    pub warnings: Vec<String>,
}

/// The result of [`StackUpdater::plan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanOutcome {
    /// A change set is ready to apply.
    Planned(StackPlan),
    /// The update changes nothing; no change set is left behind.
    NoChanges {
        /// CloudFormation's words.
        reason: String,
    },
}

/// How [`StackUpdater::apply`] applies a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ApplyMode {
    /// Create a change set and execute it. Default.
    #[default]
    ChangeSet,
    /// Call `UpdateStack` directly.
    Direct,
}

/// Everything checked before a mutating call.
struct Prepared {
    request: StackUpdateRequest,
    diff: Vec<ParameterChange>,
    warnings: Vec<String>,
}

/// Reads, plans, applies and waits for updates of one or more stacks.
///
/// Every input check (template URL, template hash, parameter names,
/// required parameters, subnets) happens before any mutating
/// CloudFormation call; the URL and hash checks happen before any
/// CloudFormation call at all. A stack already in an `*_IN_PROGRESS`
/// state is [`Error::StackBusy`].
#[derive(Debug, Clone)]
pub struct StackUpdater {
    api: Arc<dyn CfnApi>,
    clock: Arc<dyn Clock>,
    config: StackUpdaterConfig,
    fetcher: Option<Arc<dyn TemplateFetcher>>,
    subnets: Option<Arc<dyn SubnetDirectory>>,
}

static CHANGE_SET_SEQ: AtomicU64 = AtomicU64::new(0);

impl StackUpdater {
    /// An updater over `api` waiting on `clock`. Fails when `config` does
    /// not [validate](StackUpdaterConfig::validate).
    pub fn new(
        api: Arc<dyn CfnApi>,
        clock: Arc<dyn Clock>,
        config: StackUpdaterConfig,
    ) -> Result<Self, Error> {
        config.validate()?;
        Ok(Self {
            api,
            clock,
            config,
            fetcher: None,
            subnets: None,
        })
    }

    /// Uses `fetcher` to check `expected_sha256` of replaced templates
    /// (without one, a change with an expected hash is refused).
    pub fn with_template_fetcher(mut self, fetcher: Arc<dyn TemplateFetcher>) -> Self {
        self.fetcher = Some(fetcher);
        self
    }

    /// Validates the subnets against `directory` whenever an update touches
    /// the zone, subnet or VPC parameters.
    pub fn with_subnet_directory(mut self, directory: Arc<dyn SubnetDirectory>) -> Self {
        self.subnets = Some(directory);
        self
    }

    /// The settings.
    pub fn config(&self) -> &StackUpdaterConfig {
        &self.config
    }

    /// Reads the stack and its infrastructure version.
    pub async fn read_stack(&self, stack: &str) -> Result<StackState, Error> {
        let description = self.api.describe_stack(stack).await?;
        let infra_version = self.infra_version_of(&description);
        Ok(StackState {
            description,
            infra_version,
        })
    }

    /// The infrastructure version of a described stack, from the first
    /// configured output or tag that has a non-empty value.
    pub fn infra_version_of(&self, description: &StackDescription) -> Option<InfraVersion> {
        self.config.infra_version_keys.iter().find_map(|key| {
            let value = match key {
                InfraVersionKey::Output(k) => description.outputs.get(k),
                InfraVersionKey::Tag(k) => description.tags.get(k),
            }?;
            let version = InfraVersion::new(value.as_str());
            (!version.as_str().is_empty()).then_some(version)
        })
    }

    /// Checks every input and resolves the parameter list. Only read calls
    /// (`DescribeStacks`, `GetTemplateSummary`, `DescribeSubnets`) are made,
    /// and none before the template URL and hash are checked.
    async fn prepare(&self, stack: &str, change: &StackChange) -> Result<Prepared, Error> {
        if let StackChange::ReplaceTemplate {
            template_url,
            expected_sha256,
            ..
        } = change
        {
            self.config.template_urls.check(template_url)?;
            if let Some(expected) = expected_sha256 {
                let fetcher = self.fetcher.as_ref().ok_or_else(|| {
                    Error::InvalidConfig(
                        "an expected template sha256 was given but the updater has no \
                         TemplateFetcher (use with_template_fetcher)"
                            .into(),
                    )
                })?;
                verify_template_sha256(fetcher.as_ref(), template_url, expected).await?;
            }
        }
        let description = self.api.describe_stack(stack).await?;
        ensure_updatable(stack, &description.status)?;
        let template = change.template();
        let declared = self.api.template_summary(stack, &template).await?;
        let resolved = resolve_parameters(
            stack,
            &description.parameters,
            &declared,
            change.parameter_changes(),
        )?;
        let names = &self.config.az_parameters;
        let mut warnings = Vec::new();
        if declared.parameter(&names.availability_zones).is_some()
            && let Some(warning) =
                names.zone_change_warning(&description.parameters, &resolved.after)
        {
            warnings.push(warning);
        }
        let touches_subnets = resolved.diff.iter().any(|c| names.concerns(&c.key));
        if let (Some(directory), true) = (&self.subnets, touches_subnets) {
            let report =
                validate_subnets(directory.as_ref(), &names.request_from(&resolved.after)).await?;
            if !report.is_valid() {
                return Err(Error::InvalidSubnets {
                    stack: stack.to_string(),
                    report: Box::new(report),
                });
            }
        }
        for warning in &warnings {
            warn!(stack, warning = warning.as_str(), "stack update warning");
        }
        Ok(Prepared {
            request: StackUpdateRequest {
                stack: stack.to_string(),
                template,
                parameters: resolved.send,
                capabilities: self.config.capabilities.clone(),
            },
            diff: resolved.diff,
            warnings,
        })
    }

    /// Previews `change` as a change set: returns the parameter diff and the
    /// resource changes without applying anything.
    pub async fn plan(&self, stack: &str, change: &StackChange) -> Result<PlanOutcome, Error> {
        self.plan_with_progress(stack, change, &crate::NoProgress)
            .await
    }

    /// [`plan`](Self::plan), reporting the change set's status.
    pub async fn plan_with_progress(
        &self,
        stack: &str,
        change: &StackChange,
        progress: &dyn ProgressSink,
    ) -> Result<PlanOutcome, Error> {
        let prepared = self.prepare(stack, change).await?;
        let name = self.change_set_name();
        let change_set = match self.api.create_change_set(&name, &prepared.request).await? {
            ChangeSetStart::Created(change_set) => change_set,
            ChangeSetStart::NoChanges { reason } => return Ok(PlanOutcome::NoChanges { reason }),
        };
        let started = self.clock.monotonic();
        let description = loop {
            let description = self.api.describe_change_set(&change_set).await?;
            progress.report(&StackProgress::ChangeSet {
                name: name.clone(),
                status: description.status.clone(),
            });
            if !description.is_pending() {
                break description;
            }
            let waited = self.clock.monotonic().saturating_sub(started);
            if waited >= self.config.change_set_timeout {
                return Err(Error::WaitTimedOut {
                    stack: stack.to_string(),
                    operation: "change set creation",
                    status: description.status,
                    waited,
                });
            }
            self.clock.sleep(self.config.poll_interval).await;
        };
        if description.failed_without_changes() {
            // Leave nothing behind; a failed delete does not change the answer.
            if let Err(error) = self.api.delete_change_set(&change_set).await {
                warn!(stack, %error, "could not delete an empty change set");
            }
            return Ok(PlanOutcome::NoChanges {
                reason: description.status_reason.unwrap_or_default(),
            });
        }
        if description.status != "CREATE_COMPLETE" {
            return Err(Error::ChangeSetFailed {
                stack: stack.to_string(),
                change_set: name,
                reason: description
                    .status_reason
                    .unwrap_or_else(|| format!("status {}", description.status)),
            });
        }
        info!(stack, change_set = %name, changes = description.changes.len(), "change set ready");
        Ok(PlanOutcome::Planned(StackPlan {
            change_set,
            template: prepared.request.template,
            parameter_diff: prepared.diff,
            resource_changes: description.changes,
            warnings: prepared.warnings,
        }))
    }

    /// Deletes the change set of a plan that will not be applied.
    pub async fn discard_plan(&self, plan: &StackPlan) -> Result<(), Error> {
        self.api.delete_change_set(&plan.change_set).await
    }

    /// Executes a planned change set and waits for the stack to settle.
    pub async fn apply_plan(
        &self,
        plan: &StackPlan,
        progress: &dyn ProgressSink,
    ) -> Result<StackUpdateOutcome, Error> {
        let stack = plan.change_set.stack.as_str();
        let description = self.api.describe_stack(stack).await?;
        ensure_updatable(stack, &description.status)?;
        let marker = self.newest_event_id(stack).await?;
        self.api.execute_change_set(&plan.change_set).await?;
        self.wait_for_update(stack, marker, progress).await
    }

    /// Applies `change` and waits: through a change set
    /// ([`ApplyMode::ChangeSet`]) or `UpdateStack` ([`ApplyMode::Direct`]).
    pub async fn apply(
        &self,
        stack: &str,
        change: &StackChange,
        mode: ApplyMode,
        progress: &dyn ProgressSink,
    ) -> Result<StackUpdateOutcome, Error> {
        match mode {
            ApplyMode::ChangeSet => match self.plan_with_progress(stack, change, progress).await? {
                PlanOutcome::NoChanges { reason } => Ok(StackUpdateOutcome::NoChanges { reason }),
                PlanOutcome::Planned(plan) => self.apply_plan(&plan, progress).await,
            },
            ApplyMode::Direct => {
                let prepared = self.prepare(stack, change).await?;
                let marker = self.newest_event_id(stack).await?;
                match self.api.update_stack(&prepared.request).await? {
                    UpdateStart::NoChanges => Ok(StackUpdateOutcome::NoChanges {
                        reason: "No updates are to be performed.".into(),
                    }),
                    UpdateStart::Started { .. } => {
                        self.wait_for_update(stack, marker, progress).await
                    }
                }
            }
        }
    }

    async fn newest_event_id(&self, stack: &str) -> Result<Option<String>, Error> {
        Ok(self
            .api
            .stack_events(stack, None, Some(1))
            .await?
            .into_iter()
            .next()
            .map(|e| e.event_id))
    }

    /// Waits for the update started after event `after_event_id` to settle,
    /// streaming its events, on the injected clock, for at most
    /// [`update_timeout`](StackUpdaterConfig::update_timeout).
    ///
    /// A terminal status counts only once the update has been seen (an
    /// `*_IN_PROGRESS` status or a new event of the stack itself), so a
    /// stale `UPDATE_COMPLETE` from an earlier update is never mistaken for
    /// this one's result.
    pub async fn wait_for_update(
        &self,
        stack: &str,
        after_event_id: Option<String>,
        progress: &dyn ProgressSink,
    ) -> Result<StackUpdateOutcome, Error> {
        let started = self.clock.monotonic();
        let mut marker = after_event_id;
        let mut events: Vec<StackEvent> = Vec::new();
        let mut last_status: Option<StackStatus> = None;
        let mut seen_update = false;
        loop {
            let description = self.api.describe_stack(stack).await?;
            let mut new_events = self
                .api
                .stack_events(stack, marker.as_deref(), None)
                .await?;
            if let Some(newest) = new_events.first() {
                marker = Some(newest.event_id.clone());
            }
            new_events.reverse();
            for event in new_events {
                if event.resource_type == "AWS::CloudFormation::Stack"
                    && event.logical_id == description.name
                {
                    seen_update = true;
                }
                progress.report(&StackProgress::Event(event.clone()));
                events.push(event);
            }
            let elapsed = self.clock.monotonic().saturating_sub(started);
            if last_status.as_ref() != Some(&description.status) {
                progress.report(&StackProgress::Status {
                    stack: stack.to_string(),
                    status: description.status.clone(),
                    elapsed,
                });
                last_status = Some(description.status.clone());
            }
            if description.status.is_in_progress() {
                seen_update = true;
            } else if seen_update {
                return Ok(outcome_of(&description, &events, elapsed));
            }
            if elapsed >= self.config.update_timeout {
                return Err(Error::WaitTimedOut {
                    stack: stack.to_string(),
                    operation: "stack update",
                    status: description.status.to_string(),
                    waited: elapsed,
                });
            }
            self.clock.sleep(self.config.poll_interval).await;
        }
    }

    fn change_set_name(&self) -> String {
        let seq = CHANGE_SET_SEQ.fetch_add(1, Ordering::Relaxed);
        format!(
            "{}{}-{seq}",
            self.config.change_set_prefix,
            self.clock.now().format("%Y%m%d%H%M%S%3f")
        )
    }
}

fn ensure_updatable(stack: &str, status: &StackStatus) -> Result<(), Error> {
    match status.kind() {
        StatusKind::Stable => Ok(()),
        StatusKind::InProgress => Err(Error::StackBusy {
            stack: stack.to_string(),
            status: status.clone(),
        }),
        StatusKind::NotUpdatable => Err(Error::StackNotUpdatable {
            stack: stack.to_string(),
            status: status.clone(),
            hint: status.operator_hint(),
        }),
    }
}

/// Classifies a settled stack: `UPDATE_COMPLETE` is `Updated`,
/// `UPDATE_ROLLBACK_COMPLETE` is `RolledBack`, everything else `Failed`.
fn outcome_of(
    description: &StackDescription,
    events: &[StackEvent],
    waited: Duration,
) -> StackUpdateOutcome {
    let mut reasons: Vec<String> = events
        .iter()
        .filter(|e| e.is_failure())
        .map(|e| {
            format!(
                "{} ({}) {}: {}",
                e.logical_id,
                e.resource_type,
                e.status,
                e.reason.as_deref().unwrap_or("no reason given")
            )
        })
        .collect();
    match description.status.as_str() {
        "UPDATE_COMPLETE" | "CREATE_COMPLETE" | "IMPORT_COMPLETE" => StackUpdateOutcome::Updated {
            status: description.status.clone(),
            waited,
        },
        "UPDATE_ROLLBACK_COMPLETE" => StackUpdateOutcome::RolledBack { reasons },
        _ => {
            if let Some(reason) = &description.status_reason {
                reasons.push(format!("stack: {reason}"));
            }
            StackUpdateOutcome::Failed {
                status: description.status.clone(),
                reasons,
            }
        }
    }
}
