//! Timelines that mutants of the engine survived (issue 14: two made by
//! hand, then those of `scripts/mutants.sh`): each test names the real ECS
//! timeline it covers, and fails on the mutant named in its doc comment.
//!
//! Simulated: ECS itself (`SimulatedEcs`, an auto-advancing manual clock),
//! with timings chosen to produce the timeline; nothing else.

mod common;

use std::{sync::Arc, time::Duration};

use common::{OLD_IMAGE, request, runner_spec};
use ecs_rollout::{
    DeploymentConfiguration, DeploymentConfigurationPolicy, EcsApi, FailureReason, ImageBehaviour,
    MonitorConfig, Rollout, RolloutConfig, RolloutOutcome, RolloutReport, RolloutTarget,
    ServiceSetup, SimTimings, SimulatedEcs, TaskDefinitionSpec, TaskDefinitionStatus,
};
use update_clock::ManualClock;

/// A simulated runner service with `timings`, one task, breaker with
/// rollback on; returns the simulator, the clock and the running revision.
fn service(timings: SimTimings) -> (Arc<SimulatedEcs>, Arc<ManualClock>, String) {
    service_of(timings, runner_spec(OLD_IMAGE))
}

/// [`service`] running `task_definition`.
fn service_of(
    timings: SimTimings,
    task_definition: TaskDefinitionSpec,
) -> (Arc<SimulatedEcs>, Arc<ManualClock>, String) {
    let clock = Arc::new(ManualClock::auto_advancing(ManualClock::EPOCH_2025));
    let (sim, running) = service_on(
        &clock,
        timings,
        task_definition,
        1,
        DeploymentConfiguration::safe_rolling(),
    );
    (sim, clock, running)
}

/// A simulated runner service on `clock`: `desired` tasks of
/// `task_definition`, with `deployment_configuration`; returns the
/// simulator and the running revision.
fn service_on(
    clock: &Arc<ManualClock>,
    timings: SimTimings,
    task_definition: TaskDefinitionSpec,
    desired: i32,
    deployment_configuration: DeploymentConfiguration,
) -> (Arc<SimulatedEcs>, String) {
    let sim = Arc::new(SimulatedEcs::new(clock.clone(), 7).with_timings(timings));
    let running = sim
        .create_service(ServiceSetup {
            cluster: "runners".into(),
            service: "runner".into(),
            task_definition,
            desired_count: desired,
            deployment_configuration,
        })
        .unwrap();
    (sim, running)
}

fn target() -> RolloutTarget {
    RolloutTarget::new("runners", "runner")
}

/// One rollout of [`request`] to the simulated runner service.
async fn run(
    sim: &Arc<SimulatedEcs>,
    clock: &Arc<ManualClock>,
    config: RolloutConfig,
) -> RolloutReport {
    let rollout = Rollout::new(sim.clone(), clock.clone(), config).unwrap();
    rollout.run(&target(), &request()).await.unwrap()
}

/// The default monitor, polling every `every` (no faster, no slower).
fn polls_every(every: Duration) -> MonitorConfig {
    MonitorConfig {
        poll_min: every,
        poll_max: every,
        ..MonitorConfig::default()
    }
}

