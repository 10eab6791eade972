//! Manifest bytes: the shape-detecting `Manifest::parse`, the Gitpod and
//! signed formats, both verifiers' `decode`, and a release's wave schedule.
//!
//! Beyond "no panic":
//! - a Gitpod manifest accepted by `into_release` is a valid release (pinned
//!   images, https template) with the caller's channel and no
//!   infrastructure version, and `decode` under an allow-unsigned verifier
//!   gives the same release;
//! - a signed envelope re-serialises (`to_json`) to an envelope that parses
//!   to itself and covers the same signed bytes;
//! - every release read from the input survives a JSON round trip (the
//!   publisher signs `serde_json::to_value(release)`);
//! - what passes the signing verifier (only the signed seed can) carries a
//!   template sha256 and is the release its envelope holds;
//! - an accepted wave schedule keeps its rules and round-trips.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use runner_version::{
    Authentication, Channel, FleetPercentage, FleetPosition, GitpodManifest, Manifest, Release,
    ReleaseVerifier, SignedManifest, TrustPolicy, WaveSchedule, ed25519_dalek::SigningKey,
};

static UNSIGNED: LazyLock<ReleaseVerifier> = LazyLock::new(|| {
    ReleaseVerifier::builder()
        .allow_unsigned()
        .build()
        .expect("an allow-unsigned verifier builds")
});

static SIGNED: LazyLock<ReleaseVerifier> = LazyLock::new(|| {
    // The key of crates/runner-version/tests/fixtures/python-signed.json
    // (seeds/manifest/signed.json), signed by an independent publisher.
    let key = SigningKey::from_bytes(&[5; 32]);
    ReleaseVerifier::builder()
        .trust_policy(TrustPolicy::new(1).with_key("py", key.verifying_key()))
        .build()
        .expect("a one-key verifier builds")
});

fn round_trips(release: &Release) {
    let json = serde_json::to_vec(release).expect("a release serialises");
    let again: Release = serde_json::from_slice(&json).unwrap_or_else(|e| {
        panic!(
            "a release does not re-parse: {e}\n{}",
            String::from_utf8_lossy(&json)
        )
    });
    assert_eq!(&again, release, "{}", String::from_utf8_lossy(&json));
}

fn check_waves(schedule: &WaveSchedule) {
    let waves = schedule.waves();
    for pair in waves.windows(2) {
        assert!(pair[0].start_after < pair[1].start_after, "{schedule:?}");
        assert!(
            pair[0].fleet_percentage < pair[1].fleet_percentage,
            "{schedule:?}"
        );
    }
    if let Some(last) = waves.last() {
        assert_eq!(last.fleet_percentage, FleetPercentage::ALL, "{schedule:?}");
        assert_eq!(
            schedule.wave_of(FleetPosition::LAST).map(|w| w.number),
            Some(waves.len())
        );
        assert_eq!(
            schedule.wave_of(FleetPosition::FIRST).map(|w| w.number),
            Some(1)
        );
    }
    let json = serde_json::to_vec(schedule).expect("a schedule serialises");
    let again: WaveSchedule = serde_json::from_slice(&json).expect("a schedule re-parses");
    assert_eq!(&again, schedule);
}

fuzz_target!(|bytes: &[u8]| {
    let shape = Manifest::parse(bytes, "fuzz");

    if let Ok(manifest) = GitpodManifest::parse(bytes, "fuzz") {
        check_waves(&manifest.waves);
        if let Ok(release) = manifest.into_release(Channel::Latest) {
            release
                .validate()
                .expect("into_release returns a valid release");
            assert_eq!(release.channel, Channel::Latest);
            assert_eq!(release.infra_version, None);
            round_trips(&release);
        }
    }

    if let Ok(signed) = SignedManifest::parse(bytes, "fuzz") {
        let again = SignedManifest::parse(&signed.to_json(), "fuzz")
            .expect("a parsed envelope re-parses from to_json");
        assert_eq!(again, signed);
        assert_eq!(
            again.signed_bytes("fuzz").ok(),
            signed.signed_bytes("fuzz").ok()
        );
        if let Ok(release) = signed.release("fuzz") {
            round_trips(&release);
        }
    }

    match UNSIGNED.decode(bytes, &Channel::Stable, "fuzz") {
        Ok((release, authentication)) => {
            assert_eq!(authentication, Authentication::UnsignedAllowed);
            if let Ok(Manifest::Gitpod(_)) = shape {
                release
                    .validate()
                    .expect("an unsigned Gitpod manifest is decoded only when valid");
                assert_eq!(release.channel, Channel::Stable);
            }
            round_trips(&release);
        }
        Err(_) => {}
    }

    // Only the signed seed (or an equivalent re-encoding of it)
    // can pass: the release is then the one the envelope carries, with a
    // pinned template.
    if let Ok((release, authentication)) = SIGNED.decode(bytes, &Channel::Stable, "fuzz") {
        assert!(matches!(authentication, Authentication::Signed(_)));
        let sha = release.template_sha256.as_deref().unwrap_or_default();
        assert!(
            sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()),
            "{sha:?}"
        );
        let envelope = SignedManifest::parse(bytes, "fuzz").expect("it parsed in decode");
        assert_eq!(envelope.release("fuzz").ok(), Some(release.clone()));
        round_trips(&release);
    }

    if let Ok(schedule) = serde_json::from_slice::<WaveSchedule>(bytes) {
        check_waves(&schedule);
    }
});
