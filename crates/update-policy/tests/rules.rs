//! Table-driven tests of every rule of `evaluate`, alone and combined.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc, Weekday};
use runner_version::{Channel, ImageRef, Release, Version};
use update_policy::{
    ComparedWith, CurrentState, Decision, Hold, QuarantineBackoff, QuarantineEntry, SkipReason,
    UpdatePolicy, UpdateWindow, evaluate,
};

const TEMPLATE: &str = "https://releases.example.com/infra-7.json";

fn digest(n: u8) -> String {
    format!("sha256:{}", format!("{n:02x}").repeat(32))
}

fn v(s: &str) -> Version {
    s.parse().unwrap()
}

/// January 2025: the 3rd is a Friday, the 4th a Saturday.
fn at(day: u32, hour: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, day, hour, min, 0).unwrap()
}

fn current() -> CurrentState {
    CurrentState::new(
        v("20250101.1"),
        format!("registry.example.com/runner:20250101.1@{}", digest(1))
            .parse()
            .unwrap(),
        "7".into(),
    )
}

fn release() -> Release {
    Release {
        version: v("20250102.1"),
        channel: Channel::Stable,
        image: format!("registry.example.com/runner:20250102.1@{}", digest(2))
            .parse()
            .unwrap(),
        proxy_image: None,
        infra_version: Some("7".into()),
        template_url: TEMPLATE.into(),
        template_sha256: None,
        released_at: Some(at(2, 0, 0)),
        expires: None,
        waves: Default::default(),
    }
}

fn now() -> DateTime<Utc> {
    at(3, 12, 0)
}

fn codes(decision: &Decision) -> Vec<&'static str> {
    decision.reason_codes()
}

struct Case {
    name: &'static str,
    current: CurrentState,
    release: Release,
    policy: UpdatePolicy,
    now: DateTime<Utc>,
    want: &'static [&'static str],
}