/// Timeline: the breaker trips and ECS's rollback completes *between two
/// polls*, and the failed deployment has already left `deployments` when the
/// next poll comes. Our deployment is never seen `FAILED`; the only trace is
/// the service event "(deployment X) deployment failed". The verdict must
/// still be ECS's rollback (a failure of the version, to quarantine), never
/// `Superseded` (which would retry the bad version forever).
///
/// Kills the mutant `ours_failed = seen_failed` in `monitor.rs`
/// (`foreign_primary` ignoring the failure event).
#[tokio::test]
async fn ecs_rollback_completed_before_the_poll_that_would_have_seen_failed() {
    let (sim, clock, running) = service(SimTimings {
        pending: Duration::from_secs(1),
        pending_jitter: Duration::ZERO,
        crash_after: Duration::from_secs(1),
        drained_deployment_linger: Duration::ZERO,
        ..SimTimings::default()
    });
    sim.script_image(&request().image.to_string(), ImageBehaviour::CrashLoop);
    // One poll right after UpdateService, the next long after ECS is done.
    let config = RolloutConfig {
        monitor: MonitorConfig {
            timeout: Duration::from_secs(3600),
            ..polls_every(Duration::from_secs(600))
        },
        ..RolloutConfig::default()
    };
    let report = run(&sim, &clock, config).await;

    let RolloutOutcome::RolledBackByEcs {
        reason, rollback, ..
    } = &report.outcome
    else {
        panic!(
            "an ECS rollback finished between two polls must be RolledBackByEcs, got {:#?}",
            report.outcome
        );
    };
    assert!(
        matches!(reason, FailureReason::CircuitBreaker { .. }),
        "{reason:?}"
    );
    assert_eq!(rollback.task_definition_arn, running);
    assert!(report.outcome.is_version_failure());
    assert!(
        report.quarantine.is_some(),
        "the bad version is quarantined"
    );
    // The timeline really happened: our deployment is gone from the list.
    let service = sim.peek_service("runners", "runner").unwrap();
    assert!(
        service
            .deployments
            .iter()
            .all(|d| d.task_definition_arn == running),
        "{service:#?}"
    );
}

/// Timeline: as above, with the ServiceDeployment API: the breaker trips
/// and ECS's rollback completes between two polls, and the next poll reads
/// our service deployment ROLLBACK_SUCCESSFUL before it has seen a single
/// failed task. That service deployment decides the verdict, and the
/// evidence still says why our tasks stopped: the stopped tasks are read
/// for it then, since no earlier poll read them.
///
/// Kills `matches!(verdict, Verdict::Failed { .. }) && !watch.rollback`
/// with its `!` deleted in `Monitor::poll` (no evidence for a failure the
/// service deployment decided), and `p.id != watch.deployment_id` → `==`
/// in `ecs_rollback_of` (the rollback's deployment taken from ours).
#[tokio::test]
async fn a_failure_decided_by_the_service_deployment_names_why_our_tasks_stopped() {
    let (sim, clock, running) = service(SimTimings {
        pending: Duration::from_secs(1),
        pending_jitter: Duration::ZERO,
        crash_after: Duration::from_secs(1),
        drained_deployment_linger: Duration::ZERO,
        ..SimTimings::default()
    });
    sim.enable_service_deployments(true);
    sim.script_image(&request().image.to_string(), ImageBehaviour::CrashLoop);
    let config = RolloutConfig {
        monitor: MonitorConfig {
            timeout: Duration::from_secs(3600),
            ..polls_every(Duration::from_secs(600))
        },
        ..RolloutConfig::default()
    };
    let report = run(&sim, &clock, config).await;

    let RolloutOutcome::RolledBackByEcs {
        rollback, evidence, ..
    } = &report.outcome
    else {
        panic!("expected RolledBackByEcs, got {:#?}", report.outcome);
    };
    assert_eq!(rollback.task_definition_arn, running);
    assert_eq!(
        evidence.decided_by,
        Some(ecs_rollout::VerdictSource::ServiceDeployment)
    );
    assert_eq!(
        evidence.service_deployment_status.as_deref(),
        Some("ROLLBACK_SUCCESSFUL")
    );
    // ECS's rollback deployment, the PRIMARY now (never ours).
    let primary = sim
        .peek_service("runners", "runner")
        .unwrap()
        .primary()
        .unwrap()
        .clone();
    assert_eq!(rollback.deployment_id.as_deref(), Some(primary.id.as_str()));
    assert_ne!(primary.id, evidence.deployment_id);
    assert!(
        !evidence.stopped_tasks.is_empty() && !evidence.stopped_task_reasons.is_empty(),
        "the evidence names why our tasks stopped: {evidence:#?}"
    );
}

