//! The `runner-updater` operator binary's configuration: the TOML file and
//! the [`Overrides`] the binary takes from flags and `RUNNER_UPDATER_*`
//! environment variables (read by the binary, never here), parsed
//! ([`parse`]) and validated ([`resolve`]) without any I/O but
//! [`Settings::load`] reading the file. A library so that tests and fuzz
//! targets reach the same parser the binary runs.
//!
//! ```toml
//! runner = "runners/gitpod-runner"     # default: <cluster>/<service> of the first target
//! owner = "host-1"                     # default: the ECS task id, or <hostname>:<pid>
//! channel = "stable"                   # overrides policy.channel
//! wave_position = 0.0                  # pin this runner's place in staged waves (percent;
//!                                      # 0 = first wave, a canary); default: drawn from `runner`
//!
//! [[targets]]                          # deployment order; the first runs the runner image
//! name = "runner"
//! cluster = "runners"
//! service = "gitpod-runner"
//! container = "runner"                 # default "runner"
//! image = "runner"                     # runner | proxy
//! version_label = "org.opencontainers.image.version"   # "" = read the version from the image tag
//!
//! [release]
//! manifest_url = "https://releases.example.com/stable.json"   # or manifest_file = "/etc/runner/stable.json"
//! trusted_keys = { release-2025 = "<base64 Ed25519 public key>" }
//! threshold = 1
//! allow_unsigned = false
//! high_water_file = "/var/lib/runner-updater/high-water.json"  # rollback protection across restarts
//! timeout_secs = 30
//!
//! [lock]                               # lock, journal and quarantine live together
//! backend = "dynamodb"                 # memory | file | dynamodb
//! table = "runner-updater"             # dynamodb
//! dir = "/var/lib/runner-updater"      # file
//! lease_secs = 300
//! heartbeat_secs = 60                  # 0 = no background heartbeat
//! step_budget_secs = 60
//! wait_secs = 0
//!
//! [infra]                              # one of:
//! version = "7"                        # a fixed infrastructure version
//! stack = "gitpod-runner"              # or read from the stack
//! output_key = "InfrastructureVersion"
//!
//! [policy]                             # update_policy::UpdatePolicy
//! auto_update = true
//! window = { start = "22:00:00", end = "02:00:00" }
//! minimum_release_age_secs = 86400
//!
//! [schedule]
//! interval_secs = 3600
//! jitter_secs = 600
//!
//! [rollout]
//! poll_min_secs = 5
//! poll_max_secs = 30
//! timeout_secs = 1800
//! bake_secs = 60
//! keep_revisions = 10
//!
//! [notify]
//! webhook_url = "https://hooks.example.com/runner-updates"
//! tag_services = false
//!
//! [metrics]
//! listen = "127.0.0.1:9100"
//!
//! [iam]
//! pass_role_arns = ["arn:aws:iam::123456789012:role/runner-task"]
//! ```

use std::{
    collections::BTreeMap,
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use ecs_rollout::{DeploymentConfigurationPolicy, RolloutConfig};
use runner_updater::{DEFAULT_VERSION_LABEL, ReleaseImage, Target, UpdaterConfig};
use runner_version::{Channel, TrustPolicy};
use serde::Deserialize;
use update_lock::Lease;
use update_policy::{CheckScheduleConfig, UpdatePolicy};

/// The settings given on the command line or in the environment; each wins
/// over its key in the file. The binary fills it from its flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `runner`.
    pub runner: Option<String>,
    /// `owner`.
    pub owner: Option<String>,
    /// `channel`.
    pub channel: Option<String>,
    /// The ECS cluster of every target.
    pub cluster: Option<String>,
    /// A single runner target's ECS service (when the file lists no targets).
    pub service: Option<String>,
    /// The runner container of that single target (default `runner`).
    pub container: Option<String>,
    /// `release.manifest_url`.
    pub manifest_url: Option<String>,
    /// `release.manifest_file`.
    pub manifest_file: Option<PathBuf>,
    /// `lock.backend`.
    pub lock_backend: Option<String>,
    /// `lock.dir`.
    pub lock_dir: Option<PathBuf>,
    /// `lock.table`.
    pub lock_table: Option<String>,
    /// `infra.version`.
    pub infra_version: Option<String>,
    /// `infra.stack`.
    pub stack: Option<String>,
    /// `notify.webhook_url`.
    pub webhook_url: Option<String>,
    /// The lock owner when neither the overrides nor the file name one (the
    /// binary passes the ECS task id, else `<hostname>:<pid>`). Without it
    /// an unnamed owner is refused.
    pub default_owner: Option<String>,
}

