//! Writes whose outcome the lock does not learn directly, records that
//! vanish, and the heartbeat's schedule and call timeout:
//! - our own write that landed behind a timeout or an SDK retry is ours,
//!   not "held by someone" or "taken over" (with and without the store
//!   returning the record that failed the condition);
//! - a record that disappears after it was seen held counts as held for one
//!   lease from when it was last seen held (memory and file stores);
//! - beats are scheduled from the last successful send, each heartbeat call
//!   times out after half a period, and a hung write never blocks release.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use update_clock::{Clock, ManualClock};
use update_lock::{
    BackendErrorKind, FileLockStore, Lease, LeaseLock, LeaseStatus, LockConfig, LockError,
    LockRecord, LockStore, MemoryLockStore, UpdateLock, WriteCondition, WriteOutcome, WriteReport,
};

const LEASE: Duration = Duration::from_secs(10);

/// What the next faulty write does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// The write lands; the call answers a timeout.
    LandedThenTimeout,
    /// The write lands, the SDK retries it and the retry's condition fails:
    /// the call answers `ConditionFailed`.
    SdkRetryAfterLanding,
    /// The write never completes (a hung connection).
    Hang,
    /// Nothing lands; the call answers a timeout.
    Lost,
}

/// A memory store with injected write faults, failing loads, latency that
/// moves the manual clock, and optionally the store's own report of the
/// record that failed a condition (as DynamoDB's `ALL_OLD`).
#[derive(Debug)]
struct FaultyStore {
    inner: MemoryLockStore,
    clock: ManualClock,
    fault: Mutex<Option<(Fault, usize)>>,
    failing_loads: AtomicUsize,
    write_latency: Mutex<Duration>,
    reports_current: bool,
    writes: AtomicUsize,
}

impl FaultyStore {
    fn new(clock: &ManualClock, reports_current: bool) -> Arc<Self> {
        Arc::new(Self {
            inner: MemoryLockStore::new(),
            clock: clock.clone(),
            fault: Mutex::new(None),
            failing_loads: AtomicUsize::new(0),
            write_latency: Mutex::new(Duration::ZERO),
            reports_current,
            writes: AtomicUsize::new(0),
        })
    }

    fn inject(&self, fault: Fault, writes: usize) {
        *self.fault.lock().unwrap() = Some((fault, writes));
    }

    fn take_fault(&self) -> Option<Fault> {
        let mut fault = self.fault.lock().unwrap();
        match *fault {
            Some((f, n)) if n > 0 => {
                *fault = (n > 1).then_some((f, n - 1));
                Some(f)
            }
            _ => None,
        }
    }

    fn timeout() -> LockError {
        LockError::backend(BackendErrorKind::Transient, "faulty", "timed out")
    }
}

#[async_trait]
impl LockStore for FaultyStore {
    fn backend_name(&self) -> &'static str {
        "faulty-memory"
    }

    async fn load(&self, key: &str) -> Result<Option<LockRecord>, LockError> {
        let failing = self
            .failing_loads
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            return Err(Self::timeout());
        }
        self.inner.load(key).await
    }

    async fn write(
        &self,
        record: &LockRecord,
        condition: &WriteCondition,
    ) -> Result<WriteOutcome, LockError> {
        self.write_reporting(record, condition)
            .await
            .map(WriteOutcome::from)
    }

    async fn write_reporting(
        &self,
        record: &LockRecord,
        condition: &WriteCondition,
    ) -> Result<WriteReport, LockError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        let latency = *self.write_latency.lock().unwrap();
        if !latency.is_zero() {
            self.clock.advance(latency);
        }
        let report = match self.take_fault() {
            None => self.inner.write_reporting(record, condition).await?,
            Some(Fault::Hang) => std::future::pending().await,
            Some(Fault::Lost) => return Err(Self::timeout()),
            Some(Fault::LandedThenTimeout) => {
                self.inner.write(record, condition).await?;
                return Err(Self::timeout());
            }
            Some(Fault::SdkRetryAfterLanding) => {
                self.inner.write(record, condition).await?;
                self.inner.write_reporting(record, condition).await?
            }
        };
        Ok(match report {
            WriteReport::ConditionFailed { .. } if !self.reports_current => {
                WriteReport::ConditionFailed { current: None }
            }
            report => report,
        })
    }
}

