//! Where releases come from.

#[cfg(feature = "http")]
mod gitpod_api;
#[cfg(feature = "http")]
mod http_config;
#[cfg(feature = "http")]
mod http_manifest;
mod static_source;

#[cfg(feature = "http")]
pub use gitpod_api::{BearerToken, GitpodApiSource, GitpodApiSourceBuilder, RunnerSettings};
#[cfg(feature = "http")]
pub use http_config::HttpConfig;
#[cfg(feature = "http")]
pub use http_manifest::{HttpManifestSource, HttpManifestSourceBuilder, HttpSourceStats};
pub use static_source::StaticSource;

use std::{fmt::Debug, sync::Arc};

use async_trait::async_trait;

use crate::{Channel, Error, Release};

/// The result of asking a source for the newest release of a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseCheck {
    /// The source returned a release document, which was parsed and
    /// verified.
    Fetched(Release),
    /// The source said the document did not change since the last check
    /// (HTTP 304): the cached release is returned without parsing, after
    /// re-checking its expiry and the high-water mark.
    NotModified(Release),
}

impl ReleaseCheck {
    /// The release, however it was obtained.
    pub fn release(&self) -> &Release {
        match self {
            Self::Fetched(r) | Self::NotModified(r) => r,
        }
    }

    /// The release, however it was obtained.
    pub fn into_release(self) -> Release {
        match self {
            Self::Fetched(r) | Self::NotModified(r) => r,
        }
    }
}

/// A source of releases: an HTTP manifest, the Gitpod API, a file, memory,
/// or an embedder's own.
///
/// Contract (checked by the `conformance` suite):
/// - [`check`](Self::check) returns the newest release published on
///   `channel`, after the source's [`ReleaseVerifier`](crate::ReleaseVerifier)
///   admitted it: signatures (or the explicit unsigned opt-in), channel,
///   images pinned by digest, not expired, not lower than the highest version
///   accepted before.
/// - A channel the source does not publish is [`Error::ChannelNotPublished`].
/// - Rollback is [`Error::Rollback`], expiry [`Error::Expired`], signature
///   failures their own variants; a source never falls back to an older
///   release on its own.
/// - Backend failures carry an [`ErrorClass`](crate::ErrorClass)
///   ([`Error::class`]).
#[async_trait]
pub trait ReleaseSource: Send + Sync + Debug + 'static {
    /// The newest release on `channel`, and whether it was freshly fetched.
    async fn check(&self, channel: &Channel) -> Result<ReleaseCheck, Error>;

    /// The newest release on `channel`.
    async fn latest(&self, channel: &Channel) -> Result<Release, Error> {
        Ok(self.check(channel).await?.into_release())
    }
}

#[async_trait]
impl<T: ReleaseSource + ?Sized> ReleaseSource for Arc<T> {
    async fn check(&self, channel: &Channel) -> Result<ReleaseCheck, Error> {
        (**self).check(channel).await
    }
    async fn latest(&self, channel: &Channel) -> Result<Release, Error> {
        (**self).latest(channel).await
    }
}

#[async_trait]
impl<T: ReleaseSource + ?Sized> ReleaseSource for Box<T> {
    async fn check(&self, channel: &Channel) -> Result<ReleaseCheck, Error> {
        (**self).check(channel).await
    }
    async fn latest(&self, channel: &Channel) -> Result<Release, Error> {
        (**self).latest(channel).await
    }
}
