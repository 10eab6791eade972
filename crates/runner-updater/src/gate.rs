//! The journal as the rollout engine's step gate: each state-changing ECS
//! step is journalled (fenced by the lock's token) before the engine takes
//! it; a refused write stops the engine before it touches ECS.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use ecs_rollout::{RolloutStep, StepGate};
use tokio::sync::Mutex;
use update_clock::Clock;
use update_lock::{LeaseGuard, LockError, UpdateLock};

use crate::{Error, Fence, Journal, JournalEntry, JournalStep, METRIC_FENCED, Result};

/// The journal writer of one update: the entry, the journal and the lease.
#[derive(Debug)]
pub(crate) struct JournalWriter {
    pub(crate) journal: Arc<dyn Journal>,
    pub(crate) lock: Arc<dyn UpdateLock>,
    pub(crate) guard: Arc<LeaseGuard>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) step_budget: Duration,
    pub(crate) entry: Mutex<JournalEntry>,
    pub(crate) written: std::sync::Mutex<Vec<String>>,
}

impl JournalWriter {
    /// The fence of this writer.
    pub(crate) fn fence(&self) -> Fence {
        Fence {
            key: self.guard.key().to_string(),
            owner: self.guard.owner().to_string(),
            token: self.guard.token(),
        }
    }

    /// Requires the step budget of lease, renewing once if too little is
    /// left.
    async fn check_lease(&self) -> Result<()> {
        match self.guard.check_for(self.step_budget) {
            Ok(_) => Ok(()),
            Err(LockError::LeaseTooShort { .. })
            | Err(LockError::LeaseLost {
                reason: update_lock::LossReason::Expired,
                ..
            }) => {
                // A conditional write of our record version: it fails if
                // anyone took the lock over meanwhile.
                self.lock.renew(&self.guard).await?;
                self.guard.check_for(self.step_budget)?;
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Writes `step` (after `edit` of the entry) under the fence.
    pub(crate) async fn write_with(
        &self,
        step: JournalStep,
        edit: impl FnOnce(&mut JournalEntry),
    ) -> Result<()> {
        let mut entry = self.entry.lock().await;
        self.write_locked(&mut entry, step, edit).await
    }

    async fn write_locked(
        &self,
        entry: &mut JournalEntry,
        step: JournalStep,
        edit: impl FnOnce(&mut JournalEntry),
    ) -> Result<()> {
        self.check_lease().await?;
        let mut next = entry.clone();
        edit(&mut next);
        next.owner = self.guard.owner().to_string();
        next.token = self.guard.token();
        next.written_at = self.clock.now();
        next.history.push(step.name().to_string());
        next.step = step;
        match self.journal.write(&next, &self.fence()).await {
            Ok(()) => {
                tracing::debug!(
                    runner = %next.key,
                    step = next.step.name(),
                    fencing_token = next.token.get(),
                    "journalled"
                );
                self.written
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(next.step.name().to_string());
                *entry = next;
                Ok(())
            }
            Err(e) => {
                if matches!(e, Error::Fenced { .. }) {
                    metrics::counter!(METRIC_FENCED).increment(1);
                    tracing::warn!(runner = %next.key, step = next.step.name(), error = %e, "journal write fenced");
                }
                Err(e)
            }
        }
    }

    /// Writes `step` with no other change.
    pub(crate) async fn write(&self, step: JournalStep) -> Result<()> {
        self.write_with(step, |_| {}).await
    }

    /// A copy of the entry.
    pub(crate) async fn snapshot(&self) -> JournalEntry {
        self.entry.lock().await.clone()
    }

    /// Names of the steps written so far.
    pub(crate) fn written(&self) -> Vec<String> {
        self.written
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The step gate of one target's rollout.
#[derive(Debug)]
pub(crate) struct JournalGate {
    pub(crate) target: usize,
    pub(crate) writer: Arc<JournalWriter>,
}

#[async_trait]
impl StepGate for JournalGate {
    async fn before(&self, step: &RolloutStep) -> std::result::Result<(), ecs_rollout::BoxError> {
        let t = self.target;
        let mut entry = self.writer.entry.lock().await;
        let result = match step {
            RolloutStep::RegisterTaskDefinition {
                from_task_definition_arn,
                ..
            } => {
                let from = from_task_definition_arn.clone();
                self.writer
                    .write_locked(&mut entry, JournalStep::Registering { target: t }, |e| {
                        e.targets[t].previous_task_definition_arn = Some(from);
                    })
                    .await
            }
            RolloutStep::UpdateService {
                task_definition_arn,
                previous_task_definition_arn,
                previous_deployment_id,
            } => {
                let (arn, previous, before) = (
                    task_definition_arn.clone(),
                    previous_task_definition_arn.clone(),
                    previous_deployment_id.clone(),
                );
                self.writer
                    .write_locked(
                        &mut entry,
                        JournalStep::Registered {
                            target: t,
                            task_definition_arn: arn.clone(),
                        },
                        |e| {
                            e.targets[t].task_definition_arn = Some(arn);
                            e.targets[t].previous_task_definition_arn = Some(previous);
                            e.targets[t].previous_deployment_id = before;
                        },
                    )
                    .await
            }
            RolloutStep::Monitoring {
                deployment_id,
                task_definition_arn,
                previous_task_definition_arn,
            } => {
                let (id, arn, previous) = (
                    deployment_id.clone(),
                    task_definition_arn.clone(),
                    previous_task_definition_arn.clone(),
                );
                self.writer
                    .write_locked(
                        &mut entry,
                        JournalStep::ServiceUpdated {
                            target: t,
                            deployment_id: id.clone(),
                        },
                        |e| {
                            e.targets[t].deployment_id = Some(id);
                            e.targets[t].task_definition_arn = Some(arn);
                            e.targets[t].previous_task_definition_arn = Some(previous);
                        },
                    )
                    .await
            }
            RolloutStep::RollingBack { reason, .. } => {
                self.writer
                    .write_locked(
                        &mut entry,
                        JournalStep::RollingBack {
                            target: t,
                            reason: reason.clone(),
                        },
                        |_| {},
                    )
                    .await
            }
            // Tagging and retention: re-write the current step, which
            // proves the fence still holds.
            _ => {
                let step = entry.step.clone();
                self.writer.write_locked(&mut entry, step, |_| {}).await
            }
        };
        result.map_err(|e| Box::new(e) as ecs_rollout::BoxError)
    }
}
