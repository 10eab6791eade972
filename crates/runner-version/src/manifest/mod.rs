//! Manifest formats: the public Gitpod manifest and the signed envelope.

mod gitpod;
mod signed;
mod strict_json;

pub use gitpod::GitpodManifest;
pub use signed::{ManifestSignature, SIGNING_CONTEXT, SignedManifest};

use serde_json::Value;

use crate::Error;

/// A manifest in one of the two accepted formats, told apart by shape: an
/// object with a `signed` member is a [`SignedManifest`], anything else is
/// read as a [`GitpodManifest`].
#[derive(Debug, Clone, PartialEq)]
pub enum Manifest {
    /// Our signed envelope.
    Signed(SignedManifest),
    /// The public, unsigned Gitpod manifest.
    Gitpod(Box<GitpodManifest>),
}

impl Manifest {
    /// Parses manifest bytes. `origin` (a URL, a path) is quoted in errors.
    pub fn parse(bytes: &[u8], origin: &str) -> Result<Self, Error> {
        let value: Value = strict_json::parse(bytes).map_err(|e| Error::MalformedManifest {
            origin: origin.into(),
            reason: format!("not JSON: {e}"),
        })?;
        if value.get("signed").is_some() {
            return SignedManifest::from_value(value, origin).map(Self::Signed);
        }
        serde_json::from_value(value)
            .map(|m| Self::Gitpod(Box::new(m)))
            .map_err(|e| Error::MalformedManifest {
                origin: origin.into(),
                reason: format!(
                    "neither a signed envelope (no `signed` member) nor a Gitpod runner \
                     manifest: {e}"
                ),
            })
    }
}
