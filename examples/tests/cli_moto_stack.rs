//! `runner-updater stack show|plan|apply` and `check` with
//! `[infra] stack = ...` end to end against moto (feature `aws`).
//!
//! What is simulated: the runner's CloudFormation stack is moto's own,
//! created by this test from a small template uploaded to moto's S3 (a
//! queue, parameters `SubnetIds`, `LogLevel` and a `NoEcho` `RunnerToken`,
//! output `InfrastructureVersion` = "7"). moto creates and updates the
//! stack instantly; it runs no resources beyond its own emulation. The
//! plans only change parameters of the existing template, so no template
//! URL is fetched by the binary. moto hands `NoEcho` values back unmasked
//! in `DescribeStacks` (CloudFormation masks them); `stack show` masks them
//! from the template's declarations, which is what is checked here. moto
//! does not re-evaluate outputs when it executes a change set. ECS and
//! DynamoDB (for `check`) are as in `support/mod.rs`.

#![cfg(feature = "aws")]

mod support;

use std::process::Output;

use aws_sdk_cloudformation::types::Parameter;
use support::*;

const CLUSTER: &str = "moto-stack";
const STACK: &str = "moto-stack-runner";
const SECRET: &str = "s3cr3t-runner-token-4711";

const TEMPLATE: &str = r#"{
  "AWSTemplateFormatVersion": "2010-09-09",
  "Description": "runner (test)",
  "Parameters": {
    "SubnetIds": {"Type": "String"},
    "LogLevel": {"Type": "String", "Default": "info"},
    "RunnerToken": {"Type": "String", "NoEcho": true}
  },
  "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
  "Outputs": {
    "InfrastructureVersion": {"Value": "7"},
    "LogLevelOut": {"Value": {"Ref": "LogLevel"}}
  }
}"#;

/// Runs the binary and checks the secret is in neither stdout nor stderr.
fn run_secret_free(dir: &std::path::Path, args: &[&str]) -> Output {
    let out = run(dir, args);
    for (name, stream) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        assert!(
            !String::from_utf8_lossy(stream).contains(SECRET),
            "the NoEcho value is in the {name} of {args:?}: {}",
            String::from_utf8_lossy(stream)
        );
    }
    out
}

