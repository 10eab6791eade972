//! Trust policy: which keys may sign releases, and how many must.

use std::collections::{BTreeMap, BTreeSet};

use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};
use ed25519_dalek::{Signature, VerifyingKey};

use crate::{Error, SignedManifest};

/// The keys a client trusts to sign releases, and how many of them must
/// sign (the threshold).
///
/// Key rotation: several keys can be trusted at once, so a publisher can
/// sign with the old and the new key while clients roll over;
/// [`TrustPolicy::rotate_out`] then removes the old key, after which its
/// signatures no longer count (and are named as rotated out in errors).
///
/// Defaults: threshold 1, no key (invalid until a key is added), expiry
/// required on signed releases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustPolicy {
    keys: BTreeMap<String, VerifyingKey>,
    rotated_out: BTreeSet<String>,
    threshold: usize,
    require_expiry: bool,
}

impl Default for TrustPolicy {
    fn default() -> Self {
        Self {
            keys: BTreeMap::new(),
            rotated_out: BTreeSet::new(),
            threshold: 1,
            require_expiry: true,
        }
    }
}

/// What [`TrustPolicy::verify`] found: the evidence of an accepted manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureReport {
    /// Distinct trusted keys whose signature verified, sorted.
    pub valid_keys: Vec<String>,
    /// Key ids whose signatures did not count (unknown or rotated out),
    /// sorted.
    pub ignored_keys: Vec<String>,
    /// The sha256 (lowercase hex) of the canonical signed document: what the
    /// high-water mark remembers to refuse a replayed or altered document
    /// of an accepted version ([`Error::Replay`]).
    pub document_sha256: String,
}

impl TrustPolicy {
    /// A policy requiring `threshold` distinct trusted signatures.
    pub fn new(threshold: usize) -> Self {
        Self {
            threshold,
            ..Self::default()
        }
    }

    /// Trusts `key` under `id` (replacing a key of the same id).
    pub fn with_key(mut self, id: impl Into<String>, key: VerifyingKey) -> Self {
        self.trust(id, key);
        self
    }

    /// Trusts a key given as standard base64 of its 32 bytes.
    pub fn with_key_base64(self, id: impl Into<String>, key: &str) -> Result<Self, Error> {
        let id = id.into();
        let key = parse_public_key(&id, key)?;
        Ok(self.with_key(id, key))
    }

    /// Trusts `key` under `id`; un-does an earlier rotation of that id.
    pub fn trust(&mut self, id: impl Into<String>, key: VerifyingKey) {
        let id = id.into();
        self.rotated_out.remove(&id);
        self.keys.insert(id, key);
    }

    /// Stops trusting the key `id`: its signatures no longer count. Returns
    /// whether the key was trusted.
    pub fn rotate_out(&mut self, id: &str) -> bool {
        let was_trusted = self.keys.remove(id).is_some();
        if was_trusted {
            self.rotated_out.insert(id.to_string());
        }
        was_trusted
    }

    /// Whether signed releases must carry `expires` (default `true`: without
    /// it a frozen mirror could serve an old release forever).
    pub fn require_expiry(mut self, required: bool) -> Self {
        self.require_expiry = required;
        self
    }

    /// The threshold.
    pub fn threshold(&self) -> usize {
        self.threshold
    }

    /// Whether signed releases must carry `expires`.
    pub fn expiry_required(&self) -> bool {
        self.require_expiry
    }

    /// The ids of the trusted keys, sorted.
    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// Checks that the policy can ever be satisfied and means what it says:
    /// a threshold of at least one, at least that many trusted keys, and no
    /// public key trusted under two ids.
    pub fn validate(&self) -> Result<(), Error> {
        if self.threshold == 0 {
            return Err(invalid("the threshold must be at least 1"));
        }
        let distinct: BTreeSet<[u8; 32]> = self.keys.values().map(|k| k.to_bytes()).collect();
        if distinct.len() < self.keys.len() {
            return Err(invalid(
                "two key ids name the same public key; one signer could then count twice \
                 towards the threshold",
            ));
        }
        if self.keys.len() < self.threshold {
            return Err(invalid(format!(
                "the threshold is {} but only {} key(s) are trusted; add keys or lower the \
                 threshold",
                self.threshold,
                self.keys.len()
            )));
        }
        Ok(())
    }

