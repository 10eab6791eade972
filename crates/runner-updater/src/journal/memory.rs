//! The in-memory journal, fenced by a [`MemoryLockStore`].

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use async_trait::async_trait;
use update_lock::MemoryLockStore;

use super::{Fence, Journal, JournalEntry};
use crate::Result;

/// Journal entries in memory, fenced by the records of `locks` (the store
/// the updater's [`LeaseLock`](update_lock::LeaseLock) uses). Clones share
/// the entries.
///
/// ```
/// use runner_updater::{Journal, MemoryJournal};
/// use update_lock::MemoryLockStore;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let journal = MemoryJournal::new(MemoryLockStore::new());
/// assert!(journal.load("runner").await.unwrap().is_none());
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct MemoryJournal {
    locks: MemoryLockStore,
    entries: Arc<Mutex<HashMap<String, JournalEntry>>>,
}

impl MemoryJournal {
    /// A journal fenced by `locks`.
    pub fn new(locks: MemoryLockStore) -> Self {
        Self {
            locks,
            entries: Arc::default(),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, JournalEntry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl Journal for MemoryJournal {
    fn backend_name(&self) -> &'static str {
        "memory"
    }

    async fn load(&self, key: &str) -> Result<Option<JournalEntry>> {
        Ok(self.entries().get(key).cloned())
    }

    async fn write(&self, entry: &JournalEntry, fence: &Fence) -> Result<()> {
        // The lock store's mutex is held across the check and the write, so
        // no takeover can slip in between.
        self.locks.with_record(&fence.key, |record| {
            fence.admits(record)?;
            self.entries().insert(entry.key.clone(), entry.clone());
            Ok(())
        })
    }
}
