//! Where releases come from.

#[cfg(feature = "http")]
mod gitpod_api;
#[cfg(feature = "http")]
mod http_config;
#[cfg(feature = "http")]
mod http_manifest;
mod static_source;
#[cfg(feature = "tuf")]
mod tuf;

#[cfg(feature = "http")]
pub use gitpod_api::{BearerToken, GitpodApiSource, GitpodApiSourceBuilder, RunnerSettings};
#[cfg(feature = "http")]
pub use http_config::HttpConfig;
#[cfg(feature = "http")]
pub use http_manifest::{HttpManifestSource, HttpManifestSourceBuilder, HttpSourceStats};
pub use static_source::StaticSource;
#[cfg(feature = "tuf")]
pub use tuf::{TufDocumentTrust, TufReleaseSource, TufReleaseSourceBuilder};

use std::{fmt::Debug, sync::Arc};

use async_trait::async_trait;

use crate::{AdmittedRelease, Channel, Error};

/// The result of asking a source for the newest release of a channel.
///
/// Both variants carry an [`AdmittedRelease`], which only the
/// [`ReleaseVerifier`](crate::ReleaseVerifier) makes: a source cannot hand
/// out a release that skipped admission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseCheck {
    /// The source returned a release document, which was parsed, verified
    /// and admitted.
    Fetched(AdmittedRelease),
    /// The source said the document did not change since the last check
    /// (HTTP 304): the cached release is returned without parsing, after
    /// admitting it again (expiry and the high-water mark re-checked).
    NotModified(AdmittedRelease),
}

impl ReleaseCheck {
    /// The release, however it was obtained (it reads as a
    /// [`Release`](crate::Release)).
    pub fn release(&self) -> &AdmittedRelease {
        match self {
            Self::Fetched(r) | Self::NotModified(r) => r,
        }
    }

    /// The release, however it was obtained.
    pub fn into_release(self) -> AdmittedRelease {
        match self {
            Self::Fetched(r) | Self::NotModified(r) => r,
        }
    }
}

/// A source of releases: an HTTP manifest, the Gitpod API, a file, memory,
/// or an embedder's own.
///
/// An embedder's own source admits what it reads through its
/// [`ReleaseVerifier`](crate::ReleaseVerifier):
/// [`verify`](crate::ReleaseVerifier::verify) for manifest bytes (signed or,
/// on explicit opt-in, unsigned), or
/// [`admit`](crate::ReleaseVerifier::admit) for a bare
/// [`Release`](crate::Release) on a verifier that allows unsigned releases;
/// there is no other way to build the [`ReleaseCheck`] it returns.
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
    async fn latest(&self, channel: &Channel) -> Result<AdmittedRelease, Error> {
        Ok(self.check(channel).await?.into_release())
    }
}

#[async_trait]
impl<T: ReleaseSource + ?Sized> ReleaseSource for Arc<T> {
    async fn check(&self, channel: &Channel) -> Result<ReleaseCheck, Error> {
        (**self).check(channel).await
    }
    async fn latest(&self, channel: &Channel) -> Result<AdmittedRelease, Error> {
        (**self).latest(channel).await
    }
}

#[async_trait]
impl<T: ReleaseSource + ?Sized> ReleaseSource for Box<T> {
    async fn check(&self, channel: &Channel) -> Result<ReleaseCheck, Error> {
        (**self).check(channel).await
    }
    async fn latest(&self, channel: &Channel) -> Result<AdmittedRelease, Error> {
        (**self).latest(channel).await
    }
}
