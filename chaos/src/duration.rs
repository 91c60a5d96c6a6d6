//! Durations in experiment files are written the way people say them (`10s`, `1m30s`, `500ms`);
//! these serde helpers read them with `humantime`, so every action shares one notation.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// `#[serde(deserialize_with = "crate::duration::required")]`
pub fn required<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse(&text).map_err(serde::de::Error::custom)
}

/// `#[serde(default, deserialize_with = "crate::duration::optional")]`
pub fn optional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    Option::<String>::deserialize(d)?
        .map(|text| parse(&text).map_err(serde::de::Error::custom))
        .transpose()
}

/// Parses `10s`, `1m30s`, `500ms`; `0` means zero.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(text)
        .map_err(|e| format!("invalid duration \"{text}\": {e} (use e.g. 10s, 1m30s, 500ms)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_people_write() {
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        assert!(parse("soon").unwrap_err().contains("soon"));
    }
}
