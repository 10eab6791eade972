//! The step gate, resuming an interrupted rollout, and idempotent
//! registration, on the simulated ECS (manual clock).

mod common;

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use common::{Fixture, request};
use ecs_rollout::{
    BoxError, DeploymentConfiguration, EcsApi, Error, ErrorClass, FailureReason, ImageBehaviour,
    OpenGate, ResumePoint, Rollout, RolloutConfig, RolloutOutcome, RolloutReport, RolloutRequest,
    RolloutState, RolloutStep, SimulatedEcs, StepGate, UpdateServiceRequest, list_all_revisions,
};

/// The ECS operations that change something.
const MUTATIONS: [&str; 4] = [
    "RegisterTaskDefinition",
    "UpdateService",
    "TagResource",
    "DeregisterTaskDefinition",
];

/// Records every step; refuses the first one of kind `refuse` (the
/// serialized `step` tag) and snapshots the simulator's call counts then.
#[derive(Debug)]
struct TestGate {
    sim: Arc<SimulatedEcs>,
    refuse: Option<&'static str>,
    steps: Mutex<Vec<RolloutStep>>,
    calls_at_refusal: Mutex<Option<BTreeMap<&'static str, u64>>>,
}

impl TestGate {
    fn refusing(fx: &Fixture, refuse: &'static str) -> Arc<Self> {
        Arc::new(Self {
            sim: fx.sim.clone(),
            refuse: Some(refuse),
            steps: Mutex::new(Vec::new()),
            calls_at_refusal: Mutex::new(None),
        })
    }

    fn recording(fx: &Fixture) -> Arc<Self> {
        Arc::new(Self {
            sim: fx.sim.clone(),
            refuse: None,
            steps: Mutex::new(Vec::new()),
            calls_at_refusal: Mutex::new(None),
        })
    }

    fn steps(&self) -> Vec<RolloutStep> {
        self.steps.lock().unwrap().clone()
    }

    fn kinds(&self) -> Vec<String> {
        self.steps().iter().map(kind).collect()
    }

    fn calls_at_refusal(&self) -> BTreeMap<&'static str, u64> {
        self.calls_at_refusal.lock().unwrap().clone().unwrap()
    }

    /// The Monitoring step the gate saw: deployment id, new and previous
    /// task definition.
    fn monitoring(&self) -> (String, String, String) {
        self.steps()
            .into_iter()
            .find_map(|s| match s {
                RolloutStep::Monitoring {
                    deployment_id,
                    task_definition_arn,
                    previous_task_definition_arn,
                } => Some((
                    deployment_id,
                    task_definition_arn,
                    previous_task_definition_arn,
                )),
                _ => None,
            })
            .expect("a Monitoring step")
    }

    /// The task definition of the UpdateService step the gate saw.
    fn update_service_target(&self) -> String {
        self.steps()
            .into_iter()
            .find_map(|s| match s {
                RolloutStep::UpdateService {
                    task_definition_arn,
                    ..
                } => Some(task_definition_arn),
                _ => None,
            })
            .expect("an UpdateService step")
    }
}

#[async_trait]
impl StepGate for TestGate {
    async fn before(&self, step: &RolloutStep) -> Result<(), BoxError> {
        self.steps.lock().unwrap().push(step.clone());
        if self.refuse == Some(kind(step).as_str()) {
            *self.calls_at_refusal.lock().unwrap() = Some(self.sim.calls());
            return Err("journal write refused: fencing token is stale".into());
        }
        Ok(())
    }
}

fn kind(step: &RolloutStep) -> String {
    serde_json::to_value(step).unwrap()["step"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn gated(fx: &Fixture, config: RolloutConfig, gate: Arc<TestGate>) -> Rollout {
    fx.rollout(config).with_gate(gate)
}

fn mutations(fx: &Fixture) -> BTreeMap<&'static str, u64> {
    let calls = fx.sim.calls();
    MUTATIONS
        .iter()
        .map(|op| (*op, calls.get(op).copied().unwrap_or(0)))
        .collect()
}

fn count(fx: &Fixture, op: &str) -> u64 {
    fx.sim.calls().get(op).copied().unwrap_or(0)
}

/// Runs until the gate refuses `step` (which must happen), returning the gate.
async fn interrupted_at(fx: &Fixture, step: &'static str) -> Arc<TestGate> {
    let gate = TestGate::refusing(fx, step);
    let err = gated(fx, RolloutConfig::default(), gate.clone())
        .run(&fx.target, &request())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::StepRefused { .. }), "{err}");
    gate
}

