//! Releases as TUF targets (feature `tuf`), verified by awslabs' `tough`.

use std::{
    collections::HashMap,
    fmt,
    path::PathBuf,
    sync::{Arc, Mutex},
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tough::{
    IntoVec, RepositoryLoader, TargetName, Transport, TransportError, TransportErrorKind,
    TransportStream,
};
use update_clock::{Clock, SystemClock};
use url::Url;

use super::http_config::status_class;
use crate::{
    Channel, Error, ErrorClass, HighWaterMark, HttpConfig, ReleaseCheck, ReleaseSource,
    ReleaseVerifier, TrustPolicy,
};

/// How the release document inside a TUF target is authenticated, besides
/// TUF's own signatures. There is no default: a [`TufReleaseSource`] states
/// which one it uses.
#[derive(Debug, Clone)]
pub enum TufDocumentTrust {
    /// TUF's signatures are the authentication: the repository's targets
    /// role signed the document's hashes, so the document itself may be
    /// unsigned (a Gitpod manifest, or a signed envelope whose Ed25519
    /// signatures are then not checked, with a warning). This is not the
    /// verifier's [`allow_unsigned`](crate::ReleaseVerifierBuilder::allow_unsigned)
    /// opt-in: the document only reaches the verifier after `tough`
    /// verified it against the repository's root of trust.
    TufOnly,
    /// The document must also be a signed envelope meeting this trust
    /// policy: two independent key sets (the TUF repository's and the
    /// release signers') must both agree.
    AlsoSigned(TrustPolicy),
}

#[derive(Debug, Clone)]
enum TrustedRoot {
    Bytes(Arc<[u8]>),
    File(PathBuf),
}

/// A release document published as a target of a
/// [TUF](https://theupdateframework.io/) repository, fetched and verified
/// with awslabs' [`tough`] (feature `tuf`).
///
/// On every [`check`](ReleaseSource::check):
/// 1. `tough` loads the repository from the trusted root: it follows root
///    rotations (`N+1.root.json`, each signed by a threshold of the old and
///    of the new root keys), checks every role's signatures and threshold,
///    refuses expired metadata and any role older than what it trusted
///    before (rollback protection, kept in the datastore);
/// 2. the target named for the channel (default `releases/<channel>.json`,
///    [`target_name_template`](TufReleaseSourceBuilder::target_name_template))
///    is downloaded and checked against its length and sha256 in the
///    signed `targets.json`;
/// 3. the document is parsed by the crate's manifest parser (either format)
///    and admitted by the crate's verifier ([`TufDocumentTrust`] says what
///    it must carry), so the channel check, [`Release::validate`](crate::Release::validate),
///    the release's own `expires` (on the injected clock) and the
///    [`HighWaterMark`] still apply.
///
/// Errors: expired metadata is [`Error::TufExpired`] (which role, when),
/// an older role than trusted is [`Error::TufRollback`] (which role, both
/// versions), a target that differs from its signed hash is
/// [`Error::TufTargetMismatch`]; other verification failures (signatures,
/// thresholds, malformed metadata) are [`Error::TufRepository`]; a channel
/// whose target is not listed is [`Error::ChannelNotPublished`]; HTTP
/// failures are the HTTP sources' errors ([`Error::HttpStatus`],
/// [`Error::Timeout`], [`Error::Transport`], ...).
///
/// **Time.** `tough` judges metadata expiry on the system clock (it takes
/// no injected clock) and keeps the latest time it saw in the datastore, so
/// a system clock set back is refused too. The injected [`Clock`] judges
/// the release document's own `expires`, as for every source.
///
/// **The datastore** is a directory on persistent storage where `tough`
/// keeps the last verified root, timestamp, snapshot and targets metadata.
/// Rollback protection across restarts depends on it persisting: on a
/// fresh datastore a client trusts whatever non-expired metadata the
/// trusted root accepts. The newest root `tough` persisted there is used
/// as the trusted root when it is newer than the one configured, so a
/// rotation stays followed after a restart. One datastore per repository;
/// checks of one source are serialised.
///
/// HTTP goes through the crate's own client ([`HttpConfig`]: timeouts,
/// body cap, https only unless loopback is allowed, no proxy variables
/// read), not through `tough`'s.
///
/// ```no_run
/// use std::sync::Arc;
/// use runner_version::{
///     Channel, FileHighWaterMark, ReleaseSource, TufDocumentTrust, TufReleaseSource,
/// };
///
/// # async fn run() -> Result<(), runner_version::Error> {
/// let source = TufReleaseSource::builder()
///     .trusted_root_file("/etc/updater/tuf/root.json")
///     .metadata_base_url("https://tuf.example.com/metadata/")
///     .targets_base_url("https://tuf.example.com/targets/")
///     .datastore("/var/lib/updater/tuf")
///     .document_trust(TufDocumentTrust::TufOnly)
///     .high_water_mark(Arc::new(FileHighWaterMark::new("/var/lib/updater/marks.json")))
///     .build()?;
/// let release = source.latest(&Channel::Stable).await?;
/// println!("{} -> {}", release.version, release.image);
/// # Ok(())
/// # }
/// ```
pub struct TufReleaseSource {
    root: TrustedRoot,
    metadata_base_url: Url,
    targets_base_url: Url,
    datastore: PathBuf,
    target_name_template: String,
    http: HttpConfig,
    client: reqwest::Client,
    verifier: ReleaseVerifier,
    document_trust: TufDocumentTrust,
    checking: tokio::sync::Mutex<()>,
}

impl fmt::Debug for TufReleaseSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TufReleaseSource")
            .field("metadata_base_url", &self.metadata_base_url.as_str())
            .field("targets_base_url", &self.targets_base_url.as_str())
            .field("datastore", &self.datastore)
            .field("target_name_template", &self.target_name_template)
            .field("document_trust", &self.document_trust)
            .finish_non_exhaustive()
    }
}

