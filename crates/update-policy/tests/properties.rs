//! Property tests of `evaluate`: `Update` exactly when an independent
//! oracle finds every rule satisfied (and then there are no reasons);
//! adding a failing condition never turns `Skip` into `Update` nor drops a
//! reason; equal inputs give equal decisions.

use std::{collections::BTreeSet, time::Duration};

use chrono::{DateTime, Datelike, NaiveTime, TimeDelta, TimeZone, Timelike, Utc, Weekday};
use proptest::prelude::*;
use runner_version::{Channel, FleetPercentage, ImageRef, Release, Version, Wave, WaveSchedule};
use update_policy::{
    CurrentState, Decision, Hold, QuarantineBackoff, QuarantineEntry, UpdatePolicy, UpdateWindow,
    VersionRequirement, WaveSeed, evaluate,
};

const WEEK: [Weekday; 7] = [
    Weekday::Mon,
    Weekday::Tue,
    Weekday::Wed,
    Weekday::Thu,
    Weekday::Fri,
    Weekday::Sat,
    Weekday::Sun,
];

/// Monday 6 January 2025, midnight UTC.
fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 6, 0, 0, 0).unwrap()
}

fn minutes(m: i64) -> DateTime<Utc> {
    base() + TimeDelta::minutes(m)
}

fn digest(n: u8) -> String {
    format!("sha256:{}", format!("{n:02x}").repeat(32))
}

fn image(n: u8) -> ImageRef {
    format!("registry.example.com/runner@{}", digest(n))
        .parse()
        .unwrap()
}

fn version() -> impl Strategy<Value = Version> {
    prop_oneof![
        6 => prop::sample::select(vec!["20241231.9", "20250101.1", "20250101.2", "20250102.1", "20250110.3"]),
        1 => prop::sample::select(vec!["1.0.0", "1.2.0", "2.0.0-rc.1", "2.0.0"]),
    ]
    .prop_map(|s| s.parse().unwrap())
}

/// A time within three days before and two weeks after `base()`.
fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    (-3 * 1440i64..14 * 1440).prop_map(minutes)
}

fn channel() -> impl Strategy<Value = Channel> {
    prop_oneof![9 => Just(Channel::Stable), 1 => Just(Channel::Latest)]
}

fn window() -> impl Strategy<Value = UpdateWindow> {
    (0u32..1440, 1u32..1440).prop_map(|(start, length)| {
        let end = (start + length) % 1440;
        let t = |m: u32| NaiveTime::from_hms_opt(m / 60, m % 60, 0).unwrap();
        UpdateWindow::new(t(start), t(end)).unwrap()
    })
}

fn weekdays() -> impl Strategy<Value = Vec<Weekday>> {
    prop::sample::subsequence(WEEK.to_vec(), 1..=7)
}

fn requirement() -> impl Strategy<Value = VersionRequirement> {
    prop::sample::select(vec![
        "2025",
        "202501",
        "20250101",
        "2024",
        "^1",
        ">=2.0.0-rc.1",
    ])
    .prop_map(|s| s.parse().unwrap())
}

fn hold() -> impl Strategy<Value = Hold> {
    proptest::option::of(instant()).prop_map(|expires_at| Hold {
        reason: "operator".into(),
        expires_at,
    })
}

/// Leans newer than `version()`, so that updates are common enough.
fn candidate_version() -> impl Strategy<Value = Version> {
    prop_oneof![
        3 => prop::sample::select(vec!["20250102.1", "20250110.3"])
            .prop_map(|s| s.parse::<Version>().unwrap()),
        1 => version(),
    ]
}

fn release() -> impl Strategy<Value = Release> {
    (
        candidate_version(),
        channel(),
        2u8..=4,
        prop_oneof![8 => Just(Some("7")), 1 => Just(Some("8")), 1 => Just(None)],
        proptest::option::weighted(0.8, instant()),
        proptest::option::weighted(0.1, instant()),
        proptest::option::weighted(0.2, waves()),
    )
        .prop_map(
            |(version, channel, image_n, infra, released_at, expires, waves)| Release {
                version,
                channel,
                image: image(image_n),
                proxy_image: None,
                infra_version: infra.map(Into::into),
                template_url: "https://releases.example.com/infra.json".into(),
                template_sha256: None,
                released_at,
                expires,
                waves: waves.unwrap_or_default(),
            },
        )
}

/// 1 to 3 waves over up to two days, the last at 100 %.
fn waves() -> impl Strategy<Value = WaveSchedule> {
    (
        prop::collection::btree_set(1u16..10_000, 0..3),
        prop::collection::btree_set(0u64..48 * 60, 3),
    )
        .prop_map(|(shares, starts)| {
            let shares = shares.into_iter().chain([10_000]);
            let waves = shares
                .zip(starts)
                .map(|(bp, minute)| {
                    Wave::new(
                        Duration::from_secs(minute * 60),
                        FleetPercentage::from_basis_points(bp).unwrap(),
                    )
                })
                .collect();
            WaveSchedule::new(waves).unwrap()
        })
}

