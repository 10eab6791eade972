//! The conformance suite on the in-memory and file backends.

use std::sync::Arc;

use update_clock::ManualClock;
use update_lock::{FileLockStore, LeaseLock, LockConfig, MemoryLockStore, conformance};

fn memory() -> (LeaseLock<MemoryLockStore>, ManualClock) {
    let clock = ManualClock::new(ManualClock::EPOCH_2025);
    (LeaseLock::in_memory(Arc::new(clock.clone())), clock)
}

fn file() -> (LeaseLock<FileLockStore>, ManualClock, tempfile::TempDir) {
    let clock = ManualClock::new(ManualClock::EPOCH_2025);
    let dir = tempfile::tempdir().expect("temp dir");
    let store = FileLockStore::open(dir.path()).expect("open store");
    let lock = LeaseLock::new(store, Arc::new(clock.clone()), LockConfig::default()).expect("lock");
    (lock, clock, dir)
}

macro_rules! suite {
    ($($behaviour:ident),* $(,)?) => {
        mod memory_backend {
            use super::*;
            $(
                #[tokio::test]
                async fn $behaviour() {
                    let (lock, clock) = memory();
                    conformance::$behaviour(&lock, &clock).await;
                }
            )*
        }
        mod file_backend {
            use super::*;
            $(
                #[tokio::test]
                async fn $behaviour() {
                    let (lock, clock, _dir) = file();
                    conformance::$behaviour(&lock, &clock).await;
                }
            )*
        }
    };
}

suite!(
    exclusive_acquire,
    reentrant_refusal,
    release_by_non_owner_refused,
    takeover_after_expiry,
    fencing_monotonic_across_takeovers,
    heartbeat_keeps_it,
    lost_heartbeat_detected,
);

/// The whole suite through `Arc<dyn UpdateLock>`, sharing one store and one
/// clock between behaviours.
#[tokio::test]
async fn whole_suite_through_arc_dyn() {
    let (lock, clock) = memory();
    let lock: Arc<dyn update_lock::UpdateLock> = Arc::new(lock);
    conformance::run_all(&lock, &clock).await;
}
