//! From manifest bytes to an accepted release.

use std::{fmt, sync::Arc};

use update_clock::{Clock, SystemClock};

use crate::{
    AcceptedDocument, AdmittedRelease, Channel, Error, HighWaterAdvance, HighWaterMark, Manifest,
    MemoryHighWaterMark, Release, SignatureReport, TrustPolicy,
};

/// How a release was authenticated: the evidence of
/// [`ReleaseVerifier::decode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authentication {
    /// The trust policy's threshold was met.
    Signed(SignatureReport),
    /// Accepted without signature checking, because the caller opted in to
    /// unsigned manifests.
    UnsignedAllowed,
}

/// Turns manifest bytes into a release every source may hand out: the one
/// place where signatures, channel, expiry (freeze) and the high-water mark
/// (rollback) are checked.
///
/// - [`decode`](Self::decode) (no I/O): parse, check signatures against the
///   [`TrustPolicy`] (or accept unsigned input only when
///   [opted in](ReleaseVerifierBuilder::allow_unsigned)), read the release.
/// - admission ([`verify`](Self::verify) for bytes, [`admit`](Self::admit)
///   for a bare release on an unsigned-allowed verifier): the release is for
///   the requested channel, is valid (images pinned by digest), has not
///   expired on the injected clock, and is not lower than the highest
///   version accepted before; then the high-water mark is raised and the
///   release comes out as an [`AdmittedRelease`], which nothing else makes.
///
/// Cheap to clone (the store and the clock are shared).
#[derive(Clone)]
pub struct ReleaseVerifier {
    trust: Option<TrustPolicy>,
    allow_unsigned: bool,
    high_water: Arc<dyn HighWaterMark>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for ReleaseVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReleaseVerifier")
            .field("trust", &self.trust)
            .field("allow_unsigned", &self.allow_unsigned)
            .field("high_water", &self.high_water)
            .finish_non_exhaustive()
    }
}

/// Builds a [`ReleaseVerifier`].
///
/// Defaults: no trust policy (so one of [`trust_policy`](Self::trust_policy)
/// or [`allow_unsigned`](Self::allow_unsigned) is required), a
/// [`MemoryHighWaterMark`], the [`SystemClock`].
#[derive(Debug, Default)]
pub struct ReleaseVerifierBuilder {
    trust: Option<TrustPolicy>,
    allow_unsigned: bool,
    high_water: Option<Arc<dyn HighWaterMark>>,
    clock: Option<Arc<dyn Clock>>,
}

impl ReleaseVerifierBuilder {
    /// Requires signatures satisfying `policy` on every manifest (cannot be
    /// combined with [`allow_unsigned`](Self::allow_unsigned)).
    pub fn trust_policy(mut self, policy: TrustPolicy) -> Self {
        self.trust = Some(policy);
        self
    }

    /// Explicit opt-in: accept manifests without signatures (the public
    /// Gitpod manifest, or a signed envelope whose signatures are then not
    /// checked). Expiry and rollback are still checked. Refused by
    /// [`build`](Self::build) together with a
    /// [`trust_policy`](Self::trust_policy).
    pub fn allow_unsigned(mut self) -> Self {
        self.allow_unsigned = true;
        self
    }

    /// Where the highest accepted versions are kept (default: memory).
    pub fn high_water_mark(mut self, store: Arc<dyn HighWaterMark>) -> Self {
        self.high_water = Some(store);
        self
    }

    /// The clock expiry is judged on (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Checks the configuration: a valid trust policy, or the unsigned
    /// opt-in.
    ///
    /// A trust policy together with [`allow_unsigned`](Self::allow_unsigned)
    /// is refused: the opt-in would let anyone who can serve an unsigned
    /// document bypass the keys, so a verifier either requires signatures or
    /// explicitly does not.
    pub fn validate(&self) -> Result<(), Error> {
        match &self.trust {
            Some(_) if self.allow_unsigned => Err(Error::InvalidConfig {
                what: "release verifier",
                reason: "both trust_policy() and allow_unsigned() are set: an unsigned \
                         manifest would bypass the trusted keys; keep the trust policy to \
                         require signatures, or drop it to accept unsigned manifests"
                    .into(),
            }),
            Some(policy) => policy.validate(),
            None if self.allow_unsigned => Ok(()),
            None => Err(Error::InvalidConfig {
                what: "release verifier",
                reason: "no trust policy: add trusted keys, or opt in to unsigned manifests \
                         with allow_unsigned()"
                    .into(),
            }),
        }
    }

    /// The verifier, if [`validate`](Self::validate) passes.
    pub fn build(self) -> Result<ReleaseVerifier, Error> {
        self.validate()?;
        Ok(ReleaseVerifier {
            trust: self.trust,
            allow_unsigned: self.allow_unsigned,
            high_water: self
                .high_water
                .unwrap_or_else(|| Arc::new(MemoryHighWaterMark::new())),
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock::new())),
        })
    }
}

