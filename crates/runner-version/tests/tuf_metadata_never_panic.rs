//! TUF metadata as `tough` parses it for [`TufReleaseSource`]: the proptest
//! twin of `fuzz/fuzz_targets/tuf_metadata.rs`, so CI checks the same
//! properties on every change. Inputs are the reference repository's
//! metadata (`fuzz/seeds/tuf_metadata`, the fuzz target's seeds), mutated:
//! bytes replaced, ranges cut or duplicated, JSON tokens spliced in.
//!
//! For every role (root, timestamp, snapshot, targets): no panic; parsed
//! metadata survives a JSON round trip unchanged and has a canonical form
//! (what signatures cover); verifying it against the reference root never
//! panics and never accepts a changed document; a target name resolves
//! without a `..` component and a top-level target is found by its name.
//!
//! [`TufReleaseSource`]: runner_version::TufReleaseSource
#![cfg(feature = "tuf")]

use proptest::prelude::*;
use serde::{Serialize, de::DeserializeOwned};
use tough::schema::{Role, Root, Signed, Snapshot, Targets, Timestamp};

const SEEDS: [&[u8]; 5] = [
    include_bytes!("../../../fuzz/seeds/tuf_metadata/root.json"),
    include_bytes!("../../../fuzz/seeds/tuf_metadata/timestamp.json"),
    include_bytes!("../../../fuzz/seeds/tuf_metadata/snapshot.json"),
    include_bytes!("../../../fuzz/seeds/tuf_metadata/targets.json"),
    include_bytes!("../../../fuzz/seeds/tuf_metadata/role1.json"),
];

fn reference_root() -> Signed<Root> {
    serde_json::from_slice(SEEDS[0]).expect("the reference root parses")
}

/// Parses `bytes` as role `T` and checks the role-independent properties.
/// `Some(verified)` when it parsed: whether the reference root accepted it.
fn check<T>(bytes: &[u8], root: &Signed<Root>) -> Option<(Signed<T>, bool)>
where
    T: Role + Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let signed: Signed<T> = serde_json::from_slice(bytes).ok()?;
    let json = serde_json::to_vec(&signed).expect("parsed metadata serialises");
    let again: Signed<T> = serde_json::from_slice(&json).unwrap_or_else(|e| {
        panic!(
            "metadata does not re-parse: {e}\n{}",
            String::from_utf8_lossy(&json)
        )
    });
    assert_eq!(again, signed, "{}", String::from_utf8_lossy(&json));
    let _ = signed.signed.canonical_form();
    let _ = signed.signed.expires();
    let _ = signed.signed.filename(true);
    let verified = root.signed.verify_role(&signed).is_ok();
    Some((signed, verified))
}

fn check_all(bytes: &[u8], root: &Signed<Root>) {
    if let Some((parsed, _)) = check::<Root>(bytes, root) {
        let _ = parsed.signed.verify_role(&parsed);
    }
    let _ = check::<Timestamp>(bytes, root);
    let _ = check::<Snapshot>(bytes, root);
    if let Some((targets, _)) = check::<Targets>(bytes, root) {
        for (name, _) in targets.signed.targets_iter() {
            let resolved = name.resolved();
            assert!(
                !resolved.split('/').any(|part| part == ".."),
                "{:?} resolves to {resolved:?}",
                name.raw()
            );
        }
        for name in targets.signed.targets.keys() {
            assert!(targets.signed.find_target(name, false).is_ok(), "{name:?}");
        }
    }
}

#[derive(Debug, Clone)]
enum Edit {
    Replace { at: usize, byte: u8 },
    Cut { at: usize, len: usize },
    Duplicate { at: usize, len: usize },
    Splice { at: usize, token: &'static str },
}

fn edit() -> impl Strategy<Value = Edit> {
    let token = prop::sample::select(vec![
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"",
        "null",
        "1e999",
        "-1",
        "18446744073709551616",
        "\"..\"",
        "\"../../etc/passwd\"",
        "\"%2e%2e\"",
        "\"expires\"",
        "\"version\"",
        "\"2000-01-01T00:00:00Z\"",
        "\"keyids\"",
        "\"threshold\"",
        "0",
        "\u{0}",
    ]);
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Edit::Replace { at, byte }),
        (any::<usize>(), 1..64usize).prop_map(|(at, len)| Edit::Cut { at, len }),
        (any::<usize>(), 1..64usize).prop_map(|(at, len)| Edit::Duplicate { at, len }),
        (any::<usize>(), token).prop_map(|(at, token)| Edit::Splice { at, token }),
    ]
}

fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let n = bytes.len().max(1);
        match *e {
            Edit::Replace { at, byte } => {
                if !bytes.is_empty() {
                    let i = at % bytes.len();
                    bytes[i] = byte;
                }
            }
            Edit::Cut { at, len } => {
                let i = at % n;
                let end = (i + len).min(bytes.len());
                if i < end {
                    bytes.drain(i..end);
                }
            }
            Edit::Duplicate { at, len } => {
                let i = at % n;
                let end = (i + len).min(bytes.len());
                if i < end {
                    let copy = bytes[i..end].to_vec();
                    bytes.splice(end..end, copy);
                }
            }
            Edit::Splice { at, token } => {
                let i = at % (bytes.len() + 1);
                bytes.splice(i..i, token.bytes());
            }
        }
    }
    bytes
}

#[test]
fn the_seeds_parse_and_the_reference_roles_verify() {
    let root = reference_root();
    assert!(check::<Root>(SEEDS[0], &root).is_some_and(|(_, ok)| ok));
    assert!(check::<Timestamp>(SEEDS[1], &root).is_some_and(|(_, ok)| ok));
    assert!(check::<Snapshot>(SEEDS[2], &root).is_some_and(|(_, ok)| ok));
    assert!(check::<Targets>(SEEDS[3], &root).is_some_and(|(_, ok)| ok));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn mutated_metadata_never_panics(
        seed in 0..SEEDS.len(),
        edits in prop::collection::vec(edit(), 1..6),
    ) {
        let root = reference_root();
        check_all(&apply(SEEDS[seed].to_vec(), &edits), &root);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check_all(&bytes, &reference_root());
    }

    /// A change to the signed part of a role the reference root signed is
    /// never accepted by it (unless the change is invisible to the
    /// canonical form, e.g. whitespace).
    #[test]
    fn a_changed_signed_role_does_not_verify(
        seed in 1..4usize,
        edits in prop::collection::vec(edit(), 1..4),
    ) {
        let root = reference_root();
        let changed = apply(SEEDS[seed].to_vec(), &edits);
        macro_rules! role {
            ($t:ty) => {{
                let original: Signed<$t> = serde_json::from_slice(SEEDS[seed]).unwrap();
                if let Some((parsed, verified)) = check::<$t>(&changed, &root) {
                    let same = parsed.signed.canonical_form().ok()
                        == original.signed.canonical_form().ok();
                    prop_assert!(same || !verified, "a changed document verified");
                }
            }};
        }
        match seed {
            1 => role!(Timestamp),
            2 => role!(Snapshot),
            _ => role!(Targets),
        }
    }
}
