//! The runner a service runs now, read from ECS itself.

use runner_version::{ImageRef, Version};
use serde::Serialize;

use crate::{Error, RegisteredTaskDefinition, Result};

/// Where the running version was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionSource {
    /// The runner container's version docker label.
    Label,
    /// The tag of the runner image.
    ImageTag,
}

/// The runner of a service's PRIMARY deployment: the input `update-policy`
/// decides on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunningRunner {
    /// The PRIMARY deployment's task definition.
    pub task_definition_arn: String,
    /// Its family.
    pub family: String,
    /// Its revision.
    pub revision: i32,
    /// The runner container's name.
    pub container: String,
    /// The runner image as written in the task definition.
    pub image: String,
    /// The image, parsed (`None` if it is not a valid OCI reference).
    #[serde(skip)]
    pub image_ref: Option<ImageRef>,
    /// The running version, if the label or the image tag holds one.
    #[serde(serialize_with = "ser_version")]
    pub version: Option<Version>,
    /// Where `version` came from.
    pub version_source: Option<VersionSource>,
}

fn ser_version<S: serde::Serializer>(v: &Option<Version>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.collect_str(v),
        None => s.serialize_none(),
    }
}

impl RunningRunner {
    /// Reads the runner from a registered task definition: the version from
    /// the label `version_label` when present and valid, otherwise from the
    /// image tag (`runner:20250101.1`, also with a digest).
    pub fn from_task_definition(
        td: &RegisteredTaskDefinition,
        container: &str,
        version_label: Option<&str>,
    ) -> Result<Self> {
        let runner = td.spec.runner_container(container).map_err(|e| match e {
            Error::InvalidTaskDefinition { reason, .. } => Error::InvalidTaskDefinition {
                task_definition: td.arn.clone(),
                reason,
            },
            other => other,
        })?;
        let image_ref = ImageRef::parse(&runner.image).ok();
        let from_label = version_label
            .and_then(|label| runner.docker_labels.get(label))
            .and_then(|text| Version::parse(text).ok())
            .map(|v| (v, VersionSource::Label));
        let from_tag = || {
            image_ref
                .as_ref()
                .and_then(|i| i.tag())
                .and_then(|tag| Version::parse(tag).ok())
                .map(|v| (v, VersionSource::ImageTag))
        };
        let (version, version_source) = from_label.or_else(from_tag).unzip();
        Ok(Self {
            task_definition_arn: td.arn.clone(),
            family: td.spec.family.clone(),
            revision: td.revision,
            container: container.to_owned(),
            image: runner.image.clone(),
            image_ref,
            version,
            version_source,
        })
    }

    /// Whether the runner already runs `image` (same digest when both have
    /// one, otherwise the same normalised reference).
    pub fn runs_image(&self, image: &ImageRef) -> bool {
        self.image_ref.as_ref().is_some_and(|i| i.same_image(image))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::{ContainerDefinition, TaskDefinitionSpec};

    fn td(image: &str, labels: &[(&str, &str)]) -> RegisteredTaskDefinition {
        RegisteredTaskDefinition {
            arn: "arn:aws:ecs:us-east-1:1:task-definition/runner:4".into(),
            revision: 4,
            spec: TaskDefinitionSpec {
                family: "runner".into(),
                container_definitions: vec![ContainerDefinition {
                    name: "runner".into(),
                    image: image.into(),
                    docker_labels: labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect::<BTreeMap<_, _>>(),
                    ..Default::default()
                }],
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn version_from_label_or_tag() {
        let digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let pinned = format!("registry.example.com:5000/team/runner:20250102.3@{digest}");
        type Case<'a> = (
            String,
            Vec<(&'a str, &'a str)>,
            Option<&'a str>,
            Option<VersionSource>,
        );
        let cases: Vec<Case> = vec![
            (
                "r.example.com/runner:20250101.1".into(),
                vec![("v", "20250105.2")],
                Some("20250105.2"),
                Some(VersionSource::Label),
            ),
            (
                "r.example.com/runner:20250101.1".into(),
                vec![],
                Some("20250101.1"),
                Some(VersionSource::ImageTag),
            ),
            (
                "r.example.com/runner:20250101.1".into(),
                vec![("v", "garbage")],
                Some("20250101.1"),
                Some(VersionSource::ImageTag),
            ),
            (
                pinned,
                vec![],
                Some("20250102.3"),
                Some(VersionSource::ImageTag),
            ),
            ("r.example.com/runner:latest".into(), vec![], None, None),
        ];
        for (image, labels, version, source) in cases {
            let runner =
                RunningRunner::from_task_definition(&td(&image, &labels), "runner", Some("v"))
                    .unwrap();
            assert_eq!(
                runner.version.map(|v| v.to_string()).as_deref(),
                version,
                "{image}"
            );
            assert_eq!(runner.version_source, source, "{image}");
            assert_eq!(runner.image, image);
        }
    }

    #[test]
    fn missing_container_names_the_revision() {
        let err = RunningRunner::from_task_definition(&td("x:1", &[]), "app", None).unwrap_err();
        assert!(
            err.to_string().contains("task-definition/runner:4"),
            "{err}"
        );
    }
}