/// Builds a [`TufReleaseSource`].
///
/// Required: a trusted root ([`trusted_root`](Self::trusted_root) or
/// [`trusted_root_file`](Self::trusted_root_file)), both base URLs, the
/// [`datastore`](Self::datastore) and the
/// [`document_trust`](Self::document_trust). Defaults: target name
/// `releases/{channel}.json`, a [`MemoryHighWaterMark`](crate::MemoryHighWaterMark),
/// the [`SystemClock`], [`HttpConfig::default`].
#[derive(Debug, Default)]
pub struct TufReleaseSourceBuilder {
    root: Option<TrustedRoot>,
    metadata_base_url: Option<String>,
    targets_base_url: Option<String>,
    datastore: Option<PathBuf>,
    target_name_template: Option<String>,
    document_trust: Option<TufDocumentTrust>,
    high_water: Option<Arc<dyn HighWaterMark>>,
    clock: Option<Arc<dyn Clock>>,
    http: Option<HttpConfig>,
}

impl TufReleaseSourceBuilder {
    /// The trusted root metadata (`root.json`), shipped with the updater
    /// out of band. It may be older than the repository's: rotations are
    /// followed from it.
    pub fn trusted_root(mut self, root: impl Into<Vec<u8>>) -> Self {
        self.root = Some(TrustedRoot::Bytes(root.into().into()));
        self
    }