    /// Verifies the signatures of `manifest` (not its content: expiry,
    /// channel and rollback are checked by the
    /// [`ReleaseVerifier`](crate::ReleaseVerifier)).
    ///
    /// - no signature at all: [`Error::MissingSignature`];
    /// - a signature claiming a trusted key that does not verify (or is not
    ///   well-formed): [`Error::BadSignature`], even if enough other
    ///   signatures are valid;
    /// - fewer distinct trusted keys than the threshold, and only unknown or
    ///   rotated-out keys signed: [`Error::UnknownKey`];
    /// - fewer distinct trusted keys than the threshold otherwise:
    ///   [`Error::BelowThreshold`].
    ///
    /// Signatures by unknown keys are otherwise ignored (a publisher may sign
    /// with a key that clients do not trust yet), and two signatures by one
    /// key count once.
    ///
    /// The policy itself is [validated](Self::validate) first, so a policy
    /// that could never mean what it says (threshold 0, more than the keys,
    /// one key under two ids) is an [`Error::InvalidConfig`], not a pass.
    pub fn verify(&self, manifest: &SignedManifest) -> Result<SignatureReport, Error> {
        self.validate()?;
        if manifest.signatures().is_empty() {
            return Err(Error::MissingSignature {
                origin: "signed envelope with an empty signature list".into(),
                required: self.threshold,
            });
        }
        let message = manifest.signed_bytes("signed envelope")?;
        let mut valid = BTreeSet::new();
        let mut ignored = BTreeSet::new();
        for signature in manifest.signatures() {
            let Some(key) = self.keys.get(&signature.key_id) else {
                ignored.insert(signature.key_id.clone());
                continue;
            };
            let bad = |reason: String| Error::BadSignature {
                key_id: signature.key_id.clone(),
                reason,
            };
            let bytes = BASE64
                .decode(signature.signature.trim())
                .map_err(|e| bad(format!("not base64: {e}")))?;
            let bytes: [u8; 64] = bytes.try_into().map_err(|b: Vec<u8>| {
                bad(format!("{} bytes, an Ed25519 signature has 64", b.len()))
            })?;
            key.verify_strict(&message, &Signature::from_bytes(&bytes))
                .map_err(|_| bad("does not verify over the signed document".into()))?;
            valid.insert(signature.key_id.clone());
        }
        if valid.len() >= self.threshold {
            return Ok(SignatureReport {
                valid_keys: valid.into_iter().collect(),
                ignored_keys: ignored.into_iter().collect(),
                document_sha256: sha256_hex(&message),
            });
        }
        if valid.is_empty() {
            let rotated_out = ignored
                .iter()
                .filter(|id| self.rotated_out.contains(*id))
                .cloned()
                .collect();
            return Err(Error::UnknownKey {
                key_ids: ignored.into_iter().collect(),
                rotated_out,
            });
        }
        Err(Error::BelowThreshold {
            valid: valid.len(),
            required: self.threshold,
            valid_keys: valid.into_iter().collect(),
            ignored: ignored.into_iter().collect(),
        })
    }
}

