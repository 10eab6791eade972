//! The idle cost of `runner_updater::Updater`: one `run_once()` when nothing
//! changed (the runner already runs the newest release), against the HTTP
//! manifest source (`HttpManifestSource`, conditional GET) served by a
//! small HTTP/1.1 server on 127.0.0.1 that answers `304` to a matching
//! `If-None-Match` and counts requests and bytes on the wire, and the
//! simulated ECS (`SimulatedEcs::calls`). Criterion times one idle cycle;
//! the counts per idle check are printed once before measuring.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use criterion::{Criterion, criterion_group};
use ecs_rollout::{
    ContainerDefinition, DeploymentConfiguration, HealthCheck, ServiceSetup, SimulatedEcs,
    TaskDefinitionSpec,
};
use runner_updater::{
    InfraVersionSource, MemoryJournal, MemoryQuarantine, ReleaseImage, Target, Updater,
    UpdaterConfig,
};
use runner_version::{HttpConfig, HttpManifestSource, ReleaseVerifier};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use update_clock::ManualClock;
use update_lock::{Lease, LeaseLock, LockConfig, MemoryLockStore};

const VERSION: &str = "20250101.3";
const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const ETAG: &str = "\"v1\"";
const LABEL: &str = "org.opencontainers.image.version";

fn image() -> String {
    format!("public.ecr.aws/gitpod/runner:{VERSION}@{DIGEST}")
}

/// The manifest the server publishes: the version the runner already runs.
fn manifest() -> Vec<u8> {
    format!(
        r#"{{"version":"{VERSION}","image":"public.ecr.aws/gitpod/runner:{VERSION}",
        "image_digest":"{DIGEST}",
        "cloudformation_template_url":"https://s3.amazonaws.com/releases/runner.json"}}"#
    )
    .into_bytes()
}

/// Requests and bytes the manifest server saw.
#[derive(Debug, Default)]
struct Wire {
    requests: AtomicU64,
    not_modified: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
}

impl Wire {
    fn snapshot(&self) -> [u64; 4] {
        [
            self.requests.load(Ordering::SeqCst),
            self.not_modified.load(Ordering::SeqCst),
            self.bytes_in.load(Ordering::SeqCst),
            self.bytes_out.load(Ordering::SeqCst),
        ]
    }
}

/// A keep-alive HTTP/1.1 server for one JSON document with an ETag.
async fn serve(wire: Arc<Wire>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let wire = wire.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                wire.bytes_in.fetch_add(n as u64, Ordering::SeqCst);
                                buf.extend_from_slice(&chunk[..n]);
                                continue;
                            }
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    buf.drain(..end + 4);
                    wire.requests.fetch_add(1, Ordering::SeqCst);
                    let matches = head
                        .lines()
                        .any(|l| l.starts_with("if-none-match:") && l.contains(ETAG));
                    let response = if matches {
                        wire.not_modified.fetch_add(1, Ordering::SeqCst);
                        format!("HTTP/1.1 304 Not Modified\r\nETag: {ETAG}\r\n\r\n").into_bytes()
                    } else {
                        let body = manifest();
                        let mut r = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nETag: {ETAG}\r\nContent-Length: {}\r\n\r\n",
                            body.len()
                        )
                        .into_bytes();
                        r.extend_from_slice(&body);
                        r
                    };
                    wire.bytes_out
                        .fetch_add(response.len() as u64, Ordering::SeqCst);
                    if stream.write_all(&response).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

