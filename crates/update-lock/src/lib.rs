//! A fleet-wide lease lock with fencing tokens for the ECS self-updater:
//! only one update per service runs at a time, across processes and hosts,
//! and a holder that dies is taken over after its lease.
//!
//! - [`UpdateLock`]: the object-safe trait (`try_acquire`, bounded
//!   `acquire`, `renew`, `release`, `inspect`).
//! - [`LeaseLock`]: its implementation over any [`LockStore`], with the lease
//!   rules of amazon-dynamodb-lock-client (lease *duration* stored; staleness
//!   judged on the contender's monotonic clock; record version replaced on
//!   every write; background heartbeat at most every half lease; conditional
//!   release) plus a [`FencingToken`] that strictly increases per key.
//! - [`LeaseGuard`]: call [`check`](LeaseGuard::check) before each
//!   state-changing step; it is lost for good once a renewal fails its
//!   condition.
//!
//! Backends ([`LockStore`]s):
//! - [`MemoryLockStore`]: one process, for tests and demos.
//! - [`FileLockStore`]: several processes on one machine; survives a crash.
//! - `dynamodb::DynamoDbLockStore` (feature `aws`): across hosts, with
//!   conditional writes; the module documents the table schema and
//!   `create_table_if_missing`.
//!
//! The `conformance` feature exposes the behaviour suite every backend runs.
//!
//! Every wait, lease and heartbeat runs on an injected
//! [`Clock`](update_clock::Clock). Heartbeats are tokio tasks, so acquire
//! inside a tokio runtime.
//!
//! Metrics (through the `metrics` facade, label `backend`):
//! `update_lock_acquisitions_total{kind=new|free|takeover}`,
//! `update_lock_takeovers_total`, `update_lock_contended_total`,
//! `update_lock_wait_seconds`, `update_lock_heartbeat_failures_total{kind}`,
//! `update_lock_leases_lost_total{reason}`.
//!
//! ```
//! use std::{sync::Arc, time::Duration};
//! use update_clock::ManualClock;
//! use update_lock::{Lease, LeaseLock, LockError, UpdateLock};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let clock = ManualClock::new(ManualClock::EPOCH_2025);
//! let lock = LeaseLock::in_memory(Arc::new(clock.clone()));
//! let lease = Lease::new(Duration::from_secs(60))?.without_heartbeat();
//!
//! let guard = lock.try_acquire("svc/runner", "host-a", lease).await?;
//! let token = guard.check()?; // before each step; pass `token` along
//!
//! // Someone else is refused while the lease is valid...
//! let refused = lock.try_acquire("svc/runner", "host-b", lease).await;
//! assert!(matches!(refused, Err(LockError::Held { ref holder, .. }) if holder == "host-a"));
//!
//! // ...and takes over once host-a has been silent for a full lease.
//! clock.advance(Duration::from_secs(60));
//! assert!(guard.check().is_err());
//! let next = lock.try_acquire("svc/runner", "host-b", lease).await?;
//! assert!(next.token() > token);
//! lock.release(&next).await?;
//! # Ok::<(), LockError>(())
//! # }).unwrap();
//! ```
#![warn(missing_docs)]

#[cfg(feature = "conformance")]
pub mod conformance;
#[cfg(feature = "aws")]
pub mod dynamodb;
mod error;
mod file;
mod guard;
mod lease;
mod lease_lock;
mod memory;
mod record;
mod store;
mod update_lock;

pub use error::{BackendErrorKind, BoxError, LockError, LossReason};
pub use file::FileLockStore;
pub use guard::{LeaseGuard, LeaseStatus};
pub use lease::{Lease, LockConfig};
pub use lease_lock::LeaseLock;
pub use memory::MemoryLockStore;
pub use record::{
    FencingToken, LockRecord, RecordVersion, WriteCondition, WriteOutcome, WriteReport,
};
pub use store::LockStore;
pub use update_lock::UpdateLock;
