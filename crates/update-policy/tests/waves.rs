//! Staged rollout waves in `evaluate`: eligibility is monotone in time for
//! a fixed seed, every runner is eligible once the last wave opens, the
//! share of 10,000 runners eligible at any time matches the schedule, and a
//! release without waves is eligible for all at once.

use std::{sync::OnceLock, time::Duration};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use proptest::prelude::*;
use runner_version::{Channel, FleetPercentage, Release, Wave, WaveSchedule};
use update_policy::{CurrentState, Decision, SkipReason, UpdatePolicy, WaveSeed, evaluate};

const FLEET: usize = 10_000;

fn digest(n: u8) -> String {
    format!("sha256:{}", format!("{n:02x}").repeat(32))
}

fn released_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 10, 9, 0, 0).unwrap()
}

fn release(waves: WaveSchedule) -> Release {
    Release {
        version: "20250110.2".parse().unwrap(),
        channel: Channel::Stable,
        image: format!("registry.example.com/runner@{}", digest(2))
            .parse()
            .unwrap(),
        proxy_image: None,
        infra_version: Some("7".into()),
        template_url: "https://releases.example.com/infra-7.json".into(),
        template_sha256: None,
        released_at: Some(released_at()),
        expires: None,
        waves,
    }
}

fn current(seed: Option<WaveSeed>) -> CurrentState {
    let state = CurrentState::new(
        "20250101.1".parse().unwrap(),
        format!("registry.example.com/runner@{}", digest(1))
            .parse()
            .unwrap(),
        "7".into(),
    );
    match seed {
        Some(seed) => state.with_wave_seed(seed),
        None => state,
    }
}

fn eligible(seed: Option<WaveSeed>, release: &Release, now: DateTime<Utc>) -> bool {
    evaluate(&current(seed), release, &UpdatePolicy::default(), now).is_update()
}

/// The seeds of `runner-0` … `runner-9999`, as a fleet would draw them.
fn fleet() -> &'static [WaveSeed] {
    static SEEDS: OnceLock<Vec<WaveSeed>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        (0..FLEET)
            .map(|i| WaveSeed::from_identity(&format!("runner-{i}")))
            .collect()
    })
}

/// 1 to 5 waves: strictly increasing starts (the first possibly at once)
/// and shares, the last at 100 %.
fn schedule() -> impl Strategy<Value = WaveSchedule> {
    (
        prop::collection::btree_set(1u16..10_000, 0..5),
        prop::bool::ANY,
        prop::collection::vec(1u64..48 * 60, 5),
    )
        .prop_map(|(shares, start_at_once, gaps)| {
            let shares: Vec<u16> = shares.into_iter().chain([10_000]).collect();
            let mut start = if start_at_once { 0 } else { gaps[0] * 60 };
            let waves = shares
                .iter()
                .enumerate()
                .map(|(i, bp)| {
                    if i > 0 {
                        start += gaps[i] * 60;
                    }
                    Wave::new(
                        Duration::from_secs(start),
                        FleetPercentage::from_basis_points(*bp).unwrap(),
                    )
                })
                .collect();
            WaveSchedule::new(waves).unwrap()
        })
}

fn seed() -> impl Strategy<Value = Option<WaveSeed>> {
    proptest::option::weighted(0.9, any::<u64>().prop_map(WaveSeed::from_raw))
}

/// An offset from the release, in seconds: a day before to a week after.
fn offset() -> impl Strategy<Value = i64> {
    -86_400i64..7 * 86_400
}

