//! The report as people read it: every number already formatted.
//!
//! Markdown and HTML show the same facts, so the formatting decisions (units, rounding,
//! which rows to show) are made once here and the templates only lay them out.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::model::{LatencyStats, LoadModel, Report, SloStatus, Verdict};
use crate::threshold::format_value;

#[derive(Serialize)]
pub struct ReportView {
    pub verdict: String,
    pub verdict_icon: &'static str,
    pub failure_reasons: Vec<String>,
    pub scenario: String,
    pub target: String,
    pub run_id: String,
    pub profile: String,
    pub stages: String,
    pub started_at: String,
    pub ended_at: String,
    pub planned: String,
    pub actual: String,
    pub partial: bool,
    pub partial_reason: Option<String>,
    pub requests: String,
    pub errors: String,
    pub error_rate: String,
    pub rps: String,
    pub latency: LatencyRow,
    pub open_model: bool,
    pub corrected_latency: Option<LatencyRow>,
    pub arrivals: Option<ArrivalsRow>,
    pub thresholds: Vec<ThresholdRow>,
    pub slos: Vec<SloRow>,
    pub server_side: Option<ServerSideView>,
    pub transactions: Vec<TransactionRow>,
    pub errors_by_kind: Vec<ErrorKindRow>,
    pub error_samples: Vec<ErrorSampleRow>,
    pub status_classes: Vec<StatusClassRow>,
    pub journal: Vec<JournalRow>,
    pub workers: Vec<WorkerRow>,
    /// Why the load generator could not keep up; empty when it did (or is unknown).
    pub degraded: Vec<String>,
}

/// One worker of a coordinated run.
#[derive(Serialize)]
pub struct WorkerRow {
    pub index: u32,
    pub name: String,
    pub requests: String,
    pub errors: String,
    pub p95: String,
    pub clock_offset: String,
    pub start_lateness: String,
    pub status: String,
    pub flag: String,
}

#[derive(Serialize)]
pub struct LatencyRow {
    pub p50: String,
    pub p90: String,
    pub p95: String,
    pub p99: String,
    pub max: String,
    pub mean: String,
}

#[derive(Serialize)]
pub struct ArrivalsRow {
    pub scheduled: String,
    pub started: String,
    pub max_lateness: String,
}

#[derive(Serialize)]
pub struct ThresholdRow {
    pub name: String,
    pub objective: String,
    pub measured: String,
    pub status: String,
    pub icon: &'static str,
    pub measured_from: String,
}

#[derive(Serialize)]
pub struct SloRow {
    pub name: String,
    pub status: String,
    pub icon: &'static str,
    pub objective: String,
    pub measured: String,
    pub window: String,
    pub source: String,
    pub query: String,
    pub message: String,
}

/// Client against server latency per route (see [`crate::ServerSide`]).
#[derive(Serialize)]
pub struct ServerSideView {
    pub source: String,
    pub queries: Vec<String>,
    pub routes: Vec<RouteRow>,
    pub unmatched: String,
}

#[derive(Serialize)]
pub struct RouteRow {
    pub transaction: String,
    pub route: String,
    pub client: [String; 3],
    pub server: [String; 3],
    pub gap_p95: String,
}

impl ServerSideView {
    fn new(side: &crate::ServerSide) -> Self {
        let ms = |v: Option<f64>| v.map_or_else(|| "–".to_string(), |v| format!("{v:.1} ms"));
        let three = |p: &crate::Percentiles| [ms(p.p50_ms), ms(p.p95_ms), ms(p.p99_ms)];
        ServerSideView {
            source: side.source.clone(),
            queries: side.queries.clone(),
            routes: side
                .routes
                .iter()
                .map(|r| RouteRow {
                    transaction: r.transaction.clone(),
                    route: format!("{} {}", r.method, r.route),
                    client: three(&r.client),
                    server: three(&r.server),
                    gap_p95: r
                        .gap_p95_ms
                        .map_or_else(|| "–".to_string(), |v| format!("{v:+.1} ms")),
                })
                .collect(),
            unmatched: side.unmatched.join(", "),
        }
    }
}

