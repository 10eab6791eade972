//! Version requirements: a semver requirement or a calendar prefix.

use std::{fmt, str::FromStr};

use runner_version::Version;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Error;

/// Which releases an operator accepts, by version.
///
/// - A **calendar prefix**: 4 to 8 digits matched against the `YYYYMMDD`
///   date of a calendar version (`2025` = any 2025 release, `202501` = any
///   January 2025 release). Never matches a semver version.
/// - A **semver requirement** (`>=1.4, <2`, `~1.4`, `^2`), with the `semver`
///   crate's rules (pre-releases match only when the requirement names one).
///   Never matches a calendar version.
///
/// Text of 4 to 8 digits parses as a calendar prefix; write `^2025` for the
/// semver requirement on major version 2025.
///
/// ```
/// use update_policy::VersionRequirement;
///
/// let january: VersionRequirement = "202501".parse().unwrap();
/// assert!(january.matches(&"20250117.3".parse().unwrap()));
/// assert!(!january.matches(&"20250201.0".parse().unwrap()));
///
/// let one_x: VersionRequirement = ">=1.4, <2".parse().unwrap();
/// assert!(one_x.matches(&"1.5.0".parse().unwrap()));
/// assert!(!one_x.matches(&"20250117.3".parse().unwrap()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionRequirement {
    /// A semver requirement.
    Semver(semver::VersionReq),
    /// A prefix (4 to 8 digits) of a calendar version's `YYYYMMDD` date.
    CalendarPrefix(String),
}

impl VersionRequirement {
    /// Parses a calendar prefix (4 to 8 digits) or a semver requirement.
    pub fn parse(input: &str) -> Result<Self, Error> {
        let text = input.trim();
        if text.is_empty() {
            return Err(Error::InvalidVersionRequirement {
                input: input.into(),
                reason: "the requirement is empty".into(),
            });
        }
        if text.bytes().all(|b| b.is_ascii_digit()) {
            if (4..=8).contains(&text.len()) {
                return Ok(Self::CalendarPrefix(text.to_string()));
            }
            if text.len() > 8 {
                return Err(Error::InvalidVersionRequirement {
                    input: input.into(),
                    reason: "a calendar prefix has at most 8 digits (YYYYMMDD)".into(),
                });
            }
        }
        semver::VersionReq::parse(text)
            .map(Self::Semver)
            .map_err(|e| Error::InvalidVersionRequirement {
                input: input.into(),
                reason: e.to_string(),
            })
    }

    /// Whether `version` satisfies the requirement. A requirement of one
    /// scheme never matches a version of the other.
    pub fn matches(&self, version: &Version) -> bool {
        match (self, version) {
            (Self::Semver(req), Version::Semver(v)) => req.matches(v),
            (Self::CalendarPrefix(prefix), Version::Calendar(v)) => {
                format!("{:08}", v.date()).starts_with(prefix.as_str())
            }
            _ => false,
        }
    }

    /// The version scheme this requirement applies to.
    pub fn scheme(&self) -> runner_version::VersionScheme {
        match self {
            Self::Semver(_) => runner_version::VersionScheme::Semver,
            Self::CalendarPrefix(_) => runner_version::VersionScheme::Calendar,
        }
    }
}

impl fmt::Display for VersionRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Semver(req) => req.fmt(f),
            Self::CalendarPrefix(prefix) => f.write_str(prefix),
        }
    }
}

impl FromStr for VersionRequirement {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for VersionRequirement {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for VersionRequirement {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        s.parse().unwrap()
    }

    #[test]
    fn calendar_prefixes_and_semver_requirements() {
        let cases = [
            ("2025", "20250101.0", true),
            ("2025", "20241231.9", false),
            ("202501", "20250131.4", true),
            ("202501", "20250201.0", false),
            ("20250115", "20250115.12", true),
            ("20250115", "20250116.0", false),
            ("2025", "2025.0.0", false),
            (">=1.4, <2", "1.4.0", true),
            (">=1.4, <2", "2.0.0", false),
            (">=1.4, <2", "20250101.1", false),
            ("^2025", "2025.1.0", true),
            ("^2025", "20250101.1", false),
            ("~1.4", "1.4.9", true),
            ("^1", "1.5.0-rc.1", false),
        ];
        for (req, version, want) in cases {
            let parsed = VersionRequirement::parse(req).unwrap();
            assert_eq!(parsed.matches(&v(version)), want, "{req} vs {version}");
        }
    }

    #[test]
    fn rejects_bad_requirements() {
        for bad in ["", "202501011", "not a req", ">=x"] {
            assert!(
                matches!(
                    VersionRequirement::parse(bad),
                    Err(Error::InvalidVersionRequirement { .. })
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            VersionRequirement::parse("123").unwrap(),
            VersionRequirement::Semver(_)
        ));
    }

    #[test]
    fn serde_round_trips_as_text() {
        for text in ["202501", ">=1.4, <2"] {
            let req = VersionRequirement::parse(text).unwrap();
            let json = serde_json::to_string(&req).unwrap();
            assert_eq!(
                serde_json::from_str::<VersionRequirement>(&json).unwrap(),
                req
            );
        }
    }
}
