//! Staged rollout waves: a release reaches 1 %, then 10 %, then all of the
//! fleet, without a central coordinator (modelled on Bottlerocket's update
//! waves).
//!
//! A release may carry a [`WaveSchedule`]: a list of cumulative [`Wave`]s,
//! each opening `start_after` the release's publication time
//! ([`Release::released_at`](crate::Release::released_at)) for the first
//! `fleet_percentage` of the fleet. Every runner has a stable
//! [`FleetPosition`] (drawn by the updater from its identity); a runner may
//! update once the first wave whose share covers its position has opened.
//! A publisher stops a bad release by withdrawing it (or letting it expire)
//! before its later waves open.
//!
//! Rules ([`WaveSchedule::new`] refuses anything else):
//! - every `fleet_percentage` is in (0, 100], in steps of 0.01 %;
//! - `start_after` and `fleet_percentage` both strictly increase;
//! - **the last wave must reach 100 %**. There is no implicit final
//!   "everyone" wave: a schedule ending at 50 % is refused rather than
//!   guessed, so the document says exactly when the whole fleet may update;
//! - `start_after` is at most 366 days (longer is a unit mistake);
//! - an empty schedule (the default) means everyone at once.
//!
//! JSON form, part of the signed release document:
//!
//! ```json
//! "waves": [
//!   { "start_after": 0,     "fleet_percentage": 1 },
//!   { "start_after": "6h",  "fleet_percentage": "10.5" },
//!   { "start_after": 86400, "fleet_percentage": 100 }
//! ]
//! ```
//!
//! `start_after` is whole seconds, or a string of `<number><unit>` parts
//! (`s`, `m`, `h`, `d`, or the words: `"1h 30m"`, `"2 days"`);
//! `fleet_percentage` is an integer, or a string with up to two decimals
//! (JSON floats have no canonical form and cannot be signed). Serialised,
//! `start_after` is whole seconds and `fleet_percentage` an integer when
//! whole, else a string.

use std::{fmt, str::FromStr, time::Duration};

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

use crate::Error;

/// The longest `start_after` accepted: 366 days.
pub const MAXIMUM_START_AFTER: Duration = Duration::from_secs(366 * 24 * 3600);

const BASIS_POINTS: u16 = 10_000;

fn invalid(reason: impl Into<String>) -> Error {
    Error::InvalidConfig {
        what: "release wave schedule",
        reason: reason.into(),
    }
}

/// A share of the fleet in (0 %, 100 %], in hundredths of a percent.
///
/// ```
/// use runner_version::FleetPercentage;
///
/// let share: FleetPercentage = "12.5".parse().unwrap();
/// assert_eq!(share.basis_points(), 1250);
/// assert_eq!(share.to_string(), "12.5 %");
/// assert!("0".parse::<FleetPercentage>().is_err());
/// assert!("100.01".parse::<FleetPercentage>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FleetPercentage(u16);

impl FleetPercentage {
    /// The whole fleet.
    pub const ALL: Self = Self(BASIS_POINTS);

    /// A whole percentage, 1 to 100.
    pub fn from_percent(percent: u8) -> Result<Self, Error> {
        Self::from_basis_points(u16::from(percent) * 100)
    }

    /// Hundredths of a percent, 1 (0.01 %) to 10 000 (100 %).
    pub fn from_basis_points(basis_points: u16) -> Result<Self, Error> {
        if basis_points == 0 || basis_points > BASIS_POINTS {
            return Err(invalid(format!(
                "fleet_percentage {} % is outside (0, 100]",
                Self(basis_points)
            )));
        }
        Ok(Self(basis_points))
    }

    /// The share in hundredths of a percent (10 000 is the whole fleet).
    pub fn basis_points(self) -> u16 {
        self.0
    }

    /// Whether a runner at `position` is in this share of the fleet (the
    /// positions from 0 up to, not including, the share).
    pub fn covers(self, position: FleetPosition) -> bool {
        u128::from(position.0) * u128::from(BASIS_POINTS) < u128::from(self.0) << 64
    }
}

/// Writes hundredths of a percent as a decimal without trailing zeros.
fn write_basis_points(f: &mut fmt::Formatter<'_>, basis_points: u64) -> fmt::Result {
    let (whole, hundredths) = (basis_points / 100, basis_points % 100);
    match hundredths {
        0 => write!(f, "{whole}"),
        h if h.is_multiple_of(10) => write!(f, "{whole}.{}", h / 10),
        h => write!(f, "{whole}.{h:02}"),
    }
}

