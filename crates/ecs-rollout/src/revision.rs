//! The lossless clone of a task definition and the field-level diff that
//! proves it: the new revision is the running one with only the runner
//! container's image (and its version label) replaced.
//!
//! The clone never maps fields one by one: it copies the whole
//! [`TaskDefinitionSpec`] and changes two values, so a field added to the
//! spec is carried over without any change here. [`diff`] compares the
//! serialized form (every field the spec serializes), so a field it forgets
//! cannot hide a difference either.

use std::collections::BTreeMap;

use runner_version::{ImageRef, Version};
use serde_json::Value;

use crate::{ContainerDefinition, Error, Result, TaskDefinitionSpec};

/// Tags this crate writes on revisions it marks (`ecs-rollout:outcome`, …).
/// They describe one revision, not the service, so a clone drops them.
pub const MARKER_TAG_PREFIX: &str = "ecs-rollout:";

impl TaskDefinitionSpec {
    /// The container called `name`.
    pub fn container(&self, name: &str) -> Option<&ContainerDefinition> {
        self.container_definitions.iter().find(|c| c.name == name)
    }

    /// The runner container, or [`Error::InvalidTaskDefinition`] naming the
    /// containers that exist.
    pub fn runner_container(&self, name: &str) -> Result<&ContainerDefinition> {
        self.container(name).ok_or_else(|| Error::InvalidTaskDefinition {
            task_definition: self.family.clone(),
            reason: format!(
                "no container named {name:?} (containers: {}); set RolloutConfig::runner_container",
                self.container_definitions
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
    }

    /// The lossless clone: this spec with only container `container`'s
    /// image set to `image` and, when `version_label` is given, its docker
    /// label `version_label.0` set to `version_label.1`. Every other field,
    /// tags included, is carried over; tags starting with
    /// [`MARKER_TAG_PREFIX`] (this crate's marks on a failed revision) are
    /// dropped.
    pub fn with_runner_image(
        &self,
        container: &str,
        image: &ImageRef,
        version_label: Option<(&str, &Version)>,
    ) -> Result<TaskDefinitionSpec> {
        self.runner_container(container)?;
        let mut next = self.clone();
        next.tags
            .retain(|key, _| !key.starts_with(MARKER_TAG_PREFIX));
        let runner = next
            .container_definitions
            .iter_mut()
            .find(|c| c.name == container)
            .ok_or_else(|| Error::InvalidTaskDefinition {
                task_definition: self.family.clone(),
                reason: format!("no container named {container:?}"),
            })?;
        runner.image = image.to_string();
        if let Some((label, version)) = version_label {
            runner
                .docker_labels
                .insert(label.to_owned(), version.to_string());
        }
        Ok(next)
    }
}

/// One difference between two task definitions.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldChange {
    /// The path of the field: `containerDefinitions[runner].image`,
    /// `tags.team`, `cpu`. Containers are addressed by name, other list
    /// elements by index.
    pub path: String,
    /// The old value (`null` if absent).
    pub old: Value,
    /// The new value (`null` if absent).
    pub new: Value,
}

/// Every field that differs between `old` and `new`, compared on their
/// serialized form. An absent value, `null`, an empty list and an empty map
/// count as the same ("not set").
pub fn diff(old: &TaskDefinitionSpec, new: &TaskDefinitionSpec) -> Vec<FieldChange> {
    let old = serde_json::to_value(old).unwrap_or(Value::Null);
    let new = serde_json::to_value(new).unwrap_or(Value::Null);
    let mut changes = Vec::new();
    diff_value("", &old, &new, &mut changes);
    changes
}

fn is_unset(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
        _ => false,
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

fn diff_value(path: &str, old: &Value, new: &Value, out: &mut Vec<FieldChange>) {
    if is_unset(old) && is_unset(new) {
        return;
    }
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let null = Value::Null;
                diff_value(
                    &join(path, key),
                    a.get(key).unwrap_or(&null),
                    b.get(key).unwrap_or(&null),
                    out,
                );
            }
        }
        (Value::Array(a), Value::Array(b)) if by_name(a).is_some() && by_name(b).is_some() => {
            let (a, b) = (
                by_name(a).unwrap_or_default(),
                by_name(b).unwrap_or_default(),
            );
            let mut names: Vec<&str> = a.keys().chain(b.keys()).copied().collect();
            names.sort_unstable();
            names.dedup();
            for name in names {
                let null = Value::Null;
                diff_value(
                    &format!("{path}[{name}]"),
                    a.get(name).copied().unwrap_or(&null),
                    b.get(name).copied().unwrap_or(&null),
                    out,
                );
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                diff_value(&format!("{path}[{i}]"), x, y, out);
            }
        }
        _ if old == new => {}
        _ => out.push(FieldChange {
            path: path.to_owned(),
            old: old.clone(),
            new: new.clone(),
        }),
    }
}

