//! Issue 12 hardening: no unsigned bypass next to a trust policy, signed
//! releases pin their template, replayed documents are refused, the file
//! high-water mark is safe across stores, duplicate keys and non-canonical
//! numbers are refused.

use std::sync::Arc;

use chrono::Duration;
use runner_version::{
    Channel, Error, FileHighWaterMark, HighWaterMark, Release, ReleaseSource, ReleaseVerifier,
    SignedManifest, StaticSource, TrustPolicy,
    conformance::{CONFORMANCE_NOW, sample_release},
    ed25519_dalek::SigningKey,
};
use update_clock::ManualClock;

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn policy() -> TrustPolicy {
    TrustPolicy::new(1).with_key("k1", key(1).verifying_key())
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(CONFORMANCE_NOW))
}

fn verifier(clock: Arc<ManualClock>, store: Option<Arc<dyn HighWaterMark>>) -> ReleaseVerifier {
    let mut builder = ReleaseVerifier::builder()
        .trust_policy(policy())
        .clock(clock);
    if let Some(store) = store {
        builder = builder.high_water_mark(store);
    }
    builder.build().unwrap()
}

fn signed(release: &Release) -> Vec<u8> {
    SignedManifest::sign(release, &[("k1", &key(1))])
        .unwrap()
        .to_json()
}

fn stable() -> Release {
    sample_release("20250101.1", Channel::Stable)
}

// Bullet 1: the unsigned opt-in cannot sit next to a trust policy.

#[test]
fn builder_refuses_a_trust_policy_with_allow_unsigned() {
    let builder = ReleaseVerifier::builder()
        .trust_policy(policy())
        .allow_unsigned();
    let err = builder.validate().unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::InvalidConfig { .. }), "{err:?}");
    assert!(
        text.contains("trust_policy()") && text.contains("allow_unsigned()"),
        "{text}"
    );
    assert!(builder.build().is_err());
    // Each alone is fine.
    assert!(
        ReleaseVerifier::builder()
            .trust_policy(policy())
            .build()
            .is_ok()
    );
    assert!(ReleaseVerifier::builder().allow_unsigned().build().is_ok());
}

#[tokio::test]
async fn static_publish_is_verified_like_a_network_manifest() {
    let source = StaticSource::new(verifier(clock(), None));
    // An in-memory release is unsigned: refused under a trust policy.
    source.publish(stable());
    let err = source.check(&Channel::Stable).await.unwrap_err();
    assert!(matches!(err, Error::MissingSignature { .. }), "{err:?}");
    // Signed bytes pass, tampered ones do not.
    source.publish_manifest(Channel::Stable, signed(&stable()));
    assert_eq!(source.latest(&Channel::Stable).await.unwrap(), stable());
    let tampered = String::from_utf8(signed(&stable()))
        .unwrap()
        .replace("templates.example.com", "evil.example.com");
    source.publish_manifest(Channel::Stable, tampered);
    let err = source.check(&Channel::Stable).await.unwrap_err();
    assert!(matches!(err, Error::BadSignature { .. }), "{err:?}");
    // With the unsigned opt-in, the in-memory release is admitted.
    let open = StaticSource::new(
        ReleaseVerifier::builder()
            .allow_unsigned()
            .clock(clock())
            .build()
            .unwrap(),
    );
    open.publish(stable());
    assert_eq!(open.latest(&Channel::Stable).await.unwrap(), stable());
}

// Bullet 2: signed releases pin their template; replays are refused.

