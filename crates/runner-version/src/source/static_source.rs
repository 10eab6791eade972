//! Releases from memory or from manifest files.

use std::{collections::HashMap, io, path::PathBuf, sync::Mutex};

use async_trait::async_trait;

use crate::{Channel, Error, ErrorClass, Release, ReleaseCheck, ReleaseSource, ReleaseVerifier};

#[derive(Debug, Clone)]
enum Entry {
    Memory(Box<Release>),
    File(PathBuf),
}

/// Releases held in memory, or read from manifest files: for tests, the
/// demo, and air-gapped installs.
///
/// - [`publish`](Self::publish) puts a release in memory for its channel;
///   it is not parsed again, but still [admitted](ReleaseVerifier::admit)
///   on every check (channel, pinned images, expiry, rollback).
/// - [`with_manifest_file`](Self::with_manifest_file) maps a channel to a
///   manifest file (either format), read and fully verified on every check,
///   so an operator can publish by replacing the file.
///
/// ```
/// use runner_version::{Channel, ImageRef, Release, ReleaseSource, ReleaseVerifier, StaticSource};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let verifier = ReleaseVerifier::builder().allow_unsigned().build().unwrap();
/// let source = StaticSource::new(verifier);
/// let digest = format!("sha256:{}", "ab".repeat(32));
/// source.publish(Release {
///     version: "20250101.3".parse().unwrap(),
///     channel: Channel::Stable,
///     image: ImageRef::parse(&format!("public.ecr.aws/gitpod/runner@{digest}")).unwrap(),
///     proxy_image: None,
///     infra_version: Some("v42".into()),
///     template_url: "https://example.com/runner.json".into(),
///     template_sha256: None,
///     released_at: None,
///     expires: None,
/// });
/// let release = source.latest(&Channel::Stable).await.unwrap();
/// assert_eq!(release.version.to_string(), "20250101.3");
/// assert!(source.latest(&Channel::Latest).await.is_err()); // not published
/// # });
/// ```
#[derive(Debug)]
pub struct StaticSource {
    entries: Mutex<HashMap<Channel, Entry>>,
    verifier: ReleaseVerifier,
}

impl StaticSource {
    /// An empty source whose releases go through `verifier`.
    pub fn new(verifier: ReleaseVerifier) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            verifier,
        }
    }

    /// Serves the manifest file at `path` for `channel`.
    pub fn with_manifest_file(self, channel: Channel, path: impl Into<PathBuf>) -> Self {
        self.entries
            .lock()
            .expect("poisoned")
            .insert(channel, Entry::File(path.into()));
        self
    }

    /// Publishes `release` on its channel, replacing what was there.
    pub fn publish(&self, release: Release) {
        self.entries
            .lock()
            .expect("poisoned")
            .insert(release.channel.clone(), Entry::Memory(Box::new(release)));
    }

    /// Removes whatever is published on `channel`.
    pub fn unpublish(&self, channel: &Channel) {
        self.entries.lock().expect("poisoned").remove(channel);
    }
}

#[async_trait]
impl ReleaseSource for StaticSource {
    async fn check(&self, channel: &Channel) -> Result<ReleaseCheck, Error> {
        let entry = self.entries.lock().expect("poisoned").get(channel).cloned();
        let release = match entry {
            None => {
                return Err(Error::ChannelNotPublished {
                    channel: channel.to_string(),
                    source_name: "static source".into(),
                });
            }
            Some(Entry::Memory(release)) => *release,
            Some(Entry::File(path)) => {
                let origin = path.display().to_string();
                let bytes = tokio::fs::read(&path).await.map_err(|source| {
                    if source.kind() == io::ErrorKind::NotFound {
                        return Error::ChannelNotPublished {
                            channel: channel.to_string(),
                            source_name: format!("manifest file {origin} (missing)"),
                        };
                    }
                    Error::Storage {
                        action: "read",
                        path: origin.clone(),
                        class: ErrorClass::Permanent,
                        source,
                    }
                })?;
                self.verifier.decode(&bytes, channel, &origin)?.0
            }
        };
        self.verifier.admit(&release, channel).await?;
        Ok(ReleaseCheck::Fetched(release))
    }
}