fn setup(reports_current: bool) -> (LeaseLock<Arc<FaultyStore>>, Arc<FaultyStore>, ManualClock) {
    let clock = ManualClock::new(ManualClock::EPOCH_2025);
    let store = FaultyStore::new(&clock, reports_current);
    let lock = LeaseLock::new(
        store.clone(),
        Arc::new(clock.clone()),
        LockConfig::default(),
    )
    .unwrap();
    (lock, store, clock)
}

fn plain() -> Lease {
    Lease::new(LEASE).unwrap().without_heartbeat()
}

// ------------------------------------------------ 1. our own landed write --

#[tokio::test]
async fn acquisitions_that_landed_behind_a_timeout_or_an_sdk_retry_are_ours() {
    // (fault, store reports the record that failed the condition)
    let cases = [
        (Fault::LandedThenTimeout, false),
        (Fault::SdkRetryAfterLanding, false),
        (Fault::SdkRetryAfterLanding, true),
    ];
    for (fault, reports) in cases {
        let (lock, store, _clock) = setup(reports);
        store.inject(fault, 1);
        let guard = lock
            .try_acquire("k", "a", plain())
            .await
            .unwrap_or_else(|e| panic!("{fault:?}/{reports}: our landed write: {e}"));
        let stored = lock.inspect("k").await.unwrap().unwrap();
        assert_eq!(stored.holder.as_deref(), Some("a"), "{fault:?}");
        assert_eq!(stored.token, guard.token(), "{fault:?}");
        assert_eq!(stored.version, guard.record_version(), "{fault:?}");
        guard.check().unwrap();
        // And it is really held: someone else is refused.
        assert!(
            lock.try_acquire("k", "b", plain())
                .await
                .unwrap_err()
                .is_held()
        );
        lock.release(&guard).await.unwrap();
    }
}

#[tokio::test]
async fn a_timed_out_acquisition_that_did_not_land_is_an_error() {
    let (lock, store, _clock) = setup(false);
    store.inject(Fault::Lost, 1);
    let err = lock.try_acquire("k", "a", plain()).await.unwrap_err();
    assert_eq!(
        err.backend_kind(),
        Some(BackendErrorKind::Transient),
        "{err}"
    );
    assert_eq!(lock.inspect("k").await.unwrap(), None);
}

#[tokio::test]
async fn renewals_that_landed_behind_an_sdk_retry_are_ours() {
    for reports in [false, true] {
        let (lock, store, _clock) = setup(reports);
        let guard = lock.try_acquire("k", "a", plain()).await.unwrap();
        store.inject(Fault::SdkRetryAfterLanding, 1);
        lock.renew(&guard)
            .await
            .unwrap_or_else(|e| panic!("reports={reports}: {e}"));
        assert_eq!(guard.status(), LeaseStatus::Active { renewals: 1 });
        assert_eq!(
            lock.inspect("k").await.unwrap().unwrap().version,
            guard.record_version()
        );
        // A renewal of a record really taken over is still lost.
        lock.store().inner.remove("k");
        assert!(lock.renew(&guard).await.unwrap_err().is_lease_lost());
    }
}

