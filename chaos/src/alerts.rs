//! Alerts in drills: an experiment may say which alerts must fire, and how soon after the method
//! starts (`expect_alerts: [{name, within}]`), and which must not fire at all (`forbid_alerts`).
//! A drill then tests the alerting too: that the page comes when the system breaks, and that a
//! fault of one kind does not page for another.
//!
//! Judged from Prometheus's `ALERTS` series once the experiment is over (see
//! `slo::sources::PrometheusSource::first_firing`): an expected alert holds when it first fired
//! no later than `within` after the method started; a forbidden one when it never fired from the
//! start of the experiment to its end. On the embedded stack, Prometheus loads the burn-rate rules
//! generated from the steady-state SLOs that have a budget (`slo::rules`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use reports::{SloStatus, SloVerdict};
use serde::Deserialize;
use slo::sources::{PrometheusSource, SourceError, SourceErrorKind};

use crate::error::ChaosError;
use crate::journal::{ActionRecord, Outcome};

/// One entry of `expect_alerts`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedAlert {
    /// The alert's name (`alertname`).
    pub name: String,
    /// How long after the start of the method it must be firing.
    #[serde(deserialize_with = "config::duration::required")]
    pub within: Duration,
}

/// What an experiment says about alerts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AlertExpectations {
    pub expect: Vec<ExpectedAlert>,
    pub forbid: Vec<String>,
}

impl AlertExpectations {
    pub fn is_empty(&self) -> bool {
        self.expect.is_empty() && self.forbid.is_empty()
    }

    /// Every alert named, expected ones first.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.expect
            .iter()
            .map(|e| e.name.as_str())
            .chain(self.forbid.iter().map(String::as_str))
    }
}

/// What was asked of one alert.
#[derive(Clone, Debug, PartialEq)]
pub enum Rule {
    /// Firing no later than `since + within`.
    Expected {
        within: Duration,
        /// The start of the method; `None` when the method did not run.
        since: Option<DateTime<Utc>>,
    },
    /// Never firing from `since` (the start of the experiment) to its end.
    Forbidden { since: DateTime<Utc> },
}

/// What was seen of one alert.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertVerdict {
    pub name: String,
    pub rule: Rule,
    /// When it first fired in the judged span.
    pub first_fired: Option<DateTime<Utc>>,
}

impl AlertVerdict {
    /// Whether the alert did what the experiment asked.
    pub fn holds(&self) -> bool {
        match (&self.rule, self.first_fired) {
            (
                Rule::Expected {
                    within,
                    since: Some(since),
                },
                Some(fired),
            ) => fired <= *since + chrono::Duration::from_std(*within).unwrap_or_default(),
            (Rule::Expected { .. }, _) => false,
            (Rule::Forbidden { .. }, fired) => fired.is_none(),
        }
    }

    /// Seconds from the start of the method (expected) or of the experiment (forbidden) to the
    /// first firing.
    pub fn after(&self) -> Option<f64> {
        let since = match &self.rule {
            Rule::Expected { since, .. } => (*since)?,
            Rule::Forbidden { since } => *since,
        };
        self.first_fired
            .map(|fired| (fired - since).num_milliseconds() as f64 / 1000.0)
    }

    /// One line: what was asked and what happened.
    pub fn text(&self) -> String {
        let fired = self
            .after()
            .map(|s| format!("fired {s:.1} s after"))
            .unwrap_or_default();
        match &self.rule {
            Rule::Expected { within, since } => {
                let within = humantime::format_duration(*within);
                match (since, self.first_fired) {
                    (None, _) => {
                        format!(
                            "expected alert {} within {within}: the method did not run",
                            self.name
                        )
                    }
                    (Some(_), None) => format!(
                        "expected alert {} did not fire within {within} of the method's start",
                        self.name
                    ),
                    (Some(_), Some(_)) if self.holds() => format!(
                        "expected alert {} {fired} the method's start (bound {within})",
                        self.name
                    ),
                    (Some(_), Some(_)) => format!(
                        "expected alert {} {fired} the method's start, later than its bound of {within}",
                        self.name
                    ),
                }
            }
            Rule::Forbidden { .. } => match self.first_fired {
                None => format!("forbidden alert {} did not fire", self.name),
                Some(_) => format!(
                    "forbidden alert {} {fired} the experiment's start",
                    self.name
                ),
            },
        }
    }

