//! `LeaseGuard::check_for`: a step may start only with its budget of lease
//! left; the record helpers used by fenced writers see the lock's record.

use std::{sync::Arc, time::Duration};

use update_clock::ManualClock;
use update_lock::{Lease, LeaseLock, LockConfig, LockError, MemoryLockStore, UpdateLock};

#[tokio::test]
async fn check_for_requires_the_budget_and_renewal_restores_it() {
    let clock = Arc::new(ManualClock::new(ManualClock::EPOCH_2025));
    let store = MemoryLockStore::new();
    let lock = LeaseLock::new(store.clone(), clock.clone(), LockConfig::default()).unwrap();
    let lease = Lease::new(Duration::from_secs(100))
        .unwrap()
        .without_heartbeat();
    let guard = lock.try_acquire("svc", "a", lease).await.unwrap();
    assert_eq!(
        guard.check_for(Duration::from_secs(60)).unwrap(),
        guard.token()
    );

    clock.advance(Duration::from_secs(50));
    // Valid, but 50 s left is less than a 60 s step.
    assert!(guard.check().is_ok());
    match guard.check_for(Duration::from_secs(60)) {
        Err(LockError::LeaseTooShort {
            remaining_ms,
            needed_ms,
            ..
        }) => {
            // Validity 100 s · 0.99 − 1 s = 98 s (was 100 s before the
            // safety margin), 50 s of it gone.
            assert_eq!((remaining_ms, needed_ms), (48_000, 60_000));
        }
        other => panic!("expected LeaseTooShort, got {other:?}"),
    }
    lock.renew(&guard).await.unwrap();
    assert!(guard.check_for(Duration::from_secs(60)).is_ok());

    // The record seen under the store's mutex is the holder's.
    let (holder, token) = store.with_record("svc", |r| {
        let r = r.unwrap();
        (r.holder.clone(), r.token)
    });
    assert_eq!(holder.as_deref(), Some("a"));
    assert_eq!(token, guard.token());
}

#[tokio::test]
async fn the_file_store_shows_the_record_under_its_os_lock() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(ManualClock::EPOCH_2025));
    let store = update_lock::FileLockStore::open(dir.path()).unwrap();
    let lock = LeaseLock::new(store.clone(), clock, LockConfig::default()).unwrap();
    let guard = lock
        .try_acquire(
            "svc/a",
            "a",
            Lease::new(Duration::from_secs(100))
                .unwrap()
                .without_heartbeat(),
        )
        .await
        .unwrap();
    let token = store
        .with_record_locked("svc/a", |r| Ok(r.map(|r| r.token)))
        .unwrap();
    assert_eq!(token, Some(guard.token()));
    assert!(
        store
            .with_record_locked("other", |r| Ok(r.is_none()))
            .unwrap()
    );
}
