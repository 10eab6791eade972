//! The `UpdateLock` trait.

use std::{fmt::Debug, sync::Arc, time::Duration};

use async_trait::async_trait;

use crate::{Lease, LeaseGuard, LockError, LockRecord};

/// A lease lock with fencing tokens, held per key by one owner at a time.
///
/// Contract (checked by the `conformance` suite):
/// - **Exclusive**: while a lease is valid (its guard's
///   [`check`](LeaseGuard::check) passes), no other acquisition of the key
///   succeeds, whoever asks, including the same owner again (no re-entry).
/// - **Fencing**: every successful acquisition returns a token strictly
///   greater than every earlier one for the key, across holders, releases
///   and takeovers.
/// - **Takeover**: a holder that stops renewing is taken over once a
///   contender has seen its record unchanged for one full lease on the
///   contender's own monotonic clock; never earlier.
/// - **Conditional writes**: renewal and release succeed only if the record
///   is still the one this guard last wrote; otherwise they answer
///   [`LockError::LeaseLost`] and the guard is lost for good.
///
/// Errors: [`LockError::Held`] when someone else holds a valid lease,
/// [`LockError::LeaseLost`], [`LockError::Backend`] with a class,
/// [`LockError::InvalidName`].
#[async_trait]
pub trait UpdateLock: Send + Sync + Debug + 'static {
    /// Takes the lock if it is free, released, or stale; never waits.
    async fn try_acquire(
        &self,
        key: &str,
        owner: &str,
        lease: Lease,
    ) -> Result<LeaseGuard, LockError>;

    /// Like [`try_acquire`](Self::try_acquire), polling a held lock until it
    /// is taken or `max_wait` has passed; then answers the last
    /// [`LockError::Held`].
    async fn acquire(
        &self,
        key: &str,
        owner: &str,
        lease: Lease,
        max_wait: Duration,
    ) -> Result<LeaseGuard, LockError>;

    /// Renews the lease now: a conditional write of a new record version.
    async fn renew(&self, guard: &LeaseGuard) -> Result<(), LockError>;

    /// Releases the lock if this guard still owns it; stops its heartbeat.
    /// The record (and the fencing counter) stays, marked free.
    async fn release(&self, guard: &LeaseGuard) -> Result<(), LockError>;

    /// The stored record of `key` (holder, lease, token), if any.
    async fn inspect(&self, key: &str) -> Result<Option<LockRecord>, LockError>;
}

macro_rules! forward_update_lock {
    ($ty:ty) => {
        #[async_trait]
        impl<T: UpdateLock + ?Sized> UpdateLock for $ty {
            async fn try_acquire(
                &self,
                key: &str,
                owner: &str,
                lease: Lease,
            ) -> Result<LeaseGuard, LockError> {
                (**self).try_acquire(key, owner, lease).await
            }
            async fn acquire(
                &self,
                key: &str,
                owner: &str,
                lease: Lease,
                max_wait: Duration,
            ) -> Result<LeaseGuard, LockError> {
                (**self).acquire(key, owner, lease, max_wait).await
            }
            async fn renew(&self, guard: &LeaseGuard) -> Result<(), LockError> {
                (**self).renew(guard).await
            }
            async fn release(&self, guard: &LeaseGuard) -> Result<(), LockError> {
                (**self).release(guard).await
            }
            async fn inspect(&self, key: &str) -> Result<Option<LockRecord>, LockError> {
                (**self).inspect(key).await
            }
        }
    };
}

forward_update_lock!(Arc<T>);
forward_update_lock!(Box<T>);
