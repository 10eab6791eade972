//! Example binaries of the ECS self-updater crates, one per file in
//! `src/bin/`.

// The README's code blocks compile and run as doctests of this package.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

pub mod runner_config;

pub mod progress_text {
    //! One line of text per rollout progress event, shared by the binaries.

    use ecs_rollout::{ProgressEvent, RollbackInitiator, RolloutState};

    /// How task-definition ARNs are shown.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Arns {
        /// The whole ARN.
        Full,
        /// `family:revision` only.
        Revision,
    }

    impl Arns {
        fn show(self, arn: &str) -> &str {
            match self {
                Arns::Full => arn,
                Arns::Revision => arn.rsplit('/').next().unwrap_or(arn),
            }
        }
    }

    /// The state word of a deployment's rollout state.
    pub fn rollout_state(state: Option<RolloutState>) -> &'static str {
        match state {
            Some(RolloutState::InProgress) => "in progress",
            Some(RolloutState::Completed) => "completed",
            Some(RolloutState::Failed) => "failed",
            None => "state unknown",
        }
    }

    /// One line for `event`, or `None` for an event this version does not
    /// know (the enum is non-exhaustive).
    ///
    /// ```
    /// use updater_examples::progress_text::{describe, Arns};
    /// let event = ecs_rollout::ProgressEvent::TaskDefinitionRegistered {
    ///     arn: "arn:aws:ecs:us-east-1:123456789012:task-definition/runner:7".into(),
    /// };
    /// assert_eq!(describe(&event, Arns::Revision).unwrap(), "registered runner:7");
    /// ```
    pub fn describe(event: &ProgressEvent, arns: Arns) -> Option<String> {
        Some(match event {
            ProgressEvent::CurrentState {
                task_definition_arn,
                version,
                ..
            } => format!(
                "running {} (version {})",
                arns.show(task_definition_arn),
                version.as_deref().unwrap_or("unknown")
            ),
            ProgressEvent::TaskDefinitionRegistered { arn } => {
                format!("registered {}", arns.show(arn))
            }
            ProgressEvent::LifecycleStage { stage, .. } => format!("lifecycle stage {stage}"),
            ProgressEvent::AwaitingEcsRollback { polls, .. } => {
                format!("deployment failed; giving ECS {polls} polls to roll it back by itself")
            }
            ProgressEvent::DeploymentStarted {
                deployment_id,
                task_definition_arn,
                rollback,
            } => format!(
                "{} {deployment_id} → {}",
                if *rollback {
                    "rollback deployment"
                } else {
                    "deployment"
                },
                arns.show(task_definition_arn)
            ),
            ProgressEvent::DeploymentProgress {
                deployment_id,
                rollout_state: state,
                desired,
                pending,
                running,
                failed_tasks,
                failed_task_threshold,
                elapsed,
            } => format!(
                "[{:>6.0}s] {deployment_id} {}: {running}/{desired} running, {pending} pending, {failed_tasks}/{failed_task_threshold} failed",
                elapsed.as_secs_f64(),
                rollout_state(*state)
            ),
            ProgressEvent::TaskStopped {
                task_arn, reason, ..
            } => format!(
                "task {} stopped: {reason}",
                task_arn.rsplit('/').next().unwrap_or(task_arn)
            ),
            ProgressEvent::BakeStarted { bake_time } => {
                format!("healthy; baking for {} s", bake_time.as_secs())
            }
            ProgressEvent::RollbackStarted {
                initiator,
                task_definition_arn,
                reason,
            } => format!(
                "rollback by {} to {}: {reason}",
                match initiator {
                    RollbackInitiator::Ecs => "ECS (circuit breaker)",
                    RollbackInitiator::Us => "the updater",
                },
                arns.show(task_definition_arn)
            ),
            ProgressEvent::DeploymentConfigurationFixed { problems, changes } => format!(
                "deployment configuration fixed ({}): {}",
                problems.join("; "),
                changes.join("; ")
            ),
            ProgressEvent::DeploymentConfigurationWarning { problems } => format!(
                "warning: unsafe deployment configuration: {}",
                problems.join("; ")
            ),
            ProgressEvent::WaitingForIdle { in_progress } => format!(
                "waiting for deployments to finish: {}",
                in_progress.join(", ")
            ),
            ProgressEvent::RetryScheduled {
                operation,
                attempt,
                class,
                delay,
            } => format!(
                "{operation} failed ({class:?}), retry {attempt} in {} ms",
                delay.as_millis()
            ),
            ProgressEvent::RevisionMarked { arn, outcome } => {
                format!("tagged {} with outcome {outcome}", arns.show(arn))
            }
            ProgressEvent::RevisionDeregistered { arn } => {
                format!("deregistered {} (retention)", arns.show(arn))
            }
            ProgressEvent::Finished { outcome } => format!("finished: {outcome}"),
            _ => return None,
        })
    }
}