impl ReleaseVerifier {
    /// A builder with the defaults.
    pub fn builder() -> ReleaseVerifierBuilder {
        ReleaseVerifierBuilder::default()
    }

    /// Whether unsigned manifests are accepted.
    pub fn allows_unsigned(&self) -> bool {
        self.allow_unsigned
    }

    /// The trust policy, if any.
    pub fn trust_policy(&self) -> Option<&TrustPolicy> {
        self.trust.as_ref()
    }

    /// The high-water mark store.
    pub fn high_water_mark(&self) -> &Arc<dyn HighWaterMark> {
        &self.high_water
    }

    /// Parses and authenticates manifest bytes (no I/O, no clock): the
    /// release they describe and how it was authenticated. A Gitpod manifest
    /// gets `channel`; a signed release names its own channel (checked on
    /// admission).
    ///
    /// The release is not admitted: only [`verify`](Self::verify) (decode,
    /// then admit) makes an [`AdmittedRelease`] out of bytes.
    pub fn decode(
        &self,
        bytes: &[u8],
        channel: &Channel,
        origin: &str,
    ) -> Result<(Release, Authentication), Error> {
        match Manifest::parse(bytes, origin)? {
            Manifest::Gitpod(manifest) => {
                if !self.allow_unsigned {
                    return Err(Error::MissingSignature {
                        origin: origin.into(),
                        required: self.trust.as_ref().map_or(1, TrustPolicy::threshold),
                    });
                }
                let release = (*manifest).into_release(channel.clone())?;
                Ok((release, Authentication::UnsignedAllowed))
            }
            Manifest::Signed(manifest) => {
                let authentication = match &self.trust {
                    Some(policy) => {
                        let report = policy.verify(&manifest).map_err(|e| match e {
                            Error::MissingSignature { required, .. } => Error::MissingSignature {
                                origin: origin.into(),
                                required,
                            },
                            other => other,
                        })?;
                        Authentication::Signed(report)
                    }
                    None => {
                        tracing::warn!(
                            origin,
                            "accepting a signed envelope without checking its signatures: no \
                             trust policy is configured and unsigned manifests are allowed"
                        );
                        Authentication::UnsignedAllowed
                    }
                };
                let release = manifest.release(origin)?;
                if matches!(authentication, Authentication::Signed(_)) {
                    check_template_sha256(&release)?;
                }
                if self
                    .trust
                    .as_ref()
                    .is_some_and(TrustPolicy::expiry_required)
                    && release.expires.is_none()
                {
                    return Err(Error::MissingExpiry {
                        version: release.version.to_string(),
                    });
                }
                Ok((release, authentication))
            }
        }
    }

