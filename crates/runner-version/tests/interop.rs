//! A manifest signed by an independent implementation (Python's
//! `cryptography`, see `fixtures/sign.py`) verifies: the canonical form is
//! reproducible outside this crate.

use runner_version::{Authentication, Channel, Error, ReleaseVerifier, TrustPolicy};

const PYTHON_KEY: &str = "bnoc3Smwt4/ROvTFWY/v9O8qlxZuPKby5Pv8zYBQW/E=";
const MANIFEST: &[u8] = include_bytes!("fixtures/python-signed.json");

fn verifier() -> ReleaseVerifier {
    ReleaseVerifier::builder()
        .trust_policy(
            TrustPolicy::new(1)
                .with_key_base64("py", PYTHON_KEY)
                .unwrap(),
        )
        .build()
        .unwrap()
}

#[test]
fn python_signed_manifest_verifies() {
    let (release, authentication) = verifier()
        .decode(MANIFEST, &Channel::Stable, "fixture")
        .unwrap();
    assert_eq!(release.version.to_string(), "20250101.7");
    assert_eq!(release.infra_version.unwrap().as_str(), "infra-7");
    assert!(matches!(authentication, Authentication::Signed(r) if r.valid_keys == ["py"]));
}

#[test]
fn python_signed_manifest_with_a_changed_unknown_field_fails() {
    let text = String::from_utf8(MANIFEST.to_vec()).unwrap();
    let tampered = text.replace("unknown fields are signed too", "changed");
    assert_ne!(text, tampered);
    let err = verifier()
        .decode(tampered.as_bytes(), &Channel::Stable, "fixture")
        .unwrap_err();
    assert!(matches!(err, Error::BadSignature { .. }), "{err:?}");
}
