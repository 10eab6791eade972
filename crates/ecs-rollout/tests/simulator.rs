//! The simulated ECS's own behaviour: the circuit breaker and its rollback,
//! and rolling updates that never drop below minimum healthy.

mod common;

use std::time::Duration;

use common::Fixture;
use ecs_rollout::{
    DeploymentConfiguration, DeploymentStatus, DesiredStatus, EcsApi, HealthStatus, ImageBehaviour,
    RolloutState, UpdateServiceRequest, circuit_breaker_threshold, list_all_tasks,
};
use update_clock::Clock;

async fn deploy(fx: &Fixture, image: &str, behaviour: ImageBehaviour) -> (String, String) {
    fx.sim.script_image(image, behaviour);
    let td = fx
        .sim
        .register_task_definition(&common::runner_spec(image))
        .await
        .unwrap();
    let result = fx
        .sim
        .update_service(&UpdateServiceRequest {
            cluster: "runners".into(),
            service: "runner".into(),
            task_definition: td.arn.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    (result.deployment_id, td.arn)
}

#[tokio::test]
async fn breaker_trips_at_threshold_and_rolls_back_to_the_last_completed_revision() {
    for desired in [1, 4, 10] {
        let fx = Fixture::safe(desired);
        let (ours, _) = deploy(&fx, "example.com/runner:bad", ImageBehaviour::CrashLoop).await;
        let threshold = circuit_breaker_threshold(desired) as i32;
        let mut tripped = None;
        for _ in 0..3600 {
            fx.clock.sleep(Duration::from_secs(1)).await;
            let service = fx.sim.describe_service("runners", "runner").await.unwrap();
            let d = service.deployment(&ours).unwrap().clone();
            if d.rollout_state == Some(RolloutState::Failed) {
                tripped = Some((d, service));
                break;
            }
            assert!(
                d.failed_tasks < threshold,
                "desired {desired}: {d:?} should have tripped"
            );
        }
        let (failed, service) = tripped.expect("the breaker trips");
        assert!(failed.failed_tasks >= threshold);
        assert_ne!(
            failed.status,
            Some(DeploymentStatus::Primary),
            "no longer PRIMARY"
        );
        let primary = service.primary().unwrap();
        assert_eq!(
            primary.task_definition_arn, fx.old_task_definition,
            "rolled back to the old revision"
        );
        assert!(
            primary
                .rollout_state_reason
                .as_deref()
                .unwrap()
                .contains("rolling back")
        );
        assert!(
            service
                .events
                .iter()
                .any(|e| e.message.contains(&ours) && e.message.contains("deployment failed"))
        );
    }
}

#[tokio::test]
async fn without_the_breaker_failures_grow_forever() {
    let fx = Fixture::new(
        2,
        DeploymentConfiguration {
            circuit_breaker: None,
            ..DeploymentConfiguration::safe_rolling()
        },
    );
    let (ours, arn) = deploy(&fx, "example.com/runner:bad", ImageBehaviour::CrashLoop).await;
    fx.clock.sleep(Duration::from_secs(1800)).await;
    let service = fx.sim.describe_service("runners", "runner").await.unwrap();
    let primary = service.primary().unwrap();
    assert_eq!(
        (primary.id.as_str(), primary.task_definition_arn.as_str()),
        (ours.as_str(), arn.as_str())
    );
    assert_eq!(primary.rollout_state, Some(RolloutState::InProgress));
    assert!(primary.failed_tasks > 20, "{primary:?}");
    // The old tasks keep serving: minimum healthy 100 %.
    let old = service
        .deployments
        .iter()
        .find(|d| d.task_definition_arn == fx.old_task_definition)
        .unwrap();
    assert_eq!(old.running_count, 2);
}

#[tokio::test]
async fn rolling_update_never_drops_below_desired_healthy_tasks() {
    let fx = Fixture::safe(5);
    let (ours, arn) = deploy(&fx, "example.com/runner:good", ImageBehaviour::Healthy).await;
    let mut max_live = 0;
    loop {
        fx.clock.sleep(Duration::from_secs(1)).await;
        let running = list_all_tasks(fx.sim.as_ref(), &fx.target, DesiredStatus::Running)
            .await
            .unwrap();
        max_live = max_live.max(running.len());
        let tasks = fx.sim.describe_tasks("runners", &running).await.unwrap();
        let healthy = tasks
            .iter()
            .filter(|t| t.last_status == "RUNNING" && t.health_status == HealthStatus::Healthy)
            .count();
        assert!(healthy >= 5, "only {healthy} healthy tasks");
        let service = fx.sim.describe_service("runners", "runner").await.unwrap();
        if service.deployment(&ours).unwrap().rollout_state == Some(RolloutState::Completed) {
            assert!(
                tasks
                    .iter()
                    .all(|t| t.task_definition_arn == arn || t.last_status != "RUNNING")
            );
            break;
        }
        assert!(
            fx.clock.monotonic() < Duration::from_secs(600),
            "never completed"
        );
    }
    assert!(max_live <= 10, "maximum 200 %: {max_live} tasks at once");
}