fn quarantine_entry() -> impl Strategy<Value = QuarantineEntry> {
    (version(), proptest::option::of(1u8..=3), 1u32..5, instant()).prop_map(
        |(version, digest_n, attempts, retry_after)| QuarantineEntry {
            version,
            image_digest: digest_n.map(digest),
            reason: "failed".into(),
            attempts,
            retry_after,
        },
    )
}

fn current() -> impl Strategy<Value = CurrentState> {
    (
        version(),
        1u8..=3,
        prop_oneof![9 => Just("7"), 1 => Just("8")],
        proptest::option::weighted(0.3, version()),
        prop::collection::vec(quarantine_entry(), 0..2),
        proptest::option::weighted(0.8, any::<u64>().prop_map(WaveSeed::from_raw)),
    )
        .prop_map(
            |(version, image_n, infra, highest, quarantine, wave_seed)| CurrentState {
                version,
                image: image(image_n),
                infra_version: infra.into(),
                highest_successful_version: highest,
                quarantine,
                wave_seed,
            },
        )
}

fn policy() -> impl Strategy<Value = UpdatePolicy> {
    (
        channel(),
        prop::bool::weighted(0.95),
        proptest::option::weighted(0.3, window()),
        proptest::option::weighted(0.2, weekdays()),
        proptest::option::weighted(0.2, (0u64..72).prop_map(|h| Duration::from_secs(h * 3600))),
        proptest::option::weighted(0.2, version()),
        proptest::option::weighted(0.2, requirement()),
        proptest::option::weighted(0.2, hold()),
    )
        .prop_map(
            |(
                channel,
                auto_update,
                window,
                allowed_weekdays,
                minimum_release_age,
                maximum_version,
                version_requirement,
                hold,
            )| {
                UpdatePolicy {
                    channel,
                    auto_update,
                    window,
                    allowed_weekdays,
                    minimum_release_age,
                    maximum_version,
                    version_requirement,
                    hold,
                    quarantine_backoff: QuarantineBackoff::default(),
                }
            },
        )
}

fn input() -> impl Strategy<Value = (CurrentState, Release, UpdatePolicy, DateTime<Utc>)> {
    (
        current(),
        release(),
        policy(),
        (0i64..14 * 1440).prop_map(minutes),
    )
}

/// The rules, written again from the specification in minute-of-day
/// arithmetic, without the crate's window or decision code.
fn oracle_eligible(
    current: &CurrentState,
    release: &Release,
    policy: &UpdatePolicy,
    now: DateTime<Utc>,
) -> bool {
    let newer = |a: &Version, b: &Version| a.is_newer_than(b);
    let minute_of_day = |t: NaiveTime| t.hour() * 60 + t.minute();
    let now_minute = minute_of_day(now.time());
    let (in_window, judged_day) = match &policy.window {
        None => (true, now.weekday()),
        Some(window) => {
            let (s, e) = (minute_of_day(window.start()), minute_of_day(window.end()));
            if s < e {
                (s <= now_minute && now_minute < e, now.weekday())
            } else if now_minute >= s {
                (true, now.weekday())
            } else if now_minute < e {
                (true, now.weekday().pred())
            } else {
                (false, now.weekday())
            }
        }
    };
    policy.auto_update
        && release.channel == policy.channel
        && release.infra_version.as_ref() == Some(&current.infra_version)
        && matches!(newer(&release.version, &current.version), Ok(true))
        && release.image.digest() != current.image.digest()
        && release.expires.is_none_or(|expiry| now < expiry)
        && policy
            .hold
            .as_ref()
            .is_none_or(|hold| hold.expires_at.is_some_and(|expiry| now >= expiry))
        && current
            .highest_successful_version
            .as_ref()
            .is_none_or(|highest| matches!(newer(highest, &current.version), Ok(false)))
        && !current.quarantine.iter().any(|entry| {
            (entry.version == release.version
                || entry.image_digest.as_deref() == release.image.digest())
                && now < entry.retry_after
        })
        && policy
            .maximum_version
            .as_ref()
            .is_none_or(|maximum| matches!(newer(&release.version, maximum), Ok(false)))
        && policy
            .version_requirement
            .as_ref()
            .is_none_or(|requirement| requirement.matches(&release.version))
        && policy.minimum_release_age.is_none_or(|age| {
            release
                .released_at
                .is_some_and(|at| at + TimeDelta::from_std(age).unwrap() <= now)
        })
        && wave_open(current, release, now)
        && in_window
        && policy
            .allowed_weekdays
            .as_ref()
            .is_none_or(|days| days.contains(&judged_day))
}