#[tokio::test]
async fn signed_release_without_a_template_sha256_is_refused() {
    for (hash, needle) in [
        (None, "no template_sha256"),
        (Some("abc".to_string()), "not 64 hex digits"),
        (Some("zz".repeat(32)), "not 64 hex digits"),
    ] {
        let release = Release {
            template_sha256: hash.clone(),
            ..stable()
        };
        let err = verifier(clock(), None)
            .verify(&signed(&release), &Channel::Stable, "test")
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::InvalidRelease { .. }) && err.to_string().contains(needle),
            "{hash:?}: {err}"
        );
    }
    let ok = Release {
        template_sha256: Some("AB".repeat(32)),
        ..stable()
    };
    assert!(
        verifier(clock(), None)
            .verify(&signed(&ok), &Channel::Stable, "test")
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_different_document_of_an_accepted_version_is_a_replay_until_it_expires() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("marks.json");
    let clock = clock();
    let first = stable(); // expires CONFORMANCE_NOW + 30 days
    let other = Release {
        expires: Some(CONFORMANCE_NOW + Duration::days(60)),
        ..stable()
    };
    let v = verifier(clock.clone(), Some(Arc::new(FileHighWaterMark::new(&path))));
    v.verify(&signed(&first), &Channel::Stable, "test")
        .await
        .unwrap();
    // The same document again (even re-serialised) is fine.
    v.verify(&signed(&first), &Channel::Stable, "test")
        .await
        .unwrap();
    // Another signing of the same version is refused, also after a restart.
    let err = v
        .verify(&signed(&other), &Channel::Stable, "test")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Replay { .. }), "{err:?}");
    assert!(err.to_string().contains("20250101.1"), "{err}");
    let restarted = verifier(clock.clone(), Some(Arc::new(FileHighWaterMark::new(&path))));
    let err = restarted
        .verify(&signed(&other), &Channel::Stable, "test")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Replay { .. }), "{err:?}");
    // Once the accepted document has expired, the other one replaces it,
    // and the first is then the replay.
    clock.set_now(CONFORMANCE_NOW + Duration::days(31));
    restarted
        .verify(&signed(&other), &Channel::Stable, "test")
        .await
        .unwrap();
    clock.set_now(CONFORMANCE_NOW + Duration::days(1));
    let err = restarted
        .verify(&signed(&first), &Channel::Stable, "test")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Replay { .. }), "{err:?}");
    // A newer version is accepted as usual.
    restarted
        .verify(
            &signed(&sample_release("20250101.2", Channel::Stable)),
            &Channel::Stable,
            "test",
        )
        .await
        .unwrap();
}

// Bullet 3: two file stores on one path, racing from several threads.

#[test]
fn two_file_stores_on_one_path_racing_never_lose_a_raise() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("marks.json");
    let stores = [
        Arc::new(FileHighWaterMark::new(&path)),
        Arc::new(FileHighWaterMark::new(&path)),
    ];
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let store = stores[(t % 2) as usize].clone();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    // Each thread offers its share of 0..60 in a scrambled order.
                    for i in (0..60u64).filter(|i| i % 4 == t) {
                        let build = (i * 37) % 60;
                        let version = format!("20250101.{build}").parse().unwrap();
                        match store.advance(&Channel::Stable, &version).await {
                            Ok(_) | Err(Error::Rollback { .. }) => {}
                            Err(e) => panic!("{e}"),
                        }
                    }
                });
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for store in &stores {
        assert_eq!(
            rt.block_on(store.highest(&Channel::Stable)).unwrap(),
            Some("20250101.59".parse().unwrap())
        );
    }
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [".marks.json.lock", "marks.json"],
        "no temp file left"
    );
}

// Bullet 5: duplicate keys and non-canonical numbers.

#[tokio::test]
async fn duplicate_keys_in_a_signed_document_are_refused() {
    let text = String::from_utf8(signed(&stable())).unwrap();
    assert!(text.contains("\"signed\": {"));
    for doctored in [
        text.replacen(
            "\"signed\": {",
            "\"signed\": {\"version\": \"20250101.9\",",
            1,
        ),
        text.replacen("\"signed\": {", "\"signed\": {\"channel\": \"stable\",", 1),
        text.replacen("{", "{\"signatures\": [],", 1),
    ] {
        let err = verifier(clock(), None)
            .verify(doctored.as_bytes(), &Channel::Stable, "test")
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::MalformedManifest { .. })
                && err.to_string().contains("appears twice"),
            "{err}"
        );
    }
}

#[tokio::test]
async fn non_canonical_numbers_in_a_signed_document_are_refused() {
    let text = String::from_utf8(signed(&stable())).unwrap();
    for number in ["-0", "1E2", "1e2", "1.0", "123456789012345678901234567890"] {
        let doctored = text.replacen(
            "\"signed\": {",
            &format!("\"signed\": {{\"n\": {number},"),
            1,
        );
        let err = verifier(clock(), None)
            .verify(doctored.as_bytes(), &Channel::Stable, "test")
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::MalformedManifest { .. })
                && err.to_string().contains("canonical form"),
            "{number}: {err}"
        );
    }
    // An integer is fine for the canonical form (the signature then fails,
    // since the publisher did not sign it).
    let doctored = text.replacen("\"signed\": {", "\"signed\": {\"n\": 100,", 1);
    let err = verifier(clock(), None)
        .verify(doctored.as_bytes(), &Channel::Stable, "test")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BadSignature { .. }), "{err}");
}