fn spec() -> TaskDefinitionSpec {
    TaskDefinitionSpec {
        family: "runner".into(),
        container_definitions: vec![ContainerDefinition {
            name: "runner".into(),
            image: image(),
            essential: Some(true),
            docker_labels: BTreeMap::from([(LABEL.into(), VERSION.into())]),
            health_check: Some(HealthCheck {
                command: vec!["CMD".into(), "true".into()],
                start_period: Some(20),
                ..Default::default()
            }),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// The runner service on the simulator and an updater checking the local
/// manifest server.
fn world(
    port: u16,
) -> (
    Updater,
    Arc<SimulatedEcs>,
    Arc<HttpManifestSource>,
    Arc<ManualClock>,
) {
    let clock = Arc::new(ManualClock::auto_advancing(ManualClock::EPOCH_2025));
    let sim = Arc::new(SimulatedEcs::new(clock.clone(), 7));
    sim.create_service(ServiceSetup {
        cluster: "runners".into(),
        service: "runner".into(),
        task_definition: spec(),
        desired_count: 2,
        deployment_configuration: DeploymentConfiguration::safe_rolling(),
    })
    .expect("service");
    let source = Arc::new(
        HttpManifestSource::builder()
            .channel_url(
                runner_version::Channel::Stable,
                format!("http://127.0.0.1:{port}/stable.json"),
            )
            .config(HttpConfig {
                allow_loopback_http: true,
                ..Default::default()
            })
            .verifier(
                ReleaseVerifier::builder()
                    .allow_unsigned()
                    .build()
                    .expect("verifier"),
            )
            .build()
            .expect("source"),
    );
    let locks = MemoryLockStore::new();
    let mut config = UpdaterConfig::new(
        "runners/runner",
        "bench",
        vec![Target::new(
            "runner",
            "runners",
            "runner",
            "runner",
            ReleaseImage::Runner,
        )],
    );
    config.lease = Lease::new(Duration::from_secs(300))
        .expect("lease")
        .without_heartbeat();
    let updater = Updater::builder()
        .source(source.clone())
        .lock(Arc::new(
            LeaseLock::new(locks.clone(), clock.clone(), LockConfig::default()).expect("lock"),
        ))
        .journal(Arc::new(MemoryJournal::new(locks)))
        .quarantine(Arc::new(MemoryQuarantine::default()))
        .ecs(sim.clone())
        .infra(InfraVersionSource::Fixed("7".into()))
        .clock(clock.clone())
        .config(config)
        .build()
        .expect("updater");
    (updater, sim, source, clock)
}

/// `VmHWM` (peak resident set) and `VmRSS` of this process, from
/// `/proc/self/status` (Linux).
fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// `--rss-checks N` (used by `benches/idle-rss.sh`): N idle cycles, the
/// clock moved one check interval (60 s) between them, then the process's
/// peak and current RSS; no criterion run.
fn rss_mode() -> Option<u64> {
    let args: Vec<String> = std::env::args().collect();
    let i = args.iter().position(|a| a == "--rss-checks")?;
    args.get(i + 1)?.parse().ok()
}

fn rss(checks: u64) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let wire = Arc::new(Wire::default());
    let port = rt.block_on(serve(wire.clone()));
    let (updater, _sim, _source, clock) = world(port);
    rt.block_on(updater.run_once()).expect("first cycle");
    let (hwm_first, _) = memory_kib();
    for _ in 0..checks {
        clock.advance(Duration::from_secs(60));
        let report = rt.block_on(updater.run_once()).expect("idle cycle");
        assert_eq!(report.outcome.code(), "skipped", "{}", report.summary());
    }
    let (hwm, rss) = memory_kib();
    println!(
        "idle rss: {checks} idle checks ({} simulated), {} requests on the wire; VmHWM {hwm} KiB after the first check {hwm_first} KiB, VmRSS now {rss} KiB",
        humantime_minutes(checks * 60),
        wire.snapshot()[0],
    );
}

fn humantime_minutes(secs: u64) -> String {
    format!("{:.1} h", secs as f64 / 3600.0)
}

fn idle(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let wire = Arc::new(Wire::default());
    let port = rt.block_on(serve(wire.clone()));
    let (updater, sim, source, _clock) = world(port);

    // The first check fetches the manifest (200); every later one is idle.
    let first = rt.block_on(updater.run_once()).expect("first cycle");
    assert_eq!(first.outcome.code(), "skipped", "{}", first.summary());
    let calls_before = sim.calls();
    let wire_before = wire.snapshot();
    const CHECKS: u64 = 10;
    for _ in 0..CHECKS {
        let report = rt.block_on(updater.run_once()).expect("idle cycle");
        assert_eq!(report.outcome.code(), "skipped", "{}", report.summary());
    }
    let calls_after = sim.calls();
    let wire_after = wire.snapshot();
    let per_check: Vec<String> = calls_after
        .iter()
        .map(|(op, n)| {
            let delta = n - calls_before.get(op).copied().unwrap_or(0);
            format!("{op} {:.1}", delta as f64 / CHECKS as f64)
        })
        .collect();
    let d = |i: usize| (wire_after[i] - wire_before[i]) as f64 / CHECKS as f64;
    println!(
        "idle check: {:.1} release-source requests ({:.1} answered 304), {:.0} bytes sent by the updater + {:.0} bytes answered, on the wire; \
         ECS calls per check: {}; source stats {:?}; decision: {}",
        d(0),
        d(1),
        d(2),
        d(3),
        per_check.join(", "),
        source.stats(),
        first.summary(),
    );
    c.bench_function("idle check (304 + ECS reads, nothing changed)", |b| {
        b.iter(|| rt.block_on(updater.run_once()).expect("idle cycle"))
    });
}

criterion_group!(benches, idle);

fn main() {
    if let Some(checks) = rss_mode() {
        rss(checks);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
