//! Lease hardening: release is terminal before its write is sent, the
//! holder's safety margin, and bounds on stored leases.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU8, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use update_clock::ManualClock;
use update_lock::{
    BackendErrorKind, FencingToken, FileLockStore, Lease, LeaseLock, LockConfig, LockError,
    LockRecord, LockStore, LossReason, MemoryLockStore, RecordVersion, UpdateLock, WriteCondition,
    WriteOutcome,
};

const LEASE: Duration = Duration::from_secs(10);

/// What the next write does.
const PASS: u8 = 0;
const HANG: u8 = 1;
const FAIL: u8 = 2;

/// A memory store whose writes can hang forever or fail without writing.
#[derive(Debug, Default)]
struct StallingStore {
    inner: MemoryLockStore,
    mode: AtomicU8,
}

#[async_trait]
impl LockStore for StallingStore {
    fn backend_name(&self) -> &'static str {
        "stalling-memory"
    }

    async fn load(&self, key: &str) -> Result<Option<LockRecord>, LockError> {
        self.inner.load(key).await
    }

    async fn write(
        &self,
        record: &LockRecord,
        condition: &WriteCondition,
    ) -> Result<WriteOutcome, LockError> {
        match self.mode.load(Ordering::SeqCst) {
            HANG => std::future::pending().await,
            FAIL => Err(LockError::backend(
                BackendErrorKind::Transient,
                "stalling",
                "timed out",
            )),
            _ => self.inner.write(record, condition).await,
        }
    }
}

fn stalling() -> (LeaseLock<Arc<StallingStore>>, Arc<StallingStore>) {
    let clock = ManualClock::new(ManualClock::EPOCH_2025);
    let store = Arc::new(StallingStore::default());
    let lock = LeaseLock::new(store.clone(), Arc::new(clock), LockConfig::default()).unwrap();
    (lock, store)
}

#[track_caller]
fn assert_released(result: Result<FencingToken, LockError>, context: &str) {
    assert!(
        matches!(
            result,
            Err(LockError::LeaseLost {
                reason: LossReason::Released,
                ..
            })
        ),
        "{context}: {result:?}"
    );
}

#[tokio::test]
async fn release_is_terminal_while_its_write_hangs() {
    let (lock, store) = stalling();
    let lease = Lease::new(LEASE)
        .unwrap()
        .with_heartbeat(Duration::from_secs(3))
        .unwrap();
    let guard = Arc::new(lock.try_acquire("k", "a", lease).await.unwrap());
    guard.check_for(Duration::from_secs(1)).unwrap();
    store.mode.store(HANG, Ordering::SeqCst);
    let releasing = tokio::spawn({
        let lock = lock.clone();
        let guard = Arc::clone(&guard);
        async move { lock.release(&guard).await }
    });
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    assert!(!releasing.is_finished(), "the release write hangs");
    assert_released(guard.check(), "check during a hung release");
    assert_released(
        guard.check_for(Duration::ZERO),
        "check_for during a hung release",
    );
    assert!(
        !guard.is_heartbeat_running(),
        "no renewal after release began"
    );
    assert!(
        lock.renew(&guard).await.is_err(),
        "a manual renewal after release began is refused"
    );
    releasing.abort();
    assert_released(guard.check(), "check after the release was abandoned");
}

#[tokio::test]
async fn release_is_terminal_even_when_its_write_fails() {
    let (lock, store) = stalling();
    let lease = Lease::new(LEASE).unwrap().without_heartbeat();
    let guard = lock.try_acquire("k", "a", lease).await.unwrap();
    store.mode.store(FAIL, Ordering::SeqCst);
    let err = lock.release(&guard).await.unwrap_err();
    assert_eq!(err.backend_kind(), Some(BackendErrorKind::Transient));
    assert_released(guard.check(), "check after a failed release");
    assert_released(
        guard.check_for(Duration::ZERO),
        "check_for after a failed release",
    );
    // The release can be retried once the backend recovers.
    store.mode.store(PASS, Ordering::SeqCst);
    lock.release(&guard).await.expect("retried release");
    assert_released(guard.check(), "check after the retried release");
    assert_eq!(lock.inspect("k").await.unwrap().unwrap().holder, None);
}

