//! The file backend: one machine, several processes, survives a crash.

use std::{
    fs::{File, OpenOptions},
    io::{ErrorKind, Write},
    path::{Path, PathBuf},
    time::Duration,
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    BackendErrorKind, FencingToken, LockError, LockRecord, LockStore, RecordVersion,
    WriteCondition, WriteOutcome,
};

/// Lock records as JSON state files in a directory, one per key, written
/// under an OS file lock ([`File::lock`]) on a sibling `.lock` file.
///
/// - `<dir>/<encoded key>.lock`: held exclusively for the few microseconds of
///   a conditional write, never while a lease is held, so a crashed process
///   leaves nothing stuck (the OS drops its file locks).
/// - `<dir>/<encoded key>.json`: the record, replaced atomically (write a
///   temporary file, `fsync` it, rename it over).
///
/// The key is encoded so any key is a safe file name: ASCII letters, digits,
/// `-` and `_` stay, every other byte becomes `%XX`. An encoded name too
/// long for a file name (255 bytes with its `.json.tmp` suffix) keeps a
/// readable prefix followed by `~` and the SHA-256 of the key in hex. Each
/// state file stores its key, and a read checks it: a file of another key
/// (a case-insensitive file system mapping two keys to one name) is an
/// error, never somebody else's lock.
///
/// With `fsync` on (the default) the directory is also `fsync`ed after
/// each rename, so the new name survives a power loss.
///
/// For processes on **one machine**: advisory locks on network file systems
/// are not reliable. Use the DynamoDB backend across hosts.
#[derive(Debug, Clone)]
pub struct FileLockStore {
    dir: PathBuf,
    fsync: bool,
}

/// The on-disk format of a record.
#[derive(Debug, Serialize, Deserialize)]
struct RecordFile {
    format: u32,
    key: String,
    holder: Option<String>,
    lease_ms: u64,
    version: RecordVersion,
    token: FencingToken,
    written_at: DateTime<Utc>,
}

const FORMAT: u32 = 1;

