//! SDK services, deployments and tasks in domain terms, and the domain
//! deployment configuration laid over the service's own.

use aws_sdk_ecs::types as sdk;
use chrono::{DateTime, Utc};

use crate::api::{
    BreakerThreshold, CircuitBreaker, ContainerState, Deployment, DeploymentAlarms,
    DeploymentConfiguration, DeploymentStatus, HealthStatus, RolloutState, ServiceDeploymentInfo,
    ServiceDescription, ServiceEvent, TaskDescription, ThresholdKind,
};

/// An SDK timestamp as a chrono one (`None` if out of chrono's range).
pub(crate) fn time(value: Option<aws_smithy_types::DateTime>) -> Option<DateTime<Utc>> {
    let value = value?;
    DateTime::from_timestamp(value.secs(), value.subsec_nanos())
}

fn deployment_status(value: Option<&str>) -> Option<DeploymentStatus> {
    match value? {
        "PRIMARY" => Some(DeploymentStatus::Primary),
        "ACTIVE" => Some(DeploymentStatus::Active),
        "INACTIVE" => Some(DeploymentStatus::Inactive),
        _ => None,
    }
}

fn rollout_state(value: Option<&sdk::DeploymentRolloutState>) -> Option<RolloutState> {
    match value? {
        sdk::DeploymentRolloutState::InProgress => Some(RolloutState::InProgress),
        sdk::DeploymentRolloutState::Completed => Some(RolloutState::Completed),
        sdk::DeploymentRolloutState::Failed => Some(RolloutState::Failed),
        _ => None,
    }
}

fn health(value: Option<&sdk::HealthStatus>) -> HealthStatus {
    match value {
        Some(sdk::HealthStatus::Healthy) => HealthStatus::Healthy,
        Some(sdk::HealthStatus::Unhealthy) => HealthStatus::Unhealthy,
        _ => HealthStatus::Unknown,
    }
}

/// One SDK deployment in domain terms.
pub(crate) fn deployment_from_sdk(d: sdk::Deployment) -> Deployment {
    Deployment {
        status: deployment_status(d.status.as_deref()),
        rollout_state: rollout_state(d.rollout_state.as_ref()),
        id: d.id.unwrap_or_default(),
        task_definition_arn: d.task_definition.unwrap_or_default(),
        rollout_state_reason: d.rollout_state_reason,
        desired_count: d.desired_count,
        pending_count: d.pending_count,
        running_count: d.running_count,
        failed_tasks: d.failed_tasks,
        created_at: time(d.created_at),
        updated_at: time(d.updated_at),
    }
}