fn case(name: &'static str, want: &'static [&'static str]) -> Case {
    Case {
        name,
        current: current(),
        release: release(),
        policy: UpdatePolicy::default(),
        now: now(),
        want,
    }
}

fn run(cases: Vec<Case>) {
    for c in cases {
        let decision = evaluate(&c.current, &c.release, &c.policy, c.now);
        assert_eq!(codes(&decision), c.want, "{}: {decision}", c.name);
        assert_eq!(decision.is_update(), c.want.is_empty(), "{}", c.name);
        if let Decision::Update { from, to, image } = &decision {
            assert_eq!(
                (from, to, image),
                (&c.current.version, &c.release.version, &c.release.image)
            );
        }
    }
}

fn hm(a: u32, b: u32, c: u32, d: u32) -> Option<UpdateWindow> {
    Some(UpdateWindow::from_hm(a, b, c, d).unwrap())
}

fn entry(
    version: &str,
    image_digest: Option<String>,
    retry_after: DateTime<Utc>,
) -> QuarantineEntry {
    QuarantineEntry {
        version: v(version),
        image_digest,
        reason: "ECS rolled the deployment back".into(),
        attempts: 2,
        retry_after,
    }
}

#[test]
fn seed_rules_one_at_a_time() {
    let mut cases = vec![case("eligible", &[])];

    let mut c = case("auto-update off", &["auto_update_disabled"]);
    c.policy.auto_update = false;
    cases.push(c);

    let mut c = case("latest channel release", &["channel_mismatch"]);
    c.release.channel = Channel::Latest;
    cases.push(c);

    let mut c = case("runner follows a custom channel", &[]);
    c.release.channel = Channel::parse("canary").unwrap();
    c.policy.channel = Channel::parse("canary").unwrap();
    cases.push(c);

    let mut c = case(
        "infrastructure differs",
        &["infrastructure_update_required"],
    );
    c.release.infra_version = Some("8".into());
    cases.push(c);

    let mut c = case(
        "infrastructure unknown",
        &["infrastructure_version_unknown"],
    );
    c.release.infra_version = None;
    cases.push(c);

    let mut c = case("equal versions, other image", &["not_newer"]);
    c.release.version = v("20250101.1");
    cases.push(c);

    let mut c = case("older version", &["not_newer"]);
    c.release.version = v("20241231.9");
    cases.push(c);

    let mut c = case("build 10 is newer than build 9", &[]);
    c.current.version = v("20250102.9");
    c.release.version = v("20250102.10");
    cases.push(c);

    let mut c = case(
        "semver release, calendar runner",
        &["mixed_version_schemes"],
    );
    c.release.version = v("2.0.0");
    cases.push(c);

    let mut c = case("semver on both sides", &[]);
    c.current.version = v("1.4.2");
    c.release.version = v("1.5.0");
    cases.push(c);

    let mut c = case("semver build metadata only", &["not_newer"]);
    c.current.version = v("1.5.0+a");
    c.release.version = v("1.5.0+b");
    cases.push(c);

    run(cases);
}

#[test]
fn image_comparison_by_digest_and_by_tag() {
    let pinned = |tag: &str, n: u8| -> ImageRef {
        format!("registry.example.com/runner:{tag}@{}", digest(n))
            .parse()
            .unwrap()
    };
    let tagged = |tag: &str| -> ImageRef {
        format!("registry.example.com/runner:{tag}")
            .parse()
            .unwrap()
    };
    let mut cases = Vec::new();

    let mut c = case("same digest, different tags", &["same_image"]);
    c.current.image = pinned("old-tag", 2);
    cases.push(c);

    let mut c = case("same digest in upper case", &["same_image"]);
    c.current.image = format!(
        "registry.example.com/runner:x@sha256:{}",
        "02".repeat(32).to_uppercase()
    )
    .parse()
    .unwrap();
    cases.push(c);

    let mut c = case("same tag, different digests", &[]);
    c.current.image = pinned("20250102.1", 1);
    cases.push(c);

    let mut c = case("running by tag only, same tag", &[]);
    c.current.image = tagged("20250102.1");
    cases.push(c);

    let mut c = case("both by the same tag", &["same_image"]);
    c.current.image = tagged("20250102.1");
    c.release.image = tagged("20250102.1");
    cases.push(c);

    let mut c = case("both by different tags", &[]);
    c.current.image = tagged("20250101.1");
    c.release.image = tagged("20250102.1");
    cases.push(c);

    run(cases);
}

#[test]
fn update_window_including_midnight_crossing_and_edges() {
    let table: &[(Option<UpdateWindow>, DateTime<Utc>, &[&str])] = &[
        (hm(22, 0, 2, 0), at(3, 21, 59), &["outside_update_window"]),
        (hm(22, 0, 2, 0), at(3, 22, 0), &[]),
        (hm(22, 0, 2, 0), at(4, 0, 0), &[]),
        (hm(22, 0, 2, 0), at(4, 1, 59), &[]),
        (hm(22, 0, 2, 0), at(4, 2, 0), &["outside_update_window"]),
        (hm(22, 0, 2, 0), at(3, 12, 0), &["outside_update_window"]),
        (hm(2, 0, 22, 0), at(3, 12, 0), &[]),
        (hm(2, 0, 22, 0), at(3, 23, 0), &["outside_update_window"]),
        (hm(9, 0, 17, 0), at(3, 17, 0), &["outside_update_window"]),
        (hm(9, 0, 17, 0), at(3, 9, 0), &[]),
    ];
    let cases = table
        .iter()
        .map(|(window, now, want)| {
            let mut c = case("window", want);
            c.policy.window = *window;
            c.now = *now;
            c
        })
        .collect();
    run(cases);

    let mut policy = UpdatePolicy {
        window: hm(22, 0, 2, 0),
        ..UpdatePolicy::default()
    };
    policy.allowed_weekdays = None;
    match evaluate(&current(), &release(), &policy, at(3, 12, 0)) {
        Decision::Skip { reasons } => assert_eq!(
            reasons,
            [SkipReason::OutsideUpdateWindow {
                window: policy.window.unwrap(),
                next_opens_at: at(3, 22, 0),
            }]
        ),
        other => panic!("{other}"),
    }
}

#[test]
fn weekdays_belong_to_the_day_the_window_opened() {
    let friday_only = Some(vec![Weekday::Fri]);
    let table: &[(Option<UpdateWindow>, DateTime<Utc>, &[&str])] = &[
        // No window: the calendar day decides.
        (None, at(3, 12, 0), &[]),
        (None, at(4, 1, 0), &["weekday_not_allowed"]),
        // Friday's 22:00-02:00 window runs into Saturday morning.
        (hm(22, 0, 2, 0), at(3, 23, 0), &[]),
        (hm(22, 0, 2, 0), at(4, 1, 0), &[]),
        (
            hm(22, 0, 2, 0),
            at(4, 2, 0),
            &["outside_update_window", "weekday_not_allowed"],
        ),
        // Thursday night's window ends on Friday morning: it is Thursday's.
        (hm(22, 0, 2, 0), at(3, 1, 0), &["weekday_not_allowed"]),
        (hm(22, 0, 2, 0), at(4, 23, 0), &["weekday_not_allowed"]),
        // Outside any window, the calendar day is judged as well.
        (hm(22, 0, 2, 0), at(3, 12, 0), &["outside_update_window"]),
    ];
    let cases = table
        .iter()
        .map(|(window, now, want)| {
            let mut c = case("weekday", want);
            c.policy.window = *window;
            c.policy.allowed_weekdays = friday_only.clone();
            c.now = *now;
            c
        })
        .collect();
    run(cases);
}

#[test]
fn minimum_release_age() {
    let day = Duration::from_secs(24 * 3600);
    let mut cases = Vec::new();

    let mut c = case("old enough", &[]);
    c.policy.minimum_release_age = Some(day);
    cases.push(c);

    let mut c = case("exactly old enough", &[]);
    c.policy.minimum_release_age = Some(day);
    c.now = at(3, 0, 0);
    cases.push(c);

    let mut c = case("one minute too young", &["release_too_new"]);
    c.policy.minimum_release_age = Some(day);
    c.now = at(2, 23, 59);
    cases.push(c);

    let mut c = case("unknown date with a minimum age", &["release_date_unknown"]);
    c.policy.minimum_release_age = Some(day);
    c.release.released_at = None;
    cases.push(c);

    let mut c = case("unknown date without a minimum age", &[]);
    c.release.released_at = None;
    cases.push(c);

    run(cases);

    let policy = UpdatePolicy {
        minimum_release_age: Some(3 * day),
        ..UpdatePolicy::default()
    };
    assert_eq!(
        evaluate(&current(), &release(), &policy, now()).reasons(),
        [SkipReason::ReleaseTooNew {
            released_at: at(2, 0, 0),
            minimum_age_secs: 3 * 24 * 3600,
            eligible_at: at(5, 0, 0),
        }]
    );
}

#[test]
fn maximum_version_and_requirements_calendar_and_semver() {
    type Row = (
        &'static str,
        &'static str,
        Option<&'static str>,
        Option<&'static str>,
        &'static [&'static str],
    );
    let table: &[Row] = &[
        ("20250101.1", "20250102.1", Some("20250102.1"), None, &[]),
        (
            "20250101.1",
            "20250102.1",
            Some("20250101.9"),
            None,
            &["above_maximum_version"],
        ),
        (
            "20250101.1",
            "20250102.1",
            Some("2.0.0"),
            None,
            &["mixed_version_schemes"],
        ),
        ("20250101.1", "20250102.1", None, Some("2025"), &[]),
        ("20250101.1", "20250102.1", None, Some("202501"), &[]),
        (
            "20250101.1",
            "20250102.1",
            None,
            Some("202412"),
            &["version_requirement_not_met"],
        ),
        (
            "20250101.1",
            "20250102.1",
            None,
            Some(">=1"),
            &["version_requirement_not_met"],
        ),
        ("1.0.0", "1.2.0", None, Some("~1.2"), &[]),
        (
            "1.0.0",
            "2.0.0",
            None,
            Some("^1"),
            &["version_requirement_not_met"],
        ),
        (
            "1.0.0",
            "2.0.0",
            Some("1.9.9"),
            Some("^1"),
            &["above_maximum_version", "version_requirement_not_met"],
        ),
        (
            "1.0.0",
            "1.1.0",
            None,
            Some("2025"),
            &["version_requirement_not_met"],
        ),
    ];
    let cases = table
        .iter()
        .map(|(running, candidate, maximum, requirement, want)| {
            let mut c = case("versions", want);
            c.current.version = v(running);
            c.release.version = v(candidate);
            c.policy.maximum_version = maximum.map(v);
            c.policy.version_requirement = requirement.map(|r| r.parse().unwrap());
            c
        })
        .collect();
    run(cases);

    let policy = UpdatePolicy {
        maximum_version: Some(v("2.0.0")),
        ..UpdatePolicy::default()
    };
    assert_eq!(
        evaluate(&current(), &release(), &policy, now()).reasons(),
        [SkipReason::MixedVersionSchemes {
            version: v("20250102.1"),
            other: v("2.0.0"),
            compared_with: ComparedWith::MaximumVersion,
        }]
    );
}