/// A list of objects that all have a distinct string `name` (containers),
/// keyed by it.
fn by_name(items: &[Value]) -> Option<BTreeMap<&str, &Value>> {
    if items.is_empty() || !items.iter().all(|v| v.get("image").is_some()) {
        return None;
    }
    let mut map = BTreeMap::new();
    for item in items {
        let name = item.get("name")?.as_str()?;
        if map.insert(name, item).is_some() {
            return None;
        }
    }
    Some(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `diff_value` on raw JSON: the paths it reports, in order.
    fn paths(old: Value, new: Value) -> Vec<String> {
        let mut out = Vec::new();
        diff_value("x", &old, &new, &mut out);
        out.into_iter().map(|c| c.path).collect()
    }

    #[test]
    fn absent_null_empty_list_and_empty_map_are_all_unset_and_nothing_else_is() {
        use serde_json::json;
        let unset = [json!(null), json!([]), json!({})];
        for a in &unset {
            for b in &unset {
                assert_eq!(paths(a.clone(), b.clone()), Vec::<String>::new(), "{a} {b}");
            }
        }
        assert_eq!(paths(json!({"a": 1}), json!({})), ["x.a"]);
        for (set, empty) in [
            (json!([1]), json!([])),
            (json!(""), json!(null)),
            (json!(0), json!(null)),
            (json!(false), json!(null)),
        ] {
            assert_eq!(paths(set.clone(), empty.clone()), ["x"], "{set} {empty}");
            assert_eq!(paths(empty.clone(), set.clone()), ["x"], "{empty} {set}");
        }
    }

    /// A lost field must show: lists of another length differ as a whole
    /// (never zipped to the shorter one), lists of the same length element
    /// by element, and only container lists (objects with an `image` and
    /// distinct names) by name.
    #[test]
    fn lists_are_compared_by_position_unless_they_are_containers() {
        use serde_json::json;
        assert_eq!(paths(json!([1, 2]), json!([1])), ["x"]);
        assert_eq!(paths(json!([1]), json!([1, 2])), ["x"]);
        assert_eq!(paths(json!([1, 2, 3]), json!([1, 5, 6])), ["x[1]", "x[2]"]);
        let env = |value: &str| json!([{"name": "A", "value": "1"}, {"name": "B", "value": value}]);
        assert_eq!(paths(env("2"), env("3")), ["x[1].value"]);
        let containers = |image: &str| json!([{"name": "runner", "image": image}, {"name": "proxy", "image": "p"}]);
        assert_eq!(
            paths(containers("r:1"), containers("r:2")),
            ["x[runner].image"]
        );
        // A container list against one that is not (a duplicate name):
        // compared by position, no container taken for missing.
        let duplicated =
            json!([{"name": "runner", "image": "r:1"}, {"name": "runner", "image": "p"}]);
        assert_eq!(paths(containers("r:1"), duplicated.clone()), ["x[1].name"]);
        assert_eq!(paths(duplicated, containers("r:1")), ["x[1].name"]);
        // Containers by name, whatever their order.
        let swapped = json!([{"name": "proxy", "image": "p"}, {"name": "runner", "image": "r:1"}]);
        assert_eq!(paths(containers("r:1"), swapped), Vec::<String>::new());
    }

    fn spec() -> TaskDefinitionSpec {
        TaskDefinitionSpec {
            family: "runner".into(),
            container_definitions: vec![
                ContainerDefinition {
                    name: "runner".into(),
                    image: "registry.example.com:5000/team/runner:20250101.1".into(),
                    ..Default::default()
                },
                ContainerDefinition {
                    name: "proxy".into(),
                    image: "proxy:1".into(),
                    ..Default::default()
                },
            ],
            tags: BTreeMap::from([
                ("team".into(), "infra".into()),
                ("ecs-rollout:outcome".into(), "rolled-back-by-ecs".into()),
            ]),
            ..Default::default()
        }
    }

    #[test]
    fn clone_changes_image_label_and_drops_marks_only() {
        let old = spec();
        let image = ImageRef::parse("registry.example.com:5000/team/runner:20250102.1").unwrap();
        let version = Version::parse("20250102.1").unwrap();
        let new = old
            .with_runner_image("runner", &image, Some(("version", &version)))
            .unwrap();
        let paths: Vec<String> = diff(&old, &new).into_iter().map(|c| c.path).collect();
        assert_eq!(
            paths,
            vec![
                "containerDefinitions[runner].dockerLabels.version",
                "containerDefinitions[runner].image",
                "tags.ecs-rollout:outcome",
            ]
        );
        assert_eq!(new.tags.get("team").map(String::as_str), Some("infra"));
    }

    #[test]
    fn unknown_runner_container_names_the_existing_ones() {
        let image = ImageRef::parse("runner:2").unwrap();
        let err = spec().with_runner_image("app", &image, None).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("\"app\"") && text.contains("runner, proxy"),
            "{text}"
        );
    }

    #[test]
    fn diff_treats_unset_and_empty_alike() {
        let a = spec();
        let mut b = spec();
        b.container_definitions[1].docker_labels.clear();
        assert!(diff(&a, &b).is_empty());
        b.container_definitions[1].essential = Some(false);
        let paths: Vec<String> = diff(&a, &b).into_iter().map(|c| c.path).collect();
        assert_eq!(paths, vec!["containerDefinitions[proxy].essential"]);
    }
}
