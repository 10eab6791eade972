//! Infrastructure versions.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The version of the infrastructure (the CloudFormation stack) a runner
/// image was built for. Opaque: only compared for equality.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct InfraVersion(String);

impl InfraVersion {
    /// Wraps an infrastructure version string (surrounding whitespace is
    /// trimmed).
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into().trim().to_string())
    }

    /// The version string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InfraVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for InfraVersion {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}