    /// The verdict in the report, `alert: NAME`; `measured` is the seconds to the first firing.
    pub fn to_slo_verdict(&self) -> SloVerdict {
        SloVerdict {
            name: format!("alert: {}", self.name),
            status: if self.holds() {
                SloStatus::Pass
            } else {
                SloStatus::Fail
            },
            measured: self.after(),
            unit: Some("s".into()),
            objective: match &self.rule {
                Rule::Expected { within, .. } => format!(
                    "fires within {} of the method's start",
                    humantime::format_duration(*within)
                ),
                Rule::Forbidden { .. } => "never fires during the experiment".into(),
            },
            source: "prometheus ALERTS".into(),
            query: Some(slo::sources::firing_query(&self.name)),
            window: None,
            message: Some(self.text()),
        }
    }

    /// The verdict as a journal record (`alert`), at the first firing when there was one.
    pub fn to_record(&self) -> ActionRecord {
        let at = self.first_fired.unwrap_or_else(|| match &self.rule {
            Rule::Expected { since, .. } => since.unwrap_or_else(Utc::now),
            Rule::Forbidden { since } => *since,
        });
        ActionRecord {
            action: RECORD.into(),
            target: self.name.clone(),
            started_at: at,
            ended_at: Some(at),
            outcome: if self.holds() {
                Outcome::Ok
            } else {
                Outcome::Failed
            },
            affected: Vec::new(),
            recovery: None,
            detail: Some(self.text()),
        }
    }
}

/// The journal's name for alert verdicts.
pub const RECORD: &str = "alert";

/// Prometheus writes `ALERTS` at each evaluation (every second on the embedded stack): wait this
/// long past an instant before reading it.
const SETTLE: Duration = Duration::from_secs(3);

/// Judges `expectations` against Prometheus once the experiment (started at `started`, its method
/// at `method_started`, over at `ended`) is done. Waits, if needed, until every expected alert's
/// bound has passed.
pub async fn judge(
    prometheus: &PrometheusSource,
    expectations: &AlertExpectations,
    started: DateTime<Utc>,
    method_started: Option<DateTime<Utc>>,
    ended: DateTime<Utc>,
) -> Result<Vec<AlertVerdict>, ChaosError> {
    let deadline = |within: Duration| {
        method_started.map(|since| since + chrono::Duration::from_std(within).unwrap_or_default())
    };
    let last = expectations
        .expect
        .iter()
        .filter_map(|e| deadline(e.within))
        .chain([ended])
        .max()
        .unwrap_or(ended);
    let settled = last + chrono::Duration::from_std(SETTLE).unwrap_or_default();
    if let Ok(wait) = (settled - Utc::now()).to_std() {
        tokio::time::sleep(wait).await;
    }
    let mut verdicts = Vec::new();
    for expected in &expectations.expect {
        let first_fired = match method_started {
            Some(since) => {
                // Until the later of the bound and the end: a late firing is reported as late.
                let to = deadline(expected.within).unwrap_or(ended).max(ended);
                first_firing(prometheus, &expected.name, since, to).await?
            }
            None => None,
        };
        verdicts.push(AlertVerdict {
            name: expected.name.clone(),
            rule: Rule::Expected {
                within: expected.within,
                since: method_started,
            },
            first_fired,
        });
    }
    for name in &expectations.forbid {
        verdicts.push(AlertVerdict {
            name: name.clone(),
            rule: Rule::Forbidden { since: started },
            first_fired: first_firing(prometheus, name, started, ended).await?,
        });
    }
    Ok(verdicts)
}