impl FileLockStore {
    /// A store in `dir`, created if missing.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, LockError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)
            .map_err(|e| io_error(&dir, "create the lock directory", e))?;
        Ok(Self { dir, fsync: true })
    }

    /// Whether to `fsync` state files before renaming them into place
    /// (default `true`). Without it a record survives a process crash but
    /// possibly not a power loss.
    pub fn with_fsync(mut self, fsync: bool) -> Self {
        self.fsync = fsync;
        self
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The state file of `key`.
    pub fn state_path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{}.json", encode_key(key)))
    }

    fn lock_path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{}.lock", encode_key(key)))
    }

    fn read(path: &Path, key: &str) -> Result<Option<LockRecord>, LockError> {
        let text = match std::fs::read(path) {
            Ok(text) => text,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(path, "read the lock state file", e)),
        };
        let file: RecordFile = serde_json::from_slice(&text).map_err(|e| {
            LockError::backend(
                BackendErrorKind::Permanent,
                path.display().to_string(),
                format!(
                    "the lock state file is not valid JSON ({e}); inspect it, and delete it only \
                     when no process holds the lock"
                ),
            )
        })?;
        if file.format != FORMAT {
            return Err(LockError::backend(
                BackendErrorKind::Permanent,
                path.display().to_string(),
                format!(
                    "unknown state file format {} (this build reads {FORMAT})",
                    file.format
                ),
            ));
        }
        if file.key != key {
            return Err(LockError::backend(
                BackendErrorKind::Permanent,
                path.display().to_string(),
                format!(
                    "the state file holds lock key {:?}, not {key:?}: two keys map to one file \
                     (a case-insensitive file system?); use keys that differ in more than case, \
                     or a lock directory on a case-sensitive file system",
                    file.key
                ),
            ));
        }
        Ok(Some(LockRecord {
            key: file.key,
            holder: file.holder,
            lease: Duration::from_millis(file.lease_ms),
            version: file.version,
            token: file.token,
            written_at: file.written_at,
        }))
    }

    /// Runs `f` on the stored record of `key` while holding the key's OS
    /// file lock, so no lock write of any process on this machine can
    /// happen in between: the building block of writes fenced by the lock
    /// (an update journal written only while its writer still holds the
    /// lock with a given token). Blocking: call it from
    /// `spawn_blocking` in async code. `f` must be short; it delays every
    /// lock operation on `key`.
    ///
    /// ```
    /// use update_lock::FileLockStore;
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let store = FileLockStore::open(dir.path()).unwrap();
    /// let free = store.with_record_locked("svc", |record| Ok(record.is_none())).unwrap();
    /// assert!(free);
    /// ```
    pub fn with_record_locked<R>(
        &self,
        key: &str,
        f: impl FnOnce(Option<&LockRecord>) -> Result<R, LockError>,
    ) -> Result<R, LockError> {
        let lock_path = self.lock_path(key);
        let lock_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| io_error(&lock_path, "open the lock file", e))?;
        lock_file
            .lock()
            .map_err(|e| io_error(&lock_path, "lock the lock file", e))?;
        let stored = Self::read(&self.state_path(key), key)?;
        let result = f(stored.as_ref());
        drop(lock_file);
        result
    }

    fn write_blocking(
        &self,
        record: &LockRecord,
        condition: &WriteCondition,
    ) -> Result<WriteOutcome, LockError> {
        let lock_path = self.lock_path(&record.key);
        let lock_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| io_error(&lock_path, "open the lock file", e))?;
        lock_file
            .lock()
            .map_err(|e| io_error(&lock_path, "lock the lock file", e))?;
        let state_path = self.state_path(&record.key);
        let stored = Self::read(&state_path, &record.key)?;
        let holds = match (condition, &stored) {
            (WriteCondition::Absent, None) => true,
            (WriteCondition::VersionIs(v), Some(stored)) => stored.version == *v,
            _ => false,
        };
        if !holds {
            return Ok(WriteOutcome::ConditionFailed);
        }
        let file = RecordFile {
            format: FORMAT,
            key: record.key.clone(),
            holder: record.holder.clone(),
            lease_ms: u64::try_from(record.lease.as_millis()).unwrap_or(u64::MAX),
            version: record.version.clone(),
            token: record.token,
            written_at: record.written_at,
        };
        let bytes = serde_json::to_vec_pretty(&file).map_err(|e| {
            LockError::backend(
                BackendErrorKind::Permanent,
                state_path.display().to_string(),
                e,
            )
        })?;
        let tmp_path = state_path.with_extension("json.tmp");
        let mut tmp = File::create(&tmp_path)
            .map_err(|e| io_error(&tmp_path, "create the temporary state file", e))?;
        tmp.write_all(&bytes)
            .map_err(|e| io_error(&tmp_path, "write the temporary state file", e))?;
        if self.fsync {
            tmp.sync_all()
                .map_err(|e| io_error(&tmp_path, "fsync the temporary state file", e))?;
        }
        drop(tmp);
        std::fs::rename(&tmp_path, &state_path)
            .map_err(|e| io_error(&state_path, "rename the state file into place", e))?;
        if self.fsync {
            sync_dir(&self.dir)?;
        }
        // The lock is released when `lock_file` is dropped.
        drop(lock_file);
        Ok(WriteOutcome::Written)
    }
}

/// `fsync`s a directory so a rename in it is durable (a no-op where
/// directories cannot be opened as files).
fn sync_dir(dir: &Path) -> Result<(), LockError> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_error(dir, "fsync the lock directory", e))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// The longest file name (NAME_MAX on Linux and macOS).
const NAME_MAX: usize = 255;
/// The longest suffix added to an encoded key (`.json.tmp`).
const LONGEST_SUFFIX: usize = ".json.tmp".len();

/// Encodes a key as a file name: `[A-Za-z0-9_-]` kept, other bytes `%XX`;
/// a name too long for [`NAME_MAX`] with its suffix becomes a prefix of it,
/// `~` and the key's SHA-256 in hex.
pub(crate) fn encode_key(key: &str) -> String {
    use sha2::Digest;
    let encoded = percent_encode(key);
    if encoded.len() + LONGEST_SUFFIX <= NAME_MAX {
        return encoded;
    }
    let digest = sha2::Sha256::digest(key.as_bytes());
    let hash: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let mut keep = NAME_MAX - LONGEST_SUFFIX - 1 - hash.len();
    // Never cut a `%XX` escape in half.
    while let Some(pos) = encoded[..keep].rfind('%') {
        if pos + 3 <= keep {
            break;
        }
        keep = pos;
    }
    format!("{}~{hash}", &encoded[..keep])
}

