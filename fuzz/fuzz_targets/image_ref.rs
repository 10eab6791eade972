//! Image references (`ImageRef::parse`, the distribution reference grammar).
//!
//! Beyond "no panic": an accepted reference re-displays and re-parses to
//! the same value (the text is what a task definition gets), through serde
//! too; `pinned()` holds exactly when there is a digest; re-attaching its
//! own digest gives the same reference, attaching one to an unpinned
//! reference pins it and keeps registry, repository and tag.
#![no_main]

use libfuzzer_sys::fuzz_target;
use runner_version::ImageRef;

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fuzz_target!(|bytes: &[u8]| {
    let text = String::from_utf8_lossy(bytes);
    let Ok(image) = ImageRef::parse(&text) else {
        return;
    };
    let shown = image.to_string();
    let again = ImageRef::parse(&shown)
        .unwrap_or_else(|e| panic!("{text:?} displays as {shown:?}, which does not parse: {e}"));
    assert_eq!(again, image, "{text:?} displays as {shown:?}");
    assert_eq!(again.to_string(), shown);
    assert!(image.same_image(&again));

    let json = serde_json::to_string(&image).expect("an image serialises");
    assert_eq!(
        serde_json::from_str::<ImageRef>(&json).ok().as_ref(),
        Some(&image)
    );

    assert_eq!(image.pinned().is_ok(), image.digest().is_some());
    match image.digest() {
        Some(digest) => {
            let same = image
                .with_digest(digest)
                .unwrap_or_else(|e| panic!("{shown}: its own digest is refused: {e}"));
            assert_eq!(same, image);
        }
        None => {
            let pinned = image
                .with_digest(DIGEST)
                .unwrap_or_else(|e| panic!("{shown}: a digest cannot be attached: {e}"));
            assert!(pinned.pinned().is_ok());
            assert_eq!(pinned.digest(), Some(DIGEST));
            assert_eq!(pinned.registry(), image.registry());
            assert_eq!(pinned.repository(), image.repository());
            assert_eq!(pinned.tag(), image.tag());
        }
    }
});