fn at(offset: i64) -> DateTime<Utc> {
    released_at() + TimeDelta::seconds(offset)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn eligibility_is_monotone_in_time(
        schedule in schedule(),
        seed in seed(),
        a in offset(),
        b in offset(),
    ) {
        let (early, late) = (a.min(b), a.max(b));
        let release = release(schedule);
        if eligible(seed, &release, at(early)) {
            prop_assert!(eligible(seed, &release, at(late)), "eligible at {early}s, not at {late}s");
        }
    }

    #[test]
    fn the_wave_opens_exactly_at_its_opens_at(schedule in schedule(), seed in seed()) {
        let release = release(schedule);
        // Before the release no wave is open, so the reason says when.
        let before = evaluate(&current(seed), &release, &UpdatePolicy::default(), at(-1));
        let opens_at = match before.reasons() {
            [SkipReason::WaveNotOpen { opens_at, position, .. }] => {
                prop_assert_eq!(*position, seed.map(WaveSeed::position));
                *opens_at
            }
            other => return Err(TestCaseError::fail(format!("{other:?}"))),
        };
        prop_assert!(!eligible(seed, &release, opens_at - TimeDelta::seconds(1)));
        prop_assert!(eligible(seed, &release, opens_at));
        let assignment = release.waves.wave_of(
            seed.map_or(runner_version::FleetPosition::LAST, WaveSeed::position),
        ).unwrap();
        prop_assert_eq!(opens_at, assignment.wave.opens_at(released_at()));
    }

    #[test]
    fn every_runner_is_eligible_once_the_last_wave_opens(
        schedule in schedule(),
        seed in seed(),
        after in 0i64..30 * 86_400,
    ) {
        let last = schedule.waves().last().unwrap().start_after.as_secs() as i64;
        let release = release(schedule);
        prop_assert!(eligible(seed, &release, at(last + after)));
    }

    #[test]
    fn a_release_without_waves_is_eligible_for_all_at_once(seed in seed(), now in offset()) {
        prop_assert!(eligible(seed, &release(WaveSchedule::default()), at(now)));
    }
}

/// When `seed` may update `release`, as the decision says: `None` when it
/// may at once, else the `opens_at` of its `WaveNotOpen` reason.
fn opens_at(seed: WaveSeed, release: &Release, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let decision = evaluate(&current(Some(seed)), release, &UpdatePolicy::default(), now);
    decision.reasons().iter().find_map(|reason| match reason {
        SkipReason::WaveNotOpen { opens_at, .. } => Some(*opens_at),
        _ => None,
    })
}

proptest! {
    // Each case evaluates the whole fleet of 10,000 runners, so a failure
    // is reported after a few shrink steps, not after minutes of them.
    #![proptest_config(ProptestConfig {
        cases: 16,
        max_shrink_iters: 16,
        ..ProptestConfig::default()
    })]

    /// Counts the runners the decision lets through at each wave's start
    /// (and just before): the share must be the wave's, within 4 standard
    /// deviations of a binomial draw. (`eligibility_is_monotone_in_time`
    /// and `the_wave_opens_exactly_at_its_opens_at` tie `opens_at` to
    /// `is_update`.)
    #[test]
    fn the_eligible_share_matches_the_schedule(schedule in schedule()) {
        let release = release(schedule.clone());
        let before = at(-1);
        let opens: Vec<DateTime<Utc>> = fleet()
            .iter()
            .map(|seed| opens_at(*seed, &release, before).expect("no wave is open before the release"))
            .collect();
        let mut checks = vec![(-1, 0u16)];
        let mut previous = 0;
        for wave in schedule.waves() {
            let start = wave.start_after.as_secs() as i64;
            checks.push((start - 1, previous));
            checks.push((start, wave.fleet_percentage.basis_points()));
            previous = wave.fleet_percentage.basis_points();
        }
        for (offset, basis_points) in checks {
            let now = at(offset);
            let count = opens.iter().filter(|opens_at| **opens_at <= now).count();
            let p = f64::from(basis_points) / 10_000.0;
            let expected = FLEET as f64 * p;
            let sigma = (FLEET as f64 * p * (1.0 - p)).sqrt();
            prop_assert!(
                (count as f64 - expected).abs() <= 4.0 * sigma,
                "{offset}s after release: {count} of {FLEET} eligible, schedule says {p}"
            );
        }
        // Spot-check the counting against the decision itself.
        let last = schedule.waves().last().unwrap().start_after.as_secs() as i64;
        for seed in fleet().iter().take(200) {
            prop_assert_eq!(opens_at(*seed, &release, at(last)), None);
        }
    }
}

