//! The command line (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The exit codes, shown under every command's `--help`.
pub const EXIT_CODES: &str = "\
Exit codes:
  0   succeeded, or nothing to do (skipped, lock held by another updater)
  1   rolled back: the release failed and every target is back on its previous task definition
  2   failed: a rollback did not complete, the cycle was interrupted, or an error stopped the command
  3   blocked on infrastructure: apply the stack template named in the output first
  64  usage or configuration error: nothing was done";

const LONG_ABOUT: &str = "\
The operator binary of the ECS self-updater: checks for runner releases, \
decides with every reason, updates the runner's ECS services under a \
fleet-wide lock with a fenced journal, rolls back and quarantines failed \
releases, and never applies infrastructure changes on its own.

Start with `runner-updater demo`: whole update cycles on a simulated ECS, no \
AWS account needed.

Configuration: a TOML file (--config), environment variables \
RUNNER_UPDATER_* for the main keys, and flags; flags override the \
environment, which overrides the file.";

/// `runner-updater`: the safest automatic updater for services on Amazon ECS.
#[derive(Debug, Parser)]
#[command(
    name = "runner-updater",
    version,
    about = "The safest automatic updater for services on Amazon ECS (the Gitpod AWS runner)",
    long_about = LONG_ABOUT,
    after_help = EXIT_CODES,
    propagate_version = true
)]
pub struct Cli {
    /// Output format: text for a person, json for scripts.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t = OutputFormat::Text,
        env = "RUNNER_UPDATER_OUTPUT"
    )]
    pub output: OutputFormat,

    /// The TOML configuration file.
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        env = "RUNNER_UPDATER_CONFIG"
    )]
    pub config: Option<PathBuf>,

    #[command(flatten)]
    pub overrides: Overrides,

    #[command(subcommand)]
    pub command: Command,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Readable text.
    Text,
    /// One JSON document on stdout.
    Json,
}

/// Flags (and environment variables) that override the configuration file.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Configuration overrides")]
pub struct Overrides {
    /// `runner`: the runner's identity (lock, journal and quarantine key).
    #[arg(long, global = true, env = "RUNNER_UPDATER_RUNNER")]
    pub runner: Option<String>,
    /// `owner`: this updater's lock-owner identity (default: ECS task id or host:pid).
    #[arg(long, global = true, env = "RUNNER_UPDATER_OWNER")]
    pub owner: Option<String>,
    /// `channel`: the release channel followed (stable, latest, ...).
    #[arg(long, global = true, env = "RUNNER_UPDATER_CHANNEL")]
    pub channel: Option<String>,
    /// The ECS cluster of every target.
    #[arg(long, global = true, env = "RUNNER_UPDATER_CLUSTER")]
    pub cluster: Option<String>,
    /// A single runner target's ECS service (when the file lists no targets).
    #[arg(long, global = true, env = "RUNNER_UPDATER_SERVICE")]
    pub service: Option<String>,
    /// The runner container of that single target (default `runner`).
    #[arg(long, global = true, env = "RUNNER_UPDATER_CONTAINER")]
    pub container: Option<String>,
    /// `release.manifest_url`: the release manifest over https.
    #[arg(long, global = true, env = "RUNNER_UPDATER_MANIFEST_URL")]
    pub manifest_url: Option<String>,
    /// `release.manifest_file`: the release manifest as a local file.
    #[arg(long, global = true, env = "RUNNER_UPDATER_MANIFEST_FILE")]
    pub manifest_file: Option<PathBuf>,
    /// `lock.backend`: memory, file or dynamodb (lock, journal and quarantine).
    #[arg(long, global = true, env = "RUNNER_UPDATER_LOCK_BACKEND")]
    pub lock_backend: Option<String>,
    /// `lock.dir`: the directory of the file backend.
    #[arg(long, global = true, env = "RUNNER_UPDATER_LOCK_DIR")]
    pub lock_dir: Option<PathBuf>,
    /// `lock.table`: the DynamoDB table of the dynamodb backend.
    #[arg(long, global = true, env = "RUNNER_UPDATER_LOCK_TABLE")]
    pub lock_table: Option<String>,
    /// `infra.version`: a fixed infrastructure version (no stack).
    #[arg(long, global = true, env = "RUNNER_UPDATER_INFRA_VERSION")]
    pub infra_version: Option<String>,
    /// `infra.stack`: the runner's CloudFormation stack (infra version and `stack` commands).
    #[arg(long, global = true, env = "RUNNER_UPDATER_STACK")]
    pub stack: Option<String>,
    /// `notify.webhook_url`: where outcomes are POSTed as JSON.
    #[arg(long, global = true, env = "RUNNER_UPDATER_WEBHOOK_URL")]
    pub webhook_url: Option<String>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Whole update cycles on a simulated ECS: no AWS account, no setup.
    ///
    /// The story: a good release updates the runner and the proxy; a
    /// crash-looping release is rolled back by the ECS circuit breaker and
    /// quarantined; the next check skips it; a release needing a new
    /// infrastructure version is blocked with its template; an operator's
    /// manual rollback is respected. Exits 0 when every step gave the
    /// expected outcome, 2 otherwise (a self-check).
    #[command(after_help = EXIT_CODES)]
    Demo(DemoArgs),
    /// The daemon: a cycle at every check time, JSON logs, /metrics and /healthz.
    #[command(after_help = EXIT_CODES)]
    Run(RunArgs),
    /// Check for a release and print the decision with every reason; change nothing.
    #[command(after_help = EXIT_CODES)]
    Check,
    /// Run one update cycle now (or, with --dry-run, print the plan and the task-definition diff).
    #[command(after_help = EXIT_CODES)]
    Update(UpdateArgs),
    /// Roll every target back to the task definition the last update replaced.
    #[command(after_help = EXIT_CODES)]
    Rollback(RollbackArgs),
    /// The runner's state: versions, last outcome, lock, quarantine, hold, journal.
    #[command(after_help = EXIT_CODES)]
    Status,
    /// List or clear quarantined releases.
    #[command(after_help = EXIT_CODES)]
    Quarantine {
        #[command(subcommand)]
        action: QuarantineAction,
    },
    /// Hold the runner at its version, or lift the hold.
    #[command(after_help = EXIT_CODES)]
    Hold {
        #[command(subcommand)]
        action: HoldAction,
    },
    /// The runner's CloudFormation stack: show, plan, apply, validate-azs.
    #[command(after_help = EXIT_CODES)]
    Stack {
        #[command(subcommand)]
        action: StackAction,
    },
    /// Print the least-privilege IAM policy (JSON) for this configuration.
    #[command(name = "iam-policy", after_help = EXIT_CODES)]
    IamPolicy(IamPolicyArgs),
}

