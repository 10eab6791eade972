//! The running infrastructure version is read from the runner's
//! CloudFormation stack (here `FakeCfn`, in memory) on every check, never
//! cached: a stack updated by an operator unblocks the release at the next
//! check.

mod common;

use std::sync::Arc;

use cfn_stack::{ApplyMode, FakeCfn, FakeTemplate, StackChange, StackUpdater, StackUpdaterConfig};
use common::*;
use runner_updater::{CycleOutcome, InfraVersionSource, Updater};

#[tokio::test]
async fn blocked_until_the_stack_reports_the_required_infrastructure_version() {
    let fx = Fixture::new();
    let cfn = Arc::new(FakeCfn::new());
    let v7 = "https://s3.amazonaws.com/releases/7/runner.json";
    let v8 = "https://s3.amazonaws.com/releases/8/runner.json";
    cfn.add_template(v7, FakeTemplate::new().output("InfrastructureVersion", "7"));
    cfn.add_template(v8, FakeTemplate::new().output("InfrastructureVersion", "8"));
    cfn.create_stack("gitpod-runner", v7, &[], &[]).unwrap();
    let stack = Arc::new(
        StackUpdater::new(cfn.clone(), fx.clock.clone(), StackUpdaterConfig::default()).unwrap(),
    );
    let updater = Updater::builder()
        .source(fx.source.clone())
        .lock(fx.lock())
        .journal(Arc::new(fx.journal.clone()))
        .quarantine(Arc::new(fx.quarantine.clone()))
        .ecs(fx.sim.clone())
        .infra(InfraVersionSource::Stack {
            updater: stack.clone(),
            stack: "gitpod-runner".into(),
        })
        .clock(fx.clock.clone())
        .config(Fixture::config("host-a"))
        .build()
        .unwrap();

    fx.publish(release("20250102.1", "02", "8"));
    let report = updater.run_once().await.unwrap();
    match &report.outcome {
        CycleOutcome::Blocked {
            required, running, ..
        } => {
            assert_eq!((required.as_str(), running.as_str()), ("8", "7"))
        }
        other => panic!("expected Blocked, got {other:?}"),
    }
    assert_eq!(fx.mutations(), 0);

    // The operator replaces the template (the seed's "Updating
    // Infrastructure"); the next check reads the new version from the stack.
    let outcome = stack
        .apply(
            "gitpod-runner",
            &StackChange::replace_template(v8, Vec::<(String, String)>::new()),
            ApplyMode::ChangeSet,
            &cfn_stack::NoProgress,
        )
        .await
        .unwrap();
    assert!(
        matches!(outcome, cfn_stack::StackUpdateOutcome::Updated { .. }),
        "{outcome:?}"
    );
    let report = updater.run_once().await.unwrap();
    assert_eq!(
        report.outcome,
        CycleOutcome::Succeeded,
        "{}",
        report.summary()
    );
}
