//! A runner's stable seed for staged rollout waves.

use std::fmt;

use runner_version::FleetPosition;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Prepended to the identity before hashing, so the seed of an identity is
/// unrelated to any other hash of it.
const DOMAIN: &[u8] = b"update-policy/wave-seed/v1\n";

/// A runner's stable seed: where it stands in the fleet for every release's
/// [`WaveSchedule`](runner_version::WaveSchedule).
///
/// Drawn from the runner's identity with SHA-256 (never a randomised
/// hasher): the same identity gets the same seed on every host, every
/// restart and every version of this crate, and distinct identities are
/// spread uniformly over the fleet. Configurable: an operator may choose the
/// identity, or pin a position ([`WaveSeed::at_percent`], e.g. to put a
/// canary runner first).
///
/// Serialises as its `u64` value.
///
/// ```
/// use update_policy::WaveSeed;
///
/// let seed = WaveSeed::from_identity("arn:aws:ecs:eu-west-1:123456789012:service/runners/runner");
/// assert_eq!(seed, WaveSeed::from_identity("arn:aws:ecs:eu-west-1:123456789012:service/runners/runner"));
/// assert_ne!(seed, WaveSeed::from_identity("arn:aws:ecs:eu-west-1:123456789012:service/runners/other"));
/// assert_eq!(WaveSeed::at_percent(0.0).position().to_string(), "0 %");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WaveSeed(u64);

impl WaveSeed {
    /// The seed of a runner identity (an ECS service ARN, a Gitpod runner
    /// id): the first 8 bytes, big-endian, of
    /// `SHA-256("update-policy/wave-seed/v1\n" ‖ identity)`.
    pub fn from_identity(identity: &str) -> Self {
        let digest = Sha256::new()
            .chain_update(DOMAIN)
            .chain_update(identity.as_bytes())
            .finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        Self(u64::from_be_bytes(first))
    }

    /// A seed given as its raw value (as serialised).
    pub const fn from_raw(raw: u64) -> Self {
        Self(raw)
    }

    /// A seed pinned at `percent` of the fleet, rounded to 0.01 % and
    /// clamped to 0..100: `0.0` is in every wave, `100.0` only in the last.
    pub fn at_percent(percent: f64) -> Self {
        let basis_points = (percent.clamp(0.0, 100.0) * 100.0).round() as u128;
        // The smallest raw value whose position is `basis_points`.
        let raw = (basis_points << 64).div_ceil(10_000);
        Self(u64::try_from(raw).unwrap_or(u64::MAX))
    }

    /// The raw value.
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// The runner's position in the fleet.
    pub const fn position(self) -> FleetPosition {
        FleetPosition::from_raw(self.0)
    }
}

impl fmt::Display for WaveSeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (position {})", self.0, self.position())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_seeds_are_stable_across_builds() {
        // Pinned values: changing the hash would reshuffle every fleet's
        // waves, so it must be a deliberate, versioned change.
        // Computed independently (Python's hashlib).
        assert_eq!(
            WaveSeed::from_identity("runner-a").raw(),
            10_868_071_321_895_623_451
        );
        assert_eq!(
            WaveSeed::from_identity("runner-b").raw(),
            2_914_544_215_587_881_826
        );
        assert_eq!(WaveSeed::from_raw(7).raw(), 7);
    }

    #[test]
    fn pinned_percentages_land_where_asked() {
        assert_eq!(WaveSeed::at_percent(-5.0).raw(), 0);
        assert_eq!(WaveSeed::at_percent(100.0).raw(), u64::MAX);
        assert_eq!(WaveSeed::at_percent(250.0).raw(), u64::MAX);
        assert_eq!(WaveSeed::at_percent(37.2).position().to_string(), "37.2 %");
        assert_eq!(WaveSeed::at_percent(7.25).position().to_string(), "7.25 %");
        assert_eq!(WaveSeed::at_percent(f64::NAN).raw(), 0);
        assert_eq!(WaveSeed::at_percent(50.0).position().basis_points(), 5000);
    }
}
