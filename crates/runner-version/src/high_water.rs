//! The highest version accepted per channel (rollback protection).

use std::{
    collections::BTreeMap,
    fmt::Debug,
    sync::{Arc, Mutex},
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Channel, Error, Version};

/// What [`HighWaterMark::advance`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HighWaterAdvance {
    /// The mark rose to the offered version.
    Raised {
        /// The mark before, `None` on the first accepted release.
        previous: Option<Version>,
    },
    /// The offered version equals the mark (same precedence): nothing to do.
    Unchanged,
}

/// The signed document a release was accepted from, kept next to the
/// version by [`HighWaterMark::advance_signed`] so that another document of
/// the same version is refused as [`Error::Replay`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptedDocument {
    /// The sha256 (hex) of the canonical signed document
    /// ([`SignatureReport::document_sha256`](crate::SignatureReport::document_sha256)).
    pub sha256: String,
    /// The document's `expires`: once passed, another document of the same
    /// version may replace it. `None`: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<DateTime<Utc>>,
}

/// Stores, per channel, the highest release version ever accepted, so a
/// source that starts serving an older release (a rollback attack, a stale
/// mirror) is refused.
///
/// Contract:
/// - [`advance`](HighWaterMark::advance) is an atomic compare-and-raise:
///   a version lower than the mark is [`Error::Rollback`] and leaves the
///   mark alone; an equal one is [`HighWaterAdvance::Unchanged`]; a higher
///   one raises the mark. Versions compare by precedence (semver build
///   metadata is ignored); a version of another scheme than the mark is
///   [`Error::MixedVersionSchemes`].
/// - [`advance_signed`](HighWaterMark::advance_signed) does the same and
///   also remembers the signed document: an equal version from another
///   document is [`Error::Replay`] while the remembered document has not
///   expired at `now` (after that, or when the mark rises, the new document
///   is remembered); the same document again is `Unchanged`.
/// - Channels are independent.
#[async_trait]
pub trait HighWaterMark: Send + Sync + Debug + 'static {
    /// The mark of `channel`, `None` if nothing was accepted yet.
    async fn highest(&self, channel: &Channel) -> Result<Option<Version>, Error>;

    /// Raises the mark of `channel` to `version`, or refuses a rollback.
    async fn advance(
        &self,
        channel: &Channel,
        version: &Version,
    ) -> Result<HighWaterAdvance, Error>;

    /// Raises the mark of `channel` to `version` accepted from the signed
    /// `document`, or refuses a rollback or a replay (see the contract).
    async fn advance_signed(
        &self,
        channel: &Channel,
        version: &Version,
        document: &AcceptedDocument,
        now: DateTime<Utc>,
    ) -> Result<HighWaterAdvance, Error>;
}

#[async_trait]
impl<T: HighWaterMark + ?Sized> HighWaterMark for Arc<T> {
    async fn highest(&self, channel: &Channel) -> Result<Option<Version>, Error> {
        (**self).highest(channel).await
    }
    async fn advance(
        &self,
        channel: &Channel,
        version: &Version,
    ) -> Result<HighWaterAdvance, Error> {
        (**self).advance(channel, version).await
    }
    async fn advance_signed(
        &self,
        channel: &Channel,
        version: &Version,
        document: &AcceptedDocument,
        now: DateTime<Utc>,
    ) -> Result<HighWaterAdvance, Error> {
        (**self)
            .advance_signed(channel, version, document, now)
            .await
    }
}

#[async_trait]
impl<T: HighWaterMark + ?Sized> HighWaterMark for Box<T> {
    async fn highest(&self, channel: &Channel) -> Result<Option<Version>, Error> {
        (**self).highest(channel).await
    }
    async fn advance(
        &self,
        channel: &Channel,
        version: &Version,
    ) -> Result<HighWaterAdvance, Error> {
        (**self).advance(channel, version).await
    }
    async fn advance_signed(
        &self,
        channel: &Channel,
        version: &Version,
        document: &AcceptedDocument,
        now: DateTime<Utc>,
    ) -> Result<HighWaterAdvance, Error> {
        (**self)
            .advance_signed(channel, version, document, now)
            .await
    }
}

