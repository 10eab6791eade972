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
    AzParameterNames, CfnApi, ChangeSetRef, ChangeSetStart, Error, ErrorClass,
    MAX_TEMPLATE_BODY_BYTES, ProgressSink, ResourceChange, RollbackConfiguration, StackDescription,
    StackEvent, StackProgress, StackStatus, StackUpdateOutcome, StackUpdateRequest, StatusKind,
    SubnetDirectory, TemplateFetcher, TemplateSource, TemplateUrlPolicy, UpdateStart,
    parameters::{
        KeptDefault, ParameterChange, SsmParameter, kept_with_changed_default, resolve_parameters,
        ssm_parameters,
    },
    sha256_hex,
    subnets::validate_subnets,
    template_fetch::fetch_verified_template,
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

    /// The template replacement a release calls for: its template URL and
    /// its published sha256 (when the release has one), so the hash is
    /// never dropped between the release and the update. `parameter_changes`
    /// are the parameters to set as well (e.g. the runner image).
    ///
    /// ```
    /// use cfn_stack::StackChange;
    /// use runner_version::{Channel, ImageRef, Release, Version};
    ///
    /// let release = Release {
    ///     version: Version::parse("20250101.1").unwrap(),
    ///     channel: Channel::Stable,
    ///     image: ImageRef::parse(
    ///         "ghcr.io/gitpod-io/runner@sha256:0000000000000000000000000000000000000000000000000000000000000000",
    ///     )
    ///     .unwrap(),
    ///     proxy_image: None,
    ///     infra_version: None,
    ///     template_url: "https://gitpod-flex-releases.s3.amazonaws.com/ec2/stable/gitpod-ec2-runner.json".into(),
    ///     template_sha256: Some("ab".repeat(32)),
    ///     released_at: None,
    ///     expires: None,
    ///     waves: Default::default(),
    /// };
    /// let change = StackChange::from_release(&release, [("Image", "runner:2")]);
    /// let StackChange::ReplaceTemplate { template_url, expected_sha256, parameter_changes, .. } = change
    /// else { unreachable!() };
    /// assert_eq!(template_url, release.template_url);
    /// assert_eq!(expected_sha256, release.template_sha256);
    /// assert_eq!(parameter_changes["Image"], "runner:2");
    /// ```
    pub fn from_release(
        release: &runner_version::Release,
        parameter_changes: impl IntoIterator<Item = (impl Into<String>, impl Into<String>)>,
    ) -> Self {
        StackChange::ReplaceTemplate {
            template_url: release.template_url.clone(),
            parameter_changes: collect(parameter_changes),
            expected_sha256: release.template_sha256.clone(),
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
    /// The capabilities this updater may acknowledge (an allow-list).
    /// An update sends exactly the capabilities its template needs, as
    /// `GetTemplateSummary` reports them (plus `CAPABILITY_AUTO_EXPAND`
    /// for a template with transforms), and they are shown in the plan;
    /// a template needing one not listed here is refused with
    /// [`Error::CapabilityNotAcknowledged`] before any mutating call.
    /// `CAPABILITY_NAMED_IAM` here also covers a need for `CAPABILITY_IAM`.
    /// Default: `CAPABILITY_IAM`, `CAPABILITY_NAMED_IAM` (runner templates
    /// create IAM roles); add `CAPABILITY_AUTO_EXPAND` to allow transforms.
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

/// Per-update options of [`StackUpdater::plan_with_options`] and
/// [`StackUpdater::apply_with_options`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UpdateOptions {
    /// Rollback triggers (CloudWatch alarms and a monitoring time) sent
    /// with the update; `None` (the default) keeps the stack's own.
    /// Checked with [`RollbackConfiguration::validate`] before any call.
    pub rollback_configuration: Option<RollbackConfiguration>,
    /// For a [`StackChange::ReplaceTemplate`]: parameters the change does
    /// not set, whose default the new template changed, are set to the new
    /// default instead of being kept with `UsePreviousValue` (see
    /// [`StackPlan::kept_defaults`]). Default: `false` (kept, and listed).
    pub take_new_defaults: bool,
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
    /// Parameters kept with `UsePreviousValue` whose default the new
    /// template changed ("kept X, the new default is Y"; each also in
    /// [`warnings`](Self::warnings)). Empty when the change
    /// [takes the new defaults](UpdateOptions::take_new_defaults): they are
    /// then in the diff.
    pub kept_defaults: Vec<KeptDefault>,
    /// Parameters of an SSM parameter type, which CloudFormation resolves
    /// again on every update, with the old and new resolved values where
    /// the API reports them (each also in [`warnings`](Self::warnings)).
    pub ssm_parameters: Vec<SsmParameter>,
    /// The rollback triggers the change set was created with (`None`: the
    /// stack keeps its own).
    pub rollback_configuration: Option<RollbackConfiguration>,
    /// The capabilities the template needs and the update acknowledges
    /// (from `GetTemplateSummary`), sorted.
    pub capabilities: Vec<String>,
    /// The sha256 the change set's template was verified against, if the
    /// change had an expected hash: either the verified bytes were sent
    /// (`TemplateBody`), or the change set's template was read back
    /// (`GetTemplate`) and matched; in the URL case it is checked again in
    /// [`StackUpdater::apply_plan`] before executing.
    pub template_sha256: Option<String>,
    /// Things an operator should read before applying (e.g. zones changed
    /// without subnets).
    pub warnings: Vec<String>,
}

impl StackPlan {
    /// A plan for a change set created earlier (e.g. by `plan` in another
    /// process), to execute it by name with [`StackUpdater::apply_plan`]:
    /// no diff, no resource changes, no warnings; `template_sha256`, when
    /// given, makes `apply_plan` read the change set's template back and
    /// compare it before executing.
    ///
    /// ```
    /// use cfn_stack::{ChangeSetRef, StackPlan, TemplateSource};
    ///
    /// let plan = StackPlan::for_change_set(
    ///     ChangeSetRef { stack: "runner".into(), change_set: "cfn-stack-1".into() },
    ///     None,
    /// );
    /// assert_eq!(plan.template, TemplateSource::Existing);
    /// assert!(plan.parameter_diff.is_empty() && plan.capabilities.is_empty());
    /// ```
    pub fn for_change_set(change_set: ChangeSetRef, template_sha256: Option<String>) -> Self {
        // With a hash, the template is compared by reading it back (the
        // URL path of `verify_change_set_template`).
        let template = match &template_sha256 {
            Some(_) => TemplateSource::Url(format!("change set {}", change_set.change_set)),
            None => TemplateSource::Existing,
        };
        Self {
            change_set,
            template,
            parameter_diff: Vec::new(),
            resource_changes: Vec::new(),
            kept_defaults: Vec::new(),
            ssm_parameters: Vec::new(),
            rollback_configuration: None,
            capabilities: Vec::new(),
            template_sha256,
            warnings: Vec::new(),
        }
    }
}

/// What an operator reads before applying: the change set, replacements
/// first (a line starting `REPLACED:`), the parameter diff (`NoEcho`
/// values `(hidden)`), every resource change (nested ones under their
/// path), capabilities, rollback triggers, the verified sha256 and the
/// warnings.
///
/// ```
/// use cfn_stack::{ChangeSetRef, ResourceChange, StackPlan};
///
/// let mut plan = StackPlan::for_change_set(
///     ChangeSetRef { stack: "runner".into(), change_set: "cfn-stack-1".into() },
///     None,
/// );
/// plan.resource_changes.push(ResourceChange {
///     action: "Modify".into(),
///     logical_id: "RunnerAsg".into(),
///     resource_type: "AWS::AutoScaling::AutoScalingGroup".into(),
///     replacement: Some("True".into()),
///     policy_action: Some("ReplaceAndDelete".into()),
///     ..ResourceChange::default()
/// });
/// let shown = plan.to_string();
/// assert!(shown.contains("REPLACED: RunnerAsg"), "{shown}");
/// assert!(shown.contains("  Modify RunnerAsg (AWS::AutoScaling::AutoScalingGroup): REPLACEMENT True"), "{shown}");
/// ```
impl std::fmt::Display for StackPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "stack {}: change set {}",
            self.change_set.stack, self.change_set.change_set
        )?;
        let replaced: Vec<&str> = self
            .resource_changes
            .iter()
            .filter(|c| c.is_replacement())
            .map(|c| c.logical_id.as_str())
            .collect();
        if !replaced.is_empty() {
            writeln!(
                f,
                "REPLACED: {} (new physical resources; check the policy actions)",
                replaced.join(", ")
            )?;
        }
        writeln!(f, "parameters:")?;
        if self.parameter_diff.is_empty() {
            writeln!(f, "  (no parameter changes)")?;
        }
        for change in &self.parameter_diff {
            writeln!(f, "  {change}")?;
        }
        writeln!(f, "resources:")?;
        if self.resource_changes.is_empty() {
            writeln!(f, "  (no resource changes reported)")?;
        }
        for change in &self.resource_changes {
            writeln!(f, "  {change}")?;
        }
        if !self.capabilities.is_empty() {
            writeln!(f, "capabilities: {}", self.capabilities.join(", "))?;
        }
        if let Some(rollback) = &self.rollback_configuration {
            write!(f, "rollback triggers: [{}]", rollback.alarm_arns.join(", "))?;
            if let Some(minutes) = rollback.monitoring_time_minutes {
                write!(f, ", watched {minutes} min")?;
            }
            writeln!(f)?;
        }
        if let Some(sha256) = &self.template_sha256 {
            writeln!(f, "template sha256: {sha256}")?;
        }
        if !self.warnings.is_empty() {
            writeln!(f, "warnings:")?;
            for warning in &self.warnings {
                writeln!(f, "  - {warning}")?;
            }
        }
        Ok(())
    }
}