#[test]
fn holds_including_an_expired_one() {
    let mut cases = Vec::new();

    let mut c = case("hold without expiry", &["held"]);
    c.policy.hold = Some(Hold {
        reason: "incident 42".into(),
        expires_at: None,
    });
    cases.push(c);

    let mut c = case("hold until tomorrow", &["held"]);
    c.policy.hold = Some(Hold {
        reason: "change freeze".into(),
        expires_at: Some(at(4, 0, 0)),
    });
    cases.push(c);

    let mut c = case("expired hold", &[]);
    c.policy.hold = Some(Hold {
        reason: "change freeze".into(),
        expires_at: Some(at(3, 12, 0)),
    });
    cases.push(c);

    run(cases);
}

#[test]
fn quarantine_including_an_expired_entry_and_a_digest_match() {
    let mut cases = Vec::new();

    let mut c = case("quarantined version", &["quarantined"]);
    c.current.quarantine = vec![entry("20250102.1", None, at(3, 13, 0))];
    cases.push(c);

    let mut c = case("expired quarantine", &[]);
    c.current.quarantine = vec![entry("20250102.1", None, at(3, 12, 0))];
    cases.push(c);

    let mut c = case(
        "same image re-released under a new version",
        &["quarantined"],
    );
    c.current.quarantine = vec![entry("20250101.5", Some(digest(2)), at(4, 0, 0))];
    cases.push(c);

    let mut state = current();
    state.quarantine = vec![entry("20250101.5", Some(digest(2)), at(4, 0, 0))];
    assert_eq!(
        evaluate(&state, &release(), &UpdatePolicy::default(), now()).to_string(),
        "Skip the update: release 20250102.1 has the image of release 20250101.5, which is \
         quarantined after 2 failed attempts (ECS rolled the deployment back) until \
         2025-01-04T00:00:00Z."
    );

    let mut c = case("another version quarantined", &[]);
    c.current.quarantine = vec![entry("20250101.5", Some(digest(9)), at(4, 0, 0))];
    cases.push(c);

    let mut c = case(
        "two matching entries, both listed",
        &["quarantined", "quarantined"],
    );
    c.current.quarantine = vec![
        entry("20250102.1", None, at(4, 0, 0)),
        entry("20241201.1", Some(digest(2)), at(5, 0, 0)),
    ];
    cases.push(c);

    run(cases);
}

