//! What the runner is running now.

use runner_version::{ImageRef, InfraVersion, Version};
use serde::{Deserialize, Serialize};

use crate::QuarantineEntry;

/// The runner's current state, as read by the orchestrator from ECS,
/// CloudFormation and its own stores. Input to [`evaluate`](crate::evaluate).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentState {
    /// The version the service runs now.
    pub version: Version,
    /// The runner image the service runs now.
    pub image: ImageRef,
    /// The infrastructure (CloudFormation stack) version deployed now.
    pub infra_version: InfraVersion,
    /// The highest version this runner has run successfully, as recorded by
    /// the orchestrator after each successful update; `None` when nothing is
    /// recorded. When the running version is lower, an operator rolled back
    /// by hand and the updater holds
    /// ([`SkipReason::HeldAfterManualRollback`](crate::SkipReason::HeldAfterManualRollback))
    /// until the operator clears it ([`CurrentState::clear_manual_rollback`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub highest_successful_version: Option<Version>,
    /// The quarantine store's entries for this runner (expired entries may
    /// be included; they no longer block).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quarantine: Vec<QuarantineEntry>,
}

impl CurrentState {
    /// A state with no success history and an empty quarantine.
    pub fn new(version: Version, image: ImageRef, infra_version: InfraVersion) -> Self {
        Self {
            version,
            image,
            infra_version,
            highest_successful_version: None,
            quarantine: Vec::new(),
        }
    }

    /// The operator's acknowledgement of a manual rollback: the running
    /// version becomes the highest successful one, so updating resumes.
    /// The orchestrator persists the result.
    pub fn clear_manual_rollback(&mut self) {
        self.highest_successful_version = Some(self.version.clone());
    }
}
