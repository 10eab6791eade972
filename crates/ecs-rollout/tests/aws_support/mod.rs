//! Shared set-up of the AWS wiring tests: one moto server (with the ECS
//! plugin) per test binary, one fresh moto account per test.

#![allow(dead_code)] // each test binary uses a different part

use std::collections::BTreeMap;
use std::sync::OnceLock;

use ecs_rollout::aws::AwsEcs;
use ecs_rollout::task_definition::{
    DockerVolumeConfiguration, EfsAuthorizationConfig, EfsVolumeConfiguration, EnvironmentFile,
    EphemeralStorage, HostVolume, KeyValuePair, LinuxParameters, LogConfiguration, MountPoint,
    PlacementConstraint, PortMapping, RuntimePlatform, Secret, Ulimit, Volume,
};
use ecs_rollout::{
    ContainerDefinition, EcsApi, HealthCheck, RegisteredTaskDefinition, TaskDefinitionSpec,
};
use moto_harness::{MotoAccount, MotoServer, unique_account_id};
use serde_json::{Value, json};

/// The plugin that makes moto's ECS behave like ECS (see the file).
pub const PLUGIN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/moto_ecs_plugin.py");

/// The moto server of this test binary.
pub fn moto() -> &'static MotoServer {
    static MOTO: OnceLock<MotoServer> = OnceLock::new();
    MOTO.get_or_init(|| MotoServer::start_with_plugin(PLUGIN))
}

/// An SDK client and an `AwsEcs` in a fresh moto account.
pub struct Account {
    /// The moto account id.
    pub id: String,
    /// The raw SDK client (for set-up moto needs, e.g. clusters).
    pub client: aws_sdk_ecs::Client,
    /// The backend under test.
    pub ecs: AwsEcs,
}

/// A fresh account on the shared server.
pub fn account() -> Account {
    let id = unique_account_id();
    let config = aws_sdk_ecs::Config::from(&moto().sdk_config())
        .to_builder()
        .interceptor(MotoAccount(id.clone()))
        .build();
    let client = aws_sdk_ecs::Client::from_conf(config);
    Account {
        id,
        ecs: AwsEcs::new(client.clone()),
        client,
    }
}

/// Asks the moto plugin to run `operation` on service `runners/runner` of
/// `account`, with `extra` merged into the request body.
pub fn control(account: &str, operation: &str, extra: &Value) -> Value {
    let mut body = json!({"account": account, "cluster": "runners", "service": "runner"});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    moto().control(operation, &body)
}

/// Creates cluster `runners` and in it service `runner` (EC2 launch type)
/// with `desired` tasks of `task_definition`.
pub async fn create_service(client: &aws_sdk_ecs::Client, task_definition: &str, desired: i32) {
    client
        .create_cluster()
        .cluster_name("runners")
        .send()
        .await
        .unwrap();
    client
        .create_service()
        .cluster("runners")
        .service_name("runner")
        .task_definition(task_definition)
        .desired_count(desired)
        .launch_type(aws_sdk_ecs::types::LaunchType::Ec2)
        .send()
        .await
        .unwrap();
}

