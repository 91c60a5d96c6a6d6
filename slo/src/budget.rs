//! An SLO's error budget: `budget: {target: 99.5%, period: 30d}` — the share of requests that must
//! be good over a rolling period. `slo check` does not need it; `slo rules` turns it into
//! multi-window multi-burn-rate alerts (see `crate::rules`).
//!
//! Read inside its own YAML node (see `config::validated`), so a bad target or period is
//! reported with the line and field path of `budget`.

use std::time::Duration;

use serde::Deserialize;

use crate::value::{Bound, HumanDuration, Written};

config::deserialize_validated!(Budget, map RawBudget);

/// The shortest period a budget may have. Alert windows are the SRE workbook's for 30 days,
/// scaled to the period (see [`Budget::scale`]); its shortest one (5 minutes at 30 days) is
/// period / 8640, and Prometheus needs a few scrapes inside a window for `rate()` to mean
/// anything: at one day that window is 10 s, which a 1 s scrape (the embedded stack's) fills.
pub const MIN_PERIOD: Duration = Duration::from_secs(24 * 3600);

/// The period the workbook's windows are written for.
pub const WORKBOOK_PERIOD: Duration = Duration::from_secs(30 * 24 * 3600);

/// How many requests may be bad, over how long.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Budget {
    /// The share of requests that must be good, strictly between 0 and 1 (0.995 for 99.5 %).
    pub target: f64,
    /// The rolling period the target holds over.
    pub period: Duration,
}

impl Budget {
    /// The share of requests that may be bad: 1 − target (0.005 for 99.5 %).
    pub fn error_budget(&self) -> f64 {
        1.0 - self.target
    }

    /// The factor the workbook's 30-day windows are multiplied by for this period (1 at 30d,
    /// 1/30 at 1d), so an alert still means the same share of the budget spent.
    pub fn scale(&self) -> f64 {
        self.period.as_secs_f64() / WORKBOOK_PERIOD.as_secs_f64()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBudget {
    target: Bound,
    period: HumanDuration,
}

impl TryFrom<RawBudget> for Budget {
    type Error = String;
    fn try_from(raw: RawBudget) -> Result<Self, String> {
        let target = &raw.target;
        if !matches!(target.written, Written::Percent | Written::Fraction) {
            return Err(format!(
                "`target: {}` is not a share: write a percentage such as `target: 99.5%` \
                 (or a fraction marked `ratio`: `0.995 ratio`)",
                target.text
            ));
        }
        if !(target.value > 0.0 && target.value < 1.0) {
            return Err(format!(
                "`target: {}` must be above 0 % and below 100 % (100 % leaves no budget to alert on)",
                target.text
            ));
        }
        if raw.period.0 < MIN_PERIOD {
            return Err(format!(
                "`period: {}` is shorter than 1d: the shortest alert window (period / 8640) would \
                 be under 10 s, too short for rate() over scraped counters",
                humantime::format_duration(raw.period.0)
            ));
        }
        Ok(Budget {
            target: target.value,
            period: raw.period.0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Budget, String> {
        serde_yaml_ng::from_str::<Budget>(text).map_err(|e| e.to_string())
    }

    #[test]
    fn a_budget_is_a_share_over_a_period() {
        let budget = parse("{target: 99.5%, period: 30d}").unwrap();
        assert!((budget.error_budget() - 0.005).abs() < 1e-12);
        assert_eq!(budget.period, WORKBOOK_PERIOD);
        assert_eq!(budget.scale(), 1.0);
        let day = parse("{target: 0.99 ratio, period: 1d}").unwrap();
        assert!((day.target - 0.99).abs() < 1e-12);
        assert!((day.scale() - 1.0 / 30.0).abs() < 1e-12);
    }

    #[test]
    fn bad_budgets_say_how_to_write_them() {
        assert!(
            parse("{target: 99.5, period: 30d}")
                .unwrap_err()
                .contains("`target: 99.5%`")
        );
        assert!(
            parse("{target: 100%, period: 30d}")
                .unwrap_err()
                .contains("below 100 %")
        );
        assert!(
            parse("{target: 0%, period: 30d}")
                .unwrap_err()
                .contains("above 0 %")
        );
        assert!(
            parse("{target: 99%, period: 1h}")
                .unwrap_err()
                .contains("shorter than 1d")
        );
        assert!(
            parse("{target: 99%, period: soon}")
                .unwrap_err()
                .contains("invalid duration")
        );
        assert!(parse("{target: 99%}").unwrap_err().contains("period"));
        assert!(
            parse("{target: 99%, period: 1d, window: 5m}")
                .unwrap_err()
                .contains("unknown field")
        );
    }
}