/// Timeline: the running revision (the rollback target) is older than the
/// newest `keep_revisions` revisions of the family (revisions registered
/// since by CI, or by earlier failed updates), and its drained deployment has
/// left the service's list by the time retention runs. Retention must keep
/// it: it is what the service goes back to if the new version fails later.
///
/// Kills the mutant that drops `previous.arn` from the revisions retention
/// protects in `rollout.rs`.
#[tokio::test]
async fn retention_keeps_a_rollback_target_older_than_the_newest_revisions() {
    let (sim, clock, running) = service(SimTimings {
        drained_deployment_linger: Duration::ZERO,
        ..SimTimings::default()
    });
    // Three newer revisions of the family that never ran.
    let mut newer = Vec::new();
    for build in 2..=4 {
        let spec = runner_spec(&format!(
            "registry.example.com:5000/team/runner:2024123{build}.1"
        ));
        newer.push(sim.register_task_definition(&spec).await.unwrap().arn);
    }
    let config = RolloutConfig {
        keep_revisions: Some(2),
        monitor: MonitorConfig {
            bake_time: Duration::from_secs(120),
            ..MonitorConfig::default()
        },
        ..RolloutConfig::default()
    };
    let report = run(&sim, &clock, config).await;
    let RolloutOutcome::Succeeded { evidence } = &report.outcome else {
        panic!("expected Succeeded, got {:#?}", report.outcome);
    };
    assert_eq!(evidence.previous_task_definition_arn, running);
    // The drained deployment of the old revision is gone from the list, so
    // only the explicit protection keeps the rollback target.
    let service = sim.peek_service("runners", "runner").unwrap();
    assert!(
        service
            .deployments
            .iter()
            .all(|d| d.task_definition_arn != running),
        "{service:#?}"
    );
    assert_eq!(
        sim.peek_task_definition(&running).unwrap().status,
        TaskDefinitionStatus::Active,
        "the rollback target was deregistered"
    );
    assert!(!report.deregistered.contains(&running), "{report:#?}");
    // The newest two are kept (the new revision and the newest of the
    // never-run ones); the two older never-run ones go.
    assert_eq!(report.deregistered, newer[..2].to_vec(), "{report:#?}");
}

/// Timeline: a container with no health check (ECS calls the deployment
/// complete once its task runs) exits two minutes into the bake; ECS starts
/// a replacement at once, which is RUNNING by the next poll, so that poll
/// sees as many running tasks as desired and none unhealthy. Only the task
/// that stopped since the last poll tells: the bake must fail the version
/// (`BakeFailed`, "1 task(s) stopped"), not let it pass once the bake ends.
///
/// Kills `!healthy || inspection.new_failures > 0` → `&&` (and the
/// comparison's `>` → `<`) in `Monitor::poll`.
#[tokio::test]
async fn a_task_replaced_between_two_bake_polls_still_fails_the_bake() {
    let mut spec = runner_spec(OLD_IMAGE);
    spec.container_definitions[0].health_check = None;
    let (sim, clock, running) = service_of(
        SimTimings {
            pending: Duration::from_secs(1),
            pending_jitter: Duration::ZERO,
            crash_after: Duration::from_secs(120),
            ..SimTimings::default()
        },
        spec,
    );
    sim.script_image(&request().image.to_string(), ImageBehaviour::CrashLoop);
    let config = RolloutConfig {
        monitor: MonitorConfig {
            bake_time: Duration::from_secs(300),
            ..polls_every(Duration::from_secs(7))
        },
        ..RolloutConfig::default()
    };
    let report = run(&sim, &clock, config).await;
    let RolloutOutcome::RolledBackByUs {
        reason, rollback, ..
    } = &report.outcome
    else {
        panic!("expected RolledBackByUs, got {:#?}", report.outcome);
    };
    assert!(
        matches!(reason, FailureReason::BakeFailed { detail } if detail.contains("stopped")),
        "{reason:?}"
    );
    assert_eq!(rollback.task_definition_arn, running);
    assert!(report.quarantine.is_some());
}