/// The parts of a deployment configuration a rollout cares about.
pub(crate) fn deployment_configuration_from_sdk(
    c: Option<&sdk::DeploymentConfiguration>,
) -> DeploymentConfiguration {
    let Some(c) = c else {
        return DeploymentConfiguration::default();
    };
    DeploymentConfiguration {
        minimum_healthy_percent: c.minimum_healthy_percent,
        maximum_percent: c.maximum_percent,
        circuit_breaker: c
            .deployment_circuit_breaker
            .as_ref()
            .map(|b| CircuitBreaker {
                enable: b.enable,
                rollback: b.rollback,
                reset_on_healthy_task: b.reset_on_healthy_task,
                // A type this crate does not know reads as unset (ECS's
                // default); the overlay below keeps the service's own.
                threshold: b.threshold_configuration.as_ref().and_then(|t| {
                    Some(BreakerThreshold {
                        kind: ThresholdKind::parse(t.r#type.as_str())?,
                        value: t.value,
                    })
                }),
            }),
    }
}

/// `wanted` laid over the service's current configuration: minimum/maximum
/// percent and the circuit breaker's `enable` and `rollback` are replaced
/// where `wanted` sets them, and its `resetOnHealthyTask` and
/// `thresholdConfiguration` where `wanted` sets those; everything else the
/// service has (the breaker's other settings, alarms, strategy, bake time,
/// lifecycle hooks, …) is kept.
pub(crate) fn overlay_deployment_configuration(
    current: Option<sdk::DeploymentConfiguration>,
    wanted: &DeploymentConfiguration,
) -> sdk::DeploymentConfiguration {
    let mut c = current.unwrap_or_else(|| sdk::DeploymentConfiguration::builder().build());
    if wanted.minimum_healthy_percent.is_some() {
        c.minimum_healthy_percent = wanted.minimum_healthy_percent;
    }
    if wanted.maximum_percent.is_some() {
        c.maximum_percent = wanted.maximum_percent;
    }
    if let Some(b) = wanted.circuit_breaker {
        let mut breaker = c
            .deployment_circuit_breaker
            .take()
            .unwrap_or_else(|| sdk::DeploymentCircuitBreaker::builder().build());
        breaker.enable = b.enable;
        breaker.rollback = b.rollback;
        if b.reset_on_healthy_task.is_some() {
            breaker.reset_on_healthy_task = b.reset_on_healthy_task;
        }
        if let Some(t) = b.threshold {
            // Both required members are set, so the build cannot fail.
            breaker.threshold_configuration = sdk::ThresholdConfiguration::builder()
                .r#type(sdk::ThresholdType::from(t.kind.as_str()))
                .value(t.value)
                .build()
                .ok();
        }
        c.deployment_circuit_breaker = Some(breaker);
    }
    c
}

/// One SDK service in domain terms; deployments are ordered PRIMARY first,
/// then as ECS listed them.
pub(crate) fn service_from_sdk(s: sdk::Service) -> ServiceDescription {
    let mut deployments: Vec<Deployment> = s
        .deployments
        .unwrap_or_default()
        .into_iter()
        .map(deployment_from_sdk)
        .collect();
    deployments.sort_by_key(|d| d.status != Some(DeploymentStatus::Primary));
    ServiceDescription {
        deployment_configuration: deployment_configuration_from_sdk(
            s.deployment_configuration.as_ref(),
        ),
        deployment_strategy: s
            .deployment_configuration
            .as_ref()
            .and_then(|c| c.strategy.as_ref())
            .map(|s| s.as_str().to_owned()),
        ecs_bake_time: s
            .deployment_configuration
            .as_ref()
            .and_then(|c| c.bake_time_in_minutes)
            .map(|m| std::time::Duration::from_secs(u64::from(m.max(0).unsigned_abs()) * 60)),
        deployment_alarms: s
            .deployment_configuration
            .as_ref()
            .and_then(|c| c.alarms.as_ref())
            .map(|a| DeploymentAlarms {
                alarm_names: a.alarm_names.clone(),
                enable: a.enable,
                rollback: a.rollback,
            }),
        service_arn: s.service_arn.unwrap_or_default(),
        service_name: s.service_name.unwrap_or_default(),
        cluster_arn: s.cluster_arn.unwrap_or_default(),
        status: s.status.unwrap_or_default(),
        task_definition_arn: s.task_definition.unwrap_or_default(),
        desired_count: s.desired_count,
        running_count: s.running_count,
        pending_count: s.pending_count,
        deployments,
        deployment_controller: s
            .deployment_controller
            .map(|c| c.r#type.as_str().to_owned()),
        events: s
            .events
            .unwrap_or_default()
            .into_iter()
            .map(|e| ServiceEvent {
                id: e.id.unwrap_or_default(),
                created_at: time(e.created_at),
                message: e.message.unwrap_or_default(),
            })
            .collect(),
    }
}

/// One SDK task in domain terms. `essential` says, per container name,
/// whether the task definition marks it essential (empty when unknown).
pub(crate) fn task_from_sdk(
    t: sdk::Task,
    essential: &std::collections::HashMap<String, bool>,
) -> TaskDescription {
    TaskDescription {
        health_status: health(t.health_status.as_ref()),
        stop_code: t.stop_code.map(|c| c.as_str().to_owned()),
        task_arn: t.task_arn.unwrap_or_default(),
        task_definition_arn: t.task_definition_arn.unwrap_or_default(),
        started_by: t.started_by,
        last_status: t.last_status.unwrap_or_default(),
        desired_status: t.desired_status.unwrap_or_default(),
        stopped_reason: t.stopped_reason,
        containers: t
            .containers
            .unwrap_or_default()
            .into_iter()
            .map(|c| {
                let name = c.name.unwrap_or_default();
                ContainerState {
                    essential: essential.get(&name).copied(),
                    health_status: health(c.health_status.as_ref()),
                    image: c.image.unwrap_or_default(),
                    image_digest: c.image_digest,
                    last_status: c.last_status.unwrap_or_default(),
                    exit_code: c.exit_code,
                    reason: c.reason,
                    name,
                }
            })
            .collect(),
        started_at: time(t.started_at),
        stopped_at: time(t.stopped_at),
    }
}

/// One SDK service deployment in domain terms; `task_definition_of` maps a
/// service-revision ARN to its task definition.
pub(crate) fn service_deployment_from_sdk(
    d: sdk::ServiceDeployment,
    task_definition_of: impl Fn(&str) -> Option<String>,
) -> ServiceDeploymentInfo {
    ServiceDeploymentInfo {
        arn: d.service_deployment_arn.unwrap_or_default(),
        status: d.status.map(|s| s.as_str().to_owned()).unwrap_or_default(),
        status_reason: d.status_reason,
        target_task_definition_arn: d
            .target_service_revision
            .and_then(|r| r.arn)
            .and_then(|arn| task_definition_of(&arn)),
        source_task_definition_arns: d
            .source_service_revisions
            .unwrap_or_default()
            .into_iter()
            .filter_map(|r| r.arn)
            .filter_map(|arn| task_definition_of(&arn))
            .collect(),
        started_at: time(d.started_at),
        finished_at: time(d.finished_at),
        rollback_task_definition_arn: d
            .rollback
            .and_then(|r| r.service_revision_arn)
            .and_then(|arn| task_definition_of(&arn)),
        lifecycle_stage: d.lifecycle_stage.map(|s| s.as_str().to_owned()),
        triggered_alarms: d
            .alarms
            .and_then(|a| a.triggered_alarm_names)
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployments_map_with_primary_first_and_unknown_values_kept_as_none() {
        let service = sdk::Service::builder()
            .deployments(
                sdk::Deployment::builder()
                    .id("ecs-svc/old")
                    .status("ACTIVE")
                    .task_definition("arn:td/runner:1")
                    .rollout_state(sdk::DeploymentRolloutState::Completed)
                    .build(),
            )
            .deployments(
                sdk::Deployment::builder()
                    .id("ecs-svc/new")
                    .status("PRIMARY")
                    .task_definition("arn:td/runner:2")
                    .rollout_state(sdk::DeploymentRolloutState::Failed)
                    .rollout_state_reason("circuit breaker")
                    .failed_tasks(3)
                    .desired_count(2)
                    .build(),
            )
            .deployments(
                sdk::Deployment::builder()
                    .id("ecs-svc/odd")
                    .status("SOMETHING_NEW")
                    .rollout_state(sdk::DeploymentRolloutState::from("PAUSED"))
                    .build(),
            )
            .build();
        let service = service_from_sdk(service);
        let ids: Vec<&str> = service.deployments.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["ecs-svc/new", "ecs-svc/old", "ecs-svc/odd"]);
        let primary = service.primary().unwrap();
        assert_eq!(primary.rollout_state, Some(RolloutState::Failed));
        assert_eq!(primary.failed_tasks, 3);
        assert_eq!(
            primary.rollout_state_reason.as_deref(),
            Some("circuit breaker")
        );
        assert_eq!(service.deployments[2].status, None);
        assert_eq!(service.deployments[2].rollout_state, None);
    }

    /// The service's deployment alarms and a service deployment's
    /// triggered alarms are read; a service without alarms has none.
    #[test]
    fn deployment_alarms_and_triggered_alarms_are_mapped() {
        let alarms = sdk::DeploymentAlarms::builder()
            .alarm_names("runner-5xx")
            .alarm_names("runner-latency")
            .enable(true)
            .rollback(true)
            .build()
            .unwrap();
        let service = service_from_sdk(
            sdk::Service::builder()
                .deployment_configuration(
                    sdk::DeploymentConfiguration::builder()
                        .alarms(alarms)
                        .build(),
                )
                .build(),
        );
        let read = service.deployment_alarms.unwrap();
        assert_eq!(read.alarm_names, ["runner-5xx", "runner-latency"]);
        assert!(read.enable && read.rollback && read.rolls_back());
        assert_eq!(
            service_from_sdk(sdk::Service::builder().build()).deployment_alarms,
            None
        );

        let sd = service_deployment_from_sdk(
            sdk::ServiceDeployment::builder()
                .service_deployment_arn("arn:sd/1")
                .alarms(
                    sdk::ServiceDeploymentAlarms::builder()
                        .alarm_names("runner-5xx")
                        .triggered_alarm_names("runner-5xx")
                        .build(),
                )
                .build(),
            |_| None,
        );
        assert_eq!(sd.triggered_alarms, ["runner-5xx"]);
        let quiet =
            service_deployment_from_sdk(sdk::ServiceDeployment::builder().build(), |_| None);
        assert!(quiet.triggered_alarms.is_empty());
    }

    #[test]
    fn deployment_controller_is_mapped_and_unknown_values_kept() {
        let cases = [
            (None, None, true),
            (Some(sdk::DeploymentControllerType::Ecs), Some("ECS"), true),
            (
                Some(sdk::DeploymentControllerType::CodeDeploy),
                Some("CODE_DEPLOY"),
                false,
            ),
            (
                Some(sdk::DeploymentControllerType::External),
                Some("EXTERNAL"),
                false,
            ),
            (
                Some(sdk::DeploymentControllerType::from("SOMETHING_NEW")),
                Some("SOMETHING_NEW"),
                false,
            ),
        ];
        for (controller, expected, ecs) in cases {
            let mut service = sdk::Service::builder();
            if let Some(c) = controller {
                service = service.deployment_controller(
                    sdk::DeploymentController::builder()
                        .r#type(c)
                        .build()
                        .unwrap(),
                );
            }
            let service = service_from_sdk(service.build());
            assert_eq!(service.deployment_controller.as_deref(), expected);
            assert_eq!(service.has_ecs_controller(), ecs, "{expected:?}");
        }
    }

    #[test]
    fn overlay_keeps_what_the_service_has_and_replaces_what_is_wanted() {
        let current = sdk::DeploymentConfiguration::builder()
            .minimum_healthy_percent(50)
            .maximum_percent(150)
            .bake_time_in_minutes(7)
            .alarms(
                sdk::DeploymentAlarms::builder()
                    .alarm_names("high-errors")
                    .enable(true)
                    .rollback(true)
                    .build()
                    .unwrap(),
            )
            .build();
        let cases = [
            (
                DeploymentConfiguration::safe_rolling(),
                Some(100),
                Some(200),
                Some((true, true)),
            ),
            (
                DeploymentConfiguration::default(),
                Some(50),
                Some(150),
                None,
            ),
            (
                DeploymentConfiguration {
                    maximum_percent: Some(300),
                    ..Default::default()
                },
                Some(50),
                Some(300),
                None,
            ),
        ];
        for (wanted, min, max, breaker) in cases {
            let out = overlay_deployment_configuration(Some(current.clone()), &wanted);
            assert_eq!(out.minimum_healthy_percent, min, "{wanted:?}");
            assert_eq!(out.maximum_percent, max, "{wanted:?}");
            assert_eq!(
                out.deployment_circuit_breaker
                    .map(|b| (b.enable, b.rollback)),
                breaker,
                "{wanted:?}"
            );
            assert_eq!(out.bake_time_in_minutes, Some(7));
            assert_eq!(out.alarms, current.alarms);
        }
    }

    /// The Fix policy turns rollback on; the breaker's own settings
    /// (`resetOnHealthyTask`, `thresholdConfiguration`, even of a type this
    /// crate does not know) survive the overlay, and read back as the domain
    /// breaker.
    #[test]
    fn overlay_keeps_the_breakers_other_settings() {
        let threshold = |kind: &str, value| {
            sdk::ThresholdConfiguration::builder()
                .r#type(sdk::ThresholdType::from(kind))
                .value(value)
                .build()
                .unwrap()
        };
        for kind in ["COUNT", "SOME_FUTURE_TYPE"] {
            let current = sdk::DeploymentConfiguration::builder()
                .deployment_circuit_breaker(
                    sdk::DeploymentCircuitBreaker::builder()
                        .enable(true)
                        .rollback(false)
                        .reset_on_healthy_task(false)
                        .threshold_configuration(threshold(kind, 2))
                        .build(),
                )
                .build();
            let out = overlay_deployment_configuration(
                Some(current),
                &DeploymentConfiguration::safe_rolling(),
            );
            let breaker = out.deployment_circuit_breaker.clone().unwrap();
            assert!(breaker.enable && breaker.rollback, "{kind}");
            assert_eq!(breaker.reset_on_healthy_task, Some(false), "{kind}");
            assert_eq!(breaker.threshold_configuration, Some(threshold(kind, 2)));
            let domain = deployment_configuration_from_sdk(Some(&out))
                .circuit_breaker
                .unwrap();
            assert_eq!(domain.reset_on_healthy_task, Some(false));
            let expected = (kind == "COUNT").then_some(BreakerThreshold {
                kind: ThresholdKind::Count,
                value: 2,
            });
            assert_eq!(domain.threshold, expected, "{kind}");
        }
        // A threshold the caller sets replaces the service's.
        let wanted = DeploymentConfiguration {
            circuit_breaker: Some(CircuitBreaker {
                threshold: Some(BreakerThreshold {
                    kind: ThresholdKind::UnboundedPercent,
                    value: 25,
                }),
                reset_on_healthy_task: Some(true),
                ..CircuitBreaker::enabled_with_rollback()
            }),
            ..Default::default()
        };
        let out = overlay_deployment_configuration(None, &wanted);
        let breaker = out.deployment_circuit_breaker.unwrap();
        assert_eq!(breaker.reset_on_healthy_task, Some(true));
        assert_eq!(
            breaker.threshold_configuration,
            Some(threshold("UNBOUNDED_PERCENT", 25))
        );
    }

    #[test]
    fn tasks_map_health_stop_codes_and_essential_flags() {
        let task = sdk::Task::builder()
            .task_arn("arn:task/1")
            .task_definition_arn("arn:td/runner:2")
            .started_by("ecs-svc/new")
            .last_status("STOPPED")
            .desired_status("STOPPED")
            .health_status(sdk::HealthStatus::Unhealthy)
            .stop_code(sdk::TaskStopCode::TaskFailedToStart)
            .stopped_reason("CannotPullContainerError: pull access denied")
            .stopped_at(aws_smithy_types::DateTime::from_secs(1_700_000_000))
            .containers(
                sdk::Container::builder()
                    .name("runner")
                    .image("runner:2")
                    .last_status("STOPPED")
                    .exit_code(1)
                    .reason("CannotPullContainerError")
                    .health_status(sdk::HealthStatus::Unhealthy)
                    .build(),
            )
            .containers(sdk::Container::builder().name("sidecar").build())
            .build();
        let essential = [("runner".to_owned(), true)].into_iter().collect();
        let t = task_from_sdk(task, &essential);
        assert_eq!(t.health_status, HealthStatus::Unhealthy);
        assert_eq!(t.stop_code.as_deref(), Some("TaskFailedToStart"));
        assert_eq!(t.started_by.as_deref(), Some("ecs-svc/new"));
        assert_eq!(t.stopped_at.unwrap().timestamp(), 1_700_000_000);
        assert_eq!(t.containers[0].essential, Some(true));
        assert_eq!(t.containers[0].exit_code, Some(1));
        assert_eq!(t.containers[1].essential, None);
        assert_eq!(t.containers[1].health_status, HealthStatus::Unknown);
    }
}