    /// Admits a bare `release` for `channel`: the path for a release that
    /// carries no signature (one built in memory, or read by an embedder's
    /// own [`ReleaseSource`](crate::ReleaseSource)).
    ///
    /// A bare [`Release`] has no signature, so it is refused
    /// ([`Error::MissingSignature`]) unless this verifier
    /// [allows unsigned releases](ReleaseVerifierBuilder::allow_unsigned);
    /// signed documents go through [`verify`](Self::verify). Then the same
    /// checks as for a downloaded manifest: channel match,
    /// [`Release::validate`], `expires` on the injected clock, rollback
    /// against the high-water mark, which is raised on success.
    ///
    /// ```
    /// use runner_version::{Channel, Error, ImageRef, Release, ReleaseVerifier, TrustPolicy};
    /// use runner_version::ed25519_dalek::SigningKey;
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let release = Release {
    ///     version: "20250101.3".parse().unwrap(),
    ///     channel: Channel::Stable,
    ///     image: ImageRef::parse(&format!("r.example/runner@sha256:{}", "ab".repeat(32))).unwrap(),
    ///     proxy_image: None,
    ///     infra_version: Some("v42".into()),
    ///     template_url: "https://example.com/runner.json".into(),
    ///     template_sha256: None,
    ///     released_at: None,
    ///     expires: None,
    ///     waves: Default::default(),
    /// };
    ///
    /// // A verifier with trusted keys refuses a release that carries no signature.
    /// let key = SigningKey::from_bytes(&[7; 32]).verifying_key();
    /// let signed_only = ReleaseVerifier::builder()
    ///     .trust_policy(TrustPolicy::new(1).with_key("release-2025", key))
    ///     .build()
    ///     .unwrap();
    /// let err = signed_only.admit(release.clone(), &Channel::Stable).await.unwrap_err();
    /// assert!(matches!(err, Error::MissingSignature { .. }), "{err}");
    ///
    /// // The explicit opt-in admits it, after the other checks.
    /// let unsigned_ok = ReleaseVerifier::builder().allow_unsigned().build().unwrap();
    /// let admitted = unsigned_ok.admit(release.clone(), &Channel::Stable).await.unwrap();
    /// assert_eq!(admitted, release);
    /// assert!(unsigned_ok.admit(release, &Channel::Latest).await.is_err()); // channel mismatch
    /// # });
    /// ```
    pub async fn admit(
        &self,
        release: Release,
        channel: &Channel,
    ) -> Result<AdmittedRelease, Error> {
        if !self.allow_unsigned {
            return Err(Error::MissingSignature {
                origin: format!(
                    "release {} handed to the verifier as a bare Release (no signature)",
                    release.version
                ),
                required: self.trust.as_ref().map_or(1, TrustPolicy::threshold),
            });
        }
        self.admit_inner(release, channel, None).await
    }

    /// Admits a release [`decode`](Self::decode)d with `authentication` by
    /// this verifier: when signed, the high-water mark also remembers the
    /// signed document's hash, and another document carrying the accepted
    /// version is [`Error::Replay`] until the accepted one expires.
    ///
    /// Not public: an [`Authentication`] can be built by anyone, so only
    /// this crate's own decode paths may vouch for one.
    pub(crate) async fn admit_decoded(
        &self,
        release: Release,
        authentication: &Authentication,
        channel: &Channel,
    ) -> Result<AdmittedRelease, Error> {
        let document = match authentication {
            Authentication::Signed(report) => Some(AcceptedDocument {
                sha256: report.document_sha256.clone(),
                expires: release.expires,
            }),
            Authentication::UnsignedAllowed => None,
        };
        self.admit_inner(release, channel, document.as_ref()).await
    }

    /// Admits again a release admitted before (an HTTP 304: the cached
    /// release is not parsed again): channel, validity, expiry on the
    /// injected clock and the high-water mark are checked again, so a frozen
    /// server still hits [`Error::Expired`] and a mark raised meanwhile by
    /// another source still refuses it.
    #[cfg(feature = "http")]
    pub(crate) async fn readmit(
        &self,
        release: &AdmittedRelease,
        channel: &Channel,
    ) -> Result<AdmittedRelease, Error> {
        self.admit_inner(release.as_ref().clone(), channel, None)
            .await
    }

    /// Every admission ends here: the only place an [`AdmittedRelease`] is
    /// made.
    async fn admit_inner(
        &self,
        release: Release,
        channel: &Channel,
        document: Option<&AcceptedDocument>,
    ) -> Result<AdmittedRelease, Error> {
        if &release.channel != channel {
            return Err(Error::ChannelMismatch {
                requested: channel.to_string(),
                published: release.channel.to_string(),
            });
        }
        release.validate()?;
        let now = self.clock.now();
        if let Some(expires) = release.expires
            && expires < now
        {
            return Err(Error::Expired {
                version: release.version.to_string(),
                expired_at: expires,
                now,
            });
        }
        let advance = match document {
            Some(document) => {
                self.high_water
                    .advance_signed(channel, &release.version, document, now)
                    .await?
            }
            None => self.high_water.advance(channel, &release.version).await?,
        };
        if let HighWaterAdvance::Raised { previous } = &advance {
            tracing::info!(
                channel = %channel,
                version = %release.version,
                previous = ?previous.as_ref().map(ToString::to_string),
                "accepted a newer release"
            );
        }
        Ok(AdmittedRelease::new(release))
    }

    /// [`decode`](Self::decode) then admit: the path from manifest bytes to
    /// an [`AdmittedRelease`] (signatures, channel, validity, expiry,
    /// rollback; for a signed document also replay).
    pub async fn verify(
        &self,
        bytes: &[u8],
        channel: &Channel,
        origin: &str,
    ) -> Result<AdmittedRelease, Error> {
        let (release, authentication) = self.decode(bytes, channel, origin)?;
        self.admit_decoded(release, &authentication, channel).await
    }
}

/// A signed release pins its CloudFormation template by content: the
/// signature covers the URL, and only the hash makes what is behind the URL
/// part of the signed statement.
fn check_template_sha256(release: &Release) -> Result<(), Error> {
    match &release.template_sha256 {
        Some(hash) if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => Ok(()),
        Some(hash) => Err(Error::InvalidRelease {
            version: release.version.to_string(),
            reason: format!(
                "its template_sha256 is not 64 hex digits ({} characters); the publisher must \
                 sign the sha256 of the template at {}",
                hash.len(),
                release.template_url
            ),
        }),
        None => Err(Error::InvalidRelease {
            version: release.version.to_string(),
            reason: format!(
                "it is signed but has no template_sha256, so the template at {} is not covered \
                 by the signature; the publisher must add the template's sha256 and re-sign",
                release.template_url
            ),
        }),
    }
}
