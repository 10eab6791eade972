//! Runner versions: calendar `YYYYMMDD.N` and semver.

use std::{cmp::Ordering, fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Error;

/// A calendar version `YYYYMMDD.N`: a valid date and a build number of that
/// day, ordered numerically (`20250101.10 > 20250101.9`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CalendarVersion {
    date: u32,
    build: u64,
}

impl CalendarVersion {
    /// A calendar version from a `YYYYMMDD` date and a build number.
    pub fn new(date: u32, build: u64) -> Result<Self, Error> {
        let (y, m, d) = (date / 10_000, (date / 100) % 100, date % 100);
        if !(1000..=9999).contains(&y) || chrono::NaiveDate::from_ymd_opt(y as i32, m, d).is_none()
        {
            return Err(Error::InvalidVersion {
                input: format!("{date}.{build}"),
                reason: "the date part is not a valid YYYYMMDD date".into(),
            });
        }
        Ok(Self { date, build })
    }

    /// The `YYYYMMDD` date as a number.
    pub fn date(&self) -> u32 {
        self.date
    }

    /// The build number within the day.
    pub fn build(&self) -> u64 {
        self.build
    }

    /// The release day as a date.
    pub fn day(&self) -> chrono::NaiveDate {
        let (y, m, d) = (self.date / 10_000, (self.date / 100) % 100, self.date % 100);
        chrono::NaiveDate::from_ymd_opt(y as i32, m, d).expect("validated at construction")
    }

    fn parse(input: &str) -> Option<Result<Self, Error>> {
        let (date, build) = input.split_once('.')?;
        if date.len() != 8
            || !date.bytes().all(|b| b.is_ascii_digit())
            || build.is_empty()
            || !build.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let date: u32 = date.parse().ok()?;
        Some(match build.parse::<u64>() {
            Ok(build) => Self::new(date, build),
            Err(_) => Err(Error::InvalidVersion {
                input: input.into(),
                reason: "the build number does not fit in 64 bits".into(),
            }),
        })
    }
}

impl fmt::Display for CalendarVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08}.{}", self.date, self.build)
    }
}

/// The versioning scheme of a [`Version`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionScheme {
    /// `YYYYMMDD.N`.
    Calendar,
    /// Semantic versioning 2.0.
    Semver,
}

impl fmt::Display for VersionScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Calendar => "calendar (YYYYMMDD.N)",
            Self::Semver => "semver",
        })
    }
}

/// A release version: calendar (`YYYYMMDD.N`) or semver.
///
/// Versions of one scheme are totally ordered ([`Version::try_cmp`]); two
/// versions of different schemes cannot be compared, and
/// [`PartialOrd::partial_cmp`] returns `None` for them.
///
/// ```
/// use runner_version::Version;
///
/// let a: Version = "20250101.10".parse().unwrap();
/// let b: Version = "20250101.9".parse().unwrap();
/// assert!(a > b);
/// assert!(a.is_newer_than(&b).unwrap());
///
/// let s: Version = "1.2.3-rc.1".parse().unwrap();
/// assert!(s.try_cmp(&a).is_err()); // mixed schemes are an error
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Version {
    /// A calendar version.
    Calendar(CalendarVersion),
    /// A semantic version.
    Semver(semver::Version),
}

impl Version {
    /// Parses a calendar or semver version. A leading `v` is accepted for
    /// semver (`v1.2.3`).
    pub fn parse(input: &str) -> Result<Self, Error> {
        let trimmed = input.trim();
        if let Some(calendar) = CalendarVersion::parse(trimmed) {
            return calendar.map(Version::Calendar);
        }
        let semver_text = trimmed.strip_prefix('v').unwrap_or(trimmed);
        semver::Version::parse(semver_text)
            .map(Version::Semver)
            .map_err(|e| Error::InvalidVersion {
                input: input.into(),
                reason: format!("neither a calendar version YYYYMMDD.N nor semver ({e})"),
            })
    }

    /// The scheme of this version.
    pub fn scheme(&self) -> VersionScheme {
        match self {
            Self::Calendar(_) => VersionScheme::Calendar,
            Self::Semver(_) => VersionScheme::Semver,
        }
    }

    /// Compares two versions of the same scheme (a total order; for semver
    /// the `semver` crate's order, which breaks precedence ties by build
    /// metadata). Mixed schemes are [`Error::MixedVersionSchemes`].
    pub fn try_cmp(&self, other: &Version) -> Result<Ordering, Error> {
        match (self, other) {
            (Self::Calendar(a), Self::Calendar(b)) => Ok(a.cmp(b)),
            (Self::Semver(a), Self::Semver(b)) => Ok(a.cmp(b)),
            _ => Err(Error::MixedVersionSchemes {
                left: self.to_string(),
                right: other.to_string(),
            }),
        }
    }

