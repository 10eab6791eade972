//! The configuration: a TOML file, `RUNNER_UPDATER_*` environment variables
//! and flags (flags and variables are read by clap; they override the file).
//!
//! The file format, the parser and the validation live in the library
//! ([`updater_examples::runner_config`], where the keys are documented), so
//! tests and the fuzz targets run the same code; this module maps its errors
//! to the binary's exit codes and supplies what only the binary may read
//! (the environment, for the default lock owner).

use std::net::SocketAddr;

use updater_examples::runner_config::{self, ConfigError};
pub use updater_examples::runner_config::{Backend, InfraSettings, ReleaseLocation, Settings};

use crate::{
    cli::Overrides,
    exit::{AppError, policy_error},
};

impl From<ConfigError> for AppError {
    fn from(error: ConfigError) -> Self {
        match error {
            ConfigError::Invalid { key, reason } => AppError::Config { key, reason },
            ConfigError::Unreadable(message) => AppError::Usage(message),
            ConfigError::Policy(e) => policy_error(&e),
            ConfigError::Updater(e) => e.into(),
            other => AppError::Failed(other.to_string()),
        }
    }
}

impl From<&Overrides> for runner_config::Overrides {
    fn from(o: &Overrides) -> Self {
        let Overrides {
            runner,
            owner,
            channel,
            cluster,
            service,
            container,
            manifest_url,
            manifest_file,
            lock_backend,
            lock_dir,
            lock_table,
            infra_version,
            stack,
            webhook_url,
        } = o.clone();
        Self {
            // Only looked up when no owner is given here (the file may
            // still name one; it wins over this default).
            default_owner: owner.is_none().then(default_owner),
            runner,
            owner,
            channel,
            cluster,
            service,
            container,
            manifest_url,
            manifest_file,
            lock_backend,
            lock_dir,
            lock_table,
            infra_version,
            stack,
            webhook_url,
        }
    }
}

/// Parses a listen address, naming `key` when it is not one.
pub fn parse_listen(key: &str, value: &str) -> Result<SocketAddr, AppError> {
    Ok(runner_config::parse_listen(key, value)?)
}

/// The lock owner when none is configured: the ECS task id (from the task
/// metadata endpoint's URI), else `<hostname>:<pid>`.
fn default_owner() -> String {
    if let Ok(uri) = std::env::var("ECS_CONTAINER_METADATA_URI_V4")
        && let Some(id) = uri.trim_end_matches('/').rsplit('/').next()
        && !id.is_empty()
    {
        return format!("ecs-task/{id}");
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into());
    format!("{host}:{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use updater_examples::runner_config::{parse, resolve};

    use super::*;

    const GOOD: &str = r#"
runner = "runners/gitpod-runner"
owner = "host-1"
channel = "stable"

[[targets]]
name = "runner"
cluster = "runners"
service = "gitpod-runner"
container = "runner"
image = "runner"

[[targets]]
name = "proxy"
cluster = "runners"
service = "gitpod-proxy"
image = "proxy"

[release]
manifest_file = "/tmp/stable.json"
allow_unsigned = true

[lock]
backend = "file"
dir = "/tmp/runner-updater"
lease_secs = 300
heartbeat_secs = 60
step_budget_secs = 60

[infra]
version = "7"

[policy]
auto_update = true
minimum_release_age_secs = 3600

[schedule]
interval_secs = 3600
jitter_secs = 300

[metrics]
listen = "127.0.0.1:9100"
"#;

    fn load(text: &str) -> Result<Settings, AppError> {
        Ok(resolve(
            parse(text, "test.toml")?,
            &(&Overrides::default()).into(),
        )?)
    }

    fn key_of(result: Result<Settings, AppError>) -> String {
        match result {
            Err(e) => e.key().unwrap_or("<no key>").to_string(),
            Ok(_) => "<ok>".into(),
        }
    }

    #[test]
    fn a_full_file_loads() {
        let s = load(GOOD).unwrap();
        assert_eq!(s.runner(), "runners/gitpod-runner");
        assert_eq!(s.updater.targets.len(), 2);
        assert_eq!(s.updater.targets[1].container, "proxy");
        assert_eq!(s.backend, Backend::File("/tmp/runner-updater".into()));
        assert_eq!(s.infra, Some(InfraSettings::Fixed("7".into())));
        assert_eq!(
            s.policy.minimum_release_age,
            Some(Duration::from_secs(3600))
        );
    }

    #[test]
    fn the_wave_position_pins_the_seed_or_is_drawn_from_the_runner() {
        let drawn = load(GOOD).unwrap();
        assert_eq!(drawn.updater.wave_seed, None);
        let pinned = load(&GOOD.replace(
            "channel = \"stable\"",
            "channel = \"stable\"\nwave_position = 0.0",
        ))
        .unwrap();
        assert_eq!(
            pinned.updater.wave_seed,
            Some(update_policy::WaveSeed::at_percent(0.0))
        );
    }

    #[test]
    fn bad_keys_and_values_are_named() {
        let cases = [
            (GOOD.replace("owner = ", "ownr = "), "ownr"),
            (
                GOOD.replace("lease_secs = 300", "lease_secs = 0"),
                "lock.lease_secs",
            ),
            (
                GOOD.replace("backend = \"file\"", "backend = \"redis\""),
                "lock.backend",
            ),
            (
                GOOD.replace("image = \"proxy\"", "image = \"sidecar\""),
                "targets[1].image",
            ),
            (
                GOOD.replace("auto_update = true", "autoupdate = true"),
                "policy.autoupdate",
            ),
            (
                GOOD.replace("step_budget_secs = 60", "step_budget_secs = 400"),
                "lock.step_budget_secs",
            ),
            (
                GOOD.replace("channel = \"stable\"", "channel = \"no way\""),
                "channel",
            ),
            (
                GOOD.replace(
                    "channel = \"stable\"",
                    "channel = \"stable\"\nwave_position = 140.0",
                ),
                "wave_position",
            ),
            (
                GOOD.replace("listen = \"127.0.0.1:9100\"", "listen = \"nowhere\""),
                "metrics.listen",
            ),
            (
                GOOD.replace("jitter_secs = 300", "jitter_secs = 9000"),
                "schedule.jitter_secs",
            ),
        ];
        let typed = GOOD.replace("lease_secs = 300", "lease_secs = \"long\"");
        assert_eq!(key_of(load(&typed)), "lock.lease_secs");
        let in_target = GOOD.replace("container = \"runner\"", "containr = \"runner\"");
        assert_eq!(key_of(load(&in_target)), "targets[0].containr");
        for (text, key) in cases {
            assert_eq!(key_of(load(&text)), key, "{text}");
        }
    }

    #[test]
    fn overrides_win_over_the_file() {
        let overrides = Overrides {
            runner: Some("other".into()),
            lock_backend: Some("memory".into()),
            ..Overrides::default()
        };
        let s = resolve(parse(GOOD, "t").unwrap(), &(&overrides).into()).unwrap();
        assert_eq!(s.runner(), "other");
        assert_eq!(s.backend, Backend::Memory);
    }
}
