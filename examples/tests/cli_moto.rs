//! `runner-updater check`, `status`, `update --dry-run` and `hold` end to
//! end against moto (feature `aws`): the binary finds AWS through
//! aws-config's standard chain (`AWS_ENDPOINT_URL` and static test
//! credentials in its environment), reads a real ECS service, verifies a
//! signed manifest, and keeps its lock, journal and quarantine in DynamoDB.
//!
//! moto does not run ECS deployments; the ECS plugin of `ecs-rollout`'s
//! tests (`crates/ecs-rollout/tests/moto_ecs_plugin.py`) simulates ECS
//! completing the service's first deployment (`complete`), so the service
//! has a COMPLETED PRIMARY deployment as a real one would. Nothing here
//! deploys: these commands only read ECS.

#![cfg(feature = "aws")]

use std::{
    collections::BTreeMap,
    path::Path,
    process::{Command, Output},
    sync::OnceLock,
    time::Duration,
};

use base64::Engine;
use ecs_rollout::{ContainerDefinition, EcsApi, TaskDefinitionSpec, aws::AwsEcs};
use moto_harness::{DEFAULT_ACCOUNT, MotoServer};
use runner_version::{Channel, ImageRef, Release, SignedManifest, ed25519_dalek::SigningKey};
use serde_json::{Value, json};
use update_clock::SystemClock;

const BIN: &str = env!("CARGO_BIN_EXE_runner-updater");
const PLUGIN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../crates/ecs-rollout/tests/moto_ecs_plugin.py"
);
const LABEL: &str = "org.opencontainers.image.version";
const TABLE: &str = "runner-updater";

fn moto() -> &'static MotoServer {
    static MOTO: OnceLock<MotoServer> = OnceLock::new();
    MOTO.get_or_init(|| MotoServer::start_with_plugin(PLUGIN))
}

fn image(version: &str, n: u8) -> String {
    format!(
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/runner:{version}@sha256:{}",
        format!("{n:02x}").repeat(32)
    )
}

/// Cluster `cluster` with service `runner` running 20260101.1, completed;
/// the lock table.
async fn set_up(cluster: &str) {
    let config = moto().sdk_config();
    let client = aws_sdk_ecs::Client::new(&config);
    let ecs = AwsEcs::new(client.clone());
    let registered = ecs
        .register_task_definition(&TaskDefinitionSpec {
            family: format!("{cluster}-runner"),
            network_mode: Some("bridge".into()),
            requires_compatibilities: vec!["EC2".into()],
            execution_role_arn: Some("arn:aws:iam::123456789012:role/runner-execution".into()),
            container_definitions: vec![ContainerDefinition {
                name: "runner".into(),
                image: image("20260101.1", 1),
                essential: Some(true),
                memory: Some(512),
                docker_labels: BTreeMap::from([(LABEL.into(), "20260101.1".into())]),
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .unwrap();
    client
        .create_cluster()
        .cluster_name(cluster)
        .send()
        .await
        .unwrap();
    client
        .create_service()
        .cluster(cluster)
        .service_name("runner")
        .task_definition(&registered.arn)
        .desired_count(2)
        .launch_type(aws_sdk_ecs::types::LaunchType::Ec2)
        .send()
        .await
        .unwrap();
    moto().control(
        "complete",
        &json!({"account": DEFAULT_ACCOUNT, "cluster": cluster, "service": "runner"}),
    );
    // One table for both tests (they run in parallel).
    static TABLE_READY: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    TABLE_READY
        .get_or_init(|| async {
            update_lock::dynamodb::create_table_if_missing(
                &aws_sdk_dynamodb::Client::new(&config),
                TABLE,
                &SystemClock::new(),
                Duration::from_secs(30),
            )
            .await
            .unwrap();
        })
        .await;
}

/// A config for `cluster` with a manifest signed by a test key offering
/// 20260102.1 (infrastructure 7).
fn write_config(dir: &Path, cluster: &str) -> String {
    let key = SigningKey::from_bytes(&[0x17; 32]);
    let release = Release {
        version: "20260102.1".parse().unwrap(),
        channel: Channel::Stable,
        image: ImageRef::parse(&image("20260102.1", 2)).unwrap(),
        proxy_image: None,
        infra_version: Some("7".into()),
        template_url: "https://s3.amazonaws.com/runner-templates/7/runner.json".into(),
        template_sha256: None,
        released_at: None,
        expires: Some(chrono::Utc::now() + chrono::Duration::days(30)),
    };
    let manifest = dir.join("stable.json");
    std::fs::write(
        &manifest,
        SignedManifest::sign(&release, &[("test-2026", &key)])
            .unwrap()
            .to_json(),
    )
    .unwrap();
    let public = base64::engine::general_purpose::STANDARD.encode(key.verifying_key().to_bytes());
    let config = format!(
        r#"
runner = "{cluster}/runner"
owner = "moto-test"

[[targets]]
name = "runner"
cluster = "{cluster}"
service = "runner"
container = "runner"
image = "runner"

[release]
manifest_file = {manifest:?}
trusted_keys = {{ test-2026 = "{public}" }}

[lock]
backend = "dynamodb"
table = "{TABLE}"

[infra]
version = "7"
"#,
        manifest = manifest.display().to_string()
    );
    let path = dir.join("runner-updater.toml");
    std::fs::write(&path, config).unwrap();
    path.display().to_string()
}

fn command(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("AWS_ENDPOINT_URL", moto().endpoint())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_MAX_ATTEMPTS", "1");
    command
}

fn run(dir: &Path, args: &[&str]) -> Output {
    command(dir, args).output().unwrap()
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn assert_code(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

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
    assert!(body.contains("runner_updater_checks_total"), "{body}");

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
}