    /// The trusted root metadata, read from this file on every check.
    pub fn trusted_root_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.root = Some(TrustedRoot::File(path.into()));
        self
    }

    /// Where the repository's metadata (`N.root.json`, `timestamp.json`,
    /// ...) is served.
    pub fn metadata_base_url(mut self, url: impl Into<String>) -> Self {
        self.metadata_base_url = Some(url.into());
        self
    }

    /// Where the repository's targets are served.
    pub fn targets_base_url(mut self, url: impl Into<String>) -> Self {
        self.targets_base_url = Some(url.into());
        self
    }

    /// The directory (created if missing) where `tough` keeps the verified
    /// metadata; it must persist across restarts for rollback protection.
    pub fn datastore(mut self, path: impl Into<PathBuf>) -> Self {
        self.datastore = Some(path.into());
        self
    }

    /// The target name of a channel's release document; `{channel}` is
    /// replaced by the channel name. Default `releases/{channel}.json`.
    pub fn target_name_template(mut self, template: impl Into<String>) -> Self {
        self.target_name_template = Some(template.into());
        self
    }

    /// What the document inside the target must carry besides TUF's
    /// signatures (required).
    pub fn document_trust(mut self, trust: TufDocumentTrust) -> Self {
        self.document_trust = Some(trust);
        self
    }

    /// Where the highest accepted versions are kept (default: memory).
    pub fn high_water_mark(mut self, store: Arc<dyn HighWaterMark>) -> Self {
        self.high_water = Some(store);
        self
    }

    /// The clock the release document's `expires` is judged on (default:
    /// the system clock; TUF metadata expiry is always judged by `tough` on
    /// the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Timeouts, body cap, loopback rule and proxy of the HTTP client.
    pub fn http_config(mut self, config: HttpConfig) -> Self {
        self.http = Some(config);
        self
    }

    /// The source, or [`Error::InvalidConfig`] / [`Error::InsecureUrl`]
    /// naming what is missing or wrong.
    pub fn build(self) -> Result<TufReleaseSource, Error> {
        let missing = |what: &str| Error::InvalidConfig {
            what: "TUF release source",
            reason: format!("{what} is required"),
        };
        let http = self.http.unwrap_or_default();
        let root = self
            .root
            .ok_or_else(|| missing("a trusted root (trusted_root or trusted_root_file)"))?;
        let base_url = |url: Option<String>, what: &str| -> Result<Url, Error> {
            let mut url = url.ok_or_else(|| missing(what))?;
            if !url.ends_with('/') {
                url.push('/');
            }
            http.check_url(&url)
        };
        let metadata_base_url = base_url(self.metadata_base_url, "metadata_base_url")?;
        let targets_base_url = base_url(self.targets_base_url, "targets_base_url")?;
        let datastore = self
            .datastore
            .ok_or_else(|| missing("a datastore directory"))?;
        let document_trust = self.document_trust.ok_or_else(|| {
            missing(
                "document_trust (TufDocumentTrust::TufOnly, or AlsoSigned with the release \
                 signers' trust policy)",
            )
        })?;
        let target_name_template = self
            .target_name_template
            .unwrap_or_else(|| "releases/{channel}.json".into());
        TargetName::new(target_name_template.replace("{channel}", "stable")).map_err(|e| {
            Error::InvalidConfig {
                what: "TUF release source",
                reason: format!("target name template {target_name_template:?}: {e}"),
            }
        })?;
        let mut verifier = ReleaseVerifier::builder();
        verifier = match &document_trust {
            // The document reaches the verifier only after tough verified
            // it: TUF's signatures stand in for the manifest's.
            TufDocumentTrust::TufOnly => verifier.allow_unsigned(),
            TufDocumentTrust::AlsoSigned(policy) => verifier.trust_policy(policy.clone()),
        };
        if let Some(store) = self.high_water {
            verifier = verifier.high_water_mark(store);
        }
        if let Some(clock) = self.clock {
            verifier = verifier.clock(clock);
        }
        let verifier = verifier.build()?;
        let client = http.client()?;
        Ok(TufReleaseSource {
            root,
            metadata_base_url,
            targets_base_url,
            datastore,
            target_name_template,
            http,
            client,
            verifier,
            document_trust,
            checking: tokio::sync::Mutex::new(()),
        })
    }
}

impl TufReleaseSource {
    /// A builder (see [`TufReleaseSourceBuilder`] for what is required).
    pub fn builder() -> TufReleaseSourceBuilder {
        TufReleaseSourceBuilder::default()
    }

    /// The metadata base URL (it names the repository in errors).
    pub fn metadata_base_url(&self) -> &str {
        self.metadata_base_url.as_str()
    }

    /// The target name of `channel`'s release document.
    pub fn target_name(&self, channel: &Channel) -> String {
        self.target_name_template
            .replace("{channel}", &channel.to_string())
    }

    /// The trusted root to start from: the configured one, or the newest
    /// root `tough` verified and persisted in the datastore if that is
    /// newer (so a rotation stays followed across restarts).
    async fn trusted_root(&self) -> Result<Vec<u8>, Error> {
        let configured = match &self.root {
            TrustedRoot::Bytes(bytes) => bytes.to_vec(),
            TrustedRoot::File(path) => {
                tokio::fs::read(path)
                    .await
                    .map_err(|source| Error::Storage {
                        action: "read",
                        path: path.display().to_string(),
                        class: ErrorClass::Permanent,
                        source,
                    })?
            }
        };
        let persisted = match tokio::fs::read(self.datastore.join("root.json")).await {
            Ok(bytes) => bytes,
            Err(_) => return Ok(configured),
        };
        match (root_version(&persisted), root_version(&configured)) {
            (Some(persisted_version), Some(configured_version))
                if persisted_version > configured_version =>
            {
                Ok(persisted)
            }
            _ => Ok(configured),
        }
    }

