//! What the runner is running now.

use runner_version::{ImageRef, InfraVersion, Version};
use serde::{Deserialize, Serialize};

use crate::{QuarantineEntry, WaveSeed};

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
    /// This runner's seed for staged rollout waves: the orchestrator draws
    /// it from the runner's identity ([`WaveSeed::from_identity`], e.g. the
    /// ECS service ARN) or from the operator's configuration. `None` puts
    /// the runner at the back of the fleet: it waits for the last wave of a
    /// release that has waves (and is not affected by releases without).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wave_seed: Option<WaveSeed>,
}

impl CurrentState {
    /// A state with no success history, an empty quarantine and no wave
    /// seed.
    pub fn new(version: Version, image: ImageRef, infra_version: InfraVersion) -> Self {
        Self {
            version,
            image,
            infra_version,
            highest_successful_version: None,
            quarantine: Vec::new(),
            wave_seed: None,
        }
    }

    /// The same state with the runner's wave seed set.
    pub fn with_wave_seed(mut self, seed: WaveSeed) -> Self {
        self.wave_seed = Some(seed);
        self
    }

    /// The operator's acknowledgement of a manual rollback: the running
    /// version becomes the highest successful one, so updating resumes.
    /// The orchestrator persists the result.
    pub fn clear_manual_rollback(&mut self) {
        self.highest_successful_version = Some(self.version.clone());
    }
}