/// Timeline: `ListTasks` is eventually consistent and lags behind
/// `DescribeServices`: ECS counts our new task RUNNING and completes the
/// deployment, while `ListTasks startedBy` does not list the task for
/// another five minutes. Success needs our own reading of our tasks (their
/// status and health), so the verdict waits until the task is listed; it is
/// never given on ECS's count alone with no task of ours seen.
///
/// Kills `watch.rollback && primary.pending_count == 0 && …` with either
/// `&&` replaced by `||` in `Monitor::poll` (the count that only a rollback
/// watch may take from ECS).
#[tokio::test]
async fn success_waits_until_our_tasks_are_listed() {
    let (sim, clock, _) = service(SimTimings::default());
    let lag = Duration::from_secs(300);
    sim.set_list_tasks_lag(lag);
    let config = RolloutConfig {
        monitor: MonitorConfig {
            bake_time: Duration::ZERO,
            ..MonitorConfig::default()
        },
        ..RolloutConfig::default()
    };
    let report = run(&sim, &clock, config).await;
    let RolloutOutcome::Succeeded { evidence } = &report.outcome else {
        panic!("expected Succeeded, got {:#?}", report.outcome);
    };
    // ECS completed the deployment within about a minute; the verdict came
    // once ListTasks listed the task.
    assert!(evidence.deployment_duration >= lag, "{evidence:#?}");
    assert!(
        evidence.deployment_duration < lag + Duration::from_secs(90),
        "{evidence:#?}"
    );
}

/// Timeline: successive `DescribeServices` requests reach replicas of
/// differing lag for two minutes after our `UpdateService`: a read that
/// showed our deployment PRIMARY is followed by one that shows the PRIMARY
/// from before our update again (older than ours by `createdAt`), then by a
/// fresh one, and so on. A PRIMARY that is not ours and not provably newer
/// counts as someone else's only once it persists: the watch goes on and
/// the healthy version succeeds, never `Superseded` by its own predecessor.
///
/// Kills `!newer && st.foreign_polls < FOREIGN_PRIMARY_POLLS` with the `!`
/// deleted, or the `<` replaced by `==` or `>`, in `Monitor::poll`.
#[tokio::test]
async fn a_read_that_flips_back_to_the_old_primary_is_not_someone_elses_deployment() {
    let (sim, clock, _) = service(SimTimings::default());
    sim.set_stale_reads(Duration::from_secs(120));
    sim.set_stale_reads_flap(true);
    let config = RolloutConfig {
        monitor: polls_every(Duration::from_secs(5)),
        ..RolloutConfig::default()
    };
    let report = run(&sim, &clock, config).await;
    let RolloutOutcome::Succeeded { evidence } = &report.outcome else {
        panic!("expected Succeeded, got {:#?}", report.outcome);
    };
    // Polled through the flapping window (5-second polls).
    assert!(evidence.polls >= 10, "{evidence:#?}");
    assert!(report.quarantine.is_none());
}

/// Timeline: a version that crashes at once (exit 1) on a service whose
/// circuit breaker is off, with a failed-task threshold of 25: ECS keeps
/// replacing the crashed tasks, and our own count trips at 25. The evidence
/// an operator reads is bounded and exact: the first 20 stopped tasks (not
/// 21, not none), each naming the container that failed and its exit code
/// (not the essential sidecar ECS stopped with it), one entry per distinct
/// stop reason, and no container reported unhealthy (none was).
///
/// Kills, in `Monitor::inspect`: `obs.stopped_tasks.len() < 20` with `<`
/// replaced by `<=`, `==` or `>`; the dedup of the reasons (`&&` → `||`);
/// the container filter `c.reason.is_some() || …` (`||` → `&&`, and
/// `code != 0` → `==`); and `health == HealthStatus::Unhealthy` → `!=`.
#[tokio::test]
async fn the_evidence_of_a_crash_loop_is_bounded_and_names_the_failed_container() {
    let clock = Arc::new(ManualClock::auto_advancing(ManualClock::EPOCH_2025));
    let (sim, _) = service_on(
        &clock,
        SimTimings::default(),
        runner_spec(OLD_IMAGE),
        2,
        DeploymentConfiguration {
            circuit_breaker: None,
            ..DeploymentConfiguration::safe_rolling()
        },
    );
    sim.script_image(&request().image.to_string(), ImageBehaviour::CrashLoop);
    let config = RolloutConfig {
        deployment_configuration_policy: DeploymentConfigurationPolicy::Warn,
        monitor: MonitorConfig {
            failed_task_threshold: Some(25),
            ..MonitorConfig::default()
        },
        ..RolloutConfig::default()
    };
    let report = run(&sim, &clock, config).await;
    let RolloutOutcome::RolledBackByUs {
        reason, evidence, ..
    } = &report.outcome
    else {
        panic!("expected RolledBackByUs, got {:#?}", report.outcome);
    };
    assert!(
        matches!(reason, FailureReason::FailedTaskThreshold { failed_tasks, .. } if *failed_tasks >= 25),
        "{reason:?}"
    );
    assert_eq!(evidence.stopped_tasks.len(), 20, "{evidence:#?}");
    assert_eq!(
        evidence.stopped_task_reasons,
        ["Essential container in task exited (runner)"],
        "{evidence:#?}"
    );
    for task in &evidence.stopped_tasks {
        assert_eq!(task.containers, ["runner: exited (exit 1)"], "{task:#?}");
    }
    assert!(evidence.unhealthy_containers.is_empty(), "{evidence:#?}");
}

