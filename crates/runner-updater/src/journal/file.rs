//! The file journal, fenced by a [`FileLockStore`] (same directory, same OS
//! file lock).

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use update_lock::{FileLockStore, LockError};

use super::{Fence, Journal, JournalEntry, file_name};
use crate::{Error, ErrorClass, Result, fs::write_atomically};

/// One JSON file per key (`<key>.journal.json`) in the lock store's
/// directory, written under the lock file's OS lock (temporary file, fsync,
/// rename, directory fsync), so a write and the fence check are atomic with
/// respect to every lock write on this machine.
///
/// For one machine only; an updater that runs inside the ECS service it
/// updates loses its local files with its task: use the DynamoDB journal
/// there.
#[derive(Debug, Clone)]
pub struct FileJournal {
    locks: FileLockStore,
}

impl FileJournal {
    /// A journal next to the records of `locks`.
    pub fn new(locks: FileLockStore) -> Self {
        Self { locks }
    }

    /// The journal file of `key`.
    pub fn path(&self, key: &str) -> PathBuf {
        self.locks.dir().join(file_name(key, ".journal.json"))
    }
}

fn read(path: &Path) -> Result<Option<JournalEntry>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::store(
                "journal",
                path.display().to_string(),
                ErrorClass::Transient,
                e,
            ));
        }
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Error::CorruptRecord {
            what: "journal",
            resource: path.display().to_string(),
            reason: e.to_string(),
        })
}

#[async_trait]
impl Journal for FileJournal {
    fn backend_name(&self) -> &'static str {
        "file"
    }

    async fn load(&self, key: &str) -> Result<Option<JournalEntry>> {
        let path = self.path(key);
        tokio::task::spawn_blocking(move || read(&path))
            .await
            .map_err(|e| Error::store("journal", "file", ErrorClass::Transient, e))?
    }

    async fn write(&self, entry: &JournalEntry, fence: &Fence) -> Result<()> {
        let path = self.path(&entry.key);
        let locks = self.locks.clone();
        let entry = entry.clone();
        let fence = fence.clone();
        tokio::task::spawn_blocking(move || {
            let mut outcome: Result<()> = Ok(());
            locks
                .with_record_locked(&fence.key, |record| {
                    outcome = fence.admits(record).and_then(|()| {
                        let bytes = serde_json::to_vec_pretty(&entry).map_err(|e| {
                            Error::store(
                                "journal",
                                path.display().to_string(),
                                ErrorClass::Permanent,
                                e,
                            )
                        })?;
                        write_atomically(&path, &bytes).map_err(|e| {
                            Error::store(
                                "journal",
                                path.display().to_string(),
                                ErrorClass::Transient,
                                e,
                            )
                        })
                    });
                    Ok::<(), LockError>(())
                })
                .map_err(Error::Lock)?;
            outcome
        })
        .await
        .map_err(|e| Error::store("journal", "file", ErrorClass::Transient, e))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_journal_is_none_but_an_unreadable_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            read(&dir.path().join("absent.journal.json"))
                .unwrap()
                .is_none()
        );
        // A directory where the journal should be: not "no journal" (which
        // would start a new update over an unfinished one).
        assert!(read(dir.path()).is_err());
    }
}
