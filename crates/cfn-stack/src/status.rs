//! CloudFormation stack statuses and what they mean for an update.

use std::fmt;

/// A CloudFormation stack status, kept as CloudFormation spells it
/// (`UPDATE_COMPLETE`, `UPDATE_ROLLBACK_IN_PROGRESS`, ...), with the
/// classifications an updater needs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StackStatus(String);

/// What a status means to someone who wants to update the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusKind {
    /// An operation is running (`*_IN_PROGRESS`): do not start another.
    InProgress,
    /// The stack is stable and can be updated (`CREATE_COMPLETE`,
    /// `UPDATE_COMPLETE`, `UPDATE_ROLLBACK_COMPLETE`, `IMPORT_COMPLETE`, ...).
    Stable,
    /// The stack is stuck or gone and cannot be updated (`ROLLBACK_COMPLETE`
    /// after a failed create, `*_FAILED`, `DELETE_COMPLETE`).
    NotUpdatable,
}

impl StackStatus {
    /// Wraps a status string.
    pub fn new(status: impl Into<String>) -> Self {
        Self(status.into())
    }

    /// The status as CloudFormation spells it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Classifies the status.
    pub fn kind(&self) -> StatusKind {
        let s = self.0.as_str();
        if s.ends_with("_IN_PROGRESS") {
            StatusKind::InProgress
        } else if s.ends_with("_FAILED") || s == "ROLLBACK_COMPLETE" || s == "DELETE_COMPLETE" {
            StatusKind::NotUpdatable
        } else {
            StatusKind::Stable
        }
    }

    /// `*_IN_PROGRESS`: an operation is running.
    pub fn is_in_progress(&self) -> bool {
        self.kind() == StatusKind::InProgress
    }

    /// A terminal status after an update: `UPDATE_COMPLETE`,
    /// `UPDATE_ROLLBACK_COMPLETE`, `UPDATE_FAILED`,
    /// `UPDATE_ROLLBACK_FAILED` or any other non-`_IN_PROGRESS` status.
    pub fn is_terminal(&self) -> bool {
        !self.is_in_progress()
    }

    /// A rollback status (`*ROLLBACK*`).
    pub fn is_rollback(&self) -> bool {
        self.0.contains("ROLLBACK")
    }

    /// A failed status (`*_FAILED`).
    pub fn is_failed(&self) -> bool {
        self.0.ends_with("_FAILED")
    }

    /// What an operator can do about a [`StatusKind::NotUpdatable`] status.
    pub fn operator_hint(&self) -> &'static str {
        match self.0.as_str() {
            "ROLLBACK_COMPLETE" => "the stack's creation failed; delete it and create it again",
            "UPDATE_ROLLBACK_FAILED" => {
                "continue the rollback (ContinueUpdateRollback) in the console or CLI first, \
                 skipping (ResourcesToSkip) the resources that cannot be restored"
            }
            "UPDATE_FAILED" => {
                "the last update failed with rollback disabled: fix the cause and update again, \
                 or roll the stack back (RollbackStack)"
            }
            "DELETE_COMPLETE" => "the stack was deleted",
            "DELETE_FAILED" => "fix the resources that could not be deleted, then retry the delete",
            _ => "inspect the stack events in the CloudFormation console",
        }
    }
}

impl fmt::Display for StackStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for StackStatus {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_table() {
        let table = [
            ("CREATE_COMPLETE", StatusKind::Stable),
            ("UPDATE_COMPLETE", StatusKind::Stable),
            ("UPDATE_ROLLBACK_COMPLETE", StatusKind::Stable),
            ("IMPORT_COMPLETE", StatusKind::Stable),
            ("CREATE_IN_PROGRESS", StatusKind::InProgress),
            ("UPDATE_IN_PROGRESS", StatusKind::InProgress),
            (
                "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
                StatusKind::InProgress,
            ),
            ("UPDATE_ROLLBACK_IN_PROGRESS", StatusKind::InProgress),
            ("REVIEW_IN_PROGRESS", StatusKind::InProgress),
            ("DELETE_IN_PROGRESS", StatusKind::InProgress),
            ("ROLLBACK_COMPLETE", StatusKind::NotUpdatable),
            ("UPDATE_ROLLBACK_FAILED", StatusKind::NotUpdatable),
            ("CREATE_FAILED", StatusKind::NotUpdatable),
            ("DELETE_COMPLETE", StatusKind::NotUpdatable),
        ];
        for (status, kind) in table {
            assert_eq!(StackStatus::from(status).kind(), kind, "{status}");
        }
    }
}
