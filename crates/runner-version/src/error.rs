//! The error type of this crate.

/// Everything that can go wrong in `runner-version`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A version string is neither `YYYYMMDD.N` nor semver.
    #[error("invalid version {input:?}: {reason}")]
    InvalidVersion {
        /// The text that failed to parse.
        input: String,
        /// Why.
        reason: String,
    },
    /// Two versions of different schemes were compared.
    #[error(
        "cannot compare {left} with {right}: one is a calendar version and the other semver; \
         configure one scheme for the channel"
    )]
    MixedVersionSchemes {
        /// The left-hand version.
        left: String,
        /// The right-hand version.
        right: String,
    },
    /// A channel name is empty or has characters outside `a-z0-9-_.`.
    #[error("invalid channel name {input:?}: use stable, latest, or 1-64 characters of a-z0-9-_.")]
    InvalidChannel {
        /// The rejected name.
        input: String,
    },
    /// An image reference is not a valid OCI reference.
    #[error("invalid image reference {input:?}: {reason}")]
    InvalidImageRef {
        /// The rejected reference.
        input: String,
        /// What the parser said.
        reason: String,
    },
    /// An image that must be deployed by digest has none.
    #[error("image {image} is not pinned by digest; publish it as <repo>@sha256:<hex>")]
    ImageNotPinned {
        /// The tag-only reference.
        image: String,
    },
    /// A release violates an invariant.
    #[error("release {version} is invalid: {reason}")]
    InvalidRelease {
        /// The release's version.
        version: String,
        /// What is wrong.
        reason: String,
    },
}
