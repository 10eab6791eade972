//! Arbitrary bytes never make a parser panic, and a changed signed manifest
//! never yields a different release; what the parsers accept keeps the
//! properties the fuzz targets check (`fuzz/fuzz_targets/manifest.rs`,
//! `version.rs`, `image_ref.rs`), so CI runs the same checks on every change.

mod support;

use std::cmp::Ordering;

use proptest::prelude::*;
use runner_version::{
    Authentication, Channel, FleetPercentage, FleetPosition, GitpodManifest, ImageRef,
    InfraVersion, Manifest, Release, ReleaseVerifier, SignedManifest, Version, WaveSchedule,
    conformance::sample_release,
};
use support::*;

fn verifiers() -> [ReleaseVerifier; 2] {
    [
        signed_verifier(clock()),
        ReleaseVerifier::builder().allow_unsigned().build().unwrap(),
    ]
}

fn json_like() -> impl Strategy<Value = Vec<u8>> {
    // Bytes biased towards JSON punctuation and manifest keys.
    let token = prop_oneof![
        Just(b"{".to_vec()),
        Just(b"}".to_vec()),
        Just(b"[".to_vec()),
        Just(b"]".to_vec()),
        Just(b",".to_vec()),
        Just(b":".to_vec()),
        Just(b"\"signed\"".to_vec()),
        Just(b"\"signatures\"".to_vec()),
        Just(b"\"version\"".to_vec()),
        Just(b"\"image\"".to_vec()),
        Just(b"\"20250101.1\"".to_vec()),
        Just(b"1e999".to_vec()),
        Just(b"null".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..8),
    ];
    proptest::collection::vec(token, 0..40).prop_map(|t| t.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn manifest_parsers_never_panic(bytes in prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..512),
        json_like(),
    ]) {
        let _ = Manifest::parse(&bytes, "fuzz");
        let _ = GitpodManifest::parse(&bytes, "fuzz").map(|m| m.into_release(Channel::Stable));
        let _ = SignedManifest::parse(&bytes, "fuzz").map(|m| m.signed_bytes("fuzz"));
        for verifier in verifiers() {
            let _ = verifier.decode(&bytes, &Channel::Stable, "fuzz");
        }
    }

    #[test]
    fn version_and_image_parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = Version::parse(&text);
        let _ = ImageRef::parse(&text);
    }

    #[test]
    fn a_changed_signed_manifest_never_yields_another_release(
        position in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let release = sample_release("20250101.1", Channel::Stable);
        let mut bytes = signed_bytes(&release, &[("k1", 1)]);
        let at = position.index(bytes.len());
        bytes[at] = byte;
        let [verifier, _] = verifiers();
        if let Ok((decoded, _)) = verifier.decode(&bytes, &Channel::Stable, "fuzz") {
            prop_assert_eq!(decoded, release);
        }
    }
}

/// A release survives a JSON round trip (the publisher signs
/// `serde_json::to_value(release)`).
fn assert_round_trips(release: &Release) {
    let json = serde_json::to_vec(release).unwrap();
    let again: Release = serde_json::from_slice(&json)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&json)));
    assert_eq!(&again, release);
}

/// The wave rules hold for an accepted schedule, and it round-trips.
fn assert_wave_rules(schedule: &WaveSchedule) {
    let waves = schedule.waves();
    for pair in waves.windows(2) {
        assert!(pair[0].start_after < pair[1].start_after, "{schedule:?}");
        assert!(
            pair[0].fleet_percentage < pair[1].fleet_percentage,
            "{schedule:?}"
        );
    }
    if let Some(last) = waves.last() {
        assert_eq!(last.fleet_percentage, FleetPercentage::ALL);
        assert_eq!(
            schedule.wave_of(FleetPosition::LAST).map(|w| w.number),
            Some(waves.len())
        );
        assert_eq!(
            schedule.wave_of(FleetPosition::FIRST).map(|w| w.number),
            Some(1)
        );
    }
    let json = serde_json::to_vec(schedule).unwrap();
    assert_eq!(
        &serde_json::from_slice::<WaveSchedule>(&json).unwrap(),
        schedule
    );
}