#[test]
fn quarantine_backoff_drives_retry_after() {
    let backoff = QuarantineBackoff {
        initial: Duration::from_secs(3600),
        maximum: Duration::from_secs(6 * 3600),
    };
    let failed_at = at(3, 0, 0);
    let first = QuarantineEntry::after_failure(None, &release(), "pull error", failed_at, &backoff);
    assert_eq!(first.attempts, 1);
    assert_eq!(first.retry_after, at(3, 1, 0));
    assert_eq!(first.image_digest.as_deref(), Some(digest(2).as_str()));
    let second =
        QuarantineEntry::after_failure(Some(&first), &release(), "pull error", failed_at, &backoff);
    assert_eq!((second.attempts, second.retry_after), (2, at(3, 2, 0)));
    let mut entry = second;
    for _ in 0..10 {
        entry = QuarantineEntry::after_failure(
            Some(&entry),
            &release(),
            "pull error",
            failed_at,
            &backoff,
        );
    }
    assert_eq!((entry.attempts, entry.retry_after), (12, at(3, 6, 0)));

    // An entry for another release does not count as a previous attempt.
    let mut other = release();
    other.version = v("20250109.1");
    other.image = format!("registry.example.com/runner@{}", digest(9))
        .parse()
        .unwrap();
    let fresh = QuarantineEntry::after_failure(Some(&entry), &other, "health", failed_at, &backoff);
    assert_eq!(fresh.attempts, 1);

    // The entry blocks until retry_after, then no longer.
    let mut state = current();
    state.quarantine = vec![first];
    let policy = UpdatePolicy::default();
    assert_eq!(
        codes(&evaluate(&state, &release(), &policy, at(3, 0, 59))),
        ["quarantined"]
    );
    assert!(evaluate(&state, &release(), &policy, at(3, 1, 0)).is_update());
}

