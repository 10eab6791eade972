//! CloudFormation inputs an operator or a release supplies: template URLs
//! (`TemplateUrlPolicy`), parameter changes resolved against a stack and
//! its template (`StackUpdater::plan` on `FakeCfn`), and the comma lists of
//! the zone and subnet parameters (`AzParameterNames`).
//!
//! Beyond "no panic":
//! - an accepted template URL is https; an S3 location names a bucket and a
//!   key, is accepted when only its bucket is allowed, and refused over
//!   plain http; an allow-listed host is one of the allowed hosts;
//! - a plan sends only declared parameters (a change to another is
//!   `UnknownParameter`), lists only keys the stack or the template has,
//!   and never carries a `NoEcho` value: no plan, `Display`, `Debug` or
//!   error contains a secret that was set;
//! - split lists hold no empty or untrimmed entries.
#![no_main]

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, LazyLock},
};

use arbitrary::Arbitrary;
use cfn_stack::{
    AzParameterNames, Error, FakeCfn, FakeTemplate, PlanOutcome, StackChange, StackUpdater,
    StackUpdaterConfig, TemplateLocation, TemplateUrlPolicy,
};
use libfuzzer_sys::fuzz_target;
use update_clock::ManualClock;

/// Marks the values of `NoEcho` parameters; no output may contain it.
const SECRET: &str = "s3cr3t\u{1F511}";
const TEMPLATE: &str = "https://templates.s3.amazonaws.com/runner/v1.yaml";
const NEW_TEMPLATE: &str = "https://templates.s3.amazonaws.com/runner/v2.yaml";

#[derive(Debug, Arbitrary)]
struct Parameter {
    key: String,
    default: Option<String>,
    no_echo: bool,
    /// The stack's current value (a secret for a NoEcho one).
    current: Option<String>,
    /// In the new template too (else removed by it).
    kept: bool,
}

#[derive(Debug, Arbitrary)]
struct Input {
    url: String,
    allowed_hosts: Vec<String>,
    allowed_buckets: Option<Vec<String>>,
    parameters: Vec<Parameter>,
    /// Changes by key; a change to a NoEcho parameter gets a secret value.
    changes: Vec<(String, String)>,
    replace_template: bool,
}

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime")
});

fn check_url(input: &Input) {
    let default = TemplateUrlPolicy::default();
    match default.check(&input.url) {
        Ok(TemplateLocation::S3 { bucket, key, .. }) => {
            assert!(input.url.to_ascii_lowercase().starts_with("https://"));
            assert!(!bucket.is_empty() && !key.is_empty(), "{}", input.url);
            let only = TemplateUrlPolicy::default().only_buckets([bucket.clone()]);
            assert!(only.check(&input.url).is_ok(), "{}", input.url);
            let other = TemplateUrlPolicy::default().only_buckets([format!("{bucket}-x")]);
            assert!(other.check(&input.url).is_err(), "{}", input.url);
            let http = format!("http://{}", &input.url["https://".len()..]);
            assert!(default.check(&http).is_err(), "{http}");
        }
        Ok(other) => panic!("the default policy allows no host: {other:?}"),
        Err(error) => assert!(matches!(error, Error::InvalidTemplateUrl { .. })),
    }
    let policy = TemplateUrlPolicy {
        allowed_hosts: input.allowed_hosts.clone(),
        allowed_buckets: input.allowed_buckets.clone(),
    };
    if policy.validate().is_ok()
        && let Ok(TemplateLocation::AllowedHost { host }) = policy.check(&input.url)
    {
        assert!(
            input
                .allowed_hosts
                .iter()
                .any(|h| h.eq_ignore_ascii_case(&host)),
            "{host} is not allowed: {:?}",
            input.allowed_hosts
        );
    }
}

fn check_lists(values: &BTreeMap<String, String>) {
    let names = AzParameterNames::default();
    let request = names.request_by_list_from(values);
    let union = names.request_from(values);
    let lists = request
        .subnet_lists
        .iter()
        .flat_map(|l| l.subnet_ids.iter());
    for item in request
        .availability_zones
        .iter()
        .chain(lists)
        .chain(union.subnet_ids.iter())
    {
        assert!(!item.is_empty() && item.trim() == item, "{item:?}");
        assert!(!item.contains(','), "{item:?}");
    }
    let _ = names.zone_change_warning(values, &BTreeMap::new());
}

