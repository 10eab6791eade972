//! The signed release envelope.

use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};
use ed25519_dalek::{Signer as _, SigningKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Error, Release};

/// Prepended to the canonical document before signing, so a signature made
/// for this format can never be replayed as a signature of anything else.
pub const SIGNING_CONTEXT: &[u8] = b"runner-version/signed-release/v1\n";

/// One signature of a [`SignedManifest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestSignature {
    /// The id of the signing key, as named in the client's
    /// [`TrustPolicy`](crate::TrustPolicy).
    #[serde(rename = "keyid")]
    pub key_id: String,
    /// The Ed25519 signature, standard base64 (64 bytes decoded).
    #[serde(rename = "sig")]
    pub signature: String,
}

/// A release document plus Ed25519 signatures over it:
///
/// ```json
/// {
///   "signed": { "version": "20250101.3", "channel": "stable", "image": "…@sha256:…",
///               "template_url": "https://…", "expires": "2025-02-01T00:00:00Z" },
///   "signatures": [ { "keyid": "release-2025", "sig": "<base64>" } ]
/// }
/// ```
///
/// Each signature covers [`SignedManifest::signed_bytes`]: the fixed
/// [`SIGNING_CONTEXT`] followed by the canonical JSON of the *whole* `signed`
/// object as received (every field, unknown ones and `expires` included).
/// Canonical JSON here is: object keys sorted by their UTF-8 bytes, no
/// whitespace, strings escaped as `serde_json` does, integers only (a float
/// anywhere in the document is refused, as its text form is not canonical).
#[derive(Debug, Clone, PartialEq)]
pub struct SignedManifest {
    signed: Value,
    signatures: Vec<ManifestSignature>,
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    signed: Value,
    #[serde(default)]
    signatures: Vec<ManifestSignature>,
}

impl SignedManifest {
    /// Signs `release` with every `(key_id, key)` pair: the publisher's
    /// side, also used by tests.
    pub fn sign(release: &Release, keys: &[(&str, &SigningKey)]) -> Result<Self, Error> {
        let signed = serde_json::to_value(release).map_err(|e| Error::InvalidRelease {
            version: release.version.to_string(),
            reason: format!("cannot serialise: {e}"),
        })?;
        let mut manifest = Self {
            signed,
            signatures: Vec::new(),
        };
        for (key_id, key) in keys {
            manifest.add_signature(key_id, key)?;
        }
        Ok(manifest)
    }

    /// Adds one more signature (another publisher's key, or a new key during
    /// rotation).
    pub fn add_signature(&mut self, key_id: &str, key: &SigningKey) -> Result<(), Error> {
        let bytes = self.signed_bytes("signing")?;
        let signature = key.sign(&bytes);
        self.signatures.push(ManifestSignature {
            key_id: key_id.into(),
            signature: BASE64.encode(signature.to_bytes()),
        });
        Ok(())
    }

    /// Parses the envelope JSON (no signature is checked here; see
    /// [`TrustPolicy::verify`](crate::TrustPolicy::verify)).
    pub fn parse(bytes: &[u8], origin: &str) -> Result<Self, Error> {
        let value: Value = super::strict_json::parse(bytes).map_err(|e| malformed(origin, e))?;
        Self::from_value(value, origin)
    }

    pub(crate) fn from_value(value: Value, origin: &str) -> Result<Self, Error> {
        let envelope: Envelope = serde_json::from_value(value).map_err(|e| malformed(origin, e))?;
        if !envelope.signed.is_object() {
            return Err(Error::MalformedManifest {
                origin: origin.into(),
                reason: "`signed` must be a JSON object".into(),
            });
        }
        Ok(Self {
            signed: envelope.signed,
            signatures: envelope.signatures,
        })
    }

    /// The signatures, in document order.
    pub fn signatures(&self) -> &[ManifestSignature] {
        &self.signatures
    }

    /// Mutable access to the signatures (for tests and re-signing tools).
    pub fn signatures_mut(&mut self) -> &mut Vec<ManifestSignature> {
        &mut self.signatures
    }

    /// The signed release document, as received.
    pub fn signed_document(&self) -> &Value {
        &self.signed
    }

    /// Mutable access to the signed document: any change invalidates the
    /// signatures (which is what tests of tampering need).
    pub fn signed_document_mut(&mut self) -> &mut Value {
        &mut self.signed
    }

    /// The exact bytes every signature covers: [`SIGNING_CONTEXT`] followed
    /// by the canonical JSON of the `signed` object.
    pub fn signed_bytes(&self, origin: &str) -> Result<Vec<u8>, Error> {
        let mut out = SIGNING_CONTEXT.to_vec();
        canonical_json(&self.signed, &mut out).map_err(|reason| Error::MalformedManifest {
            origin: origin.into(),
            reason,
        })?;
        Ok(out)
    }

    /// The release the `signed` document describes. Trust it only after
    /// [`TrustPolicy::verify`](crate::TrustPolicy::verify) succeeded.
    pub fn release(&self, origin: &str) -> Result<Release, Error> {
        Release::deserialize(&self.signed).map_err(|e| Error::MalformedManifest {
            origin: origin.into(),
            reason: format!("`signed` is not a release document: {e}"),
        })
    }

    /// The envelope as JSON bytes, ready to publish.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(&Envelope {
            signed: self.signed.clone(),
            signatures: self.signatures.clone(),
        })
        .expect("a JSON value always serialises")
    }
}

fn malformed(origin: &str, e: serde_json::Error) -> Error {
    Error::MalformedManifest {
        origin: origin.into(),
        reason: format!("not a signed release envelope: {e}"),
    }
}

/// Writes the canonical form of `value` (see [`SignedManifest`]).
fn canonical_json(value: &Value, out: &mut Vec<u8>) -> Result<(), String> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => {
            if n.is_f64() {
                return Err(format!(
                    "the signed document contains the non-integer number {n}, which has no \
                     canonical form"
                ));
            }
            out.extend_from_slice(n.to_string().as_bytes());
        }
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical_json(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(key, out);
                out.push(b':');
                canonical_json(item, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    serde_json::to_writer(&mut *out, s).expect("writing a string to a Vec cannot fail");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_form_ignores_key_order_and_whitespace() {
        let a: Value =
            serde_json::from_str(r#"{ "b": [1, {"y": "é", "x": null}], "a": true }"#).unwrap();
        let b = json!({"a": true, "b": [1, {"x": null, "y": "é"}]});
        let (mut ca, mut cb) = (Vec::new(), Vec::new());
        canonical_json(&a, &mut ca).unwrap();
        canonical_json(&b, &mut cb).unwrap();
        assert_eq!(ca, cb);
        assert_eq!(
            String::from_utf8(ca).unwrap(),
            r#"{"a":true,"b":[1,{"x":null,"y":"é"}]}"#
        );
    }

    #[test]
    fn floats_have_no_canonical_form() {
        let mut out = Vec::new();
        assert!(canonical_json(&json!({"a": 1.5}), &mut out).is_err());
    }

    #[test]
    fn envelope_shape_errors_are_malformed() {
        for bad in [
            "",
            "{}",
            r#"{"signed": 1, "signatures": []}"#,
            r#"{"signed": {}, "signatures": [{"keyid": 1}]}"#,
        ] {
            assert!(
                matches!(
                    SignedManifest::parse(bad.as_bytes(), "t"),
                    Err(Error::MalformedManifest { .. })
                ),
                "{bad}"
            );
        }
    }
}
