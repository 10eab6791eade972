//! The storage contract a backend implements: load a record and write one
//! conditionally. All lease logic lives in [`LeaseLock`](crate::LeaseLock).

use std::{fmt::Debug, sync::Arc};

use async_trait::async_trait;

use crate::{LockError, LockRecord, WriteCondition, WriteOutcome, WriteReport};

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
/// - [`write_reporting`](LockStore::write_reporting) is the same write that
///   may also return the record that failed the condition; the default
///   calls `write` and returns none (the lock then reads the record).
///
/// A write may land even though the call failed (a timeout) or answered
/// `ConditionFailed` (an SDK retry of a write whose first attempt landed):
/// the lock recognises its own record by version and token.
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

    /// Like [`write`](LockStore::write), and when the condition fails,
    /// the stored record that failed it if the backend can return it
    /// atomically with the failure. Override it when the backend can (the
    /// DynamoDB store does); the default returns no record.
    async fn write_reporting(
        &self,
        record: &LockRecord,
        condition: &WriteCondition,
    ) -> Result<WriteReport, LockError> {
        self.write(record, condition).await.map(WriteReport::from)
    }
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
    async fn write_reporting(
        &self,
        record: &LockRecord,
        condition: &WriteCondition,
    ) -> Result<WriteReport, LockError> {
        (**self).write_reporting(record, condition).await
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
    async fn write_reporting(
        &self,
        record: &LockRecord,
        condition: &WriteCondition,
    ) -> Result<WriteReport, LockError> {
        (**self).write_reporting(record, condition).await
    }
}
