//! `shakedown slo rules`: Prometheus recording rules and multi-window multi-burn-rate alerts
//! from the SLOs of a set that state an error budget (`budget: {target: 99.5%, period: 30d}`).
//!
//! Per SLO, one rule group (rules of a group run in order, so the alerts read recordings of the
//! same evaluation):
//! - `slo:sli_error:ratio_rate<W>{slo="NAME"}`: the share of bad requests over each window W the
//!   alerts use (names as Sloth writes them; see [`sli`] for what "bad" means per SLI);
//! - `slo:objective:ratio` and `slo:error_budget:ratio`: the target and 1 − target, for
//!   dashboards;
//! - `<Name>BurnRatePage` (severity `page`) and `<Name>BurnRateTicket` (severity `ticket`), the
//!   workbook's alerts (see [`windows`]).
//!
//! SLOs without a budget (or whose SLI cannot have one) are left out and listed in
//! [`Generated::skipped`]; a set with nothing left is an error.

pub mod render;
pub mod sli;
pub mod windows;

use std::collections::BTreeMap;

use crate::budget::Budget;
use crate::model::{Slo, SloSet};
use windows::{BurnRateAlert, Severity};

pub use render::Format;

/// The rules of one set, ready to render.
#[derive(Clone, Debug, PartialEq)]
pub struct Generated {
    /// The set's name (names the PrometheusRule object).
    pub set: String,
    pub groups: Vec<RuleGroup>,
    /// SLOs without rules, and why.
    pub skipped: Vec<Skipped>,
}

impl Generated {
    /// Every alert name, in file order.
    pub fn alert_names(&self) -> Vec<&str> {
        self.groups
            .iter()
            .flat_map(|g| &g.rules)
            .filter_map(|r| match r {
                Rule::Alert { alert, .. } => Some(alert.as_str()),
                Rule::Record { .. } => None,
            })
            .collect()
    }
}

/// An SLO left out of the rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub slo: String,
    pub why: String,
}

/// A Prometheus rule group.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleGroup {
    pub name: String,
    pub rules: Vec<Rule>,
}

/// A recording or an alerting rule.
#[derive(Clone, Debug, PartialEq)]
pub enum Rule {
    Record {
        record: String,
        expr: String,
        labels: BTreeMap<String, String>,
    },
    Alert {
        alert: String,
        expr: String,
        labels: BTreeMap<String, String>,
        annotations: BTreeMap<String, String>,
    },
}

/// Why no rules could be made.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error(
        "no SLO of the set has burn-rate rules: give a latency or error_ratio SLO a budget, e.g. `budget: {{target: 99.5%, period: 30d}}` ({})",
        .skipped.iter().map(|s| format!("{}: {}", s.slo, s.why)).collect::<Vec<_>>().join("; ")
    )]
    NothingToGenerate { skipped: Vec<Skipped> },
}

/// The label that names the SLO on every recorded series and alert.
pub const SLO_LABEL: &str = "slo";

/// Rules for every SLO of `set` that has a budget.
pub fn generate(set: &SloSet) -> Result<Generated, RulesError> {
    let mut groups = Vec::new();
    let mut skipped = Vec::new();
    for slo in &set.slos {
        let Some(budget) = &slo.budget else {
            skipped.push(Skipped {
                slo: slo.name.clone(),
                why: "no `budget`".into(),
            });
            continue;
        };
        match group(slo, budget) {
            Ok(group) => groups.push(group),
            Err(why) => skipped.push(Skipped {
                slo: slo.name.clone(),
                why,
            }),
        }
    }
    if groups.is_empty() {
        return Err(RulesError::NothingToGenerate { skipped });
    }
    Ok(Generated {
        set: set.metadata.name.clone(),
        groups,
        skipped,
    })
}

fn group(slo: &Slo, budget: &Budget) -> Result<RuleGroup, String> {
    let alerts = windows::alerts(budget);
    let labels = BTreeMap::from([(SLO_LABEL.to_string(), slo.name.clone())]);
    let mut rules = Vec::new();
    for window in windows::windows(&alerts) {
        rules.push(Rule::Record {
            record: ratio_name(window),
            expr: sli::error_ratio(slo, window)?,
            labels: labels.clone(),
        });
    }
    for (record, value) in [
        ("slo:objective:ratio", budget.target),
        ("slo:error_budget:ratio", budget.error_budget()),
    ] {
        rules.push(Rule::Record {
            record: record.into(),
            expr: format!("vector({})", number(value)),
            labels: labels.clone(),
        });
    }
    for alert in &alerts {
        rules.push(alert_rule(slo, budget, alert));
    }
    Ok(RuleGroup {
        name: format!("slo-{}", slo.name),
        rules,
    })
}

/// `slo:sli_error:ratio_rate5m`.
pub fn ratio_name(window: std::time::Duration) -> String {
    format!("slo:sli_error:ratio_rate{}", windows::promql(window))
}

/// The alert's name: the SLO's name in CamelCase and the severity, `GatewayLatencyP95BurnRatePage`.
pub fn alert_name(slo: &str, severity: Severity) -> String {
    let mut name: String = slo
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect();
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        name.insert_str(0, "Slo");
    }
    let suffix = match severity {
        Severity::Page => "BurnRatePage",
        Severity::Ticket => "BurnRateTicket",
    };
    name + suffix
}

