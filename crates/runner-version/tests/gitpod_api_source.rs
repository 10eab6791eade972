//! `GitpodApiSource` against a fake Connect server on 127.0.0.1.

mod support;

use runner_version::{
    BearerToken, Channel, Error, ErrorClass, GitpodApiSource, ReleaseSource, ReleaseVerifier,
    Version,
};
use serde_json::json;
use support::*;

fn source(
    api: &FakeGitpodApi,
    token: &str,
    runner_id: &str,
    verifier: ReleaseVerifier,
) -> GitpodApiSource {
    GitpodApiSource::builder()
        .base_url(api.base_url())
        .token(BearerToken::new(token))
        .runner_id(runner_id)
        .release_method(RELEASE_METHOD)
        .config(loopback_config())
        .verifier(verifier)
        .build()
        .unwrap()
}

#[tokio::test]
async fn reads_runner_settings() {
    let api = FakeGitpodApi::start().await;
    let cases = [
        (
            json!({"runner": {"runnerId": "runner-1",
                "spec": {"configuration": {"autoUpdate": true,
                    "releaseChannel": "RUNNER_RELEASE_CHANNEL_LATEST"}},
                "status": {"version": "20250101.3"}}}),
            (true, Some(Channel::Latest), Some("20250101.3")),
        ),
        // proto3 JSON omits default values.
        (
            json!({"runner": {"runnerId": "runner-1", "spec": {}, "status": {}}}),
            (false, None, None),
        ),
        (
            json!({"runner": {"spec": {"configuration": {
                "releaseChannel": "RUNNER_RELEASE_CHANNEL_STABLE"}},
                "status": {"version": ""}}}),
            (false, Some(Channel::Stable), None),
        ),
    ];
    let verifier = signed_verifier(clock());
    for (runner, (auto_update, channel, version)) in cases {
        api.set_runner(runner.clone());
        let settings = source(&api, GOOD_TOKEN, "runner-1", verifier.clone())
            .runner_settings()
            .await
            .unwrap();
        assert_eq!(settings.auto_update, auto_update, "{runner}");
        assert_eq!(settings.release_channel, channel, "{runner}");
        assert_eq!(
            settings.running_version,
            version.map(|v| Version::parse(v).unwrap())
        );
        assert_eq!(
            settings.effective_channel(),
            channel.unwrap_or(Channel::Stable)
        );
    }
    let (path, body) = api.requests().pop().unwrap();
    assert_eq!(path, "/gitpod.v1.RunnerService/GetRunner");
    assert_eq!(body, json!({"runnerId": "runner-1"}));
}

#[tokio::test]
async fn malformed_runner_answers_are_errors() {
    let api = FakeGitpodApi::start().await;
    for runner in [
        json!({}),
        json!({"runner": {"spec": {"configuration": {"autoUpdate": "yes"}}}}),
        json!({"runner": {"status": {"version": "not-a-version"}}}),
    ] {
        api.set_runner(runner.clone());
        let err = source(&api, GOOD_TOKEN, "runner-1", signed_verifier(clock()))
            .runner_settings()
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::MalformedResponse { .. } | Error::InvalidVersion { .. }
            ),
            "{runner}: {err:?}"
        );
    }
}

#[tokio::test]
async fn wrong_token_says_check_the_token() {
    let api = FakeGitpodApi::start().await;
    api.set_runner(json!({"runner": {}}));
    let err = source(&api, "stolen-token", "runner-1", signed_verifier(clock()))
        .runner_settings()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unauthenticated { .. }), "{err:?}");
    assert!(err.to_string().contains("check the token"), "{err}");
    assert_eq!(err.class(), Some(ErrorClass::Permanent));
}

#[tokio::test]
async fn connect_errors_map_to_variants_and_classes() {
    let api = FakeGitpodApi::start().await;
    let unknown_runner = source(&api, GOOD_TOKEN, "runner-404", signed_verifier(clock()))
        .latest(&Channel::Stable)
        .await
        .unwrap_err();
    assert!(
        matches!(&unknown_runner, Error::RunnerNotFound { runner_id, .. } if runner_id == "runner-404"),
        "{unknown_runner:?}"
    );
    let cases = [
        (
            403,
            json!({"code": "permission_denied", "message": "no"}),
            "PermissionDenied",
            None,
        ),
        (
            503,
            json!({"code": "unavailable", "message": "down"}),
            "Api",
            Some(ErrorClass::Transient),
        ),
        (
            429,
            json!({"code": "resource_exhausted", "message": "slow down"}),
            "Api",
            Some(ErrorClass::Throttled),
        ),
        (
            400,
            json!({"code": "invalid_argument", "message": "bad"}),
            "Api",
            Some(ErrorClass::Permanent),
        ),
        (
            502,
            json!("<html>bad gateway</html>"),
            "HttpStatus",
            Some(ErrorClass::Transient),
        ),
    ];
    for (status, body, variant, class) in cases {
        api.force_error(status, body.clone());
        let err = source(&api, GOOD_TOKEN, "runner-1", signed_verifier(clock()))
            .latest(&Channel::Stable)
            .await
            .unwrap_err();
        assert!(format!("{err:?}").starts_with(variant), "{body}: {err:?}");
        if let Some(class) = class {
            assert_eq!(err.class(), Some(class), "{body}");
        }
    }
}

#[tokio::test]
async fn release_method_serves_either_manifest_format() {
    let api = FakeGitpodApi::start().await;
    let digest = format!("sha256:{}", "c".repeat(64));
    api.set_manifest(
        "RUNNER_RELEASE_CHANNEL_STABLE",
        json!({"version": "20250101.4", "image": format!("r.io/runner@{digest}"),
               "proxy_image": null, "cloudformation_template_url": "https://example.com/t.json"}),
    );
    let unsigned_ok = ReleaseVerifier::builder()
        .allow_unsigned()
        .clock(clock())
        .build()
        .unwrap();
    let release = source(&api, GOOD_TOKEN, "runner-1", unsigned_ok)
        .latest(&Channel::Stable)
        .await
        .unwrap();
    assert_eq!(release.version.to_string(), "20250101.4");
    let (path, body) = api.requests().pop().unwrap();
    assert_eq!(path, format!("/{RELEASE_METHOD}"));
    assert_eq!(
        body,
        json!({"runnerId": "runner-1", "releaseChannel": "RUNNER_RELEASE_CHANNEL_STABLE"})
    );
    // The same unsigned manifest is refused by a verifier that requires signatures.
    let err = source(&api, GOOD_TOKEN, "runner-1", signed_verifier(clock()))
        .latest(&Channel::Stable)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::MissingSignature { .. }), "{err:?}");
}

#[test]
fn builder_validates() {
    let ok = || {
        GitpodApiSource::builder()
            .base_url("https://app.gitpod.io/api")
            .token(BearerToken::new("t"))
            .runner_id("r")
            .release_method("a.v1.S/M")
            .verifier(signed_verifier(clock()))
    };
    assert!(ok().validate().is_ok());
    assert!(
        ok().base_url("http://app.gitpod.io/api")
            .validate()
            .is_err()
    );
    assert!(ok().token(BearerToken::new(" ")).validate().is_err());
    assert!(ok().runner_id("").validate().is_err());
    assert!(ok().release_method("NoSlash").validate().is_err());
    assert!(GitpodApiSource::builder().validate().is_err());
}
