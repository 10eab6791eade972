//! The ECS services a release is deployed to, in order.

use ecs_rollout::RolloutTarget;
use runner_version::{ImageRef, Release};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Which image of a [`Release`] a target runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseImage {
    /// [`Release::image`], the runner.
    Runner,
    /// [`Release::proxy_image`], the proxy.
    Proxy,
}

impl ReleaseImage {
    /// The image of `release` for this role, if the release has one.
    pub fn of(self, release: &Release) -> Option<&ImageRef> {
        match self {
            Self::Runner => Some(&release.image),
            Self::Proxy => release.proxy_image.as_ref(),
        }
    }
}

/// One ECS service a release is deployed to.
///
/// ```
/// use runner_updater::{ReleaseImage, Target};
///
/// let runner = Target::new("runner", "runners", "runner-svc", "runner", ReleaseImage::Runner);
/// assert_eq!(runner.rollout_target().service, "runner-svc");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// A short name for reports and the journal (`runner`, `proxy`).
    pub name: String,
    /// The ECS cluster.
    pub cluster: String,
    /// The ECS service.
    pub service: String,
    /// The container whose image is replaced.
    pub container: String,
    /// Which image of the release it runs.
    pub image: ReleaseImage,
    /// The docker label carrying the version, if the task definition has
    /// one (default `org.opencontainers.image.version`).
    #[serde(default)]
    pub version_label: Option<String>,
}

impl Target {
    /// A target with the default version label.
    pub fn new(
        name: impl Into<String>,
        cluster: impl Into<String>,
        service: impl Into<String>,
        container: impl Into<String>,
        image: ReleaseImage,
    ) -> Self {
        Self {
            name: name.into(),
            cluster: cluster.into(),
            service: service.into(),
            container: container.into(),
            image,
            version_label: Some(DEFAULT_VERSION_LABEL.into()),
        }
    }

    /// The same target without a version label (version from the image tag).
    pub fn without_version_label(mut self) -> Self {
        self.version_label = None;
        self
    }

    /// The `ecs-rollout` address of the service.
    pub fn rollout_target(&self) -> RolloutTarget {
        RolloutTarget::new(self.cluster.clone(), self.service.clone())
    }

    /// The image this target gets from `release`, or an error naming the
    /// missing image.
    pub fn image_of<'r>(&self, release: &'r Release) -> Result<&'r ImageRef> {
        self.image.of(release).ok_or_else(|| Error::InvalidConfig {
            field: format!("targets.{}.image", self.name),
            reason: format!(
                "is `proxy`, but release {} has no proxy image; remove the target or publish \
                 the proxy image",
                release.version
            ),
        })
    }
}

/// The label most runner images carry their version in.
pub const DEFAULT_VERSION_LABEL: &str = "org.opencontainers.image.version";

/// Checks a list of targets: at least one, the first runs the runner image
/// (its version is the runner's version), names and services unique.
pub fn validate_targets(targets: &[Target]) -> Result<()> {
    let invalid = |field: String, reason: &str| {
        Err(Error::InvalidConfig {
            field,
            reason: reason.into(),
        })
    };
    let Some(first) = targets.first() else {
        return invalid(
            "targets".into(),
            "is empty; name at least the runner service",
        );
    };
    if first.image != ReleaseImage::Runner {
        return invalid(
            "targets[0].image".into(),
            "must be `runner`: the first target's running version is the runner's version",
        );
    }
    for (i, t) in targets.iter().enumerate() {
        for (field, value) in [
            ("name", &t.name),
            ("cluster", &t.cluster),
            ("service", &t.service),
            ("container", &t.container),
        ] {
            if value.trim().is_empty() {
                return invalid(format!("targets[{i}].{field}"), "is empty");
            }
        }
        if targets[..i].iter().any(|o| o.name == t.name) {
            return invalid(
                format!("targets[{i}].name"),
                "repeats an earlier target's name",
            );
        }
        if targets[..i]
            .iter()
            .any(|o| o.cluster == t.cluster && o.service == t.service)
        {
            return invalid(
                format!("targets[{i}].service"),
                "repeats an earlier target's service: one service is one target",
            );
        }
    }
    Ok(())
}