/// The version rule shared by the backends.
fn decide(
    channel: &Channel,
    current: Option<&Version>,
    offered: &Version,
) -> Result<HighWaterAdvance, Error> {
    let Some(current) = current else {
        return Ok(HighWaterAdvance::Raised { previous: None });
    };
    if offered.is_newer_than(current)? {
        Ok(HighWaterAdvance::Raised {
            previous: Some(current.clone()),
        })
    } else if current.is_newer_than(offered)? {
        Err(Error::Rollback {
            channel: channel.to_string(),
            offered: offered.to_string(),
            highest_accepted: current.to_string(),
        })
    } else {
        Ok(HighWaterAdvance::Unchanged)
    }
}

/// The marks of every channel: the state of both backends, and the JSON of
/// [`FileHighWaterMark`].
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Marks {
    channels: BTreeMap<String, Version>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    documents: BTreeMap<String, AcceptedDocument>,
}

impl Marks {
    /// Applies an offer; returns the outcome and whether the marks changed.
    fn apply(
        &mut self,
        channel: &Channel,
        version: &Version,
        document: Option<(&AcceptedDocument, DateTime<Utc>)>,
    ) -> Result<(HighWaterAdvance, bool), Error> {
        let key = channel.as_str();
        let outcome = decide(channel, self.channels.get(key), version)?;
        match &outcome {
            HighWaterAdvance::Raised { .. } => {
                self.channels.insert(key.to_string(), version.clone());
                match document {
                    Some((document, _)) => {
                        self.documents.insert(key.to_string(), document.clone());
                    }
                    None => {
                        self.documents.remove(key);
                    }
                }
                Ok((outcome, true))
            }
            HighWaterAdvance::Unchanged => {
                let Some((document, now)) = document else {
                    return Ok((outcome, false));
                };
                match self.documents.get(key) {
                    Some(accepted) if accepted.sha256 == document.sha256 => Ok((outcome, false)),
                    Some(accepted) if accepted.expires.is_none_or(|expires| expires >= now) => {
                        Err(Error::Replay {
                            channel: channel.to_string(),
                            version: version.to_string(),
                            accepted_sha256: accepted.sha256.clone(),
                            offered_sha256: document.sha256.clone(),
                        })
                    }
                    _ => {
                        self.documents.insert(key.to_string(), document.clone());
                        Ok((outcome, true))
                    }
                }
            }
        }
    }
}

/// A high-water mark in memory: lost on restart. The default of
/// [`ReleaseVerifier`](crate::ReleaseVerifier).
#[derive(Debug, Default)]
pub struct MemoryHighWaterMark {
    marks: Mutex<Marks>,
}

impl MemoryHighWaterMark {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl HighWaterMark for MemoryHighWaterMark {
    async fn highest(&self, channel: &Channel) -> Result<Option<Version>, Error> {
        Ok(self
            .marks
            .lock()
            .expect("poisoned")
            .channels
            .get(channel.as_str())
            .cloned())
    }

    async fn advance(
        &self,
        channel: &Channel,
        version: &Version,
    ) -> Result<HighWaterAdvance, Error> {
        let mut marks = self.marks.lock().expect("poisoned");
        Ok(marks.apply(channel, version, None)?.0)
    }

    async fn advance_signed(
        &self,
        channel: &Channel,
        version: &Version,
        document: &AcceptedDocument,
        now: DateTime<Utc>,
    ) -> Result<HighWaterAdvance, Error> {
        let mut marks = self.marks.lock().expect("poisoned");
        Ok(marks.apply(channel, version, Some((document, now)))?.0)
    }
}

#[cfg(feature = "fs")]
pub use file::FileHighWaterMark;

#[cfg(feature = "fs")]
mod file {
    //! The file-backed store (feature `fs`).

    use std::{
        io,
        path::{Path, PathBuf},
    };

    use super::*;
    use crate::ErrorClass;

    /// A high-water mark in a JSON file (`{"channels": {"stable": "20250101.3"}}`,
    /// plus the accepted signed documents' hashes), so rollback and replay
    /// protection survive restarts.
    ///
    /// Safe across processes and crashes: every compare-and-raise holds an
    /// exclusive lock ([`std::fs::File::lock`]) on a sibling lock file
    /// (`.<name>.lock`, left in place), so two stores on one path, in one
    /// process or several, never lose a raise; a raise writes a temporary file
    /// created exclusively next to the target, syncs it, renames it over the
    /// target and syncs the directory (every step's error is reported), so a
    /// crash leaves the old or the new mark, never a torn file. The file I/O
    /// runs on tokio's blocking pool.
    ///
    /// ```
    /// use runner_version::{Channel, Error, FileHighWaterMark, HighWaterMark};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let dir = tempfile::tempdir().unwrap();
    /// let store = FileHighWaterMark::new(dir.path().join("marks.json"));
    /// store.advance(&Channel::Stable, &"20250101.2".parse().unwrap()).await.unwrap();
    /// let other = FileHighWaterMark::new(dir.path().join("marks.json"));
    /// let err = other.advance(&Channel::Stable, &"20250101.1".parse().unwrap()).await.unwrap_err();
    /// assert!(matches!(err, Error::Rollback { .. }));
    /// # });
    /// ```
    #[derive(Debug)]
    pub struct FileHighWaterMark {
        path: PathBuf,
    }

