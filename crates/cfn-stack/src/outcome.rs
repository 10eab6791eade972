//! The typed result of a stack update and the progress reported while waiting.

use std::{fmt::Debug, time::Duration};

use crate::{StackEvent, StackStatus};

/// How a stack update ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StackUpdateOutcome {
    /// The update completed (`UPDATE_COMPLETE`, or
    /// `UPDATE_COMPLETE_CLEANUP_IN_PROGRESS` with `cleanup_pending`).
    Updated {
        /// The final status.
        status: StackStatus,
        /// How long the wait took, on the injected clock.
        waited: Duration,
        /// CloudFormation is still removing replaced resources
        /// (`UPDATE_COMPLETE_CLEANUP_IN_PROGRESS`): the update succeeded, but
        /// the stack stays busy until the cleanup ends.
        cleanup_pending: bool,
    },
    /// Nothing to do: CloudFormation said "No updates are to be performed"
    /// or the change set "didn't contain changes".
    NoChanges {
        /// CloudFormation's words.
        reason: String,
    },
    /// The update failed and CloudFormation rolled the stack back
    /// (`UPDATE_ROLLBACK_COMPLETE`). This is a failure.
    RolledBack {
        /// The failed resource events of the update itself
        /// (`Resource (Type) STATUS: reason`), oldest first: the first is
        /// the cause. "Resource update cancelled" lines (resources stopped
        /// because another one failed) and the stack's own events are left
        /// out.
        reasons: Vec<String>,
        /// Resources that failed while rolling back (the rollback still
        /// completed), oldest first.
        rollback_failures: Vec<String>,
    },
    /// The update ended in any other state (`UPDATE_FAILED`,
    /// `UPDATE_ROLLBACK_FAILED`, ...): operator attention needed.
    Failed {
        /// The final status.
        status: StackStatus,
        /// The failed resource events of this update, oldest first (those
        /// after the rollback started prefixed `during rollback: `), without
        /// "Resource update cancelled" lines, then the stack's status reason
        /// (`stack: ...`).
        reasons: Vec<String>,
        /// What an operator should do next: update again or `RollbackStack`
        /// after `UPDATE_FAILED` (rollback disabled); `ContinueUpdateRollback`,
        /// naming the resources to skip, after `UPDATE_ROLLBACK_FAILED`.
        next_step: String,
    },
}

impl StackUpdateOutcome {
    /// Only [`Updated`](Self::Updated) and [`NoChanges`](Self::NoChanges)
    /// are successes.
    pub fn is_success(&self) -> bool {
        matches!(self, Self::Updated { .. } | Self::NoChanges { .. })
    }
}

/// Whether a CloudFormation message means "this update changes nothing".
pub fn means_no_changes(message: &str) -> bool {
    message.contains("No updates are to be performed")
        || message.contains("didn't contain changes")
        || message.contains("did not contain changes")
}

/// What is reported while waiting for a stack.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StackProgress {
    /// A new stack event.
    Event(StackEvent),
    /// A poll found this status (reported when it changes).
    Status {
        /// The stack.
        stack: String,
        /// Its status.
        status: StackStatus,
        /// Time waited so far, on the injected clock.
        elapsed: Duration,
    },
    /// The change set's state while it is being created.
    ChangeSet {
        /// The change set name.
        name: String,
        /// Its status.
        status: String,
    },
}

/// Receives [`StackProgress`] while waiting. Closures
/// `Fn(&StackProgress) + Send + Sync` are sinks; so is a
/// `std::sync::mpsc::Sender<StackProgress>` (a closed channel is ignored).
pub trait ProgressSink: Send + Sync {
    /// Called once per progress item, in order.
    fn report(&self, progress: &StackProgress);
}

impl<F: Fn(&StackProgress) + Send + Sync> ProgressSink for F {
    fn report(&self, progress: &StackProgress) {
        self(progress)
    }
}

impl ProgressSink for std::sync::mpsc::Sender<StackProgress> {
    fn report(&self, progress: &StackProgress) {
        let _ = self.send(progress.clone());
    }
}

/// A sink that drops everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl ProgressSink for NoProgress {
    fn report(&self, _progress: &StackProgress) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_change_messages() {
        for (message, no_changes) in [
            ("No updates are to be performed.", true),
            (
                "The submitted information didn't contain changes. Submit different information to create a change set.",
                true,
            ),
            ("Template format error", false),
            ("Parameter X does not exist", false),
        ] {
            assert_eq!(means_no_changes(message), no_changes, "{message}");
        }
    }
}