#[test]
fn manual_rollback_holds_until_cleared() {
    let mut state = current();
    state.highest_successful_version = Some(v("20250101.7"));
    let policy = UpdatePolicy::default();
    let decision = evaluate(&state, &release(), &policy, now());
    assert_eq!(
        decision.reasons(),
        [SkipReason::HeldAfterManualRollback {
            running: v("20250101.1"),
            highest_successful: v("20250101.7"),
        }]
    );
    state.clear_manual_rollback();
    assert!(evaluate(&state, &release(), &policy, now()).is_update());

    let mut cases = Vec::new();
    let mut c = case("running the highest successful version", &[]);
    c.current.highest_successful_version = Some(v("20250101.1"));
    cases.push(c);
    let mut c = case("history in another scheme", &["mixed_version_schemes"]);
    c.current.highest_successful_version = Some(v("1.0.0"));
    cases.push(c);
    run(cases);
}

#[test]
fn expired_release_metadata() {
    let mut cases = Vec::new();
    let mut c = case("expired", &["release_expired"]);
    c.release.expires = Some(at(3, 12, 0));
    cases.push(c);
    let mut c = case("not yet expired", &[]);
    c.release.expires = Some(at(3, 12, 1));
    cases.push(c);
    run(cases);
}

#[test]
fn every_failing_rule_is_listed_in_rule_order() {
    let mut c = case(
        "everything fails",
        &[
            "auto_update_disabled",
            "channel_mismatch",
            "infrastructure_update_required",
            "not_newer",
            "same_image",
            "release_expired",
            "held",
            "held_after_manual_rollback",
            "quarantined",
            "above_maximum_version",
            "version_requirement_not_met",
            "release_too_new",
            "outside_update_window",
            "weekday_not_allowed",
        ],
    );
    c.policy = UpdatePolicy {
        channel: Channel::Stable,
        auto_update: false,
        window: hm(22, 0, 2, 0),
        allowed_weekdays: Some(vec![Weekday::Mon]),
        minimum_release_age: Some(Duration::from_secs(30 * 24 * 3600)),
        maximum_version: Some(v("20241231.1")),
        version_requirement: Some("2024".parse().unwrap()),
        hold: Some(Hold {
            reason: "incident".into(),
            expires_at: None,
        }),
        quarantine_backoff: QuarantineBackoff::default(),
    };
    c.release.channel = Channel::Latest;
    c.release.infra_version = Some("8".into());
    c.release.version = v("20250101.1");
    c.release.image = c.current.image.clone();
    c.release.expires = Some(at(1, 0, 0));
    c.current.highest_successful_version = Some(v("20250101.3"));
    c.current.quarantine = vec![entry("20250101.1", None, at(9, 0, 0))];

    let mut pair = case(
        "seed rules together",
        &[
            "channel_mismatch",
            "infrastructure_version_unknown",
            "mixed_version_schemes",
        ],
    );
    pair.release.channel = Channel::Latest;
    pair.release.infra_version = None;
    pair.release.version = v("3.0.0");

    let mut window_and_age = case(
        "window and age together",
        &["release_too_new", "outside_update_window"],
    );
    window_and_age.policy.window = hm(22, 0, 2, 0);
    window_and_age.policy.minimum_release_age = Some(Duration::from_secs(3 * 24 * 3600));

    run(vec![c, pair, window_and_age]);
}

#[test]
fn sentences_for_humans() {
    let policy = UpdatePolicy {
        hold: Some(Hold {
            reason: "incident 42".into(),
            expires_at: Some(at(4, 0, 0)),
        }),
        ..UpdatePolicy::default()
    };
    let mut state = current();
    state.quarantine = vec![entry("20250102.1", None, at(4, 6, 0))];
    let decision = evaluate(&state, &release(), &policy, now());
    assert_eq!(
        decision.to_string(),
        "Skip the update: an operator holds this runner at its current version until \
         2025-01-04T00:00:00Z (incident 42); release 20250102.1 is quarantined after 2 failed \
         attempts (ECS rolled the deployment back) until 2025-01-04T06:00:00Z."
    );

    let update = evaluate(&current(), &release(), &UpdatePolicy::default(), now());
    assert_eq!(
        update.to_string(),
        format!(
            "Update from 20250101.1 to 20250102.1 (image registry.example.com/runner:20250102.1@{}).",
            digest(2)
        )
    );

    let mut equal = release();
    equal.version = v("20250101.1");
    assert_eq!(
        evaluate(&current(), &equal, &UpdatePolicy::default(), now()).to_string(),
        "Skip the update: version 20250101.1 is already running."
    );
}

