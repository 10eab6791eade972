//! `runner-updater check`, `status`, `update --dry-run` and `hold` end to
//! end against moto (feature `aws`); see `support/mod.rs` for what is
//! simulated.

#![cfg(feature = "aws")]

mod support;

use std::{process::Command, time::Duration};

use serde_json::{Value, json};
use support::*;

#[tokio::test(flavor = "multi_thread")]
async fn check_status_dry_run_and_hold_against_moto() {
    let cluster = "moto-runners";
    set_up(cluster).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), cluster);
    let c = config.as_str();

    // check: the decision, with the running and offered versions.
    let out = run(dir.path(), &["--config", c, "--output", "json", "check"]);
    assert_code(&out, 0);
    let check = json_of(&out);
    assert_eq!(check["decision"]["decision"], "update", "{check}");
    assert_eq!(check["state"]["version"], "20260101.1");
    assert_eq!(check["release"]["version"], "20260102.1");
    let out = run(dir.path(), &["--config", c, "check"]);
    assert_code(&out, 0);
    assert!(String::from_utf8_lossy(&out.stdout).contains("decision: update"));

    // The same release on another infrastructure version is blocked (exit 3).
    let out = run(
        dir.path(),
        &[
            "--config",
            c,
            "--infra-version",
            "6",
            "--output",
            "json",
            "check",
        ],
    );
    assert_code(&out, 3);
    assert_eq!(
        json_of(&out)["decision"]["reasons"][0]["code"],
        "infrastructure_update_required"
    );

    // status: versions, an untouched lock, empty stores in DynamoDB.
    let out = run(dir.path(), &["--config", c, "--output", "json", "status"]);
    assert_code(&out, 0);
    let status = json_of(&out);
    assert_eq!(status["current_version"], "20260101.1", "{status}");
    assert_eq!(status["available_version"], "20260102.1");
    assert_eq!(status["backend"], "dynamodb");
    assert_eq!(status["lock"]["state"], "never_taken");
    assert_eq!(status["quarantine"], json!([]));
    assert_eq!(status["journal"], Value::Null);
    assert_eq!(status["hold"], Value::Null);

    // update --dry-run: the task-definition diff, nothing registered.
    let out = run(
        dir.path(),
        &["--config", c, "--output", "json", "update", "--dry-run"],
    );
    assert_code(&out, 0);
    let plan = json_of(&out);
    assert_eq!(plan["would_update"], true);
    let paths: Vec<&str> = plan["targets"][0]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["path"].as_str())
        .collect();
    assert!(
        paths.contains(&"containerDefinitions[runner].image"),
        "{paths:?}"
    );
    assert!(
        paths
            .iter()
            .all(|p| p.starts_with("containerDefinitions[runner]")),
        "{paths:?}"
    );
    let listed = aws_sdk_ecs::Client::new(&moto().sdk_config())
        .list_task_definitions()
        .family_prefix(format!("{cluster}-runner"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        listed.task_definition_arns().len(),
        1,
        "a dry run registers nothing"
    );

    // hold set lands in DynamoDB; check then skips with the hold's reason.
    let out = run(
        dir.path(),
        &["--config", c, "hold", "set", "--reason", "incident 42"],
    );
    assert_code(&out, 0);
    let out = run(dir.path(), &["--config", c, "--output", "json", "check"]);
    assert_code(&out, 0);
    let check = json_of(&out);
    assert_eq!(check["decision"]["decision"], "skip", "{check}");
    assert_eq!(check["decision"]["reasons"][0]["code"], "held");
    let out = run(dir.path(), &["--config", c, "--output", "json", "status"]);
    assert_eq!(json_of(&out)["hold"]["reason"], "incident 42");
    let out = run(dir.path(), &["--config", c, "hold", "clear"]);
    assert_code(&out, 0);

    // rollback refuses: the journal holds no update.
    let out = run(dir.path(), &["--config", c, "rollback"]);
    assert_code(&out, 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no recorded previous task definition"));
}

/// A plain HTTP GET on 127.0.0.1: status line and body.
fn http_get(port: u16, path: &str) -> Option<(String, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    Some((head.lines().next()?.to_string(), body.to_string()))
}

/// The daemon serves /healthz and /metrics, starts a cycle at once, and on
/// SIGTERM in the middle of the deployment (moto never completes it)
/// releases the lock and keeps the journal for the next updater.
#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_serves_metrics_and_stops_gracefully_on_sigterm() {
    let cluster = "moto-daemon";
    set_up(cluster).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), cluster);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("\n[schedule]\ninterval_secs = 300\njitter_secs = 0\n");
    std::fs::write(&config, text).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let daemon = command(
        dir.path(),
        &["--config", &config, "run", "--listen", &listen],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();

    // The cycle is under way once the lock is held (read from DynamoDB).
    let mut held = false;
    for _ in 0..100 {
        let out = run(
            dir.path(),
            &["--config", &config, "--output", "json", "status"],
        );
        if out.status.success() && json_of(&out)["lock"]["state"] == "held" {
            held = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let health = http_get(port, "/healthz");
    let metrics = http_get(port, "/metrics");
    let killed = Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = daemon.wait_with_output().unwrap();
    assert!(
        held,
        "the daemon never took the lock: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_code(&out, 0);

    let (status_line, body) = health.expect("/healthz answers");
    assert!(status_line.contains("200"), "{status_line}");
    let health: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["runner"], format!("{cluster}/runner"));
    let (status_line, body) = metrics.expect("/metrics answers");
    assert!(status_line.contains("200"), "{status_line}");
    // The counters moved from zero during the first cycle.
    let value = |prefix: &str| -> f64 {
        body.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {prefix} in /metrics:\n{body}"))
    };
    assert!(
        value("runner_updater_checks_total{result=\"ok\"}") >= 1.0,
        "{body}"
    );
    assert!(
        value("runner_updater_decisions_total{reason=\"update\"}") >= 1.0,
        "{body}"
    );
    assert!(
        value("runner_updater_lock_wait_seconds_count") >= 1.0,
        "{body}"
    );
    assert!(body.contains("runner_updater_version_info{"), "{body}");

    // Every stdout line is a JSON log event.
    let logs = String::from_utf8_lossy(&out.stdout);
    assert!(logs.lines().count() > 2, "{logs}");
    for line in logs.lines() {
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    }
    assert!(logs.contains("lock released, journal kept"), "{logs}");

    // The lock is free again; the journal keeps the unfinished update.
    let out = run(
        dir.path(),
        &["--config", &config, "--output", "json", "status"],
    );
    assert_code(&out, 0);
    let status = json_of(&out);
    assert_eq!(status["lock"]["state"], "free", "{status}");
    assert_eq!(status["journal"]["finished"], false, "{status}");
    assert_eq!(status["journal"]["release"]["version"], "20260102.1");
    // ... so `rollback` refuses and points at the resume.
    let out = run(dir.path(), &["--config", &config, "rollback"]);
    assert_code(&out, 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("unfinished"));

    // A restarted updater resumes the journalled deployment: it registers
    // nothing and starts no second deployment; ECS (the plugin) completes
    // the deployment the daemon started, and the update succeeds.
    let families = |client: &aws_sdk_ecs::Client| {
        let client = client.clone();
        async move {
            client
                .list_task_definitions()
                .family_prefix(format!("{cluster}-runner"))
                .send()
                .await
                .unwrap()
                .task_definition_arns()
                .len()
        }
    };
    let ecs = aws_sdk_ecs::Client::new(&moto().sdk_config());
    assert_eq!(families(&ecs).await, 2, "the daemon registered one clone");
    let deployments = |moto_body: Value| {
        moto_body["deployments"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let before = deployments(moto().control(
        "deployments",
        &json!({"account": moto_harness::DEFAULT_ACCOUNT, "cluster": cluster, "service": "runner"}),
    ));
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(
        "\n[rollout]\npoll_min_secs = 1\npoll_max_secs = 1\nbake_secs = 1\ntimeout_secs = 120\n",
    );
    std::fs::write(&config, text).unwrap();
    let resumed = command(
        dir.path(),
        &["--config", &config, "--output", "json", "update"],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    moto().control(
        "complete",
        &json!({"account": moto_harness::DEFAULT_ACCOUNT, "cluster": cluster, "service": "runner"}),
    );
    let out = resumed.wait_with_output().unwrap();
    assert_code(&out, 0);
    let report = json_of(&out);
    assert_eq!(report["resumed"], true, "{report}");
    assert_eq!(report["outcome"]["outcome"], "succeeded", "{report}");
    assert_eq!(families(&ecs).await, 2, "nothing registered again");
    let primary = |ds: &[Value]| {
        ds.iter()
            .find(|d| d["status"] == "PRIMARY")
            .map(|d| d["id"].clone())
    };
    let after = deployments(moto().control(
        "deployments",
        &json!({"account": moto_harness::DEFAULT_ACCOUNT, "cluster": cluster, "service": "runner"}),
    ));
    assert_eq!(
        primary(&after),
        primary(&before),
        "the same deployment, not a second one"
    );
}