impl fmt::Display for FleetPercentage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_basis_points(f, u64::from(self.0))?;
        f.write_str(" %")
    }
}

impl FromStr for FleetPercentage {
    type Err = Error;

    /// `"10"`, `"0.5"`, `"12.25"`, optionally followed by `%`.
    fn from_str(s: &str) -> Result<Self, Error> {
        let text = s.trim().trim_end_matches('%').trim_end();
        let bad = || {
            invalid(format!(
                "fleet_percentage {s:?} is not a percentage; write 1 to 100 with at most two \
                 decimals, such as \"10\" or \"0.5\""
            ))
        };
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        if whole.is_empty()
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || fraction.len() > 2
            || !fraction.bytes().all(|b| b.is_ascii_digit())
            || whole.len() > 3
        {
            return Err(bad());
        }
        let whole: u16 = whole.parse().map_err(|_| bad())?;
        let fraction: u16 = format!("{fraction:0<2}").parse().map_err(|_| bad())?;
        let basis_points = whole.checked_mul(100).ok_or_else(bad)? + fraction;
        Self::from_basis_points(basis_points)
    }
}

impl Serialize for FleetPercentage {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0.is_multiple_of(100) {
            serializer.serialize_u16(self.0 / 100)
        } else {
            serializer.collect_str(&format_args!("{}", DecimalPercent(self.0)))
        }
    }
}

/// A percentage without the `%` sign (the string form in JSON).
struct DecimalPercent(u16);

impl fmt::Display for DecimalPercent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_basis_points(f, u64::from(self.0))
    }
}

impl<'de> Deserialize<'de> for FleetPercentage {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Whole(u64),
            Text(String),
            Float(f64),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Whole(n) => u8::try_from(n)
                .map_err(|_| invalid(format!("fleet_percentage {n} % is outside (0, 100]")))
                .and_then(FleetPercentage::from_percent),
            Raw::Text(text) => text.parse(),
            Raw::Float(x) => Err(invalid(format!(
                "fleet_percentage {x} is a JSON float, which cannot be signed; write it as a \
                 string such as \"{x}\""
            ))),
        }
        .map_err(de::Error::custom)
    }
}

/// A runner's stable place in the fleet: a number uniform over `u64`, read
/// as the fraction `raw / 2^64` of the fleet before it.
///
/// The updater draws it from the runner's identity (see `update-policy`'s
/// `WaveSeed`); it never changes for a runner, so a runner in the first
/// 1 % of one release is in the first 1 % of every release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FleetPosition(u64);

impl FleetPosition {
    /// The front of the fleet (in every wave).
    pub const FIRST: Self = Self(0);
    /// The back of the fleet (only in a wave of 100 %).
    pub const LAST: Self = Self(u64::MAX);

    /// The position `raw / 2^64`.
    pub const fn from_raw(raw: u64) -> Self {
        Self(raw)
    }

    /// The raw `u64`.
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// The position in hundredths of a percent, rounded down (0 to 9 999).
    pub fn basis_points(self) -> u16 {
        ((u128::from(self.0) * u128::from(BASIS_POINTS)) >> 64) as u16
    }
}

impl fmt::Display for FleetPosition {
    /// The position as a percentage, rounded down to 0.01 % (so a position
    /// never reads as inside a share it is not in): `37.2 %`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_basis_points(f, u64::from(self.basis_points()))?;
        f.write_str(" %")
    }
}

/// One wave: `start_after` the release's publication, the first
/// `fleet_percentage` of the fleet (cumulative) may update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Wave {
    /// How long after [`Release::released_at`](crate::Release::released_at)
    /// the wave opens.
    #[serde(
        serialize_with = "serialize_secs",
        deserialize_with = "deserialize_start_after"
    )]
    pub start_after: Duration,
    /// The share of the fleet eligible once the wave opens, counting the
    /// earlier waves.
    pub fleet_percentage: FleetPercentage,
}

impl Wave {
    /// A wave of `fleet_percentage` opening `start_after` the release.
    pub fn new(start_after: Duration, fleet_percentage: FleetPercentage) -> Self {
        Self {
            start_after,
            fleet_percentage,
        }
    }

