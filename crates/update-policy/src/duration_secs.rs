//! Serde helpers: `std::time::Duration` as whole seconds, the form an
//! operator writes in a config file.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

pub(crate) fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(value.as_secs())
}

pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Duration, D::Error> {
    u64::deserialize(deserializer).map(Duration::from_secs)
}

pub(crate) mod option {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(duration) => serializer.serialize_some(&duration.as_secs()),
            None => serializer.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(deserializer)?.map(Duration::from_secs))
    }
}

/// A short human form of a number of seconds: `45s`, `30m`, `4h`,
/// `1d 6h`.
pub(crate) fn human(seconds: u64) -> String {
    const MINUTE: u64 = 60;
    const HOUR: u64 = 60 * MINUTE;
    const DAY: u64 = 24 * HOUR;
    let parts = [
        (seconds / DAY, "d"),
        ((seconds % DAY) / HOUR, "h"),
        ((seconds % HOUR) / MINUTE, "m"),
        (seconds % MINUTE, "s"),
    ];
    let text: Vec<String> = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    if text.is_empty() {
        "0s".into()
    } else {
        text.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::human;

    #[test]
    fn human_durations_read_well() {
        for (secs, want) in [
            (0, "0s"),
            (45, "45s"),
            (1800, "30m"),
            (4 * 3600, "4h"),
            (30 * 3600, "1d 6h"),
            (90_061, "1d 1h 1m 1s"),
        ] {
            assert_eq!(human(secs), want, "{secs}");
        }
    }
}