/// Timeline: a `DescribeServices` replica stuck behind for ten minutes
/// after our `UpdateService`: every read lists only the deployment from
/// before it, never ours. The watch gives the read the benefit of the doubt
/// for [`ecs_rollout::UNSEEN_DEPLOYMENT_GRACE`] (2 min), then counts that
/// PRIMARY as someone else's once it has persisted for
/// [`ecs_rollout::FOREIGN_PRIMARY_POLLS`] polls in a row, starting with the
/// poll at the grace's end: with polls 30 s apart (at 0, 30, …, 120 s),
/// that is the poll at 180 s, the 7th, and the verdict is `Superseded`
/// (nothing rolled back, nothing quarantined). The bounds are what an
/// operator reads in the docs; this pins them.
///
/// Kills `obs.duration < UNSEEN_DEPLOYMENT_GRACE` → `<=` and
/// `st.foreign_polls < FOREIGN_PRIMARY_POLLS` → `<=` in `Monitor::poll`.
#[tokio::test]
async fn a_read_stuck_before_our_update_is_judged_at_the_documented_bounds() {
    let (sim, clock, running) = service(SimTimings::default());
    sim.set_stale_reads(Duration::from_secs(600));
    let config = RolloutConfig {
        monitor: polls_every(Duration::from_secs(30)),
        ..RolloutConfig::default()
    };
    assert_eq!(
        ecs_rollout::UNSEEN_DEPLOYMENT_GRACE,
        Duration::from_secs(120)
    );
    assert_eq!(ecs_rollout::FOREIGN_PRIMARY_POLLS, 3);
    let report = run(&sim, &clock, config).await;
    let RolloutOutcome::Superseded {
        task_definition_arn,
        evidence,
        ..
    } = &report.outcome
    else {
        panic!("expected Superseded, got {:#?}", report.outcome);
    };
    assert_eq!(task_definition_arn, &running);
    assert_eq!(evidence.polls, 7, "{evidence:#?}");
    assert!(report.quarantine.is_none());
}

/// What an embedding service reads off the engine: the configuration it
/// was built with, and the ECS calls it made (every attempt), equal to what
/// ECS counted.
///
/// Kills `Rollout::config` returning a default configuration and
/// `Rollout::api_calls` returning 0 or 1.
#[tokio::test]
async fn the_engine_reports_its_configuration_and_its_calls() {
    let (sim, clock, _) = service(SimTimings::default());
    let config = RolloutConfig {
        keep_revisions: Some(3),
        monitor: polls_every(Duration::from_secs(7)),
        ..RolloutConfig::default()
    };
    let rollout = Rollout::new(sim.clone(), clock.clone(), config.clone()).unwrap();
    assert_eq!(rollout.config(), &config);
    assert_eq!(rollout.api_calls(), 0);
    let report = rollout.run(&target(), &request()).await.unwrap();
    assert!(report.outcome.is_success(), "{:#?}", report.outcome);
    assert!(rollout.api_calls() > 1);
    assert_eq!(rollout.api_calls(), sim.total_calls());
}