async fn resume(fx: &Fixture, point: &ResumePoint) -> RolloutReport {
    fx.rollout(RolloutConfig::default())
        .with_gate(Arc::new(OpenGate))
        .resume(&fx.target, &request(), point)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_refused_step_stops_the_engine_before_any_further_ecs_call() {
    struct Case {
        step: &'static str,
        fx: Fixture,
        config: RolloutConfig,
    }
    let mut cases = Vec::new();
    for step in ["register_task_definition", "update_service", "monitoring"] {
        cases.push(Case {
            step,
            fx: Fixture::safe(2),
            config: RolloutConfig::default(),
        });
    }
    // A pull error fails fast; ECS does not roll back, we do.
    let fx = Fixture::safe(1);
    fx.new_image_behaves(ImageBehaviour::PullError);
    cases.push(Case {
        step: "rolling_back",
        fx,
        config: RolloutConfig::default(),
    });
    // A crash loop is rolled back by ECS; then the failed revision is tagged.
    let fx = Fixture::safe(2);
    fx.new_image_behaves(ImageBehaviour::CrashLoop);
    cases.push(Case {
        step: "mark_revision",
        fx,
        config: RolloutConfig::default(),
    });
    // Retention after a success: two stale revisions, keep 2.
    let fx = Fixture::safe(1);
    for tag in ["stale1", "stale2"] {
        fx.sim
            .register_task_definition(&common::runner_spec(&format!(
                "registry.example.com:5000/team/runner:{tag}"
            )))
            .await
            .unwrap();
    }
    cases.push(Case {
        step: "deregister",
        fx,
        config: RolloutConfig {
            keep_revisions: Some(2),
            ..Default::default()
        },
    });

    for Case { step, fx, config } in cases {
        let gate = TestGate::refusing(&fx, step);
        let err = gated(&fx, config, gate.clone())
            .run(&fx.target, &request())
            .await
            .unwrap_err();
        let Error::StepRefused { step: what, .. } = &err else {
            panic!("{step}: expected StepRefused, got {err}");
        };
        assert_eq!(err.class(), Some(ErrorClass::Permanent), "{step}");
        assert!(!err.is_retryable(), "{step}");
        let text = err.to_string();
        assert!(
            text.contains(what.as_str()) && text.contains("stopped before"),
            "{step}: {text}"
        );
        assert!(
            text.contains("fencing token is stale"),
            "{step}: the gate's reason is shown: {text}"
        );
        assert_eq!(
            gate.kinds().last().map(String::as_str),
            Some(step),
            "{step}: the refused step is the last one asked"
        );
        assert_eq!(
            fx.sim.calls(),
            gate.calls_at_refusal(),
            "{step}: no ECS call at all after the refusal"
        );
        let after = mutations(&fx);
        let at = gate.calls_at_refusal();
        for op in MUTATIONS {
            assert_eq!(
                after[op],
                at.get(op).copied().unwrap_or(0),
                "{step}: {op} after the refusal"
            );
        }
        if step == "deregister" {
            let Some(RolloutStep::Deregister {
                task_definition_arns,
            }) = gate.steps().last().cloned()
            else {
                panic!("no Deregister step");
            };
            assert_eq!(task_definition_arns.len(), 1, "{task_definition_arns:?}");
            assert!(task_definition_arns[0].ends_with("gitpod-runner:2"));
        }
    }
}

#[tokio::test]
async fn the_gate_sees_every_step_of_a_rollout_in_order() {
    // Success without anything to deregister: no Deregister step at all.
    let fx = Fixture::safe(2);
    let gate = TestGate::recording(&fx);
    let report = gated(
        &fx,
        RolloutConfig {
            keep_revisions: Some(2),
            ..Default::default()
        },
        gate.clone(),
    )
    .run(&fx.target, &request())
    .await
    .unwrap();
    assert!(report.outcome.is_success(), "{:#?}", report.outcome);
    assert_eq!(
        gate.kinds(),
        ["register_task_definition", "update_service", "monitoring"]
    );

    // Our own rollback and the mark of the failed revision.
    let fx = Fixture::safe(1);
    fx.new_image_behaves(ImageBehaviour::PullError);
    let gate = TestGate::recording(&fx);
    let report = gated(&fx, RolloutConfig::default(), gate.clone())
        .run(&fx.target, &request())
        .await
        .unwrap();
    assert!(
        matches!(report.outcome, RolloutOutcome::RolledBackByUs { .. }),
        "{:#?}",
        report.outcome
    );
    assert_eq!(
        gate.kinds(),
        [
            "register_task_definition",
            "update_service",
            "monitoring",
            "rolling_back",
            "mark_revision"
        ]
    );
}

#[tokio::test]
async fn resume_from_deployed_after_the_deployment_completed_succeeds() {
    // The updater ran inside the service and was replaced by the new task
    // before it could monitor: the deployment completes without it.
    let fx = Fixture::safe(2);
    let gate = interrupted_at(&fx, "monitoring").await;
    let (deployment_id, new_td, previous) = gate.monitoring();
    fx.clock.advance(Duration::from_secs(600));
    let service = fx.sim.peek_service("runners", "runner").unwrap();
    let primary = service.primary().unwrap();
    assert_eq!(primary.id, deployment_id);
    assert_eq!(primary.rollout_state, Some(RolloutState::Completed));

    let before = mutations(&fx);
    let report = resume(
        &fx,
        &ResumePoint::Deployed {
            deployment_id: deployment_id.clone(),
            task_definition_arn: new_td.clone(),
            previous_task_definition_arn: previous.clone(),
        },
    )
    .await;
    let RolloutOutcome::Succeeded { evidence } = &report.outcome else {
        panic!("expected Succeeded, got {:#?}", report.outcome);
    };
    assert_eq!(evidence.deployment_id, deployment_id);
    assert_eq!(evidence.task_definition_arn, new_td);
    assert_eq!(evidence.previous_task_definition_arn, previous);
    assert!(
        evidence.deployment_duration >= RolloutConfig::default().monitor.bake_time,
        "the bake time is still waited for: {:?}",
        evidence.deployment_duration
    );
    assert_eq!(mutations(&fx), before, "resume changed nothing in ECS");
    assert_eq!(count(&fx, "RegisterTaskDefinition"), 1);
    assert_eq!(count(&fx, "UpdateService"), 1);
}

#[tokio::test]
async fn resume_from_deployed_on_a_crash_loop_reports_the_ecs_rollback() {
    // Resumed while the deployment is still failing, and after ECS has
    // already rolled it back.
    for gap in [Duration::ZERO, Duration::from_secs(900)] {
        let fx = Fixture::safe(2);
        fx.new_image_behaves(ImageBehaviour::CrashLoop);
        let gate = interrupted_at(&fx, "monitoring").await;
        let (deployment_id, new_td, previous) = gate.monitoring();
        fx.clock.advance(gap);
        let report = resume(
            &fx,
            &ResumePoint::Deployed {
                deployment_id,
                task_definition_arn: new_td.clone(),
                previous_task_definition_arn: previous.clone(),
            },
        )
        .await;
        let RolloutOutcome::RolledBackByEcs {
            reason, rollback, ..
        } = &report.outcome
        else {
            panic!(
                "gap {gap:?}: expected RolledBackByEcs, got {:#?}",
                report.outcome
            );
        };
        assert!(
            matches!(reason, FailureReason::CircuitBreaker { .. }),
            "{reason:?}"
        );
        assert!(rollback.completed, "{rollback:?}");
        assert_eq!(rollback.task_definition_arn, previous);
        let quarantine = report.quarantine.as_ref().expect("a quarantine notice");
        assert_eq!(quarantine.version.as_deref(), Some("20250102.1"));
        assert_eq!(quarantine.outcome, "rolled_back_by_ecs");
        assert_eq!(quarantine.task_definition_arn, new_td);
        assert_eq!(count(&fx, "RegisterTaskDefinition"), 1);
        assert_eq!(count(&fx, "UpdateService"), 1, "no deployment by us");
        assert_eq!(
            fx.sim
                .peek_service("runners", "runner")
                .unwrap()
                .task_definition_arn,
            previous
        );
    }
}

#[tokio::test]
async fn resume_from_registered_adopts_a_deployment_that_landed() {
    // UpdateService went through but the process died before journalling it.
    let fx = Fixture::safe(2);
    let gate = interrupted_at(&fx, "monitoring").await;
    let (deployment_id, new_td, previous) = gate.monitoring();
    let report = resume(
        &fx,
        &ResumePoint::Registered {
            task_definition_arn: new_td.clone(),
            previous_task_definition_arn: previous,
            previous_deployment_id: None,
        },
    )
    .await;
    let RolloutOutcome::Succeeded { evidence } = &report.outcome else {
        panic!("expected Succeeded, got {:#?}", report.outcome);
    };
    assert_eq!(
        evidence.deployment_id, deployment_id,
        "adopted, not redeployed"
    );
    assert_eq!(
        count(&fx, "UpdateService"),
        1,
        "one forward deployment in total"
    );
    assert_eq!(count(&fx, "RegisterTaskDefinition"), 1);
    let service = fx.sim.peek_service("runners", "runner").unwrap();
    let of_new: Vec<_> = service
        .deployments
        .iter()
        .filter(|d| d.task_definition_arn == new_td)
        .collect();
    assert_eq!(of_new.len(), 1, "{:#?}", service.deployments);
}

#[tokio::test]
async fn resume_from_registered_deploys_once_when_update_service_never_landed() {
    let fx = Fixture::safe(2);
    let gate = interrupted_at(&fx, "update_service").await;
    let new_td = gate.update_service_target();
    assert_eq!(count(&fx, "UpdateService"), 0);
    let resumed = TestGate::recording(&fx);
    let report = fx
        .rollout(RolloutConfig::default())
        .with_gate(resumed.clone())
        .resume(
            &fx.target,
            &request(),
            &ResumePoint::Registered {
                task_definition_arn: new_td.clone(),
                previous_task_definition_arn: fx.old_task_definition.clone(),
                previous_deployment_id: None,
            },
        )
        .await
        .unwrap();
    let RolloutOutcome::Succeeded { evidence } = &report.outcome else {
        panic!("expected Succeeded, got {:#?}", report.outcome);
    };
    assert_eq!(evidence.task_definition_arn, new_td);
    assert_eq!(resumed.kinds(), ["update_service", "monitoring"]);
    assert_eq!(count(&fx, "UpdateService"), 1);
    assert_eq!(count(&fx, "RegisterTaskDefinition"), 1);
    assert_eq!(
        fx.sim
            .peek_service("runners", "runner")
            .unwrap()
            .task_definition_arn,
        new_td
    );
}

#[tokio::test]
async fn resume_after_someone_else_deployed_is_superseded_without_changes() {
    let problems = superseded_after_someone_else_deployed(Fixture::safe(2)).await;
    assert!(problems.is_empty(), "{problems:?}");
}

/// As above on a service whose deployment configuration is unsafe (no
/// circuit breaker): the Superseded evidence still reports the problems,
/// and nothing is changed (the fix would have come with our UpdateService).
#[tokio::test]
async fn resume_after_someone_else_deployed_reports_the_unsafe_configuration() {
    let fx = Fixture::new(2, DeploymentConfiguration::default());
    let problems = superseded_after_someone_else_deployed(fx).await;
    assert!(!problems.is_empty());
    assert!(
        problems.iter().any(|p| p.contains("circuit breaker")),
        "{problems:?}"
    );
}

/// Interrupts a rollout at its `UpdateService`, deploys a hotfix as
/// someone else, resumes from `Registered`: Superseded, no mutation.
/// Returns the evidence's configuration problems.
async fn superseded_after_someone_else_deployed(fx: Fixture) -> Vec<String> {
    let gate = interrupted_at(&fx, "update_service").await;
    let new_td = gate.update_service_target();
    let hotfix = fx
        .sim
        .register_task_definition(&common::runner_spec(
            "registry.example.com:5000/team/runner:hotfix",
        ))
        .await
        .unwrap();
    fx.sim
        .update_service(&UpdateServiceRequest {
            cluster: "runners".into(),
            service: "runner".into(),
            task_definition: hotfix.arn.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    let before = mutations(&fx);
    let resumed = TestGate::recording(&fx);
    let report = fx
        .rollout(RolloutConfig::default())
        .with_gate(resumed.clone())
        .resume(
            &fx.target,
            &request(),
            &ResumePoint::Registered {
                task_definition_arn: new_td.clone(),
                previous_task_definition_arn: fx.old_task_definition.clone(),
                previous_deployment_id: None,
            },
        )
        .await
        .unwrap();
    let RolloutOutcome::Superseded {
        task_definition_arn,
        evidence,
        ..
    } = &report.outcome
    else {
        panic!("expected Superseded, got {:#?}", report.outcome);
    };
    assert_eq!(task_definition_arn, &hotfix.arn);
    assert_eq!(evidence.task_definition_arn, new_td);
    assert_eq!(
        evidence.previous_task_definition_arn,
        fx.old_task_definition
    );
    assert!(report.quarantine.is_none());
    assert!(resumed.kinds().is_empty(), "{:?}", resumed.kinds());
    assert_eq!(mutations(&fx), before, "no mutation");
    assert_eq!(
        fx.sim
            .peek_service("runners", "runner")
            .unwrap()
            .task_definition_arn,
        hotfix.arn
    );
    evidence.configuration_problems.clone()
}

#[tokio::test]
async fn resume_refuses_a_point_of_another_request() {
    let fx = Fixture::safe(1);
    let gate = interrupted_at(&fx, "update_service").await;
    let other = RolloutRequest {
        image: "registry.example.com:5000/team/runner:20250109.1"
            .parse()
            .unwrap(),
        version: "20250109.1".parse().unwrap(),
    };
    let before = mutations(&fx);
    let err = fx
        .rollout(RolloutConfig::default())
        .resume(
            &fx.target,
            &other,
            &ResumePoint::Registered {
                task_definition_arn: gate.update_service_target(),
                previous_task_definition_arn: fx.old_task_definition.clone(),
                previous_deployment_id: None,
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidTaskDefinition { .. }), "{err}");
    assert_eq!(mutations(&fx), before);
}

#[tokio::test]
async fn a_run_after_an_interrupted_one_reuses_the_registered_clone() {
    let fx = Fixture::safe(2);
    let gate = interrupted_at(&fx, "update_service").await;
    let first = gate.update_service_target();
    let revisions = list_all_revisions(fx.sim.as_ref(), "gitpod-runner")
        .await
        .unwrap();
    assert_eq!(revisions.len(), 2, "{revisions:?}");

    let second = TestGate::recording(&fx);
    let report = gated(&fx, RolloutConfig::default(), second.clone())
        .run(&fx.target, &request())
        .await
        .unwrap();
    let RolloutOutcome::Succeeded { evidence } = &report.outcome else {
        panic!("expected Succeeded, got {:#?}", report.outcome);
    };
    assert_eq!(evidence.task_definition_arn, first, "the clone is reused");
    assert_eq!(
        second.kinds(),
        ["update_service", "monitoring"],
        "reuse is no registration"
    );
    assert_eq!(count(&fx, "RegisterTaskDefinition"), 1);
    let revisions = list_all_revisions(fx.sim.as_ref(), "gitpod-runner")
        .await
        .unwrap();
    assert_eq!(revisions.len(), 2, "the family grew by exactly one");
}

#[tokio::test]
async fn resume_points_serialize_with_an_at_tag() {
    let point = ResumePoint::Deployed {
        deployment_id: "ecs-svc/1".into(),
        task_definition_arn: "runner:2".into(),
        previous_task_definition_arn: "runner:1".into(),
    };
    let json = serde_json::to_value(&point).unwrap();
    assert_eq!(json["at"], "deployed");
    assert_eq!(serde_json::from_value::<ResumePoint>(json).unwrap(), point);
    let step = RolloutStep::Deregister {
        task_definition_arns: vec!["runner:1".into()],
    };
    assert_eq!(serde_json::to_value(&step).unwrap()["step"], "deregister");
}

/// Timeline: the orchestrator journalled the clone and died around its
/// `UpdateService`; before anyone resumed, the previous task definition was
/// deployed again (an operator's rollback, or a force-new-deployment of it),
/// and our deployment, if it landed, is gone from the list. The resumed
/// rollout must not deploy the clone over that: Superseded, no change.
/// (Found by the simulation campaign's kill right after `UpdateService`.)
#[tokio::test]
async fn resume_from_registered_after_the_previous_revision_was_redeployed_is_superseded() {
    let fx = Fixture::safe(2);
    let gate = interrupted_at(&fx, "update_service").await;
    let new_td = gate.update_service_target();
    let before = fx.sim.peek_service("runners", "runner").unwrap();
    let journalled_primary = before.primary().unwrap().id.clone();
    fx.sim
        .update_service(&UpdateServiceRequest {
            cluster: "runners".into(),
            service: "runner".into(),
            task_definition: fx.old_task_definition.clone(),
            force_new_deployment: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let report = fx
        .rollout(RolloutConfig::default())
        .resume(
            &fx.target,
            &request(),
            &ResumePoint::Registered {
                task_definition_arn: new_td.clone(),
                previous_task_definition_arn: fx.old_task_definition.clone(),
                previous_deployment_id: Some(journalled_primary.clone()),
            },
        )
        .await
        .unwrap();
    let RolloutOutcome::Superseded {
        by_deployment_id,
        task_definition_arn,
        ..
    } = &report.outcome
    else {
        panic!("expected Superseded, got {:#?}", report.outcome);
    };
    assert_ne!(by_deployment_id, &journalled_primary);
    assert_eq!(task_definition_arn, &fx.old_task_definition);
    assert_eq!(count(&fx, "UpdateService"), 1, "the operator's only");
    assert_eq!(
        fx.sim
            .peek_service("runners", "runner")
            .unwrap()
            .task_definition_arn,
        fx.old_task_definition
    );
}

/// Timeline: the orchestrator journalled the clone, its `UpdateService`
/// landed, and it died before journalling the deployment; the new tasks
/// crash-looped and ECS's circuit breaker rolled the deployment back and
/// dropped it from the list. The resumed rollout finds the previous
/// revision PRIMARY in a new deployment: the "deployment failed" event names
/// ours, which is watched to ECS's verdict (rolled back, quarantined), not
/// deployed again and not taken for someone else's deployment.
#[tokio::test]
async fn resume_from_registered_after_ecs_rolled_our_deployment_back_is_rolled_back_by_ecs() {
    let fx = Fixture::safe(2);
    fx.new_image_behaves(ImageBehaviour::CrashLoop);
    let before = fx.sim.peek_service("runners", "runner").unwrap();
    let journalled_primary = before.primary().unwrap().id.clone();
    let gate = interrupted_at(&fx, "monitoring").await;
    let new_td = gate.update_service_target();
    assert_eq!(count(&fx, "UpdateService"), 1);
    let ours = fx
        .sim
        .peek_service("runners", "runner")
        .unwrap()
        .primary()
        .unwrap()
        .id
        .clone();
    fx.clock.advance(Duration::from_secs(3_600));
    let now = fx.sim.describe_service("runners", "runner").await.unwrap();
    assert!(
        now.deployments.iter().all(|d| d.id != ours),
        "ECS dropped the rolled-back deployment: {:#?}",
        now.deployments
    );
    let report = resume(
        &fx,
        &ResumePoint::Registered {
            task_definition_arn: new_td.clone(),
            previous_task_definition_arn: fx.old_task_definition.clone(),
            previous_deployment_id: Some(journalled_primary),
        },
    )
    .await;
    let RolloutOutcome::RolledBackByEcs { evidence, .. } = &report.outcome else {
        panic!("expected RolledBackByEcs, got {:#?}", report.outcome);
    };
    assert_eq!(evidence.deployment_id, ours);
    assert_eq!(count(&fx, "UpdateService"), 1, "never deployed again");
    assert!(report.quarantine.is_some());
}

/// The journalled PRIMARY is still PRIMARY: our `UpdateService` never
/// landed, and the clone is deployed once.
#[tokio::test]
async fn resume_from_registered_with_the_journalled_primary_unchanged_deploys_once() {
    let fx = Fixture::safe(2);
    let before = fx.sim.peek_service("runners", "runner").unwrap();
    let journalled_primary = before.primary().unwrap().id.clone();
    let gate = interrupted_at(&fx, "update_service").await;
    let new_td = gate.update_service_target();
    let report = resume(
        &fx,
        &ResumePoint::Registered {
            task_definition_arn: new_td.clone(),
            previous_task_definition_arn: fx.old_task_definition.clone(),
            previous_deployment_id: Some(journalled_primary),
        },
    )
    .await;
    assert!(
        matches!(report.outcome, RolloutOutcome::Succeeded { .. }),
        "{:#?}",
        report.outcome
    );
    assert_eq!(count(&fx, "UpdateService"), 1);
}