    /// When the wave opens for a release published at `released_at`
    /// (saturating at the latest representable instant).
    pub fn opens_at(&self, released_at: DateTime<Utc>) -> DateTime<Utc> {
        TimeDelta::from_std(self.start_after)
            .ok()
            .and_then(|after| released_at.checked_add_signed(after))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

fn serialize_secs<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(value.as_secs())
}

fn deserialize_start_after<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Secs(u64),
        Text(String),
    }
    match Raw::deserialize(deserializer)? {
        Raw::Secs(secs) => Ok(Duration::from_secs(secs)),
        Raw::Text(text) => parse_duration(&text).map_err(de::Error::custom),
    }
}

/// Parses `"90"`, `"45s"`, `"30m"`, `"1h 30m"`, `"2 days"`.
fn parse_duration(text: &str) -> Result<Duration, Error> {
    let bad = |why: &str| {
        invalid(format!(
            "start_after {text:?} {why}; write whole seconds or parts such as \"6h\", \
             \"1h 30m\", \"2d\""
        ))
    };
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad("is empty"));
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad("has a unit without a number"));
        }
        let number: u64 = rest[..digits].parse().map_err(|_| bad("is too large"))?;
        rest = rest[digits..].trim_start();
        let letters = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = match &rest[..letters] {
            "" if total == 0 && rest.is_empty() => 1,
            "s" | "sec" | "secs" | "second" | "seconds" => 1,
            "m" | "min" | "mins" | "minute" | "minutes" => 60,
            "h" | "hour" | "hours" => 3600,
            "d" | "day" | "days" => 86_400,
            "" => return Err(bad("has a number without a unit")),
            _ => return Err(bad("has an unknown unit")),
        };
        rest = rest[letters..].trim_start();
        total = number
            .checked_mul(unit)
            .and_then(|n| total.checked_add(n))
            .ok_or_else(|| bad("is too large"))?;
    }
    Ok(Duration::from_secs(total))
}

/// The waves of a release, validated (see the [module rules](self)); empty
/// (the default) means the whole fleet at once.
///
/// ```
/// use std::time::Duration;
/// use chrono::{TimeZone, Utc};
/// use runner_version::{FleetPercentage, FleetPosition, Wave, WaveSchedule};
///
/// let hours = |h: u64| Duration::from_secs(h * 3600);
/// let pct = |p| FleetPercentage::from_percent(p).unwrap();
/// let schedule = WaveSchedule::new(vec![
///     Wave::new(hours(0), pct(1)),
///     Wave::new(hours(6), pct(10)),
///     Wave::new(hours(24), pct(100)),
/// ])?;
/// let released = Utc.with_ymd_and_hms(2025, 1, 10, 9, 0, 0).unwrap();
///
/// // A runner at 5 % of the fleet is in wave 2, open 6 hours after release.
/// let position = FleetPosition::from_raw(u64::MAX / 20);
/// let wave = schedule.wave_of(position).unwrap();
/// assert_eq!(wave.number, 2);
/// assert_eq!(
///     schedule.opens_at(released, position),
///     Some(Utc.with_ymd_and_hms(2025, 1, 10, 15, 0, 0).unwrap())
/// );
///
/// // Percentages must increase and the last wave must reach everyone.
/// assert!(WaveSchedule::new(vec![Wave::new(hours(0), pct(10))]).is_err());
/// assert!(WaveSchedule::default().is_empty());
/// # Ok::<(), runner_version::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "Vec<Wave>", into = "Vec<Wave>")]
pub struct WaveSchedule {
    waves: Vec<Wave>,
}

/// The wave a fleet position belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaveAssignment<'a> {
    /// The wave's number, counting from 1.
    pub number: usize,
    /// How many waves the schedule has.
    pub of: usize,
    /// The wave.
    pub wave: &'a Wave,
}

impl WaveSchedule {
    /// No waves: the whole fleet at once.
    pub fn everyone_at_once() -> Self {
        Self::default()
    }

