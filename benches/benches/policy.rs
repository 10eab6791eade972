//! How long `update_policy::evaluate` takes per decision.
//!
//! Three inputs: the default (seed) policy on an eligible release, every
//! optional rule switched on and satisfied (the longest path to `Update`),
//! and a release failing many rules (the longest `Skip`, with every reason
//! built). Criterion reports the time per call, i.e. per decision.

use std::{hint::black_box, time::Duration};

use chrono::{DateTime, TimeZone, Utc, Weekday};
use criterion::{Criterion, criterion_group, criterion_main};
use runner_version::{Channel, Release};
use update_policy::{CurrentState, Hold, QuarantineEntry, UpdatePolicy, UpdateWindow, evaluate};
fn digest(n: u8) -> String {
    format!("sha256:{}", format!("{n:02x}").repeat(32))
}

fn release() -> Release {
    Release {
        version: "20250102.1".parse().unwrap(),
        channel: Channel::Stable,
        image: format!(
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/runner:20250102.1@{}",
            digest(2)
        )
        .parse()
        .unwrap(),
        proxy_image: None,
        infra_version: Some("7".into()),
        template_url: "https://releases.example.com/infra-7.json".into(),
        template_sha256: None,
        released_at: Some(Utc.with_ymd_and_hms(2025, 1, 2, 0, 0, 0).unwrap()),
        expires: None,
        waves: Default::default(),
    }
}

/// Friday 3 January 2025, 23:00 UTC.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 3, 23, 0, 0).unwrap()
}

fn current() -> CurrentState {
    let mut state = CurrentState::new(
        "20250101.1".parse().unwrap(),
        format!(
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/runner:20250101.1@{}",
            digest(1)
        )
        .parse()
        .unwrap(),
        "7".into(),
    );
    state.highest_successful_version = Some("20250101.1".parse().unwrap());
    state.quarantine = vec![QuarantineEntry {
        version: "20241220.4".parse().unwrap(),
        image_digest: Some(digest(9)),
        reason: "ECS rolled the deployment back".into(),
        attempts: 2,
        retry_after: later(),
    }];
    state
}

fn later() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 2, 1, 0, 0, 0).unwrap()
}

fn every_rule() -> UpdatePolicy {
    UpdatePolicy {
        window: Some(UpdateWindow::from_hm(22, 0, 2, 0).unwrap()),
        allowed_weekdays: Some(vec![Weekday::Fri, Weekday::Sat]),
        minimum_release_age: Some(Duration::from_secs(12 * 3600)),
        maximum_version: Some("20251231.99".parse().unwrap()),
        version_requirement: Some("2025".parse().unwrap()),
        hold: Some(Hold {
            reason: "expired freeze".into(),
            expires_at: Some(Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap()),
        }),
        ..UpdatePolicy::default()
    }
}

fn bench_evaluate(c: &mut Criterion) {
    let state = current();
    let candidate = release();
    let seed_policy = UpdatePolicy::default();
    let full_policy = every_rule();
    assert!(evaluate(&state, &candidate, &seed_policy, now()).is_update());
    assert!(evaluate(&state, &candidate, &full_policy, now()).is_update());

    let mut failing_policy = every_rule();
    failing_policy.auto_update = false;
    failing_policy.allowed_weekdays = Some(vec![Weekday::Mon]);
    failing_policy.hold = Some(Hold {
        reason: "incident".into(),
        expires_at: None,
    });
    failing_policy.minimum_release_age = Some(Duration::from_secs(30 * 24 * 3600));
    let mut failing = candidate.clone();
    failing.infra_version = Some("8".into());
    failing.version = "20260101.1".parse().unwrap();
    let mut quarantined = state.clone();
    quarantined.quarantine.push(QuarantineEntry {
        version: failing.version.clone(),
        image_digest: None,
        reason: "pull error".into(),
        attempts: 1,
        retry_after: later(),
    });
    let skip = evaluate(&quarantined, &failing, &failing_policy, now());
    assert!(skip.reasons().len() >= 7, "{skip}");

    let mut group = c.benchmark_group("policy_evaluate");
    group.bench_function("update_seed_rules", |b| {
        b.iter(|| {
            evaluate(
                black_box(&state),
                black_box(&candidate),
                black_box(&seed_policy),
                black_box(now()),
            )
        })
    });
    group.bench_function("update_every_rule", |b| {
        b.iter(|| {
            evaluate(
                black_box(&state),
                black_box(&candidate),
                black_box(&full_policy),
                black_box(now()),
            )
        })
    });
    group.bench_function("skip_many_reasons", |b| {
        b.iter(|| {
            evaluate(
                black_box(&quarantined),
                black_box(&failing),
                black_box(&failing_policy),
                black_box(now()),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, bench_evaluate);
criterion_main!(benches);
