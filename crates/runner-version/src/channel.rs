//! Release channels.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Error;

/// A release channel: `stable` (the default), `latest`, or a custom name.
///
/// Names are case-insensitive and stored lower-case; a custom name is
/// 1–64 characters of `a-z`, `0-9`, `-`, `_`, `.`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Channel {
    /// The stable channel, the only one eligible by default.
    #[default]
    Stable,
    /// The latest (pre-release) channel.
    Latest,
    /// Any other channel name.
    Custom(String),
}

impl Channel {
    /// Parses a channel name.
    pub fn parse(input: &str) -> Result<Self, Error> {
        let name = input.trim().to_ascii_lowercase();
        match name.as_str() {
            "stable" => Ok(Self::Stable),
            "latest" => Ok(Self::Latest),
            _ if !name.is_empty()
                && name.len() <= 64
                && name.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b)
                }) =>
            {
                Ok(Self::Custom(name))
            }
            _ => Err(Error::InvalidChannel {
                input: input.into(),
            }),
        }
    }

    /// The channel's name.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Stable => "stable",
            Self::Latest => "latest",
            Self::Custom(name) => name,
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Channel {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Channel {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Channel {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Channel::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_and_custom_names() {
        assert_eq!(Channel::parse("Stable").unwrap(), Channel::Stable);
        assert_eq!(Channel::parse("latest").unwrap(), Channel::Latest);
        assert_eq!(
            Channel::parse("canary-eu").unwrap(),
            Channel::Custom("canary-eu".into())
        );
        assert!(Channel::parse("").is_err());
        assert!(Channel::parse("has space").is_err());
        assert_eq!(Channel::default(), Channel::Stable);
    }
}