/// The result of [`StackUpdater::plan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanOutcome {
    /// A change set is ready to apply.
    Planned(Box<StackPlan>),
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

/// What is needed to resume a wait that timed out
/// ([`StackUpdater::resume_wait`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitResume {
    /// For a stack update: the event the wait started after (every event
    /// of the update is read again).
    pub after_event_id: Option<String>,
    /// For a stack update: the `ClientRequestToken` it was started with.
    pub client_request_token: Option<String>,
    /// For a change set creation: the change set that was still being
    /// created (the updater has already tried to delete it; plan again).
    pub change_set: Option<ChangeSetRef>,
}

/// Everything checked before a mutating call.
struct Prepared {
    request: StackUpdateRequest,
    diff: Vec<ParameterChange>,
    kept_defaults: Vec<KeptDefault>,
    ssm: Vec<SsmParameter>,
    warnings: Vec<String>,
    /// The verified sha256 of the template, if the change had one.
    template_sha256: Option<String>,
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

/// How many levels of nested stacks a plan follows (a nested stack's
/// nested stack is level 2).
pub const MAX_NESTED_DEPTH: usize = 5;

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
    ///
    /// A template with an expected sha256 is sent as the verified bytes
    /// (`TemplateBody`) when they fit ([`MAX_TEMPLATE_BODY_BYTES`], UTF-8);
    /// otherwise by URL, which only a change set can verify afterwards, so
    /// `Direct` mode refuses it.
    async fn prepare(
        &self,
        stack: &str,
        change: &StackChange,
        mode: ApplyMode,
        options: &UpdateOptions,
    ) -> Result<Prepared, Error> {
        if let Some(rollback) = &options.rollback_configuration {
            rollback.validate()?;
        }
        let mut template = change.template();
        let mut template_sha256 = None;
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
                let body =
                    fetch_verified_template(fetcher.as_ref(), template_url, expected).await?;
                let size = body.len();
                match String::from_utf8(body) {
                    Ok(body) if size <= MAX_TEMPLATE_BODY_BYTES => {
                        template = TemplateSource::Body(body);
                    }
                    _ if mode == ApplyMode::Direct => {
                        return Err(Error::TemplateNotVerifiable {
                            url: template_url.clone(),
                            reason: format!(
                                "the verified template ({size} bytes) cannot be sent as \
                                 TemplateBody (at most {MAX_TEMPLATE_BODY_BYTES} bytes of UTF-8), \
                                 and UpdateStack would fetch the URL again unverified; use \
                                 ApplyMode::ChangeSet, whose template is read back and checked"
                            ),
                        });
                    }
                    _ => {}
                }
                template_sha256 = Some(sha256_hex_normalized(expected));
            }
        }
        let description = self.api.describe_stack(stack).await?;
        ensure_updatable(stack, &description.status)?;
        let declared = self.api.template_summary(stack, &template).await?;
        let mut resolved = resolve_parameters(
            stack,
            &description.parameters,
            &declared,
            change.parameter_changes(),
        )?;
        let mut kept_defaults = Vec::new();
        let mut warnings = Vec::new();
        if let StackChange::ReplaceTemplate { .. } = change {
            let current = self
                .api
                .template_summary(stack, &TemplateSource::Existing)
                .await?;
            let kept = kept_with_changed_default(
                &current,
                &declared,
                &description.parameters,
                change.parameter_changes(),
            );
            if options.take_new_defaults && !kept.is_empty() {
                let mut changes = change.parameter_changes().clone();
                for k in &kept {
                    changes.insert(k.key.clone(), k.new_default.clone());
                }
                resolved = resolve_parameters(stack, &description.parameters, &declared, &changes)?;
            } else {
                warnings.extend(kept.iter().map(ToString::to_string));
                kept_defaults = kept;
            }
        }
        let capabilities = self.acknowledged_capabilities(stack, &declared)?;
        let ssm = ssm_parameters(
            &declared,
            &description.parameters,
            &description.resolved_parameters,
            &resolved.after,
        );
        let names = &self.config.az_parameters;
        // The configured names are checked against what the template
        // declares first: a template with other names is reported, not a
        // reason to refuse every subnet change.
        let az = names.declared_in(&declared.keys());
        if self.subnets.is_some()
            && let Some(warning) = az.warning()
        {
            warnings.push(warning);
        }
        if az.availability_zones.is_some()
            && let Some(warning) =
                names.zone_change_warning(&description.parameters, &resolved.after)
        {
            warnings.push(warning);
        }
        let touches_subnets = resolved.diff.iter().any(|c| az.concerns(&c.key));
        if let (Some(directory), true, true) = (&self.subnets, touches_subnets, az.can_validate()) {
            let report =
                validate_subnets(directory.as_ref(), &az.request_from(&resolved.after)).await?;
            if !report.is_valid() {
                return Err(Error::InvalidSubnets {
                    stack: stack.to_string(),
                    report: Box::new(report),
                });
            }
        }
        for warning in warnings
            .iter()
            .cloned()
            .chain(ssm.iter().map(ToString::to_string))
        {
            warn!(stack, warning = warning.as_str(), "stack update warning");
        }
        Ok(Prepared {
            request: StackUpdateRequest {
                stack: stack.to_string(),
                template,
                parameters: resolved.send,
                capabilities,
                no_echo: resolved.no_echo,
                client_request_token: None,
                rollback_configuration: options.rollback_configuration.clone(),
            },
            diff: resolved.diff,
            kept_defaults,
            ssm,
            warnings,
            template_sha256,
        })
    }

    /// The capabilities to send for a template: each one it needs, when
    /// the configuration acknowledges it (`CAPABILITY_NAMED_IAM` covers
    /// `CAPABILITY_IAM`); else [`Error::CapabilityNotAcknowledged`].
    fn acknowledged_capabilities(
        &self,
        stack: &str,
        declared: &crate::TemplateSummary,
    ) -> Result<Vec<String>, Error> {
        let allowed = &self.config.capabilities;
        let has = |c: &str| allowed.iter().any(|a| a == c);
        let mut send = Vec::new();
        let mut missing = Vec::new();
        for needed in declared.required_capabilities() {
            if has(&needed) {
                send.push(needed);
            } else if needed == "CAPABILITY_IAM" && has("CAPABILITY_NAMED_IAM") {
                send.push("CAPABILITY_NAMED_IAM".to_string());
            } else {
                missing.push(needed);
            }
        }
        if !missing.is_empty() {
            return Err(Error::CapabilityNotAcknowledged {
                stack: stack.to_string(),
                missing,
                reason: declared.capabilities_reason.clone(),
            });
        }
        send.sort();
        send.dedup();
        Ok(send)
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
        self.plan_with_options(stack, change, &UpdateOptions::default(), progress)
            .await
    }

    /// [`plan_with_progress`](Self::plan_with_progress) with per-update
    /// options (rollback triggers, sent with `CreateChangeSet`).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use cfn_stack::{
    ///     FakeCfn, FakeTemplate, NoProgress, PlanOutcome, RollbackConfiguration, StackChange,
    ///     StackUpdater, StackUpdaterConfig, UpdateOptions,
    /// };
    /// use update_clock::ManualClock;
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let cfn = FakeCfn::new();
    /// let url = "https://runner.s3.amazonaws.com/runner.yaml";
    /// cfn.add_template(url, FakeTemplate::new().parameter("Image", None));
    /// cfn.create_stack("runner", url, &[("Image", "runner:1")], &[]).unwrap();
    /// let clock = Arc::new(ManualClock::auto_advancing(ManualClock::EPOCH_2025));
    /// let updater = StackUpdater::new(Arc::new(cfn.clone()), clock, StackUpdaterConfig::default()).unwrap();
    /// let options = UpdateOptions {
    ///     rollback_configuration: Some(RollbackConfiguration::alarms(
    ///         ["arn:aws:cloudwatch:us-east-1:123456789012:alarm:runner-health"],
    ///         Some(15),
    ///     )),
    ///     ..UpdateOptions::default()
    /// };
    /// let change = StackChange::parameters([("Image", "runner:2")]);
    /// let PlanOutcome::Planned(plan) =
    ///     updater.plan_with_options("runner", &change, &options, &NoProgress).await.unwrap()
    /// else { unreachable!() };
    /// assert_eq!(plan.rollback_configuration, options.rollback_configuration);
    /// updater.apply_plan(&plan, &NoProgress).await.unwrap();
    /// assert_eq!(cfn.rollback_configuration("runner"), options.rollback_configuration);
    /// # });
    /// ```
    pub async fn plan_with_options(
        &self,
        stack: &str,
        change: &StackChange,
        options: &UpdateOptions,
        progress: &dyn ProgressSink,
    ) -> Result<PlanOutcome, Error> {
        let prepared = self
            .prepare(stack, change, ApplyMode::ChangeSet, options)
            .await?;
        let name = self.change_set_name();
        let change_set = match self.api.create_change_set(&name, &prepared.request).await? {
            ChangeSetStart::Created(change_set) => change_set,
            ChangeSetStart::NoChanges { reason } => return Ok(PlanOutcome::NoChanges { reason }),
        };
        let started = self.clock.monotonic();
        let mut last_status = "CREATE_PENDING".to_string();
        let description = loop {
            match self.api.describe_change_set(&change_set).await {
                Ok(description) => {
                    progress.report(&StackProgress::ChangeSet {
                        name: name.clone(),
                        status: description.status.clone(),
                    });
                    if !description.is_pending() {
                        break description;
                    }
                    last_status = description.status;
                }
                Err(error) if is_retryable(&error) => {
                    warn!(stack, %error, "reading the change set failed; retrying on the next poll");
                }
                Err(error) => {
                    self.delete_abandoned(&change_set, "its creation could not be followed")
                        .await;
                    return Err(error);
                }
            }
            let waited = self.clock.monotonic().saturating_sub(started);
            if waited >= self.config.change_set_timeout {
                self.delete_abandoned(&change_set, "its creation timed out")
                    .await;
                return Err(Error::WaitTimedOut {
                    stack: stack.to_string(),
                    operation: "change set creation",
                    status: last_status,
                    waited,
                    resume: Box::new(WaitResume {
                        after_event_id: None,
                        client_request_token: None,
                        change_set: Some(change_set.clone()),
                    }),
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
            self.delete_abandoned(&change_set, "it failed").await;
            return Err(Error::ChangeSetFailed {
                stack: stack.to_string(),
                change_set: name,
                reason: description
                    .status_reason
                    .unwrap_or_else(|| format!("status {}", description.status)),
            });
        }
        let mut ssm = prepared.ssm;
        let mut warnings = prepared.warnings;
        for parameter in &mut ssm {
            parameter.resolved_after = description.resolved_parameters.get(&parameter.key).cloned();
            warnings.push(parameter.to_string());
        }
        let resource_changes = match self
            .with_nested_changes(&change_set, description.changes, &mut warnings)
            .await
        {
            Ok(changes) => changes,
            Err(error) => {
                self.delete_abandoned(&change_set, "its nested change sets could not be read")
                    .await;
                return Err(error);
            }
        };
        for change in resource_changes.iter().filter(|c| c.is_replacement()) {
            let warning = format!("{change}: CloudFormation replaces this resource");
            warn!(stack, warning = warning.as_str(), "stack update warning");
            warnings.push(warning);
        }
        let plan = StackPlan {
            change_set,
            template: prepared.request.template,
            parameter_diff: prepared.diff,
            kept_defaults: prepared.kept_defaults,
            ssm_parameters: ssm,
            resource_changes,
            capabilities: prepared.request.capabilities.clone(),
            rollback_configuration: prepared.request.rollback_configuration.clone(),
            warnings,
            template_sha256: prepared.template_sha256,
        };
        if let Err(error) = self.verify_change_set_template(&plan).await {
            self.delete_abandoned(&plan.change_set, "its template did not verify")
                .await;
            return Err(error);
        }
        info!(stack, change_set = %name, changes = plan.resource_changes.len(), "change set ready");
        Ok(PlanOutcome::Planned(Box::new(plan)))
    }

    /// `changes` with the changes of every nested stack's change set
    /// inserted after the nested stack itself, their logical ids prefixed
    /// with the nested stack's path (`RunnerNetwork/SecurityGroup`).
    /// Nested change sets are followed [`MAX_NESTED_DEPTH`] levels deep; a
    /// deeper one, or one that did not complete, is reported in `warnings`.
    async fn with_nested_changes(
        &self,
        root: &ChangeSetRef,
        changes: Vec<ResourceChange>,
        warnings: &mut Vec<String>,
    ) -> Result<Vec<ResourceChange>, Error> {
        let mut out = Vec::with_capacity(changes.len());
        // (path prefix, depth, changes left), innermost last.
        let mut levels = vec![(String::new(), 0usize, changes.into_iter())];
        while let Some((prefix, depth, mut left)) = levels.pop() {
            let Some(mut change) = left.next() else {
                continue;
            };
            change.logical_id = format!("{prefix}{}", change.logical_id);
            let nested = change.nested_change_set.clone().map(|id| ChangeSetRef {
                stack: change
                    .physical_id
                    .clone()
                    .unwrap_or_else(|| root.stack.clone()),
                change_set: id,
            });
            let path = change.logical_id.clone();
            out.push(change);
            levels.push((prefix, depth, left));
            let Some(nested) = nested else {
                continue;
            };
            if depth + 1 > MAX_NESTED_DEPTH {
                warnings.push(format!(
                    "nested stack {path}: its changes are not listed (nested deeper than \
                     {MAX_NESTED_DEPTH} levels); read change set {} before applying",
                    nested.change_set
                ));
                continue;
            }
            let description = self.api.describe_change_set(&nested).await?;
            if description.status != "CREATE_COMPLETE" {
                warnings.push(format!(
                    "nested stack {path}: its change set {} is {}{}; its changes may be missing",
                    nested.change_set,
                    description.status,
                    description
                        .status_reason
                        .as_deref()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default()
                ));
            }
            levels.push((
                format!("{path}/"),
                depth + 1,
                description.changes.into_iter(),
            ));
        }
        Ok(out)
    }

    /// For a plan whose template was given by URL with an expected hash:
    /// reads the change set's template back (`GetTemplate`,
    /// `TemplateStage=Original`) and checks its sha256, since CloudFormation
    /// fetched the URL itself and the object may have changed since it was
    /// verified. Nothing to do for `TemplateBody` (the verified bytes were
    /// sent) or without an expected hash.
    async fn verify_change_set_template(&self, plan: &StackPlan) -> Result<(), Error> {
        let (TemplateSource::Url(url), Some(expected)) = (&plan.template, &plan.template_sha256)
        else {
            return Ok(());
        };
        let body = self.api.change_set_template(&plan.change_set).await?;
        let actual = sha256_hex(body.as_bytes());
        if &actual != expected {
            return Err(Error::TemplateHashMismatch {
                url: format!(
                    "{url} (as read by change set {})",
                    plan.change_set.change_set
                ),
                expected: expected.clone(),
                actual,
            });
        }
        Ok(())
    }

    /// Deletes a change set that will not be executed (failed, timed out,
    /// unverified or abandoned); a failed delete is only logged, since it
    /// does not change the answer (and an executing change set cannot be
    /// deleted, so nothing running is touched).
    async fn delete_abandoned(&self, change_set: &ChangeSetRef, why: &str) {
        match self.api.delete_change_set(change_set).await {
            Ok(()) => info!(
                stack = change_set.stack.as_str(),
                change_set = change_set.change_set.as_str(),
                why,
                "deleted a change set that will not be executed"
            ),
            Err(error) => warn!(
                stack = change_set.stack.as_str(),
                change_set = change_set.change_set.as_str(),
                why,
                %error,
                "could not delete a change set that will not be executed"
            ),
        }
    }

    /// Deletes the change set of a plan that will not be applied.
    pub async fn discard_plan(&self, plan: &StackPlan) -> Result<(), Error> {
        self.api.delete_change_set(&plan.change_set).await
    }

    /// Executes a planned change set and waits for the stack to settle.
    ///
    /// A plan whose template no longer verifies is deleted; after any other
    /// error before the execution the change set is kept (the caller holds
    /// the plan: apply it again or [`discard_plan`](Self::discard_plan)).
    pub async fn apply_plan(
        &self,
        plan: &StackPlan,
        progress: &dyn ProgressSink,
    ) -> Result<StackUpdateOutcome, Error> {
        let stack = plan.change_set.stack.as_str();
        if let Err(error) = self.verify_change_set_template(plan).await {
            if matches!(error, Error::TemplateHashMismatch { .. }) {
                self.delete_abandoned(&plan.change_set, "its template did not verify")
                    .await;
            }
            return Err(error);
        }
        let (marker, token) = self.execute_plan(plan).await?;
        self.wait(stack, marker, Some(token), progress).await
    }

    /// Executes a verified plan's change set: returns the event marker and
    /// the `ClientRequestToken` to wait with.
    async fn execute_plan(&self, plan: &StackPlan) -> Result<(Option<String>, String), Error> {
        let stack = plan.change_set.stack.as_str();
        let description = self.api.describe_stack(stack).await?;
        ensure_updatable(stack, &description.status)?;
        let marker = self.newest_event_id(stack).await?;
        let token = self.unique_name();
        let mut started = self.clock.monotonic();
        loop {
            let error = match self
                .api
                .execute_change_set(&plan.change_set, Some(&token))
                .await
            {
                Ok(()) => break,
                Err(error) if is_retryable(&error) => error,
                Err(error) => return Err(error),
            };
            warn!(stack, %error, "executing the change set failed; checking whether it took effect");
            if self.landed(stack, marker.as_deref(), &token).await
                || self
                    .api
                    .describe_change_set(&plan.change_set)
                    .await
                    .is_ok_and(|c| {
                        c.execution_status
                            .is_some_and(|s| s.starts_with("EXECUTE_"))
                    })
            {
                break;
            }
            self.retry_pause(&mut started, error).await?;
        }
        Ok((marker, token))
    }

    /// Whether an event after `marker` carries `token`: the request took
    /// effect even though its response was lost.
    async fn landed(&self, stack: &str, marker: Option<&str>, token: &str) -> bool {
        self.api
            .stack_events(stack, marker, None)
            .await
            .is_ok_and(|events| {
                events
                    .iter()
                    .any(|e| e.client_request_token.as_deref() == Some(token))
            })
    }

    /// Sleeps one poll before retrying a start request, or gives up with
    /// `error` once [`change_set_timeout`](StackUpdaterConfig::change_set_timeout)
    /// has passed since `started`.
    async fn retry_pause(&self, started: &mut Duration, error: Error) -> Result<(), Error> {
        let waited = self.clock.monotonic().saturating_sub(*started);
        if waited >= self.config.change_set_timeout {
            return Err(error);
        }
        self.clock.sleep(self.config.poll_interval).await;
        Ok(())
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
        self.apply_with_options(stack, change, mode, &UpdateOptions::default(), progress)
            .await
    }

    /// [`apply`](Self::apply) with per-update options: rollback triggers
    /// (`RollbackConfiguration`) are sent with `CreateChangeSet` or
    /// `UpdateStack`; without them the stack keeps its own.
    pub async fn apply_with_options(
        &self,
        stack: &str,
        change: &StackChange,
        mode: ApplyMode,
        options: &UpdateOptions,
        progress: &dyn ProgressSink,
    ) -> Result<StackUpdateOutcome, Error> {
        match mode {
            ApplyMode::ChangeSet => match self
                .plan_with_options(stack, change, options, progress)
                .await?
            {
                PlanOutcome::NoChanges { reason } => Ok(StackUpdateOutcome::NoChanges { reason }),
                PlanOutcome::Planned(plan) => {
                    // The change set is this call's own: one not executed
                    // (the stack became busy, the execute was refused) is
                    // abandoned and deleted.
                    let stack = plan.change_set.stack.as_str();
                    if let Err(error) = self.verify_change_set_template(&plan).await {
                        self.delete_abandoned(&plan.change_set, "its template did not verify")
                            .await;
                        return Err(error);
                    }
                    match self.execute_plan(&plan).await {
                        Ok((marker, token)) => {
                            self.wait(stack, marker, Some(token), progress).await
                        }
                        Err(error) => {
                            self.delete_abandoned(&plan.change_set, "it could not be executed")
                                .await;
                            Err(error)
                        }
                    }
                }
            },
            ApplyMode::Direct => {
                let mut prepared = self
                    .prepare(stack, change, ApplyMode::Direct, options)
                    .await?;
                let marker = self.newest_event_id(stack).await?;
                let token = self.unique_name();
                prepared.request.client_request_token = Some(token.clone());
                let mut started = self.clock.monotonic();
                let start = loop {
                    let error = match self.api.update_stack(&prepared.request).await {
                        Ok(start) => break start,
                        Err(error) if is_retryable(&error) => error,
                        Err(error) => return Err(error),
                    };
                    warn!(stack, %error, "UpdateStack failed; checking whether it took effect");
                    if self.landed(stack, marker.as_deref(), &token).await {
                        break UpdateStart::Started {
                            stack_id: stack.to_string(),
                        };
                    }
                    // Retried with the same token: the same request.
                    self.retry_pause(&mut started, error).await?;
                };
                match start {
                    UpdateStart::NoChanges => Ok(StackUpdateOutcome::NoChanges {
                        reason: "No updates are to be performed.".into(),
                    }),
                    UpdateStart::Started { .. } => {
                        self.wait(stack, marker, Some(token), progress).await
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
    /// A terminal status counts only once it is this update's: after an
    /// `*_IN_PROGRESS` status was seen, or when it agrees with the terminal
    /// event of the stack itself. `DescribeStacks` can lag behind
    /// `ExecuteChangeSet` and the events (still showing the previous
    /// update's terminal status), so a stale `UPDATE_COMPLETE` from an
    /// earlier update is never mistaken for this one's result. `UPDATE_COMPLETE_CLEANUP_IN_PROGRESS` ends the
    /// wait as [`StackUpdateOutcome::Updated`] with `cleanup_pending`.
    ///
    /// A throttled or transient failure of a read is retried on the next
    /// poll; only the timeout (or a permanent error) ends the wait. On
    /// timeout, [`Error::WaitTimedOut`] carries a [`WaitResume`]: pass it
    /// to [`resume_wait`](Self::resume_wait) (do not apply the change again).
    pub async fn wait_for_update(
        &self,
        stack: &str,
        after_event_id: Option<String>,
        progress: &dyn ProgressSink,
    ) -> Result<StackUpdateOutcome, Error> {
        self.wait(stack, after_event_id, None, progress).await
    }

    /// Resumes a wait that ended in [`Error::WaitTimedOut`], from the same
    /// marker and with the same `ClientRequestToken` filter. A resume of a
    /// change set creation (no event marker, a change set) is refused:
    /// describe or discard that change set instead.
    ///
    /// ```
    /// use std::{sync::Arc, time::Duration};
    /// use cfn_stack::{
    ///     ApplyMode, Error, ErrorClass, FakeCfn, FakeTemplate, NoProgress, StackChange,
    ///     StackUpdateOutcome, StackUpdater, StackUpdaterConfig,
    /// };
    /// use update_clock::ManualClock;
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let cfn = FakeCfn::new();
    /// let url = "https://runner.s3.amazonaws.com/runner.yaml";
    /// cfn.add_template(url, FakeTemplate::new().parameter("Image", None));
    /// cfn.create_stack("runner", url, &[("Image", "runner:1")], &[]).unwrap();
    /// cfn.set_update_polls(10); // a slow update: 10 polls, more than 30 s
    /// let clock = Arc::new(ManualClock::auto_advancing(ManualClock::EPOCH_2025));
    /// let config = StackUpdaterConfig {
    ///     update_timeout: Duration::from_secs(30),
    ///     ..StackUpdaterConfig::default()
    /// };
    /// let updater = StackUpdater::new(Arc::new(cfn), clock, config).unwrap();
    /// let change = StackChange::parameters([("Image", "runner:2")]);
    /// let err = updater.apply("runner", &change, ApplyMode::Direct, &NoProgress).await.unwrap_err();
    /// // Not retryable: applying again would start a second update.
    /// assert_eq!(err.class(), ErrorClass::Permanent);
    /// let Error::WaitTimedOut { resume, .. } = err else { unreachable!() };
    /// let outcome = updater.resume_wait("runner", &resume, &NoProgress).await.unwrap();
    /// assert!(matches!(outcome, StackUpdateOutcome::Updated { .. }));
    /// # });
    /// ```
    pub async fn resume_wait(
        &self,
        stack: &str,
        resume: &WaitResume,
        progress: &dyn ProgressSink,
    ) -> Result<StackUpdateOutcome, Error> {
        if let Some(change_set) = &resume.change_set {
            return Err(Error::InvalidConfig(format!(
                "the wait that timed out was for change set {} being created, not a stack \
                 update; plan again or discard it",
                change_set.change_set
            )));
        }
        self.wait(
            stack,
            resume.after_event_id.clone(),
            resume.client_request_token.clone(),
            progress,
        )
        .await
    }

    /// [`wait_for_update`](Self::wait_for_update) for the update started
    /// with `token`: events carrying another token (someone else's
    /// operation) are ignored.
    async fn wait(
        &self,
        stack: &str,
        after_event_id: Option<String>,
        token: Option<String>,
        progress: &dyn ProgressSink,
    ) -> Result<StackUpdateOutcome, Error> {
        let started = self.clock.monotonic();
        let resume = WaitResume {
            after_event_id: after_event_id.clone(),
            client_request_token: token.clone(),
            change_set: None,
        };
        let mut marker = after_event_id;
        let mut events: Vec<StackEvent> = Vec::new();
        let mut last_status: Option<StackStatus> = None;
        // DescribeStacks has shown the update running (`*_IN_PROGRESS`): a
        // terminal status after that is this update's.
        let mut seen_running = false;
        // The newest terminal status the stack's own events reported for
        // this update: DescribeStacks may lag behind it (still showing the
        // previous update's terminal status), so a terminal status only
        // counts once it agrees.
        let mut final_event_status: Option<String> = None;
        loop {
            let read = async {
                let description = self.api.describe_stack(stack).await?;
                let new_events = self
                    .api
                    .stack_events(stack, marker.as_deref(), None)
                    .await?;
                Ok::<_, Error>((description, new_events))
            };
            let (description, mut new_events) = match read.await {
                Ok(read) => read,
                Err(error) if is_retryable(&error) => {
                    warn!(stack, %error, "reading the stack failed; retrying on the next poll");
                    let elapsed = self.clock.monotonic().saturating_sub(started);
                    if elapsed >= self.config.update_timeout {
                        return Err(Error::WaitTimedOut {
                            stack: stack.to_string(),
                            operation: "stack update",
                            status: last_status
                                .as_ref()
                                .map_or_else(|| "unknown".to_string(), ToString::to_string),
                            waited: elapsed,
                            resume: Box::new(resume),
                        });
                    }
                    self.clock.sleep(self.config.poll_interval).await;
                    continue;
                }
                Err(error) => return Err(error),
            };
            if let Some(newest) = new_events.first() {
                marker = Some(newest.event_id.clone());
            }
            new_events.reverse();
            for event in new_events {
                if token.is_some()
                    && event.client_request_token.is_some()
                    && event.client_request_token != token
                {
                    // Another operation's event (a token we did not send).
                    continue;
                }
                if event.resource_type == "AWS::CloudFormation::Stack"
                    && event.logical_id == description.name
                {
                    final_event_status =
                        (!event.status.ends_with("_IN_PROGRESS")).then(|| event.status.clone());
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
            if settled_with_cleanup(&description.status) {
                return Ok(outcome_of(&description, &events, elapsed));
            } else if description.status.is_in_progress() {
                seen_running = true;
            } else if let Some(final_status) = &final_event_status {
                if final_status == description.status.as_str() {
                    return Ok(outcome_of(&description, &events, elapsed));
                }
                // DescribeStacks lags behind the events: poll again.
            } else if seen_running {
                return Ok(outcome_of(&description, &events, elapsed));
            }
            // Otherwise the terminal status may be the previous update's
            // (the update has not shown up yet, or only its first events
            // have): poll again.
            if elapsed >= self.config.update_timeout {
                return Err(Error::WaitTimedOut {
                    stack: stack.to_string(),
                    operation: "stack update",
                    status: description.status.to_string(),
                    waited: elapsed,
                    resume: Box::new(resume),
                });
            }
            self.clock.sleep(self.config.poll_interval).await;
        }
    }

    fn change_set_name(&self) -> String {
        self.unique_name()
    }

    /// `<prefix><timestamp>-<seq>`, at most 128 characters (the limit of
    /// change set names and client request tokens).
    fn unique_name(&self) -> String {
        let seq = CHANGE_SET_SEQ.fetch_add(1, Ordering::Relaxed);
        let suffix = format!("{}-{seq}", self.clock.now().format("%Y%m%d%H%M%S%3f"));
        let prefix = &self.config.change_set_prefix;
        let keep = prefix.len().min(128usize.saturating_sub(suffix.len()));
        format!("{}{suffix}", &prefix[..keep])
    }
}

/// A read failure worth another poll: throttling or a transient failure.
fn is_retryable(error: &Error) -> bool {
    matches!(error, Error::Backend { .. })
        && matches!(error.class(), ErrorClass::Throttled | ErrorClass::Transient)
}

/// The update (or its rollback) is done; only the removal of old resources
/// is still running. The stack cannot be updated until it finishes, but the
/// outcome is known.
fn settled_with_cleanup(status: &StackStatus) -> bool {
    matches!(
        status.as_str(),
        "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS" | "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS"
    )
}

fn sha256_hex_normalized(expected: &str) -> String {
    expected.trim().to_ascii_lowercase()
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

/// CloudFormation's reason for resources it stopped because another one
/// failed: noise, not a cause.
fn is_cancelled(event: &StackEvent) -> bool {
    event.reason.as_deref().is_some_and(|r| {
        r.contains("Resource update cancelled") || r.contains("Resource creation cancelled")
    })
}

/// Classifies a settled stack: `UPDATE_COMPLETE` is `Updated`,
/// `UPDATE_ROLLBACK_COMPLETE` is `RolledBack`, everything else `Failed`.
///
/// Reasons are the failed resource events, oldest first (so the first is
/// the cause), without the stack's own events (its status reason is added
/// once for `Failed`) and without "Resource update cancelled" lines; the
/// failures after the rollback started are listed apart.
fn outcome_of(
    description: &StackDescription,
    events: &[StackEvent],
    waited: Duration,
) -> StackUpdateOutcome {
    let is_stack = |e: &StackEvent| {
        e.resource_type == "AWS::CloudFormation::Stack"
            && (e.logical_id == description.name || e.logical_id == description.id)
    };
    let rollback_start = events
        .iter()
        .position(|e| is_stack(e) && e.status.ends_with("ROLLBACK_IN_PROGRESS"))
        .unwrap_or(events.len());
    let (forward, rollback) = events.split_at(rollback_start);
    let failures = |events: &[StackEvent]| -> Vec<String> {
        events
            .iter()
            .filter(|e| e.is_failure() && !is_stack(e) && !is_cancelled(e))
            .map(|e| {
                format!(
                    "{} ({}) {}: {}",
                    e.logical_id,
                    e.resource_type,
                    e.status,
                    e.reason.as_deref().unwrap_or("no reason given")
                )
            })
            .collect()
    };
    let mut reasons = failures(forward);
    let rollback_failures = failures(rollback);
    let failed_ids = |events: &[StackEvent]| -> Vec<String> {
        let mut ids: Vec<String> = Vec::new();
        for e in events {
            if e.is_failure() && !is_stack(e) && !is_cancelled(e) && !ids.contains(&e.logical_id) {
                ids.push(e.logical_id.clone());
            }
        }
        ids
    };
    match description.status.as_str() {
        "UPDATE_COMPLETE" | "CREATE_COMPLETE" | "IMPORT_COMPLETE" => StackUpdateOutcome::Updated {
            status: description.status.clone(),
            waited,
            cleanup_pending: false,
        },
        "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS" => StackUpdateOutcome::Updated {
            status: description.status.clone(),
            waited,
            cleanup_pending: true,
        },
        "UPDATE_ROLLBACK_COMPLETE" | "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS" => {
            StackUpdateOutcome::RolledBack {
                reasons,
                rollback_failures,
            }
        }
        _ => {
            let next_step = match description.status.as_str() {
                "UPDATE_ROLLBACK_FAILED" => {
                    let mut skip = failed_ids(rollback);
                    if skip.is_empty() {
                        skip = failed_ids(forward);
                    }
                    format!(
                        "continue the rollback (ContinueUpdateRollback); resources that cannot \
                         be restored can be skipped with ResourcesToSkip: [{}]",
                        skip.join(", ")
                    )
                }
                "UPDATE_FAILED" => "the update failed with rollback disabled: fix the cause and \
                                    update the stack again, or roll it back (RollbackStack)"
                    .to_string(),
                _ => description.status.operator_hint().to_string(),
            };
            reasons.extend(
                rollback_failures
                    .into_iter()
                    .map(|r| format!("during rollback: {r}")),
            );
            if let Some(reason) = &description.status_reason {
                reasons.push(format!("stack: {reason}"));
            }
            StackUpdateOutcome::Failed {
                status: description.status.clone(),
                reasons,
                next_step,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(logical: &str, kind: &str, status: &str, reason: Option<&str>) -> StackEvent {
        StackEvent {
            event_id: format!("{logical}-{status}"),
            timestamp: None,
            logical_id: logical.into(),
            resource_type: kind.into(),
            status: status.into(),
            reason: reason.map(Into::into),
            client_request_token: None,
        }
    }

    fn stack(status: &str, reason: Option<&str>) -> StackDescription {
        StackDescription {
            name: "runner".into(),
            id: "arn:aws:cloudformation:us-east-1:1:stack/runner/1".into(),
            status: StackStatus::new(status),
            status_reason: reason.map(Into::into),
            parameters: BTreeMap::new(),
            resolved_parameters: BTreeMap::new(),
            outputs: BTreeMap::new(),
            tags: BTreeMap::new(),
            last_updated: None,
        }
    }

    /// The events of a real rollback, oldest first: the cause, the
    /// cancelled neighbours, the stack's own events, a failure while
    /// rolling back.
    fn rollback_events(final_status: &str) -> Vec<StackEvent> {
        const STACK: &str = "AWS::CloudFormation::Stack";
        vec![
            event(
                "runner",
                STACK,
                "UPDATE_IN_PROGRESS",
                Some("User Initiated"),
            ),
            event("Service", "AWS::ECS::Service", "UPDATE_IN_PROGRESS", None),
            event("TaskRole", "AWS::IAM::Role", "UPDATE_IN_PROGRESS", None),
            event(
                "Service",
                "AWS::ECS::Service",
                "UPDATE_FAILED",
                Some("CannotPullContainerError: runner:2 not found"),
            ),
            event(
                "TaskRole",
                "AWS::IAM::Role",
                "UPDATE_FAILED",
                Some("Resource update cancelled"),
            ),
            event(
                "runner",
                STACK,
                "UPDATE_ROLLBACK_IN_PROGRESS",
                Some("The following resource(s) failed to update: [Service]."),
            ),
            event(
                "TaskRole",
                "AWS::IAM::Role",
                "UPDATE_FAILED",
                Some("AccessDenied: iam:PutRolePolicy"),
            ),
            event("runner", STACK, final_status, Some("rollback ended")),
        ]
    }

    #[test]
    fn rolled_back_names_the_cause_first_and_rollback_failures_apart() {
        let outcome = outcome_of(
            &stack("UPDATE_ROLLBACK_COMPLETE", None),
            &rollback_events("UPDATE_ROLLBACK_COMPLETE"),
            Duration::ZERO,
        );
        assert_eq!(
            outcome,
            StackUpdateOutcome::RolledBack {
                reasons: vec![
                    "Service (AWS::ECS::Service) UPDATE_FAILED: CannotPullContainerError: \
                     runner:2 not found"
                        .into()
                ],
                rollback_failures: vec![
                    "TaskRole (AWS::IAM::Role) UPDATE_FAILED: AccessDenied: iam:PutRolePolicy"
                        .into()
                ],
            }
        );
    }

    #[test]
    fn update_failed_with_rollback_disabled_says_update_again_or_roll_back() {
        let events = vec![event(
            "Service",
            "AWS::ECS::Service",
            "UPDATE_FAILED",
            Some("boom"),
        )];
        let outcome = outcome_of(
            &stack("UPDATE_FAILED", Some("boom")),
            &events,
            Duration::ZERO,
        );
        let StackUpdateOutcome::Failed { next_step, .. } = outcome else {
            panic!("{outcome:?}");
        };
        assert!(
            next_step.contains("update the stack again") && next_step.contains("RollbackStack"),
            "{next_step}"
        );
    }

    #[test]
    fn failed_rollback_lists_both_phases_and_the_stack_reason_once() {
        let outcome = outcome_of(
            &stack("UPDATE_ROLLBACK_FAILED", Some("rollback ended")),
            &rollback_events("UPDATE_ROLLBACK_FAILED"),
            Duration::ZERO,
        );
        let StackUpdateOutcome::Failed {
            reasons, next_step, ..
        } = outcome
        else {
            panic!("{outcome:?}");
        };
        assert!(
            next_step.contains("ContinueUpdateRollback") && next_step.contains("[TaskRole]"),
            "{next_step}"
        );
        assert_eq!(
            reasons,
            vec![
                "Service (AWS::ECS::Service) UPDATE_FAILED: CannotPullContainerError: runner:2 \
                 not found"
                    .to_string(),
                "during rollback: TaskRole (AWS::IAM::Role) UPDATE_FAILED: AccessDenied: \
                 iam:PutRolePolicy"
                    .to_string(),
                "stack: rollback ended".to_string(),
            ]
        );
    }
}
