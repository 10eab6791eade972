//! Exit codes and the binary's error type.

use std::{fmt, process::ExitCode};

use runner_updater::CycleOutcome;

/// The documented exit codes (see the crate docs and `--help`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: succeeded, or nothing to do.
    Success,
    /// 1: the release failed and the fleet was restored (rolled back).
    RolledBack,
    /// 2: failed: a rollback did not complete, the cycle was interrupted,
    /// or an error stopped the command.
    Failed,
    /// 3: blocked on infrastructure: apply the stack template first.
    Blocked,
    /// 64: usage or configuration error (nothing was done).
    Usage,
}

impl Exit {
    /// The process exit status.
    pub fn code(self) -> u8 {
        match self {
            Self::Success => 0,
            Self::RolledBack => 1,
            Self::Failed => 2,
            Self::Blocked => 3,
            Self::Usage => 64,
        }
    }

    /// The exit code of a cycle's outcome.
    pub fn of_outcome(outcome: &CycleOutcome) -> Self {
        match outcome {
            CycleOutcome::RolledBack { .. } => Self::RolledBack,
            CycleOutcome::Blocked { .. } => Self::Blocked,
            // Skipped, succeeded, lock busy (another updater is on it) and
            // superseded (someone else deployed) leave nothing for us to do.
            CycleOutcome::Succeeded
            | CycleOutcome::Skipped
            | CycleOutcome::LockBusy { .. }
            | CycleOutcome::Superseded { .. } => Self::Success,
            // Rollback failed, interrupted, deployed but unverified, and any
            // outcome this build does not know: never reported as success.
            _ => Self::Failed,
        }
    }

    /// The worse of two exit codes (for commands reporting several results).
    pub fn worst(self, other: Self) -> Self {
        let rank = |e: Self| match e {
            Self::Success => 0,
            Self::Blocked => 1,
            Self::RolledBack => 2,
            Self::Failed => 3,
            Self::Usage => 4,
        };
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit.code())
    }
}

/// Why a command stopped.
#[derive(Debug)]
pub enum AppError {
    /// A configuration key has a value that cannot work (exit 64).
    Config {
        /// The key, as written in the TOML file (`lock.lease_secs`).
        key: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The command line cannot be carried out as given (exit 64).
    Usage(String),
    /// The command needs a backend this binary was built without (exit 64).
    /// Only made by builds without the `aws` or the `ec2` feature.
    #[cfg_attr(all(feature = "aws", feature = "ec2"), allow(dead_code))]
    NotBuilt(String),
    /// The command failed (exit 2).
    Failed(String),
}

impl AppError {
    /// A configuration error for `key`.
    pub fn config(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Config {
            key: key.into(),
            reason: reason.into(),
        }
    }

    /// A failure.
    pub fn failed(message: impl fmt::Display) -> Self {
        Self::Failed(message.to_string())
    }

    /// The exit code.
    pub fn exit(&self) -> Exit {
        match self {
            Self::Config { .. } | Self::Usage(_) | Self::NotBuilt(_) => Exit::Usage,
            Self::Failed(_) => Exit::Failed,
        }
    }

    /// A short machine-readable kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Config { .. } => "config",
            Self::Usage(_) => "usage",
            Self::NotBuilt(_) => "not_built",
            Self::Failed(_) => "failed",
        }
    }

    /// The configuration key at fault, if any.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Config { key, .. } => Some(key),
            _ => None,
        }
    }

    /// The binary was built without the `aws` feature.
    #[cfg_attr(feature = "aws", allow(dead_code))]
    pub fn aws_not_built(command: &str) -> Self {
        Self::NotBuilt(format!(
            "`{command}` talks to AWS, but this binary was built without the `aws` feature; \
             rebuild with `cargo build -p updater-examples --features aws --bin runner-updater`"
        ))
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config { key, reason } => write!(f, "configuration error: `{key}` {reason}"),
            Self::Usage(m) | Self::NotBuilt(m) | Self::Failed(m) => f.write_str(m),
        }
    }
}

impl From<runner_updater::Error> for AppError {
    fn from(error: runner_updater::Error) -> Self {
        match error {
            runner_updater::Error::InvalidConfig { field, reason } => {
                Self::Config { key: field, reason }
            }
            runner_updater::Error::Policy(e) => policy_error(&e),
            other => Self::Failed(other.to_string()),
        }
    }
}

/// A policy or schedule error, keyed as in the TOML file.
pub fn policy_error(error: &update_policy::Error) -> AppError {
    match error {
        update_policy::Error::InvalidPolicy { field, reason } => {
            let key = match *field {
                "minimum_release_age" => "minimum_release_age_secs",
                other => other,
            };
            AppError::config(format!("policy.{key}"), reason.clone())
        }
        update_policy::Error::InvalidSchedule { field, reason } => {
            AppError::config(format!("schedule.{field}_secs"), reason.clone())
        }
        update_policy::Error::InvalidWindow { .. } => {
            AppError::config("policy.window", error.to_string())
        }
        update_policy::Error::InvalidVersionRequirement { .. } => {
            AppError::config("policy.version_requirement", error.to_string())
        }
        other => AppError::config("policy", other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_map_to_the_documented_codes() {
        assert_eq!(Exit::of_outcome(&CycleOutcome::Succeeded).code(), 0);
        assert_eq!(Exit::of_outcome(&CycleOutcome::Skipped).code(), 0);
        let reason = String::from("x");
        assert_eq!(
            Exit::of_outcome(&CycleOutcome::RolledBack {
                reason: reason.clone()
            })
            .code(),
            1
        );
        assert_eq!(
            Exit::of_outcome(&CycleOutcome::RollbackFailed {
                reason: reason.clone()
            })
            .code(),
            2
        );
        assert_eq!(
            Exit::of_outcome(&CycleOutcome::Interrupted { reason }).code(),
            2
        );
        let blocked = CycleOutcome::Blocked {
            required: "8".into(),
            running: "7".into(),
            template_url: "https://s3.amazonaws.com/t.json".into(),
        };
        assert_eq!(Exit::of_outcome(&blocked).code(), 3);
        assert_eq!(AppError::config("k", "r").exit().code(), 64);
        assert_eq!(Exit::Success.worst(Exit::Blocked), Exit::Blocked);
        assert_eq!(Exit::Failed.worst(Exit::RolledBack), Exit::Failed);
    }
}
