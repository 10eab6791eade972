//! The task definition in domain terms: a lossless mirror of the fields of
//! ECS `RegisterTaskDefinition` (camelCase JSON, like an ECS task-definition
//! file), so a running task definition can be re-registered with only the
//! runner image changed.
//!
//! Every struct derives `Default`: build values with `..Default::default()`
//! so adding a field never breaks a caller.
//!
//! Conventions, so that a describe → register round trip is lossless:
//! - ECS enumerations (network mode, log driver, protocol, …) are kept as
//!   their wire strings (`"bridge"`, `"awslogs"`, `"tcp"`), so a value this
//!   crate has never heard of survives a round trip unchanged.
//! - A list or map that ECS omits and one that is empty mean the same to ECS;
//!   both are an empty `Vec`/`BTreeMap` here and are not sent on register.
//! - Optional scalars are `Option`: `None` means "not set, ECS default".
//! - Read-only fields of a registered revision (ARN, revision, status,
//!   `requiresAttributes`, `compatibilities`, registration and
//!   deregistration times) are not part of the spec: they cannot be
//!   registered.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Everything `RegisterTaskDefinition` accepts, as read from a registered
/// task definition (plus its tags).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TaskDefinitionSpec {
    /// The family name.
    pub family: String,
    /// The containers.
    pub container_definitions: Vec<ContainerDefinition>,
    /// Resource tags (`include TAGS` on describe).
    pub tags: BTreeMap<String, String>,
    /// IAM role the task's containers assume.
    pub task_role_arn: Option<String>,
    /// IAM role the ECS agent uses to pull images, fetch secrets and write
    /// logs.
    pub execution_role_arn: Option<String>,
    /// `bridge`, `host`, `awsvpc` or `none` (`None` = the launch type's
    /// default).
    pub network_mode: Option<String>,
    /// Data volumes containers can mount.
    pub volumes: Vec<Volume>,
    /// Placement constraints (EC2 launch type).
    pub placement_constraints: Vec<PlacementConstraint>,
    /// Launch types the definition is validated against (`EC2`, `FARGATE`,
    /// `EXTERNAL`, `MANAGED_INSTANCES`).
    pub requires_compatibilities: Vec<String>,
    /// Task-level CPU, in CPU units (`"1024"`) or vCPUs (`"1 vCPU"`).
    pub cpu: Option<String>,
    /// Task-level memory, in MiB (`"2048"`) or GB (`"2 GB"`).
    pub memory: Option<String>,
    /// `host` or `task` PID namespace.
    pub pid_mode: Option<String>,
    /// `host`, `task` or `none` IPC namespace.
    pub ipc_mode: Option<String>,
    /// App Mesh proxy configuration.
    pub proxy_configuration: Option<ProxyConfiguration>,
    /// Elastic Inference accelerators.
    pub inference_accelerators: Vec<InferenceAccelerator>,
    /// Fargate ephemeral storage.
    pub ephemeral_storage: Option<EphemeralStorage>,
    /// Operating system and CPU architecture.
    pub runtime_platform: Option<RuntimePlatform>,
    /// Whether fault injection is enabled for the task.
    pub enable_fault_injection: Option<bool>,
}