#[test]
fn json_form_carries_codes_and_round_trips() {
    let mut state = current();
    state.highest_successful_version = Some(v("20250101.7"));
    let mut candidate = release();
    candidate.infra_version = Some("8".into());
    let decision = evaluate(&state, &candidate, &UpdatePolicy::default(), now());
    let json = serde_json::to_value(&decision).unwrap();
    assert_eq!(json["decision"], "skip");
    assert_eq!(json["reasons"][0]["code"], "infrastructure_update_required");
    assert_eq!(json["reasons"][0]["required"], "8");
    assert_eq!(json["reasons"][0]["running"], "7");
    assert_eq!(json["reasons"][0]["template_url"], TEMPLATE);
    assert_eq!(json["reasons"][1]["code"], "held_after_manual_rollback");
    assert_eq!(
        decision.infrastructure_update_required(),
        Some((&"8".into(), TEMPLATE))
    );
    let back: Decision = serde_json::from_value(json).unwrap();
    assert_eq!(back, decision);

    let update = evaluate(&current(), &release(), &UpdatePolicy::default(), now());
    assert_eq!(update.infrastructure_update_required(), None);
    let json = serde_json::to_value(&update).unwrap();
    assert_eq!(json["decision"], "update");
    assert_eq!(json["to"], "20250102.1");
    assert_eq!(serde_json::from_value::<Decision>(json).unwrap(), update);
}

#[test]
fn codes_match_the_serialised_tag_and_are_listed() {
    let reasons = vec![
        SkipReason::AutoUpdateDisabled,
        SkipReason::ChannelMismatch {
            release_channel: Channel::Latest,
            configured_channel: Channel::Stable,
        },
        SkipReason::InfrastructureUpdateRequired {
            required: "8".into(),
            running: "7".into(),
            template_url: TEMPLATE.into(),
        },
        SkipReason::InfrastructureVersionUnknown {
            running: "7".into(),
            template_url: TEMPLATE.into(),
        },
        SkipReason::NotNewer {
            candidate: v("1.0.0"),
            running: v("1.1.0"),
        },
        SkipReason::MixedVersionSchemes {
            version: v("1.0.0"),
            other: v("20250101.1"),
            compared_with: ComparedWith::RunningVersion,
        },
        SkipReason::SameImage {
            image: release().image,
        },
        SkipReason::ReleaseExpired { expired_at: now() },
        SkipReason::Held {
            reason: "x".into(),
            expires_at: None,
        },
        SkipReason::HeldAfterManualRollback {
            running: v("1.0.0"),
            highest_successful: v("1.1.0"),
        },
        SkipReason::Quarantined {
            candidate: v("1.1.0"),
            version: v("1.1.0"),
            reason: "x".into(),
            attempts: 1,
            retry_after: now(),
        },
        SkipReason::AboveMaximumVersion {
            candidate: v("2.0.0"),
            maximum: v("1.0.0"),
        },
        SkipReason::VersionRequirementNotMet {
            candidate: v("2.0.0"),
            requirement: "^1".parse().unwrap(),
        },
        SkipReason::ReleaseTooNew {
            released_at: now(),
            minimum_age_secs: 60,
            eligible_at: now(),
        },
        SkipReason::ReleaseDateUnknown {
            minimum_age_secs: 60,
        },
        SkipReason::WaveNotOpen {
            wave: 2,
            of: 3,
            fleet_percentage: "12.5".parse().unwrap(),
            position: Some(update_policy::WaveSeed::at_percent(10.0).position()),
            released_at: now(),
            opens_at: now(),
        },
        SkipReason::WaveScheduleUndated { waves: 1 },
        SkipReason::OutsideUpdateWindow {
            window: hm(22, 0, 2, 0).unwrap(),
            next_opens_at: now(),
        },
        SkipReason::WeekdayNotAllowed {
            weekday: Weekday::Sat,
            allowed: vec![Weekday::Mon, Weekday::Tue],
        },
    ];
    let codes: Vec<&str> = reasons.iter().map(SkipReason::code).collect();
    assert_eq!(codes, SkipReason::ALL_CODES);
    for reason in &reasons {
        let json = serde_json::to_value(reason).unwrap();
        assert_eq!(json["code"], reason.code());
        assert!(
            reason
                .code()
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_')
        );
        assert_eq!(&serde_json::from_value::<SkipReason>(json).unwrap(), reason);
        let sentence = reason.to_string();
        assert!(
            !sentence.is_empty() && !sentence.ends_with('.'),
            "{sentence}"
        );
    }
}
