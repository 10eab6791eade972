//! update-lock: acquire + release latency on the in-memory and file
//! backends, and contention throughput on DynamoDB (moto on 127.0.0.1).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use moto_harness::{MotoAccount, MotoServer, unique_account_id};
use update_clock::{ManualClock, SystemClock};
use update_lock::{
    FileLockStore, Lease, LeaseLock, LockConfig, LockStore, UpdateLock,
    dynamodb::{DynamoDbLockStore, create_table_if_missing},
};

fn lease() -> Lease {
    Lease::new(Duration::from_secs(60)).expect("lease")
}

fn bench_acquire_release<S: LockStore>(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    name: &str,
    lock: LeaseLock<S>,
    lease: Lease,
) {
    c.bench_function(name, |b| {
        b.to_async(rt).iter(|| async {
            let guard = lock
                .try_acquire("svc/bench", "bench", lease)
                .await
                .expect("free");
            lock.release(&guard).await.expect("release");
        })
    });
}

fn latency(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let clock = Arc::new(SystemClock::new());
    let memory = LeaseLock::in_memory(clock.clone());
    bench_acquire_release(
        c,
        &rt,
        "lock/memory/acquire_release",
        memory.clone(),
        lease().without_heartbeat(),
    );
    bench_acquire_release(
        c,
        &rt,
        "lock/memory/acquire_release_with_heartbeat",
        memory,
        lease(),
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let file = |fsync| {
        let store = FileLockStore::open(dir.path())
            .expect("store")
            .with_fsync(fsync);
        LeaseLock::new(store, clock.clone(), LockConfig::default()).expect("lock")
    };
    bench_acquire_release(
        c,
        &rt,
        "lock/file/acquire_release_fsync",
        file(true),
        lease().without_heartbeat(),
    );
    bench_acquire_release(
        c,
        &rt,
        "lock/file/acquire_release_no_fsync",
        file(false),
        lease().without_heartbeat(),
    );
}

const CONTENDERS: usize = 8;
const ROUNDS: usize = 5;

/// One iteration: 8 contenders (own client and lock each) × 5
/// acquire/act/release rounds on one key through moto, real clock.
fn contention(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // moto's DynamoDB writes are made atomic by the same plugin the tests use.
    let moto = MotoServer::start_with_plugin(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../crates/update-lock/tests/moto_atomic_dynamodb.py"
    ));
    let account = unique_account_id();
    let client = || {
        aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&moto.sdk_config())
                .interceptor(MotoAccount(account.clone()))
                .build(),
        )
    };
    rt.block_on(async {
        let clock = ManualClock::auto_advancing(ManualClock::EPOCH_2025);
        create_table_if_missing(&client(), "locks", &clock, Duration::from_secs(60))
            .await
            .expect("table");
    });
    let config = LockConfig {
        poll_interval: Duration::from_millis(100),
        poll_jitter: Duration::from_millis(100),
        ..LockConfig::default()
    };
    let locks: Vec<_> = (0..CONTENDERS)
        .map(|_| {
            LeaseLock::new(
                DynamoDbLockStore::new(client(), "locks"),
                Arc::new(SystemClock::new()),
                config.clone(),
            )
            .expect("lock")
        })
        .collect();
    let mut group = c.benchmark_group("lock/dynamodb_moto");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements((CONTENDERS * ROUNDS) as u64));
    group.bench_function("contention_8x5_rounds", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let locks = locks.clone();
            async move {
                let started = Instant::now();
                for _ in 0..iters {
                    let tasks: Vec<_> = locks
                        .iter()
                        .enumerate()
                        .map(|(i, lock)| {
                            let lock = lock.clone();
                            tokio::spawn(async move {
                                let owner = format!("contender-{i}");
                                for _ in 0..ROUNDS {
                                    let guard = lock
                                        .acquire(
                                            "svc/bench",
                                            &owner,
                                            lease(),
                                            Duration::from_secs(120),
                                        )
                                        .await
                                        .expect("acquire");
                                    guard.check().expect("valid");
                                    lock.release(&guard).await.expect("release");
                                }
                            })
                        })
                        .collect();
                    for task in tasks {
                        task.await.expect("contender");
                    }
                }
                started.elapsed()
            }
        })
    });
    group.finish();
}

criterion_group!(benches, latency, contention);
criterion_main!(benches);