/// Lowercase hex of the sha256 of `bytes`.
fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest as _, Sha256};
    use std::fmt::Write as _;
    Sha256::digest(bytes)
        .iter()
        .fold(String::with_capacity(64), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

fn invalid(reason: impl Into<String>) -> Error {
    Error::InvalidConfig {
        what: "trust policy",
        reason: reason.into(),
    }
}

/// Parses an Ed25519 public key given as standard base64 of its 32 bytes.
pub fn parse_public_key(id: &str, base64: &str) -> Result<VerifyingKey, Error> {
    let bad = |reason: String| invalid(format!("key {id:?}: {reason}"));
    let bytes = BASE64
        .decode(base64.trim())
        .map_err(|e| bad(format!("not base64: {e}")))?;
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|b: Vec<u8>| bad(format!("{} bytes, an Ed25519 public key has 32", b.len())))?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| bad(format!("not an Ed25519 point: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Channel, ImageRef, Release};
    use ed25519_dalek::SigningKey;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn release() -> Release {
        Release {
            version: "20250101.1".parse().unwrap(),
            channel: Channel::Stable,
            image: ImageRef::parse(&format!("r.io/runner@sha256:{}", "a".repeat(64))).unwrap(),
            proxy_image: None,
            infra_version: None,
            template_url: "https://example.com/t.json".into(),
            template_sha256: None,
            released_at: None,
            expires: None,
            waves: Default::default(),
        }
    }

    fn policy(threshold: usize, trusted: &[(&str, u8)]) -> TrustPolicy {
        trusted
            .iter()
            .fold(TrustPolicy::new(threshold), |p, (id, seed)| {
                p.with_key(*id, key(*seed).verifying_key())
            })
    }

    fn sign(signers: &[(&str, u8)]) -> SignedManifest {
        let keys: Vec<_> = signers.iter().map(|(id, s)| (*id, key(*s))).collect();
        let refs: Vec<_> = keys.iter().map(|(id, k)| (*id, k)).collect();
        SignedManifest::sign(&release(), &refs).unwrap()
    }

    #[test]
    fn signature_table() {
        // (threshold, trusted keys, signers, expected: Ok(valid keys) or error name)
        type Case<'a> = (
            usize,
            &'a [(&'a str, u8)],
            &'a [(&'a str, u8)],
            Result<&'a [&'a str], &'a str>,
        );
        let cases: &[Case] = &[
            (1, &[("a", 1)], &[("a", 1)], Ok(&["a"])),
            (
                2,
                &[("a", 1), ("b", 2)],
                &[("a", 1), ("b", 2)],
                Ok(&["a", "b"]),
            ),
            (2, &[("a", 1), ("b", 2)], &[("a", 1)], Err("BelowThreshold")),
            (
                2,
                &[("a", 1), ("b", 2)],
                &[("a", 1), ("a", 1)],
                Err("BelowThreshold"),
            ),
            (1, &[("a", 1)], &[("x", 9)], Err("UnknownKey")),
            (1, &[("a", 1)], &[("a", 1), ("x", 9)], Ok(&["a"])),
            (1, &[("a", 1)], &[("a", 2)], Err("BadSignature")),
            (
                1,
                &[("a", 1), ("b", 2)],
                &[("b", 2), ("a", 3)],
                Err("BadSignature"),
            ),
            (1, &[("a", 1)], &[], Err("MissingSignature")),
        ];
        for (threshold, trusted, signers, want) in cases {
            let got = policy(*threshold, trusted).verify(&sign(signers));
            match (got, want) {
                (Ok(report), Ok(keys)) => assert_eq!(report.valid_keys, *keys),
                (Err(e), Err(name)) => {
                    assert!(format!("{e:?}").starts_with(name), "{signers:?}: {e:?}")
                }
                (got, want) => panic!("{signers:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn tampering_breaks_the_signature() {
        let mut manifest = sign(&[("a", 1)]);
        manifest.signed_document_mut()["template_url"] = "https://evil.example/t.json".into();
        let err = policy(1, &[("a", 1)]).verify(&manifest).unwrap_err();
        assert!(matches!(err, Error::BadSignature { .. }), "{err}");
        let mut manifest = sign(&[("a", 1)]);
        manifest.signatures_mut()[0].signature = "!!".into();
        let err = policy(1, &[("a", 1)]).verify(&manifest).unwrap_err();
        assert!(matches!(err, Error::BadSignature { .. }), "{err}");
    }

    #[test]
    fn rotation_accepts_new_key_and_drops_the_old() {
        let mut trust = policy(1, &[("old", 1), ("new", 2)]);
        assert!(trust.verify(&sign(&[("old", 1)])).is_ok());
        assert!(trust.verify(&sign(&[("new", 2)])).is_ok());
        assert!(trust.rotate_out("old"));
        assert!(trust.verify(&sign(&[("new", 2)])).is_ok());
        match trust.verify(&sign(&[("old", 1)])).unwrap_err() {
            Error::UnknownKey { rotated_out, .. } => assert_eq!(rotated_out, ["old"]),
            e => panic!("{e:?}"),
        }
        // A rotated-out key no longer counts towards a threshold.
        let mut trust = policy(2, &[("old", 1), ("new", 2), ("next", 3)]);
        trust.rotate_out("old");
        let err = trust.verify(&sign(&[("old", 1), ("new", 2)])).unwrap_err();
        assert!(
            matches!(err, Error::BelowThreshold { valid: 1, .. }),
            "{err}"
        );
    }

    #[test]
    fn verify_refuses_an_invalid_policy() {
        let manifest = sign(&[("a", 1), ("b", 2)]);
        for bad in [
            policy(0, &[("a", 1)]),
            policy(3, &[("a", 1), ("b", 2)]),
            policy(1, &[("a", 1), ("b", 1)]),
            TrustPolicy::new(1),
        ] {
            let err = bad.verify(&manifest).unwrap_err();
            assert!(
                matches!(err, Error::InvalidConfig { .. }),
                "{bad:?}: {err:?}"
            );
        }
        // Key ids are distinct by construction: trusting an id again
        // replaces its key, it does not add a second signer.
        let replaced = policy(1, &[("a", 1), ("a", 2)]);
        assert_eq!(replaced.key_ids().count(), 1);
        assert!(replaced.verify(&sign(&[("a", 2)])).is_ok());
        assert!(matches!(
            replaced.verify(&sign(&[("a", 1)])),
            Err(Error::BadSignature { .. })
        ));
    }

    #[test]
    fn validate_rejects_unsatisfiable_policies() {
        assert!(TrustPolicy::default().validate().is_err());
        assert!(policy(0, &[("a", 1)]).validate().is_err());
        assert!(policy(2, &[("a", 1)]).validate().is_err());
        assert!(policy(1, &[("a", 1)]).validate().is_ok());
        assert!(policy(2, &[("a", 1), ("b", 1)]).validate().is_err());
        let b64 = BASE64.encode(key(1).verifying_key().to_bytes());
        assert!(TrustPolicy::new(1).with_key_base64("a", &b64).is_ok());
        assert!(TrustPolicy::new(1).with_key_base64("a", "AAAA").is_err());
    }
}