/// Why a configuration was refused.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConfigError {
    /// A key has a value that cannot work.
    Invalid {
        /// The key, as written in the TOML file (`lock.lease_secs`).
        key: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The configuration file cannot be read.
    Unreadable(String),
    /// The update policy or the check schedule refused its settings (the
    /// error names the policy field).
    Policy(update_policy::Error),
    /// The updater refused its settings (the error names the field).
    Updater(runner_updater::Error),
}

impl ConfigError {
    /// An [`Invalid`](Self::Invalid) error for `key`.
    pub fn invalid(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid { key, reason } => write!(f, "configuration error: `{key}` {reason}"),
            Self::Unreadable(message) => f.write_str(message),
            Self::Policy(e) => write!(f, "configuration error: policy: {e}"),
            Self::Updater(e) => write!(f, "configuration error: {e}"),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Policy(e) => Some(e),
            Self::Updater(e) => Some(e),
            Self::Invalid { .. } | Self::Unreadable(_) => None,
        }
    }
}

/// A configuration file as written, before overrides and validation
/// ([`parse`] reads one, [`resolve`] turns it into [`Settings`]).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    runner: Option<String>,
    owner: Option<String>,
    channel: Option<String>,
    wave_position: Option<f64>,
    #[serde(default)]
    targets: Vec<TargetFile>,
    #[serde(default)]
    release: ReleaseFile,
    #[serde(default)]
    lock: LockFile,
    #[serde(default)]
    infra: InfraFile,
    policy: Option<UpdatePolicy>,
    #[serde(default)]
    schedule: ScheduleFile,
    #[serde(default)]
    rollout: RolloutFile,
    #[serde(default)]
    notify: NotifyFile,
    #[serde(default)]
    metrics: MetricsFile,
    #[serde(default)]
    iam: IamFile,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetFile {
    name: String,
    cluster: String,
    service: String,
    container: Option<String>,
    image: Option<String>,
    version_label: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReleaseFile {
    manifest_url: Option<String>,
    manifest_file: Option<PathBuf>,
    #[serde(default)]
    trusted_keys: BTreeMap<String, String>,
    threshold: Option<usize>,
    #[serde(default)]
    allow_unsigned: bool,
    high_water_file: Option<PathBuf>,
    timeout_secs: Option<u64>,
    #[serde(default)]
    allow_loopback_http: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LockFile {
    backend: Option<String>,
    dir: Option<PathBuf>,
    table: Option<String>,
    lease_secs: Option<u64>,
    heartbeat_secs: Option<u64>,
    step_budget_secs: Option<u64>,
    wait_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct InfraFile {
    version: Option<String>,
    stack: Option<String>,
    output_key: Option<String>,
    tag_key: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleFile {
    interval_secs: Option<u64>,
    jitter_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RolloutFile {
    poll_min_secs: Option<u64>,
    poll_max_secs: Option<u64>,
    timeout_secs: Option<u64>,
    bake_secs: Option<u64>,
    rollback_timeout_secs: Option<u64>,
    wait_for_idle_secs: Option<u64>,
    keep_revisions: Option<usize>,
    deployment_configuration: Option<String>,
    mark_failed_revisions: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NotifyFile {
    webhook_url: Option<String>,
    #[serde(default)]
    tag_services: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricsFile {
    listen: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct IamFile {
    #[serde(default)]
    pass_role_arns: Vec<String>,
}

/// The keys of `[policy]` (`UpdatePolicy` fills defaults and would ignore a
/// misspelt key silently, so [`parse`] checks them).
pub const POLICY_KEYS: &[&str] = &[
    "channel",
    "auto_update",
    "window",
    "allowed_weekdays",
    "minimum_release_age_secs",
    "maximum_version",
    "version_requirement",
    "hold",
    "quarantine_backoff",
];

/// Where releases come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseLocation {
    /// An https manifest.
    Url(String),
    /// A manifest file.
    File(PathBuf),
}

/// The release source settings.
#[derive(Debug, Clone)]
pub struct ReleaseSettings {
    /// Where.
    pub location: ReleaseLocation,
    /// The trust policy, if keys are configured.
    pub trust: Option<TrustPolicy>,
    /// Whether unsigned manifests are accepted.
    pub allow_unsigned: bool,
    /// The persisted high-water mark.
    pub high_water_file: Option<PathBuf>,
    /// The HTTP timeout.
    pub timeout: Duration,
    /// Plain http to loopback (tests).
    pub allow_loopback_http: bool,
}

/// The lock, journal and quarantine backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// In memory (one process; `run` and tests).
    Memory,
    /// Files in a directory (one machine).
    File(PathBuf),
    /// A DynamoDB table (fleet-wide).
    DynamoDb(String),
}

impl Backend {
    /// The backend's name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::File(_) => "file",
            Self::DynamoDb(_) => "dynamodb",
        }
    }
}

/// Where the infrastructure version comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InfraSettings {
    /// A fixed version.
    Fixed(String),
    /// A stack output or tag.
    Stack {
        /// The stack name.
        name: String,
        /// The output key (default `InfrastructureVersion`).
        output_key: Option<String>,
        /// The tag key, if the version is a tag.
        tag_key: Option<String>,
    },
}

/// The resolved, validated configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The updater settings (runner, owner, targets, lease, rollout).
    pub updater: UpdaterConfig,
    /// The release source, if configured.
    pub release: Option<ReleaseSettings>,
    /// The lock, journal and quarantine backend.
    pub backend: Backend,
    /// The infrastructure version source, if configured.
    pub infra: Option<InfraSettings>,
    /// The eligibility policy.
    pub policy: UpdatePolicy,
    /// The check schedule.
    pub schedule: CheckScheduleConfig,
    /// The webhook, if any.
    pub webhook_url: Option<String>,
    /// Tag updated services with the new version.
    pub tag_services: bool,
    /// The metrics address, if any.
    pub metrics_listen: Option<SocketAddr>,
    /// Roles the task definitions pass (for `iam-policy`).
    pub pass_role_arns: Vec<String>,
}

impl Settings {
    /// The release source settings, or the error naming the missing key.
    pub fn release(&self) -> Result<&ReleaseSettings, ConfigError> {
        self.release.as_ref().ok_or_else(|| {
            ConfigError::invalid(
                "release.manifest_url",
                "is not set (nor release.manifest_file); say where releases come from \
                 (--manifest-url, RUNNER_UPDATER_MANIFEST_URL or the config file)",
            )
        })
    }

    /// The infrastructure version source, or the error naming the key.
    pub fn infra(&self) -> Result<&InfraSettings, ConfigError> {
        self.infra.as_ref().ok_or_else(|| {
            ConfigError::invalid(
                "infra.stack",
                "is not set (nor infra.version); name the runner's CloudFormation stack \
                 (--stack) or a fixed infrastructure version (--infra-version)",
            )
        })
    }

    /// The stack name, or the error naming the key.
    pub fn stack_name(&self) -> Result<&str, ConfigError> {
        match &self.infra {
            Some(InfraSettings::Stack { name, .. }) => Ok(name),
            _ => Err(ConfigError::invalid(
                "infra.stack",
                "is not set; name the runner's CloudFormation stack (--stack or \
                 RUNNER_UPDATER_STACK)",
            )),
        }
    }

    /// The runner key.
    pub fn runner(&self) -> &str {
        &self.updater.runner
    }

    /// Loads `path` (if any), applies the overrides and validates everything.
    pub fn load(path: Option<&Path>, overrides: impl Into<Overrides>) -> Result<Self, ConfigError> {
        let file = match path {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        resolve(file, &overrides.into())
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::Unreadable(format!(
            "cannot read the configuration file {}: {e}",
            path.display()
        ))
    })?;
    parse(&text, &path.display().to_string())
}

/// Parses the TOML text of a configuration file; `origin` (its path) is
/// quoted in errors. Unknown keys are refused, naming the key.
pub fn parse(text: &str, origin: &str) -> Result<FileConfig, ConfigError> {
    let table: toml::Table = toml::from_str(text).map_err(|e| toml_error(&e, text, origin))?;
    if let Some(toml::Value::Table(policy)) = table.get("policy")
        && let Some(key) = policy.keys().find(|k| !POLICY_KEYS.contains(&k.as_str()))
    {
        return Err(ConfigError::invalid(
            format!("policy.{key}"),
            format!(
                "is not a policy key (in {origin}); the keys are: {}",
                POLICY_KEYS.join(", ")
            ),
        ));
    }
    toml::from_str(text).map_err(|e| toml_error(&e, text, origin))
}

/// A TOML error as a configuration error naming the key: the key of the
/// line the error points at (with its `[section]`), else the field of an
/// "unknown field" message.
fn toml_error(error: &toml::de::Error, text: &str, origin: &str) -> ConfigError {
    let message = error.message().trim().to_string();
    let key = error
        .span()
        .and_then(|span| key_at(text, span.start))
        .or_else(|| unknown_field(&message))
        .unwrap_or_else(|| "config".to_string());
    let line = error
        .span()
        .map(|span| {
            format!(
                ", line {}",
                text[..span.start.min(text.len())].lines().count().max(1)
            )
        })
        .unwrap_or_default();
    ConfigError::invalid(key, format!("is invalid: {message} (in {origin}{line})"))
}

/// The dotted key of the `key = value` line holding byte `offset`.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[line_start..]
        .find('\n')
        .map_or(text.len(), |i| line_start + i);
    let line = &text[line_start..line_end];
    let (key, _) = line.split_once('=')?;
    let key = key.trim().trim_matches('"');
    if key.is_empty() || key.starts_with('[') || key.starts_with('#') {
        return None;
    }
    let before = &text[..line_start];
    let section = before.lines().rev().find_map(|l| {
        let l = l.trim();
        if let Some(name) = l.strip_prefix("[[").and_then(|r| r.strip_suffix("]]")) {
            let header = format!("[[{name}]]");
            let index = before
                .lines()
                .filter(|x| x.trim() == header)
                .count()
                .saturating_sub(1);
            Some(format!("{}[{index}]", name.trim()))
        } else {
            l.strip_prefix('[')
                .and_then(|r| r.strip_suffix(']'))
                .map(|n| n.trim().to_string())
        }
    });
    Some(match section {
        Some(s) => format!("{s}.{key}"),
        None => key.to_string(),
    })
}

fn unknown_field(message: &str) -> Option<String> {
    let rest = message.split("unknown field `").nth(1)?;
    Some(rest.split('`').next()?.to_string())
}

fn secs(value: Option<u64>, default: u64) -> Duration {
    Duration::from_secs(value.unwrap_or(default))
}

fn positive(key: &str, value: Option<u64>) -> Result<Option<u64>, ConfigError> {
    match value {
        Some(0) => Err(ConfigError::invalid(
            key,
            "is zero; use a positive number of seconds",
        )),
        other => Ok(other),
    }
}

fn non_empty(key: &str, value: Option<String>) -> Result<Option<String>, ConfigError> {
    match value {
        Some(v) if v.trim().is_empty() => Err(ConfigError::invalid(key, "is empty")),
        other => Ok(other),
    }
}

/// Applies the overrides to `file` and validates everything: the settings,
/// or the error naming the first key that cannot work.
pub fn resolve(file: FileConfig, o: &Overrides) -> Result<Settings, ConfigError> {
    // Targets.
    let mut targets = Vec::new();
    for (i, t) in file.targets.into_iter().enumerate() {
        let image = match t.image.as_deref() {
            None if i == 0 => ReleaseImage::Runner,
            None => {
                return Err(ConfigError::invalid(
                    format!("targets[{i}].image"),
                    "is not set; say which image of the release it runs: runner or proxy",
                ));
            }
            Some("runner") => ReleaseImage::Runner,
            Some("proxy") => ReleaseImage::Proxy,
            Some(other) => {
                return Err(ConfigError::invalid(
                    format!("targets[{i}].image"),
                    format!("is {other:?}; use runner or proxy"),
                ));
            }
        };
        let container = t.container.unwrap_or_else(|| t.name.clone());
        let mut target = Target::new(t.name, t.cluster, t.service, container, image);
        target.version_label = match t.version_label {
            None => Some(DEFAULT_VERSION_LABEL.to_string()),
            Some(l) if l.trim().is_empty() => None,
            Some(l) => Some(l),
        };
        targets.push(target);
    }
    if let Some(service) = o.service.clone() {
        if !targets.is_empty() {
            return Err(ConfigError::invalid(
                "targets",
                "are listed in the config file and --service (RUNNER_UPDATER_SERVICE) names a \
                 single target too; use one or the other",
            ));
        }
        let cluster = o.cluster.clone().ok_or_else(|| {
            ConfigError::invalid(
                "targets[0].cluster",
                "is not set; --service needs --cluster (RUNNER_UPDATER_CLUSTER)",
            )
        })?;
        let container = o.container.clone().unwrap_or_else(|| "runner".into());
        targets.push(Target::new(
            "runner",
            cluster,
            service,
            container,
            ReleaseImage::Runner,
        ));
    } else if let Some(cluster) = &o.cluster {
        for t in &mut targets {
            t.cluster = cluster.clone();
        }
    }

    if targets.is_empty() {
        return Err(ConfigError::invalid(
            "targets",
            "is empty; list the services under [[targets]] in the config file (--config), or \
             name one runner service with --cluster and --service",
        ));
    }

    // Identity.
    let runner = non_empty("runner", o.runner.clone().or(file.runner))?
        .or_else(|| {
            targets
                .first()
                .map(|t| format!("{}/{}", t.cluster, t.service))
        })
        .unwrap_or_default();
    let owner = non_empty("owner", o.owner.clone().or(file.owner))?
        .or_else(|| o.default_owner.clone())
        .unwrap_or_default();

    // Lock.
    let lock = file.lock;
    let lease_secs = positive("lock.lease_secs", lock.lease_secs)?.unwrap_or(300);
    let lease = Lease::new(Duration::from_secs(lease_secs))
        .map_err(|e| ConfigError::invalid("lock.lease_secs", e.to_string()))?;
    let lease = match lock.heartbeat_secs.unwrap_or(60) {
        0 => lease.without_heartbeat(),
        h => lease
            .with_heartbeat(Duration::from_secs(h))
            .map_err(|e| ConfigError::invalid("lock.heartbeat_secs", e.to_string()))?,
    };
    let step_budget = secs(lock.step_budget_secs, 60);
    let lock_wait = secs(lock.wait_secs, 0);
    let backend_name = o
        .lock_backend
        .clone()
        .or(lock.backend)
        .unwrap_or_else(|| "memory".into());
    let backend = match backend_name.as_str() {
        "memory" => Backend::Memory,
        "file" => Backend::File(o.lock_dir.clone().or(lock.dir).ok_or_else(|| {
            ConfigError::invalid(
                "lock.dir",
                "is not set; the file backend needs a directory (--lock-dir)",
            )
        })?),
        "dynamodb" => Backend::DynamoDb(
            non_empty("lock.table", o.lock_table.clone().or(lock.table))?.ok_or_else(|| {
                ConfigError::invalid(
                    "lock.table",
                    "is not set; the dynamodb backend needs a table (--lock-table)",
                )
            })?,
        ),
        other => {
            return Err(ConfigError::invalid(
                "lock.backend",
                format!("is {other:?}; use memory, file or dynamodb"),
            ));
        }
    };

    // Release source.
    let rel = file.release;
    let manifest_url = o.manifest_url.clone().or(rel.manifest_url);
    let manifest_file = o.manifest_file.clone().or(rel.manifest_file);
    let location = match (manifest_url, manifest_file) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::invalid(
                "release.manifest_url",
                "and release.manifest_file are both set; use one",
            ));
        }
        (Some(url), None) => {
            let allowed = url.starts_with("https://")
                || (rel.allow_loopback_http && url.starts_with("http://"));
            if !allowed {
                return Err(ConfigError::invalid(
                    "release.manifest_url",
                    format!("is {url:?}; it must be an https:// URL"),
                ));
            }
            Some(ReleaseLocation::Url(url))
        }
        (None, Some(path)) => Some(ReleaseLocation::File(path)),
        (None, None) => None,
    };
    let trust = if rel.trusted_keys.is_empty() {
        if rel.threshold.is_some() {
            return Err(ConfigError::invalid(
                "release.threshold",
                "is set but release.trusted_keys is empty; list the trusted keys",
            ));
        }
        None
    } else {
        let mut policy = TrustPolicy::new(rel.threshold.unwrap_or(1));
        for (id, key) in &rel.trusted_keys {
            policy = policy.with_key_base64(id.clone(), key).map_err(|e| {
                ConfigError::invalid(format!("release.trusted_keys.{id}"), e.to_string())
            })?;
        }
        policy
            .validate()
            .map_err(|e| ConfigError::invalid("release.threshold", e.to_string()))?;
        Some(policy)
    };
    if location.is_some() && trust.is_none() && !rel.allow_unsigned {
        return Err(ConfigError::invalid(
            "release.trusted_keys",
            "is empty and release.allow_unsigned is false, so no release could be accepted; \
             list the publisher's keys (or allow unsigned manifests, not recommended)",
        ));
    }
    let timeout = secs(positive("release.timeout_secs", rel.timeout_secs)?, 30);
    let release = location.map(|location| ReleaseSettings {
        location,
        trust,
        allow_unsigned: rel.allow_unsigned,
        high_water_file: rel.high_water_file,
        timeout,
        allow_loopback_http: rel.allow_loopback_http,
    });

    // Infrastructure.
    let infra_file = file.infra;
    let version = non_empty(
        "infra.version",
        o.infra_version.clone().or(infra_file.version),
    )?;
    let stack = non_empty("infra.stack", o.stack.clone().or(infra_file.stack))?;
    let infra = match (version, stack) {
        (Some(v), None) => Some(InfraSettings::Fixed(v)),
        (None, Some(name)) => Some(InfraSettings::Stack {
            name,
            output_key: non_empty("infra.output_key", infra_file.output_key)?,
            tag_key: non_empty("infra.tag_key", infra_file.tag_key)?,
        }),
        (Some(_), Some(_)) => {
            return Err(ConfigError::invalid(
                "infra.version",
                "and infra.stack are both set; a fixed version or the stack's, not both",
            ));
        }
        (None, None) => None,
    };

    // Policy and schedule.
    let mut policy = file.policy.unwrap_or_default();
    if let Some(channel) = o.channel.clone().or(file.channel) {
        policy.channel =
            Channel::parse(&channel).map_err(|e| ConfigError::invalid("channel", e.to_string()))?;
    }
    let defaults = CheckScheduleConfig::default();
    let schedule = CheckScheduleConfig {
        interval: file
            .schedule
            .interval_secs
            .map_or(defaults.interval, Duration::from_secs),
        jitter: file
            .schedule
            .jitter_secs
            .map_or(defaults.jitter, Duration::from_secs),
    };
    policy
        .validate_with_schedule(&schedule)
        .map_err(ConfigError::Policy)?;

    // Rollout.
    let r = file.rollout;
    let mut rollout = RolloutConfig::default();
    if let Some(t) = positive("rollout.timeout_secs", r.timeout_secs)? {
        rollout.monitor.timeout = Duration::from_secs(t);
    }
    if let Some(p) = positive("rollout.poll_min_secs", r.poll_min_secs)? {
        rollout.monitor.poll_min = Duration::from_secs(p);
        rollout.monitor.poll_max = rollout.monitor.poll_max.max(rollout.monitor.poll_min);
    }
    if let Some(p) = positive("rollout.poll_max_secs", r.poll_max_secs)? {
        rollout.monitor.poll_max = Duration::from_secs(p);
    }
    if let Some(b) = r.bake_secs {
        rollout.monitor.bake_time = Duration::from_secs(b);
    }
    if let Some(t) = positive("rollout.rollback_timeout_secs", r.rollback_timeout_secs)? {
        rollout.rollback_timeout = Duration::from_secs(t);
    }
    rollout.wait_for_idle = r.wait_for_idle_secs.map(Duration::from_secs);
    if let Some(n) = r.keep_revisions {
        if n < 2 {
            return Err(ConfigError::invalid(
                "rollout.keep_revisions",
                "must keep at least 2 revisions (the running one and the rollback target)",
            ));
        }
        rollout.keep_revisions = Some(n);
    }
    if let Some(policy) = r.deployment_configuration.as_deref() {
        rollout.deployment_configuration_policy = match policy {
            "fix" => DeploymentConfigurationPolicy::Fix,
            "warn" => DeploymentConfigurationPolicy::Warn,
            "refuse" => DeploymentConfigurationPolicy::Refuse,
            other => {
                return Err(ConfigError::invalid(
                    "rollout.deployment_configuration",
                    format!("is {other:?}; use fix, warn or refuse"),
                ));
            }
        };
    }
    if let Some(mark) = r.mark_failed_revisions {
        rollout.mark_failed_revisions = mark;
    }

    // Notify and metrics.
    let webhook_url = non_empty(
        "notify.webhook_url",
        o.webhook_url.clone().or(file.notify.webhook_url),
    )?;
    if let Some(url) = &webhook_url {
        runner_updater::WebhookNotifier::new(url, Arc::new(update_clock::SystemClock::new()))
            .map_err(ConfigError::Updater)?;
    }
    let metrics_listen = file
        .metrics
        .listen
        .map(|l| parse_listen("metrics.listen", &l))
        .transpose()?;

    for (i, arn) in file.iam.pass_role_arns.iter().enumerate() {
        if !arn.starts_with("arn:") || !arn.contains(":role/") {
            return Err(ConfigError::invalid(
                format!("iam.pass_role_arns[{i}]"),
                format!("is {arn:?}; use an IAM role ARN (arn:aws:iam::<account>:role/<name>)"),
            ));
        }
    }

    let wave_seed = match file.wave_position {
        None => None,
        Some(p) if p.is_finite() && (0.0..=100.0).contains(&p) => {
            Some(update_policy::WaveSeed::at_percent(p))
        }
        Some(p) => {
            return Err(ConfigError::invalid(
                "wave_position",
                format!(
                    "is {p}; use a share of the fleet from 0 (the first wave) to 100 (the last)"
                ),
            ));
        }
    };
    let mut updater = UpdaterConfig::new(runner, owner, targets);
    updater.wave_seed = wave_seed;
    updater.lease = lease;
    updater.step_budget = step_budget;
    updater.lock_wait = lock_wait;
    updater.rollout = rollout;
    updater.validate().map_err(ConfigError::Updater)?;

    Ok(Settings {
        updater,
        release,
        backend,
        infra,
        policy,
        schedule,
        webhook_url,
        tag_services: file.notify.tag_services,
        metrics_listen,
        pass_role_arns: file.iam.pass_role_arns,
    })
}

