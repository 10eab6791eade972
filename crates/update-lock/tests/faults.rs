//! Backend faults on the in-memory store: a write whose outcome is unknown,
//! a heartbeat that keeps failing, a backend error during acquire.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use update_clock::ManualClock;
use update_lock::{
    BackendErrorKind, Lease, LeaseLock, LeaseStatus, LockConfig, LockError, LockRecord, LockStore,
    LossReason, MemoryLockStore, UpdateLock, WriteCondition, WriteOutcome,
};

/// What the next faulty writes do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    /// Apply the write, then report a timeout (outcome unknown to the caller).
    AppliedThenTimeout,
    /// Fail without writing.
    Throttle,
}

#[derive(Debug)]
struct FaultyStore {
    inner: MemoryLockStore,
    fault: std::sync::Mutex<Fault>,
    faulty_writes_left: AtomicUsize,
}

impl FaultyStore {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            inner: MemoryLockStore::new(),
            fault: std::sync::Mutex::new(Fault::None),
            faulty_writes_left: AtomicUsize::new(0),
        })
    }

    fn inject(&self, fault: Fault, writes: usize) {
        *self.fault.lock().unwrap() = fault;
        self.faulty_writes_left.store(writes, Ordering::SeqCst);
    }
}

#[async_trait]
impl LockStore for FaultyStore {
    fn backend_name(&self) -> &'static str {
        "faulty-memory"
    }

    async fn load(&self, key: &str) -> Result<Option<LockRecord>, LockError> {
        self.inner.load(key).await
    }

    async fn write(
        &self,
        record: &LockRecord,
        condition: &WriteCondition,
    ) -> Result<WriteOutcome, LockError> {
        let faulty = self
            .faulty_writes_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        let fault = if faulty {
            *self.fault.lock().unwrap()
        } else {
            Fault::None
        };
        match fault {
            Fault::None => self.inner.write(record, condition).await,
            Fault::AppliedThenTimeout => {
                self.inner.write(record, condition).await?;
                Err(LockError::backend(
                    BackendErrorKind::Transient,
                    "faulty",
                    "timed out",
                ))
            }
            Fault::Throttle => Err(LockError::backend(
                BackendErrorKind::Throttled,
                "faulty",
                "slow down",
            )),
        }
    }
}

fn setup() -> (LeaseLock<Arc<FaultyStore>>, Arc<FaultyStore>, ManualClock) {
    let clock = ManualClock::new(ManualClock::EPOCH_2025);
    let store = FaultyStore::new();
    let lock = LeaseLock::new(
        store.clone(),
        Arc::new(clock.clone()),
        LockConfig::default(),
    )
    .unwrap();
    (lock, store, clock)
}

const LEASE: Duration = Duration::from_secs(10);

#[tokio::test]
async fn renewal_that_landed_despite_a_timeout_is_recognised_as_ours() {
    let (lock, store, _clock) = setup();
    let lease = Lease::new(LEASE).unwrap().without_heartbeat();
    let guard = lock.try_acquire("k", "a", lease).await.unwrap();
    store.inject(Fault::AppliedThenTimeout, 1);
    let err = lock.renew(&guard).await.unwrap_err();
    assert_eq!(
        err.backend_kind(),
        Some(BackendErrorKind::Transient),
        "{err}"
    );
    // The store now holds the version of the timed-out write; the guard
    // still remembers the older one. The next renewal must not call that a
    // takeover.
    assert_ne!(
        lock.inspect("k").await.unwrap().unwrap().version,
        guard.record_version()
    );
    lock.renew(&guard)
        .await
        .expect("recognised as our own write");
    assert_eq!(guard.status(), LeaseStatus::Active { renewals: 1 });
    assert_eq!(
        lock.inspect("k").await.unwrap().unwrap().version,
        guard.record_version()
    );
    lock.release(&guard).await.unwrap();
}

#[tokio::test]
async fn heartbeat_survives_transient_failures_but_gives_up_when_the_lease_runs_out() {
    let (lock, store, clock) = setup();
    let lease = Lease::new(LEASE)
        .unwrap()
        .with_heartbeat(Duration::from_secs(3))
        .unwrap();
    let guard = lock.try_acquire("k", "a", lease).await.unwrap();
    // Beats at 3, 6, 9 and 12 s are throttled; the lease (sent at 0) ends
    // at 10 s for contenders and at 10 s · 0.99 − 1 s = 8.9 s for the holder.
    store.inject(Fault::Throttle, 4);
    let mut beats = 0;
    while guard.is_heartbeat_running() && beats < 10 {
        while guard.next_heartbeat().is_none() && guard.is_heartbeat_running() {
            tokio::task::yield_now().await;
        }
        clock.advance(Duration::from_secs(3));
        beats += 1;
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        if beats == 2 {
            assert!(
                matches!(guard.status(), LeaseStatus::Active { renewals: 0 }),
                "still hoping at 6 s"
            );
            guard.check().expect("valid until 8.9 s");
        }
    }
    assert_eq!(guard.status(), LeaseStatus::Lost(LossReason::Expired));
    assert_eq!(
        beats, 3,
        "gave up at the first failed beat after the local validity ran out (9 s; \
         12 s before the safety margin)"
    );
    assert!(matches!(
        guard.check(),
        Err(LockError::LeaseLost {
            reason: LossReason::Expired,
            ..
        })
    ));
}

#[tokio::test]
async fn backend_failure_during_acquire_is_returned_not_retried_as_held() {
    let (lock, store, _clock) = setup();
    store.inject(Fault::Throttle, 1);
    let lease = Lease::new(LEASE).unwrap().without_heartbeat();
    let err = lock
        .acquire("k", "a", lease, Duration::from_secs(60))
        .await
        .unwrap_err();
    assert_eq!(
        err.backend_kind(),
        Some(BackendErrorKind::Throttled),
        "{err}"
    );
    // The failed write left nothing behind.
    assert_eq!(lock.inspect("k").await.unwrap(), None);
    lock.try_acquire("k", "a", lease)
        .await
        .expect("works once the backend recovers");
}

#[tokio::test]
async fn invalid_names_are_rejected_before_any_io() {
    let (lock, _store, _clock) = setup();
    let lease = Lease::default().without_heartbeat();
    let long = "x".repeat(2000);
    let cases: [(&str, &str, &str); 4] = [
        ("", "a", "key"),
        ("k", "", "owner"),
        ("k\n", "a", "key"),
        (long.as_str(), "a", "key"),
    ];
    for (key, owner, what) in cases {
        match lock.try_acquire(key, owner, lease).await {
            Err(LockError::InvalidName { what: w, .. }) => assert_eq!(w, what, "{key:?}/{owner:?}"),
            other => panic!("{key:?}/{owner:?}: expected InvalidName, got {other:?}"),
        }
    }
}
