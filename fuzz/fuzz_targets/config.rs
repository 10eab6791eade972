//! The operator binary's TOML configuration
//! (`updater_examples::runner_config`: `parse`, then `resolve`).
//!
//! Beyond "no panic": an error names a key (or is the policy's or the
//! updater's own error); accepted settings are valid — the updater config
//! validates again, the first target runs the runner image, the heartbeat
//! is at most half the lease, the schedule suits the policy, a manifest URL
//! is https (plain http only with `allow_loopback_http`), and releases can
//! be accepted at all (trusted keys, or the unsigned opt-in).
#![no_main]

use libfuzzer_sys::fuzz_target;
use runner_updater::ReleaseImage;
use updater_examples::runner_config::{ConfigError, Overrides, ReleaseLocation, parse, resolve};

fn check_error(error: &ConfigError) {
    if let ConfigError::Invalid { key, reason } = error {
        assert!(!key.is_empty(), "an error without a key: {reason}");
        assert!(!reason.is_empty(), "an error without a reason for {key}");
    }
    assert!(!error.to_string().is_empty());
}

fuzz_target!(|bytes: &[u8]| {
    // The binary reads the file with `read_to_string`: UTF-8 only.
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let file = match parse(text, "fuzz.toml") {
        Ok(file) => file,
        Err(error) => return check_error(&error),
    };
    let overrides = Overrides {
        default_owner: Some("fuzz-host:1".into()),
        ..Overrides::default()
    };
    let settings = match resolve(file, &overrides) {
        Ok(settings) => settings,
        Err(error) => return check_error(&error),
    };

    settings
        .updater
        .validate()
        .expect("resolved settings validate");
    let first = settings
        .updater
        .targets
        .first()
        .expect("at least one target");
    assert_eq!(first.image, ReleaseImage::Runner);
    let lease = settings.updater.lease;
    if let Some(heartbeat) = lease.heartbeat() {
        assert!(heartbeat * 2 <= lease.duration(), "{lease:?}");
    }
    settings
        .policy
        .validate_with_schedule(&settings.schedule)
        .expect("the schedule was checked against the policy");
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
    if let Some(url) = &settings.webhook_url {
        assert!(!url.trim().is_empty());
    }
});
