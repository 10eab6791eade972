//! The updater's durable memory of a runner: quarantined releases, the
//! highest version that ran successfully (to detect an operator's manual
//! rollback), an operator's hold, and the last outcome.

use std::{
    collections::HashMap,
    fmt::Debug,
    path::PathBuf,
    sync::{Arc, Mutex},
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use runner_version::Version;
use serde::{Deserialize, Serialize};
use update_policy::{Hold, QuarantineEntry};

use crate::{Error, ErrorClass, Result, fs::write_atomically, journal::file_name};

/// The last finished update of a runner, for `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastOutcome {
    /// When it finished.
    pub at: DateTime<Utc>,
    /// The release version it tried.
    pub version: Version,
    /// The outcome code (`succeeded`, `rolled_back`, ...).
    pub outcome: String,
    /// One sentence.
    pub summary: String,
}

/// Everything the updater remembers about one runner.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunnerRecord {
    /// Failed releases and when each may be retried.
    #[serde(default)]
    pub quarantine: Vec<QuarantineEntry>,
    /// The highest version that ran successfully after an update by this
    /// updater (or that an operator acknowledged).
    #[serde(default)]
    pub highest_successful_version: Option<Version>,
    /// An operator's hold: no update while it is active.
    #[serde(default)]
    pub hold: Option<Hold>,
    /// The last finished update.
    #[serde(default)]
    pub last_outcome: Option<LastOutcome>,
}

impl RunnerRecord {
    /// Adds or replaces the entry for `entry.version`.
    pub fn quarantine(&mut self, entry: QuarantineEntry) {
        self.quarantine.retain(|e| e.version != entry.version);
        self.quarantine.push(entry);
    }

    /// Removes the entry of `version`; whether there was one.
    pub fn clear_quarantine(&mut self, version: &Version) -> bool {
        let before = self.quarantine.len();
        self.quarantine.retain(|e| &e.version != version);
        before != self.quarantine.len()
    }
}

/// The revision of a stored [`RunnerRecord`] (0: none stored), for
/// compare-and-swap.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Revision(pub u64);

/// A store of [`RunnerRecord`]s, one per runner key, with compare-and-swap.
///
/// Contract: [`load`](Self::load) is strongly consistent and returns the
/// stored revision; [`store`](Self::store) writes only if the stored
/// revision is still `expected` (then the new revision is `expected + 1`)
/// and answers `false` otherwise. Use [`modify`] for read-modify-write.
#[async_trait]
pub trait QuarantineStore: Send + Sync + Debug + 'static {
    /// A short backend name (`memory`, `file`, `dynamodb`).
    fn backend_name(&self) -> &'static str;

    /// The record of `key` (the default record when none is stored).
    async fn load(&self, key: &str) -> Result<(RunnerRecord, Revision)>;

    /// Stores `record` if the stored revision is `expected`.
    async fn store(&self, key: &str, record: &RunnerRecord, expected: Revision) -> Result<bool>;
}

macro_rules! forward_store {
    ($ty:ty) => {
        #[async_trait]
        impl<T: QuarantineStore + ?Sized> QuarantineStore for $ty {
            fn backend_name(&self) -> &'static str {
                (**self).backend_name()
            }
            async fn load(&self, key: &str) -> Result<(RunnerRecord, Revision)> {
                (**self).load(key).await
            }
            async fn store(
                &self,
                key: &str,
                record: &RunnerRecord,
                expected: Revision,
            ) -> Result<bool> {
                (**self).store(key, record, expected).await
            }
        }
    };
}
forward_store!(Arc<T>);
forward_store!(Box<T>);

/// Read-modify-write of the record of `key`: applies `change` to the latest
/// record and stores it, retrying on concurrent changes (8 attempts).
pub async fn modify(
    store: &dyn QuarantineStore,
    key: &str,
    mut change: impl FnMut(&mut RunnerRecord) + Send,
) -> Result<RunnerRecord> {
    for _ in 0..8 {
        let (mut record, revision) = store.load(key).await?;
        change(&mut record);
        if store.store(key, &record, revision).await? {
            return Ok(record);
        }
    }
    Err(Error::Contended { key: key.into() })
}

/// Records in memory; clones share them.
///
/// ```
/// use runner_updater::{MemoryQuarantine, QuarantineStore, modify};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryQuarantine::default();
/// modify(&store, "runner", |r| r.highest_successful_version = Some("20250101.1".parse().unwrap()))
///     .await
///     .unwrap();
/// let (record, revision) = store.load("runner").await.unwrap();
/// assert_eq!(record.highest_successful_version.unwrap().to_string(), "20250101.1");
/// assert_eq!(revision.0, 1);
/// # });
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryQuarantine {
    records: Arc<Mutex<HashMap<String, (RunnerRecord, Revision)>>>,
}

#[async_trait]
impl QuarantineStore for MemoryQuarantine {
    fn backend_name(&self) -> &'static str {
        "memory"
    }

    async fn load(&self, key: &str) -> Result<(RunnerRecord, Revision)> {
        let records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        Ok(records.get(key).cloned().unwrap_or_default())
    }

    async fn store(&self, key: &str, record: &RunnerRecord, expected: Revision) -> Result<bool> {
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        let current = records.get(key).map_or(Revision(0), |(_, r)| *r);
        if current != expected {
            return Ok(false);
        }
        records.insert(key.into(), (record.clone(), Revision(expected.0 + 1)));
        Ok(true)
    }
}

