//! The `runner-updater` configuration parser (`runner_config::parse` and
//! `resolve`) never panics, and what it accepts keeps the properties the
//! fuzz target checks (`fuzz/fuzz_targets/config.rs`): an error names a key,
//! accepted settings validate again, the first target runs the runner
//! image, the heartbeat is at most half the lease, the schedule suits the
//! policy, a manifest URL is https, and some release can be accepted.

use proptest::prelude::*;
use runner_updater::ReleaseImage;
use updater_examples::runner_config::{ConfigError, Overrides, ReleaseLocation, parse, resolve};

/// The configuration of the binary's own tests, as a starting point.
const GOOD: &str = r#"
runner = "runners/gitpod-runner"
owner = "host-1"
channel = "stable"
wave_position = 0.0

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
manifest_url = "https://releases.example.com/stable.json"
trusted_keys = { release-2025 = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=" }
threshold = 1
allow_unsigned = false
timeout_secs = 30

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
window = { start = "22:00:00", end = "02:00:00" }
minimum_release_age_secs = 3600

[schedule]
interval_secs = 3600
jitter_secs = 300

[rollout]
poll_min_secs = 5
poll_max_secs = 30
keep_revisions = 10
deployment_configuration = "fix"

[notify]
webhook_url = "https://hooks.example.com/runner-updates"

[metrics]
listen = "127.0.0.1:9100"

[iam]
pass_role_arns = ["arn:aws:iam::123456789012:role/runner-task"]
"#;

fn check_error(error: &ConfigError) {
    if let ConfigError::Invalid { key, reason } = error {
        assert!(!key.is_empty(), "an error without a key: {reason}");
        assert!(!reason.is_empty(), "an error without a reason for {key}");
    }
    assert!(!error.to_string().is_empty());
}

/// The config target's properties on one text.
fn check_config(text: &str) {
    let file = match parse(text, "prop.toml") {
        Ok(file) => file,
        Err(error) => return check_error(&error),
    };
    let overrides = Overrides {
        default_owner: Some("prop-host:1".into()),
        ..Overrides::default()
    };
    let settings = match resolve(file, &overrides) {
        Ok(settings) => settings,
        Err(error) => return check_error(&error),
    };
    settings.updater.validate().unwrap();
    assert_eq!(settings.updater.targets[0].image, ReleaseImage::Runner);
    let lease = settings.updater.lease;
    if let Some(heartbeat) = lease.heartbeat() {
        assert!(heartbeat * 2 <= lease.duration(), "{lease:?}");
    }
    settings
        .policy
        .validate_with_schedule(&settings.schedule)
        .unwrap();
    if let Some(release) = &settings.release {
        assert!(release.trust.is_some() || release.allow_unsigned);
        if let ReleaseLocation::Url(url) = &release.location {
            assert!(
                url.starts_with("https://")
                    || (release.allow_loopback_http && url.starts_with("http://")),
                "{url}"
            );
        }
        assert!(!release.timeout.is_zero());
    }
}

/// `GOOD` with one value replaced: numbers, strings, booleans and arrays
/// of every kind in every key's place, so validation sees odd values.
fn good_with_one_value_changed() -> impl Strategy<Value = String> {
    let values = prop_oneof![
        (0u64..100_000).prop_map(|n| n.to_string()),
        Just("0".to_string()),
        Just("18446744073709551615".to_string()),
        Just("-1".to_string()),
        Just("1e400".to_string()),
        Just("nan".to_string()),
        Just("-0.0".to_string()),
        "\"[a-z0-9:./ -]{0,12}\"",
        Just("\"\"".to_string()),
        Just("\"   \"".to_string()),
        Just("\"http://127.0.0.1:1/x\"".to_string()),
        Just("true".to_string()),
        Just("[]".to_string()),
        Just("{}".to_string()),
        Just("1979-05-27T07:32:00Z".to_string()),
    ];
    let lines: Vec<usize> = GOOD
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains(" = "))
        .map(|(i, _)| i)
        .collect();
    (prop::sample::select(lines), values).prop_map(|(line, value)| {
        GOOD.lines()
            .enumerate()
            .map(|(i, l)| match l.split_once(" = ") {
                Some((key, _)) if i == line => format!("{key} = {value}"),
                _ => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    })
}

/// TOML-ish tokens: keys of the file, punctuation and values.
fn toml_like() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("\n".to_string()),
        Just(" = ".to_string()),
        Just("[[targets]]\n".to_string()),
        Just("[release]\n".to_string()),
        Just("[lock]\n".to_string()),
        Just("[policy]\n".to_string()),
        Just("[schedule]\n".to_string()),
        Just("[rollout]\n".to_string()),
        Just("name = \"runner\"\ncluster = \"c\"\nservice = \"s\"\n".to_string()),
        Just("lease_secs".to_string()),
        Just("heartbeat_secs".to_string()),
        Just("window".to_string()),
        Just("{ start = \"22:00:00\", end = \"02:00:00\" }".to_string()),
        Just("\"".to_string()),
        Just("'".to_string()),
        Just("é".to_string()),
        "[a-z_.]{1,10}",
        "[0-9]{1,6}",
        "\\PC{0,3}",
    ];
    prop::collection::vec(token, 0..24).prop_map(|t| t.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn configurations_never_panic_and_accepted_ones_are_valid(
        text in prop_oneof![good_with_one_value_changed(), toml_like(), "\\PC{0,200}"],
    ) {
        check_config(&text);
    }
}

#[test]
fn the_starting_configuration_is_accepted() {
    let file = parse(GOOD, "good.toml").unwrap();
    let overrides = Overrides::default();
    resolve(file, &overrides).unwrap();
    check_config(GOOD);
}
