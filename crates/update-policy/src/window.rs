//! Daily UTC update windows, possibly crossing midnight.

use std::fmt;

use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, Timelike, Utc};
use serde::{Deserialize, Serialize};

use crate::Error;

/// A daily update window in UTC, `[start, end)`.
///
/// When `start > end` the window crosses midnight: `22:00–02:00` is the four
/// hours from 22:00 to 02:00 the next morning, never the twenty hours in
/// between. A window with `start == end` is rejected as ambiguous (empty or
/// the whole day?); to allow updates at any time, set no window.
///
/// An occurrence of a window that crosses midnight **belongs to the day it
/// opened on**: the `22:00–02:00` window at Saturday 01:00 is Friday's window
/// ([`UpdateWindow::opened_on`]); the weekday allow-list of an
/// [`UpdatePolicy`](crate::UpdatePolicy) is judged on that day.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use update_policy::UpdateWindow;
///
/// let night = UpdateWindow::from_hm(22, 0, 2, 0).unwrap();
/// assert_eq!(night.length().num_hours(), 4);
/// assert!(night.contains(Utc.with_ymd_and_hms(2025, 1, 4, 1, 0, 0).unwrap()));
/// assert!(!night.contains(Utc.with_ymd_and_hms(2025, 1, 4, 12, 0, 0).unwrap()));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "WindowFields")]
pub struct UpdateWindow {
    start: NaiveTime,
    end: NaiveTime,
}

#[derive(Deserialize)]
struct WindowFields {
    start: NaiveTime,
    end: NaiveTime,
}

impl TryFrom<WindowFields> for UpdateWindow {
    type Error = Error;
    fn try_from(fields: WindowFields) -> Result<Self, Error> {
        Self::new(fields.start, fields.end)
    }
}

impl UpdateWindow {
    /// A window from `start` (inclusive) to `end` (exclusive), UTC.
    /// [`Error::InvalidWindow`] when `start == end`.
    pub fn new(start: NaiveTime, end: NaiveTime) -> Result<Self, Error> {
        if start == end {
            return Err(Error::InvalidWindow {
                start,
                end,
                reason: "start equals end, which is ambiguous (an empty window or the whole \
                         day); to allow updates at any time, configure no window"
                    .into(),
            });
        }
        Ok(Self { start, end })
    }

    /// A window from hours and minutes, e.g. `from_hm(22, 0, 2, 0)`.
    pub fn from_hm(
        start_hour: u32,
        start_min: u32,
        end_hour: u32,
        end_min: u32,
    ) -> Result<Self, Error> {
        let time = |h: u32, m: u32| {
            NaiveTime::from_hms_opt(h, m, 0).ok_or_else(|| Error::InvalidPolicy {
                field: "window",
                reason: format!("{h:02}:{m:02} is not a time of day; use 00:00 to 23:59"),
            })
        };
        Self::new(time(start_hour, start_min)?, time(end_hour, end_min)?)
    }

    /// The opening time (inclusive), UTC.
    pub fn start(&self) -> NaiveTime {
        self.start
    }

    /// The closing time (exclusive), UTC.
    pub fn end(&self) -> NaiveTime {
        self.end
    }

    /// Whether the window runs past midnight (`start > end`).
    pub fn crosses_midnight(&self) -> bool {
        self.start > self.end
    }

    /// How long the window is open each day (always between zero and 24 h,
    /// exclusive).
    pub fn length(&self) -> TimeDelta {
        let length = self.end - self.start;
        if length < TimeDelta::zero() {
            length + TimeDelta::days(1)
        } else {
            length
        }
    }

    /// The day the occurrence of the window containing `now` opened on, or
    /// `None` when `now` is outside the window. For a window crossing
    /// midnight, the part after midnight belongs to the previous day.
    pub fn opened_on(&self, now: DateTime<Utc>) -> Option<NaiveDate> {
        let time = now.time();
        let today = now.date_naive();
        if !self.crosses_midnight() {
            (self.start <= time && time < self.end).then_some(today)
        } else if time >= self.start {
            Some(today)
        } else if time < self.end {
            today.pred_opt()
        } else {
            None
        }
    }

    /// Whether `now` is inside the window.
    pub fn contains(&self, now: DateTime<Utc>) -> bool {
        self.opened_on(now).is_some()
    }