/// Parses a listen address, naming `key` when it is not one.
pub fn parse_listen(key: &str, value: &str) -> Result<SocketAddr, ConfigError> {
    value.parse().map_err(|e| {
        ConfigError::invalid(
            key,
            format!("is {value:?}, not an address such as 127.0.0.1:9100 ({e})"),
        )
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn policy_keys_are_the_policy_fields() {
        let full = UpdatePolicy {
            window: Some(update_policy::UpdateWindow::from_hm(1, 0, 3, 0).unwrap()),
            allowed_weekdays: Some(vec![chrono::Weekday::Mon]),
            minimum_release_age: Some(Duration::from_secs(60)),
            maximum_version: Some("20250101.1".parse().unwrap()),
            version_requirement: Some("2025".parse().unwrap()),
            hold: Some(update_policy::Hold {
                reason: "r".into(),
                expires_at: None,
            }),
            ..UpdatePolicy::default()
        };
        let json = serde_json::to_value(&full).unwrap();
        let keys: BTreeSet<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        let known: BTreeSet<&str> = POLICY_KEYS.iter().copied().collect();
        assert_eq!(keys, known);
    }

    #[test]
    fn an_unnamed_owner_without_a_default_is_refused() {
        let file = parse(
            "[[targets]]\nname = \"runner\"\ncluster = \"c\"\nservice = \"s\"\n",
            "t",
        )
        .unwrap();
        let err = resolve(file, &Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("owner"), "{err}");
        let file = parse(
            "[[targets]]\nname = \"runner\"\ncluster = \"c\"\nservice = \"s\"\n",
            "t",
        )
        .unwrap();
        let overrides = Overrides {
            default_owner: Some("host:1".into()),
            ..Overrides::default()
        };
        assert_eq!(resolve(file, &overrides).unwrap().updater.owner, "host:1");
    }
}