#[derive(Serialize)]
pub struct TransactionRow {
    pub name: String,
    pub requests: String,
    pub errors: String,
    pub error_rate: String,
    pub latency: LatencyRow,
    pub corrected: Option<LatencyRow>,
}

#[derive(Serialize)]
pub struct ErrorKindRow {
    pub kind: String,
    pub count: String,
}

#[derive(Serialize)]
pub struct ErrorSampleRow {
    pub kind: String,
    pub transaction: String,
    pub message: String,
    pub count: String,
}

#[derive(Serialize)]
pub struct StatusClassRow {
    pub class: String,
    pub requests: String,
    pub latency: LatencyRow,
}

#[derive(Serialize)]
pub struct JournalRow {
    pub at: String,
    pub offset: String,
    pub ended_at: String,
    pub kind: String,
    pub target: String,
    pub outcome: String,
    pub detail: String,
}

impl ReportView {
    pub fn new(report: &Report) -> Self {
        let profile = &report.profile;
        let unit = profile.model.target_unit();
        let stages = profile
            .stages
            .iter()
            .map(|s| {
                format!(
                    "{} → {} {unit}",
                    duration_text(s.duration_s),
                    trim(s.target)
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let mut profile_text = format!("{} ({} model", profile.name, profile.model);
        if let Some(max_users) = profile.max_users {
            profile_text.push_str(&format!(", at most {max_users} users"));
        }
        if let Some(share) = profile.worker {
            profile_text.push_str(&format!(", {share}"));
        }
        if let Some(workers) = profile.merged_workers {
            profile_text.push_str(&format!(", merged from {workers} workers"));
        }
        profile_text.push(')');
        Self {
            verdict: report.verdict.to_string().to_uppercase(),
            verdict_icon: verdict_icon(report.verdict),
            failure_reasons: report.failure_reasons(),
            scenario: report.scenario.clone(),
            target: report.target.clone(),
            run_id: report.run_id.clone(),
            profile: profile_text,
            stages,
            started_at: timestamp(report.started_at),
            ended_at: timestamp(report.ended_at),
            planned: duration_text(report.planned_duration_s),
            actual: duration_text(report.actual_duration_s),
            partial: report.partial,
            partial_reason: report.partial_reason.clone(),
            requests: count(report.totals.requests),
            errors: count(report.totals.errors),
            error_rate: format_value(report.totals.error_rate, "ratio"),
            rps: format!("{:.1}", report.totals.rps),
            latency: LatencyRow::new(report.totals.latency.as_ref()),
            open_model: profile.model == LoadModel::Open,
            corrected_latency: report
                .totals
                .corrected_histogram
                .as_ref()
                .map(|_| LatencyRow::new(report.totals.corrected_latency.as_ref())),
            arrivals: report.arrivals.map(|a| ArrivalsRow {
                scheduled: count(a.scheduled_iterations),
                started: count(a.started_iterations),
                max_lateness: format_value(a.max_lateness_ms, "ms"),
            }),
            thresholds: report
                .thresholds
                .iter()
                .map(|t| ThresholdRow {
                    name: t.name.clone(),
                    objective: t.objective_text(),
                    measured: t.measured_text(),
                    status: t.status.to_string(),
                    icon: verdict_icon(t.status),
                    measured_from: t.measured_from.clone(),
                })
                .collect(),
            slos: report
                .slos
                .iter()
                .map(|s| SloRow {
                    name: s.name.clone(),
                    status: s.status.to_string(),
                    icon: slo_icon(s.status),
                    objective: s.objective.clone(),
                    measured: s.measured.map_or_else(
                        || "not measured".to_string(),
                        |v| format_value(v, s.unit.as_deref().unwrap_or("")),
                    ),
                    window: s.window.clone().unwrap_or_default(),
                    source: s.source.clone(),
                    query: s.query.clone().unwrap_or_default(),
                    message: s.message.clone().unwrap_or_default(),
                })
                .collect(),
            server_side: report.server_side.as_ref().map(ServerSideView::new),
            degraded: report.provenance.degraded_because().to_vec(),
            transactions: report
                .transactions
                .iter()
                .map(|t| TransactionRow {
                    name: t.name.clone(),
                    requests: count(t.requests),
                    errors: count(t.errors),
                    error_rate: format_value(t.error_rate, "ratio"),
                    latency: LatencyRow::new(t.latency.as_ref()),
                    corrected: t
                        .corrected_histogram
                        .as_ref()
                        .map(|_| LatencyRow::new(t.corrected_latency.as_ref())),
                })
                .collect(),
            errors_by_kind: report
                .errors_by_kind
                .by_kind()
                .iter()
                .filter(|(_, n)| *n > 0)
                .map(|(kind, n)| ErrorKindRow {
                    kind: kind.to_string(),
                    count: count(*n),
                })
                .collect(),
            error_samples: report
                .error_samples
                .iter()
                .map(|s| ErrorSampleRow {
                    kind: s.kind.to_string(),
                    transaction: s.transaction.clone(),
                    message: s.message.clone(),
                    count: count(s.count),
                })
                .collect(),
            status_classes: report
                .status_classes
                .iter()
                .map(|s| StatusClassRow {
                    class: s.class.clone(),
                    requests: count(s.requests),
                    latency: LatencyRow::new(s.latency.as_ref()),
                })
                .collect(),
            journal: report
                .journal
                .iter()
                .map(|e| JournalRow {
                    at: timestamp(e.at),
                    offset: format!("{:+.1} s", report.offset_s(e.at)),
                    ended_at: e.ended_at.map(timestamp).unwrap_or_default(),
                    kind: e.kind.clone(),
                    target: e.target.clone(),
                    outcome: e.outcome.clone(),
                    detail: e.detail.clone().unwrap_or_default(),
                })
                .collect(),
            workers: report
                .workers
                .iter()
                .map(|w| WorkerRow {
                    index: w.index,
                    name: w.name.clone(),
                    requests: count(w.requests),
                    errors: count(w.errors),
                    p95: w.p95_ms.map_or("-".to_string(), |ms| format!("{ms:.1} ms")),
                    clock_offset: format!("{:+.1} ms", w.clock_offset_ms),
                    start_lateness: format!("{:.1} ms", w.start_lateness_ms),
                    status: w.status.to_string(),
                    flag: w.flag.clone().unwrap_or_default(),
                })
                .collect(),
        }
    }
}

impl LatencyRow {
    fn new(stats: Option<&LatencyStats>) -> Self {
        let ms = |pick: fn(&LatencyStats) -> f64| {
            stats.map_or_else(|| "–".to_string(), |s| format_value(pick(s), "ms"))
        };
        Self {
            p50: ms(|s| s.p50_ms),
            p90: ms(|s| s.p90_ms),
            p95: ms(|s| s.p95_ms),
            p99: ms(|s| s.p99_ms),
            max: ms(|s| s.max_ms),
            mean: ms(|s| s.mean_ms),
        }
    }
}

/// RFC 3339 to the second, in UTC: what people read; the JSON keeps full precision.
pub(super) fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn verdict_icon(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Pass => "✅",
        Verdict::Fail => "❌",
    }
}

fn slo_icon(status: SloStatus) -> &'static str {
    match status {
        SloStatus::Pass => "✅",
        SloStatus::Warn => "⚠️",
        SloStatus::Fail => "❌",
        SloStatus::Unknown => "❔",
    }
}

/// `12345` → `12,345`.
fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Seconds as `1m30s`, `45s` or `2.5s`.
pub fn duration_text(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "–".to_string();
    }
    let whole = seconds.floor() as u64;
    let fraction = seconds - whole as f64;
    let (h, m, s) = (whole / 3600, (whole % 3600) / 60, whole % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if fraction >= 0.05 {
        out.push_str(&format!("{:.1}s", s as f64 + fraction));
    } else if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

fn trim(value: f64) -> String {
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_get_thousands_separators() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1234567), "1,234,567");
    }

    #[test]
    fn durations_read_like_k6() {
        assert_eq!(duration_text(90.0), "1m30s");
        assert_eq!(duration_text(300.0), "5m");
        assert_eq!(duration_text(0.0), "0s");
        assert_eq!(duration_text(2.5), "2.5s");
        assert_eq!(duration_text(3725.0), "1h2m5s");
    }
}
