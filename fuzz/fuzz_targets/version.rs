//! Version-like text: `Version` (calendar and semver), `Channel`,
//! `InfraVersion` and `FleetPercentage`.
//!
//! Beyond "no panic": a parsed version re-displays and re-parses to the
//! same value (and through serde); two versions of one scheme compare
//! antisymmetrically and `is_newer_than` implies a greater order; a channel
//! re-parses from its name; an infrastructure version is its trimmed text;
//! a fleet percentage is in (0, 100] % and round-trips through serde.
#![no_main]

use std::cmp::Ordering;

use libfuzzer_sys::fuzz_target;
use runner_version::{Channel, FleetPercentage, InfraVersion, Version};

fn check_version(text: &str) -> Option<Version> {
    let version = Version::parse(text).ok()?;
    let shown = version.to_string();
    assert_eq!(
        Version::parse(&shown).ok().as_ref(),
        Some(&version),
        "{text:?} displays as {shown:?}"
    );
    assert_eq!(version.try_cmp(&version).ok(), Some(Ordering::Equal));
    let json = serde_json::to_string(&version).expect("a version serialises");
    assert_eq!(
        serde_json::from_str::<Version>(&json).ok().as_ref(),
        Some(&version)
    );
    Some(version)
}

fuzz_target!(|bytes: &[u8]| {
    let text = String::from_utf8_lossy(bytes);
    // A second value after the first NUL, so pairs can be compared.
    let (left, right) = text.split_once('\0').unwrap_or((&text, ""));

    let a = check_version(left);
    let b = check_version(right);
    if let (Some(a), Some(b)) = (a, b) {
        match (a.try_cmp(&b), b.try_cmp(&a)) {
            (Ok(ab), Ok(ba)) => {
                assert_eq!(ab, ba.reverse(), "{a} vs {b}");
                assert_eq!(ab == Ordering::Equal, a == b, "{a} vs {b}");
                if a.is_newer_than(&b).expect("same scheme") {
                    assert_eq!(ab, Ordering::Greater, "{a} is newer than {b}");
                }
            }
            (Err(_), Err(_)) => {
                assert_ne!(a.scheme(), b.scheme());
                assert!(a.is_newer_than(&b).is_err());
                assert_eq!(a.partial_cmp(&b), None);
            }
            other => panic!("{a} vs {b}: asymmetric comparison {other:?}"),
        }
    }

    if let Ok(channel) = Channel::parse(left) {
        assert_eq!(Channel::parse(channel.as_str()).ok(), Some(channel.clone()));
        assert!(!channel.as_str().is_empty() && channel.as_str().len() <= 64);
    }

    assert_eq!(InfraVersion::new(left).as_str(), left.trim());

    if let Ok(share) = left.parse::<FleetPercentage>() {
        assert!((1..=10_000).contains(&share.basis_points()), "{share:?}");
        let json = serde_json::to_string(&share).expect("a percentage serialises");
        assert_eq!(
            serde_json::from_str::<FleetPercentage>(&json).ok(),
            Some(share),
            "{json}"
        );
    }
});