/// The manifest target's properties on one input.
fn check_manifest_properties(bytes: &[u8]) {
    let shape = Manifest::parse(bytes, "prop");
    if let Ok(manifest) = GitpodManifest::parse(bytes, "prop") {
        assert_wave_rules(&manifest.waves);
        if let Ok(release) = manifest.into_release(Channel::Latest) {
            release.validate().unwrap();
            assert_eq!(release.channel, Channel::Latest);
            assert_eq!(release.infra_version, None);
            assert_round_trips(&release);
        }
    }
    if let Ok(signed) = SignedManifest::parse(bytes, "prop") {
        let again = SignedManifest::parse(&signed.to_json(), "prop").unwrap();
        assert_eq!(again, signed);
        assert_eq!(
            again.signed_bytes("prop").ok(),
            signed.signed_bytes("prop").ok()
        );
        if let Ok(release) = signed.release("prop") {
            assert_round_trips(&release);
        }
    }
    let [signing, unsigned] = verifiers();
    if let Ok((release, authentication)) = unsigned.decode(bytes, &Channel::Stable, "prop") {
        assert_eq!(authentication, Authentication::UnsignedAllowed);
        if let Ok(Manifest::Gitpod(_)) = shape {
            release.validate().unwrap();
            assert_eq!(release.channel, Channel::Stable);
        }
        assert_round_trips(&release);
    }
    if let Ok((release, authentication)) = signing.decode(bytes, &Channel::Stable, "prop") {
        assert!(matches!(authentication, Authentication::Signed(_)));
        let sha = release.template_sha256.as_deref().unwrap_or_default();
        assert!(sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_round_trips(&release);
    }
    if let Ok(schedule) = serde_json::from_slice::<WaveSchedule>(bytes) {
        assert_wave_rules(&schedule);
    }
}

/// A Gitpod manifest or signed envelope with fields drawn from small
/// alphabets, so that many cases parse and reach the checks above.
fn manifest_like() -> impl Strategy<Value = Vec<u8>> {
    let digest = prop_oneof![
        Just(format!("sha256:{}", "1".repeat(64))),
        Just("sha256:zz".to_string()),
        "[a-z0-9:]{0,12}",
    ];
    let image = (
        prop_oneof![
            Just("r.example:5000/a/b".to_string()),
            "[a-z]{1,6}(/[a-z0-9]{1,4}){0,2}"
        ],
        prop::option::of("[a-z0-9.]{1,6}"),
        prop::option::of(digest.clone()),
    )
        .prop_map(|(repo, tag, digest)| {
            let mut image = repo;
            if let Some(tag) = tag {
                image = format!("{image}:{tag}");
            }
            if let Some(digest) = digest {
                image = format!("{image}@{digest}");
            }
            image
        });
    let version = prop_oneof![
        "2025010[1-9]\\.[0-9]{1,3}",
        "v?[0-9]\\.[0-9]\\.[0-9](-rc\\.[0-9])?(\\+[a-z0-9]{1,3})?",
        "[0-9.v]{0,10}",
    ];
    let start = prop_oneof![
        (0u64..100_000).prop_map(|s| s.to_string()),
        "\"[0-9]{1,3} ?(s|m|h|d|days|x)?\"",
    ];
    let share = prop_oneof![
        (0u32..120).prop_map(|p| p.to_string()),
        "\"[0-9]{1,3}(\\.[0-9]{1,3})?\"",
        Just("100".to_string()),
    ];
    let waves = prop::collection::vec((start, share), 0..4).prop_map(|waves| {
        let items: Vec<String> = waves
            .iter()
            .map(|(s, p)| format!(r#"{{"start_after":{s},"fleet_percentage":{p}}}"#))
            .collect();
        format!("[{}]", items.join(","))
    });
    let template = prop_oneof![
        Just("https://s3.amazonaws.com/b/t.json".to_string()),
        "(https?|ftp)://[a-z./]{0,12}",
    ];
    (
        version,
        image.clone(),
        prop::option::of(image),
        template,
        prop::option::of(digest),
        prop::option::of(waves),
        prop::option::of(Just("2025-01-01T09:00:00Z")),
        any::<bool>(),
    )
        .prop_map(
            |(version, image, proxy, template, image_digest, waves, released, signed)| {
                let mut fields = vec![
                    format!(r#""version":{version:?}"#),
                    format!(r#""image":{image:?}"#),
                ];
                if let Some(proxy) = proxy {
                    fields.push(format!(r#""proxy_image":{proxy:?}"#));
                }
                if let Some(digest) = image_digest {
                    fields.push(format!(r#""image_digest":{digest:?}"#));
                }
                if let Some(waves) = waves {
                    fields.push(format!(r#""waves":{waves}"#));
                }
                if let Some(released) = released {
                    fields.push(format!(r#""released_at":{released:?}"#));
                }
                if signed {
                    fields.push(format!(r#""channel":"stable","template_url":{template:?}"#));
                    fields.push(format!(r#""template_sha256":"{}""#, "cd".repeat(32)));
                    format!(r#"{{"signed":{{{}}},"signatures":[]}}"#, fields.join(","))
                } else {
                    fields.push(format!(r#""cloudformation_template_url":{template:?}"#));
                    format!("{{{}}}", fields.join(","))
                }
                .into_bytes()
            },
        )
}

/// Text close enough to versions, channels and percentages that many parse.
fn version_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{8}\\.[0-9]{1,20}",
        "v?[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}(-[a-z0-9.]{1,6})?(\\+[a-z0-9.-]{1,6})?",
        "[0-9v.+ -]{0,16}",
        "[ A-Za-z0-9_.-]{0,70}",
        "[0-9]{1,4}(\\.[0-9]{0,3})? ?%?",
    ]
}

/// The version target's properties on one text.
fn check_version_properties(left: &str, right: &str) {
    let check = |text: &str| -> Option<Version> {
        let version = Version::parse(text).ok()?;
        let shown = version.to_string();
        assert_eq!(
            Version::parse(&shown).ok().as_ref(),
            Some(&version),
            "{text:?} displays as {shown:?}"
        );
        let json = serde_json::to_string(&version).unwrap();
        assert_eq!(serde_json::from_str::<Version>(&json).unwrap(), version);
        Some(version)
    };
    if let (Some(a), Some(b)) = (check(left), check(right)) {
        match (a.try_cmp(&b), b.try_cmp(&a)) {
            (Ok(ab), Ok(ba)) => {
                assert_eq!(ab, ba.reverse(), "{a} vs {b}");
                assert_eq!(ab == Ordering::Equal, a == b, "{a} vs {b}");
                if a.is_newer_than(&b).unwrap() {
                    assert_eq!(ab, Ordering::Greater, "{a} vs {b}");
                }
            }
            (Err(_), Err(_)) => assert_ne!(a.scheme(), b.scheme()),
            other => panic!("{a} vs {b}: {other:?}"),
        }
    }
    if let Ok(channel) = Channel::parse(left) {
        assert_eq!(Channel::parse(channel.as_str()).unwrap(), channel);
    }
    assert_eq!(InfraVersion::new(left).as_str(), left.trim());
    if let Ok(share) = left.parse::<FleetPercentage>() {
        assert!((1..=10_000).contains(&share.basis_points()));
        let json = serde_json::to_string(&share).unwrap();
        assert_eq!(
            serde_json::from_str::<FleetPercentage>(&json).unwrap(),
            share
        );
    }
}

/// Text close enough to image references that many parse.
fn image_like() -> impl Strategy<Value = String> {
    let host = prop_oneof![
        Just(String::new()),
        "[a-z0-9-]{1,8}(\\.[a-z]{1,4}){0,2}(:[0-9]{1,5})?/",
        Just("localhost/".to_string()),
        Just("[::1]:5000/".to_string()),
    ];
    let path = "[a-z0-9]{1,6}([._-]{1,2}[a-z0-9]{1,3})?(/[a-z0-9_.-]{1,6}){0,3}";
    let tag = prop::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,10}");
    let digest = prop::option::of(prop_oneof![
        Just(format!("sha256:{}", "ab".repeat(32))),
        "[a-z0-9]{1,8}:[a-f0-9]{8,64}",
    ]);
    (host, path, tag, digest).prop_map(|(host, path, tag, digest)| {
        let mut image = format!("{host}{path}");
        if let Some(tag) = tag {
            image = format!("{image}:{tag}");
        }
        if let Some(digest) = digest {
            image = format!("{image}@{digest}");
        }
        image
    })
}

/// The image_ref target's properties on one text.
fn check_image_properties(text: &str) {
    let Ok(image) = ImageRef::parse(text) else {
        return;
    };
    let shown = image.to_string();
    let again = ImageRef::parse(&shown)
        .unwrap_or_else(|e| panic!("{text:?} displays as {shown:?}, which does not parse: {e}"));
    assert_eq!(again, image, "{text:?} displays as {shown:?}");
    let json = serde_json::to_string(&image).unwrap();
    assert_eq!(serde_json::from_str::<ImageRef>(&json).unwrap(), image);
    assert_eq!(image.pinned().is_ok(), image.digest().is_some());
    let digest = format!("sha256:{}", "cd".repeat(32));
    match image.digest() {
        Some(own) => assert_eq!(image.with_digest(own).unwrap(), image),
        None => {
            let pinned = image.with_digest(&digest).unwrap();
            assert_eq!(pinned.digest(), Some(digest.as_str()));
            assert_eq!(
                (pinned.registry(), pinned.repository(), pinned.tag()),
                (image.registry(), image.repository(), image.tag())
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(384))]

    #[test]
    fn accepted_manifests_keep_their_properties(bytes in prop_oneof![
        manifest_like(),
        json_like(),
        proptest::collection::vec(any::<u8>(), 0..256),
    ]) {
        check_manifest_properties(&bytes);
    }

    #[test]
    fn accepted_versions_round_trip(left in version_like(), right in version_like()) {
        check_version_properties(&left, &right);
    }

    #[test]
    fn accepted_image_refs_round_trip(text in prop_oneof![image_like(), "\\PC{0,40}"]) {
        check_image_properties(&text);
    }
}

/// The seeds of the fuzz targets, and inputs they found, as fixed cases.
#[test]
fn fuzz_seeds_and_regressions_keep_the_properties() {
    let (d1, d2) = ("1".repeat(64), "2".repeat(64));
    let gitpod = format!(
        r#"{{"version":"20250101.3","image":"public.ecr.aws/gitpod/runner:20250101.3",
        "proxy_image":"public.ecr.aws/gitpod/proxy:20250101.3",
        "cloudformation_template_url":"https://example.com/runner.json",
        "image_digest":"sha256:{d1}","proxy_image_digest":"sha256:{d2}",
        "released_at":"2025-01-01T09:00:00Z","waves":[{{"start_after":"1h","fleet_percentage":10}},
        {{"start_after":"1d","fleet_percentage":100}}]}}"#
    );
    let waves = r#"[{"start_after":0,"fleet_percentage":1},{"start_after":"6h",
        "fleet_percentage":"10.5"},{"start_after":31622400,"fleet_percentage":100}]"#;
    let manifests: [&[u8]; 3] = [
        gitpod.as_bytes(),
        include_bytes!("fixtures/python-signed.json"),
        waves.as_bytes(),
    ];
    for bytes in manifests {
        check_manifest_properties(bytes);
    }
    for (left, right) in [
        ("20250101.10", "20250101.9"),
        ("v1.2.3-rc.1+build.5", "1.2.3"),
        ("20241231.18446744073709551615", "1.0.0"),
    ] {
        check_version_properties(left, right);
    }
    for image in [
        "registry.example.com:5000/team/runner:20250101.1",
        "ubuntu",
        "[::1]:5000/a/b:c",
        // fuzz/fuzz_targets/image_ref.rs found it: oci-spec read it as
        // docker.io/Ct/u, which does not parse back.
        "Ct/u",
    ] {
        check_image_properties(image);
    }
    assert!(ImageRef::parse("Ct/u").is_err());
}
