//! The `runner-updater` binary from the outside: the demo's story and its
//! JSON, `--help` everywhere, configuration errors naming their key with
//! exit code 64, the IAM policy, and the store-only commands on the file
//! backend.

use std::{
    path::Path,
    process::{Command, Output},
    time::{Duration, Instant},
};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_runner-updater");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        // The binary reads RUNNER_UPDATER_* variables: none may leak in.
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .output()
        .expect("the runner-updater binary runs")
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("exited with a code")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            stdout(output),
            stderr(output)
        )
    })
}

fn write_config(dir: &Path, text: &str) -> String {
    let path = dir.join("runner-updater.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

const CONFIG: &str = r#"
runner = "runners/gitpod-runner"
owner = "test-host"

[[targets]]
name = "runner"
cluster = "runners"
service = "gitpod-runner"
container = "runner"
image = "runner"

[[targets]]
name = "proxy"
cluster = "runners"
service = "gitpod-proxy"
image = "proxy"

[release]
manifest_url = "https://releases.example.com/stable.json"
trusted_keys = { release-2025 = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=" }

[lock]
backend = "dynamodb"
table = "runner-updater"

[infra]
stack = "gitpod-runner"
"#;

#[test]
fn demo_tells_the_story_and_exits_0() {
    let started = Instant::now();
    let out = run(&["demo", "--output", "json"]);
    let elapsed = started.elapsed();
    assert_eq!(code(&out), 0, "stderr:\n{}", stderr(&out));
    assert!(
        elapsed < Duration::from_secs(10),
        "the demo took {elapsed:?}"
    );
    let reports = json(&out);
    let reports = reports.as_array().expect("a list of cycle reports");
    let outcomes: Vec<&str> = reports
        .iter()
        .map(|r| r["outcome"]["outcome"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(
        outcomes,
        ["succeeded", "rolled_back", "skipped", "blocked", "skipped"]
    );
    let reasons = |i: usize| -> Vec<String> {
        reports[i]["decision"]["reasons"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|r| r["code"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(reasons(2), ["quarantined"]);
    assert_eq!(reasons(3), ["infrastructure_update_required"]);
    assert_eq!(reasons(4), ["held_after_manual_rollback"]);
    assert_eq!(reports[1]["quarantined"], Value::Bool(true));
    assert_eq!(reports[0]["targets"].as_array().map(Vec::len), Some(2));
    assert!(
        reports[3]["outcome"]["template_url"]
            .as_str()
            .is_some_and(|u| u.starts_with("https://")),
        "{}",
        reports[3]
    );
}

#[test]
fn demo_text_has_a_summary_table() {
    let out = run(&["demo"]);
    assert_eq!(code(&out), 0, "stderr:\n{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("Summary"), "{text}");
    assert!(text.contains("step  release"), "{text}");
    assert!(
        text.contains("Every step gave the expected outcome."),
        "{text}"
    );
    assert!(text.contains("quarantined until"), "{text}");
}

#[test]
fn every_command_has_help_and_it_exits_0() {
    let commands: &[&[&str]] = &[
        &[],
        &["demo"],
        &["run"],
        &["check"],
        &["update"],
        &["rollback"],
        &["status"],
        &["quarantine"],
        &["quarantine", "list"],
        &["quarantine", "clear"],
        &["hold"],
        &["hold", "set"],
        &["hold", "clear"],
        &["stack"],
        &["stack", "show"],
        &["stack", "plan"],
        &["stack", "apply"],
        &["stack", "validate-azs"],
        &["iam-policy"],
    ];
    for command in commands {
        let mut args = command.to_vec();
        args.push("--help");
        let out = run(&args);
        assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
        let text = stdout(&out);
        assert!(text.contains("Usage:"), "{args:?}: {text}");
        assert!(text.contains("Exit codes:"), "{args:?}: {text}");
        assert!(text.contains("64"), "{args:?}: {text}");
    }
    // Every top-level command is in the list above.
    let top = stdout(&run(&["--help"]));
    let listed: Vec<&str> = top
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(listed.len() >= 10, "{top}");
    for c in listed {
        assert!(
            commands.iter().any(|cmd| cmd.first() == Some(&c)),
            "`{c}` has no --help check"
        );
    }
}

#[test]
fn usage_errors_exit_64() {
    assert_eq!(code(&run(&["--no-such-flag"])), 64);
    assert_eq!(code(&run(&[])), 64, "no command");
    assert_eq!(code(&run(&["quarantine", "clear"])), 64, "missing VERSION");
}

#[test]
fn bad_configuration_exits_64_and_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (CONFIG.replace("owner = ", "ownr = "), "ownr"),
        (
            CONFIG.replace("backend = \"dynamodb\"", "backend = \"redis\""),
            "lock.backend",
        ),
        (
            CONFIG.replace("table = \"runner-updater\"", "lease_secs = \"long\""),
            "lock.lease_secs",
        ),
        (
            CONFIG.replace("image = \"proxy\"", "image = \"sidecar\""),
            "targets[1].image",
        ),
        (
            format!("{CONFIG}\n[policy]\nauto_updates = false\n"),
            "policy.auto_updates",
        ),
        (
            CONFIG.replace("11qYAYKx", "not-base64!"),
            "release.trusted_keys.release-2025",
        ),
    ];
    for (text, key) in cases {
        let config = write_config(dir.path(), &text);
        let out = run(&["--config", &config, "check"]);
        assert_eq!(code(&out), 64, "{key}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!("`{key}`")),
            "{key}: {}",
            stderr(&out)
        );
        let out = run(&["--config", &config, "--output", "json", "check"]);
        assert_eq!(code(&out), 64);
        let error = json(&out);
        assert_eq!(error["key"], key, "{error}");
        assert_eq!(error["exit_code"], 64);
    }
}

#[test]
fn environment_variables_override_the_file_and_are_validated() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), CONFIG);
    let out = Command::new(BIN)
        .args(["--config", &config, "check"])
        .env_clear()
        .env("RUNNER_UPDATER_LOCK_BACKEND", "redis")
        .output()
        .unwrap();
    assert_eq!(code(&out), 64);
    assert!(stderr(&out).contains("`lock.backend`"), "{}", stderr(&out));
    // A flag wins over the variable.
    let out = Command::new(BIN)
        .args([
            "--config",
            &config,
            "--lock-backend",
            "memory",
            "iam-policy",
        ])
        .env_clear()
        .env("RUNNER_UPDATER_LOCK_BACKEND", "redis")
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        !stdout(&out).contains("dynamodb:"),
        "memory backend: no DynamoDB grants"
    );
}

fn actions(policy: &Value) -> Vec<String> {
    policy["Statement"]
        .as_array()
        .expect("statements")
        .iter()
        .flat_map(|s| s["Action"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a.as_str().map(String::from))
        .collect()
}

#[test]
fn iam_policy_is_valid_json_with_exactly_the_needed_actions() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), CONFIG);
    let out = run(&["--config", &config, "iam-policy"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let policy = json(&out);
    assert_eq!(policy["Version"], "2012-10-17");
    let granted = actions(&policy);
    for needed in [
        "ecs:DescribeServices",
        "ecs:DescribeTaskDefinition",
        "ecs:RegisterTaskDefinition",
        "ecs:UpdateService",
        "ecs:ListTasks",
        "ecs:DescribeTasks",
        "ecs:TagResource",
        "ecs:ListServiceDeployments",
        "ecs:DescribeServiceDeployments",
        "ecs:StopServiceDeployment",
        "iam:PassRole",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:ConditionCheckItem",
        "cloudformation:DescribeStacks",
    ] {
        assert!(
            granted.iter().any(|a| a == needed),
            "{needed} missing: {granted:?}"
        );
    }
    for not_needed in [
        "dynamodb:TransactWriteItems",
        "ecs:DeregisterTaskDefinition",
        "dynamodb:CreateTable",
        "cloudformation:ExecuteChangeSet",
        "ec2:DescribeSubnets",
    ] {
        assert!(
            !granted.iter().any(|a| a == not_needed),
            "{not_needed} granted"
        );
    }
    let text = policy.to_string();
    assert!(
        text.contains("arn:aws:ecs:*:*:service/runners/gitpod-runner"),
        "{text}"
    );
    assert!(
        text.contains("arn:aws:dynamodb:*:*:table/runner-updater"),
        "{text}"
    );

    let out = run(&[
        "--config",
        &config,
        "--output",
        "json",
        "iam-policy",
        "--with-stack-updates",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let doc = json(&out);
    let granted = actions(&doc["policy"]);
    for needed in [
        "cloudformation:CreateChangeSet",
        "cloudformation:ExecuteChangeSet",
        "ec2:DescribeSubnets",
    ] {
        assert!(granted.iter().any(|a| a == needed), "{needed} missing");
    }
    assert!(!granted.iter().any(|a| a == "cloudformation:UpdateStack"));
    assert!(doc["granted"].as_array().is_some_and(|g| {
        g.iter()
            .all(|x| x["called_by"].as_str().is_some_and(|c| !c.is_empty()))
    }));
}

#[test]
fn quarantine_and_hold_work_on_the_file_backend() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let text = CONFIG.replace(
        "backend = \"dynamodb\"\ntable = \"runner-updater\"",
        &format!(
            "backend = \"file\"\ndir = {:?}",
            state.display().to_string()
        ),
    );
    let config = write_config(dir.path(), &text);
    let base = ["--config", config.as_str(), "--output", "json"];
    let with = |extra: &[&str]| -> Output {
        let mut args: Vec<&str> = base.to_vec();
        args.extend_from_slice(extra);
        run(&args)
    };
    let out = with(&["quarantine", "list"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json(&out)["quarantine"], Value::Array(vec![]));

    let out = with(&[
        "hold",
        "set",
        "--reason",
        "change freeze",
        "--until",
        "2999-01-01T00:00:00Z",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json(&out)["hold"]["reason"], "change freeze");
    let stored = std::fs::read_dir(&state)
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| e.file_name().to_string_lossy().ends_with(".runner.json"))
        .expect("the runner record file");
    let record = std::fs::read_to_string(stored.path()).unwrap();
    assert!(record.contains("change freeze"), "{record}");

    let out = with(&["hold", "set", "--reason", "x", "--until", "tomorrow"]);
    assert_eq!(code(&out), 64, "a bad --until is a usage error");

    let out = with(&["hold", "clear"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json(&out)["hold"], Value::Null);

    let out = with(&["quarantine", "clear", "20250103.1"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json(&out)["cleared"], Value::Bool(false));
}