#[test]
fn the_share_check_can_fail() {
    // Guards the sampling test: a fleet whose seeds all sit at the front
    // would be all eligible in a 10 % wave, far outside 4 standard deviations.
    let schedule = WaveSchedule::new(vec![
        Wave::new(Duration::ZERO, FleetPercentage::from_percent(10).unwrap()),
        Wave::new(
            Duration::from_secs(3600),
            FleetPercentage::from_percent(100).unwrap(),
        ),
    ])
    .unwrap();
    let release = release(schedule);
    let front = (0..FLEET as u64)
        .filter(|i| eligible(Some(WaveSeed::from_raw(*i)), &release, at(0)))
        .count();
    assert_eq!(front, FLEET);
    let spread = fleet()
        .iter()
        .filter(|s| eligible(Some(**s), &release, at(0)))
        .count();
    assert!((900..=1100).contains(&spread), "{spread}");
}

#[test]
fn the_reason_explains_itself() {
    let hours = |h: u64| Duration::from_secs(h * 3600);
    let pct = |p| FleetPercentage::from_percent(p).unwrap();
    let schedule = WaveSchedule::new(vec![
        Wave::new(hours(0), pct(1)),
        Wave::new(hours(6), pct(10)),
        Wave::new(hours(24), pct(100)),
    ])
    .unwrap();
    let release = release(schedule);
    let now = at(3600);

    let seeded = evaluate(
        &current(Some(WaveSeed::at_percent(7.25))),
        &release,
        &UpdatePolicy::default(),
        now,
    );
    assert_eq!(seeded.reason_codes(), ["wave_not_open"]);
    assert_eq!(
        seeded.to_string(),
        "Skip the update: the release rolls out in 3 waves and this runner, at position 7.25 % \
         of the fleet, is in wave 2 (the first 10 % of the fleet), which opens at \
         2025-01-10T15:00:00Z."
    );
    let json = serde_json::to_value(&seeded).unwrap();
    assert_eq!(json["reasons"][0]["wave"], 2);
    assert_eq!(json["reasons"][0]["fleet_percentage"], 10);
    assert_eq!(json["reasons"][0]["opens_at"], "2025-01-10T15:00:00Z");
    assert_eq!(serde_json::from_value::<Decision>(json).unwrap(), seeded);

    let unseeded = evaluate(&current(None), &release, &UpdatePolicy::default(), now);
    assert_eq!(
        unseeded.to_string(),
        "Skip the update: the release rolls out in 3 waves and this runner has no wave seed, so \
         it waits for the last wave (wave 3, the whole fleet), which opens at \
         2025-01-11T09:00:00Z; give the runner an identity to take its place in an earlier wave."
    );

    // In the first wave, the runner updates at once.
    let front = current(Some(WaveSeed::at_percent(0.5)));
    assert!(evaluate(&front, &release, &UpdatePolicy::default(), now).is_update());
}

#[test]
fn waves_without_a_release_date_never_open() {
    let schedule =
        WaveSchedule::new(vec![Wave::new(Duration::ZERO, FleetPercentage::ALL)]).unwrap();
    let mut release = release(schedule);
    release.released_at = None;
    let decision = evaluate(
        &current(Some(WaveSeed::from_raw(0))),
        &release,
        &UpdatePolicy::default(),
        at(365 * 86_400),
    );
    assert_eq!(decision.reason_codes(), ["wave_schedule_undated"]);
    assert!(
        decision
            .to_string()
            .contains("publisher must set released_at"),
        "{decision}"
    );
}
