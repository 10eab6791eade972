//! No log line, `Display`, `Debug` or error of a plan, an apply, a failed
//! apply or a refused change carries a `NoEcho` value: this test captures
//! every tracing event at TRACE level into a buffer, adds everything it can
//! print about the results, and greps the lot for the secrets.
//!
//! (No type of this crate implements `serde::Serialize`, so there is no
//! serde output to check.)
use std::{
    io::Write,
    sync::{Arc, Mutex},
};

use cfn_stack::{
    ApplyMode, CfnApi, ErrorClass, FakeCfn, FakeFailure, FakeTemplate, NO_ECHO_MASK, PlanOutcome,
    ResourceChangeDetail, StackChange, StackProgress, StackUpdater, StackUpdaterConfig,
};
use update_clock::ManualClock;

const V1: &str = "https://runner.s3.eu-west-1.amazonaws.com/v1/secret.yaml";
const V2: &str = "https://runner.s3.eu-west-1.amazonaws.com/v2/secret.yaml";
/// Distinctive secrets: none of them may appear anywhere.
const SECRETS: [&str; 4] = [
    "SECRET-original-5c1d7e",
    "SECRET-planned-91ab3f",
    "SECRET-rolled-back-0e6d22",
    "SECRET-refused-7788aa",
];

/// A `MakeWriter` appending to a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn push(&self, text: impl AsRef<str>) {
        let mut buffer = self.0.lock().unwrap();
        buffer.extend_from_slice(text.as_ref().as_bytes());
        buffer.push(b'\n');
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

fn template() -> FakeTemplate {
    FakeTemplate::new()
        .parameter("Image", None)
        .no_echo_parameter("RunnerToken", None)
        .resource("Service", "AWS::ECS::Service")
        .resource("RunnerAsg", "AWS::AutoScaling::AutoScalingGroup")
}

#[tokio::test]
async fn no_log_output_or_error_carries_a_no_echo_value() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer({
            let captured = captured.clone();
            move || captured.clone()
        })
        .finish();
    // Thread-local: `#[tokio::test]` runs everything on this thread.
    let _guard = tracing::subscriber::set_default(subscriber);

    let cfn = FakeCfn::new();
    cfn.add_template(V1, template());
    cfn.add_template(
        V2,
        template().change_detail(
            "RunnerAsg",
            ResourceChangeDetail {
                attribute: Some("Properties".into()),
                name: Some("LaunchTemplate".into()),
                requires_recreation: Some("Always".into()),
                evaluation: Some("Dynamic".into()),
                change_source: Some("ParameterReference".into()),
                causing_entity: Some("RunnerToken".into()),
            },
        ),
    );
    cfn.create_stack(
        "secret",
        V1,
        &[("Image", "runner:1"), ("RunnerToken", SECRETS[0])],
        &[],
    )
    .unwrap();
    let clock = Arc::new(ManualClock::auto_advancing(ManualClock::EPOCH_2025));
    let updater =
        StackUpdater::new(Arc::new(cfn.clone()), clock, StackUpdaterConfig::default()).unwrap();
    let sink = {
        let captured = captured.clone();
        move |p: &StackProgress| captured.push(format!("{p:?}"))
    };

    // Plan (a template replacement with a new secret and a replaced
    // resource, so warnings are logged), print it every way, apply it.
    let change = StackChange::replace_template(V2, [("RunnerToken", SECRETS[1])]);
    let planned = updater
        .plan_with_progress("secret", &change, &sink)
        .await
        .unwrap();
    captured.push(format!("{planned:?}"));
    let PlanOutcome::Planned(plan) = planned else {
        panic!("expected a plan");
    };
    captured.push(format!("{plan}\n{plan:#?}"));
    for line in &plan.parameter_diff {
        captured.push(format!("{line}\n{line:?}"));
    }
    for line in &plan.resource_changes {
        captured.push(format!("{line}\n{line:?}"));
    }
    // A lost response is logged with its error, then found to have landed.
    cfn.lose_next_response("ExecuteChangeSet");
    let outcome = updater.apply_plan(&plan, &sink).await.unwrap();
    captured.push(format!("{outcome:?}"));
    assert!(outcome.is_success(), "{outcome:?}");
    assert_eq!(
        cfn.stored_parameter("secret", "RunnerToken").as_deref(),
        Some(SECRETS[1])
    );

    // A failing apply (rolled back), in both modes.
    for mode in [ApplyMode::ChangeSet, ApplyMode::Direct] {
        cfn.fail_next_update(
            "secret",
            FakeFailure::RollBack {
                failed_resources: vec![("Service".into(), "CannotPullContainerError".into())],
            },
        );
        let change = StackChange::parameters([("RunnerToken", SECRETS[2]), ("Image", "runner:3")]);
        let outcome = updater.apply("secret", &change, mode, &sink).await.unwrap();
        captured.push(format!("{outcome:?}"));
        assert!(!outcome.is_success(), "{mode:?}: {outcome:?}");
    }

    // Errors: injected backend failures of the mutating calls, an unknown
    // parameter (then one more template change, which applies), and the
    // masked value for a secret the stack does not hold.
    let refused = [
        StackChange::parameters([("RunnerToken", SECRETS[3])]),
        StackChange::parameters([("RunnerToken", SECRETS[3]), ("Nope", "x")]),
        StackChange::replace_template(V1, [("RunnerToken", SECRETS[3])]),
    ];
    cfn.fail_next_call("CreateChangeSet", ErrorClass::Permanent);
    cfn.fail_next_call("UpdateStack", ErrorClass::Permanent);
    for change in &refused {
        for mode in [ApplyMode::ChangeSet, ApplyMode::Direct] {
            if let Err(err) = updater.apply("secret", change, mode, &sink).await {
                captured.push(format!("{err}\n{err:?}"));
            }
        }
    }
    let missing = FakeTemplate::new()
        .parameter("Image", None)
        .no_echo_parameter("RunnerToken", None)
        .no_echo_parameter("ProxyToken", None);
    cfn.add_template(
        "https://runner.s3.eu-west-1.amazonaws.com/v3/secret.yaml",
        missing,
    );
    let masked = StackChange::replace_template(
        "https://runner.s3.eu-west-1.amazonaws.com/v3/secret.yaml",
        [("ProxyToken", NO_ECHO_MASK)],
    );
    let err = updater.plan("secret", &masked).await.unwrap_err();
    captured.push(format!("{err}\n{err:?}"));

    // The state as a caller could print it.
    captured.push(format!("{updater:?}\n{cfn:?}"));
    captured.push(format!("{:?}", cfn.describe_stack("secret").await.unwrap()));
    captured.push(format!("{:?}", updater.read_stack("secret").await.unwrap()));

    let output = captured.text();
    for secret in SECRETS {
        assert!(!output.contains(secret), "{secret} leaked:\n{output}");
    }
    // The capture really holds the logs and the printed results.
    for expected in [
        "change set ready",
        "stack update warning",
        "checking whether it took effect",
        "RunnerToken: (hidden) -> (hidden)",
        "REPLACEMENT True",
        "RolledBack",
        "MaskedNoEchoValue",
        "injected failure",
    ] {
        assert!(output.contains(expected), "{expected:?} missing:\n{output}");
    }
}