#[tokio::test]
async fn a_release_that_landed_behind_a_timeout_is_recognised_on_retry() {
    let (lock, store, _clock) = setup(false);
    let guard = lock.try_acquire("k", "a", plain()).await.unwrap();
    store.inject(Fault::LandedThenTimeout, 1);
    let err = lock.release(&guard).await.unwrap_err();
    assert_eq!(
        err.backend_kind(),
        Some(BackendErrorKind::Transient),
        "{err}"
    );
    assert_eq!(lock.inspect("k").await.unwrap().unwrap().holder, None);
    lock.release(&guard)
        .await
        .expect("the landed release is ours, not a takeover");
    assert_eq!(guard.status(), LeaseStatus::Released);
    let next = lock.try_acquire("k", "b", plain()).await.unwrap();
    assert!(next.token() > guard.token());
}

#[tokio::test]
async fn the_maybe_written_marker_survives_a_failed_read() {
    let (lock, store, _clock) = setup(false);
    let guard = lock.try_acquire("k", "a", plain()).await.unwrap();
    store.inject(Fault::LandedThenTimeout, 1);
    assert!(lock.renew(&guard).await.is_err());
    // The next renewal fails its condition (our landed write changed the
    // version) and the read that would settle it fails too.
    store.failing_loads.store(1, Ordering::SeqCst);
    let err = lock.renew(&guard).await.unwrap_err();
    assert_eq!(
        err.backend_kind(),
        Some(BackendErrorKind::Transient),
        "{err}"
    );
    assert!(matches!(guard.status(), LeaseStatus::Active { .. }));
    // Once reads work, the landed write is still recognised as ours.
    lock.renew(&guard).await.expect("still ours");
    assert_eq!(guard.status(), LeaseStatus::Active { renewals: 1 });
}

// ------------------------------------------------ 2. vanished records ----

/// `a` holds `k`; `b` (another process) sees it held at 0 s and 5 s; the
/// record then vanishes through `delete`; `b` waits out one lease from 5 s.
async fn vanished_record_counts_as_held<S: LockStore + Clone>(store: S, delete: impl Fn()) {
    let clock = ManualClock::new(ManualClock::EPOCH_2025);
    let a = LeaseLock::new(
        store.clone(),
        Arc::new(clock.clone()),
        LockConfig::default(),
    )
    .unwrap();
    let b = LeaseLock::new(store, Arc::new(clock.clone()), LockConfig::default()).unwrap();
    let held = a.try_acquire("k", "a", plain()).await.unwrap();
    assert!(
        b.try_acquire("k", "b", plain())
            .await
            .unwrap_err()
            .is_held()
    );
    clock.advance(Duration::from_secs(5));
    assert!(
        b.try_acquire("k", "b", plain())
            .await
            .unwrap_err()
            .is_held()
    );
    delete();
    assert_eq!(b.inspect("k").await.unwrap(), None, "the record is gone");
    clock.advance(LEASE - Duration::from_millis(1));
    match b.try_acquire("k", "b", plain()).await {
        Err(LockError::Held { holder, until, .. }) => {
            assert_eq!(holder, "a");
            assert_eq!(until, clock.now() + chrono::Duration::milliseconds(1));
        }
        other => panic!("a vanished record counts as held for a lease: {other:?}"),
    }
    clock.advance(Duration::from_millis(1));
    let next = b.try_acquire("k", "b", plain()).await.unwrap();
    assert!(next.token() > held.token());
}

#[tokio::test]
async fn a_vanished_memory_record_counts_as_held_for_a_lease_from_last_sight() {
    let store = MemoryLockStore::new();
    let handle = store.clone();
    vanished_record_counts_as_held(store, move || {
        handle.remove("k").expect("record");
    })
    .await;
}

#[tokio::test]
async fn a_deleted_state_file_counts_as_held_for_a_lease_from_last_sight() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileLockStore::open(dir.path()).unwrap();
    let path = store.state_path("k");
    vanished_record_counts_as_held(store, move || std::fs::remove_file(&path).unwrap()).await;
}

// ------------------------------------------------ 3. heartbeat -----------