    fn storage_error(action: &'static str, path: &Path, source: io::Error) -> Error {
        let class = match source.kind() {
            io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                ErrorClass::Transient
            }
            _ => ErrorClass::Permanent,
        };
        Error::Storage {
            action,
            path: path.display().to_string(),
            class,
            source,
        }
    }

    /// A sibling of `path` named `.<name><suffix>`.
    fn sibling(path: &Path, suffix: &str) -> PathBuf {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "high-water-mark".into());
        path.with_file_name(format!(".{name}{suffix}"))
    }

    fn load(path: &Path) -> Result<Marks, Error> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                storage_error("parse", path, io::Error::new(io::ErrorKind::InvalidData, e))
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Marks::default()),
            Err(e) => Err(storage_error("read", path, e)),
        }
    }

    /// Replaces `path` with `marks`, durably. The caller holds the lock, so the
    /// temporary name is free; one left by a crash is removed first.
    fn store(path: &Path, marks: &Marks) -> Result<(), Error> {
        use std::io::Write as _;
        let bytes = serde_json::to_vec_pretty(marks).expect("marks always serialise");
        let temp = sibling(path, ".tmp");
        match std::fs::remove_file(&temp) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(storage_error("remove stale", &temp, e)),
        }
        let write = || -> io::Result<()> {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&temp)?;
            f.write_all(&bytes)?;
            f.sync_all()
        };
        if let Err(e) = write() {
            let _ = std::fs::remove_file(&temp);
            return Err(storage_error("write", &temp, e));
        }
        if let Err(e) = std::fs::rename(&temp, path) {
            let _ = std::fs::remove_file(&temp);
            return Err(storage_error("rename", path, e));
        }
        sync_dir(path)
    }

    /// Makes the rename itself durable.
    #[cfg(unix)]
    fn sync_dir(path: &Path) -> Result<(), Error> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| storage_error("sync directory", dir, e))
    }

    /// Directories cannot be opened for syncing here; the rename is as durable
    /// as the platform makes it.
    #[cfg(not(unix))]
    fn sync_dir(_path: &Path) -> Result<(), Error> {
        Ok(())
    }

    impl FileHighWaterMark {
        /// A store in `path` (created on the first raise; its directory must
        /// exist).
        pub fn new(path: impl Into<PathBuf>) -> Self {
            Self { path: path.into() }
        }

        /// The file.
        pub fn path(&self) -> &Path {
            &self.path
        }

        /// Runs `f` on the blocking pool.
        async fn blocking<T: Send + 'static>(
            &self,
            f: impl FnOnce(&Path) -> Result<T, Error> + Send + 'static,
        ) -> Result<T, Error> {
            let path = self.path.clone();
            let shown = self.path.clone();
            tokio::task::spawn_blocking(move || f(&path))
                .await
                .map_err(|e| storage_error("update", &shown, io::Error::other(e.to_string())))?
        }

        /// Compare-and-raise under the cross-process lock.
        async fn update(
            &self,
            channel: &Channel,
            version: &Version,
            document: Option<(&AcceptedDocument, DateTime<Utc>)>,
        ) -> Result<HighWaterAdvance, Error> {
            let channel = channel.clone();
            let version = version.clone();
            let document = document.map(|(d, now)| (d.clone(), now));
            self.blocking(move |path| {
                let lock_path = sibling(path, ".lock");
                let lock = std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&lock_path)
                    .map_err(|e| storage_error("open lock", &lock_path, e))?;
                lock.lock()
                    .map_err(|e| storage_error("lock", &lock_path, e))?;
                let mut marks = load(path)?;
                let (outcome, changed) =
                    marks.apply(&channel, &version, document.as_ref().map(|(d, n)| (d, *n)))?;
                if changed {
                    store(path, &marks)?;
                }
                // Dropping the handle releases the lock.
                drop(lock);
                Ok(outcome)
            })
            .await
        }
    }

    #[async_trait]
    impl HighWaterMark for FileHighWaterMark {
        async fn highest(&self, channel: &Channel) -> Result<Option<Version>, Error> {
            let key = channel.as_str().to_string();
            // The target is only ever replaced by a rename: no lock is needed to
            // read a whole file.
            self.blocking(move |path| Ok(load(path)?.channels.remove(&key)))
                .await
        }

        async fn advance(
            &self,
            channel: &Channel,
            version: &Version,
        ) -> Result<HighWaterAdvance, Error> {
            self.update(channel, version, None).await
        }

        async fn advance_signed(
            &self,
            channel: &Channel,
            version: &Version,
            document: &AcceptedDocument,
            now: DateTime<Utc>,
        ) -> Result<HighWaterAdvance, Error> {
            self.update(channel, version, Some((document, now))).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        s.parse().unwrap()
    }

    #[test]
    fn decide_table() {
        let stable = Channel::Stable;
        let cases = [
            (None, "20250101.1", "raised"),
            (Some("20250101.1"), "20250101.2", "raised"),
            (Some("20250101.2"), "20250101.2", "unchanged"),
            (Some("20250101.10"), "20250101.9", "rollback"),
            (Some("1.0.0+a"), "1.0.0+b", "unchanged"),
            (Some("1.0.0"), "1.0.0-rc.1", "rollback"),
            (Some("1.0.0"), "20250101.1", "mixed"),
        ];
        for (current, offered, want) in cases {
            let current = current.map(v);
            let got = match decide(&stable, current.as_ref(), &v(offered)) {
                Ok(HighWaterAdvance::Raised { .. }) => "raised",
                Ok(HighWaterAdvance::Unchanged) => "unchanged",
                Err(Error::Rollback { .. }) => "rollback",
                Err(Error::MixedVersionSchemes { .. }) => "mixed",
                Err(e) => panic!("{e}"),
            };
            assert_eq!(got, want, "{current:?} -> {offered}");
        }
    }

    #[cfg(feature = "fs")]
    #[tokio::test]
    async fn file_store_survives_reopen_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("marks.json");
        let store = FileHighWaterMark::new(&path);
        store
            .advance(&Channel::Stable, &v("20250101.2"))
            .await
            .unwrap();
        drop(store);
        let reopened = FileHighWaterMark::new(&path);
        assert_eq!(
            reopened.highest(&Channel::Stable).await.unwrap(),
            Some(v("20250101.2"))
        );
        assert!(matches!(
            reopened.advance(&Channel::Stable, &v("20250101.1")).await,
            Err(Error::Rollback { .. })
        ));
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, [".marks.json.lock", "marks.json"]);
    }

    #[cfg(feature = "fs")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_advances_keep_the_maximum() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(FileHighWaterMark::new(dir.path().join("marks.json")));
        // Builds offered in a scrambled order by 40 concurrent tasks.
        let tasks: Vec<_> = (0..40u64)
            .map(|i| (i * 17) % 40)
            .map(|build| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .advance(&Channel::Stable, &v(&format!("20250101.{build}")))
                        .await
                })
            })
            .collect();
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) | Err(Error::Rollback { .. }) => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(
            store.highest(&Channel::Stable).await.unwrap(),
            Some(v("20250101.39"))
        );
    }

    #[cfg(feature = "fs")]
    #[tokio::test]
    async fn corrupt_file_is_a_storage_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("marks.json");
        std::fs::write(&path, b"{not json").unwrap();
        let err = FileHighWaterMark::new(&path)
            .highest(&Channel::Stable)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::Storage {
                    action: "parse",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[tokio::test]
    async fn boxed_and_shared_stores_forward_to_the_store() {
        let shared: Arc<dyn HighWaterMark> = Arc::new(MemoryHighWaterMark::new());
        let boxed: Box<dyn HighWaterMark> = Box::new(shared.clone());
        boxed
            .advance(&Channel::Stable, &v("20250101.2"))
            .await
            .unwrap();
        assert_eq!(
            boxed.highest(&Channel::Stable).await.unwrap(),
            Some(v("20250101.2"))
        );
        assert_eq!(
            shared.highest(&Channel::Stable).await.unwrap(),
            Some(v("20250101.2"))
        );
    }
}
