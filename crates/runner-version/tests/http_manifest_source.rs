//! `HttpManifestSource` against a real HTTP server on 127.0.0.1.

mod support;

use std::sync::Arc;

use chrono::Duration;
use runner_version::{
    Channel, Error, ErrorClass, FileHighWaterMark, HttpConfig, HttpManifestSource, ReleaseCheck,
    ReleaseSource, ReleaseVerifier,
    conformance::{CONFORMANCE_NOW, sample_release},
};
use support::*;

const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

/// What an error must look like.
type Expect = fn(&Error) -> bool;

fn gitpod_manifest() -> Vec<u8> {
    format!(
        r#"{{"version":"20250101.3","image":"public.ecr.aws/gitpod/runner:20250101.3",
        "proxy_image":"public.ecr.aws/gitpod/proxy:20250101.3@{D1}",
        "cloudformation_template_url":"https://example.com/runner.json",
        "image_digest":"{D1}"}}"#
    )
    .into_bytes()
}

#[tokio::test]
async fn ok_then_not_modified_costs_no_parse() {
    let server = ManifestServer::start().await;
    let release = sample_release("20250101.1", Channel::Stable);
    server.set(
        "/stable.json",
        Served::json(signed_bytes(&release, &[("k1", 1)]), Some("\"v1\"")),
    );
    let source = http_source(&server, signed_verifier(clock()));

    let first = source.check(&Channel::Stable).await.unwrap();
    assert!(
        matches!(&first, ReleaseCheck::Fetched(r) if *r == release),
        "{first:?}"
    );
    let second = source.check(&Channel::Stable).await.unwrap();
    assert!(
        matches!(&second, ReleaseCheck::NotModified(r) if *r == release),
        "{second:?}"
    );

    let stats = source.stats();
    assert_eq!(
        (stats.requests, stats.parses, stats.not_modified),
        (2, 1, 1)
    );
    assert_eq!(
        server.if_none_match_seen(),
        [None, Some("\"v1\"".to_string())]
    );
}

#[tokio::test]
async fn a_new_etag_is_parsed_again() {
    let server = ManifestServer::start().await;
    let publisher = HttpPublisher(server.clone());
    let source = http_source(&server, signed_verifier(clock()));
    use runner_version::conformance::Publisher as _;
    publisher
        .publish(&sample_release("20250101.1", Channel::Stable))
        .await;
    source.check(&Channel::Stable).await.unwrap();
    publisher
        .publish(&sample_release("20250101.2", Channel::Stable))
        .await;
    let check = source.check(&Channel::Stable).await.unwrap();
    assert!(matches!(check, ReleaseCheck::Fetched(_)));
    assert_eq!(source.stats().parses, 2);
}

#[tokio::test]
async fn response_failures_table() {
    let server = ManifestServer::start().await;
    let big = vec![b' '; 100 * 1024];
    let cases: Vec<(&str, Served, Expect)> = vec![
        (
            "oversize, with content-length",
            Served::json(big.clone(), None),
            |e| matches!(e, Error::ResponseTooLarge { limit: 65536, .. }),
        ),
        (
            "oversize, streamed without content-length",
            Served {
                chunked: true,
                ..Served::json(big, None)
            },
            |e| matches!(e, Error::ResponseTooLarge { .. }),
        ),
        (
            "malformed JSON",
            Served::json(b"{\"version\": ".to_vec(), None),
            |e| matches!(e, Error::MalformedManifest { .. }),
        ),
        (
            "JSON of another shape",
            Served::json(b"[1, 2]".to_vec(), None),
            |e| matches!(e, Error::MalformedManifest { .. }),
        ),
        (
            "wrong content type",
            Served {
                content_type: "text/html".into(),
                ..Served::json(gitpod_manifest(), None)
            },
            |e| matches!(e, Error::WrongContentType { content_type, .. } if content_type == "text/html"),
        ),
        (
            "server error",
            Served {
                status: 503,
                ..Served::json(Vec::new(), None)
            },
            |e| {
                matches!(
                    e,
                    Error::HttpStatus {
                        status: 503,
                        class: ErrorClass::Transient,
                        ..
                    }
                ) && e.is_retryable()
            },
        ),
        (
            "throttled",
            Served {
                status: 429,
                ..Served::json(Vec::new(), None)
            },
            |e| {
                matches!(
                    e,
                    Error::HttpStatus {
                        class: ErrorClass::Throttled,
                        ..
                    }
                )
            },
        ),
        (
            "not found",
            Served {
                status: 404,
                ..Served::json(Vec::new(), None)
            },
            |e| {
                matches!(
                    e,
                    Error::HttpStatus {
                        status: 404,
                        class: ErrorClass::Permanent,
                        ..
                    }
                )
            },
        ),
        (
            "never answers",
            Served {
                hang: true,
                ..Served::json(Vec::new(), None)
            },
            |e| matches!(e, Error::Timeout { .. }) && e.is_retryable(),
        ),
    ];
    let verifier = ReleaseVerifier::builder()
        .allow_unsigned()
        .clock(clock())
        .build()
        .unwrap();
    for (name, served, expected) in cases {
        server.set("/stable.json", served);
        let source = http_source(&server, verifier.clone());
        let err = source.check(&Channel::Stable).await.unwrap_err();
        assert!(expected(&err), "{name}: got {err:?}");
        // Only a body that was read in full reaches the parser.
        let reached_parser = matches!(err, Error::MalformedManifest { .. });
        assert_eq!(source.stats().parses, u64::from(reached_parser), "{name}");
    }
}

