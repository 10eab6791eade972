//! Release metadata for the ECS self-updater: versions, image references,
//! signed release manifests and the sources they come from.
//!
//! Types:
//! - [`Version`]: calendar versions `YYYYMMDD.N` (the Gitpod runner's scheme,
//!   ordered numerically) and semver; comparing the two is an error.
//! - [`Channel`], [`InfraVersion`], [`ImageRef`] (a real OCI reference
//!   parser: registry with port, path, tag, digest), [`Release`].
//! - [`WaveSchedule`]: a release's staged rollout waves ([`Wave`]: from
//!   `start_after` its release, the first [`FleetPercentage`] of the fleet,
//!   by each runner's stable [`FleetPosition`]), signed with the release.
//!
//! Manifests ([`Manifest`]):
//! - [`GitpodManifest`]: the public, unsigned Gitpod runner manifest.
//! - [`SignedManifest`]: a release document with Ed25519 signatures by key
//!   id, checked against a [`TrustPolicy`] (trusted keys, threshold, key
//!   rotation). [`SignedManifest::sign`] is the publisher's side.
//!
//! Verification ([`ReleaseVerifier`]) rejects, each with its own [`Error`]
//! variant: a bad signature ([`Error::BadSignature`]), none
//! ([`Error::MissingSignature`]), too few ([`Error::BelowThreshold`]), only
//! unknown or rotated-out keys ([`Error::UnknownKey`]), a version below the
//! highest already accepted ([`Error::Rollback`], kept in a
//! [`HighWaterMark`]: [`MemoryHighWaterMark`], [`FileHighWaterMark`]) and
//! expired metadata ([`Error::Expired`], on an injected clock). Unsigned
//! manifests pass only with [`ReleaseVerifierBuilder::allow_unsigned`].
//! What passes comes out as an [`AdmittedRelease`], which only the verifier
//! makes: every [`ReleaseCheck`] carries one, so no source (an embedder's
//! included) can hand out a release that skipped these checks.
//!
//! [`ReleaseSource`] backends:
//! - [`StaticSource`]: memory or manifest files, for tests and the demo.
//! - [`HttpManifestSource`]: a manifest over HTTPS with conditional GET
//!   (ETag / `If-None-Match`; a 304 costs no parse), timeouts, a size cap.
//! - [`GitpodApiSource`]: the Gitpod API (Connect JSON over POST, bearer
//!   token); also reads the runner's [`RunnerSettings`].
//!
//! Features:
//! - `http` (default): [`HttpManifestSource`], [`GitpodApiSource`] and
//!   [`HttpConfig`], with reqwest.
//! - `fs` (default): [`FileHighWaterMark`] and manifest files for
//!   [`StaticSource`], with tokio's blocking pool.
//! - `tuf`: `TufReleaseSource` (implies `http` and `fs`): the release
//!   document as a target of a TUF repository, verified by awslabs' `tough`
//!   (root rotation, thresholds, expiry, rollback protection kept in a
//!   persistent datastore), then admitted by the verifier like every other
//!   source; how the document itself is trusted is explicit
//!   (`TufDocumentTrust`). TUF metadata expiry is judged on the system
//!   clock (`tough` takes no injected clock).
//! - `conformance`: the behaviour suite every backend runs.
//!
//! Without `http` and `fs` the crate is pure domain code (no tokio, no HTTP
//! or TLS stack): what `update-policy` depends on.
//!
//! Verifying a signed manifest, offline:
//!
//! ```
//! use std::sync::Arc;
//! use runner_version::{
//!     Channel, Error, ImageRef, Release, ReleaseVerifier, SignedManifest, TrustPolicy,
//! };
//! use runner_version::ed25519_dalek::SigningKey;
//! use update_clock::ManualClock;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let key = SigningKey::from_bytes(&[7; 32]);
//! let clock = Arc::new(ManualClock::new(ManualClock::EPOCH_2025));
//! let release = Release {
//!     version: "20250101.3".parse().unwrap(),
//!     channel: Channel::Stable,
//!     image: ImageRef::parse(&format!("r.example/runner@sha256:{}", "ab".repeat(32))).unwrap(),
//!     proxy_image: None,
//!     infra_version: Some("v42".into()),
//!     template_url: "https://example.com/runner.json".into(),
//!     template_sha256: Some("cd".repeat(32)),
//!     released_at: None,
//!     expires: Some(ManualClock::EPOCH_2025 + chrono::Duration::days(30)),
//!     waves: Default::default(),
//! };
//! let bytes = SignedManifest::sign(&release, &[("release-2025", &key)]).unwrap().to_json();
//!
//! let verifier = ReleaseVerifier::builder()
//!     .trust_policy(TrustPolicy::new(1).with_key("release-2025", key.verifying_key()))
//!     .clock(clock.clone())
//!     .build()
//!     .unwrap();
//! let accepted = verifier.verify(&bytes, &Channel::Stable, "example").await.unwrap();
//! assert_eq!(accepted, release);
//!
//! // 31 days later the same manifest is stale: a freeze attack is refused.
//! clock.set_now(ManualClock::EPOCH_2025 + chrono::Duration::days(31));
//! let err = verifier.verify(&bytes, &Channel::Stable, "example").await.unwrap_err();
//! assert!(matches!(err, Error::Expired { .. }));
//! # });
//! ```
#![warn(missing_docs)]

mod admitted;
mod channel;
#[cfg(feature = "conformance")]
pub mod conformance;
mod error;
mod high_water;
mod image;
mod infra;
mod manifest;
mod release;
mod source;
mod trust;
mod verifier;
mod version;
mod waves;

pub use admitted::AdmittedRelease;
pub use channel::Channel;
pub use ed25519_dalek;
pub use error::{BoxError, Error, ErrorClass};
#[cfg(feature = "fs")]
pub use high_water::FileHighWaterMark;
pub use high_water::{AcceptedDocument, HighWaterAdvance, HighWaterMark, MemoryHighWaterMark};
pub use image::ImageRef;
pub use infra::InfraVersion;
pub use manifest::{GitpodManifest, Manifest, ManifestSignature, SIGNING_CONTEXT, SignedManifest};
pub use release::Release;
#[cfg(feature = "http")]
pub use source::{
    BearerToken, GitpodApiSource, GitpodApiSourceBuilder, HttpConfig, HttpManifestSource,
    HttpManifestSourceBuilder, HttpSourceStats, RunnerSettings,
};
pub use source::{ReleaseCheck, ReleaseSource, StaticSource};
#[cfg(feature = "tuf")]
pub use source::{TufDocumentTrust, TufReleaseSource, TufReleaseSourceBuilder};
pub use trust::{SignatureReport, TrustPolicy, parse_public_key};
pub use verifier::{Authentication, ReleaseVerifier, ReleaseVerifierBuilder};
pub use version::{CalendarVersion, Version, VersionScheme};
pub use waves::{
    FleetPercentage, FleetPosition, MAXIMUM_START_AFTER, Wave, WaveAssignment, WaveSchedule,
};

/// The README's embedding example, compiled as a doctest (it uses the HTTP
/// source and the file store).
#[cfg(all(doctest, feature = "http", feature = "fs"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