    fn repository_error(&self, error: tough::error::Error, fetched: &Fetched) -> Error {
        use tough::error::Error as E;
        // A failed download: the transport's own error (the last one; a
        // missing `N+1.root.json` is not an error) says what and how to
        // handle it.
        if matches!(error, E::Transport { .. })
            && let Some(own) = fetched.take_error()
        {
            return own;
        }
        let repository = self.metadata_base_url.to_string();
        // A target's hash is checked while it streams: the mismatch comes
        // wrapped in a transport error.
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&error);
        while let Some(current) = cause {
            if let Some(E::HashMismatch {
                context,
                calculated,
                expected,
                ..
            }) = current.downcast_ref::<E>()
            {
                return Error::TufTargetMismatch {
                    repository,
                    target: context.clone(),
                    expected_sha256: expected.clone(),
                    calculated_sha256: calculated.clone(),
                };
            }
            cause = current.source();
        }
        match error {
            E::ExpiredMetadata { role, .. } => {
                let role = role.to_string();
                Error::TufExpired {
                    expired_at: fetched.expires_of(&role),
                    repository,
                    role,
                    now: SystemClock::new().now(),
                }
            }
            E::OlderMetadata {
                role,
                current_version,
                new_version,
                ..
            } => Error::TufRollback {
                repository,
                role: role.to_string(),
                trusted_version: current_version,
                offered_version: new_version,
            },
            E::OlderSnapshotInTimestamp {
                snapshot_new,
                snapshot_old,
                ..
            } => Error::TufRollback {
                repository,
                role: "snapshot".into(),
                trusted_version: snapshot_old,
                offered_version: snapshot_new,
            },
            E::SnapshotRoleRollback {
                role,
                old_role_version,
                new_role_version,
                ..
            } => Error::TufRollback {
                repository,
                role,
                trusted_version: old_role_version,
                offered_version: new_role_version,
            },
            E::HashMismatch {
                context,
                calculated,
                expected,
                ..
            } => Error::TufTargetMismatch {
                repository,
                target: context,
                expected_sha256: expected,
                calculated_sha256: calculated,
            },
            other => Error::TufRepository {
                repository,
                reason: other.to_string(),
                source: Box::new(other),
            },
        }
    }
}

#[async_trait]
impl ReleaseSource for TufReleaseSource {
    async fn check(&self, channel: &Channel) -> Result<ReleaseCheck, Error> {
        let target = self.target_name(channel);
        let target_name = TargetName::new(target.clone()).map_err(|e| Error::InvalidConfig {
            what: "TUF release source",
            reason: format!("target name {target:?} of channel {channel}: {e}"),
        })?;
        // One check at a time: tough's datastore is not shared safely
        // between two loads.
        let _checking = self.checking.lock().await;
        tokio::fs::create_dir_all(&self.datastore)
            .await
            .map_err(|source| Error::Storage {
                action: "create",
                path: self.datastore.display().to_string(),
                class: ErrorClass::Permanent,
                source,
            })?;
        let root = self.trusted_root().await?;
        let fetched = Fetched::default();
        let transport = HttpTransport {
            client: self.client.clone(),
            http: self.http.clone(),
            fetched: fetched.clone(),
        };
        let repository = RepositoryLoader::new(
            &root,
            self.metadata_base_url.clone(),
            self.targets_base_url.clone(),
        )
        .transport(transport)
        .datastore(self.datastore.clone())
        .load()
        .await
        .map_err(|e| self.repository_error(e, &fetched))?;
        let stream = repository
            .read_target(&target_name)
            .await
            .map_err(|e| self.repository_error(e, &fetched))?
            .ok_or_else(|| Error::ChannelNotPublished {
                channel: channel.to_string(),
                source_name: format!(
                    "TUF repository {} (no target {target} in its targets metadata)",
                    self.metadata_base_url
                ),
            })?;
        let bytes = stream
            .into_vec()
            .await
            .map_err(|e| self.repository_error(e, &fetched))?;
        let origin = format!("TUF target {target} of {}", self.metadata_base_url);
        let release = self.verifier.verify(&bytes, channel, &origin).await?;
        Ok(ReleaseCheck::Fetched(release))
    }
}