#[tokio::test]
async fn signature_failures_table() {
    let server = ManifestServer::start().await;
    let release = sample_release("20250101.1", Channel::Stable);
    let mut no_expiry = release.clone();
    no_expiry.expires = None;
    let cases: Vec<(&str, Vec<u8>, Expect)> = vec![
        (
            "signed by another key under a trusted id",
            signed_bytes(&release, &[("k1", 9)]),
            |e| matches!(e, Error::BadSignature { key_id, .. } if key_id == "k1"),
        ),
        (
            "signed by an unknown key",
            signed_bytes(&release, &[("k9", 9)]),
            |e| matches!(e, Error::UnknownKey { key_ids, .. } if key_ids == &["k9"]),
        ),
        ("no signatures", signed_bytes(&release, &[]), |e| {
            matches!(e, Error::MissingSignature { required: 1, .. })
        }),
        ("unsigned Gitpod manifest", gitpod_manifest(), |e| {
            matches!(e, Error::MissingSignature { .. })
        }),
        (
            "signed but no expiry",
            signed_bytes(&no_expiry, &[("k1", 1)]),
            |e| matches!(e, Error::MissingExpiry { .. }),
        ),
        (
            "published for another channel",
            signed_bytes(&sample_release("20250101.1", Channel::Latest), &[("k1", 1)]),
            |e| matches!(e, Error::ChannelMismatch { .. }),
        ),
    ];
    for (name, body, expected) in cases {
        server.set("/stable.json", Served::json(body, None));
        let source = http_source(&server, signed_verifier(clock()));
        let err = source.check(&Channel::Stable).await.unwrap_err();
        assert!(expected(&err), "{name}: got {err:?}");
    }
}