/// Timeline: an updater that has run for a day (its monotonic clock far
/// from zero) deploys a crashing version twice: once on a service whose
/// breaker rolls back (ECS's rollback, followed), once with the breaker off
/// (our own rollback, watched). Every duration in the evidence is measured
/// from its own start: minutes, never "a day and some".
///
/// Kills the `now - start` → `now + start` mutants of the durations in
/// `Rollout::conclude`, `follow_rollback`, `watch_rollback_for` and
/// `finish` (invisible on a clock that starts at zero, as every other
/// test's does).
#[tokio::test]
async fn durations_in_the_evidence_are_measured_from_their_own_start() {
    let bound = Duration::from_secs(3600);
    for breaker in [true, false] {
        let clock = Arc::new(ManualClock::auto_advancing(ManualClock::EPOCH_2025));
        clock.advance(Duration::from_secs(86_400));
        let (sim, _) = service_on(
            &clock,
            SimTimings::default(),
            runner_spec(OLD_IMAGE),
            2,
            DeploymentConfiguration {
                circuit_breaker: breaker.then(ecs_rollout::CircuitBreaker::enabled_with_rollback),
                ..DeploymentConfiguration::safe_rolling()
            },
        );
        sim.script_image(&request().image.to_string(), ImageBehaviour::CrashLoop);
        let config = RolloutConfig {
            deployment_configuration_policy: DeploymentConfigurationPolicy::Warn,
            ..RolloutConfig::default()
        };
        let report = run(&sim, &clock, config).await;
        let (evidence, rollback) = match &report.outcome {
            RolloutOutcome::RolledBackByEcs {
                evidence, rollback, ..
            }
            | RolloutOutcome::RolledBackByUs {
                evidence, rollback, ..
            } => (evidence, rollback),
            other => panic!("breaker {breaker}: expected a rollback, got {other:#?}"),
        };
        assert!(rollback.completed, "breaker {breaker}: {rollback:?}");
        for (what, duration) in [
            ("deployment", evidence.deployment_duration),
            ("total", evidence.total_duration),
            ("rollback", rollback.duration),
        ] {
            assert!(
                duration < bound,
                "breaker {breaker}: {what} duration {duration:?}"
            );
        }
        assert!(evidence.total_duration >= evidence.deployment_duration);
    }
}

/// Timeline: `DescribeTasks` reports no `startedBy` (optional in the API's
/// `Task` shape), so a stopped task can be told to be ours only by its task
/// definition. The crash loop ECS rolls back must still come with the
/// evidence of our stopped tasks (why they stopped), and none of the old
/// revision's tasks.
///
/// Kills, in `Monitor::inspect`, the task without `startedBy` judged ours
/// by `task_definition_arn == ours` → `!=`.
#[tokio::test]
async fn without_started_by_our_stopped_tasks_are_told_by_their_task_definition() {
    let (sim, clock, _) = service(SimTimings::default());
    sim.set_started_by_absent(true);
    sim.script_image(&request().image.to_string(), ImageBehaviour::CrashLoop);
    let report = run(&sim, &clock, RolloutConfig::default()).await;
    let RolloutOutcome::RolledBackByEcs { evidence, .. } = &report.outcome else {
        panic!("expected RolledBackByEcs, got {:#?}", report.outcome);
    };
    assert!(!evidence.stopped_tasks.is_empty(), "{evidence:#?}");
    assert!(
        evidence
            .stopped_task_reasons
            .iter()
            .all(|r| r.contains("Essential container in task exited")),
        "{:?}",
        evidence.stopped_task_reasons
    );
    // Each is a task of our revision.
    let ours: Vec<String> = evidence
        .stopped_tasks
        .iter()
        .map(|t| t.task_arn.clone())
        .collect();
    let described = sim.describe_tasks("runners", &ours).await.unwrap();
    assert_eq!(described.len(), ours.len());
    assert!(
        described
            .iter()
            .all(|t| t.task_definition_arn == evidence.task_definition_arn),
        "{described:#?}"
    );
}
