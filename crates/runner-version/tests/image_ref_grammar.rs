//! `ImageRef`'s hand-written grammar against `oci-spec`'s regex parser (the
//! parser it replaced; a dev-dependency only).
//!
//! On ASCII text the two must agree exactly: the same references accepted
//! (after `ImageRef`'s own normal-form check, which it applied to oci-spec's
//! result before), with the same registry, repository, tag, digest and
//! normal form. On text with a non-ASCII character they differ on purpose:
//! oci-spec compiles its tag class `\w` with Unicode and so accepts `app:é`,
//! which the distribution grammar (ASCII `\w`, as Go's regexp reads it), a
//! registry and ECS's image field do not; `ImageRef` refuses every such
//! reference.

use oci_spec::distribution::Reference;
use proptest::prelude::*;
use runner_version::ImageRef;

/// What the old parser made of `text`: `ImageRef::parse` as it was, oci-spec
/// plus the check that the normal form parses back to the same reference,
/// with `ImageRef`'s trimming of ASCII whitespace only (the old `str::trim`
/// also dropped Unicode spaces and vertical tab, turning `"0\u{a0}"` into a
/// valid reference).
fn oci_spec(text: &str) -> Option<Reference> {
    let reference =
        Reference::try_from(text.trim_matches(|c: char| c.is_ascii_whitespace())).ok()?;
    let again = Reference::try_from(reference.whole()).ok()?;
    (again == reference).then_some(reference)
}

fn agree(text: &str) -> Result<(), TestCaseError> {
    let ours = ImageRef::parse(text);
    if !text.is_ascii() {
        prop_assert!(ours.is_err(), "{text:?}: non-ASCII accepted as {ours:?}");
        return Ok(());
    }
    match (oci_spec(text), ours) {
        (None, Err(_)) => {}
        (Some(theirs), Ok(ours)) => {
            prop_assert_eq!(ours.registry(), theirs.registry(), "{:?}", text);
            prop_assert_eq!(ours.repository(), theirs.repository(), "{:?}", text);
            prop_assert_eq!(ours.tag(), theirs.tag(), "{:?}", text);
            prop_assert_eq!(ours.digest(), theirs.digest(), "{:?}", text);
            prop_assert_eq!(ours.to_string(), theirs.whole(), "{:?}", text);
        }
        (theirs, ours) => {
            prop_assert!(false, "{text:?}: oci-spec {theirs:?}, ImageRef {ours:?}")
        }
    }
    Ok(())
}

/// Text built from the grammar's pieces, then spliced: mostly near-valid
/// references, where the two parsers could disagree.
fn reference_like() -> impl Strategy<Value = String> {
    let hex = "[0-9a-fA-F]{30,130}";
    let host = prop_oneof![
        Just(String::new()),
        "[a-zA-Z0-9-]{1,6}(\\.[a-zA-Z0-9-_]{1,5}){0,2}(:[0-9a]{0,5})?/",
        Just("localhost/".to_owned()),
        Just("localhost:5000/".to_owned()),
        Just("index.docker.io/".to_owned()),
        Just("docker.io/".to_owned()),
    ];
    let path = "[a-z0-9A]{1,4}([._-]{1,3}[a-z0-9]{1,4}){0,2}(/[a-z0-9]{1,4}([._-]{1,3}[a-z0-9]{1,4}){0,2}){0,2}";
    let tag = prop_oneof![
        Just(String::new()),
        ":[a-zA-Z0-9_.-]{0,4}".prop_map(|t| t),
        Just(format!(":{}", "t".repeat(128))),
        Just(format!(":{}", "t".repeat(129))),
    ];
    let digest = prop_oneof![
        Just(String::new()),
        (
            prop_oneof![
                Just("sha256"),
                Just("sha384"),
                Just("sha512"),
                Just("md5"),
                Just("sha256+b64"),
                Just("9sha"),
                Just("")
            ],
            hex
        )
            .prop_map(|(algorithm, hex)| format!("@{algorithm}:{hex}")),
        Just(format!("@sha256:{}", "ab".repeat(32))),
        Just(format!("@sha512:{}", "ab".repeat(64))),
    ];
    (host, path, tag, digest, any::<u8>(), any::<usize>()).prop_map(
        |(host, path, tag, digest, splice, at)| {
            let mut text = format!("{host}{path}{tag}{digest}");
            // One in four gets a byte of the grammar's punctuation or
            // letters put somewhere in it.
            if splice % 4 == 0 {
                let bytes = b"./:@_-+Aa0 ";
                let at = at % (text.len() + 1);
                text.insert(at, bytes[usize::from(splice / 4) % bytes.len()] as char);
            }
            text
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    #[test]
    fn agrees_with_oci_spec_on_reference_like_text(text in reference_like()) {
        agree(&text)?;
    }

    #[test]
    fn agrees_with_oci_spec_on_any_text_of_the_grammar_alphabet(
        text in "[a-zA-Z0-9./:@_+ -]{0,40}"
    ) {
        agree(&text)?;
    }

    #[test]
    fn refuses_every_non_ascii_reference(
        text in "[a-z0-9./:@_-]{0,20}[^\\x00-\\x7f][a-z0-9./:@_-]{0,20}"
    ) {
        agree(&text)?;
    }
}

/// The one deliberate difference, shown.
#[test]
fn oci_spec_accepts_a_unicode_tag_that_image_ref_refuses() {
    assert!(oci_spec("r.io/app:é").is_some());
    assert!(ImageRef::parse("r.io/app:é").is_err());
}

/// Long names and the 255-character repository limit agree too (proptest's
/// short strings never reach it).
#[test]
fn agrees_at_the_repository_length_limit() {
    for n in 240..260 {
        for text in [
            "a".repeat(n),
            format!("r.io/{}", "a".repeat(n)),
            format!("team/{}", "a".repeat(n)),
        ] {
            agree(&text).unwrap();
        }
    }
}