/// One container of a task definition.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContainerDefinition {
    /// Container name, unique within the task definition.
    pub name: String,
    /// Image reference as written in the task definition.
    pub image: String,
    /// Whether the task stops when this container stops (`None` = ECS
    /// default, which is `true`).
    pub essential: Option<bool>,
    /// Docker labels (the runner version label lives here).
    pub docker_labels: BTreeMap<String, String>,
    /// Container health check.
    pub health_check: Option<HealthCheck>,
    /// Private registry credentials.
    pub repository_credentials: Option<RepositoryCredentials>,
    /// CPU units reserved for the container (`0` = not set).
    pub cpu: i32,
    /// Hard memory limit in MiB.
    pub memory: Option<i32>,
    /// Soft memory limit in MiB.
    pub memory_reservation: Option<i32>,
    /// Legacy container links (bridge mode).
    pub links: Vec<String>,
    /// Port mappings.
    pub port_mappings: Vec<PortMapping>,
    /// Container restart policy.
    pub restart_policy: Option<RestartPolicy>,
    /// Entry point override.
    pub entry_point: Vec<String>,
    /// Command override.
    pub command: Vec<String>,
    /// Environment variables, in the order written.
    pub environment: Vec<KeyValuePair>,
    /// Files of environment variables (S3 objects).
    pub environment_files: Vec<EnvironmentFile>,
    /// Volume mounts.
    pub mount_points: Vec<MountPoint>,
    /// Volumes mounted from other containers.
    pub volumes_from: Vec<VolumeFrom>,
    /// Linux-specific options.
    pub linux_parameters: Option<LinuxParameters>,
    /// Secrets exposed as environment variables.
    pub secrets: Vec<Secret>,
    /// Start-up ordering on other containers.
    pub depends_on: Vec<ContainerDependency>,
    /// Seconds to wait for dependencies before giving up.
    pub start_timeout: Option<i32>,
    /// Seconds between SIGTERM and SIGKILL.
    pub stop_timeout: Option<i32>,
    /// `enabled` or `disabled`: whether ECS resolves the image tag to a
    /// digest at deployment.
    pub version_consistency: Option<String>,
    /// Container hostname.
    pub hostname: Option<String>,
    /// User (and group) the process runs as.
    pub user: Option<String>,
    /// Working directory.
    pub working_directory: Option<String>,
    /// Whether networking is disabled.
    pub disable_networking: Option<bool>,
    /// Whether the container is privileged.
    pub privileged: Option<bool>,
    /// Whether the root file system is read-only.
    pub readonly_root_filesystem: Option<bool>,
    /// DNS servers.
    pub dns_servers: Vec<String>,
    /// DNS search domains.
    pub dns_search_domains: Vec<String>,
    /// Extra `/etc/hosts` entries.
    pub extra_hosts: Vec<HostEntry>,
    /// SELinux / AppArmor labels.
    pub docker_security_options: Vec<String>,
    /// `docker run -i`.
    pub interactive: Option<bool>,
    /// `docker run -t`.
    pub pseudo_terminal: Option<bool>,
    /// Resource limits.
    pub ulimits: Vec<Ulimit>,
    /// Log driver configuration.
    pub log_configuration: Option<LogConfiguration>,
    /// Namespaced kernel parameters.
    pub system_controls: Vec<SystemControl>,
    /// GPU or inference-accelerator requirements.
    pub resource_requirements: Vec<ResourceRequirement>,
    /// FireLens log router configuration.
    pub firelens_configuration: Option<FirelensConfiguration>,
    /// Active Directory credential specs (`credentialspec:…`).
    pub credential_specs: Vec<String>,
}

/// A container health check.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HealthCheck {
    /// The command, e.g. `["CMD-SHELL", "curl -f http://localhost/ || exit 1"]`.
    pub command: Vec<String>,
    /// Seconds between checks.
    pub interval: Option<i32>,
    /// Seconds before a check counts as failed.
    pub timeout: Option<i32>,
    /// Consecutive failures before unhealthy.
    pub retries: Option<i32>,
    /// Grace period in seconds before failures count.
    pub start_period: Option<i32>,
}

/// A data volume of the task.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Volume {
    /// Name referenced by `mountPoints[].sourceVolume`.
    pub name: Option<String>,
    /// Bind mount of a host path.
    pub host: Option<HostVolume>,
    /// Docker volume.
    pub docker_volume_configuration: Option<DockerVolumeConfiguration>,
    /// Amazon EFS volume.
    pub efs_volume_configuration: Option<EfsVolumeConfiguration>,
    /// Amazon S3 Files volume.
    #[serde(rename = "s3filesVolumeConfiguration")]
    pub s3files_volume_configuration: Option<S3FilesVolumeConfiguration>,
    /// Amazon FSx for Windows File Server volume.
    pub fsx_windows_file_server_volume_configuration:
        Option<FsxWindowsFileServerVolumeConfiguration>,
    /// Whether the volume is configured at launch (EBS).
    pub configured_at_launch: Option<bool>,
}

/// A bind-mount volume.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HostVolume {
    /// Path on the host (`None` = a Docker-managed path).
    pub source_path: Option<String>,
}

