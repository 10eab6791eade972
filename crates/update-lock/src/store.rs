//! The storage contract a backend implements: load a record and write one
//! conditionally. All lease logic lives in [`LeaseLock`](crate::LeaseLock).

use std::{fmt::Debug, sync::Arc};

use async_trait::async_trait;

use crate::{LockError, LockRecord, WriteCondition, WriteOutcome};

/// A store of [`LockRecord`]s with conditional writes.
///
/// Contract:
/// - [`load`](LockStore::load) returns the latest written record (a
///   strongly consistent read).
/// - [`write`](LockStore::write) stores `record` only if `condition` holds
///   for the stored record of `record.key`, atomically with respect to every
///   other writer of this store (other processes and hosts included), and
///   answers [`WriteOutcome::ConditionFailed`] otherwise. A failed condition
///   is never an error.
/// - Failures are [`LockError::Backend`] with a class; a write whose outcome
///   is unknown (timeout) is reported as `Transient`.
#[async_trait]
pub trait LockStore: Send + Sync + Debug + 'static {
    /// A short backend name for metrics and logs (`memory`, `file`, `dynamodb`).
    fn backend_name(&self) -> &'static str;

    /// The current record of `key`, if any.
    async fn load(&self, key: &str) -> Result<Option<LockRecord>, LockError>;

    /// Writes `record` if `condition` holds.
    async fn write(
        &self,
        record: &LockRecord,
        condition: &WriteCondition,
    ) -> Result<WriteOutcome, LockError>;
}

#[async_trait]
impl<T: LockStore + ?Sized> LockStore for Arc<T> {
    fn backend_name(&self) -> &'static str {
        (**self).backend_name()
    }
    async fn load(&self, key: &str) -> Result<Option<LockRecord>, LockError> {
        (**self).load(key).await
    }
    async fn write(
        &self,
        record: &LockRecord,
        condition: &WriteCondition,
    ) -> Result<WriteOutcome, LockError> {
        (**self).write(record, condition).await
    }
}

#[async_trait]
impl<T: LockStore + ?Sized> LockStore for Box<T> {
    fn backend_name(&self) -> &'static str {
        (**self).backend_name()
    }
    async fn load(&self, key: &str) -> Result<Option<LockRecord>, LockError> {
        (**self).load(key).await
    }
    async fn write(
        &self,
        record: &LockRecord,
        condition: &WriteCondition,
    ) -> Result<WriteOutcome, LockError> {
        (**self).write(record, condition).await
    }
}
