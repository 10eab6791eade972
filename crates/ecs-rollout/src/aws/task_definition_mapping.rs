//! Lossless mapping between the SDK's task-definition types and
//! [`TaskDefinitionSpec`](crate::task_definition::TaskDefinitionSpec).
//!
//! Every field of `RegisterTaskDefinition` and of `ContainerDefinition` (and
//! of every nested type) is mapped both ways; the unit tests at the bottom
//! fail when the SDK grows a field this file does not know.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_ecs::operation::register_task_definition::builders::RegisterTaskDefinitionFluentBuilder;
use aws_sdk_ecs::types as sdk;
use aws_smithy_types::error::operation::BuildError;

use crate::task_definition as dom;

// ---------------------------------------------------------------- helpers

fn list<T, U>(items: Option<Vec<T>>, f: impl FnMut(T) -> U) -> Vec<U> {
    items.unwrap_or_default().into_iter().map(f).collect()
}

fn map(items: Option<HashMap<String, String>>) -> BTreeMap<String, String> {
    items.unwrap_or_default().into_iter().collect()
}

fn some_list<T: Clone, U>(items: &[T], f: impl FnMut(&T) -> U) -> Option<Vec<U>> {
    (!items.is_empty()).then(|| items.iter().map(f).collect())
}

fn try_list<T, U>(
    items: &[T],
    f: impl FnMut(&T) -> Result<U, BuildError>,
) -> Result<Option<Vec<U>>, BuildError> {
    if items.is_empty() {
        return Ok(None);
    }
    items.iter().map(f).collect::<Result<Vec<_>, _>>().map(Some)
}