/// Yields until the heartbeat parks (or gives up), then returns its due time.
async fn parked(guard: &update_lock::LeaseGuard) -> Option<Duration> {
    for _ in 0..10_000 {
        if let Some(due) = guard.next_heartbeat() {
            return Some(due);
        }
        if !guard.is_heartbeat_running() {
            return None;
        }
        tokio::task::yield_now().await;
    }
    None
}

async fn settle() {
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn beats_are_scheduled_from_the_last_successful_send() {
    let (lock, store, clock) = setup(false);
    let lease = Lease::new(LEASE)
        .unwrap()
        .with_heartbeat(Duration::from_secs(3))
        .unwrap();
    let guard = lock.try_acquire("k", "a", lease).await.unwrap();
    assert_eq!(parked(&guard).await, Some(Duration::from_secs(3)));
    // Every write now takes 1 s.
    *store.write_latency.lock().unwrap() = Duration::from_secs(1);
    // A manual renewal sent at 1 s (answered at 2 s) moves the beat to 4 s:
    // at 3 s nothing is sent.
    clock.advance(Duration::from_secs(1));
    lock.renew(&guard).await.unwrap();
    assert_eq!(clock.monotonic(), Duration::from_secs(2));
    clock.advance(Duration::from_secs(1));
    settle().await;
    assert_eq!(store.writes.load(Ordering::SeqCst), 2, "acquire and renew");
    assert_eq!(parked(&guard).await, Some(Duration::from_secs(4)));
    // The beat sent at 4 s is answered at 5 s; the next is due at 7 s (one
    // period after the send), not 8 s (after the answer).
    clock.advance(Duration::from_secs(1));
    settle().await;
    assert_eq!(clock.monotonic(), Duration::from_secs(5));
    assert_eq!(guard.status(), LeaseStatus::Active { renewals: 2 });
    assert_eq!(parked(&guard).await, Some(Duration::from_secs(7)));
    lock.release(&guard).await.unwrap();
}

#[tokio::test]
async fn a_hung_heartbeat_write_times_out_and_never_blocks_release() {
    let (lock, store, clock) = setup(false);
    let lease = Lease::new(LEASE)
        .unwrap()
        .with_heartbeat(Duration::from_secs(3))
        .unwrap();
    let guard = lock.try_acquire("k", "a", lease).await.unwrap();
    assert_eq!(parked(&guard).await, Some(Duration::from_secs(3)));
    store.inject(Fault::Hang, 2);
    clock.advance(Duration::from_secs(3));
    settle().await;
    assert_eq!(guard.next_heartbeat(), None, "the beat at 3 s is in flight");
    assert_eq!(store.writes.load(Ordering::SeqCst), 2);
    // Its call times out after half a period (1.5 s); the next beat is one
    // period after that failed attempt.
    clock.advance(Duration::from_millis(1_499));
    settle().await;
    assert_eq!(guard.next_heartbeat(), None, "still waiting at 4.499 s");
    clock.advance(Duration::from_millis(1));
    assert_eq!(parked(&guard).await, Some(Duration::from_secs(6)));
    guard.check().expect("still valid: one beat failed");
    // The beat at 6 s hangs too; release does not wait for it.
    clock.advance(Duration::from_millis(1_500));
    settle().await;
    assert_eq!(guard.next_heartbeat(), None, "the beat at 6 s is in flight");
    assert_eq!(store.writes.load(Ordering::SeqCst), 3);
    let guard = Arc::new(guard);
    let releasing = tokio::spawn({
        let lock = lock.clone();
        let guard = Arc::clone(&guard);
        async move { lock.release(&guard).await }
    });
    settle().await;
    assert!(
        releasing.is_finished(),
        "release must not wait for the hung heartbeat write"
    );
    releasing.await.unwrap().expect("released");
    assert_eq!(guard.status(), LeaseStatus::Released);
    assert_eq!(lock.inspect("k").await.unwrap().unwrap().holder, None);
}