    /// The next time the window opens strictly after `now`.
    pub fn next_open_after(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let today = now.date_naive();
        let opening = today.and_time(self.start).and_utc();
        if opening > now {
            return opening;
        }
        today
            .succ_opt()
            .map(|tomorrow| tomorrow.and_time(self.start).and_utc())
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

fn write_time(f: &mut fmt::Formatter<'_>, time: NaiveTime) -> fmt::Result {
    if time.second() == 0 && time.nanosecond() == 0 {
        write!(f, "{}", time.format("%H:%M"))
    } else {
        write!(f, "{}", time.format("%H:%M:%S"))
    }
}

impl fmt::Display for UpdateWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_time(f, self.start)?;
        f.write_str("-")?;
        write_time(f, self.end)?;
        f.write_str(" UTC")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(d: u32, h: u32, m: u32) -> DateTime<Utc> {
        // January 2025: the 3rd is a Friday.
        Utc.with_ymd_and_hms(2025, 1, d, h, m, 0).unwrap()
    }

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 1, d).unwrap()
    }

    #[test]
    fn membership_and_opening_day_at_the_edges() {
        let night = UpdateWindow::from_hm(22, 0, 2, 0).unwrap();
        let office = UpdateWindow::from_hm(9, 0, 17, 30).unwrap();
        let cases = [
            (night, at(3, 21, 59), None),
            (night, at(3, 22, 0), Some(day(3))),
            (night, at(3, 23, 59), Some(day(3))),
            (night, at(4, 0, 0), Some(day(3))),
            (night, at(4, 1, 59), Some(day(3))),
            (night, at(4, 2, 0), None),
            (night, at(4, 12, 0), None),
            (office, at(3, 8, 59), None),
            (office, at(3, 9, 0), Some(day(3))),
            (office, at(3, 17, 29), Some(day(3))),
            (office, at(3, 17, 30), None),
            (office, at(3, 23, 0), None),
        ];
        for (window, now, want) in cases {
            assert_eq!(window.opened_on(now), want, "{window} at {now}");
            assert_eq!(window.contains(now), want.is_some(), "{window} at {now}");
        }
    }

    #[test]
    fn lengths_never_count_the_wrong_side_of_midnight() {
        let cases = [
            ((22, 0, 2, 0), 4 * 60),
            ((2, 0, 22, 0), 20 * 60),
            ((23, 59, 0, 0), 1),
            ((0, 0, 23, 59), 23 * 60 + 59),
            ((9, 0, 17, 30), 8 * 60 + 30),
        ];
        for ((a, b, c, d), minutes) in cases {
            let window = UpdateWindow::from_hm(a, b, c, d).unwrap();
            assert_eq!(window.length().num_minutes(), minutes, "{window}");
            assert_eq!(window.crosses_midnight(), (a, b) > (c, d), "{window}");
        }
    }

    #[test]
    fn next_opening_is_strictly_after_now() {
        let night = UpdateWindow::from_hm(22, 0, 2, 0).unwrap();
        assert_eq!(night.next_open_after(at(3, 12, 0)), at(3, 22, 0));
        assert_eq!(night.next_open_after(at(3, 22, 0)), at(4, 22, 0));
        assert_eq!(night.next_open_after(at(4, 1, 0)), at(4, 22, 0));
    }

    #[test]
    fn rejects_empty_and_impossible_windows() {
        assert!(matches!(
            UpdateWindow::from_hm(3, 0, 3, 0),
            Err(Error::InvalidWindow { .. })
        ));
        assert!(UpdateWindow::from_hm(24, 0, 2, 0).is_err());
        assert!(UpdateWindow::from_hm(1, 60, 2, 0).is_err());
        let json = r#"{"start":"03:00:00","end":"03:00:00"}"#;
        assert!(serde_json::from_str::<UpdateWindow>(json).is_err());
    }

    #[test]
    fn serde_round_trips_and_displays() {
        let night = UpdateWindow::from_hm(22, 0, 2, 0).unwrap();
        let json = serde_json::to_string(&night).unwrap();
        assert_eq!(json, r#"{"start":"22:00:00","end":"02:00:00"}"#);
        assert_eq!(serde_json::from_str::<UpdateWindow>(&json).unwrap(), night);
        assert_eq!(night.to_string(), "22:00-02:00 UTC");
    }

    #[test]
    fn displays_seconds_only_when_a_bound_has_them() {
        let t = |h, m, s| NaiveTime::from_hms_opt(h, m, s).unwrap();
        let window = UpdateWindow::new(t(8, 0, 30), t(17, 0, 0)).unwrap();
        assert_eq!(window.to_string(), "08:00:30-17:00 UTC");
        let window = UpdateWindow::new(t(8, 0, 0), t(17, 30, 5)).unwrap();
        assert_eq!(window.to_string(), "08:00-17:30:05 UTC");
    }
}