/// A Docker volume.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DockerVolumeConfiguration {
    /// `task` or `shared`.
    pub scope: Option<String>,
    /// Whether to create the volume when missing (shared scope).
    pub autoprovision: Option<bool>,
    /// Volume driver.
    pub driver: Option<String>,
    /// Driver options.
    pub driver_opts: BTreeMap<String, String>,
    /// Volume labels.
    pub labels: BTreeMap<String, String>,
}

/// An Amazon EFS volume.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EfsVolumeConfiguration {
    /// File system id.
    pub file_system_id: String,
    /// Directory to mount as the root.
    pub root_directory: Option<String>,
    /// `ENABLED` or `DISABLED`.
    pub transit_encryption: Option<String>,
    /// Port for encrypted traffic.
    pub transit_encryption_port: Option<i32>,
    /// Access point and IAM authorisation.
    pub authorization_config: Option<EfsAuthorizationConfig>,
}

/// EFS authorisation.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EfsAuthorizationConfig {
    /// Access point id.
    pub access_point_id: Option<String>,
    /// `ENABLED` or `DISABLED`.
    pub iam: Option<String>,
}

/// An Amazon S3 Files volume.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct S3FilesVolumeConfiguration {
    /// File system ARN.
    pub file_system_arn: String,
    /// Directory to mount as the root.
    pub root_directory: Option<String>,
    /// Port for encrypted traffic.
    pub transit_encryption_port: Option<i32>,
    /// Access point ARN.
    pub access_point_arn: Option<String>,
}

/// An Amazon FSx for Windows File Server volume.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FsxWindowsFileServerVolumeConfiguration {
    /// File system id.
    pub file_system_id: String,
    /// Directory to mount as the root.
    pub root_directory: String,
    /// Credentials and domain.
    pub authorization_config: Option<FsxWindowsFileServerAuthorizationConfig>,
}

/// FSx for Windows File Server authorisation.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FsxWindowsFileServerAuthorizationConfig {
    /// Secret or parameter ARN holding the credentials.
    pub credentials_parameter: String,
    /// Fully qualified domain name.
    pub domain: String,
}

/// A task placement constraint.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PlacementConstraint {
    /// Constraint type (`memberOf`).
    pub r#type: Option<String>,
    /// Cluster query language expression.
    pub expression: Option<String>,
}

/// App Mesh proxy configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ProxyConfiguration {
    /// Proxy type (`APPMESH`).
    pub r#type: Option<String>,
    /// The proxy container.
    pub container_name: String,
    /// Proxy properties, in the order written.
    pub properties: Vec<KeyValuePair>,
}

/// A name/value pair (environment variables, proxy properties).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KeyValuePair {
    /// The name.
    pub name: Option<String>,
    /// The value.
    pub value: Option<String>,
}

/// An Elastic Inference accelerator.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct InferenceAccelerator {
    /// Device name referenced by containers.
    pub device_name: String,
    /// Accelerator type.
    pub device_type: String,
}

/// Fargate ephemeral storage.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EphemeralStorage {
    /// Size in GiB (21–200).
    #[serde(rename = "sizeInGiB")]
    pub size_in_gib: i32,
}

/// Operating system and CPU architecture.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RuntimePlatform {
    /// `X86_64` or `ARM64`.
    pub cpu_architecture: Option<String>,
    /// `LINUX`, `WINDOWS_SERVER_2022_CORE`, ….
    pub operating_system_family: Option<String>,
}

/// Private registry credentials.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RepositoryCredentials {
    /// Secrets Manager ARN of the credentials.
    pub credentials_parameter: String,
}

/// A port mapping.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PortMapping {
    /// Container port.
    pub container_port: Option<i32>,
    /// Host port.
    pub host_port: Option<i32>,
    /// `tcp` or `udp`.
    pub protocol: Option<String>,
    /// Name used by Service Connect.
    pub name: Option<String>,
    /// `http`, `http2` or `grpc` (Service Connect).
    pub app_protocol: Option<String>,
    /// A port range, e.g. `"8000-8010"`.
    pub container_port_range: Option<String>,
}

/// A container restart policy.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RestartPolicy {
    /// Whether restarts are enabled.
    pub enabled: bool,
    /// Exit codes that do not trigger a restart.
    pub ignored_exit_codes: Vec<i32>,
    /// Seconds a container must run before a restart is attempted.
    pub restart_attempt_period: Option<i32>,
}

