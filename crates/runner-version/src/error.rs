//! The error type of this crate.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// How a failure of a backend (an HTTP server, an API, a file) is best
/// handled by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorClass {
    /// Likely to succeed on a later attempt (connection reset, timeout, 5xx).
    Transient,
    /// The server asked us to slow down (HTTP 429, Connect `resource_exhausted`).
    Throttled,
    /// Will fail again until someone changes configuration or data.
    Permanent,
}

impl std::fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Transient => "transient",
            Self::Throttled => "throttled",
            Self::Permanent => "permanent",
        })
    }
}

/// The boxed source of a backend failure.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

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

    /// A configuration (builder, trust policy, verifier) cannot work.
    #[error("invalid configuration of {what}: {reason}")]
    InvalidConfig {
        /// The component being configured.
        what: &'static str,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// A manifest is not valid JSON or does not have the expected shape.
    #[error("malformed manifest from {origin}: {reason}")]
    MalformedManifest {
        /// Where the manifest came from (URL, file, API method).
        origin: String,
        /// What the parser said.
        reason: String,
    },
    /// An API answer is not JSON or lacks an expected field.
    #[error("malformed answer from {endpoint}: {reason}")]
    MalformedResponse {
        /// The API method URL.
        endpoint: String,
        /// What is wrong.
        reason: String,
    },
    /// A signature by a trusted key does not verify (or is not a
    /// well-formed Ed25519 signature): the manifest was altered or forged.
    #[error(
        "bad signature by trusted key {key_id:?}: {reason}; the manifest was altered or signed \
         with a different key, do not deploy it"
    )]
    BadSignature {
        /// The key id the signature claims.
        key_id: String,
        /// Why it failed.
        reason: String,
    },
    /// The manifest carries no signature but the trust policy requires
    /// signatures.
    #[error(
        "manifest from {origin} is not signed but the trust policy requires {required} \
         signature(s); publish a signed envelope or opt in to unsigned manifests explicitly"
    )]
    MissingSignature {
        /// Where the manifest came from.
        origin: String,
        /// The trust policy's threshold.
        required: usize,
    },
    /// Fewer distinct trusted keys signed than the threshold requires.
    #[error(
        "manifest has {valid} valid signature(s) by trusted keys {valid_keys:?} but the \
         threshold is {required}; ignored signatures: {ignored:?}"
    )]
    BelowThreshold {
        /// Distinct trusted keys with a valid signature.
        valid: usize,
        /// The threshold.
        required: usize,
        /// Ids of the keys that counted.
        valid_keys: Vec<String>,
        /// Ids of keys whose signatures did not count (unknown or rotated out).
        ignored: Vec<String>,
    },
    /// Every signature is by a key the trust policy does not know (or has
    /// rotated out).
    #[error(
        "manifest is signed only by keys the trust policy does not trust: {key_ids:?} \
         (rotated out: {rotated_out:?}); add the publisher's current key to the trust policy"
    )]
    UnknownKey {
        /// The unknown key ids found on the manifest.
        key_ids: Vec<String>,
        /// Those among them that were trusted once and have been rotated out.
        rotated_out: Vec<String>,
    },
    /// The offered version is lower than the highest version already
    /// accepted on this channel (rollback attack, or a stale mirror).
    #[error(
        "rollback refused on channel {channel}: offered {offered} but {highest_accepted} was \
         already accepted; the source serves an older release than before"
    )]
    Rollback {
        /// The channel.
        channel: String,
        /// The version the source offered.
        offered: String,
        /// The highest version accepted before.
        highest_accepted: String,
    },
    /// A signed document with the same version as the one accepted on this
    /// channel, but other content (an older or a different signing of that
    /// version), while the accepted document has not expired yet.
    #[error(
        "replay refused on channel {channel}: version {version} was already accepted from a \
         signed document with sha256 {accepted_sha256}, and the source now serves a different \
         one (sha256 {offered_sha256}); a publisher changing a release must publish a new \
         version, an old copy is refused until the accepted document expires"
    )]
    Replay {
        /// The channel.
        channel: String,
        /// The version both documents carry.
        version: String,
        /// The sha256 (hex) of the canonical signed document accepted before.
        accepted_sha256: String,
        /// The sha256 (hex) of the canonical signed document offered now.
        offered_sha256: String,
    },
    /// The release metadata has expired (freeze attack, or a publisher
    /// that stopped re-signing).
    #[error(
        "release {version} expired at {expired_at} (now {now}); the source serves stale \
         metadata, ask the publisher to re-sign"
    )]
    Expired {
        /// The release's version.
        version: String,
        /// Its `expires` instant.
        expired_at: DateTime<Utc>,
        /// The verifier's clock reading.
        now: DateTime<Utc>,
    },
    /// A signed release has no `expires` but the trust policy requires one.
    #[error("signed release {version} has no `expires`; the trust policy requires an expiry")]
    MissingExpiry {
        /// The release's version.
        version: String,
    },
    /// The manifest was published for another channel than requested.
    #[error("asked for channel {requested} but the manifest is for channel {published}")]
    ChannelMismatch {
        /// The channel the caller asked for.
        requested: String,
        /// The channel the manifest names.
        published: String,
    },
    /// The source has no release for this channel.
    #[error("{source_name} publishes no release for channel {channel}")]
    ChannelNotPublished {
        /// The channel.
        channel: String,
        /// The source (its URL or name).
        source_name: String,
    },
    /// A URL is not allowed: not https (and not an allowed loopback URL),
    /// or not a valid URL at all.
    #[error("URL {url:?} refused: {reason}")]
    InsecureUrl {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The server answered with an unexpected HTTP status.
    #[error("{method} {url} returned HTTP {status} ({class})")]
    HttpStatus {
        /// `GET` or `POST`.
        method: &'static str,
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
        /// How to handle it.
        class: ErrorClass,
    },
    /// The response did not arrive within the configured timeout.
    #[error("{url} did not answer within {after:?}; check the network or raise the timeout")]
    Timeout {
        /// The URL.
        url: String,
        /// The configured timeout that was hit.
        after: Duration,
    },
    /// The request failed below HTTP (DNS, connect, TLS, reset).
    #[error("request to {url} failed ({class}): {source}")]
    Transport {
        /// The URL.
        url: String,
        /// How to handle it.
        class: ErrorClass,
        /// The client's error.
        #[source]
        source: BoxError,
    },
    /// The response body exceeds the configured size cap.
    #[error("response from {url} exceeds the {limit}-byte cap; refusing to read further")]
    ResponseTooLarge {
        /// The URL.
        url: String,
        /// The cap in bytes.
        limit: usize,
    },
    /// The response has a content type other than JSON.
    #[error("response from {url} has content type {content_type:?}, expected JSON")]
    WrongContentType {
        /// The URL.
        url: String,
        /// The content type received (`""` when absent).
        content_type: String,
    },
    /// The API rejected the bearer token.
    #[error("{endpoint} rejected the credentials ({message}); check the token")]
    Unauthenticated {
        /// The API method URL.
        endpoint: String,
        /// The server's message.
        message: String,
    },
    /// The token is valid but lacks a permission.
    #[error(
        "{endpoint} denied access ({message}); give the token's principal access to the runner"
    )]
    PermissionDenied {
        /// The API method URL.
        endpoint: String,
        /// The server's message.
        message: String,
    },
    /// The API does not know the runner.
    #[error("{endpoint}: runner {runner_id} not found ({message}); check the runner id")]
    RunnerNotFound {
        /// The API method URL.
        endpoint: String,
        /// The runner id asked for.
        runner_id: String,
        /// The server's message.
        message: String,
    },
    /// Any other Connect error from the API.
    #[error("{endpoint} failed with Connect code {code} ({class}): {message}")]
    Api {
        /// The API method URL.
        endpoint: String,
        /// The Connect error code (`unavailable`, `internal`, ...).
        code: String,
        /// The server's message.
        message: String,
        /// How to handle it.
        class: ErrorClass,
    },
    /// TUF metadata has expired (from `TufReleaseSource`, feature `tuf`):
    /// judged by `tough` on the system clock.
    #[error(
        "TUF repository {repository}: the {role} metadata expired{} (system clock {now}); the \
         repository is stale or frozen, its publisher must re-sign the {role} role",
        expiry_text(.expired_at)
    )]
    TufExpired {
        /// The repository's metadata base URL.
        repository: String,
        /// The role (`root`, `timestamp`, `snapshot`, `targets`).
        role: String,
        /// The expired metadata's `expires`, when it could be read.
        expired_at: Option<DateTime<Utc>>,
        /// The system clock's reading.
        now: DateTime<Utc>,
    },
    /// TUF metadata older than what the client trusted before (from
    /// `TufReleaseSource`): a rollback, refused by `tough` against its
    /// datastore.
    #[error(
        "TUF repository {repository}: rollback refused, the {role} metadata offered is version \
         {offered_version} but version {trusted_version} was trusted before"
    )]
    TufRollback {
        /// The repository's metadata base URL.
        repository: String,
        /// The role rolled back.
        role: String,
        /// The version trusted before (kept in the datastore).
        trusted_version: u64,
        /// The version offered now.
        offered_version: u64,
    },
    /// A TUF target (or metadata file) differs from the hash its signed
    /// metadata lists (from `TufReleaseSource`): altered in transit or on
    /// the server.
    #[error(
        "TUF repository {repository}: {target} does not match its signed hash (sha256 \
         {calculated_sha256}, signed {expected_sha256}); it was altered, do not deploy it"
    )]
    TufTargetMismatch {
        /// The repository's metadata base URL.
        repository: String,
        /// What was downloaded (the target's URL or name).
        target: String,
        /// The sha256 (hex) the signed metadata lists.
        expected_sha256: String,
        /// The sha256 (hex) of what was served.
        calculated_sha256: String,
    },
    /// Any other failure to verify a TUF repository (signatures, thresholds,
    /// malformed metadata, the datastore), from `TufReleaseSource`.
    #[error("TUF repository {repository}: {reason}")]
    TufRepository {
        /// The repository's metadata base URL.
        repository: String,
        /// What `tough` said.
        reason: String,
        /// `tough`'s error.
        #[source]
        source: BoxError,
    },
    /// Reading or writing a local file (manifest, high-water mark) failed.
    #[error("{action} {path} failed ({class}): {source}")]
    Storage {
        /// What was being done (`read`, `write`, `rename`).
        action: &'static str,
        /// The file.
        path: String,
        /// How to handle it.
        class: ErrorClass,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

fn expiry_text(expired_at: &Option<DateTime<Utc>>) -> String {
    expired_at.map_or_else(String::new, |t| format!(" at {t}"))
}

impl Error {
    /// How a backend failure is best handled; `None` for domain outcomes
    /// (bad signature, rollback, invalid input), which no retry will fix.
    pub fn class(&self) -> Option<ErrorClass> {
        match self {
            Self::HttpStatus { class, .. }
            | Self::Transport { class, .. }
            | Self::Api { class, .. }
            | Self::Storage { class, .. } => Some(*class),
            Self::Timeout { .. } => Some(ErrorClass::Transient),
            Self::Unauthenticated { .. }
            | Self::PermissionDenied { .. }
            | Self::RunnerNotFound { .. } => Some(ErrorClass::Permanent),
            _ => None,
        }
    }

    /// Whether a later retry may succeed (transient or throttled).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.class(),
            Some(ErrorClass::Transient | ErrorClass::Throttled)
        )
    }
}
