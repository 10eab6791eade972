//! Building the full parameter list of an update from the caller's few
//! changes, and the old → new diff shown before applying.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
};

use crate::{Error, NO_ECHO_MASK, ParameterValue, TemplateSummary};

/// One parameter whose value an update changes.
///
/// A `NoEcho` parameter ([`no_echo`](Self::no_echo)) never carries its
/// value: `old` and `new` hold [`NO_ECHO_MASK`] when a value exists, and
/// `Display` shows `(hidden)`. Such a parameter is listed whenever the update
/// sets it, since the old value cannot be compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterChange {
    /// The parameter key.
    pub key: String,
    /// The current value; `None` when the stack does not have the parameter
    /// yet (the new template adds it).
    pub old: Option<String>,
    /// The value after the update; `None` when the new template no longer
    /// declares the parameter.
    pub new: Option<String>,
    /// The parameter is `NoEcho` (or the stack reports it masked): `old`
    /// and `new` are masked.
    pub no_echo: bool,
}

impl fmt::Display for ParameterChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: &Option<String>| match v {
            Some(_) if self.no_echo => "(hidden)".to_string(),
            Some(v) => format!("{v:?}"),
            None => "(none)".to_string(),
        };
        write!(
            f,
            "{}: {} -> {}",
            self.key,
            show(&self.old),
            show(&self.new)
        )
    }
}

/// A parameter kept with `UsePreviousValue` whose default the new template
/// changed: the update keeps the old value, not the new default (opt in to
/// the new defaults with [`UpdateOptions::take_new_defaults`](crate::UpdateOptions::take_new_defaults)).
/// `NoEcho` parameters are never listed (their values are not shown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptDefault {
    /// The parameter key.
    pub key: String,
    /// The value the stack keeps.
    pub kept: String,
    /// The current template's default, if it has one.
    pub old_default: Option<String>,
    /// The new template's default.
    pub new_default: String,
}

impl fmt::Display for KeptDefault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "kept {} = {:?}, the new default is {:?}",
            self.key, self.kept, self.new_default
        )?;
        match &self.old_default {
            Some(old) => write!(f, " (was {old:?})"),
            None => f.write_str(" (there was no default)"),
        }
    }
}

/// The parameters the caller does not change and the stack keeps although
/// the new template (`new`) changed their default from the current one
/// (`old`).
pub(crate) fn kept_with_changed_default(
    old: &TemplateSummary,
    new: &TemplateSummary,
    current: &BTreeMap<String, String>,
    changes: &BTreeMap<String, String>,
) -> Vec<KeptDefault> {
    new.parameters
        .iter()
        .filter_map(|parameter| {
            let key = &parameter.key;
            let new_default = parameter.default_value.as_ref()?;
            let kept = current.get(key)?;
            let old_parameter = old.parameter(key);
            let old_default = old_parameter.and_then(|p| p.default_value.clone());
            let hidden = parameter.no_echo
                || old_parameter.is_some_and(|p| p.no_echo)
                || kept == NO_ECHO_MASK;
            (!changes.contains_key(key)
                && !hidden
                && old_default.as_ref() != Some(new_default)
                && kept != new_default)
                .then(|| KeptDefault {
                    key: key.clone(),
                    kept: kept.clone(),
                    old_default,
                    new_default: new_default.clone(),
                })
        })
        .collect()
}

/// A parameter of an SSM parameter type (`AWS::SSM::Parameter::Value<...>`):
/// CloudFormation resolves the SSM parameter it names again on every update,
/// so its effective value may change although the parameter itself is kept.
/// `NoEcho` parameters are never listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsmParameter {
    /// The stack parameter key.
    pub key: String,
    /// Its declared type.
    pub parameter_type: String,
    /// The SSM parameter name before the update, if the stack has one.
    pub name_before: Option<String>,
    /// The SSM parameter name the update uses.
    pub name_after: Option<String>,
    /// The value resolved at the last update (`DescribeStacks`'
    /// `ResolvedValue`), if reported.
    pub resolved_before: Option<String>,
    /// The value resolved for this update (`DescribeChangeSet`'
    /// `ResolvedValue`), if reported (not known in `Direct` mode).
    pub resolved_after: Option<String>,
}