#[tokio::test]
async fn threshold_two_needs_two_keys() {
    let server = ManifestServer::start().await;
    let release = sample_release("20250101.1", Channel::Stable);
    let verifier = || {
        ReleaseVerifier::builder()
            .trust_policy(policy(2, &[("k1", 1), ("k2", 2)]))
            .clock(clock())
            .build()
            .unwrap()
    };
    server.set(
        "/stable.json",
        Served::json(signed_bytes(&release, &[("k1", 1), ("k2", 2)]), None),
    );
    assert_eq!(
        http_source(&server, verifier())
            .latest(&Channel::Stable)
            .await
            .unwrap(),
        release
    );
    server.set(
        "/stable.json",
        Served::json(signed_bytes(&release, &[("k1", 1), ("k3", 3)]), None),
    );
    let err = http_source(&server, verifier())
        .latest(&Channel::Stable)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::BelowThreshold {
                valid: 1,
                required: 2,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn key_rotation_accepts_the_new_key_and_drops_the_old() {
    let server = ManifestServer::start().await;
    let release = sample_release("20250101.1", Channel::Stable);
    // During rotation both keys are trusted: a manifest signed only by the new key passes.
    let during = policy(1, &[("old", 1), ("new", 2)]);
    server.set(
        "/stable.json",
        Served::json(signed_bytes(&release, &[("new", 2)]), None),
    );
    let verifier = |p| {
        ReleaseVerifier::builder()
            .trust_policy(p)
            .clock(clock())
            .build()
            .unwrap()
    };
    let source = http_source(&server, verifier(during.clone()));
    assert_eq!(source.latest(&Channel::Stable).await.unwrap(), release);

    // After rotation the old key no longer counts.
    let mut after = during;
    after.rotate_out("old");
    server.set(
        "/stable.json",
        Served::json(signed_bytes(&release, &[("old", 1)]), None),
    );
    let err = http_source(&server, verifier(after.clone()))
        .latest(&Channel::Stable)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::UnknownKey { rotated_out, .. } if rotated_out == &["old"]),
        "{err:?}"
    );
    server.set(
        "/stable.json",
        Served::json(signed_bytes(&release, &[("old", 1), ("new", 2)]), None),
    );
    assert!(
        http_source(&server, verifier(after))
            .latest(&Channel::Stable)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn unsigned_is_accepted_only_with_the_opt_in() {
    let server = ManifestServer::start().await;
    server.set("/stable.json", Served::json(gitpod_manifest(), None));
    let refused = http_source(&server, signed_verifier(clock()));
    assert!(matches!(
        refused.latest(&Channel::Stable).await,
        Err(Error::MissingSignature { .. })
    ));
    let opted_in = ReleaseVerifier::builder()
        .allow_unsigned()
        .clock(clock())
        .build()
        .unwrap();
    let release = http_source(&server, opted_in)
        .latest(&Channel::Stable)
        .await
        .unwrap();
    assert_eq!(release.version.to_string(), "20250101.3");
    assert_eq!(release.image.digest(), Some(D1));
    assert_eq!(release.infra_version, None);
    assert_eq!(release.channel, Channel::Stable);
}

#[tokio::test]
async fn downgrade_is_refused_across_a_restart() {
    let server = ManifestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let marks = dir.path().join("marks.json");
    let verifier = || {
        ReleaseVerifier::builder()
            .trust_policy(policy(1, &[("k1", 1)]))
            .high_water_mark(Arc::new(FileHighWaterMark::new(&marks)))
            .clock(clock())
            .build()
            .unwrap()
    };
    let newer = sample_release("20250101.10", Channel::Stable);
    server.set(
        "/stable.json",
        Served::json(signed_bytes(&newer, &[("k1", 1)]), None),
    );
    http_source(&server, verifier())
        .latest(&Channel::Stable)
        .await
        .unwrap();

    // A new process (new source, same file) is served an older, validly signed manifest.
    let older = sample_release("20250101.9", Channel::Stable);
    server.set(
        "/stable.json",
        Served::json(signed_bytes(&older, &[("k1", 1)]), None),
    );
    let err = http_source(&server, verifier())
        .latest(&Channel::Stable)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Rollback { offered, highest_accepted, .. }
            if offered == "20250101.9" && highest_accepted == "20250101.10"),
        "{err:?}"
    );
}

#[tokio::test]
async fn expiry_is_rechecked_on_not_modified() {
    let server = ManifestServer::start().await;
    let release = sample_release("20250101.1", Channel::Stable);
    server.set(
        "/stable.json",
        Served::json(signed_bytes(&release, &[("k1", 1)]), Some("\"e1\"")),
    );
    let clock = clock();
    let source = http_source(&server, signed_verifier(clock.clone()));
    source.check(&Channel::Stable).await.unwrap();
    // A freeze: the server keeps answering 304 while time passes the expiry.
    clock.set_now(CONFORMANCE_NOW + Duration::days(31));
    let err = source.check(&Channel::Stable).await.unwrap_err();
    assert!(matches!(err, Error::Expired { .. }), "{err:?}");
    assert_eq!(source.stats().not_modified, 1);
    assert_eq!(source.stats().parses, 1);
}

#[tokio::test]
async fn insecure_urls_are_refused_at_build_time() {
    let verifier = signed_verifier(clock());
    let cases = [
        ("http://example.com/m.json", true),
        ("http://127.0.0.1:1/m.json", false),
        ("file:///etc/passwd", true),
    ];
    for (url, allow_loopback_http) in cases {
        let err = HttpManifestSource::builder()
            .channel_url(Channel::Stable, url)
            .config(HttpConfig {
                allow_loopback_http,
                ..HttpConfig::default()
            })
            .verifier(verifier.clone())
            .build()
            .unwrap_err();
        assert!(matches!(err, Error::InsecureUrl { .. }), "{url}: {err:?}");
    }
    assert!(
        HttpManifestSource::builder()
            .channel_url(Channel::Stable, "https://example.com/m.json")
            .verifier(verifier)
            .build()
            .is_ok()
    );
    let err = HttpManifestSource::builder()
        .channel_url(Channel::Stable, "https://example.com/m.json")
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { .. }), "{err:?}");
}