#[tokio::test]
async fn holder_validity_is_lease_less_drift_and_margin() {
    let clock = ManualClock::new(ManualClock::EPOCH_2025);
    let config = LockConfig {
        clock_drift_ppm: 20_000,
        safety_margin: Duration::from_millis(500),
        ..LockConfig::default()
    };
    let lock = LeaseLock::new(
        MemoryLockStore::new(),
        Arc::new(clock.clone()),
        config.clone(),
    )
    .unwrap();
    let lease = Lease::new(LEASE).unwrap().without_heartbeat();
    let a = lock.try_acquire("k", "a", lease).await.unwrap();
    // b sees a's record at 0 s.
    assert!(
        lock.try_acquire("k", "b", lease)
            .await
            .unwrap_err()
            .is_held()
    );
    // 10 s · (1 − 2 %) − 0.5 s
    let validity = Duration::from_millis(9_300);
    assert_eq!(a.validity(), validity);
    assert_eq!(config.holder_validity(LEASE), validity);
    assert_eq!(a.remaining(), validity);
    clock.advance(validity - Duration::from_millis(1));
    a.check_for(Duration::from_millis(1)).unwrap();
    assert!(a.check_for(Duration::from_millis(2)).is_err());
    clock.advance(Duration::from_millis(1));
    assert!(a.check().is_err(), "expired on the holder's clock at 9.3 s");
    // A contender still waits out the full lease (10 s after it first saw
    // the record).
    assert!(
        lock.try_acquire("k", "b", lease)
            .await
            .unwrap_err()
            .is_held()
    );
    clock.advance(LEASE - validity - Duration::from_millis(1));
    assert!(
        lock.try_acquire("k", "b", lease)
            .await
            .unwrap_err()
            .is_held()
    );
    clock.advance(Duration::from_millis(1));
    lock.try_acquire("k", "b", lease).await.unwrap();

    let bad = LockConfig {
        clock_drift_ppm: 200_000,
        ..LockConfig::default()
    };
    assert!(matches!(
        LeaseLock::new(MemoryLockStore::new(), Arc::new(clock), bad),
        Err(LockError::InvalidConfig {
            field: "clock_drift_ppm",
            ..
        })
    ));
}

/// A record as a foreign writer (or corruption) could leave it.
fn absurd_record(key: &str) -> LockRecord {
    LockRecord {
        key: key.into(),
        holder: Some("intruder".into()),
        lease: Duration::from_millis(u64::MAX),
        version: RecordVersion::random(),
        token: FencingToken::new(u64::MAX),
        written_at: ManualClock::EPOCH_2025,
    }
}

/// Acquiring over a stored `lease_ms` of `u64::MAX` is a permanent backend
/// error, from `try_acquire` and from a waiting `acquire`, never a panic.
async fn absurd_lease_is_an_error<S: LockStore>(store: S) {
    let clock = ManualClock::new(ManualClock::EPOCH_2025);
    assert_eq!(
        store
            .write(&absurd_record("k"), &WriteCondition::Absent)
            .await
            .unwrap(),
        WriteOutcome::Written
    );
    let lock = LeaseLock::new(store, Arc::new(clock), LockConfig::default()).unwrap();
    let stored = lock.inspect("k").await.unwrap().unwrap();
    assert_eq!(stored.lease, Duration::from_millis(u64::MAX));
    let lease = Lease::new(LEASE).unwrap().without_heartbeat();
    for _ in 0..2 {
        let err = lock.try_acquire("k", "a", lease).await.unwrap_err();
        assert_eq!(
            err.backend_kind(),
            Some(BackendErrorKind::Permanent),
            "{err}"
        );
        assert!(err.to_string().contains("24 h"), "{err}");
    }
    let err = lock
        .acquire("k", "a", lease, Duration::from_secs(60))
        .await
        .unwrap_err();
    assert_eq!(
        err.backend_kind(),
        Some(BackendErrorKind::Permanent),
        "{err}"
    );
}