/// Some wave that has opened covers the runner (a runner without a seed
/// stands last); no waves: everyone at once.
fn wave_open(current: &CurrentState, release: &Release, now: DateTime<Utc>) -> bool {
    let position = u128::from(current.wave_seed.map_or(u64::MAX, |seed| seed.raw()));
    release.waves.is_empty()
        || release.released_at.is_some_and(|released_at| {
            release.waves.waves().iter().any(|wave| {
                let opened = released_at + TimeDelta::from_std(wave.start_after).unwrap() <= now;
                let covers =
                    position * 10_000 < u128::from(wave.fleet_percentage.basis_points()) << 64;
                opened && covers
            })
        })
}

fn codes(decision: &Decision) -> BTreeSet<&'static str> {
    decision.reason_codes().into_iter().collect()
}

/// Every way to add one failing condition to an input without removing a
/// condition it already has.
fn tightenings(
    current: &CurrentState,
    release: &Release,
    policy: &UpdatePolicy,
    now: DateTime<Utc>,
) -> Vec<(&'static str, CurrentState, Release, UpdatePolicy)> {
    let mut out = Vec::new();
    let same = || (current.clone(), release.clone(), policy.clone());

    let (c, r, mut p) = same();
    p.auto_update = false;
    out.push(("auto-update off", c, r, p));

    let (c, r, mut p) = same();
    p.channel = Channel::parse("never-published").unwrap();
    out.push(("other channel", c, r, p));

    let (c, r, mut p) = same();
    p.hold = Some(Hold {
        reason: "added".into(),
        expires_at: None,
    });
    out.push(("hold", c, r, p));

    let (mut c, r, p) = same();
    c.quarantine.push(QuarantineEntry {
        version: release.version.clone(),
        image_digest: None,
        reason: "added".into(),
        attempts: 1,
        retry_after: now + TimeDelta::hours(1),
    });
    out.push(("quarantine", c, r, p));

    let (c, mut r, p) = same();
    r.expires = Some(r.expires.map_or(now, |expiry| expiry.min(now)));
    out.push(("expired metadata", c, r, p));

    if current.highest_successful_version.is_none() {
        let (mut c, r, p) = same();
        let higher = match current.version {
            Version::Calendar(_) => "20991231.0",
            Version::Semver(_) => "99.0.0",
        };
        c.highest_successful_version = Some(higher.parse().unwrap());
        out.push(("manual rollback", c, r, p));
    }

    if policy.window.is_none() {
        let (c, r, mut p) = same();
        let t = |at: DateTime<Utc>| at.time();
        p.window = Some(
            UpdateWindow::new(t(now + TimeDelta::hours(1)), t(now + TimeDelta::hours(2))).unwrap(),
        );
        out.push(("window elsewhere", c, r, p));
    }

    let judged = policy
        .window
        .and_then(|w| w.opened_on(now))
        .unwrap_or_else(|| now.date_naive())
        .weekday();
    let narrowed: Vec<Weekday> = policy
        .allowed_weekdays
        .clone()
        .unwrap_or_else(|| WEEK.to_vec())
        .into_iter()
        .filter(|d| *d != judged)
        .collect();
    if !narrowed.is_empty() {
        let (c, r, mut p) = same();
        p.allowed_weekdays = Some(narrowed);
        out.push(("weekday removed", c, r, p));
    }

    if policy.minimum_release_age.is_none() {
        let (c, r, mut p) = same();
        let age = release
            .released_at
            .map_or(TimeDelta::zero(), |at| (now - at).max(TimeDelta::zero()));
        p.minimum_release_age = Some((age + TimeDelta::hours(1)).to_std().unwrap());
        out.push(("minimum age", c, r, p));
    }

    if policy.maximum_version.is_none() {
        let (c, r, mut p) = same();
        let lowest = match release.version {
            Version::Calendar(_) => "10000101.0",
            Version::Semver(_) => "0.0.0-0",
        };
        p.maximum_version = Some(lowest.parse().unwrap());
        out.push(("maximum version", c, r, p));
    }

    if policy.version_requirement.is_none() {
        let (c, r, mut p) = same();
        let nothing = match release.version {
            Version::Calendar(_) => "1000",
            Version::Semver(_) => "=0.0.0-0",
        };
        p.version_requirement = Some(nothing.parse().unwrap());
        out.push(("requirement", c, r, p));
    }

    if release.waves.is_empty() {
        let (c, mut r, p) = same();
        let not_yet = release
            .released_at
            .map_or(TimeDelta::zero(), |at| (now - at).max(TimeDelta::zero()))
            + TimeDelta::hours(1);
        r.waves = WaveSchedule::new(vec![Wave::new(
            not_yet.to_std().unwrap(),
            FleetPercentage::ALL,
        )])
        .unwrap();
        out.push(("waves", c, r, p));
    }

    if release.infra_version.is_some() {
        let (c, mut r, p) = same();
        r.infra_version = Some("never-deployed".into());
        out.push(("other infrastructure", c, r, p));
    }

    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn update_iff_no_reasons_and_every_rule_holds((current, release, policy, now) in input()) {
        let decision = evaluate(&current, &release, &policy, now);
        let oracle = oracle_eligible(&current, &release, &policy, now);
        prop_assert_eq!(decision.is_update(), oracle, "{}", decision);
        prop_assert_eq!(decision.is_update(), decision.reasons().is_empty());
        if let Decision::Update { to, image, .. } = &decision {
            prop_assert_eq!(to, &release.version);
            prop_assert_eq!(image, &release.image);
        }
    }

    #[test]
    fn time_rules_agree_with_the_oracle(
        window in proptest::option::weighted(0.8, window()),
        allowed_weekdays in proptest::option::weighted(0.8, weekdays()),
        minimum_release_age in proptest::option::of((0u64..72).prop_map(|h| Duration::from_secs(h * 3600))),
        hold in proptest::option::weighted(0.3, hold()),
        released_at in proptest::option::weighted(0.9, instant()),
        now in (0i64..14 * 1440).prop_map(minutes),
    ) {
        let current = CurrentState::new("20250101.1".parse().unwrap(), image(1), "7".into());
        let release = Release {
            version: "20250102.1".parse().unwrap(),
            channel: Channel::Stable,
            image: image(2),
            proxy_image: None,
            infra_version: Some("7".into()),
            template_url: "https://releases.example.com/infra.json".into(),
            template_sha256: None,
            released_at,
            expires: None,
            waves: Default::default(),
        };
        let policy = UpdatePolicy { window, allowed_weekdays, minimum_release_age, hold, ..UpdatePolicy::default() };
        let decision = evaluate(&current, &release, &policy, now);
        prop_assert_eq!(decision.is_update(), oracle_eligible(&current, &release, &policy, now), "{}", decision);
    }

    #[test]
    fn adding_a_failing_condition_never_helps((current, release, policy, now) in input()) {
        let before = evaluate(&current, &release, &policy, now);
        for (what, c, r, p) in tightenings(&current, &release, &policy, now) {
            let after = evaluate(&c, &r, &p, now);
            prop_assert!(!after.is_update(), "{}: {}", what, after);
            prop_assert!(
                codes(&before).is_subset(&codes(&after)),
                "{}: before {:?} after {:?}", what, codes(&before), codes(&after)
            );
        }
    }

    #[test]
    fn equal_inputs_give_equal_decisions((current, release, policy, now) in input()) {
        let first = evaluate(&current, &release, &policy, now);
        prop_assert_eq!(&first, &evaluate(&current.clone(), &release.clone(), &policy.clone(), now));
        // Inputs that went through their serde form are equal inputs too.
        let current2: CurrentState = serde_json::from_str(&serde_json::to_string(&current).unwrap()).unwrap();
        let release2: Release = serde_json::from_str(&serde_json::to_string(&release).unwrap()).unwrap();
        let policy2: UpdatePolicy = serde_json::from_str(&serde_json::to_string(&policy).unwrap()).unwrap();
        prop_assert_eq!(&first, &evaluate(&current2, &release2, &policy2, now));
        let decision2: Decision = serde_json::from_str(&serde_json::to_string(&first).unwrap()).unwrap();
        prop_assert_eq!(&first, &decision2);
    }
}

/// Guards the properties above against a vacuous generator: both outcomes,
/// and every reason code, must actually occur.
#[test]
fn the_generator_reaches_updates_and_every_reason() {
    use proptest::{
        strategy::ValueTree,
        test_runner::{Config, TestRng, TestRunner},
    };
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::deterministic_rng(Config::default().rng_algorithm),
    );
    let strategy = input();
    let mut updates = 0;
    let mut seen = BTreeSet::new();
    const SAMPLES: usize = 4000;
    for _ in 0..SAMPLES {
        let (current, release, policy, now) = strategy.new_tree(&mut runner).unwrap().current();
        let decision = evaluate(&current, &release, &policy, now);
        updates += usize::from(decision.is_update());
        seen.extend(codes(&decision));
    }
    assert!(
        updates * 20 >= SAMPLES,
        "only {updates} updates in {SAMPLES} samples"
    );
    let all: BTreeSet<&str> = update_policy::SkipReason::ALL_CODES
        .iter()
        .copied()
        .collect();
    assert_eq!(
        seen,
        all,
        "reason codes never produced: {:?}",
        all.difference(&seen)
    );
}
