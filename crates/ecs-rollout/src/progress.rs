//! Progress events of a rollout, for progress bars and logs.

use std::{
    fmt::Debug,
    sync::{Arc, Mutex},
    time::Duration,
};

use serde::Serialize;

use crate::{ErrorClass, RolloutState};

/// Who started a rollback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RollbackInitiator {
    /// The ECS deployment circuit breaker.
    Ecs,
    /// This crate, because the deployment failed, timed out or did not
    /// stay healthy.
    Us,
}

/// One step of a rollout. Serializes as `{"event": "<snake_case>", …}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProgressEvent {
    /// Our deployment failed and ECS rolls failed deployments back by
    /// itself (circuit breaker or deployment alarms with rollback): up to
    /// `polls` polls are spent looking for ECS's rollback before we roll
    /// back, so two rollbacks never race.
    AwaitingEcsRollback {
        /// Our failed deployment.
        deployment_id: String,
        /// Polls spent looking at most.
        polls: u32,
    },
    /// The service's current runner was read.
    CurrentState {
        /// The running task definition.
        task_definition_arn: String,
        /// The runner image.
        image: String,
        /// The runner version, if known.
        version: Option<String>,
    },
    /// The deployment configuration was unsafe; it is being fixed.
    DeploymentConfigurationFixed {
        /// What was wrong.
        problems: Vec<String>,
        /// What is changed (`field: old → new`); nothing else is.
        changes: Vec<String>,
    },
    /// The deployment configuration is unsafe; deploying anyway (policy Warn).
    DeploymentConfigurationWarning {
        /// What is wrong.
        problems: Vec<String>,
    },
    /// Another deployment is in progress; waiting for it.
    WaitingForIdle {
        /// Ids of the unfinished deployments.
        in_progress: Vec<String>,
    },
    /// The cloned task definition was registered (or an identical revision,
    /// left by an interrupted run, is reused).
    TaskDefinitionRegistered {
        /// Its ARN.
        arn: String,
    },
    /// `UpdateService` created our deployment.
    DeploymentStarted {
        /// The deployment id being tracked.
        deployment_id: String,
        /// Its task definition.
        task_definition_arn: String,
        /// `true` for a rollback deployment started by us.
        rollback: bool,
    },
    /// Our service deployment (`ListServiceDeployments`) was found: its
    /// status is the authority from now on.
    ServiceDeploymentRecorded {
        /// Our deployment's id (`DescribeServices`).
        deployment_id: String,
        /// Its service-deployment ARN.
        service_deployment_arn: String,
    },
    /// Our blue/green, linear or canary deployment entered a lifecycle
    /// stage (`SCALE_UP`, `TEST_TRAFFIC_SHIFT`, `BAKE_TIME`, …).
    LifecycleStage {
        /// Our deployment's id.
        deployment_id: String,
        /// The stage, as ECS sends it.
        stage: String,
    },
    /// A poll of the tracked deployment.
    DeploymentProgress {
        /// The deployment.
        deployment_id: String,
        /// Rollout state.
        rollout_state: Option<RolloutState>,
        /// Desired tasks.
        desired: i32,
        /// Pending tasks.
        pending: i32,
        /// Running tasks.
        running: i32,
        /// Failed tasks so far.
        failed_tasks: i32,
        /// The failed-task threshold in force.
        failed_task_threshold: u32,
        /// Time since the deployment started.
        #[serde(with = "crate::outcome::secs")]
        elapsed: Duration,
    },
    /// A task of the tracked deployment stopped.
    TaskStopped {
        /// The task.
        task_arn: String,
        /// Its stopped reason.
        reason: String,
        /// Its stop code.
        stop_code: Option<String>,
    },
    /// Every task of the deployment is healthy; watching for the bake time.
    BakeStarted {
        /// How long health must hold.
        #[serde(with = "crate::outcome::secs")]
        bake_time: Duration,
    },
    /// An ECS call failed and is retried after `delay`.
    RetryScheduled {
        /// The operation.
        operation: &'static str,
        /// The attempt that failed (1-based).
        attempt: u32,
        /// Throttled or transient.
        class: ErrorClass,
        /// The backoff before the next attempt.
        #[serde(with = "crate::outcome::secs")]
        delay: Duration,
    },
    /// The running revision was INACTIVE (deregistered): its spec was
    /// registered again as the rollback target.
    RollbackTargetReregistered {
        /// The running, INACTIVE revision.
        inactive_task_definition_arn: String,
        /// The new ACTIVE revision with the same spec (the rollback target).
        task_definition_arn: String,
    },
    /// A poll of the deployment failed (after the retry layer gave up, or
    /// with an error retrying cannot fix): a missed poll, not a verdict.
    PollFailed {
        /// The deployment being watched.
        deployment_id: String,
        /// The error.
        error: String,
        /// Missed polls of this watch so far.
        missed_polls: u32,
    },
    /// The deployment failed; a rollback is happening.
    RollbackStarted {
        /// Who rolls back.
        initiator: RollbackInitiator,
        /// To which task definition.
        task_definition_arn: String,
        /// Why.
        reason: String,
    },
    /// A task-definition revision was tagged with the outcome.
    RevisionMarked {
        /// The revision.
        arn: String,
        /// The outcome tag value.
        outcome: String,
    },
    /// Retention deregistered an old revision.
    RevisionDeregistered {
        /// The revision.
        arn: String,
    },
    /// The rollout finished.
    Finished {
        /// The outcome's kind (`succeeded`, `rolled_back_by_ecs`, …).
        outcome: &'static str,
    },
}

/// Where progress events go. Implemented for closures, tokio unbounded
/// senders and [`RecordedProgress`]. Must not block.
pub trait ProgressSink: Send + Sync + Debug + 'static {
    /// Receives one event.
    fn emit(&self, event: &ProgressEvent);
}

/// Drops every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl ProgressSink for NoProgress {
    fn emit(&self, _event: &ProgressEvent) {}
}

/// Keeps every event in memory (tests, reports).
#[derive(Debug, Clone, Default)]
pub struct RecordedProgress {
    events: Arc<Mutex<Vec<ProgressEvent>>>,
}

impl RecordedProgress {
    /// A new, empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every event so far.
    pub fn events(&self) -> Vec<ProgressEvent> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl ProgressSink for RecordedProgress {
    fn emit(&self, event: &ProgressEvent) {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(event.clone());
    }
}

impl ProgressSink for tokio::sync::mpsc::UnboundedSender<ProgressEvent> {
    fn emit(&self, event: &ProgressEvent) {
        // A closed receiver means nobody listens any more; the rollout goes on.
        let _ = self.send(event.clone());
    }
}

/// A sink calling a function for each event.
pub struct ProgressFn<F>(pub F);

impl<F> Debug for ProgressFn<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressFn")
    }
}

impl<F: Fn(&ProgressEvent) + Send + Sync + 'static> ProgressSink for ProgressFn<F> {
    fn emit(&self, event: &ProgressEvent) {
        (self.0)(event)
    }
}
