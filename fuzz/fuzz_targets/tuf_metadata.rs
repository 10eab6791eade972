//! TUF metadata as `tough` parses it: `Signed<Root>`, `Signed<Timestamp>`,
//! `Signed<Snapshot>` and `Signed<Targets>` from bytes (what the TUF
//! release source reads from a repository before verifying it).
//!
//! Beyond "no panic": parsed metadata survives a JSON round trip and has a
//! canonical form (what signatures cover); verifying a root against itself,
//! and the other roles against the reference root (seeds/tuf_metadata, the
//! TUF reference implementation's test repository), never panics; a target
//! name resolves without a `..` component, and a top-level target is found
//! by its name.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use serde::{Serialize, de::DeserializeOwned};
use tough::schema::{Role, Root, Signed, Snapshot, Targets, Timestamp};

static REFERENCE_ROOT: LazyLock<Signed<Root>> = LazyLock::new(|| {
    serde_json::from_slice(include_bytes!("../seeds/tuf_metadata/root.json"))
        .expect("the reference root parses")
});

fn parse<T>(bytes: &[u8]) -> Option<Signed<T>>
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
    let _ = REFERENCE_ROOT.signed.verify_role(&signed);
    Some(signed)
}

fuzz_target!(|bytes: &[u8]| {
    if let Some(root) = parse::<Root>(bytes) {
        let _ = root.signed.verify_role(&root);
    }
    let _ = parse::<Timestamp>(bytes);
    let _ = parse::<Snapshot>(bytes);
    if let Some(targets) = parse::<Targets>(bytes) {
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
});
