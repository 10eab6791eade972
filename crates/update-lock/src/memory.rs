//! The in-memory backend: one process, no persistence.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use async_trait::async_trait;

use crate::{LockError, LockRecord, LockStore, WriteCondition, WriteOutcome, WriteReport};

/// Lock records in a `HashMap` behind a mutex. Clones share the records, so
/// several [`LeaseLock`](crate::LeaseLock)s built on clones contend like
/// separate processes on one store.
#[derive(Debug, Clone, Default)]
pub struct MemoryLockStore {
    records: Arc<Mutex<HashMap<String, LockRecord>>>,
}

impl MemoryLockStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `f` on the stored record of `key` while holding the store's
    /// mutex, so no lock write (acquire, renewal, takeover, release) can
    /// happen in between: the building block of writes fenced by the lock,
    /// such as an update journal that must only be written while its
    /// writer still holds the lock with a given token.
    ///
    /// ```
    /// use update_lock::MemoryLockStore;
    ///
    /// let store = MemoryLockStore::new();
    /// assert!(store.with_record("svc", |record| record.is_none()));
    /// ```
    pub fn with_record<R>(&self, key: &str, f: impl FnOnce(Option<&LockRecord>) -> R) -> R {
        let records = self.records();
        f(records.get(key))
    }

    /// Deletes the record of `key` behind the lock's back, as DynamoDB TTL
    /// or an operator would, and returns it: for tests of a record that
    /// vanishes while held.
    ///
    /// ```
    /// use update_lock::MemoryLockStore;
    ///
    /// assert!(MemoryLockStore::new().remove("svc").is_none());
    /// ```
    pub fn remove(&self, key: &str) -> Option<LockRecord> {
        self.records().remove(key)
    }

    fn records(&self) -> std::sync::MutexGuard<'_, HashMap<String, LockRecord>> {
        // A poisoned mutex only means a panic elsewhere; each record is
        // replaced whole, so the map is consistent.
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl LockStore for MemoryLockStore {
    fn backend_name(&self) -> &'static str {
        "memory"
    }

    async fn load(&self, key: &str) -> Result<Option<LockRecord>, LockError> {
        Ok(self.records().get(key).cloned())
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
        let mut records = self.records();
        let holds = match (condition, records.get(&record.key)) {
            (WriteCondition::Absent, None) => true,
            (WriteCondition::VersionIs(v), Some(stored)) => stored.version == *v,
            _ => false,
        };
        if !holds {
            return Ok(WriteReport::ConditionFailed {
                current: records.get(&record.key).cloned(),
            });
        }
        records.insert(record.key.clone(), record.clone());
        Ok(WriteReport::Written)
    }
}