/// `demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// The simulator's random seed.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// No live progress, only the summary.
    #[arg(long)]
    pub quiet: bool,
}

/// `run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// `metrics.listen`: the address of /metrics and /healthz (e.g. 127.0.0.1:9100).
    #[arg(long, env = "RUNNER_UPDATER_LISTEN")]
    pub listen: Option<String>,
    /// Run one cycle, then exit with its code (still serving metrics meanwhile).
    #[arg(long)]
    pub once: bool,
}

/// `update`.
#[derive(Debug, Clone, Args)]
pub struct UpdateArgs {
    /// Print the decision, the plan and each target's task-definition diff; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `rollback`.
#[derive(Debug, Clone, Args)]
pub struct RollbackArgs {
    /// Why (recorded in the tags ECS shows and in the output).
    #[arg(long, default_value = "rolled back by an operator")]
    pub reason: String,
}

/// `quarantine ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum QuarantineAction {
    /// Every quarantined release, with its reason and when it may be retried.
    #[command(after_help = EXIT_CODES)]
    List,
    /// Lift the quarantine of VERSION: the next check may deploy it again.
    #[command(after_help = EXIT_CODES)]
    Clear {
        /// The release version (e.g. 20250103.1).
        #[arg(value_name = "VERSION")]
        release: String,
    },
}

/// `hold ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum HoldAction {
    /// Hold the runner at its current version: no update while the hold lasts.
    #[command(after_help = EXIT_CODES)]
    Set {
        /// Why (shown in every skip decision).
        #[arg(long)]
        reason: String,
        /// When the hold lifts by itself (RFC 3339, e.g. 2025-02-01T00:00:00Z).
        #[arg(long)]
        until: Option<String>,
    },
    /// Lift the operator hold.
    #[command(after_help = EXIT_CODES)]
    Clear {
        /// Also acknowledge a manual rollback: the version running now becomes
        /// the highest successful one, so updates resume (reads ECS).
        #[arg(long)]
        acknowledge_rollback: bool,
    },
}

/// `stack ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum StackAction {
    /// The stack's status, parameters, outputs and infrastructure version.
    #[command(after_help = EXIT_CODES)]
    Show,
    /// Create a change set and print the parameter diff and resource changes; apply nothing.
    #[command(after_help = EXIT_CODES)]
    Plan(StackPlanArgs),
    /// Execute a change set created by `stack plan`, and wait for the stack.
    #[command(after_help = EXIT_CODES)]
    Apply(StackApplyArgs),
    /// Check that the stack's subnets exist, share one VPC and cover its availability zones.
    #[command(name = "validate-azs", after_help = EXIT_CODES)]
    ValidateAzs(ValidateAzsArgs),
}

/// `stack plan`.
#[derive(Debug, Clone, Args)]
pub struct StackPlanArgs {
    /// Replace the template with this https S3 URL (default: keep the template).
    #[arg(long, conflicts_with = "release_template")]
    pub template_url: Option<String>,
    /// Use the template of the release the source offers now.
    #[arg(long)]
    pub release_template: bool,
    /// The template's expected sha256 (hex); refused before any call when it differs.
    #[arg(long)]
    pub template_sha256: Option<String>,
    /// A parameter to change, KEY=VALUE (repeatable); every other parameter keeps its value.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

/// `stack apply`.
#[derive(Debug, Clone, Args)]
pub struct StackApplyArgs {
    /// The change set name printed by `stack plan`.
    #[arg(long)]
    pub change_set: String,
    /// The template sha256 printed by `stack plan`: the change set's template
    /// is read back and checked against it before executing.
    #[arg(long)]
    pub template_sha256: Option<String>,
}

/// `stack validate-azs`.
#[derive(Debug, Clone, Args)]
pub struct ValidateAzsArgs {
    /// Zones to check instead of the stack's (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub zones: Vec<String>,
    /// Subnets to check instead of the stack's (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub subnets: Vec<String>,
}

/// `iam-policy`.
#[derive(Debug, Clone, Args)]
pub struct IamPolicyArgs {
    /// Also allow `stack plan` and `stack apply` (change sets). The stack's own
    /// resources need their permissions too, or a CloudFormation service role.
    #[arg(long)]
    pub with_stack_updates: bool,
    /// Also allow `stack validate-azs` (ec2:DescribeSubnets).
    #[arg(long)]
    pub with_az_validation: bool,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
