//! The CloudFormation inputs an operator or a release supplies — template
//! URLs, parameter changes, the zone and subnet lists — never make a parser
//! panic, and what is accepted keeps the properties the fuzz target checks
//! (`fuzz/fuzz_targets/cfn_inputs.rs`): accepted URLs are https S3 URLs with
//! a bucket and a key (or an allow-listed host), plans send only declared
//! parameters, and no plan, `Display`, `Debug` or error carries a `NoEcho`
//! value.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
};

use cfn_stack::{
    AzParameterNames, Error, FakeCfn, FakeTemplate, PlanOutcome, StackChange, StackUpdater,
    StackUpdaterConfig, TemplateLocation, TemplateUrlPolicy,
};
use proptest::prelude::*;
use update_clock::ManualClock;

/// Marks the values of `NoEcho` parameters; no output may contain it.
const SECRET: &str = "s3cr3t\u{1F511}";
const TEMPLATE: &str = "https://templates.s3.amazonaws.com/runner/v1.yaml";
const NEW_TEMPLATE: &str = "https://templates.s3.amazonaws.com/runner/v2.yaml";

#[derive(Debug, Clone)]
struct Parameter {
    key: String,
    default: Option<String>,
    no_echo: bool,
    current: Option<String>,
    kept: bool,
}

