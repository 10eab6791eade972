//! Staged rollout waves through the whole cycle: a runner whose wave has not
//! opened skips with `WaveNotOpen` and touches nothing; once its wave opens
//! the same updater deploys; a runner pinned at 0 % (a canary) deploys at
//! once. Simulated: ECS (`SimulatedEcs`), the clock (`ManualClock`).

mod common;

use std::time::Duration;

use common::*;
use runner_updater::CycleOutcome;
use runner_version::{FleetPercentage, Release, Wave, WaveSchedule};
use update_clock::Clock;
use update_policy::{SkipReason, WaveSeed};

/// 10 % of the fleet at once, everyone 6 hours later.
fn waved(fx: &Fixture) -> Release {
    let mut r = release("20250102.1", "02", "7");
    r.released_at = Some(fx.clock.now());
    r.waves = WaveSchedule::new(vec![
        Wave::new(Duration::ZERO, FleetPercentage::from_percent(10).unwrap()),
        Wave::new(
            Duration::from_secs(6 * 3600),
            FleetPercentage::from_percent(100).unwrap(),
        ),
    ])
    .unwrap();
    r
}

#[tokio::test]
async fn a_runner_waits_for_its_wave_then_deploys() {
    let fx = Fixture::new();
    let release = waved(&fx);
    let second_wave = release.released_at.unwrap() + chrono::Duration::hours(6);
    fx.publish(release);
    let mut config = Fixture::config("host-a");
    config.wave_seed = Some(WaveSeed::at_percent(50.0));
    let updater = fx.updater_with("host-a", std::sync::Arc::new(fx.journal.clone()), config);

    let report = updater.run_once().await.unwrap();
    assert_eq!(
        report.outcome,
        CycleOutcome::Skipped,
        "{}",
        report.summary()
    );
    let decision = report.decision.unwrap();
    let wave = decision
        .reasons()
        .iter()
        .find(|r| matches!(r, SkipReason::WaveNotOpen { .. }))
        .unwrap_or_else(|| panic!("no WaveNotOpen in {decision}"));
    let SkipReason::WaveNotOpen { opens_at, wave, .. } = wave else {
        unreachable!()
    };
    assert_eq!(*wave, 2);
    assert_eq!(*opens_at, second_wave);
    assert_eq!(fx.mutations(), 0, "a closed wave touches nothing");

    fx.clock.set_now(*opens_at);
    let report = updater.run_once().await.unwrap();
    assert_eq!(
        report.outcome,
        CycleOutcome::Succeeded,
        "{}",
        report.summary()
    );
    assert_eq!(
        fx.primary_image("runner").await,
        runner_image("20250102.1", "02")
    );
}

#[tokio::test]
async fn a_canary_pinned_at_zero_deploys_in_the_first_wave() {
    let fx = Fixture::new();
    fx.publish(waved(&fx));
    let mut config = Fixture::config("host-a");
    config.wave_seed = Some(WaveSeed::at_percent(0.0));
    let updater = fx.updater_with("host-a", std::sync::Arc::new(fx.journal.clone()), config);
    let report = updater.run_once().await.unwrap();
    assert_eq!(
        report.outcome,
        CycleOutcome::Succeeded,
        "{}",
        report.summary()
    );
}

#[test]
fn the_default_seed_is_drawn_from_the_runner_identity() {
    let config = Fixture::config("host-a");
    assert_eq!(config.wave_seed, None);
    assert_eq!(
        config.effective_wave_seed(),
        WaveSeed::from_identity(RUNNER_KEY)
    );
    let mut other = Fixture::config("host-b");
    other.runner = "another-runner".into();
    assert_ne!(other.effective_wave_seed(), config.effective_wave_seed());
}