    /// A schedule of `waves`, checked against the [module rules](self): an
    /// empty list is [`WaveSchedule::everyone_at_once`].
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming the offending wave (counting from 1)
    /// and what to change.
    pub fn new(waves: Vec<Wave>) -> Result<Self, Error> {
        for (i, wave) in waves.iter().enumerate() {
            let number = i + 1;
            if wave.start_after > MAXIMUM_START_AFTER {
                return Err(invalid(format!(
                    "wave {number} starts {} s after the release, over a year; start_after is \
                     in seconds",
                    wave.start_after.as_secs()
                )));
            }
            // The fields are public: re-check the range of a percentage
            // built without `FleetPercentage::from_basis_points`.
            FleetPercentage::from_basis_points(wave.fleet_percentage.0)?;
            if let Some(previous) = i.checked_sub(1).map(|p| &waves[p]) {
                if wave.start_after <= previous.start_after {
                    return Err(invalid(format!(
                        "wave {number} starts {} s after the release, not later than wave {i} \
                         ({} s); start_after must strictly increase",
                        wave.start_after.as_secs(),
                        previous.start_after.as_secs()
                    )));
                }
                if wave.fleet_percentage <= previous.fleet_percentage {
                    return Err(invalid(format!(
                        "wave {number} covers {} of the fleet, not more than wave {i} ({}); \
                         fleet_percentage is cumulative and must strictly increase",
                        wave.fleet_percentage, previous.fleet_percentage
                    )));
                }
            }
        }
        if let Some(last) = waves.last()
            && last.fleet_percentage != FleetPercentage::ALL
        {
            return Err(invalid(format!(
                "the last wave (wave {}) covers {} of the fleet; the last wave must cover 100 % \
                 so that every runner eventually updates: add a final wave with \
                 fleet_percentage 100",
                waves.len(),
                last.fleet_percentage
            )));
        }
        Ok(Self { waves })
    }

    /// Whether there are no waves (everyone at once).
    pub fn is_empty(&self) -> bool {
        self.waves.is_empty()
    }

    /// The waves, in order.
    pub fn waves(&self) -> &[Wave] {
        &self.waves
    }

    /// The wave a runner at `position` belongs to: the first whose share
    /// covers it. `None` for an empty schedule.
    pub fn wave_of(&self, position: FleetPosition) -> Option<WaveAssignment<'_>> {
        let of = self.waves.len();
        self.waves
            .iter()
            .enumerate()
            .find(|(_, wave)| wave.fleet_percentage.covers(position))
            .map(|(i, wave)| WaveAssignment {
                number: i + 1,
                of,
                wave,
            })
    }

    /// When a runner at `position` may update a release published at
    /// `released_at`; `None` for an empty schedule (at once).
    pub fn opens_at(
        &self,
        released_at: DateTime<Utc>,
        position: FleetPosition,
    ) -> Option<DateTime<Utc>> {
        self.wave_of(position)
            .map(|assignment| assignment.wave.opens_at(released_at))
    }

    /// The share of the fleet eligible at `now` for a release published at
    /// `released_at`: that of the last open wave, zero before the first,
    /// everyone for an empty schedule. In basis points (10 000 = 100 %).
    pub fn share_open_at(&self, released_at: DateTime<Utc>, now: DateTime<Utc>) -> u16 {
        if self.is_empty() {
            return BASIS_POINTS;
        }
        self.waves
            .iter()
            .take_while(|wave| wave.opens_at(released_at) <= now)
            .last()
            .map_or(0, |wave| wave.fleet_percentage.0)
    }
}

impl TryFrom<Vec<Wave>> for WaveSchedule {
    type Error = Error;

    fn try_from(waves: Vec<Wave>) -> Result<Self, Error> {
        Self::new(waves)
    }
}

impl From<WaveSchedule> for Vec<Wave> {
    fn from(schedule: WaveSchedule) -> Self {
        schedule.waves
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Channel, ImageRef, Release, SignedManifest, TrustPolicy};
    use ed25519_dalek::SigningKey;
    use serde_json::json;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn pct(p: u8) -> FleetPercentage {
        FleetPercentage::from_percent(p).unwrap()
    }

    fn three_waves() -> WaveSchedule {
        WaveSchedule::new(vec![
            Wave::new(secs(0), pct(1)),
            Wave::new(secs(3600), pct(10)),
            Wave::new(secs(86_400), pct(100)),
        ])
        .unwrap()
    }