fn alert_rule(slo: &Slo, budget: &Budget, alert: &BurnRateAlert) -> Rule {
    let error_budget = number(budget.error_budget());
    let selector = format!("{{{SLO_LABEL}=\"{}\"}}", slo.name);
    let conditions: Vec<String> = alert
        .conditions
        .iter()
        .map(|c| {
            let factor = number(c.factor);
            format!(
                "(\n  {short}{selector} > ({factor} * {error_budget})\nand\n  {long}{selector} > ({factor} * {error_budget})\n)",
                short = ratio_name(c.short),
                long = ratio_name(c.long),
            )
        })
        .collect();
    let windows: Vec<String> = alert
        .conditions
        .iter()
        .map(|c| {
            format!(
                "{}× over {} and {}",
                number(c.factor),
                windows::promql(c.long),
                windows::promql(c.short)
            )
        })
        .collect();
    let (pace, spent) = match alert.severity {
        Severity::Page => (
            "fast",
            "the budget will be gone long before the period ends",
        ),
        Severity::Ticket => (
            "steadily",
            "at this pace the budget will not last the period",
        ),
    };
    let period = windows::promql(budget.period);
    Rule::Alert {
        alert: alert_name(&slo.name, alert.severity),
        expr: conditions.join("\nor\n"),
        labels: BTreeMap::from([("severity".to_string(), alert.severity.label().to_string())]),
        annotations: BTreeMap::from([
            (
                "summary".to_string(),
                format!("SLO {} is burning its error budget {pace}", slo.name),
            ),
            (
                "description".to_string(),
                format!(
                    "{{{{ $value | humanizePercentage }}}} of the requests were bad over the short window, against a budget of {}% over {period} (target {}%): {spent}. Fires at {}.",
                    number(budget.error_budget() * 100.0),
                    number(budget.target * 100.0),
                    windows.join(", or ")
                ),
            ),
        ]),
    }
}

/// A number without float noise: `0.005`, `14.4`, `99.5`.
fn number(value: f64) -> String {
    let text = format!("{value:.9}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SET: &str = "apiVersion: shakedown/v1\nkind: SLOSet\nmetadata: {name: shop}\nslos:\n  - name: gateway-latency-p95\n    sli: {latency: {quantile: 0.95}}\n    objective: {lt: 500ms}\n    budget: {target: 99.5%, period: 30d}\n  - name: errors\n    sli: {error_ratio: {}}\n    objective: {lt: 1%}\n  - name: client\n    sli: {client: {measure: error_rate}}\n    objective: {lt: 1%}\n";

    fn set(text: &str) -> SloSet {
        crate::parse(text, std::path::Path::new("t.yaml")).unwrap()
    }

    #[test]
    fn each_budgeted_slo_gets_recordings_and_two_alerts() {
        let generated = generate(&set(SET)).unwrap();
        assert_eq!(generated.groups.len(), 1);
        assert_eq!(
            generated.alert_names(),
            [
                "GatewayLatencyP95BurnRatePage",
                "GatewayLatencyP95BurnRateTicket"
            ]
        );
        let records: Vec<&str> = generated.groups[0]
            .rules
            .iter()
            .filter_map(|r| match r {
                Rule::Record { record, .. } => Some(record.as_str()),
                Rule::Alert { .. } => None,
            })
            .collect();
        assert_eq!(
            records,
            [
                "slo:sli_error:ratio_rate5m",
                "slo:sli_error:ratio_rate30m",
                "slo:sli_error:ratio_rate1h",
                "slo:sli_error:ratio_rate6h",
                "slo:sli_error:ratio_rate3d",
                "slo:objective:ratio",
                "slo:error_budget:ratio",
            ]
        );
        let Rule::Alert { expr, .. } = &generated.groups[0].rules[7] else {
            panic!("the page alert follows the recordings");
        };
        assert_eq!(
            expr,
            "(\n  slo:sli_error:ratio_rate5m{slo=\"gateway-latency-p95\"} > (14.4 * 0.005)\nand\n  slo:sli_error:ratio_rate1h{slo=\"gateway-latency-p95\"} > (14.4 * 0.005)\n)\nor\n(\n  slo:sli_error:ratio_rate30m{slo=\"gateway-latency-p95\"} > (6 * 0.005)\nand\n  slo:sli_error:ratio_rate6h{slo=\"gateway-latency-p95\"} > (6 * 0.005)\n)"
        );
        assert_eq!(
            generated.skipped,
            [
                Skipped {
                    slo: "errors".into(),
                    why: "no `budget`".into()
                },
                Skipped {
                    slo: "client".into(),
                    why: "no `budget`".into()
                }
            ]
        );
    }

    #[test]
    fn a_set_without_budgets_has_nothing_to_generate() {
        let text = SET.replace("    budget: {target: 99.5%, period: 30d}\n", "");
        let error = generate(&set(&text)).unwrap_err().to_string();
        assert!(
            error.contains("no SLO of the set has burn-rate rules"),
            "{error}"
        );
        assert!(
            error.contains("gateway-latency-p95: no `budget`"),
            "{error}"
        );
    }

    #[test]
    fn alert_names_are_camel_case() {
        assert_eq!(
            alert_name("product-page_p95", Severity::Ticket),
            "ProductPageP95BurnRateTicket"
        );
        assert_eq!(alert_name("5xx", Severity::Page), "Slo5xxBurnRatePage");
    }
}
