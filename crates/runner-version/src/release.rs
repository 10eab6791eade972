//! Releases.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Channel, Error, ImageRef, InfraVersion, Version, WaveSchedule};

/// One release of the runner: what the updater may deploy.
///
/// Built by the manifest parsers and release sources; [`Release::validate`]
/// checks the invariants every source must uphold (the image is pinned by
/// digest, the template URL is https).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// The release version.
    pub version: Version,
    /// The channel the release was published on.
    pub channel: Channel,
    /// The runner image, pinned by digest.
    pub image: ImageRef,
    /// The proxy image, if the release has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_image: Option<ImageRef>,
    /// The infrastructure version the release needs; `None` when the source
    /// does not say (the policy then refuses to guess).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infra_version: Option<InfraVersion>,
    /// The CloudFormation template of that infrastructure version.
    pub template_url: String,
    /// The expected sha256 (hex) of the template, if published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_sha256: Option<String>,
    /// When the release was published, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_at: Option<DateTime<Utc>>,
    /// After this instant the release metadata must no longer be trusted
    /// (freeze-attack protection), if set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<DateTime<Utc>>,
    /// The staged rollout: which share of the fleet may update how long
    /// after [`released_at`](Self::released_at). Default (and when absent
    /// from a manifest): no waves, the whole fleet at once. Part of the
    /// signed document like every other field.
    #[serde(default, skip_serializing_if = "WaveSchedule::is_empty")]
    pub waves: WaveSchedule,
}

impl Release {
    /// Checks the invariants of a release: the runner (and proxy) image is
    /// pinned by digest, the template URL is `https://`, and a release with
    /// [`waves`](Self::waves) has a [`released_at`](Self::released_at) to
    /// measure them from.
    pub fn validate(&self) -> Result<(), Error> {
        self.image.pinned()?;
        if let Some(proxy) = &self.proxy_image {
            proxy.pinned()?;
        }
        if !self.template_url.starts_with("https://") {
            return Err(Error::InvalidRelease {
                version: self.version.to_string(),
                reason: format!("template URL {:?} is not https", self.template_url),
            });
        }
        if !self.waves.is_empty() && self.released_at.is_none() {
            return Err(Error::InvalidRelease {
                version: self.version.to_string(),
                reason: "it has rollout waves but no released_at, which their start_after is \
                         measured from; the publisher must set released_at"
                    .into(),
            });
        }
        Ok(())
    }
}
