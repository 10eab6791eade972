//! A fleet rollout on one simulated ECS with ECS's per-account token
//! buckets on (`updater_benches::fleet`): N services, at most C rollouts in
//! flight. Criterion times the wall clock of the whole simulation; the
//! figures that matter are in simulated time and are printed once per
//! scenario (and written to `target/criterion/fleet-summary.json`):
//! makespan, the lower bound the buckets and one deployment set, their
//! ratio, throttling that reached the caller, and ECS calls per service.
//!
//! `cargo test --benches` (criterion's test mode, debug build) runs only the
//! small fleet; `cargo bench` runs N = 10, 100 and 1,000 once for the
//! figures and times N <= 100 with criterion.
//!
//! The ratio makespan / lower bound means something only when every
//! rollout succeeded: rollouts that end early in a throttling error also
//! end the makespan early.

use std::{path::PathBuf, time::Duration};

use criterion::{Criterion, criterion_group, criterion_main};
use updater_benches::fleet::{FleetConfig, FleetReport, lower_bound, run_fleet};

/// `cargo bench` passes `--bench`; `cargo test --benches` does not.
fn bench_mode() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// Every (N, C) through one shared, pacing client; the largest also with
/// every rollout on its own (the set-up before `SharedEcs`) and with a
/// batch window.
fn scenarios() -> Vec<FleetConfig> {
    if !bench_mode() {
        return vec![
            FleetConfig::new(10, 10),
            FleetConfig::new(10, 10).unshared(),
        ];
    }
    let mut all: Vec<FleetConfig> = [
        (10, 10),
        (100, 10),
        (100, 100),
        (1000, 10),
        (1000, 100),
        (1000, 1000),
    ]
    .into_iter()
    .map(|(n, c)| FleetConfig::new(n, c))
    .collect();
    for (n, c) in [(100, 100), (1000, 100), (1000, 1000)] {
        all.push(FleetConfig::new(n, c).unshared());
        all.push(FleetConfig::new(n, c).batch_window(Duration::from_secs(1)));
    }
    all
}

fn summary_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("criterion").join("fleet-summary.json")
}

fn row(report: &FleetReport, deployment: Duration) -> serde_json::Value {
    let limits = ecs_rollout::simulated::RateLimits::ecs_documented();
    let (bound, limited_by) = lower_bound(report.services, report.concurrency, &limits, deployment);
    let ratio = report.makespan.as_secs_f64() / bound.as_secs_f64();
    let per_service: serde_json::Map<String, serde_json::Value> = report
        .calls
        .keys()
        .map(|op| (op.to_string(), report.calls_per_service(op).into()))
        .collect();
    let wire: serde_json::Map<String, serde_json::Value> = report
        .wire
        .admitted
        .iter()
        .map(|(op, n)| (op.to_string(), (*n as f64 / report.services as f64).into()))
        .collect();
    println!(
        "fleet/N={}/C={}/{}: makespan {:.0} s, lower bound {:.0} s (set by {}), ratio {:.2}, \
         throttling surfaced {}, not succeeded {}, outcomes {:?}, \
         {:.1} calls/service ({}), {:.1} throttled requests/service, shared client {:?}",
        report.services,
        report.concurrency,
        report.client,
        report.makespan.as_secs_f64(),
        bound.as_secs_f64(),
        limited_by,
        ratio,
        report.throttling_surfaced,
        report.not_succeeded,
        report.outcomes,
        report.total_calls_per_service(),
        report
            .calls
            .keys()
            .map(|op| format!("{op} {:.1}", report.calls_per_service(op)))
            .collect::<Vec<_>>()
            .join(", "),
        report.throttled_per_service(),
        report.shared,
    );
    serde_json::json!({
        "services": report.services,
        "concurrency": report.concurrency,
        "client": report.client,
        "shared_waited": report.shared.as_ref().map(|s| s.waited),
        "shared_total_wait_s": report.shared.as_ref().map(|s| s.total_wait.as_secs_f64()),
        "shared_refused": report.shared.as_ref().map(|s| s.refused),
        "shared_batches": report.shared.as_ref().map(|s| s.batches),
        "shared_batched_services": report.shared.as_ref().map(|s| s.batched_services),
        "shared_deployment_batches": report.shared.as_ref().map(|s| s.deployment_batches),
        "shared_batched_deployments": report.shared.as_ref().map(|s| s.batched_deployments),
        "shared_task_batches": report.shared.as_ref().map(|s| s.task_batches),
        "shared_batched_task_reads": report.shared.as_ref().map(|s| s.batched_task_reads),
        "makespan_s": report.makespan.as_secs_f64(),
        "lower_bound_s": bound.as_secs_f64(),
        "lower_bound_set_by": limited_by.to_string(),
        "single_service_deployment_s": deployment.as_secs_f64(),
        "ratio": ratio,
        "throttling_surfaced": report.throttling_surfaced,
        "not_succeeded": report.not_succeeded,
        "outcomes": report.outcomes,
        "calls_per_service": per_service,
        "total_calls_per_service": report.total_calls_per_service(),
        "ecs_requests_admitted_per_service": wire,
        "throttled_requests_per_service": report.throttled_per_service(),
    })
}

fn fleet(c: &mut Criterion) {
    // One service alone: its deployment time, the second term of the bound.
    let single = run_fleet(&FleetConfig::new(1, 1));
    assert_eq!(single.not_succeeded, 0, "{single:?}");
    let deployment = single.makespan;
    println!(
        "fleet: one service alone takes {:.0} s simulated ({:.0} calls)",
        deployment.as_secs_f64(),
        single.total_calls_per_service()
    );
    let mut rows = Vec::new();
    for config in scenarios() {
        let wall = std::time::Instant::now();
        let report = run_fleet(&config);
        let wall = wall.elapsed();
        let mut row = row(&report, deployment);
        println!(
            "fleet/N={}/C={}/{}: one simulation took {wall:.2?} of wall time",
            config.services,
            config.concurrency,
            config.client()
        );
        row["wall_time_s"] = wall.as_secs_f64().into();
        rows.push(row);
    }
    let path = summary_path();
    if let Some(dir) = path.parent()
        && std::fs::create_dir_all(dir).is_ok()
    {
        let json = serde_json::to_string_pretty(&rows).unwrap_or_default();
        if std::fs::write(&path, json).is_ok() {
            println!("fleet: summary written to {}", path.display());
        }
    }

    let mut group = c.benchmark_group("fleet");
    // One N = 1,000 simulation takes 7 to 20 s of wall time in release
    // (measured): it runs once, above, and criterion times only N <= 100.
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    for config in scenarios().into_iter().filter(|c| c.services <= 100) {
        let name = format!(
            "N={}/C={}/{}",
            config.services,
            config.concurrency,
            config.client()
        );
        group.bench_function(name, |b| b.iter(|| run_fleet(&config)));
    }
    group.finish();
}

criterion_group!(benches, fleet);
criterion_main!(benches);