impl fmt::Display for SsmParameter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: &Option<String>, unknown: &str| match v {
            Some(v) => format!("{v:?}"),
            None => unknown.to_string(),
        };
        write!(
            f,
            "{} ({}) names SSM parameter {}",
            self.key,
            self.parameter_type,
            show(&self.name_after, "(none)")
        )?;
        if self.name_before != self.name_after {
            write!(f, " (was {})", show(&self.name_before, "(none)"))?;
        }
        write!(
            f,
            ": resolved {} -> {}; CloudFormation resolves it again on every update",
            show(&self.resolved_before, "(not reported)"),
            show(&self.resolved_after, "(resolved when the update runs)")
        )
    }
}

/// The SSM-typed parameters of `declared` (not `NoEcho`), with their names
/// before (`current`) and after (`after`) and the value resolved before.
pub(crate) fn ssm_parameters(
    declared: &TemplateSummary,
    current: &BTreeMap<String, String>,
    resolved_before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
) -> Vec<SsmParameter> {
    declared
        .parameters
        .iter()
        .filter(|p| p.is_ssm() && !p.no_echo)
        .map(|p| SsmParameter {
            key: p.key.clone(),
            parameter_type: p.parameter_type.clone().unwrap_or_default(),
            name_before: current.get(&p.key).cloned(),
            name_after: after.get(&p.key).cloned(),
            resolved_before: resolved_before.get(&p.key).cloned(),
            resolved_after: None,
        })
        .collect()
}

/// The parameters to send, the diff, and every value after the update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResolvedParameters {
    /// What is sent to CloudFormation.
    pub send: BTreeMap<String, ParameterValue>,
    /// Only the parameters whose value changes.
    pub diff: Vec<ParameterChange>,
    /// Every declared parameter's value after the update (`NoEcho` values
    /// masked).
    pub after: BTreeMap<String, String>,
    /// The keys of the `NoEcho` parameters sent.
    pub no_echo: BTreeSet<String>,
}

