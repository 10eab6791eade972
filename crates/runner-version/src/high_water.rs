//! The highest version accepted per channel (rollback protection).

use std::{
    collections::{BTreeMap, HashMap},
    fmt::Debug,
    io,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{Channel, Error, ErrorClass, Version};

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
}

/// The rule shared by the backends.
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

/// A high-water mark in memory: lost on restart. The default of
/// [`ReleaseVerifier`](crate::ReleaseVerifier).
#[derive(Debug, Default)]
pub struct MemoryHighWaterMark {
    marks: Mutex<HashMap<Channel, Version>>,
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
        Ok(self.marks.lock().expect("poisoned").get(channel).cloned())
    }

    async fn advance(
        &self,
        channel: &Channel,
        version: &Version,
    ) -> Result<HighWaterAdvance, Error> {
        let mut marks = self.marks.lock().expect("poisoned");
        let outcome = decide(channel, marks.get(channel), version)?;
        if let HighWaterAdvance::Raised { .. } = outcome {
            marks.insert(channel.clone(), version.clone());
        }
        Ok(outcome)
    }
}

/// A high-water mark in a JSON file (`{"channels": {"stable": "20250101.3"}}`),
/// so rollback protection survives restarts.
///
/// Every raise writes a temporary file next to the target, syncs it and
/// renames it over the target, so a crash leaves the old or the new mark,
/// never a torn file. Writers in one process are serialised; run one
/// updater per file (the update lock already guarantees that).
#[derive(Debug)]
pub struct FileHighWaterMark {
    path: PathBuf,
    write: tokio::sync::Mutex<()>,
    temp_counter: AtomicU64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct MarkFile {
    channels: BTreeMap<String, Version>,
}

impl FileHighWaterMark {
    /// A store in `path` (created on the first raise; its directory must
    /// exist).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            write: tokio::sync::Mutex::new(()),
            temp_counter: AtomicU64::new(0),
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn storage_error(&self, action: &'static str, path: &Path, source: io::Error) -> Error {
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

    async fn load(&self) -> Result<MarkFile, Error> {
        match tokio::fs::read(&self.path).await {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                self.storage_error(
                    "parse",
                    &self.path,
                    io::Error::new(io::ErrorKind::InvalidData, e),
                )
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(MarkFile::default()),
            Err(e) => Err(self.storage_error("read", &self.path, e)),
        }
    }

    async fn store(&self, file: &MarkFile) -> Result<(), Error> {
        let bytes = serde_json::to_vec_pretty(file).expect("marks always serialise");
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "high-water-mark".into());
        let temp = self.path.with_file_name(format!(
            ".{name}.tmp.{}.{}",
            std::process::id(),
            self.temp_counter.fetch_add(1, Ordering::Relaxed)
        ));
        let write = async {
            use tokio::io::AsyncWriteExt as _;
            let mut f = tokio::fs::File::create(&temp).await?;
            f.write_all(&bytes).await?;
            f.sync_all().await
        };
        if let Err(e) = write.await {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(self.storage_error("write", &temp, e));
        }
        if let Err(e) = tokio::fs::rename(&temp, &self.path).await {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(self.storage_error("rename", &self.path, e));
        }
        // Make the rename itself durable.
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty())
            && let Ok(dir) = tokio::fs::File::open(dir).await
        {
            let _ = dir.sync_all().await;
        }
        Ok(())
    }
}

#[async_trait]
impl HighWaterMark for FileHighWaterMark {
    async fn highest(&self, channel: &Channel) -> Result<Option<Version>, Error> {
        Ok(self.load().await?.channels.remove(channel.as_str()))
    }

    async fn advance(
        &self,
        channel: &Channel,
        version: &Version,
    ) -> Result<HighWaterAdvance, Error> {
        let _guard = self.write.lock().await;
        let mut file = self.load().await?;
        let outcome = decide(channel, file.channels.get(channel.as_str()), version)?;
        if let HighWaterAdvance::Raised { .. } = outcome {
            file.channels
                .insert(channel.as_str().to_string(), version.clone());
            self.store(&file).await?;
        }
        Ok(outcome)
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
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["marks.json"]);
    }

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
}
