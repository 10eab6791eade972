//! A release that went through admission.

use std::ops::Deref;

use serde::Serialize;

use crate::Release;

/// A [`Release`] that a [`ReleaseVerifier`](crate::ReleaseVerifier)
/// admitted: authenticated (signatures against the trust policy, a TUF
/// repository, or the explicit unsigned opt-in), for the requested channel,
/// [valid](Release::validate) (images pinned by digest), not expired on the
/// verifier's clock, and not below the high-water mark, which was raised.
///
/// The only way a release reaches the rest of the system: every
/// [`ReleaseSource`](crate::ReleaseSource) hands out
/// [`ReleaseCheck`](crate::ReleaseCheck)s of admitted releases, and only the
/// verifier makes one ([`ReleaseVerifier::verify`](crate::ReleaseVerifier::verify)
/// for manifest bytes, [`ReleaseVerifier::admit`](crate::ReleaseVerifier::admit)
/// for a bare [`Release`] on a verifier that allows unsigned releases).
///
/// It reads as a [`Release`] ([`Deref`], [`AsRef`]); [`into_release`](Self::into_release)
/// gives the release up (for storage: a journal keeps the plain release).
/// It serialises as the release, but cannot be deserialised: a document read
/// back from storage has not been admitted.
///
/// A struct literal or a conversion from a [`Release`] does not compile:
///
/// ```compile_fail
/// # use runner_version::{AdmittedRelease, Release};
/// fn forge(release: Release) -> AdmittedRelease {
///     AdmittedRelease(release)
/// }
/// ```
///
/// ```compile_fail
/// # use runner_version::{AdmittedRelease, Release};
/// fn forge(release: Release) -> AdmittedRelease {
///     AdmittedRelease::from(release)
/// }
/// ```
///
/// ```compile_fail
/// # use runner_version::{AdmittedRelease, Release};
/// fn forge(json: &str) -> AdmittedRelease {
///     serde_json::from_str(json).unwrap()
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct AdmittedRelease(Release);

impl AdmittedRelease {
    /// Only the verifier's admission path calls this, after every check
    /// passed.
    pub(crate) fn new(release: Release) -> Self {
        Self(release)
    }

    /// The release, no longer marked as admitted.
    pub fn into_release(self) -> Release {
        self.0
    }
}

impl Deref for AdmittedRelease {
    type Target = Release;

    fn deref(&self) -> &Release {
        &self.0
    }
}

impl AsRef<Release> for AdmittedRelease {
    fn as_ref(&self) -> &Release {
        &self.0
    }
}

impl PartialEq<Release> for AdmittedRelease {
    fn eq(&self, other: &Release) -> bool {
        &self.0 == other
    }
}

impl PartialEq<AdmittedRelease> for Release {
    fn eq(&self, other: &AdmittedRelease) -> bool {
        self == &other.0
    }
}