fn check_plan(input: &Input) {
    // Unique keys, first one wins; nothing an attacker controls may
    // contain the secret marker, so any occurrence is a leak.
    let mut seen = BTreeSet::new();
    let parameters: Vec<&Parameter> = input
        .parameters
        .iter()
        .filter(|p| seen.insert(p.key.clone()))
        .collect();
    let texts = parameters
        .iter()
        .flat_map(|p| [Some(&p.key), p.default.as_ref(), p.current.as_ref()])
        .flatten()
        .chain(input.changes.iter().flat_map(|(k, v)| [k, v]));
    if texts.into_iter().any(|t| t.contains("s3cr3t")) {
        return;
    }

    let template = |all: bool| {
        parameters
            .iter()
            .filter(|p| all || p.kept)
            .fold(FakeTemplate::new(), |t, p| {
                if p.no_echo {
                    t.no_echo_parameter(&p.key, p.default.as_deref())
                } else {
                    t.parameter(&p.key, p.default.as_deref())
                }
            })
    };
    let cfn = FakeCfn::new();
    cfn.add_template(TEMPLATE, template(true));
    cfn.add_template(NEW_TEMPLATE, template(false));
    // The stack's NoEcho values are secrets too.
    let current: Vec<(&str, String)> = parameters
        .iter()
        .filter_map(|p| {
            let value = p.current.as_deref()?;
            let value = if p.no_echo {
                format!("{SECRET}{value}")
            } else {
                value.to_string()
            };
            Some((p.key.as_str(), value))
        })
        .collect();
    let current: Vec<(&str, &str)> = current.iter().map(|(k, v)| (*k, v.as_str())).collect();
    if cfn.create_stack("runner", TEMPLATE, &current, &[]).is_err() {
        return;
    }

    let no_echo: BTreeSet<&str> = parameters
        .iter()
        .filter(|p| p.no_echo)
        .map(|p| p.key.as_str())
        .collect();
    let changes: BTreeMap<String, String> = input
        .changes
        .iter()
        .map(|(k, v)| {
            let value = if no_echo.contains(k.as_str()) {
                format!("{SECRET}{v}")
            } else {
                v.clone()
            };
            (k.clone(), value)
        })
        .collect();
    let declared: BTreeSet<&str> = parameters
        .iter()
        .filter(|p| !input.replace_template || p.kept)
        .map(|p| p.key.as_str())
        .collect();
    let change = if input.replace_template {
        StackChange::replace_template(NEW_TEMPLATE, changes.clone())
    } else {
        StackChange::parameters(changes.clone())
    };

    let clock = Arc::new(ManualClock::auto_advancing(ManualClock::EPOCH_2025));
    let updater = StackUpdater::new(Arc::new(cfn), clock, StackUpdaterConfig::default())
        .expect("the default config is valid");
    let outcome = RUNTIME.block_on(updater.plan("runner", &change));
    match &outcome {
        Ok(PlanOutcome::Planned(plan)) => {
            let text = format!("{plan}\n{plan:?}");
            assert!(!text.contains("s3cr3t"), "a NoEcho value leaked:\n{text}");
            for change in &plan.parameter_diff {
                let known = parameters.iter().any(|p| p.key == change.key);
                assert!(known, "{} is neither declared nor on the stack", change.key);
                if no_echo.contains(change.key.as_str()) {
                    assert!(change.no_echo, "{change:?}");
                }
            }
            for key in changes.keys() {
                assert!(declared.contains(key.as_str()), "{key} was sent undeclared");
            }
        }
        Ok(PlanOutcome::NoChanges { reason }) => {
            assert!(!reason.contains("s3cr3t"), "{reason}");
        }
        Err(error) => {
            let text = format!("{error}\n{error:?}");
            assert!(!text.contains("s3cr3t"), "a NoEcho value leaked:\n{text}");
            if let Some(unknown) = changes.keys().find(|k| !declared.contains(k.as_str())) {
                assert!(
                    matches!(error, Error::UnknownParameter { .. }),
                    "a change to undeclared {unknown:?} gave {error}"
                );
            }
        }
    }
}

fuzz_target!(|input: Input| {
    check_url(&input);
    let values: BTreeMap<String, String> = input
        .parameters
        .iter()
        .filter_map(|p| Some((p.key.clone(), p.current.clone()?)))
        .collect();
    check_lists(&values);
    check_plan(&input);
});
