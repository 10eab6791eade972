//! Shared set-up of the `runner-updater` end-to-end tests against moto
//! (feature `aws`): the binary finds AWS through
//! aws-config's standard chain (`AWS_ENDPOINT_URL` and static test
//! credentials in its environment), reads a real ECS service, verifies a
//! signed manifest, and keeps its lock, journal and quarantine in DynamoDB.
//!
//! moto does not run ECS deployments; the ECS plugin of `ecs-rollout`'s
//! tests (`crates/ecs-rollout/tests/moto_ecs_plugin.py`) simulates ECS
//! completing the service's first deployment (`complete`), so the service
//! has a COMPLETED PRIMARY deployment as a real one would. Nothing here
//! deploys: these commands only read ECS.

#![allow(dead_code)] // each test binary uses a different part

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

pub const BIN: &str = env!("CARGO_BIN_EXE_runner-updater");
pub const PLUGIN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../crates/ecs-rollout/tests/moto_ecs_plugin.py"
);
pub const LABEL: &str = "org.opencontainers.image.version";
pub const TABLE: &str = "runner-updater";

pub fn moto() -> &'static MotoServer {
    static MOTO: OnceLock<MotoServer> = OnceLock::new();
    MOTO.get_or_init(|| MotoServer::start_with_plugin(PLUGIN))
}

pub fn image(version: &str, n: u8) -> String {
    format!(
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/runner:{version}@sha256:{}",
        format!("{n:02x}").repeat(32)
    )
}

/// Cluster `cluster` with service `runner` running 20260101.1, completed;
/// the lock table.
pub async fn set_up(cluster: &str) {
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
pub fn write_config(dir: &Path, cluster: &str) -> String {
    publish(dir, "20260102.1", 2);
    write_config_only(dir, cluster, "")
}

/// (Re)writes the signed manifest `stable.json` in `dir`, offering `version`
/// with image digest byte `n` (infrastructure 7).
pub fn publish(dir: &Path, version: &str, n: u8) {
    let key = SigningKey::from_bytes(&[0x17; 32]);
    let release = Release {
        version: version.parse().unwrap(),
        channel: Channel::Stable,
        image: ImageRef::parse(&image(version, n)).unwrap(),
        proxy_image: None,
        infra_version: Some("7".into()),
        template_url: "https://s3.amazonaws.com/runner-templates/7/runner.json".into(),
        template_sha256: Some("cd".repeat(32)),
        released_at: None,
        expires: Some(chrono::Utc::now() + chrono::Duration::days(30)),
        waves: Default::default(),
    };
    let manifest = dir.join("stable.json");
    std::fs::write(
        &manifest,
        SignedManifest::sign(&release, &[("test-2026", &key)])
            .unwrap()
            .to_json(),
    )
    .unwrap();
}

/// The config file for `cluster` reading `dir/stable.json`, with `extra`
/// TOML appended.
pub fn write_config_only(dir: &Path, cluster: &str, extra: &str) -> String {
    let key = SigningKey::from_bytes(&[0x17; 32]);
    let manifest = dir.join("stable.json");
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
{extra}
"#,
        manifest = manifest.display().to_string()
    );
    let path = dir.join("runner-updater.toml");
    std::fs::write(&path, config).unwrap();
    path.display().to_string()
}

pub fn command(dir: &Path, args: &[&str]) -> Command {
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

pub fn run(dir: &Path, args: &[&str]) -> Output {
    command(dir, args).output().unwrap()
}

pub fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

pub fn assert_code(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The config file for `cluster` reading `dir/stable.json` whose
/// infrastructure version is read from the CloudFormation stack `stack`
/// (`[infra] stack = ...` instead of a fixed version).
pub fn write_stack_config(dir: &Path, cluster: &str, stack: &str) -> String {
    let path = write_config_only(dir, cluster, "");
    let config = std::fs::read_to_string(&path).unwrap();
    let replaced = config.replace(
        "\n[infra]\nversion = \"7\"\n",
        &format!("\n[infra]\nstack = {stack:?}\n"),
    );
    assert_ne!(replaced, config, "the [infra] table of write_config_only");
    std::fs::write(&path, replaced).unwrap();
    path
}
