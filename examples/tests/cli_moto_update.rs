//! `runner-updater update` end to end against moto (feature `aws`): a good
//! release is deployed and succeeds, a bad one is rolled back by ECS and
//! quarantined, the next `check` skips it with the reason, `status` and
//! `quarantine list` show it; then the IAM policy printed by `iam-policy`
//! is compared with the AWS actions moto actually received from the
//! binary (every action called is granted; every granted action was
//! called, save the authorisation-only ones).
//!
//! What is simulated: moto does not run ECS deployments. The ECS plugin of
//! `ecs-rollout`'s tests (`crates/ecs-rollout/tests/moto_ecs_plugin.py`)
//! makes `UpdateService` create a new PRIMARY deployment as ECS does, and
//! this test, watching moto's deployments through the plugin, plays ECS:
//! it completes the good deployment (`complete`) and has the circuit
//! breaker roll the bad one back (`ecs_rollback`). DynamoDB (lock, journal,
//! quarantine) is moto's own. Requests are recorded by moto's recorder and
//! attributed to the binary by its SDK app name (`app/runner-updater` in
//! the user agent).

#![cfg(feature = "aws")]

mod support;

use std::{
    collections::BTreeSet,
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use moto_harness::DEFAULT_ACCOUNT;
use serde_json::{Value, json};
use support::*;

const CLUSTER: &str = "moto-update";

/// The deployments of the runner service, as moto holds them.
fn deployments() -> Vec<Value> {
    moto().control(
        "deployments",
        &json!({"account": DEFAULT_ACCOUNT, "cluster": CLUSTER, "service": "runner"}),
    )["deployments"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Waits until the binary's `UpdateService` created a PRIMARY deployment of
/// a task definition other than `old_td` (at most 60 s); returns its task
/// definition.
fn wait_for_new_primary(child: &mut Child, old_td: &str) -> String {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the updater exited ({status}) before deploying");
        }
        if let Some(primary) = deployments()
            .into_iter()
            .find(|d| d["status"] == "PRIMARY" && d["taskDefinition"] != old_td)
        {
            return primary["taskDefinition"].as_str().unwrap().to_string();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no new deployment within 60 s: {:?}", deployments());
}

fn primary_td() -> String {
    deployments()
        .into_iter()
        .find(|d| d["status"] == "PRIMARY")
        .and_then(|d| d["taskDefinition"].as_str().map(String::from))
        .unwrap()
}

fn spawn(dir: &std::path::Path, args: &[&str]) -> Child {
    command(dir, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn update_rollback_quarantine_and_the_iam_policy_against_moto() {
    set_up(CLUSTER).await;
    let dir = tempfile::tempdir().unwrap();
    publish(dir.path(), "20260102.1", 2);
    let config = write_config_only(
        dir.path(),
        CLUSTER,
        "\n[rollout]\npoll_min_secs = 1\npoll_max_secs = 1\nbake_secs = 1\ntimeout_secs = 120\n\n[notify]\ntag_services = true\n",
    );
    let c = config.as_str();
    moto().start_recording(&dir.path().join("moto-recording.jsonl"));

    // A good release: deployed, ECS completes it, the updater says so.
    let first_td = primary_td();
    let mut child = spawn(dir.path(), &["--config", c, "--output", "json", "update"]);
    let new_td = wait_for_new_primary(&mut child, &first_td);
    moto().control(
        "complete",
        &json!({"account": DEFAULT_ACCOUNT, "cluster": CLUSTER, "service": "runner"}),
    );
    let out = child.wait_with_output().unwrap();
    assert_code(&out, 0);
    let report = json_of(&out);
    assert_eq!(report["outcome"]["outcome"], "succeeded", "{report}");
    assert_eq!(report["targets"][0]["outcome_kind"], "succeeded");
    assert_eq!(primary_td(), new_td);
    // The reporter tagged the service with the new version.
    let ecs = aws_sdk_ecs::Client::new(&moto().sdk_config());
    let service_arn = ecs
        .describe_services()
        .cluster(CLUSTER)
        .services("runner")
        .send()
        .await
        .unwrap()
        .services()[0]
        .service_arn()
        .unwrap()
        .to_string();
    let tags = ecs
        .list_tags_for_resource()
        .resource_arn(&service_arn)
        .send()
        .await
        .unwrap();
    assert!(
        tags.tags()
            .iter()
            .any(|t| t.key() == Some("ecs-self-updater:version") && t.value() == Some("20260102.1")),
        "{tags:?}"
    );

    // A bad release: the circuit breaker rolls it back; exit 1, quarantined.
    publish(dir.path(), "20260103.1", 3);
    let mut child = spawn(dir.path(), &["--config", c, "--output", "json", "update"]);
    let bad_td = wait_for_new_primary(&mut child, &new_td);
    moto().control(
        "ecs_rollback",
        &json!({"account": DEFAULT_ACCOUNT, "cluster": CLUSTER, "service": "runner", "settle": true}),
    );
    let out = child.wait_with_output().unwrap();
    assert_code(&out, 1);
    let report = json_of(&out);
    assert_eq!(report["outcome"]["outcome"], "rolled_back", "{report}");
    assert_eq!(report["quarantined"], true);
    assert_eq!(report["targets"][0]["outcome_kind"], "rolled_back_by_ecs");
    assert_eq!(primary_td(), new_td, "back on the good release");
    assert_ne!(bad_td, new_td);

    // The next check skips it, saying why.
    let out = run(dir.path(), &["--config", c, "--output", "json", "check"]);
    assert_code(&out, 0);
    let check = json_of(&out);
    assert_eq!(check["decision"]["decision"], "skip", "{check}");
    let codes: Vec<&str> = check["decision"]["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["code"].as_str())
        .collect();
    assert!(codes.contains(&"quarantined"), "{codes:?}");
    let out = run(dir.path(), &["--config", c, "check"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("quarantined"));

    // status and quarantine list show it; the lock is free, the journal done.
    let out = run(dir.path(), &["--config", c, "--output", "json", "status"]);
    assert_code(&out, 0);
    let status = json_of(&out);
    assert_eq!(status["current_version"], "20260102.1", "{status}");
    assert_eq!(status["quarantine"][0]["version"], "20260103.1", "{status}");
    assert_eq!(status["lock"]["state"], "free");
    let out = run(
        dir.path(),
        &["--config", c, "--output", "json", "quarantine", "list"],
    );
    assert_code(&out, 0);
    assert!(String::from_utf8_lossy(&out.stdout).contains("20260103.1"));

    // The IAM policy against what the binary really called.
    let out = run(
        dir.path(),
        &["--config", c, "--output", "json", "iam-policy"],
    );
    assert_code(&out, 0);
    let policy = json_of(&out);
    let granted: BTreeSet<String> = policy["policy"]["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["Action"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a.as_str().map(String::from))
        .collect();
    let called: BTreeSet<String> = moto()
        .recorded_actions(Some("app/runner-updater"))
        .into_iter()
        // A transaction is authorised by the actions of its parts.
        .flat_map(|a| match a.as_str() {
            "dynamodb:TransactWriteItems" => vec![
                "dynamodb:PutItem".to_string(),
                "dynamodb:ConditionCheckItem".to_string(),
            ],
            _ => vec![a],
        })
        .collect();
    assert!(
        called.contains("ecs:UpdateService"),
        "recording works: {called:?}"
    );
    let missing: Vec<_> = called.difference(&granted).collect();
    assert!(missing.is_empty(), "called but not granted: {missing:?}");
    // iam:PassRole authorises RegisterTaskDefinition with roles; it is never
    // a call of its own. ecs:StopServiceDeployment is our own rollback, and
    // the bad release here is rolled back by ECS (the breaker), so this
    // timeline never needs it (ecs-rollout's moto test
    // `our_rollback_through_stop_service_deployment` calls it).
    let unused: Vec<_> = granted
        .difference(&called)
        .filter(|a| !matches!(a.as_str(), "iam:PassRole" | "ecs:StopServiceDeployment"))
        .collect();
    assert!(unused.is_empty(), "granted but never called: {unused:?}");
}