/// The `version` of root metadata, if it parses.
fn root_version(bytes: &[u8]) -> Option<u64> {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()?
        .get("signed")?
        .get("version")?
        .as_u64()
}

/// What one check's transport saw: the bodies of the files it fetched (to
/// name when an expired role expired) and its own error (to return it as
/// the crate's error, class included, instead of tough's wrapper).
#[derive(Debug, Clone, Default)]
struct Fetched(Arc<Mutex<FetchedState>>);

#[derive(Debug, Default)]
struct FetchedState {
    bodies: HashMap<String, Vec<u8>>,
    error: Option<Error>,
}

impl Fetched {
    fn record(&self, url: &Url, body: &[u8]) {
        let name = url
            .path_segments()
            .and_then(|mut s| s.next_back())
            .unwrap_or_default();
        if name.ends_with(".json") {
            self.0
                .lock()
                .expect("poisoned")
                .bodies
                .insert(name.to_string(), body.to_vec());
        }
    }

    fn fail(&self, error: Error) {
        self.0.lock().expect("poisoned").error = Some(error);
    }

    fn take_error(&self) -> Option<Error> {
        self.0.lock().expect("poisoned").error.take()
    }

    /// The `expires` of the newest fetched metadata of `role`
    /// (`timestamp.json`, or the highest `N.<role>.json`).
    fn expires_of(&self, role: &str) -> Option<DateTime<Utc>> {
        let state = self.0.lock().expect("poisoned");
        let plain = format!("{role}.json");
        let versioned = format!(".{role}.json");
        let (_, body) = state
            .bodies
            .iter()
            .filter_map(|(name, body)| {
                if *name == plain {
                    Some((0, body))
                } else {
                    let version = name.strip_suffix(&versioned)?.parse::<u64>().ok()?;
                    Some((version, body))
                }
            })
            .max_by_key(|(version, _)| *version)?;
        let value = serde_json::from_slice::<serde_json::Value>(body).ok()?;
        let expires = value.get("signed")?.get("expires")?.as_str()?;
        DateTime::parse_from_rfc3339(expires)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}

/// `tough`'s [`Transport`] over the crate's reqwest client and
/// [`HttpConfig`]: the URL rules, timeouts and body cap of the other HTTP
/// sources. A 404 is "file not found" (how `tough` learns there is no newer
/// root).
#[derive(Debug, Clone)]
struct HttpTransport {
    client: reqwest::Client,
    http: HttpConfig,
    fetched: Fetched,
}

impl HttpTransport {
    async fn get(&self, url: &Url) -> Result<Vec<u8>, (TransportErrorKind, Error)> {
        let other = |e: Error| (TransportErrorKind::Other, e);
        self.http.check_url(url.as_str()).map_err(other)?;
        let response = self
            .client
            .get(url.clone())
            .send()
            .await
            .map_err(|e| other(self.http.transport_error(url.as_str(), e)))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err((
                TransportErrorKind::FileNotFound,
                Error::HttpStatus {
                    method: "GET",
                    url: url.to_string(),
                    status: status.as_u16(),
                    class: ErrorClass::Permanent,
                },
            ));
        }
        if !status.is_success() {
            return Err(other(Error::HttpStatus {
                method: "GET",
                url: url.to_string(),
                status: status.as_u16(),
                class: status_class(status),
            }));
        }
        self.http
            .read_capped(url.as_str(), response)
            .await
            .map_err(other)
    }
}

#[async_trait]
impl Transport for HttpTransport {
    async fn fetch(&self, url: Url) -> Result<TransportStream, TransportError> {
        match self.get(&url).await {
            Ok(body) => {
                self.fetched.record(&url, &body);
                let chunk: Result<tough::Bytes, TransportError> = Ok(tough::Bytes::from(body));
                Ok(Box::pin(futures::stream::iter([chunk])))
            }
            Err((TransportErrorKind::FileNotFound, error)) => Err(TransportError::new_with_cause(
                TransportErrorKind::FileNotFound,
                url,
                error,
            )),
            Err((kind, error)) => {
                let message = error.to_string();
                self.fetched.fail(error);
                Err(TransportError::new_with_cause(kind, url, message))
            }
        }
    }
}