/// Records as JSON files (`<key>.runner.json`) in a directory, written
/// under an OS file lock (`<key>.runner.lock`) with fsync and rename.
#[derive(Debug, Clone)]
pub struct FileQuarantine {
    dir: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct StoredRecord {
    revision: Revision,
    record: RunnerRecord,
}

impl FileQuarantine {
    /// A store in `dir`, created if missing.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|e| {
            Error::store(
                "quarantine",
                dir.display().to_string(),
                ErrorClass::Permanent,
                e,
            )
        })?;
        Ok(Self { dir })
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(file_name(key, ".runner.json"))
    }

    fn read(path: &std::path::Path) -> Result<(RunnerRecord, Revision)> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let stored: StoredRecord =
                    serde_json::from_slice(&bytes).map_err(|e| Error::CorruptRecord {
                        what: "quarantine",
                        resource: path.display().to_string(),
                        reason: e.to_string(),
                    })?;
                Ok((stored.record, stored.revision))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Default::default()),
            Err(e) => Err(Error::store(
                "quarantine",
                path.display().to_string(),
                ErrorClass::Transient,
                e,
            )),
        }
    }
}

#[async_trait]
impl QuarantineStore for FileQuarantine {
    fn backend_name(&self) -> &'static str {
        "file"
    }

    async fn load(&self, key: &str) -> Result<(RunnerRecord, Revision)> {
        let path = self.path(key);
        tokio::task::spawn_blocking(move || Self::read(&path))
            .await
            .map_err(|e| Error::store("quarantine", "file", ErrorClass::Transient, e))?
    }

    async fn store(&self, key: &str, record: &RunnerRecord, expected: Revision) -> Result<bool> {
        let path = self.path(key);
        let lock_path = self.dir.join(file_name(key, ".runner.lock"));
        let record = record.clone();
        tokio::task::spawn_blocking(move || {
            let io = |e: std::io::Error| {
                Error::store(
                    "quarantine",
                    path.display().to_string(),
                    ErrorClass::Transient,
                    e,
                )
            };
            let lock = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)
                .map_err(io)?;
            lock.lock().map_err(io)?;
            let (_, current) = Self::read(&path)?;
            if current != expected {
                return Ok(false);
            }
            let stored = StoredRecord {
                revision: Revision(expected.0 + 1),
                record,
            };
            let bytes = serde_json::to_vec_pretty(&stored).map_err(|e| {
                Error::store(
                    "quarantine",
                    path.display().to_string(),
                    ErrorClass::Permanent,
                    e,
                )
            })?;
            write_atomically(&path, &bytes).map_err(io)?;
            drop(lock);
            Ok(true)
        })
        .await
        .map_err(|e| Error::store("quarantine", "file", ErrorClass::Transient, e))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(version: &str) -> QuarantineEntry {
        QuarantineEntry {
            version: version.parse().unwrap(),
            image_digest: None,
            reason: "crash loop".into(),
            attempts: 1,
            retry_after: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    #[test]
    fn clearing_a_quarantine_removes_only_that_version_and_says_whether_it_was_there() {
        let mut record = RunnerRecord::default();
        record.quarantine(entry("20250102.1"));
        record.quarantine(entry("20250103.1"));
        assert!(!record.clear_quarantine(&"20250104.1".parse().unwrap()));
        assert_eq!(record.quarantine.len(), 2);
        assert!(record.clear_quarantine(&"20250102.1".parse().unwrap()));
        let left: Vec<String> = record
            .quarantine
            .iter()
            .map(|e| e.version.to_string())
            .collect();
        assert_eq!(left, ["20250103.1"]);
        assert!(!record.clear_quarantine(&"20250102.1".parse().unwrap()));
    }

    #[tokio::test]
    async fn the_memory_store_refuses_a_write_from_a_stale_revision() {
        // Two updaters read the same record; the second write would lose
        // the first's quarantine entry, so it must be refused.
        let store = MemoryQuarantine::default();
        let (_, first) = store.load("runners/a").await.unwrap();
        let mut record = RunnerRecord::default();
        record.quarantine(entry("20250102.1"));
        assert!(store.store("runners/a", &record, first).await.unwrap());
        assert!(
            !store
                .store("runners/a", &RunnerRecord::default(), first)
                .await
                .unwrap()
        );
        let (stored, now) = store.load("runners/a").await.unwrap();
        assert_eq!(stored, record);
        assert_ne!(now, first);
        assert!(store.store("runners/a", &stored, now).await.unwrap());
        let (_, after) = store.load("runners/a").await.unwrap();
        assert!(
            after != now && after != first,
            "every write moves the revision"
        );
    }

    #[tokio::test]
    async fn a_missing_record_file_is_an_empty_record_but_an_unreadable_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileQuarantine::open(dir.path()).unwrap();
        let (record, revision) = store.load("runners/a").await.unwrap();
        assert_eq!(record, RunnerRecord::default());
        assert_eq!(revision, Revision(0));
        // A directory where the record should be: not "no record".
        std::fs::create_dir(store.path("runners/b")).unwrap();
        assert!(store.load("runners/b").await.is_err());
    }
}