/// A file of environment variables.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EnvironmentFile {
    /// S3 object ARN.
    pub value: String,
    /// File type (`s3`).
    pub r#type: String,
}

/// A volume mount.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MountPoint {
    /// The task volume's name.
    pub source_volume: Option<String>,
    /// Path inside the container.
    pub container_path: Option<String>,
    /// Whether the mount is read-only.
    pub read_only: Option<bool>,
}

/// Volumes mounted from another container.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct VolumeFrom {
    /// The other container.
    pub source_container: Option<String>,
    /// Whether the mounts are read-only.
    pub read_only: Option<bool>,
}

/// Linux-specific container options.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LinuxParameters {
    /// Capabilities added or dropped.
    pub capabilities: Option<KernelCapabilities>,
    /// Host devices.
    pub devices: Vec<Device>,
    /// Whether an init process runs as PID 1.
    pub init_process_enabled: Option<bool>,
    /// `/dev/shm` size in MiB.
    pub shared_memory_size: Option<i32>,
    /// tmpfs mounts.
    pub tmpfs: Vec<Tmpfs>,
    /// Swap in MiB.
    pub max_swap: Option<i32>,
    /// Swappiness 0–100.
    pub swappiness: Option<i32>,
}

/// Linux capabilities.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KernelCapabilities {
    /// Added capabilities.
    pub add: Vec<String>,
    /// Dropped capabilities.
    pub drop: Vec<String>,
}

/// A host device exposed to the container.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Device {
    /// Path on the host.
    pub host_path: String,
    /// Path in the container.
    pub container_path: Option<String>,
    /// `read`, `write`, `mknod`.
    pub permissions: Vec<String>,
}

/// A tmpfs mount.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Tmpfs {
    /// Path in the container.
    pub container_path: String,
    /// Size in MiB.
    pub size: i32,
    /// Mount options.
    pub mount_options: Vec<String>,
}

/// A secret exposed to the container.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Secret {
    /// Environment variable (or log option) name.
    pub name: String,
    /// Secrets Manager or SSM parameter ARN.
    pub value_from: String,
}

/// Start-up ordering on another container.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContainerDependency {
    /// The other container.
    pub container_name: String,
    /// `START`, `COMPLETE`, `SUCCESS` or `HEALTHY`.
    pub condition: String,
}

/// An `/etc/hosts` entry.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HostEntry {
    /// Host name.
    pub hostname: String,
    /// IP address.
    pub ip_address: String,
}

/// A resource limit.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Ulimit {
    /// Limit name (`nofile`, …).
    pub name: String,
    /// Soft limit.
    pub soft_limit: i32,
    /// Hard limit.
    pub hard_limit: i32,
}

/// A log driver configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LogConfiguration {
    /// `awslogs`, `awsfirelens`, `json-file`, ….
    pub log_driver: String,
    /// Driver options (`awslogs-group`, …).
    pub options: BTreeMap<String, String>,
    /// Secret driver options.
    pub secret_options: Vec<Secret>,
}

/// A namespaced kernel parameter.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SystemControl {
    /// Parameter name.
    pub namespace: Option<String>,
    /// Parameter value.
    pub value: Option<String>,
}

/// A GPU or accelerator requirement.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ResourceRequirement {
    /// Count of GPUs or the accelerator device name.
    pub value: String,
    /// `GPU` or `InferenceAccelerator`.
    pub r#type: String,
    /// GPU sharing strategy.
    pub sharing_strategy: Option<SharingStrategy>,
}

/// How containers share a GPU (a union in the ECS API: exactly one member
/// is set).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SharingStrategy {
    /// NVIDIA Multi-Process Service.
    pub nvidia_mps: Option<NvidiaMpsAllocation>,
}

/// A GPU share under NVIDIA Multi-Process Service.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NvidiaMpsAllocation {
    /// GPU memory for the container, in MiB.
    pub memory: i32,
    /// Maximum share of the GPU's compute capacity, in percent.
    pub max_compute_percent: Option<i32>,
}

/// FireLens log router configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FirelensConfiguration {
    /// `fluentd` or `fluentbit`.
    pub r#type: String,
    /// Router options.
    pub options: BTreeMap<String, String>,
}
