//! Instants on the command line: RFC 3339 (`2025-01-02T03:04:05Z`) or relative to now
//! (`now`, `now-15m`, `now+30s`), so a CI job can say "the last 15 minutes" without `date`;
//! and instants in verdict text, written the same way, because people read verdicts and Unix
//! seconds mean nothing at a glance.

use chrono::{DateTime, SecondsFormat, Utc};

/// Unix seconds as RFC 3339 UTC for verdict text: `2025-01-02T03:04:05Z`, with milliseconds
/// (`...05.250Z`) when the instant has a fraction of a second.
pub fn human_instant(unix_seconds: f64) -> String {
    let millis = (unix_seconds * 1000.0).round() as i64;
    match DateTime::<Utc>::from_timestamp_millis(millis) {
        Some(at) if millis % 1000 == 0 => at.to_rfc3339_opts(SecondsFormat::Secs, true),
        Some(at) => at.to_rfc3339_opts(SecondsFormat::Millis, true),
        None => format!("{unix_seconds} (Unix seconds)"),
    }
}

/// Why an instant could not be read.
#[derive(Debug, thiserror::Error)]
#[error(
    "`{text}` is not a time: {reason} (use RFC 3339 like 2025-01-02T03:04:05Z, or now, now-15m)"
)]
pub struct TimeError {
    pub text: String,
    pub reason: String,
}

/// Parses `text` as an instant, reading relative forms against `now`.
pub fn parse_instant(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, TimeError> {
    let text = text.trim();
    let error = |reason: String| TimeError {
        text: text.to_string(),
        reason,
    };
    if let Some(rest) = text.strip_prefix("now") {
        let rest = rest.trim();
        if rest.is_empty() {
            return Ok(now);
        }
        let (sign, amount) = match rest.split_at(1) {
            ("-", amount) => (-1, amount),
            ("+", amount) => (1, amount),
            _ => return Err(error("expected `-` or `+` after `now`".into())),
        };
        let duration =
            humantime::parse_duration(amount.trim()).map_err(|e| error(e.to_string()))?;
        let delta = chrono::Duration::from_std(duration).map_err(|e| error(e.to_string()))?;
        return Ok(if sign < 0 { now - delta } else { now + delta });
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| error(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn reads_absolute_and_relative_instants() {
        let now = Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(parse_instant("now", now).unwrap(), now);
        assert_eq!(
            parse_instant("now-15m", now).unwrap(),
            now - chrono::Duration::minutes(15)
        );
        assert_eq!(
            parse_instant("now + 30s", now).unwrap(),
            now + chrono::Duration::seconds(30)
        );
        assert_eq!(
            parse_instant("2025-01-02T04:04:05+01:00", now).unwrap(),
            now
        );
        assert!(parse_instant("now*2", now).is_err());
        let error = parse_instant("yesterday", now).unwrap_err().to_string();
        assert!(error.contains("`yesterday`"), "{error}");
    }

    #[test]
    fn verdict_instants_are_rfc3339_utc() {
        assert_eq!(human_instant(1_700_000_000.0), "2023-11-14T22:13:20Z");
        assert_eq!(human_instant(1_700_000_000.25), "2023-11-14T22:13:20.250Z");
        assert_eq!(
            parse_instant(&human_instant(1_796_033_009.0), Utc::now())
                .unwrap()
                .timestamp(),
            1_796_033_009
        );
    }
}
