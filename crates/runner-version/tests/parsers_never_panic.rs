//! Arbitrary bytes never make a parser panic, and a changed signed manifest
//! never yields a different release.

mod support;

use proptest::prelude::*;
use runner_version::{
    Channel, GitpodManifest, ImageRef, Manifest, ReleaseVerifier, SignedManifest, Version,
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