fn percent_encode(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for byte in key.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn io_error(path: &Path, action: &str, error: std::io::Error) -> LockError {
    let kind = match error.kind() {
        ErrorKind::Interrupted | ErrorKind::WouldBlock | ErrorKind::TimedOut => {
            BackendErrorKind::Transient
        }
        _ => BackendErrorKind::Permanent,
    };
    LockError::backend(
        kind,
        path.display().to_string(),
        format!("cannot {action}: {error}"),
    )
}

fn join_error(dir: &Path, error: tokio::task::JoinError) -> LockError {
    LockError::backend(
        BackendErrorKind::Transient,
        dir.display().to_string(),
        format!("the blocking file task failed: {error}"),
    )
}

#[async_trait]
impl LockStore for FileLockStore {
    fn backend_name(&self) -> &'static str {
        "file"
    }

    async fn load(&self, key: &str) -> Result<Option<LockRecord>, LockError> {
        // The state file is replaced by rename, so an unlocked read sees
        // either the old or the new record, never a mix.
        let path = self.state_path(key);
        let key = key.to_string();
        tokio::task::spawn_blocking(move || Self::read(&path, &key))
            .await
            .map_err(|e| join_error(&self.dir, e))?
    }

    async fn write(
        &self,
        record: &LockRecord,
        condition: &WriteCondition,
    ) -> Result<WriteOutcome, LockError> {
        let store = self.clone();
        let record = record.clone();
        let condition = condition.clone();
        tokio::task::spawn_blocking(move || store.write_blocking(&record, &condition))
            .await
            .map_err(|e| join_error(&self.dir, e))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_encoding_table() {
        let cases = [
            ("runner-prod", "runner-prod"),
            ("a_b", "a_b"),
            ("..", "%2E%2E"),
            ("a/b", "a%2Fb"),
            ("svc:eu-west-1", "svc%3Aeu-west-1"),
            ("ü", "%C3%BC"),
            ("50%", "50%25"),
        ];
        for (key, encoded) in cases {
            assert_eq!(encode_key(key), encoded, "{key}");
        }
    }

    #[test]
    fn long_keys_are_hashed_to_fit_name_max() {
        for key in [
            "a".repeat(246),
            "a".repeat(247),
            "ü".repeat(512),
            "%".repeat(1024),
        ] {
            let name = encode_key(&key);
            assert!(name.len() + LONGEST_SUFFIX <= NAME_MAX, "{}", name.len());
            if percent_encode(&key).len() + LONGEST_SUFFIX > NAME_MAX {
                assert!(name.contains('~'), "{name}");
                assert!(percent_encode(&key).starts_with(name.split('~').next().unwrap()));
            } else {
                assert_eq!(name, key);
            }
        }
        // Keys that share the kept prefix still get different names.
        let (a, b) = ("x".repeat(300) + "a", "x".repeat(300) + "b");
        assert_ne!(encode_key(&a), encode_key(&b));
        // A long key works end to end.
        let dir = tempfile::tempdir().unwrap();
        let store = FileLockStore::open(dir.path()).unwrap();
        let record = LockRecord {
            key: a.clone(),
            holder: Some("h".into()),
            lease: Duration::from_secs(1),
            version: RecordVersion::random(),
            token: FencingToken::new(1),
            written_at: DateTime::<Utc>::UNIX_EPOCH,
        };
        assert_eq!(
            store
                .write_blocking(&record, &WriteCondition::Absent)
                .unwrap(),
            WriteOutcome::Written
        );
        assert_eq!(
            FileLockStore::read(&store.state_path(&a), &a).unwrap(),
            Some(record)
        );
    }

    #[test]
    fn a_state_file_of_another_key_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileLockStore::open(dir.path()).unwrap();
        let record = LockRecord {
            key: "Svc".into(),
            holder: Some("h".into()),
            lease: Duration::from_secs(1),
            version: RecordVersion::random(),
            token: FencingToken::new(1),
            written_at: DateTime::<Utc>::UNIX_EPOCH,
        };
        store
            .write_blocking(&record, &WriteCondition::Absent)
            .unwrap();
        // As a case-insensitive file system would: `svc` opens `Svc`'s file.
        std::fs::copy(store.state_path("Svc"), store.state_path("svc")).unwrap();
        let err = FileLockStore::read(&store.state_path("svc"), "svc").unwrap_err();
        assert_eq!(err.backend_kind(), Some(BackendErrorKind::Permanent));
        assert!(err.to_string().contains("\"Svc\""), "{err}");
        let other = LockRecord {
            key: "svc".into(),
            ..record
        };
        assert!(
            store
                .write_blocking(&other, &WriteCondition::Absent)
                .is_err()
        );
    }

    #[test]
    fn corrupt_state_file_is_a_permanent_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileLockStore::open(dir.path()).unwrap();
        std::fs::write(store.state_path("k"), b"{not json").unwrap();
        let err = FileLockStore::read(&store.state_path("k"), "k").unwrap_err();
        assert_eq!(err.backend_kind(), Some(BackendErrorKind::Permanent));
        assert!(err.to_string().contains("k.json"), "{err}");
    }
}