fn some_map(items: &BTreeMap<String, String>) -> Option<HashMap<String, String>> {
    (!items.is_empty()).then(|| items.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

fn strings(items: &[String]) -> Option<Vec<String>> {
    some_list(items, Clone::clone)
}

fn non_empty(value: &str) -> Option<String> {
    (!value.is_empty()).then(|| value.to_owned())
}

fn wire<E: AsRef<str>>(value: Option<E>) -> Option<String> {
    value.map(|v| v.as_ref().to_owned())
}

fn enum_of<E: for<'a> From<&'a str>>(value: &Option<String>) -> Option<E> {
    value.as_deref().map(E::from)
}

// ------------------------------------------------------- SDK → domain

/// A described task definition (and its tags) as a spec. Read-only fields
/// (ARN, revision, status, requiresAttributes, compatibilities, registration
/// data) are dropped: they cannot be registered.
#[allow(deprecated)] // inferenceAccelerators: still registrable, so still carried.
pub(crate) fn spec_from_sdk(
    td: sdk::TaskDefinition,
    tags: Vec<sdk::Tag>,
) -> dom::TaskDefinitionSpec {
    dom::TaskDefinitionSpec {
        family: td.family.unwrap_or_default(),
        container_definitions: list(td.container_definitions, container_from_sdk),
        tags: tags
            .into_iter()
            .filter_map(|t| Some((t.key?, t.value.unwrap_or_default())))
            .collect(),
        task_role_arn: td.task_role_arn,
        execution_role_arn: td.execution_role_arn,
        network_mode: wire(td.network_mode),
        volumes: list(td.volumes, volume_from_sdk),
        placement_constraints: list(td.placement_constraints, |p| dom::PlacementConstraint {
            r#type: wire(p.r#type),
            expression: p.expression,
        }),
        requires_compatibilities: list(td.requires_compatibilities, |c| c.as_str().to_owned()),
        cpu: td.cpu,
        memory: td.memory,
        pid_mode: wire(td.pid_mode),
        ipc_mode: wire(td.ipc_mode),
        proxy_configuration: td.proxy_configuration.map(|p| dom::ProxyConfiguration {
            r#type: wire(p.r#type),
            container_name: p.container_name,
            properties: list(p.properties, key_value_from_sdk),
        }),
        inference_accelerators: list(td.inference_accelerators, |a| dom::InferenceAccelerator {
            device_name: a.device_name,
            device_type: a.device_type,
        }),
        ephemeral_storage: td.ephemeral_storage.map(|e| dom::EphemeralStorage {
            size_in_gib: e.size_in_gib,
        }),
        runtime_platform: td.runtime_platform.map(|r| dom::RuntimePlatform {
            cpu_architecture: wire(r.cpu_architecture),
            operating_system_family: wire(r.operating_system_family),
        }),
        enable_fault_injection: td.enable_fault_injection,
    }
}

fn key_value_from_sdk(kv: sdk::KeyValuePair) -> dom::KeyValuePair {
    dom::KeyValuePair {
        name: kv.name,
        value: kv.value,
    }
}

fn secret_from_sdk(s: sdk::Secret) -> dom::Secret {
    dom::Secret {
        name: s.name,
        value_from: s.value_from,
    }
}

fn volume_from_sdk(v: sdk::Volume) -> dom::Volume {
    dom::Volume {
        name: v.name,
        host: v.host.map(|h| dom::HostVolume {
            source_path: h.source_path,
        }),
        docker_volume_configuration: v.docker_volume_configuration.map(|d| {
            dom::DockerVolumeConfiguration {
                scope: wire(d.scope),
                autoprovision: d.autoprovision,
                driver: d.driver,
                driver_opts: map(d.driver_opts),
                labels: map(d.labels),
            }
        }),
        efs_volume_configuration: v
            .efs_volume_configuration
            .map(|e| dom::EfsVolumeConfiguration {
                file_system_id: e.file_system_id,
                root_directory: e.root_directory,
                transit_encryption: wire(e.transit_encryption),
                transit_encryption_port: e.transit_encryption_port,
                authorization_config: e.authorization_config.map(|a| dom::EfsAuthorizationConfig {
                    access_point_id: a.access_point_id,
                    iam: wire(a.iam),
                }),
            }),
        s3files_volume_configuration: v.s3files_volume_configuration.map(|s| {
            dom::S3FilesVolumeConfiguration {
                file_system_arn: s.file_system_arn,
                root_directory: s.root_directory,
                transit_encryption_port: s.transit_encryption_port,
                access_point_arn: s.access_point_arn,
            }
        }),
        fsx_windows_file_server_volume_configuration: v
            .fsx_windows_file_server_volume_configuration
            .map(|f| dom::FsxWindowsFileServerVolumeConfiguration {
                file_system_id: f.file_system_id,
                root_directory: f.root_directory,
                authorization_config: f.authorization_config.map(|a| {
                    dom::FsxWindowsFileServerAuthorizationConfig {
                        credentials_parameter: a.credentials_parameter,
                        domain: a.domain,
                    }
                }),
            }),
        configured_at_launch: v.configured_at_launch,
    }
}

/// One SDK container definition in domain terms.
pub(crate) fn container_from_sdk(c: sdk::ContainerDefinition) -> dom::ContainerDefinition {
    dom::ContainerDefinition {
        name: c.name.unwrap_or_default(),
        image: c.image.unwrap_or_default(),
        essential: c.essential,
        docker_labels: map(c.docker_labels),
        health_check: c.health_check.map(|h| dom::HealthCheck {
            command: h.command,
            interval: h.interval,
            timeout: h.timeout,
            retries: h.retries,
            start_period: h.start_period,
        }),
        repository_credentials: c
            .repository_credentials
            .map(|r| dom::RepositoryCredentials {
                credentials_parameter: r.credentials_parameter,
            }),
        cpu: c.cpu,
        memory: c.memory,
        memory_reservation: c.memory_reservation,
        links: c.links.unwrap_or_default(),
        port_mappings: list(c.port_mappings, |p| dom::PortMapping {
            container_port: p.container_port,
            host_port: p.host_port,
            protocol: wire(p.protocol),
            name: p.name,
            app_protocol: wire(p.app_protocol),
            container_port_range: p.container_port_range,
        }),
        restart_policy: c.restart_policy.map(|r| dom::RestartPolicy {
            enabled: r.enabled,
            ignored_exit_codes: r.ignored_exit_codes.unwrap_or_default(),
            restart_attempt_period: r.restart_attempt_period,
        }),
        entry_point: c.entry_point.unwrap_or_default(),
        command: c.command.unwrap_or_default(),
        environment: list(c.environment, key_value_from_sdk),
        environment_files: list(c.environment_files, |e| dom::EnvironmentFile {
            value: e.value,
            r#type: e.r#type.as_str().to_owned(),
        }),
        mount_points: list(c.mount_points, |m| dom::MountPoint {
            source_volume: m.source_volume,
            container_path: m.container_path,
            read_only: m.read_only,
        }),
        volumes_from: list(c.volumes_from, |v| dom::VolumeFrom {
            source_container: v.source_container,
            read_only: v.read_only,
        }),
        linux_parameters: c.linux_parameters.map(|l| dom::LinuxParameters {
            capabilities: l.capabilities.map(|k| dom::KernelCapabilities {
                add: k.add.unwrap_or_default(),
                drop: k.drop.unwrap_or_default(),
            }),
            devices: list(l.devices, |d| dom::Device {
                host_path: d.host_path,
                container_path: d.container_path,
                permissions: list(d.permissions, |p| p.as_str().to_owned()),
            }),
            init_process_enabled: l.init_process_enabled,
            shared_memory_size: l.shared_memory_size,
            tmpfs: list(l.tmpfs, |t| dom::Tmpfs {
                container_path: t.container_path,
                size: t.size,
                mount_options: t.mount_options.unwrap_or_default(),
            }),
            max_swap: l.max_swap,
            swappiness: l.swappiness,
        }),
        secrets: list(c.secrets, secret_from_sdk),
        depends_on: list(c.depends_on, |d| dom::ContainerDependency {
            container_name: d.container_name,
            condition: d.condition.as_str().to_owned(),
        }),
        start_timeout: c.start_timeout,
        stop_timeout: c.stop_timeout,
        version_consistency: wire(c.version_consistency),
        hostname: c.hostname,
        user: c.user,
        working_directory: c.working_directory,
        disable_networking: c.disable_networking,
        privileged: c.privileged,
        readonly_root_filesystem: c.readonly_root_filesystem,
        dns_servers: c.dns_servers.unwrap_or_default(),
        dns_search_domains: c.dns_search_domains.unwrap_or_default(),
        extra_hosts: list(c.extra_hosts, |h| dom::HostEntry {
            hostname: h.hostname,
            ip_address: h.ip_address,
        }),
        docker_security_options: c.docker_security_options.unwrap_or_default(),
        interactive: c.interactive,
        pseudo_terminal: c.pseudo_terminal,
        ulimits: list(c.ulimits, |u| dom::Ulimit {
            name: u.name.as_str().to_owned(),
            soft_limit: u.soft_limit,
            hard_limit: u.hard_limit,
        }),
        log_configuration: c.log_configuration.map(|l| dom::LogConfiguration {
            log_driver: l.log_driver.as_str().to_owned(),
            options: map(l.options),
            secret_options: list(l.secret_options, secret_from_sdk),
        }),
        system_controls: list(c.system_controls, |s| dom::SystemControl {
            namespace: s.namespace,
            value: s.value,
        }),
        resource_requirements: list(c.resource_requirements, |r| dom::ResourceRequirement {
            value: r.value,
            r#type: r.r#type.as_str().to_owned(),
            sharing_strategy: r.sharing_strategy.map(|s| dom::SharingStrategy {
                // A variant newer than this SDK cannot be read (the SDK keeps
                // no data for it); it maps to an empty strategy.
                nvidia_mps: s.as_nvidia_mps().ok().map(|m| dom::NvidiaMpsAllocation {
                    memory: m.memory,
                    max_compute_percent: m.max_compute_percent,
                }),
            }),
        }),
        firelens_configuration: c
            .firelens_configuration
            .map(|f| dom::FirelensConfiguration {
                r#type: f.r#type.as_str().to_owned(),
                options: map(f.options),
            }),
        credential_specs: c.credential_specs.unwrap_or_default(),
    }
}

// ------------------------------------------------------- domain → SDK

/// Sets every field of `spec` on a `RegisterTaskDefinition` request.
#[allow(deprecated)] // inferenceAccelerators: still registrable, so still carried.
pub(crate) fn register_request(
    request: RegisterTaskDefinitionFluentBuilder,
    spec: &dom::TaskDefinitionSpec,
) -> Result<RegisterTaskDefinitionFluentBuilder, BuildError> {
    let containers = spec
        .container_definitions
        .iter()
        .map(container_to_sdk)
        .collect::<Result<Vec<_>, _>>()?;
    let tags = (!spec.tags.is_empty()).then(|| {
        spec.tags
            .iter()
            .map(|(k, v)| sdk::Tag::builder().key(k).value(v).build())
            .collect()
    });
    Ok(request
        .set_family(non_empty(&spec.family))
        .set_container_definitions(Some(containers))
        .set_tags(tags)
        .set_task_role_arn(spec.task_role_arn.clone())
        .set_execution_role_arn(spec.execution_role_arn.clone())
        .set_network_mode(enum_of(&spec.network_mode))
        .set_volumes(try_list(&spec.volumes, volume_to_sdk)?)
        .set_placement_constraints(some_list(&spec.placement_constraints, |p| {
            sdk::TaskDefinitionPlacementConstraint::builder()
                .set_type(enum_of(&p.r#type))
                .set_expression(p.expression.clone())
                .build()
        }))
        .set_requires_compatibilities(some_list(&spec.requires_compatibilities, |c| {
            sdk::Compatibility::from(c.as_str())
        }))
        .set_cpu(spec.cpu.clone())
        .set_memory(spec.memory.clone())
        .set_pid_mode(enum_of(&spec.pid_mode))
        .set_ipc_mode(enum_of(&spec.ipc_mode))
        .set_proxy_configuration(
            spec.proxy_configuration
                .as_ref()
                .map(|p| {
                    sdk::ProxyConfiguration::builder()
                        .set_type(enum_of(&p.r#type))
                        .container_name(&p.container_name)
                        .set_properties(some_list(&p.properties, key_value_to_sdk))
                        .build()
                })
                .transpose()?,
        )
        .set_inference_accelerators(try_list(&spec.inference_accelerators, |a| {
            sdk::InferenceAccelerator::builder()
                .device_name(&a.device_name)
                .device_type(&a.device_type)
                .build()
        })?)
        .set_ephemeral_storage(spec.ephemeral_storage.as_ref().map(|e| {
            sdk::EphemeralStorage::builder()
                .size_in_gib(e.size_in_gib)
                .build()
        }))
        .set_runtime_platform(spec.runtime_platform.as_ref().map(|r| {
            sdk::RuntimePlatform::builder()
                .set_cpu_architecture(enum_of(&r.cpu_architecture))
                .set_operating_system_family(enum_of(&r.operating_system_family))
                .build()
        }))
        .set_enable_fault_injection(spec.enable_fault_injection))
}

fn key_value_to_sdk(kv: &dom::KeyValuePair) -> sdk::KeyValuePair {
    sdk::KeyValuePair::builder()
        .set_name(kv.name.clone())
        .set_value(kv.value.clone())
        .build()
}

fn secret_to_sdk(s: &dom::Secret) -> Result<sdk::Secret, BuildError> {
    sdk::Secret::builder()
        .name(&s.name)
        .value_from(&s.value_from)
        .build()
}

fn volume_to_sdk(v: &dom::Volume) -> Result<sdk::Volume, BuildError> {
    Ok(sdk::Volume::builder()
        .set_name(v.name.clone())
        .set_host(v.host.as_ref().map(|h| {
            sdk::HostVolumeProperties::builder()
                .set_source_path(h.source_path.clone())
                .build()
        }))
        .set_docker_volume_configuration(v.docker_volume_configuration.as_ref().map(|d| {
            sdk::DockerVolumeConfiguration::builder()
                .set_scope(enum_of(&d.scope))
                .set_autoprovision(d.autoprovision)
                .set_driver(d.driver.clone())
                .set_driver_opts(some_map(&d.driver_opts))
                .set_labels(some_map(&d.labels))
                .build()
        }))
        .set_efs_volume_configuration(
            v.efs_volume_configuration
                .as_ref()
                .map(|e| {
                    sdk::EfsVolumeConfiguration::builder()
                        .file_system_id(&e.file_system_id)
                        .set_root_directory(e.root_directory.clone())
                        .set_transit_encryption(enum_of(&e.transit_encryption))
                        .set_transit_encryption_port(e.transit_encryption_port)
                        .set_authorization_config(e.authorization_config.as_ref().map(|a| {
                            sdk::EfsAuthorizationConfig::builder()
                                .set_access_point_id(a.access_point_id.clone())
                                .set_iam(enum_of(&a.iam))
                                .build()
                        }))
                        .build()
                })
                .transpose()?,
        )
        .set_s3files_volume_configuration(
            v.s3files_volume_configuration
                .as_ref()
                .map(|s| {
                    sdk::S3FilesVolumeConfiguration::builder()
                        .file_system_arn(&s.file_system_arn)
                        .set_root_directory(s.root_directory.clone())
                        .set_transit_encryption_port(s.transit_encryption_port)
                        .set_access_point_arn(s.access_point_arn.clone())
                        .build()
                })
                .transpose()?,
        )
        .set_fsx_windows_file_server_volume_configuration(
            v.fsx_windows_file_server_volume_configuration
                .as_ref()
                .map(|f| {
                    sdk::FSxWindowsFileServerVolumeConfiguration::builder()
                        .file_system_id(&f.file_system_id)
                        .root_directory(&f.root_directory)
                        .set_authorization_config(
                            f.authorization_config
                                .as_ref()
                                .map(|a| {
                                    sdk::FSxWindowsFileServerAuthorizationConfig::builder()
                                        .credentials_parameter(&a.credentials_parameter)
                                        .domain(&a.domain)
                                        .build()
                                })
                                .transpose()?,
                        )
                        .build()
                })
                .transpose()?,
        )
        .set_configured_at_launch(v.configured_at_launch)
        .build())
}

/// One domain container definition as the SDK's.
pub(crate) fn container_to_sdk(
    c: &dom::ContainerDefinition,
) -> Result<sdk::ContainerDefinition, BuildError> {
    Ok(sdk::ContainerDefinition::builder()
        .set_name(non_empty(&c.name))
        .set_image(non_empty(&c.image))
        .set_essential(c.essential)
        .set_docker_labels(some_map(&c.docker_labels))
        .set_health_check(
            c.health_check
                .as_ref()
                .map(|h| {
                    sdk::HealthCheck::builder()
                        .set_command(Some(h.command.clone()))
                        .set_interval(h.interval)
                        .set_timeout(h.timeout)
                        .set_retries(h.retries)
                        .set_start_period(h.start_period)
                        .build()
                })
                .transpose()?,
        )
        .set_repository_credentials(
            c.repository_credentials
                .as_ref()
                .map(|r| {
                    sdk::RepositoryCredentials::builder()
                        .credentials_parameter(&r.credentials_parameter)
                        .build()
                })
                .transpose()?,
        )
        .cpu(c.cpu)
        .set_memory(c.memory)
        .set_memory_reservation(c.memory_reservation)
        .set_links(strings(&c.links))
        .set_port_mappings(some_list(&c.port_mappings, |p| {
            sdk::PortMapping::builder()
                .set_container_port(p.container_port)
                .set_host_port(p.host_port)
                .set_protocol(enum_of(&p.protocol))
                .set_name(p.name.clone())
                .set_app_protocol(enum_of(&p.app_protocol))
                .set_container_port_range(p.container_port_range.clone())
                .build()
        }))
        .set_restart_policy(
            c.restart_policy
                .as_ref()
                .map(|r| {
                    sdk::ContainerRestartPolicy::builder()
                        .enabled(r.enabled)
                        .set_ignored_exit_codes(
                            (!r.ignored_exit_codes.is_empty())
                                .then(|| r.ignored_exit_codes.clone()),
                        )
                        .set_restart_attempt_period(r.restart_attempt_period)
                        .build()
                })
                .transpose()?,
        )
        .set_entry_point(strings(&c.entry_point))
        .set_command(strings(&c.command))
        .set_environment(some_list(&c.environment, key_value_to_sdk))
        .set_environment_files(try_list(&c.environment_files, |e| {
            sdk::EnvironmentFile::builder()
                .value(&e.value)
                .r#type(sdk::EnvironmentFileType::from(e.r#type.as_str()))
                .build()
        })?)
        .set_mount_points(some_list(&c.mount_points, |m| {
            sdk::MountPoint::builder()
                .set_source_volume(m.source_volume.clone())
                .set_container_path(m.container_path.clone())
                .set_read_only(m.read_only)
                .build()
        }))
        .set_volumes_from(some_list(&c.volumes_from, |v| {
            sdk::VolumeFrom::builder()
                .set_source_container(v.source_container.clone())
                .set_read_only(v.read_only)
                .build()
        }))
        .set_linux_parameters(
            c.linux_parameters
                .as_ref()
                .map(linux_parameters_to_sdk)
                .transpose()?,
        )
        .set_secrets(try_list(&c.secrets, secret_to_sdk)?)
        .set_depends_on(try_list(&c.depends_on, |d| {
            sdk::ContainerDependency::builder()
                .container_name(&d.container_name)
                .condition(sdk::ContainerCondition::from(d.condition.as_str()))
                .build()
        })?)
        .set_start_timeout(c.start_timeout)
        .set_stop_timeout(c.stop_timeout)
        .set_version_consistency(enum_of(&c.version_consistency))
        .set_hostname(c.hostname.clone())
        .set_user(c.user.clone())
        .set_working_directory(c.working_directory.clone())
        .set_disable_networking(c.disable_networking)
        .set_privileged(c.privileged)
        .set_readonly_root_filesystem(c.readonly_root_filesystem)
        .set_dns_servers(strings(&c.dns_servers))
        .set_dns_search_domains(strings(&c.dns_search_domains))
        .set_extra_hosts(try_list(&c.extra_hosts, |h| {
            sdk::HostEntry::builder()
                .hostname(&h.hostname)
                .ip_address(&h.ip_address)
                .build()
        })?)
        .set_docker_security_options(strings(&c.docker_security_options))
        .set_interactive(c.interactive)
        .set_pseudo_terminal(c.pseudo_terminal)
        .set_ulimits(try_list(&c.ulimits, |u| {
            sdk::Ulimit::builder()
                .name(sdk::UlimitName::from(u.name.as_str()))
                .soft_limit(u.soft_limit)
                .hard_limit(u.hard_limit)
                .build()
        })?)
        .set_log_configuration(
            c.log_configuration
                .as_ref()
                .map(|l| {
                    sdk::LogConfiguration::builder()
                        .log_driver(sdk::LogDriver::from(l.log_driver.as_str()))
                        .set_options(some_map(&l.options))
                        .set_secret_options(try_list(&l.secret_options, secret_to_sdk)?)
                        .build()
                })
                .transpose()?,
        )
        .set_system_controls(some_list(&c.system_controls, |s| {
            sdk::SystemControl::builder()
                .set_namespace(s.namespace.clone())
                .set_value(s.value.clone())
                .build()
        }))
        .set_resource_requirements(try_list(&c.resource_requirements, |r| {
            sdk::ResourceRequirement::builder()
                .value(&r.value)
                .r#type(sdk::ResourceType::from(r.r#type.as_str()))
                .set_sharing_strategy(sharing_strategy_to_sdk(r.sharing_strategy.as_ref())?)
                .build()
        })?)
        .set_firelens_configuration(
            c.firelens_configuration
                .as_ref()
                .map(|f| {
                    sdk::FirelensConfiguration::builder()
                        .r#type(sdk::FirelensConfigurationType::from(f.r#type.as_str()))
                        .set_options(some_map(&f.options))
                        .build()
                })
                .transpose()?,
        )
        .set_credential_specs(strings(&c.credential_specs))
        .build())
}

fn sharing_strategy_to_sdk(
    s: Option<&dom::SharingStrategy>,
) -> Result<Option<sdk::SharingStrategy>, BuildError> {
    let Some(mps) = s.and_then(|s| s.nvidia_mps.as_ref()) else {
        return Ok(None);
    };
    Ok(Some(sdk::SharingStrategy::NvidiaMps(
        sdk::NvidiaMpsAllocation::builder()
            .memory(mps.memory)
            .set_max_compute_percent(mps.max_compute_percent)
            .build()?,
    )))
}

fn linux_parameters_to_sdk(l: &dom::LinuxParameters) -> Result<sdk::LinuxParameters, BuildError> {
    Ok(sdk::LinuxParameters::builder()
        .set_capabilities(l.capabilities.as_ref().map(|k| {
            sdk::KernelCapabilities::builder()
                .set_add(strings(&k.add))
                .set_drop(strings(&k.drop))
                .build()
        }))
        .set_devices(try_list(&l.devices, |d| {
            sdk::Device::builder()
                .host_path(&d.host_path)
                .set_container_path(d.container_path.clone())
                .set_permissions(some_list(&d.permissions, |p| {
                    sdk::DeviceCgroupPermission::from(p.as_str())
                }))
                .build()
        })?)
        .set_init_process_enabled(l.init_process_enabled)
        .set_shared_memory_size(l.shared_memory_size)
        .set_tmpfs(try_list(&l.tmpfs, |t| {
            sdk::Tmpfs::builder()
                .container_path(&t.container_path)
                .size(t.size)
                .set_mount_options(strings(&t.mount_options))
                .build()
        })?)
        .set_max_swap(l.max_swap)
        .set_swappiness(l.swappiness)
        .build())
}

#[cfg(test)]
#[allow(deprecated)] // inferenceAccelerators
mod tests {
    use std::collections::BTreeSet;

    use aws_smithy_types::DateTime;

    use super::*;

    /// Field paths (`container_definitions.port_mappings.host_port`) in a
    /// pretty `Debug` rendering. With `only_set`, fields whose value is
    /// `None` or empty are left out.
    fn field_paths(debug: &str, only_set: bool) -> BTreeSet<String> {
        let mut paths = BTreeSet::new();
        let mut stack: Vec<(usize, String)> = Vec::new();
        for line in debug.lines() {
            let text = line.trim_start();
            let indent = line.len() - text.len();
            let Some((name, value)) = text.split_once(": ") else {
                continue;
            };
            let is_field = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !is_field {
                continue;
            }
            while stack.last().is_some_and(|(i, _)| *i >= indent) {
                stack.pop();
            }
            let path: Vec<&str> = stack
                .iter()
                .map(|(_, n)| n.as_str())
                .chain([name])
                .collect();
            // Values the SDK redacts count as unset here; containers are
            // compared whole (`PartialEq`) where it matters.
            let empty = ["None,", "[],", "{},", "Some([]),", "Some({}),"].contains(&value)
                || value.starts_with("\"*** Sensitive Data Redacted");
            if !only_set || !empty {
                paths.insert(path.join("."));
            }
            stack.push((indent, name.to_owned()));
        }
        paths
    }

    fn paths_of(value: &impl std::fmt::Debug, only_set: bool) -> BTreeSet<String> {
        field_paths(&format!("{value:#?}"), only_set)
    }

    fn under(prefix: &str, paths: BTreeSet<String>) -> BTreeSet<String> {
        paths.into_iter().map(|p| format!("{prefix}.{p}")).collect()
    }

    fn secret(n: &str) -> sdk::Secret {
        sdk::Secret::builder()
            .name(format!("SECRET_{n}"))
            .value_from(format!("arn:aws:ssm:us-east-1:1:parameter/{n}"))
            .build()
            .unwrap()
    }

    fn kv(name: &str, value: &str) -> sdk::KeyValuePair {
        sdk::KeyValuePair::builder().name(name).value(value).build()
    }

    /// A container definition with every field (at every depth) set.
    fn full_container(name: &str) -> sdk::ContainerDefinition {
        sdk::ContainerDefinition::builder()
            .name(name)
            .image(format!("registry.example.com:5000/{name}:1.2.3"))
            .repository_credentials(
                sdk::RepositoryCredentials::builder()
                    .credentials_parameter("arn:aws:secretsmanager:us-east-1:1:secret:reg")
                    .build()
                    .unwrap(),
            )
            .cpu(256)
            .memory(512)
            .memory_reservation(256)
            .links("db:database")
            .port_mappings(
                sdk::PortMapping::builder()
                    .container_port(8080)
                    .host_port(0)
                    .protocol(sdk::TransportProtocol::Tcp)
                    .name("http")
                    .app_protocol(sdk::ApplicationProtocol::Http2)
                    .container_port_range("9000-9010")
                    .build(),
            )
            .essential(true)
            .restart_policy(
                sdk::ContainerRestartPolicy::builder()
                    .enabled(true)
                    .ignored_exit_codes(0)
                    .restart_attempt_period(60)
                    .build()
                    .unwrap(),
            )
            .entry_point("/entry")
            .command("serve")
            .command("--port=8080")
            .environment(kv("MODE", "production"))
            .environment(kv("EMPTY", ""))
            .environment_files(
                sdk::EnvironmentFile::builder()
                    .value("arn:aws:s3:::bucket/env")
                    .r#type(sdk::EnvironmentFileType::S3)
                    .build()
                    .unwrap(),
            )
            .mount_points(
                sdk::MountPoint::builder()
                    .source_volume("data")
                    .container_path("/data")
                    .read_only(false)
                    .build(),
            )
            .volumes_from(
                sdk::VolumeFrom::builder()
                    .source_container("sidecar")
                    .read_only(true)
                    .build(),
            )
            .linux_parameters(
                sdk::LinuxParameters::builder()
                    .capabilities(
                        sdk::KernelCapabilities::builder()
                            .add("NET_ADMIN")
                            .drop("MKNOD")
                            .build(),
                    )
                    .devices(
                        sdk::Device::builder()
                            .host_path("/dev/fuse")
                            .container_path("/dev/fuse")
                            .permissions(sdk::DeviceCgroupPermission::Read)
                            .build()
                            .unwrap(),
                    )
                    .init_process_enabled(true)
                    .shared_memory_size(64)
                    .tmpfs(
                        sdk::Tmpfs::builder()
                            .container_path("/tmp")
                            .size(128)
                            .mount_options("noexec")
                            .build()
                            .unwrap(),
                    )
                    .max_swap(1024)
                    .swappiness(10)
                    .build(),
            )
            .secrets(secret("db"))
            .depends_on(
                sdk::ContainerDependency::builder()
                    .container_name("sidecar")
                    .condition(sdk::ContainerCondition::Healthy)
                    .build()
                    .unwrap(),
            )
            .start_timeout(120)
            .stop_timeout(30)
            .version_consistency(sdk::VersionConsistency::Disabled)
            .hostname("runner-host")
            .user("1000:1000")
            .working_directory("/srv")
            .disable_networking(false)
            .privileged(false)
            .readonly_root_filesystem(true)
            .dns_servers("10.0.0.2")
            .dns_search_domains("example.internal")
            .extra_hosts(
                sdk::HostEntry::builder()
                    .hostname("metadata")
                    .ip_address("169.254.169.254")
                    .build()
                    .unwrap(),
            )
            .docker_security_options("no-new-privileges")
            .interactive(false)
            .pseudo_terminal(false)
            .docker_labels("org.example.version", "20260101.1")
            .ulimits(
                sdk::Ulimit::builder()
                    .name(sdk::UlimitName::Nofile)
                    .soft_limit(1024)
                    .hard_limit(4096)
                    .build()
                    .unwrap(),
            )
            .log_configuration(
                sdk::LogConfiguration::builder()
                    .log_driver(sdk::LogDriver::Awslogs)
                    .options("awslogs-group", "/ecs/runner")
                    .options("awslogs-region", "us-east-1")
                    .secret_options(secret("log"))
                    .build()
                    .unwrap(),
            )
            .health_check(
                sdk::HealthCheck::builder()
                    .command("CMD-SHELL")
                    .command("curl -f http://localhost:8080/health || exit 1")
                    .interval(30)
                    .timeout(5)
                    .retries(3)
                    .start_period(60)
                    .build()
                    .unwrap(),
            )
            .system_controls(
                sdk::SystemControl::builder()
                    .namespace("net.core.somaxconn")
                    .value("1024")
                    .build(),
            )
            .resource_requirements(
                sdk::ResourceRequirement::builder()
                    .value("1")
                    .r#type(sdk::ResourceType::Gpu)
                    .sharing_strategy(sdk::SharingStrategy::NvidiaMps(
                        sdk::NvidiaMpsAllocation::builder()
                            .memory(2048)
                            .max_compute_percent(50)
                            .build()
                            .unwrap(),
                    ))
                    .build()
                    .unwrap(),
            )
            .firelens_configuration(
                sdk::FirelensConfiguration::builder()
                    .r#type(sdk::FirelensConfigurationType::Fluentbit)
                    .options("enable-ecs-log-metadata", "true")
                    .build()
                    .unwrap(),
            )
            .credential_specs("credentialspec:arn:aws:s3:::bucket/spec.json")
            .build()
    }

    /// A registered task definition with every field (at every depth) set,
    /// read-only ones included.
    fn full_task_definition() -> sdk::TaskDefinition {
        sdk::TaskDefinition::builder()
            .task_definition_arn("arn:aws:ecs:us-east-1:1:task-definition/runner:7")
            .container_definitions(full_container("runner"))
            .container_definitions(full_container("sidecar"))
            .family("runner")
            .task_role_arn("arn:aws:iam::1:role/task")
            .execution_role_arn("arn:aws:iam::1:role/execution")
            .network_mode(sdk::NetworkMode::Bridge)
            .revision(7)
            .volumes(
                sdk::Volume::builder()
                    .name("data")
                    .host(
                        sdk::HostVolumeProperties::builder()
                            .source_path("/srv/data")
                            .build(),
                    )
                    .docker_volume_configuration(
                        sdk::DockerVolumeConfiguration::builder()
                            .scope(sdk::Scope::Shared)
                            .autoprovision(true)
                            .driver("local")
                            .driver_opts("type", "nfs")
                            .labels("team", "ci")
                            .build(),
                    )
                    .efs_volume_configuration(
                        sdk::EfsVolumeConfiguration::builder()
                            .file_system_id("fs-1234")
                            .root_directory("/runner")
                            .transit_encryption(sdk::EfsTransitEncryption::Enabled)
                            .transit_encryption_port(2049)
                            .authorization_config(
                                sdk::EfsAuthorizationConfig::builder()
                                    .access_point_id("fsap-1")
                                    .iam(sdk::EfsAuthorizationConfigIam::Enabled)
                                    .build(),
                            )
                            .build()
                            .unwrap(),
                    )
                    .s3files_volume_configuration(
                        sdk::S3FilesVolumeConfiguration::builder()
                            .file_system_arn("arn:aws:s3files:us-east-1:1:file-system/fs-s3")
                            .root_directory("/")
                            .transit_encryption_port(2999)
                            .access_point_arn("arn:aws:s3files:us-east-1:1:access-point/ap")
                            .build()
                            .unwrap(),
                    )
                    .fsx_windows_file_server_volume_configuration(
                        sdk::FSxWindowsFileServerVolumeConfiguration::builder()
                            .file_system_id("fs-win")
                            .root_directory("\\share")
                            .authorization_config(
                                sdk::FSxWindowsFileServerAuthorizationConfig::builder()
                                    .credentials_parameter("arn:aws:secretsmanager:::secret:fsx")
                                    .domain("corp.example.com")
                                    .build()
                                    .unwrap(),
                            )
                            .build()
                            .unwrap(),
                    )
                    .configured_at_launch(false)
                    .build(),
            )
            .status(sdk::TaskDefinitionStatus::Active)
            .requires_attributes(
                sdk::Attribute::builder()
                    .name("com.amazonaws.ecs.capability.docker-remote-api.1.19")
                    .value("v")
                    .target_type(sdk::TargetType::ContainerInstance)
                    .target_id("i-1")
                    .build()
                    .unwrap(),
            )
            .placement_constraints(
                sdk::TaskDefinitionPlacementConstraint::builder()
                    .r#type(sdk::TaskDefinitionPlacementConstraintType::MemberOf)
                    .expression("attribute:ecs.instance-type =~ t3.*")
                    .build(),
            )
            .compatibilities(sdk::Compatibility::Ec2)
            .runtime_platform(
                sdk::RuntimePlatform::builder()
                    .cpu_architecture(sdk::CpuArchitecture::Arm64)
                    .operating_system_family(sdk::OsFamily::Linux)
                    .build(),
            )
            .requires_compatibilities(sdk::Compatibility::Ec2)
            .cpu("1024")
            .memory("2048")
            .inference_accelerators(
                sdk::InferenceAccelerator::builder()
                    .device_name("acc")
                    .device_type("eia2.medium")
                    .build()
                    .unwrap(),
            )
            .pid_mode(sdk::PidMode::Task)
            .ipc_mode(sdk::IpcMode::Task)
            .proxy_configuration(
                sdk::ProxyConfiguration::builder()
                    .r#type(sdk::ProxyConfigurationType::Appmesh)
                    .container_name("envoy")
                    .properties(kv("AppPorts", "8080"))
                    .build()
                    .unwrap(),
            )
            .registered_at(DateTime::from_secs(1_700_000_000))
            .deregistered_at(DateTime::from_secs(1_700_000_100))
            .delete_requested_at(DateTime::from_secs(1_700_000_200))
            .registered_by("arn:aws:iam::1:user/ci")
            .ephemeral_storage(sdk::EphemeralStorage::builder().size_in_gib(50).build())
            .enable_fault_injection(true)
            .build()
    }

    fn full_tags() -> Vec<sdk::Tag> {
        vec![
            sdk::Tag::builder().key("team").value("ci").build(),
            sdk::Tag::builder()
                .key("runner-version")
                .value("20260101.1")
                .build(),
        ]
    }

    /// Read-only fields of a registered revision: not registrable, so
    /// deliberately not in `TaskDefinitionSpec`.
    const READ_ONLY: &[&str] = &[
        "task_definition_arn",
        "revision",
        "status",
        "requires_attributes",
        "compatibilities",
        "registered_at",
        "deregistered_at",
        "delete_requested_at",
        "registered_by",
    ];

    /// Every field path of the SDK's `TaskDefinition` this crate knows:
    /// the mapped ones, then (below) the read-only ones. When the SDK grows
    /// a field, `sdk_types_have_no_field_we_do_not_know` fails: map the new
    /// field in `TaskDefinitionSpec` (or add it to `READ_ONLY` if it cannot
    /// be registered) and add it here.
    const KNOWN_FIELDS: &str = "
        family task_role_arn execution_role_arn network_mode cpu memory pid_mode ipc_mode
        enable_fault_injection requires_compatibilities
        volumes volumes.name volumes.host volumes.host.source_path
        volumes.docker_volume_configuration volumes.docker_volume_configuration.scope
        volumes.docker_volume_configuration.autoprovision
        volumes.docker_volume_configuration.driver
        volumes.docker_volume_configuration.driver_opts
        volumes.docker_volume_configuration.labels
        volumes.efs_volume_configuration volumes.efs_volume_configuration.file_system_id
        volumes.efs_volume_configuration.root_directory
        volumes.efs_volume_configuration.transit_encryption
        volumes.efs_volume_configuration.transit_encryption_port
        volumes.efs_volume_configuration.authorization_config
        volumes.efs_volume_configuration.authorization_config.access_point_id
        volumes.efs_volume_configuration.authorization_config.iam
        volumes.s3files_volume_configuration
        volumes.s3files_volume_configuration.file_system_arn
        volumes.s3files_volume_configuration.root_directory
        volumes.s3files_volume_configuration.transit_encryption_port
        volumes.s3files_volume_configuration.access_point_arn
        volumes.fsx_windows_file_server_volume_configuration
        volumes.fsx_windows_file_server_volume_configuration.file_system_id
        volumes.fsx_windows_file_server_volume_configuration.root_directory
        volumes.fsx_windows_file_server_volume_configuration.authorization_config
        volumes.fsx_windows_file_server_volume_configuration.authorization_config.credentials_parameter
        volumes.fsx_windows_file_server_volume_configuration.authorization_config.domain
        volumes.configured_at_launch
        placement_constraints placement_constraints.type placement_constraints.expression
        runtime_platform runtime_platform.cpu_architecture
        runtime_platform.operating_system_family
        inference_accelerators inference_accelerators.device_name
        inference_accelerators.device_type
        proxy_configuration proxy_configuration.type proxy_configuration.container_name
        proxy_configuration.properties proxy_configuration.properties.name
        proxy_configuration.properties.value
        ephemeral_storage ephemeral_storage.size_in_gib
        container_definitions
        container_definitions.name container_definitions.image
        container_definitions.repository_credentials
        container_definitions.repository_credentials.credentials_parameter
        container_definitions.cpu container_definitions.memory
        container_definitions.memory_reservation container_definitions.links
        container_definitions.port_mappings
        container_definitions.port_mappings.container_port
        container_definitions.port_mappings.host_port
        container_definitions.port_mappings.protocol
        container_definitions.port_mappings.name
        container_definitions.port_mappings.app_protocol
        container_definitions.port_mappings.container_port_range
        container_definitions.essential
        container_definitions.restart_policy container_definitions.restart_policy.enabled
        container_definitions.restart_policy.ignored_exit_codes
        container_definitions.restart_policy.restart_attempt_period
        container_definitions.entry_point container_definitions.command
        container_definitions.environment container_definitions.environment.name
        container_definitions.environment.value
        container_definitions.environment_files
        container_definitions.environment_files.value
        container_definitions.environment_files.type
        container_definitions.mount_points container_definitions.mount_points.source_volume
        container_definitions.mount_points.container_path
        container_definitions.mount_points.read_only
        container_definitions.volumes_from container_definitions.volumes_from.source_container
        container_definitions.volumes_from.read_only
        container_definitions.linux_parameters
        container_definitions.linux_parameters.capabilities
        container_definitions.linux_parameters.capabilities.add
        container_definitions.linux_parameters.capabilities.drop
        container_definitions.linux_parameters.devices
        container_definitions.linux_parameters.devices.host_path
        container_definitions.linux_parameters.devices.container_path
        container_definitions.linux_parameters.devices.permissions
        container_definitions.linux_parameters.init_process_enabled
        container_definitions.linux_parameters.shared_memory_size
        container_definitions.linux_parameters.tmpfs
        container_definitions.linux_parameters.tmpfs.container_path
        container_definitions.linux_parameters.tmpfs.size
        container_definitions.linux_parameters.tmpfs.mount_options
        container_definitions.linux_parameters.max_swap
        container_definitions.linux_parameters.swappiness
        container_definitions.secrets container_definitions.secrets.name
        container_definitions.secrets.value_from
        container_definitions.depends_on container_definitions.depends_on.container_name
        container_definitions.depends_on.condition
        container_definitions.start_timeout container_definitions.stop_timeout
        container_definitions.version_consistency container_definitions.hostname
        container_definitions.user container_definitions.working_directory
        container_definitions.disable_networking container_definitions.privileged
        container_definitions.readonly_root_filesystem container_definitions.dns_servers
        container_definitions.dns_search_domains
        container_definitions.extra_hosts container_definitions.extra_hosts.hostname
        container_definitions.extra_hosts.ip_address
        container_definitions.docker_security_options container_definitions.interactive
        container_definitions.pseudo_terminal container_definitions.docker_labels
        container_definitions.ulimits container_definitions.ulimits.name
        container_definitions.ulimits.soft_limit container_definitions.ulimits.hard_limit
        container_definitions.log_configuration
        container_definitions.log_configuration.log_driver
        container_definitions.log_configuration.options
        container_definitions.log_configuration.secret_options
        container_definitions.log_configuration.secret_options.name
        container_definitions.log_configuration.secret_options.value_from
        container_definitions.health_check container_definitions.health_check.command
        container_definitions.health_check.interval container_definitions.health_check.timeout
        container_definitions.health_check.retries
        container_definitions.health_check.start_period
        container_definitions.system_controls container_definitions.system_controls.namespace
        container_definitions.system_controls.value
        container_definitions.resource_requirements
        container_definitions.resource_requirements.value
        container_definitions.resource_requirements.type
        container_definitions.resource_requirements.sharing_strategy
        container_definitions.resource_requirements.sharing_strategy.memory
        container_definitions.resource_requirements.sharing_strategy.max_compute_percent
        container_definitions.firelens_configuration
        container_definitions.firelens_configuration.type
        container_definitions.firelens_configuration.options
        container_definitions.credential_specs
    ";

    /// All field paths of a value, with the subtrees the SDK's `Debug`
    /// redacts (sensitive fields) filled in from their own types.
    fn all_task_definition_paths(td: &sdk::TaskDefinition) -> BTreeSet<String> {
        let mut paths = paths_of(td, false);
        let container = full_container("x");
        paths.extend(under(
            "container_definitions.repository_credentials",
            paths_of(container.repository_credentials.as_ref().unwrap(), false),
        ));
        paths.extend(under(
            "container_definitions.environment",
            paths_of(&container.environment.as_ref().unwrap()[0], false),
        ));
        paths
    }

    fn known_fields() -> BTreeSet<String> {
        KNOWN_FIELDS
            .split_whitespace()
            .map(str::to_owned)
            .chain(READ_ONLY.iter().map(|f| f.to_string()))
            .collect()
    }

    #[test]
    fn sdk_types_have_no_field_we_do_not_know() {
        let td = full_task_definition();
        let found: BTreeSet<String> = all_task_definition_paths(&td)
            .into_iter()
            .filter(|p| {
                // Inside read-only fields (timestamps, attributes) nothing is mapped.
                !READ_ONLY.iter().any(|r| p.starts_with(&format!("{r}.")))
            })
            .collect();
        let known = known_fields();
        let unknown: Vec<&String> = found.difference(&known).collect();
        assert!(
            unknown.is_empty(),
            "the SDK's TaskDefinition has fields this crate does not map: {unknown:?}; \
             add them to TaskDefinitionSpec and the AWS mapping (or to READ_ONLY)"
        );
        let stale: Vec<&String> = known.difference(&found).collect();
        assert!(
            stale.is_empty(),
            "fields listed but gone from the SDK: {stale:?}"
        );
    }

    #[test]
    fn register_input_has_exactly_the_registrable_fields_plus_tags() {
        let td = full_task_definition();
        let top_level = |paths: BTreeSet<String>| -> BTreeSet<String> {
            paths.into_iter().filter(|p| !p.contains('.')).collect()
        };
        let input =
            aws_sdk_ecs::operation::register_task_definition::RegisterTaskDefinitionInput::builder(
            )
            .build()
            .unwrap();
        let mut expected: BTreeSet<String> = top_level(paths_of(&td, false))
            .into_iter()
            .filter(|p| !READ_ONLY.contains(&p.as_str()))
            .collect();
        expected.insert("tags".into());
        assert_eq!(top_level(paths_of(&input, false)), expected);
    }

    fn offline_client() -> aws_sdk_ecs::Client {
        aws_sdk_ecs::Client::from_conf(
            aws_sdk_ecs::Config::builder()
                .behavior_version(aws_sdk_ecs::config::BehaviorVersion::latest())
                .region(aws_sdk_ecs::config::Region::new("us-east-1"))
                .build(),
        )
    }

    #[test]
    fn every_set_field_survives_describe_then_register() {
        let td = full_task_definition();
        let spec = spec_from_sdk(td.clone(), full_tags());
        let request = register_request(offline_client().register_task_definition(), &spec).unwrap();
        let input = request.as_input().clone().build().unwrap();

        // Every field set in the described revision is set in the request…
        let described: BTreeSet<String> = paths_of(&td, true)
            .into_iter()
            .filter(|p| {
                !READ_ONLY
                    .iter()
                    .any(|r| p == r || p.starts_with(&format!("{r}.")))
            })
            .collect();
        let mut sent = paths_of(&input, true);
        sent.retain(|p| p != "tags" && !p.starts_with("tags."));
        assert_eq!(described, sent);

        // …with the same value.
        assert_eq!(input.container_definitions, td.container_definitions);
        assert_eq!(input.volumes, td.volumes);
        assert_eq!(input.placement_constraints, td.placement_constraints);
        assert_eq!(input.requires_compatibilities, td.requires_compatibilities);
        assert_eq!(input.inference_accelerators, td.inference_accelerators);
        assert_eq!(input.proxy_configuration, td.proxy_configuration);
        assert_eq!(input.ephemeral_storage, td.ephemeral_storage);
        assert_eq!(input.runtime_platform, td.runtime_platform);
        assert_eq!(
            (
                &input.family,
                &input.task_role_arn,
                &input.execution_role_arn
            ),
            (&td.family, &td.task_role_arn, &td.execution_role_arn)
        );
        assert_eq!(
            (&input.network_mode, &input.pid_mode, &input.ipc_mode),
            (&td.network_mode, &td.pid_mode, &td.ipc_mode)
        );
        assert_eq!((&input.cpu, &input.memory), (&td.cpu, &td.memory));
        assert_eq!(input.enable_fault_injection, td.enable_fault_injection);
        let mut tags = input.tags.unwrap();
        tags.sort_by(|a, b| a.key.cmp(&b.key));
        let mut expected_tags = full_tags();
        expected_tags.sort_by(|a, b| a.key.cmp(&b.key));
        assert_eq!(tags, expected_tags);
    }

    #[test]
    fn empty_lists_and_maps_are_not_sent() {
        let spec = dom::TaskDefinitionSpec {
            family: "runner".into(),
            container_definitions: vec![dom::ContainerDefinition {
                name: "runner".into(),
                image: "runner:1".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let request = register_request(offline_client().register_task_definition(), &spec).unwrap();
        let input = request.as_input().clone().build().unwrap();
        let sent = paths_of(&input, true);
        let expected: BTreeSet<String> = [
            "family",
            "container_definitions",
            "container_definitions.name",
            "container_definitions.image",
            // `cpu` is a plain i32 in the SDK: 0 means unset and is not serialised.
            "container_definitions.cpu",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect();
        assert_eq!(sent, expected);
    }

    #[test]
    fn spec_round_trips_through_ecs_json() {
        let spec = spec_from_sdk(full_task_definition(), full_tags());
        let json = serde_json::to_value(&spec).unwrap();
        // ECS task-definition file spellings.
        assert_eq!(json["ephemeralStorage"]["sizeInGiB"], 50);
        assert_eq!(
            json["volumes"][0]["fsxWindowsFileServerVolumeConfiguration"]["authorizationConfig"]["domain"],
            "corp.example.com"
        );
        assert_eq!(
            json["containerDefinitions"][0]["environmentFiles"][0]["type"],
            "s3"
        );
        assert_eq!(
            json["containerDefinitions"][0]["readonlyRootFilesystem"],
            true
        );
        assert_eq!(json["networkMode"], "bridge");
        assert_eq!(
            json["volumes"][0]["s3filesVolumeConfiguration"]["transitEncryptionPort"],
            2999
        );
        let back: dom::TaskDefinitionSpec = serde_json::from_value(json).unwrap();
        assert_eq!(back, spec);
    }

    #[test]
    fn unknown_enum_values_survive_a_round_trip() {
        let td = sdk::TaskDefinition::builder()
            .family("runner")
            .network_mode(sdk::NetworkMode::from("quantum"))
            .container_definitions(
                sdk::ContainerDefinition::builder()
                    .name("runner")
                    .log_configuration(
                        sdk::LogConfiguration::builder()
                            .log_driver(sdk::LogDriver::from("brand-new-driver"))
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .build();
        let spec = spec_from_sdk(td.clone(), vec![]);
        assert_eq!(spec.network_mode.as_deref(), Some("quantum"));
        let input = register_request(offline_client().register_task_definition(), &spec)
            .unwrap()
            .as_input()
            .clone()
            .build()
            .unwrap();
        assert_eq!(input.network_mode, td.network_mode);
        assert_eq!(input.container_definitions, td.container_definitions);
    }

    /// The registration request seen as the task definition ECS would
    /// store (the inverse direction of `register_request`).
    fn as_registered(
        input: aws_sdk_ecs::operation::register_task_definition::RegisterTaskDefinitionInput,
    ) -> (sdk::TaskDefinition, Vec<sdk::Tag>) {
        let td = sdk::TaskDefinition::builder()
            .set_family(input.family)
            .set_container_definitions(input.container_definitions)
            .set_task_role_arn(input.task_role_arn)
            .set_execution_role_arn(input.execution_role_arn)
            .set_network_mode(input.network_mode)
            .set_volumes(input.volumes)
            .set_placement_constraints(input.placement_constraints)
            .set_requires_compatibilities(input.requires_compatibilities)
            .set_cpu(input.cpu)
            .set_memory(input.memory)
            .set_pid_mode(input.pid_mode)
            .set_ipc_mode(input.ipc_mode)
            .set_proxy_configuration(input.proxy_configuration)
            .set_inference_accelerators(input.inference_accelerators)
            .set_ephemeral_storage(input.ephemeral_storage)
            .set_runtime_platform(input.runtime_platform)
            .set_enable_fault_injection(input.enable_fault_injection)
            .build();
        (td, input.tags.unwrap_or_default())
    }

    mod properties {
        use proptest::collection::{btree_map, vec};
        use proptest::option::of;
        use proptest::prelude::*;

        use super::*;

        fn text() -> impl Strategy<Value = String> {
            "[a-zA-Z0-9:/._ -]{0,10}"
        }

        fn wire(values: &'static [&'static str]) -> impl Strategy<Value = String> {
            // Known values and one this SDK has never heard of.
            prop_oneof![
                proptest::sample::select(values).prop_map(str::to_owned),
                Just("future-value".to_owned())
            ]
        }

        fn key_values() -> impl Strategy<Value = Vec<dom::KeyValuePair>> {
            vec(
                (of(text()), of(text()))
                    .prop_map(|(name, value)| dom::KeyValuePair { name, value }),
                0..3,
            )
        }

        fn secrets() -> impl Strategy<Value = Vec<dom::Secret>> {
            vec(
                (text(), text()).prop_map(|(name, value_from)| dom::Secret { name, value_from }),
                0..3,
            )
        }

        fn container() -> impl Strategy<Value = dom::ContainerDefinition> {
            let basics = (
                text(),
                text(),
                of(any::<bool>()),
                btree_map(text(), text(), 0..3),
                of((
                    vec(text(), 1..3),
                    of(0..100i32),
                    of(0..100i32),
                    of(0..10i32),
                    of(0..300i32),
                )),
                any::<i32>(),
                of(any::<i32>()),
                vec(text(), 0..3),
                key_values(),
                secrets(),
            );
            let more = (
                vec(
                    (
                        of(0..65535i32),
                        of(0..65535i32),
                        of(wire(&["tcp", "udp"])),
                        of(text()),
                    ),
                    0..3,
                ),
                of((
                    wire(&["awslogs", "json-file", "awsfirelens"]),
                    btree_map(text(), text(), 0..3),
                    secrets(),
                )),
                vec(
                    (wire(&["nofile", "nproc"]), any::<i32>(), any::<i32>()),
                    0..2,
                ),
                of((
                    of(any::<bool>()),
                    vec(
                        (text(), of(text()), vec(wire(&["read", "write"]), 0..2)),
                        0..2,
                    ),
                    vec((text(), any::<i32>(), vec(text(), 0..2)), 0..2),
                )),
                vec(
                    (
                        text(),
                        wire(&["GPU", "InferenceAccelerator"]),
                        of((any::<i32>(), of(0..100i32))),
                    ),
                    0..2,
                ),
                of((any::<bool>(), vec(any::<i32>(), 0..3), of(60..600i32))),
                (
                    of(text()),
                    of(wire(&["enabled", "disabled"])),
                    vec((text(), wire(&["START", "HEALTHY"])), 0..2),
                ),
            );
            (basics, more).prop_map(|(b, m)| dom::ContainerDefinition {
                name: b.0,
                image: b.1,
                essential: b.2,
                docker_labels: b.3,
                health_check: b
                    .4
                    .map(
                        |(command, interval, timeout, retries, start_period)| dom::HealthCheck {
                            command,
                            interval,
                            timeout,
                            retries,
                            start_period,
                        },
                    ),
                cpu: b.5,
                memory: b.6,
                command: b.7,
                environment: b.8,
                secrets: b.9,
                port_mappings: m
                    .0
                    .into_iter()
                    .map(
                        |(container_port, host_port, protocol, name)| dom::PortMapping {
                            container_port,
                            host_port,
                            protocol,
                            name,
                            ..Default::default()
                        },
                    )
                    .collect(),
                log_configuration: m.1.map(|(log_driver, options, secret_options)| {
                    dom::LogConfiguration {
                        log_driver,
                        options,
                        secret_options,
                    }
                }),
                ulimits: m
                    .2
                    .into_iter()
                    .map(|(name, soft_limit, hard_limit)| dom::Ulimit {
                        name,
                        soft_limit,
                        hard_limit,
                    })
                    .collect(),
                linux_parameters: m.3.map(|(init_process_enabled, devices, tmpfs)| {
                    dom::LinuxParameters {
                        init_process_enabled,
                        devices: devices
                            .into_iter()
                            .map(|(host_path, container_path, permissions)| dom::Device {
                                host_path,
                                container_path,
                                permissions,
                            })
                            .collect(),
                        tmpfs: tmpfs
                            .into_iter()
                            .map(|(container_path, size, mount_options)| dom::Tmpfs {
                                container_path,
                                size,
                                mount_options,
                            })
                            .collect(),
                        ..Default::default()
                    }
                }),
                resource_requirements: m
                    .4
                    .into_iter()
                    .map(|(value, r#type, mps)| dom::ResourceRequirement {
                        value,
                        r#type,
                        sharing_strategy: mps.map(|(memory, max_compute_percent)| {
                            dom::SharingStrategy {
                                nvidia_mps: Some(dom::NvidiaMpsAllocation {
                                    memory,
                                    max_compute_percent,
                                }),
                            }
                        }),
                    })
                    .collect(),
                restart_policy: m
                    .5
                    .map(|(enabled, ignored_exit_codes, restart_attempt_period)| {
                        dom::RestartPolicy {
                            enabled,
                            ignored_exit_codes,
                            restart_attempt_period,
                        }
                    }),
                user: m.6.0,
                version_consistency: m.6.1,
                depends_on: m
                    .6
                    .2
                    .into_iter()
                    .map(|(container_name, condition)| dom::ContainerDependency {
                        container_name,
                        condition,
                    })
                    .collect(),
                ..Default::default()
            })
        }

        fn spec() -> impl Strategy<Value = dom::TaskDefinitionSpec> {
            let basics = (
                text(),
                vec(container(), 0..3),
                btree_map(text(), text(), 0..3),
                of(text()),
                of(text()),
                of(wire(&["bridge", "host", "awsvpc", "none"])),
                vec(wire(&["EC2", "FARGATE", "EXTERNAL"]), 0..2),
                of(text()),
                of(text()),
                of(any::<bool>()),
            );
            let volumes = vec(
                (
                    of(text()),
                    of(of(text())),
                    of((
                        of(wire(&["task", "shared"])),
                        of(any::<bool>()),
                        btree_map(text(), text(), 0..2),
                    )),
                    of((
                        text(),
                        of(text()),
                        of(wire(&["ENABLED", "DISABLED"])),
                        of((of(text()), of(wire(&["ENABLED", "DISABLED"])))),
                    )),
                    of((text(), text(), of((text(), text())))),
                ),
                0..3,
            );
            let rest = (
                volumes,
                vec((of(wire(&["memberOf"])), of(text())), 0..2),
                of(any::<i32>()),
                of((
                    of(wire(&["X86_64", "ARM64"])),
                    of(wire(&["LINUX", "WINDOWS_SERVER_2022_CORE"])),
                )),
                of((of(wire(&["APPMESH"])), text(), key_values())),
                (
                    of(wire(&["host", "task"])),
                    of(wire(&["host", "task", "none"])),
                ),
            );
            (basics, rest).prop_map(|(b, r)| dom::TaskDefinitionSpec {
                family: b.0,
                container_definitions: b.1,
                tags: b.2,
                task_role_arn: b.3,
                execution_role_arn: b.4,
                network_mode: b.5,
                requires_compatibilities: b.6,
                cpu: b.7,
                memory: b.8,
                enable_fault_injection: b.9,
                volumes: r
                    .0
                    .into_iter()
                    .map(|(name, host, docker, efs, fsx)| dom::Volume {
                        name,
                        host: host.map(|source_path| dom::HostVolume { source_path }),
                        docker_volume_configuration: docker.map(
                            |(scope, autoprovision, labels)| dom::DockerVolumeConfiguration {
                                scope,
                                autoprovision,
                                labels,
                                ..Default::default()
                            },
                        ),
                        efs_volume_configuration: efs.map(
                            |(file_system_id, root_directory, transit_encryption, auth)| {
                                dom::EfsVolumeConfiguration {
                                    file_system_id,
                                    root_directory,
                                    transit_encryption,
                                    authorization_config: auth.map(|(access_point_id, iam)| {
                                        dom::EfsAuthorizationConfig {
                                            access_point_id,
                                            iam,
                                        }
                                    }),
                                    ..Default::default()
                                }
                            },
                        ),
                        fsx_windows_file_server_volume_configuration: fsx.map(
                            |(file_system_id, root_directory, auth)| {
                                dom::FsxWindowsFileServerVolumeConfiguration {
                                    file_system_id,
                                    root_directory,
                                    authorization_config: auth.map(
                                        |(credentials_parameter, domain)| {
                                            dom::FsxWindowsFileServerAuthorizationConfig {
                                                credentials_parameter,
                                                domain,
                                            }
                                        },
                                    ),
                                }
                            },
                        ),
                        ..Default::default()
                    })
                    .collect(),
                placement_constraints: r
                    .1
                    .into_iter()
                    .map(|(r#type, expression)| dom::PlacementConstraint { r#type, expression })
                    .collect(),
                ephemeral_storage: r.2.map(|size_in_gib| dom::EphemeralStorage { size_in_gib }),
                runtime_platform: r.3.map(|(cpu_architecture, operating_system_family)| {
                    dom::RuntimePlatform {
                        cpu_architecture,
                        operating_system_family,
                    }
                }),
                proxy_configuration: r.4.map(|(r#type, container_name, properties)| {
                    dom::ProxyConfiguration {
                        r#type,
                        container_name,
                        properties,
                    }
                }),
                pid_mode: r.5.0,
                ipc_mode: r.5.1,
                ..Default::default()
            })
        }

        proptest! {
            /// Any spec survives register → describe unchanged: the AWS
            /// mapping loses nothing (values, absence, unknown enum values).
            #[test]
            fn any_spec_survives_register_then_describe(spec in spec()) {
                let request = register_request(offline_client().register_task_definition(), &spec).unwrap();
                let (td, tags) = as_registered(request.as_input().clone().build().unwrap());
                prop_assert_eq!(spec_from_sdk(td, tags), spec);
            }
        }
    }
}