async fn first_firing(
    prometheus: &PrometheusSource,
    name: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, ChaosError> {
    let seconds = prometheus
        .first_firing(name, from.timestamp(), to.timestamp() + 1)
        .await
        .map_err(|e| source_error(prometheus, e))?;
    Ok(seconds.and_then(|s| DateTime::from_timestamp_millis((s * 1000.0) as i64)))
}

/// A Prometheus that does not answer is unreachable (exit 3); one that refuses is a
/// configuration problem (exit 2).
pub fn source_error(prometheus: &PrometheusSource, error: SourceError) -> ChaosError {
    let message = format!(
        "alerts from Prometheus {}: {}",
        prometheus.url(),
        error.message
    );
    match error.kind {
        SourceErrorKind::Unreachable => ChaosError::Unreachable(message),
        SourceErrorKind::Rejected => ChaosError::Invalid(message),
    }
}

/// Before anything runs: every named alert is an alerting rule of `prometheus`.
pub async fn check_known(
    prometheus: &PrometheusSource,
    expectations: &AlertExpectations,
) -> Result<(), ChaosError> {
    let known = prometheus
        .alert_rule_names()
        .await
        .map_err(|e| source_error(prometheus, e))?;
    let unknown: Vec<&str> = expectations
        .names()
        .filter(|name| !known.iter().any(|k| k == name))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    Err(ChaosError::Invalid(format!(
        "alert {} is not an alerting rule of Prometheus {} (it has: {})",
        unknown.join(", "),
        prometheus.url(),
        if known.is_empty() {
            "none".to_string()
        } else {
            known.join(", ")
        }
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap()
    }

    fn expected(fired: Option<i64>) -> AlertVerdict {
        AlertVerdict {
            name: "ProductPageP95BurnRatePage".into(),
            rule: Rule::Expected {
                within: Duration::from_secs(20),
                since: Some(at(0)),
            },
            first_fired: fired.map(at),
        }
    }

    #[test]
    fn an_expected_alert_holds_when_it_fires_within_its_bound() {
        assert!(expected(Some(12)).holds());
        assert!(expected(Some(20)).holds());
        let late = expected(Some(25));
        assert!(!late.holds());
        assert!(
            late.text().contains("later than its bound of 20s"),
            "{}",
            late.text()
        );
        let never = expected(None);
        assert!(!never.holds());
        assert_eq!(
            never.text(),
            "expected alert ProductPageP95BurnRatePage did not fire within 20s of the method's start"
        );
        let verdict = expected(Some(12)).to_slo_verdict();
        assert_eq!(verdict.name, "alert: ProductPageP95BurnRatePage");
        assert_eq!(
            (verdict.status, verdict.measured),
            (SloStatus::Pass, Some(12.0))
        );
        assert_eq!(expected(Some(12)).to_record().outcome, Outcome::Ok);
    }

    /// Exit 3, not 1: nothing could be judged.
    #[tokio::test]
    async fn a_prometheus_that_does_not_answer_is_unreachable() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let prometheus = PrometheusSource::new(&format!("http://127.0.0.1:{port}")).unwrap();
        let expectations = AlertExpectations {
            expect: Vec::new(),
            forbid: vec!["GatewayErrorsBurnRatePage".into()],
        };
        let error = check_known(&prometheus, &expectations).await.unwrap_err();
        assert_eq!(
            error.conclusion(),
            crate::Conclusion::Unreachable,
            "{error}"
        );
        let error = judge(&prometheus, &expectations, at(0), Some(at(1)), at(2))
            .await
            .unwrap_err();
        assert_eq!(
            error.conclusion(),
            crate::Conclusion::Unreachable,
            "{error}"
        );
    }

    #[test]
    fn a_forbidden_alert_holds_when_it_never_fires() {
        let forbidden = |fired: Option<i64>| AlertVerdict {
            name: "GatewayErrorsBurnRatePage".into(),
            rule: Rule::Forbidden { since: at(0) },
            first_fired: fired.map(at),
        };
        assert!(forbidden(None).holds());
        let fired = forbidden(Some(7));
        assert!(!fired.holds());
        assert_eq!(
            fired.text(),
            "forbidden alert GatewayErrorsBurnRatePage fired 7.0 s after the experiment's start"
        );
        assert_eq!(fired.to_slo_verdict().status, SloStatus::Fail);
    }
}
