//! Releases from memory or from manifest files.

use std::{collections::HashMap, sync::Mutex};
#[cfg(feature = "fs")]
use std::{io, path::PathBuf};

use async_trait::async_trait;

#[cfg(feature = "fs")]
use crate::ErrorClass;
use crate::{Channel, Error, Release, ReleaseCheck, ReleaseSource, ReleaseVerifier};

#[derive(Debug, Clone)]
enum Entry {
    Memory(Box<Release>),
    Bytes(std::sync::Arc<[u8]>),
    #[cfg(feature = "fs")]
    File(PathBuf),
}

/// Releases held in memory, or read from manifest files: for tests, the
/// demo, and air-gapped installs.
///
/// - [`publish`](Self::publish) puts a release in memory for its channel;
///   it is not parsed again, but goes through the same checks as an
///   unsigned network manifest on every check: refused
///   ([`Error::MissingSignature`]) unless the verifier
///   [allows unsigned manifests](crate::ReleaseVerifierBuilder::allow_unsigned),
///   then [admitted](ReleaseVerifier::admit) (channel, pinned images,
///   expiry, rollback). To serve signed releases, use
///   [`publish_manifest`](Self::publish_manifest).
/// - `with_manifest_file` (feature `fs`) maps a channel to a
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
///     waves: Default::default(),
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

    /// Serves the manifest file at `path` for `channel` (feature `fs`).
    #[cfg(feature = "fs")]
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

    /// Publishes manifest `bytes` (either format) for `channel`, replacing
    /// what was there: verified exactly like a manifest file or an HTTP
    /// response on every check (signatures, channel, expiry, rollback).
    pub fn publish_manifest(&self, channel: Channel, bytes: impl Into<Vec<u8>>) {
        self.entries
            .lock()
            .expect("poisoned")
            .insert(channel, Entry::Bytes(bytes.into().into()));
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
        let (release, authentication) = match entry {
            None => {
                return Err(Error::ChannelNotPublished {
                    channel: channel.to_string(),
                    source_name: "static source".into(),
                });
            }
            Some(Entry::Memory(release)) => {
                // A published release carries no signature: it passes only
                // where an unsigned manifest would, like on the network.
                let admitted = self.verifier.admit(*release, channel).await?;
                return Ok(ReleaseCheck::Fetched(admitted));
            }
            Some(Entry::Bytes(bytes)) => {
                self.verifier
                    .decode(&bytes, channel, "static source (published manifest)")?
            }
            #[cfg(feature = "fs")]
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
                self.verifier.decode(&bytes, channel, &origin)?
            }
        };
        let release = self
            .verifier
            .admit_decoded(release, &authentication, channel)
            .await?;
        Ok(ReleaseCheck::Fetched(release))
    }
}