/// Registers `runner_task_definition(family)`, creates service
/// `runners/runner` with `desired` tasks of it, and has the plugin simulate
/// ECS completing the service's first deployment. Returns the revision.
pub async fn completed_service(
    a: &Account,
    family: &str,
    desired: i32,
) -> RegisteredTaskDefinition {
    let registered = a
        .ecs
        .register_task_definition(&runner_task_definition(family))
        .await
        .unwrap();
    create_service(&a.client, &registered.arn, desired).await;
    control(&a.id, "complete", &json!({}));
    registered
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The runner container's docker label holding its version.
pub const VERSION_LABEL: &str = "io.gitpod.runner.version";

/// A task definition as a production runner has it: task and execution
/// roles, secrets, environment, environment files, volumes (host, Docker,
/// EFS), a health check, awslogs, ephemeral storage, runtime platform,
/// placement constraints, linux parameters, ulimits, a sidecar, and tags.
/// Network mode `bridge` (moto's `awsvpc` needs real subnets).
pub fn runner_task_definition(family: &str) -> TaskDefinitionSpec {
    let awslogs = |prefix: &str| LogConfiguration {
        log_driver: "awslogs".into(),
        options: map(&[
            ("awslogs-group", "/ecs/runner"),
            ("awslogs-region", "us-east-1"),
            ("awslogs-stream-prefix", prefix),
        ]),
        secret_options: vec![],
    };
    TaskDefinitionSpec {
        family: family.into(),
        task_role_arn: Some("arn:aws:iam::123456789012:role/runner-task".into()),
        execution_role_arn: Some("arn:aws:iam::123456789012:role/runner-execution".into()),
        network_mode: Some("bridge".into()),
        requires_compatibilities: vec!["EC2".into()],
        cpu: Some("1024".into()),
        memory: Some("2048".into()),
        pid_mode: Some("task".into()),
        ipc_mode: Some("task".into()),
        ephemeral_storage: Some(EphemeralStorage { size_in_gib: 40 }),
        runtime_platform: Some(RuntimePlatform {
            cpu_architecture: Some("ARM64".into()),
            operating_system_family: Some("LINUX".into()),
        }),
        placement_constraints: vec![PlacementConstraint {
            r#type: Some("memberOf".into()),
            expression: Some("attribute:ecs.cpu-architecture == arm64".into()),
        }],
        volumes: vec![
            Volume {
                name: Some("cache".into()),
                host: Some(HostVolume {
                    source_path: Some("/var/cache/runner".into()),
                }),
                ..Default::default()
            },
            Volume {
                name: Some("docker".into()),
                docker_volume_configuration: Some(DockerVolumeConfiguration {
                    scope: Some("shared".into()),
                    autoprovision: Some(true),
                    driver: Some("local".into()),
                    labels: map(&[("team", "ci")]),
                    ..Default::default()
                }),
                ..Default::default()
            },
            Volume {
                name: Some("shared".into()),
                efs_volume_configuration: Some(EfsVolumeConfiguration {
                    file_system_id: "fs-0123456789abcdef0".into(),
                    root_directory: Some("/runner".into()),
                    transit_encryption: Some("ENABLED".into()),
                    authorization_config: Some(EfsAuthorizationConfig {
                        access_point_id: Some("fsap-0123456789abcdef0".into()),
                        iam: Some("ENABLED".into()),
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ],
        container_definitions: vec![
            ContainerDefinition {
                name: "runner".into(),
                image: "123456789012.dkr.ecr.us-east-1.amazonaws.com/runner:20260101.1".into(),
                essential: Some(true),
                cpu: 768,
                memory: Some(1536),
                memory_reservation: Some(1024),
                docker_labels: map(&[(VERSION_LABEL, "20260101.1"), ("team", "ci")]),
                port_mappings: vec![PortMapping {
                    container_port: Some(8080),
                    host_port: Some(0),
                    protocol: Some("tcp".into()),
                    ..Default::default()
                }],
                environment: vec![
                    KeyValuePair {
                        name: Some("RUNNER_MODE".into()),
                        value: Some("production".into()),
                    },
                    KeyValuePair {
                        name: Some("LOG_LEVEL".into()),
                        value: Some("info".into()),
                    },
                ],
                environment_files: vec![EnvironmentFile {
                    value: "arn:aws:s3:::runner-config/runner.env".into(),
                    r#type: "s3".into(),
                }],
                secrets: vec![
                    Secret {
                        name: "RUNNER_TOKEN".into(),
                        value_from:
                            "arn:aws:secretsmanager:us-east-1:123456789012:secret:runner-token"
                                .into(),
                    },
                    Secret {
                        name: "DB_PASSWORD".into(),
                        value_from: "arn:aws:ssm:us-east-1:123456789012:parameter/runner/db".into(),
                    },
                ],
                mount_points: vec![
                    MountPoint {
                        source_volume: Some("cache".into()),
                        container_path: Some("/cache".into()),
                        read_only: Some(false),
                    },
                    MountPoint {
                        source_volume: Some("shared".into()),
                        container_path: Some("/shared".into()),
                        read_only: Some(true),
                    },
                ],
                health_check: Some(HealthCheck {
                    command: vec![
                        "CMD-SHELL".into(),
                        "curl -f http://localhost:8080/health || exit 1".into(),
                    ],
                    interval: Some(30),
                    timeout: Some(5),
                    retries: Some(3),
                    start_period: Some(60),
                }),
                log_configuration: Some(awslogs("runner")),
                linux_parameters: Some(LinuxParameters {
                    init_process_enabled: Some(true),
                    shared_memory_size: Some(256),
                    ..Default::default()
                }),
                ulimits: vec![Ulimit {
                    name: "nofile".into(),
                    soft_limit: 65536,
                    hard_limit: 65536,
                }],
                stop_timeout: Some(120),
                user: Some("1000:1000".into()),
                working_directory: Some("/srv/runner".into()),
                readonly_root_filesystem: Some(true),
                command: vec!["serve".into(), "--listen=:8080".into()],
                ..Default::default()
            },
            ContainerDefinition {
                name: "proxy".into(),
                image: "123456789012.dkr.ecr.us-east-1.amazonaws.com/proxy:3.1".into(),
                essential: Some(true),
                cpu: 256,
                memory: Some(512),
                links: vec!["runner".into()],
                log_configuration: Some(awslogs("proxy")),
                port_mappings: vec![PortMapping {
                    container_port: Some(443),
                    host_port: Some(443),
                    protocol: Some("tcp".into()),
                    ..Default::default()
                }],
                ..Default::default()
            },
        ],
        tags: map(&[
            ("team", "ci"),
            ("cost-center", "1234"),
            ("runner-version", "20260101.1"),
        ]),
        ..Default::default()
    }
}
