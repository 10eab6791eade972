//! A holder process that crashes (abort, no release, no destructor) is
//! taken over through the file backend only after its lease, never before.
//!
//! The test binary re-runs itself as the child: `crashing_holder_child`
//! does its work only when `UPDATE_LOCK_CRASH_DIR` is set.

use std::{process::Command, sync::Arc, time::Duration};

use update_clock::{ManualClock, SystemClock};
use update_lock::{FileLockStore, Lease, LeaseLock, LockConfig, LockError, UpdateLock};

const KEY: &str = "svc/crash";
const LEASE: Duration = Duration::from_secs(10);
const DIR_VAR: &str = "UPDATE_LOCK_CRASH_DIR";

#[tokio::test]
async fn crashing_holder_child() {
    let Ok(dir) = std::env::var(DIR_VAR) else {
        return; // Only meaningful as the child of the test below.
    };
    let store = FileLockStore::open(dir).expect("open store");
    let lock = LeaseLock::new(store, Arc::new(SystemClock::new()), LockConfig::default()).unwrap();
    let guard = lock
        .try_acquire(KEY, "crashing-child", Lease::new(LEASE).unwrap())
        .await
        .expect("child acquires");
    println!("TOKEN {}", guard.token());
    use std::io::Write;
    std::io::stdout().flush().unwrap();
    // Die like a killed process: no release, no destructors.
    std::process::abort();
}

#[tokio::test]
async fn crashed_holder_is_taken_over_only_after_its_lease() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crashing_holder_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DIR_VAR, dir.path())
        .output()
        .expect("run child");
    assert!(!output.status.success(), "the child must die by abort");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let child_token: u64 = stdout
        .lines()
        .find_map(|l| l.split("TOKEN ").nth(1))
        .unwrap_or_else(|| panic!("child printed no token: {stdout}"))
        .trim()
        .parse()
        .unwrap();

    let clock = ManualClock::new(ManualClock::EPOCH_2025);
    let store = FileLockStore::open(dir.path()).unwrap();
    let lock = LeaseLock::new(store, Arc::new(clock.clone()), LockConfig::default()).unwrap();
    let lease = Lease::new(LEASE).unwrap().without_heartbeat();
    let record = lock
        .inspect(KEY)
        .await
        .unwrap()
        .expect("the crashed holder's record survived");
    assert_eq!(record.holder.as_deref(), Some("crashing-child"));
    assert_eq!(record.token.get(), child_token);

    // The OS dropped the child's file lock, but its lease still counts.
    for step in [
        Duration::ZERO,
        LEASE / 2,
        LEASE / 2 - Duration::from_millis(1),
    ] {
        clock.advance(step);
        match lock.try_acquire(KEY, "survivor", lease).await {
            Err(LockError::Held { holder, .. }) => assert_eq!(holder, "crashing-child"),
            other => panic!("taken over before the lease ended: {other:?}"),
        }
    }
    clock.advance(Duration::from_millis(1));
    let guard = lock
        .try_acquire(KEY, "survivor", lease)
        .await
        .expect("takeover after the lease");
    assert!(guard.token().get() > child_token);
    lock.release(&guard).await.unwrap();
}
