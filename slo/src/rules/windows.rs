//! The burn-rate alerts of the Google SRE workbook ("Alerting on SLOs", multiwindow,
//! multi-burn-rate), as data: which share of the error budget, burnt over which pair of windows,
//! pages or opens a ticket.
//!
//! The workbook's windows are written for a 30-day budget. For another period they are scaled by
//! period / 30d, so a condition still means the same share of the budget spent (14.4× over 1/720
//! of the period is 2 % of it): 30d keeps 1h and 5m, 1d gives 2m and 10s. Windows are rounded up
//! to whole seconds.

use std::time::Duration;

use crate::budget::Budget;

/// Who is told when an alert fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// Wake someone: the budget burns fast enough to be gone within days.
    Page,
    /// Look at it during working hours.
    Ticket,
}

impl Severity {
    /// The `severity` label's value.
    pub fn label(self) -> &'static str {
        match self {
            Severity::Page => "page",
            Severity::Ticket => "ticket",
        }
    }
}

/// One condition: the error ratio is above `factor` × the error budget over both windows (the
/// long one says enough budget is gone, the short one that it is still burning now, so the alert
/// resets soon after the problem stops).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Condition {
    pub factor: f64,
    pub long: Duration,
    pub short: Duration,
}

/// An alert: any of its conditions fires it.
#[derive(Clone, Debug, PartialEq)]
pub struct BurnRateAlert {
    pub severity: Severity,
    pub conditions: Vec<Condition>,
}

const MINUTE: u64 = 60;
const HOUR: u64 = 3600;
const DAY: u64 = 24 * HOUR;

/// The workbook's table for a 30-day budget: (severity, factor, long window, short window).
const WORKBOOK: [(Severity, f64, u64, u64); 3] = [
    (Severity::Page, 14.4, HOUR, 5 * MINUTE),
    (Severity::Page, 6.0, 6 * HOUR, 30 * MINUTE),
    (Severity::Ticket, 1.0, 3 * DAY, 6 * HOUR),
];

/// The page and ticket alerts for `budget`, windows scaled to its period.
pub fn alerts(budget: &Budget) -> Vec<BurnRateAlert> {
    // In whole seconds, without floats: 28/30 of 5m must be 280 s, not 281.
    let period = u128::from(budget.period.as_secs());
    let workbook = u128::from(crate::budget::WORKBOOK_PERIOD.as_secs());
    let scaled = |seconds: u64| {
        Duration::from_secs((u128::from(seconds) * period).div_ceil(workbook) as u64)
    };
    [Severity::Page, Severity::Ticket]
        .into_iter()
        .map(|severity| BurnRateAlert {
            severity,
            conditions: WORKBOOK
                .iter()
                .filter(|(s, ..)| *s == severity)
                .map(|&(_, factor, long, short)| Condition {
                    factor,
                    long: scaled(long),
                    short: scaled(short),
                })
                .collect(),
        })
        .collect()
}

/// Every window the alerts use, shortest first, each once.
pub fn windows(alerts: &[BurnRateAlert]) -> Vec<Duration> {
    let mut windows: Vec<Duration> = alerts
        .iter()
        .flat_map(|a| &a.conditions)
        .flat_map(|c| [c.short, c.long])
        .collect();
    windows.sort();
    windows.dedup();
    windows
}

/// A window in Prometheus's duration notation: `5m`, `2h24m`, `4m40s`, `3d`.
pub fn promql(window: Duration) -> String {
    let mut left = window.as_secs();
    if left == 0 {
        return "0s".into();
    }
    let mut text = String::new();
    for (unit, seconds) in [("d", DAY), ("h", HOUR), ("m", MINUTE), ("s", 1)] {
        if left >= seconds {
            text.push_str(&format!("{}{unit}", left / seconds));
            left %= seconds;
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(period: &str) -> Budget {
        Budget {
            target: 0.999,
            period: humantime::parse_duration(period).unwrap(),
        }
    }

    fn table(alerts: &[BurnRateAlert]) -> Vec<(&'static str, f64, String, String)> {
        alerts
            .iter()
            .flat_map(|a| {
                a.conditions.iter().map(move |c| {
                    (
                        a.severity.label(),
                        c.factor,
                        promql(c.long),
                        promql(c.short),
                    )
                })
            })
            .collect()
    }

    #[test]
    fn thirty_days_are_the_workbook_table() {
        let alerts = alerts(&budget("30d"));
        assert_eq!(
            table(&alerts),
            vec![
                ("page", 14.4, "1h".into(), "5m".into()),
                ("page", 6.0, "6h".into(), "30m".into()),
                ("ticket", 1.0, "3d".into(), "6h".into()),
            ]
        );
        let names: Vec<String> = windows(&alerts).into_iter().map(promql).collect();
        assert_eq!(names, ["5m", "30m", "1h", "6h", "3d"]);
    }

    #[test]
    fn other_periods_scale_the_windows() {
        assert_eq!(
            table(&alerts(&budget("1d"))),
            vec![
                ("page", 14.4, "2m".into(), "10s".into()),
                ("page", 6.0, "12m".into(), "1m".into()),
                ("ticket", 1.0, "2h24m".into(), "12m".into()),
            ]
        );
        // 28 days: 28/30 of each window, rounded up to whole seconds.
        assert_eq!(
            table(&alerts(&budget("28d")))[0],
            ("page", 14.4, "56m".into(), "4m40s".into())
        );
    }

    #[test]
    fn windows_read_as_prometheus_durations() {
        assert_eq!(promql(Duration::from_secs(3 * DAY + 90)), "3d1m30s");
        assert_eq!(promql(Duration::from_secs(10)), "10s");
        assert_eq!(promql(Duration::from_secs(7200)), "2h");
    }
}