    /// Whether `self` is a strictly newer release than `other`. For semver
    /// this is SemVer precedence: build metadata is ignored, so `1.0.0+b`
    /// is not newer than `1.0.0+a`.
    pub fn is_newer_than(&self, other: &Version) -> Result<bool, Error> {
        match (self, other) {
            (Self::Semver(a), Self::Semver(b)) => Ok(a.cmp_precedence(b) == Ordering::Greater),
            _ => Ok(self.try_cmp(other)? == Ordering::Greater),
        }
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        self.try_cmp(other).ok()
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Calendar(v) => v.fmt(f),
            Self::Semver(v) => v.fmt(f),
        }
    }
}

impl FromStr for Version {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Version::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v(s: &str) -> Version {
        s.parse().unwrap()
    }

    #[test]
    fn calendar_orders_numerically() {
        let cases = [
            ("20250101.10", "20250101.9", Ordering::Greater),
            ("20250102.0", "20250101.99", Ordering::Greater),
            ("20250101.1", "20250101.1", Ordering::Equal),
            ("20241231.5", "20250101.0", Ordering::Less),
        ];
        for (a, b, want) in cases {
            assert_eq!(v(a).try_cmp(&v(b)).unwrap(), want, "{a} vs {b}");
        }
    }

    #[test]
    fn semver_follows_precedence_rules() {
        assert!(v("1.0.0") > v("1.0.0-rc.1"));
        assert!(v("1.0.0-rc.10") > v("1.0.0-rc.9"));
        assert!(v("1.0.0-alpha") < v("1.0.0-alpha.1"));
        assert!(v("v2.0.0") > v("1.99.99"));
        assert!(!v("1.0.0+b").is_newer_than(&v("1.0.0+a")).unwrap());
    }

    #[test]
    fn rejects_bad_input_with_reasons() {
        for bad in [
            "",
            "2025.1",
            "20251301.1",
            "20250230.1",
            "20250101.",
            "20250101.x",
            "1.2",
            "latest",
        ] {
            let err = Version::parse(bad).unwrap_err();
            assert!(matches!(err, Error::InvalidVersion { .. }), "{bad}: {err}");
        }
        assert!(matches!(
            v("20250101.1").try_cmp(&v("1.0.0")),
            Err(Error::MixedVersionSchemes { .. })
        ));
        assert_eq!(v("20250101.1").partial_cmp(&v("1.0.0")), None);
    }

    #[test]
    fn serde_round_trips_as_string() {
        let json = serde_json::to_string(&v("20250101.7")).unwrap();
        assert_eq!(json, "\"20250101.7\"");
        assert_eq!(
            serde_json::from_str::<Version>(&json).unwrap(),
            v("20250101.7")
        );
        assert!(serde_json::from_str::<Version>("\"nope\"").is_err());
    }

    fn calendar() -> impl Strategy<Value = Version> {
        (1970u32..2100, 1u32..=12, 1u32..=28, 0u64..1000).prop_map(|(y, m, d, n)| {
            Version::Calendar(CalendarVersion::new(y * 10_000 + m * 100 + d, n).unwrap())
        })
    }

    fn semver() -> impl Strategy<Value = Version> {
        let pre = prop_oneof![Just(String::new()), "(alpha|beta|rc)(\\.[1-9][0-9]?)?"];
        let build = prop_oneof![Just(String::new()), "[a-z0-9]{1,4}"];
        (0u64..4, 0u64..4, 0u64..4, pre, build).prop_map(|(a, b, c, p, m)| {
            let mut s = format!("{a}.{b}.{c}");
            if !p.is_empty() {
                s.push('-');
                s.push_str(&p);
            }
            if !m.is_empty() {
                s.push('+');
                s.push_str(&m);
            }
            Version::parse(&s).unwrap()
        })
    }

    fn same_scheme_triple() -> impl Strategy<Value = (Version, Version, Version)> {
        prop_oneof![
            (calendar(), calendar(), calendar()),
            (semver(), semver(), semver()),
        ]
    }

    proptest! {
        #[test]
        fn order_is_total_antisymmetric_transitive((a, b, c) in same_scheme_triple()) {
            let ab = a.try_cmp(&b).unwrap();
            let ba = b.try_cmp(&a).unwrap();
            prop_assert_eq!(ab, ba.reverse());
            prop_assert_eq!(ab == Ordering::Equal, a == b);
            let bc = b.try_cmp(&c).unwrap();
            if ab != Ordering::Greater && bc != Ordering::Greater {
                prop_assert_ne!(a.try_cmp(&c).unwrap(), Ordering::Greater);
            }
        }

        #[test]
        fn parse_display_round_trips(a in prop_oneof![calendar(), semver()]) {
            prop_assert_eq!(Version::parse(&a.to_string()).unwrap(), a);
        }

        #[test]
        fn parser_never_panics(s in "\\PC*") {
            let _ = Version::parse(&s);
        }

        #[test]
        fn parser_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Version::parse(&String::from_utf8_lossy(&bytes));
        }
    }
}