#[tokio::test]
async fn stored_lease_of_u64_max_is_an_error_on_the_memory_store() {
    absurd_lease_is_an_error(MemoryLockStore::new()).await;
}

#[tokio::test]
async fn stored_lease_of_u64_max_is_an_error_on_the_file_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileLockStore::open(dir.path()).unwrap();
    absurd_lease_is_an_error(store.clone()).await;
    let text = std::fs::read_to_string(store.state_path("k")).unwrap();
    assert!(text.contains(&u64::MAX.to_string()), "{text}");
}

#[tokio::test]
async fn a_guard_reports_the_key_and_the_lease_it_was_acquired_with() {
    let clock = Arc::new(ManualClock::auto_advancing(ManualClock::EPOCH_2025));
    let lock = LeaseLock::new(MemoryLockStore::new(), clock, LockConfig::default()).unwrap();
    let lease = Lease::new(Duration::from_secs(120))
        .unwrap()
        .with_heartbeat(Duration::from_secs(20))
        .unwrap();
    let guard = lock
        .try_acquire("runners/runner", "a", lease)
        .await
        .unwrap();
    assert_eq!(guard.key(), "runners/runner");
    assert_eq!(guard.lease(), lease);
    lock.release(&guard).await.unwrap();
}

/// A guard dropped without `release` (the process abandons it) stops its
/// heartbeat: the lease then lapses and another owner takes the lock.
#[tokio::test]
async fn a_dropped_guard_stops_renewing_and_its_lease_lapses() {
    let clock = Arc::new(ManualClock::auto_advancing(ManualClock::EPOCH_2025));
    let lock = LeaseLock::new(MemoryLockStore::new(), clock, LockConfig::default()).unwrap();
    let lease = Lease::new(Duration::from_secs(30))
        .unwrap()
        .with_heartbeat(Duration::from_secs(5))
        .unwrap();
    let a = lock.try_acquire("k", "a", lease).await.unwrap();
    let token_a = a.token();
    drop(a);
    let b = lock
        .acquire("k", "b", lease, Duration::from_secs(300))
        .await
        .expect("the dropped guard's lease lapses");
    assert!(b.token() > token_a);
}

#[tokio::test]
async fn a_key_of_exactly_the_maximum_length_is_accepted_and_the_config_is_kept() {
    let clock = Arc::new(ManualClock::auto_advancing(ManualClock::EPOCH_2025));
    let config = LockConfig {
        poll_interval: Duration::from_millis(1_234),
        ..LockConfig::default()
    };
    let lock = LeaseLock::new(MemoryLockStore::new(), clock, config.clone()).unwrap();
    assert_eq!(lock.config().poll_interval, config.poll_interval);
    let lease = Lease::new(Duration::from_secs(30))
        .unwrap()
        .without_heartbeat();
    let longest = "k".repeat(1024);
    let guard = lock.try_acquire(&longest, "a", lease).await.unwrap();
    lock.release(&guard).await.unwrap();
    let too_long = "k".repeat(1025);
    let err = lock.try_acquire(&too_long, "a", lease).await.unwrap_err();
    assert!(err.to_string().contains("at most 1024 bytes"), "{err}");
}

/// A stored lease of exactly the maximum is a lease like any other: the
/// record is held, not corrupt.
#[tokio::test]
async fn a_stored_lease_of_exactly_the_maximum_is_held_not_an_error() {
    let store = MemoryLockStore::new();
    let record = LockRecord {
        lease: Lease::MAX_DURATION,
        ..absurd_record("k")
    };
    store.write(&record, &WriteCondition::Absent).await.unwrap();
    let clock = Arc::new(ManualClock::new(ManualClock::EPOCH_2025));
    let lock = LeaseLock::new(store, clock, LockConfig::default()).unwrap();
    let lease = Lease::new(LEASE).unwrap().without_heartbeat();
    let err = lock.try_acquire("k", "a", lease).await.unwrap_err();
    assert!(err.is_held(), "{err}");
}