    #[test]
    fn validation_table() {
        // (waves as JSON, Ok or the text the error must contain)
        let cases: &[(serde_json::Value, Result<(), &str>)] = &[
            (json!([]), Ok(())),
            (json!([{"start_after": 0, "fleet_percentage": 100}]), Ok(())),
            (
                json!([{"start_after": "1h", "fleet_percentage": "0.5"},
                       {"start_after": "1d 2h", "fleet_percentage": 100}]),
                Ok(()),
            ),
            (
                json!([{"start_after": 0, "fleet_percentage": 0},
                       {"start_after": 1, "fleet_percentage": 100}]),
                Err("outside (0, 100]"),
            ),
            (
                json!([{"start_after": 0, "fleet_percentage": 101}]),
                Err("outside (0, 100]"),
            ),
            (
                json!([{"start_after": 0, "fleet_percentage": "100.5"}]),
                Err("outside (0, 100]"),
            ),
            (
                json!([{"start_after": 0, "fleet_percentage": 1.5},
                       {"start_after": 1, "fleet_percentage": 100}]),
                Err("JSON float"),
            ),
            (
                json!([{"start_after": 0, "fleet_percentage": "1.555"}]),
                Err("at most two decimals"),
            ),
            (
                json!([{"start_after": 60, "fleet_percentage": 10},
                       {"start_after": 60, "fleet_percentage": 100}]),
                Err("start_after must strictly increase"),
            ),
            (
                json!([{"start_after": 60, "fleet_percentage": 10},
                       {"start_after": 30, "fleet_percentage": 100}]),
                Err("wave 2 starts 30 s"),
            ),
            (
                json!([{"start_after": 0, "fleet_percentage": 10},
                       {"start_after": 60, "fleet_percentage": 10},
                       {"start_after": 120, "fleet_percentage": 100}]),
                Err("fleet_percentage is cumulative and must strictly increase"),
            ),
            (
                json!([{"start_after": 0, "fleet_percentage": 1},
                       {"start_after": 60, "fleet_percentage": 50}]),
                Err("the last wave must cover 100 %"),
            ),
            (
                json!([{"start_after": 400 * 86_400, "fleet_percentage": 100}]),
                Err("over a year"),
            ),
            (
                json!([{"start_after": "1 fortnight", "fleet_percentage": 100}]),
                Err("unknown unit"),
            ),
            (
                json!([{"start_after": "1h 30", "fleet_percentage": 100}]),
                Err("without a unit"),
            ),
            (
                json!([{"start_after": "", "fleet_percentage": 100}]),
                Err("is empty"),
            ),
            (json!([{"fleet_percentage": 100}]), Err("start_after")),
        ];
        for (waves, want) in cases {
            let got = serde_json::from_value::<WaveSchedule>(waves.clone());
            match (got, want) {
                (Ok(_), Ok(())) => {}
                (Err(e), Err(text)) => assert!(e.to_string().contains(text), "{waves}: {e}"),
                (got, want) => panic!("{waves}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn new_rejects_out_of_range_percentages_built_by_hand() {
        let err = WaveSchedule::new(vec![Wave::new(secs(0), FleetPercentage(0))]).unwrap_err();
        assert!(matches!(err, Error::InvalidConfig { .. }), "{err}");
    }

    #[test]
    fn durations_parse() {
        for (text, want) in [
            ("90", 90),
            ("45s", 45),
            ("30m", 1800),
            ("1h 30m", 5400),
            ("1h30m", 5400),
            ("2 days", 172_800),
            ("1 hour", 3600),
        ] {
            assert_eq!(parse_duration(text).unwrap(), secs(want), "{text}");
        }
        for bad in ["h", "1x", "1h 2", "99999999999999999999s", "-1h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn serde_round_trips_in_canonical_form() {
        let schedule = WaveSchedule::new(vec![
            Wave::new(secs(0), FleetPercentage::from_basis_points(50).unwrap()),
            Wave::new(
                secs(7200),
                FleetPercentage::from_basis_points(1025).unwrap(),
            ),
            Wave::new(secs(86_400), pct(100)),
        ])
        .unwrap();
        let value = serde_json::to_value(&schedule).unwrap();
        assert_eq!(
            value,
            json!([
                {"start_after": 0, "fleet_percentage": "0.5"},
                {"start_after": 7200, "fleet_percentage": "10.25"},
                {"start_after": 86400, "fleet_percentage": 100},
            ])
        );
        assert_eq!(
            serde_json::from_value::<WaveSchedule>(value).unwrap(),
            schedule
        );
    }

    #[test]
    fn positions_map_to_waves_at_the_boundaries() {
        let schedule = three_waves();
        // 1 % of 2^64, rounded up: the first position outside wave 1.
        let one_percent = ((1u128 << 64).div_ceil(100)) as u64;
        let cases = [
            (FleetPosition::FIRST, 1),
            (FleetPosition::from_raw(one_percent - 1), 1),
            (FleetPosition::from_raw(one_percent), 2),
            (FleetPosition::from_raw(u64::MAX / 10), 2),
            (FleetPosition::from_raw(u64::MAX / 10 + 2), 3),
            (FleetPosition::LAST, 3),
        ];
        for (position, want) in cases {
            assert_eq!(
                schedule.wave_of(position).unwrap().number,
                want,
                "{position}"
            );
        }
        assert_eq!(WaveSchedule::default().wave_of(FleetPosition::LAST), None);
        assert_eq!(
            FleetPosition::from_raw(one_percent - 1).to_string(),
            "0.99 %"
        );
        assert_eq!(FleetPosition::LAST.to_string(), "99.99 %");
        assert_eq!(
            FleetPosition::from_raw(u64::MAX / 5 * 2 + 1).to_string(),
            "40 %"
        );
    }

    #[test]
    fn share_open_follows_the_schedule() {
        let schedule = three_waves();
        let released = DateTime::<Utc>::from_timestamp(1_736_500_000, 0).unwrap();
        let at = |s: i64| released + TimeDelta::seconds(s);
        assert_eq!(schedule.share_open_at(released, at(-1)), 0);
        assert_eq!(schedule.share_open_at(released, at(0)), 100);
        assert_eq!(schedule.share_open_at(released, at(3599)), 100);
        assert_eq!(schedule.share_open_at(released, at(3600)), 1000);
        assert_eq!(schedule.share_open_at(released, at(86_400)), 10_000);
        assert_eq!(
            WaveSchedule::default().share_open_at(released, at(-1)),
            10_000
        );
    }

    fn release(waves: WaveSchedule) -> Release {
        Release {
            version: "20250101.1".parse().unwrap(),
            channel: Channel::Stable,
            image: ImageRef::parse(&format!("r.io/runner@sha256:{}", "a".repeat(64))).unwrap(),
            proxy_image: None,
            infra_version: None,
            template_url: "https://example.com/t.json".into(),
            template_sha256: None,
            released_at: Some(DateTime::<Utc>::from_timestamp(1_736_500_000, 0).unwrap()),
            expires: None,
            waves,
        }
    }

    #[test]
    fn waves_are_signed_with_the_release() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let trust = TrustPolicy::new(1).with_key("k", key.verifying_key());
        let signed = SignedManifest::sign(&release(three_waves()), &[("k", &key)]).unwrap();
        assert!(trust.verify(&signed).is_ok());
        assert_eq!(
            signed.release("test").unwrap().waves,
            three_waves(),
            "the waves survive signing"
        );

        // Opening wave 2 to half the fleet, or opening it sooner, breaks
        // every signature.
        for (field, value) in [("fleet_percentage", json!(50)), ("start_after", json!(60))] {
            let mut tampered = signed.clone();
            tampered.signed_document_mut()["waves"][1][field] = value;
            let err = trust.verify(&tampered).unwrap_err();
            assert!(matches!(err, Error::BadSignature { .. }), "{field}: {err}");
        }
        // Dropping the waves (everyone at once) breaks it too.
        let mut tampered = signed.clone();
        tampered
            .signed_document_mut()
            .as_object_mut()
            .unwrap()
            .remove("waves");
        assert!(matches!(
            trust.verify(&tampered),
            Err(Error::BadSignature { .. })
        ));
    }

    #[test]
    fn a_release_without_waves_signs_as_before() {
        let signed = SignedManifest::sign(&release(WaveSchedule::default()), &[]).unwrap();
        assert!(signed.signed_document().get("waves").is_none());
    }

    #[test]
    fn invalid_waves_in_a_manifest_are_malformed() {
        let signed = SignedManifest::sign(&release(three_waves()), &[]).unwrap();
        let mut doc = signed.clone();
        doc.signed_document_mut()["waves"][2]["fleet_percentage"] = json!(90);
        let err = doc.release("https://example.com/m.json").unwrap_err();
        assert!(
            matches!(&err, Error::MalformedManifest { reason, .. } if reason.contains("100 %")),
            "{err}"
        );
    }
}