fn check_url(url: &str, allowed_hosts: &[String], allowed_buckets: Option<&[String]>) {
    let default = TemplateUrlPolicy::default();
    match default.check(url) {
        Ok(TemplateLocation::S3 { bucket, key, .. }) => {
            assert!(url.to_ascii_lowercase().starts_with("https://"), "{url}");
            assert!(!bucket.is_empty() && !key.is_empty(), "{url}");
            let only = TemplateUrlPolicy::default().only_buckets([bucket.clone()]);
            assert!(only.check(url).is_ok(), "{url}");
            let other = TemplateUrlPolicy::default().only_buckets([format!("{bucket}-x")]);
            assert!(other.check(url).is_err(), "{url}");
            let http = format!("http://{}", &url["https://".len()..]);
            assert!(default.check(&http).is_err(), "{http}");
        }
        Ok(other) => panic!("the default policy allows no host: {other:?}"),
        Err(error) => assert!(matches!(error, Error::InvalidTemplateUrl { .. })),
    }
    let policy = TemplateUrlPolicy {
        allowed_hosts: allowed_hosts.to_vec(),
        allowed_buckets: allowed_buckets.map(<[String]>::to_vec),
    };
    if policy.validate().is_ok()
        && let Ok(TemplateLocation::AllowedHost { host }) = policy.check(url)
    {
        assert!(
            allowed_hosts.iter().any(|h| h.eq_ignore_ascii_case(&host)),
            "{host} is not one of {allowed_hosts:?}"
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
        assert!(!item.is_empty() && item.trim() == item && !item.contains(','));
    }
    let _ = names.zone_change_warning(values, &BTreeMap::new());
}

fn check_plan(parameters: &[Parameter], changes: &[(String, String)], replace_template: bool) {
    let mut seen = BTreeSet::new();
    let parameters: Vec<&Parameter> = parameters
        .iter()
        .filter(|p| seen.insert(p.key.clone()))
        .collect();
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
    let changes: BTreeMap<String, String> = changes
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
        .filter(|p| !replace_template || p.kept)
        .map(|p| p.key.as_str())
        .collect();
    let change = if replace_template {
        StackChange::replace_template(NEW_TEMPLATE, changes.clone())
    } else {
        StackChange::parameters(changes.clone())
    };

    let clock = Arc::new(ManualClock::auto_advancing(ManualClock::EPOCH_2025));
    let updater = StackUpdater::new(Arc::new(cfn), clock, StackUpdaterConfig::default()).unwrap();
    let outcome = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(updater.plan("runner", &change));
    match &outcome {
        Ok(PlanOutcome::Planned(plan)) => {
            let text = format!("{plan}\n{plan:?}");
            assert!(!text.contains("s3cr3t"), "a NoEcho value leaked:\n{text}");
            for change in &plan.parameter_diff {
                assert!(parameters.iter().any(|p| p.key == change.key), "{change:?}");
                if no_echo.contains(change.key.as_str()) {
                    assert!(change.no_echo, "{change:?}");
                }
            }
            for key in changes.keys() {
                assert!(declared.contains(key.as_str()), "{key} was sent undeclared");
            }
        }
        Ok(PlanOutcome::NoChanges { reason }) => assert!(!reason.contains("s3cr3t")),
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

fn url_like() -> impl Strategy<Value = String> {
    let scheme = prop_oneof![
        4 => Just("https://"),
        1 => Just("http://"),
        1 => Just("HTTPS://"),
        1 => Just(""),
    ];
    let host = prop_oneof![
        Just("s3.amazonaws.com".to_string()),
        "[a-z0-9.-]{1,12}\\.s3(-|\\.)(us-east-1|eu-west-1|dualstack\\.us-gov-west-1)\\.amazonaws\\.com(\\.cn)?",
        "[a-z0-9.-]{1,12}\\.s3\\.amazonaws\\.com",
        "s3[.-][a-z0-9-]{1,12}\\.amazonaws\\.com",
        "[a-z0-9.:@-]{0,16}",
        Just("127.0.0.1".to_string()),
        Just("templates.example.com".to_string()),
    ];
    let path = "(/[A-Za-z0-9%._-]{0,8}){0,4}([?#][a-z=]{0,6})?";
    (scheme, host, path).prop_map(|(s, h, p)| format!("{s}{h}{p}"))
}

fn parameter() -> impl Strategy<Value = Parameter> {
    let key = prop_oneof![
        "[A-E]",
        Just("SubnetIds".to_string()),
        Just("AvailabilityZones".to_string()),
        Just("VpcId".to_string()),
    ];
    let value = prop_oneof!["[a-c]{0,2}", Just("****".to_string()), "[a-z0-9 ,-]{0,12}",];
    (
        key,
        prop::option::of(value.clone()),
        any::<bool>(),
        prop::option::of(value),
        any::<bool>(),
    )
        .prop_map(|(key, default, no_echo, current, kept)| Parameter {
            key,
            default,
            no_echo,
            current,
            kept,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn template_urls_keep_the_policy(
        url in prop_oneof![url_like(), "\\PC{0,48}"],
        allowed_hosts in prop::collection::vec(
            prop_oneof![Just("templates.example.com".to_string()), "[a-z.:/]{0,10}"],
            0..3,
        ),
        allowed_buckets in prop::option::of(prop::collection::vec("[a-z0-9.-]{0,8}", 0..3)),
    ) {
        check_url(&url, &allowed_hosts, allowed_buckets.as_deref());
    }

    #[test]
    fn plans_send_only_declared_parameters_and_never_show_a_secret(
        parameters in prop::collection::vec(parameter(), 0..6),
        changes in prop::collection::vec(
            ("[A-F]|SubnetIds|AvailabilityZones", prop_oneof!["[a-c]{0,2}", Just("****".to_string())]),
            0..4,
        ),
        replace_template in any::<bool>(),
    ) {
        let values: BTreeMap<String, String> = parameters
            .iter()
            .filter_map(|p| Some((p.key.clone(), p.current.clone()?)))
            .collect();
        check_lists(&values);
        check_plan(&parameters, &changes, replace_template);
    }
}

/// Inputs the fuzz target found, as fixed cases.
#[test]
fn fuzz_regressions_keep_the_policy() {
    // The URL parser dropped the leading NULs (it also drops tabs and
    // newlines and reads `\` as `/`), so the policy checked another string
    // than the one CloudFormation would receive.
    for url in [
        "\0\0\0https://templates.s3.amazonaws.com/run",
        " https://templates.s3.amazonaws.com/run",
        "https://s3.amazon\taws.com/b/k",
        "https:\\\\s3.amazonaws.com\\b\\k",
        "https:s3.amazonaws.com/b/k",
    ] {
        check_url(url, &[], None);
        assert!(TemplateUrlPolicy::default().check(url).is_err(), "{url:?}");
    }
}