/// Resolves the caller's `changes` against the stack's `current` values and
/// the (new) template's declared parameters:
/// - a change to an undeclared parameter is [`Error::UnknownParameter`];
/// - every declared parameter the stack has and the caller does not change
///   is sent as [`ParameterValue::UsePrevious`];
/// - a declared parameter the stack does not have takes its default, or is
///   [`Error::MissingParameter`] without one;
/// - parameters the template no longer declares are not sent (the diff
///   shows them removed);
/// - `NoEcho` parameters (declared so, or reported as [`NO_ECHO_MASK`] by
///   the stack): a change to the masked value `****` of a `NoEcho`
///   parameter the stack has is the caller handing back what it read, and
///   is sent as [`ParameterValue::UsePrevious`]; any other `****` change of
///   such a parameter is [`Error::MaskedNoEchoValue`] (it would overwrite
///   the secret with the mask). A `NoEcho` parameter that is set is always
///   in the diff, masked.
pub(crate) fn resolve_parameters(
    stack: &str,
    current: &BTreeMap<String, String>,
    declared: &TemplateSummary,
    changes: &BTreeMap<String, String>,
) -> Result<ResolvedParameters, Error> {
    if let Some(unknown) = changes.keys().find(|k| declared.parameter(k).is_none()) {
        return Err(Error::UnknownParameter {
            stack: stack.to_string(),
            parameter: unknown.clone(),
            declared: declared.keys(),
        });
    }
    let mut send = BTreeMap::new();
    let mut diff = Vec::new();
    let mut after = BTreeMap::new();
    let mut no_echo = BTreeSet::new();
    for parameter in &declared.parameters {
        let key = &parameter.key;
        let old = current.get(key);
        let hidden = parameter.no_echo || old.is_some_and(|v| v == NO_ECHO_MASK);
        let mut change = changes.get(key);
        if hidden && change.is_some_and(|v| v == NO_ECHO_MASK) {
            if parameter.no_echo && old.is_some_and(|v| v == NO_ECHO_MASK) {
                // The caller copied the masked value it read: keep the secret.
                change = None;
            } else {
                return Err(Error::MaskedNoEchoValue {
                    stack: stack.to_string(),
                    parameter: key.clone(),
                });
            }
        }
        if hidden {
            no_echo.insert(key.clone());
            let value = match change {
                Some(value) => {
                    send.insert(key.clone(), ParameterValue::Set(value.clone()));
                    Some(NO_ECHO_MASK.to_string())
                }
                None if old.is_some() => {
                    send.insert(key.clone(), ParameterValue::UsePrevious);
                    None
                }
                None if parameter.default_value.is_some() => Some(NO_ECHO_MASK.to_string()),
                None => {
                    return Err(Error::MissingParameter {
                        stack: stack.to_string(),
                        parameter: key.clone(),
                    });
                }
            };
            if let Some(new) = &value {
                diff.push(ParameterChange {
                    key: key.clone(),
                    old: old.map(|_| NO_ECHO_MASK.to_string()),
                    new: Some(new.clone()),
                    no_echo: true,
                });
            }
            after.insert(key.clone(), NO_ECHO_MASK.to_string());
            continue;
        }
        let new = if let Some(value) = change {
            send.insert(key.clone(), ParameterValue::Set(value.clone()));
            value.clone()
        } else if let Some(old) = old {
            send.insert(key.clone(), ParameterValue::UsePrevious);
            old.clone()
        } else if let Some(default) = &parameter.default_value {
            default.clone()
        } else {
            return Err(Error::MissingParameter {
                stack: stack.to_string(),
                parameter: key.clone(),
            });
        };
        if old != Some(&new) {
            diff.push(ParameterChange {
                key: key.clone(),
                old: old.cloned(),
                new: Some(new.clone()),
                no_echo: false,
            });
        }
        after.insert(key.clone(), new);
    }
    for (key, old) in current {
        if declared.parameter(key).is_none() {
            let hidden = old == NO_ECHO_MASK;
            diff.push(ParameterChange {
                key: key.clone(),
                old: Some(if hidden { NO_ECHO_MASK } else { old }.to_string()),
                new: None,
                no_echo: hidden,
            });
        }
    }
    diff.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(ResolvedParameters {
        send,
        diff,
        after,
        no_echo,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DeclaredParameter;
    use proptest::prelude::*;

    fn declared(params: &[(&str, Option<&str>)]) -> TemplateSummary {
        TemplateSummary {
            parameters: params
                .iter()
                .map(|(k, d)| DeclaredParameter {
                    key: k.to_string(),
                    default_value: d.map(Into::into),
                    no_echo: false,
                    parameter_type: None,
                })
                .collect(),
            ..TemplateSummary::default()
        }
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parameter_only_change_keeps_the_others() {
        let current = map(&[("Image", "v1"), ("Subnets", "s1,s2"), ("Zones", "a,b")]);
        let template = declared(&[("Image", None), ("Subnets", None), ("Zones", None)]);
        let resolved =
            resolve_parameters("runner", &current, &template, &map(&[("Image", "v2")])).unwrap();
        assert_eq!(
            resolved.send,
            BTreeMap::from([
                ("Image".to_string(), ParameterValue::Set("v2".into())),
                ("Subnets".to_string(), ParameterValue::UsePrevious),
                ("Zones".to_string(), ParameterValue::UsePrevious),
            ])
        );
        assert_eq!(
            resolved.diff,
            vec![ParameterChange {
                key: "Image".into(),
                old: Some("v1".into()),
                new: Some("v2".into()),
                no_echo: false,
            }]
        );
        assert_eq!(resolved.diff[0].to_string(), "Image: \"v1\" -> \"v2\"");
    }

    #[test]
    fn new_template_adds_and_removes_parameters() {
        let current = map(&[("Image", "v1"), ("Legacy", "x")]);
        let template = declared(&[("Image", None), ("LogLevel", Some("info"))]);
        let resolved = resolve_parameters("runner", &current, &template, &BTreeMap::new()).unwrap();
        assert_eq!(
            resolved.send,
            BTreeMap::from([("Image".to_string(), ParameterValue::UsePrevious)])
        );
        assert_eq!(
            resolved.diff,
            vec![
                ParameterChange {
                    key: "Legacy".into(),
                    old: Some("x".into()),
                    new: None,
                    no_echo: false,
                },
                ParameterChange {
                    key: "LogLevel".into(),
                    old: None,
                    new: Some("info".into()),
                    no_echo: false,
                },
            ]
        );
    }

    #[test]
    fn input_errors() {
        let current = map(&[("Image", "v1")]);
        let template = declared(&[("Image", None), ("Required", None)]);
        let err = resolve_parameters("runner", &current, &template, &map(&[("Imgae", "v2")]))
            .unwrap_err();
        assert!(
            matches!(&err, Error::UnknownParameter { parameter, .. } if parameter == "Imgae"),
            "{err}"
        );
        assert!(
            err.to_string().contains("\"Imgae\" is not declared"),
            "{err}"
        );
        let err = resolve_parameters("runner", &current, &template, &BTreeMap::new()).unwrap_err();
        assert!(
            matches!(&err, Error::MissingParameter { parameter, .. } if parameter == "Required")
        );
    }

    #[test]
    fn no_echo_values_are_masked_kept_or_refused() {
        let secret = "s3cr3t-token";
        let current = map(&[("Image", "v1"), ("Token", NO_ECHO_MASK)]);
        let mut template = declared(&[("Image", None), ("Token", None), ("NewSecret", Some("d"))]);
        template.parameters[1].no_echo = true;
        template.parameters[2].no_echo = true;

        // Handing back the masked value keeps the secret (UsePreviousValue).
        let copied = map(&[("Image", "v2"), ("Token", NO_ECHO_MASK)]);
        let resolved = resolve_parameters("runner", &current, &template, &copied).unwrap();
        assert_eq!(resolved.send["Token"], ParameterValue::UsePrevious);
        let keys: Vec<&str> = resolved.diff.iter().map(|c| c.key.as_str()).collect();
        // The defaulted NoEcho parameter is new: listed, hidden.
        assert_eq!(keys, ["Image", "NewSecret"]);
        assert_eq!(
            resolved.diff[1].to_string(),
            "NewSecret: (none) -> (hidden)"
        );

        // A real new value is sent, always listed, never shown.
        let set = map(&[("Token", secret)]);
        let resolved = resolve_parameters("runner", &current, &template, &set).unwrap();
        assert_eq!(resolved.send["Token"], ParameterValue::Set(secret.into()));
        let token = resolved.diff.iter().find(|c| c.key == "Token").unwrap();
        assert_eq!(token.to_string(), "Token: (hidden) -> (hidden)");
        assert!(!format!("{:?} {:?}", resolved.diff, resolved.after).contains(secret));
        assert!(resolved.no_echo.contains("Token"));

        // The mask for a NoEcho parameter the stack does not have is refused.
        let err = resolve_parameters(
            "runner",
            &current,
            &template,
            &map(&[("NewSecret", NO_ECHO_MASK)]),
        )
        .unwrap_err();
        assert!(
            matches!(&err, Error::MaskedNoEchoValue { parameter, .. } if parameter == "NewSecret"),
            "{err}"
        );
        assert!(err.to_string().contains("\"NewSecret\""), "{err}");

        // A masked stack value under a template that no longer says NoEcho:
        // the mask is refused too (it would overwrite the secret).
        let plain = declared(&[("Image", None), ("Token", None)]);
        let err = resolve_parameters("runner", &current, &plain, &map(&[("Token", NO_ECHO_MASK)]))
            .unwrap_err();
        assert!(matches!(err, Error::MaskedNoEchoValue { .. }), "{err}");
    }

    proptest! {
        /// Only declared parameters are sent; every declared parameter the
        /// stack has and the caller did not change is UsePrevious; the diff
        /// names exactly the keys whose value differs.
        #[test]
        fn unchanged_parameters_are_always_use_previous(
            current in prop::collection::btree_map("[A-E]", "[a-c]", 0..5),
            declared_keys in prop::collection::btree_set("[A-F]", 0..6),
            changes in prop::collection::btree_map("[A-F]", "[a-c]", 0..3),
        ) {
            let template = TemplateSummary {
                parameters: declared_keys.iter().map(|k| DeclaredParameter {
                    key: k.clone(), default_value: Some("d".into()), no_echo: false, parameter_type: None,
                }).collect(),
                ..TemplateSummary::default()
            };
            match resolve_parameters("s", &current, &template, &changes) {
                Err(Error::UnknownParameter { parameter, .. }) => {
                    prop_assert!(!declared_keys.contains(&parameter));
                }
                Err(other) => prop_assert!(false, "{other}"),
                Ok(resolved) => {
                    for key in resolved.send.keys() {
                        prop_assert!(declared_keys.contains(key));
                    }
                    for key in &declared_keys {
                        let expected = match (changes.get(key), current.get(key)) {
                            (Some(v), _) => Some(ParameterValue::Set(v.clone())),
                            (None, Some(_)) => Some(ParameterValue::UsePrevious),
                            (None, None) => None,
                        };
                        prop_assert_eq!(resolved.send.get(key).cloned(), expected);
                    }
                    for change in &resolved.diff {
                        prop_assert_ne!(change.old.as_ref(), change.new.as_ref());
                    }
                    let diff_keys: Vec<&String> = resolved.diff.iter().map(|c| &c.key).collect();
                    for key in current.keys().chain(declared_keys.iter()) {
                        let after = resolved.after.get(key);
                        prop_assert_eq!(diff_keys.contains(&key), current.get(key) != after);
                    }
                }
            }
        }
    }
}