async fn change_sets(client: &aws_sdk_cloudformation::Client) -> Vec<String> {
    client
        .list_change_sets()
        .stack_name(STACK)
        .send()
        .await
        .unwrap()
        .summaries()
        .iter()
        .filter_map(|s| s.change_set_name().map(String::from))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn stack_show_plan_apply_and_check_read_the_stack_in_moto() {
    set_up(CLUSTER).await;
    let client = aws_sdk_cloudformation::Client::new(&moto().sdk_config());
    let url = moto().put_s3_object("moto-stack-templates", "7/runner.json", TEMPLATE.as_bytes());
    client
        .create_stack()
        .stack_name(STACK)
        .template_url(&url)
        .set_parameters(Some(
            [
                ("SubnetIds", "subnet-a,subnet-b"),
                ("LogLevel", "info"),
                ("RunnerToken", SECRET),
            ]
            .into_iter()
            .map(|(k, v)| {
                Parameter::builder()
                    .parameter_key(k)
                    .parameter_value(v)
                    .build()
            })
            .collect(),
        ))
        .send()
        .await
        .expect("create stack in moto");

    let dir = tempfile::tempdir().unwrap();
    publish(dir.path(), "20260102.1", 2);
    let config = write_stack_config(dir.path(), CLUSTER, STACK);
    let c = config.as_str();

    // show: the stack, its parameters (the secret masked), version 7.
    let out = run_secret_free(
        dir.path(),
        &["--config", c, "--output", "json", "stack", "show"],
    );
    assert_code(&out, 0);
    let show = json_of(&out);
    assert_eq!(show["name"], STACK, "{show}");
    assert_eq!(show["status"], "CREATE_COMPLETE", "{show}");
    assert_eq!(show["infra_version"], "7", "{show}");
    assert_eq!(show["parameters"]["SubnetIds"], "subnet-a,subnet-b");
    assert_eq!(show["parameters"]["LogLevel"], "info");
    assert_eq!(show["parameters"]["RunnerToken"], "****", "{show}");
    let out = run_secret_free(dir.path(), &["--config", c, "stack", "show"]);
    assert_code(&out, 0);
    assert!(String::from_utf8_lossy(&out.stdout).contains("infrastructure version: 7"));

    // plan: only LogLevel changes; a change set is created, nothing applied.
    let out = run_secret_free(
        dir.path(),
        &[
            "--config",
            c,
            "--output",
            "json",
            "stack",
            "plan",
            "--set",
            "LogLevel=debug",
        ],
    );
    assert_code(&out, 0);
    let plan = json_of(&out);
    let diff = plan["parameter_diff"].as_array().unwrap();
    assert_eq!(diff.len(), 1, "{plan}");
    assert_eq!(diff[0]["key"], "LogLevel");
    assert_eq!(diff[0]["old"], "info");
    assert_eq!(diff[0]["new"], "debug");
    assert_eq!(plan["template"], "existing");
    let change_set = plan["change_set"].as_str().unwrap().to_string();
    assert!(!change_set.is_empty(), "{plan}");
    // The change set by name or by its ARN (CreateChangeSet answers the ARN).
    let listed = change_sets(&client).await;
    assert!(
        listed
            .iter()
            .any(|n| *n == change_set || change_set.contains(&format!(":changeSet/{n}/"))),
        "{change_set} in {listed:?}"
    );
    let out = run_secret_free(
        dir.path(),
        &["--config", c, "--output", "json", "stack", "show"],
    );
    assert_eq!(
        json_of(&out)["parameters"]["LogLevel"],
        "info",
        "not applied"
    );

    // apply exactly that change set.
    let out = run_secret_free(
        dir.path(),
        &[
            "--config",
            c,
            "--output",
            "json",
            "stack",
            "apply",
            "--change-set",
            &change_set,
        ],
    );
    assert_code(&out, 0);
    let applied = json_of(&out);
    assert_eq!(applied["outcome"], "updated", "{applied}");
    let out = run_secret_free(
        dir.path(),
        &["--config", c, "--output", "json", "stack", "show"],
    );
    assert_code(&out, 0);
    let show = json_of(&out);
    assert_eq!(show["parameters"]["LogLevel"], "debug", "{show}");
    assert_eq!(show["parameters"]["SubnetIds"], "subnet-a,subnet-b");
    // (moto does not re-evaluate outputs when it executes a change set, so
    // LogLevelOut is not checked.) The secret was kept, not overwritten
    // with the mask: moto hands it back unmasked to this test.
    let described = client
        .describe_stacks()
        .stack_name(STACK)
        .send()
        .await
        .unwrap();
    let token = described.stacks()[0]
        .parameters()
        .iter()
        .find(|p| p.parameter_key() == Some("RunnerToken"))
        .and_then(|p| p.parameter_value())
        .map(String::from);
    assert_eq!(token.as_deref(), Some(SECRET), "the NoEcho value kept");
    assert_eq!(show["infra_version"], "7");

    // An undeclared parameter: a usage error naming it, no change set.
    let before = change_sets(&client).await;
    let out = run_secret_free(
        dir.path(),
        &[
            "--config",
            c,
            "--output",
            "json",
            "stack",
            "plan",
            "--set",
            "NoSuchParam=x",
        ],
    );
    assert!(
        matches!(out.status.code(), Some(64 | 2)),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("NoSuchParam"), "{text}");
    assert_eq!(change_sets(&client).await, before, "no change set created");

    // check reads infrastructure version 7 from the stack.
    let out = run_secret_free(dir.path(), &["--config", c, "--output", "json", "check"]);
    assert_code(&out, 0);
    let check = json_of(&out);
    assert_eq!(check["decision"]["decision"], "update", "{check}");
    assert_eq!(check["state"]["infra_version"], "7", "{check}");
}
