//! Baseline comparison for `report diff`: did this run get worse than a known-good one?
//!
//! Compared: p95 and p99 latency and the error rate, overall and per transaction present in
//! both runs, and the measured value and status of every SLO present in both. A latency or
//! error-rate change is a regression when it goes the bad way by more than the allowed fraction
//! of the baseline **and** is significant: the bootstrap of [`crate::significance`], computed
//! from both runs' histograms and request counts, gives a one-sided p-value below `alpha`. Noise
//! then cannot fail a release, and a small but real shift shows its interval. `alpha` 1 turns the
//! significance test off (the bound alone decides, as before it existed).
//! The baseline is floored (1 ms, 0.1 % error rate, 1 unit otherwise) so a baseline of 0 does
//! not make any change an infinite regression. An SLO whose status drops to `fail` regresses
//! whatever the numbers say; SLO values are single numbers, judged by the bound alone.

use crate::histogram::LatencyHistogram;
use crate::model::{
    LatencyStats, ProfileSummary, Report, SloStatus, SloVerdict, Totals, TransactionStats,
};
use crate::significance::{self, Shift};
use crate::threshold::format_value;

/// The default significance level of `report diff --alpha`.
pub const DEFAULT_ALPHA: f64 = 0.01;

/// One compared figure.
#[derive(Clone, Debug, PartialEq)]
pub struct DiffRow {
    /// What is compared: `overall`, `transaction place_order`, `slo gateway-p95`.
    pub subject: String,
    /// Which figure: `p95`, `p99`, `error rate`, `measured`.
    pub metric: String,
    /// Unit of the values (`ms`, `ratio`, an SLO's unit).
    pub unit: String,
    pub baseline: Option<f64>,
    pub current: Option<f64>,
    /// Signed relative change of `current` against the (floored) baseline.
    pub change: Option<f64>,
    pub regression: bool,
    /// How sure the bootstrap is that the change is real: p-value, and the interval of the
    /// change relative to the (floored) baseline. `None` for SLO values and empty runs.
    pub significance: Option<Shift>,
    /// Extra context: a status change, a figure present in one run only.
    pub note: Option<String>,
}

/// The comparison of two runs.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportDiff {
    /// The allowed change in the bad direction, as a fraction (0.1 = 10 %).
    pub max_regression: f64,
    /// The significance level a change must reach to count (1 = no test).
    pub alpha: f64,
    pub rows: Vec<DiffRow>,
    /// Why the runs are not comparable (see [`mismatches`]), when they were compared anyway.
    pub warnings: Vec<String>,
}

/// Which way is worse for a figure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Worse {
    Higher,
    Lower,
    /// Unknown direction: only status changes count.
    Either,
}

impl ReportDiff {
    pub fn regressions(&self) -> impl Iterator<Item = &DiffRow> {
        self.rows.iter().filter(|r| r.regression)
    }

    pub fn has_regressions(&self) -> bool {
        self.regressions().next().is_some()
    }

    /// A Markdown table of every row, regressions marked, and a closing summary line.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        if !self.warnings.is_empty() {
            out.push_str(
                "> ⚠️ **WARNING: these runs are not comparable** (compared anyway, `--force`):\n",
            );
            for warning in &self.warnings {
                out.push_str(&format!("> - {warning}\n"));
            }
            out.push('\n');
        }
        out.push_str(
            "| Subject | Metric | Baseline | New | Change | Significance | Verdict |\n\
             |---|---|--:|--:|--:|---|---|\n",
        );
        for row in &self.rows {
            let value = |v: Option<f64>| v.map_or("-".to_string(), |v| format_value(v, &row.unit));
            let change = row
                .change
                .map_or("-".to_string(), |c| format!("{:+.1} %", c * 100.0));
            let mut verdict = if row.regression {
                "❌ regression"
            } else {
                "ok"
            }
            .to_string();
            if let Some(note) = &row.note {
                verdict.push_str(&format!(" ({note})"));
            }
            let significance = row.significance.map_or("-".to_string(), describe);
            out.push_str(&format!(
                "| {} | {} | {} | {} | {change} | {significance} | {verdict} |\n",
                row.subject.replace('|', "\\|"),
                row.metric,
                value(row.baseline),
                value(row.current),
            ));
        }
        let regressions = self.regressions().count();
        let test = if self.alpha >= 1.0 {
            "no significance test".to_string()
        } else {
            format!("significant at α = {}", self.alpha)
        };
        out.push_str(&format!(
            "\n{} beyond the allowed {:.1} % ({test}).\n",
            match regressions {
                0 => "No regression".to_string(),
                1 => "1 regression".to_string(),
                n => format!("{n} regressions"),
            },
            self.max_regression * 100.0
        ));
        out
    }
}

/// `p = 0.004, 99 % CI +2.1 … +9.8 %`: a bootstrap result as a table cell.
fn describe(shift: Shift) -> String {
    let p = if shift.p_value < 0.001 {
        "p < 0.001".to_string()
    } else {
        format!("p = {:.3}", shift.p_value)
    };
    format!(
        "{p}, {} % CI {:+.1} … {:+.1} %",
        crate::threshold::trim_number((shift.confidence * 100.0 * 10.0).round() / 10.0),
        shift.low * 100.0,
        shift.high * 100.0
    )
}

/// Compares `current` with `baseline`, allowing `max_regression` (a fraction) of change in
/// the bad direction, counted only when significant at `alpha` (1 = always).
pub fn diff(current: &Report, baseline: &Report, max_regression: f64, alpha: f64) -> ReportDiff {
    let judge = Judge {
        max_regression,
        alpha,
    };
    let mut rows = Vec::new();
    let (now, before) = Side::pair(&current.totals, &baseline.totals);
    judge.latency_and_errors(&mut rows, "overall", &now, &before);
    for t in &current.transactions {
        match baseline.transactions.iter().find(|b| b.name == t.name) {
            Some(b) => {
                let (now, before) = Side::pair(t, b);
                let subject = format!("transaction {}", t.name);
                judge.latency_and_errors(&mut rows, &subject, &now, &before)
            }
            None => rows.push(only_in(&format!("transaction {}", t.name), "new run")),
        }
    }
    for before in &baseline.transactions {
        if !current.transactions.iter().any(|t| t.name == before.name) {
            rows.push(only_in(&format!("transaction {}", before.name), "baseline"));
        }
    }
    for now in &current.slos {
        match baseline.slos.iter().find(|s| s.name == now.name) {
            Some(before) => rows.push(slo_row(now, before, max_regression)),
            None => rows.push(only_in(&format!("slo {}", now.name), "new run")),
        }
    }
    ReportDiff {
        max_regression,
        alpha,
        rows,
        warnings: Vec::new(),
    }
}

/// What makes `current` and `baseline` runs of different load — scenario, profile, load model
/// or stage plan — each as one line naming both sides; empty when they are comparable. Figures
/// of an open-model browse run say nothing about a closed-model checkout baseline.
pub fn mismatches(current: &Report, baseline: &Report) -> Vec<String> {
    let (now, before) = (&current.profile, &baseline.profile);
    let mut found = Vec::new();
    let mut differ = |what: &str, now: String, before: String| {
        if now != before {
            found.push(format!("{what}: {now} (new) vs {before} (baseline)"));
        }
    };
    differ(
        "scenario",
        format!("`{}`", current.scenario),
        format!("`{}`", baseline.scenario),
    );
    differ(
        "profile",
        format!("`{}`", now.name),
        format!("`{}`", before.name),
    );
    differ(
        "load model",
        now.model.to_string(),
        before.model.to_string(),
    );
    if now.model == before.model {
        differ("stages", stage_plan(now), stage_plan(before));
    }
    found
}

/// `30s→20, 1m30s→50 users`: a profile's stages as compared by [`mismatches`].
fn stage_plan(profile: &ProfileSummary) -> String {
    let stages: Vec<String> = profile
        .stages
        .iter()
        .map(|s| {
            format!(
                "{}s→{}",
                crate::threshold::trim_number(s.duration_s),
                crate::threshold::trim_number(s.target)
            )
        })
        .collect();
    format!("{} {}", stages.join(", "), profile.model.target_unit())
}

/// One run's side of a comparison: the latency to compare with its histogram, and the error
/// counts.
struct Side<'a> {
    latency: Option<LatencyStats>,
    histogram: &'a LatencyHistogram,
    errors: u64,
    requests: u64,
    /// As the report states it (`errors / requests`).
    error_rate: f64,
}

/// What a run reports for the whole run and for each transaction alike.
trait Figures {
    fn latencies(&self) -> (Option<LatencyStats>, &LatencyHistogram);
    fn corrected(&self) -> Option<(Option<LatencyStats>, &LatencyHistogram)>;
    fn errors(&self) -> (u64, u64, f64);
}

/// The whole run and each transaction report the same figures under the same names.
macro_rules! figures {
    ($($t:ty),*) => {$(
        impl Figures for $t {
            fn latencies(&self) -> (Option<LatencyStats>, &LatencyHistogram) {
                (self.latency, &self.histogram)
            }
            fn corrected(&self) -> Option<(Option<LatencyStats>, &LatencyHistogram)> {
                self.corrected_histogram
                    .as_ref()
                    .filter(|_| self.corrected_latency.is_some())
                    .map(|h| (self.corrected_latency, h))
            }
            fn errors(&self) -> (u64, u64, f64) {
                (self.errors, self.requests, self.error_rate)
            }
        }
    )*};
}

figures!(Totals, TransactionStats);

impl<'a> Side<'a> {
    /// Both sides, comparing the latency corrected for coordinated omission when both runs have
    /// it (open model) and the plain one otherwise, so both always measure the same thing.
    fn pair<F: Figures>(now: &'a F, before: &'a F) -> (Side<'a>, Side<'a>) {
        let corrected = now.corrected().is_some() && before.corrected().is_some();
        let side = |run: &'a F| {
            let (latency, histogram) = match run.corrected() {
                Some(fixed) if corrected => fixed,
                _ => run.latencies(),
            };
            let (errors, requests, error_rate) = run.errors();
            Side {
                latency,
                histogram,
                errors,
                requests,
                error_rate,
            }
        };
        (side(now), side(before))
    }
}

/// The rule a change must break to be a regression.
struct Judge {
    max_regression: f64,
    alpha: f64,
}

impl Judge {
    fn latency_and_errors(
        &self,
        rows: &mut Vec<DiffRow>,
        subject: &str,
        now: &Side,
        before: &Side,
    ) {
        let p95 = |s: &Side| s.latency.map(|s| s.p95_ms);
        let p99 = |s: &Side| s.latency.map(|s| s.p99_ms);
        for (metric, quantile, now_value, before_value) in [
            ("p95", 0.95, p95(now), p95(before)),
            ("p99", 0.99, p99(now), p99(before)),
        ] {
            let shift = self.tested().then(|| {
                significance::quantile_shift(before.histogram, now.histogram, quantile, self.alpha)
            });
            rows.push(self.compare(
                subject,
                metric,
                "ms",
                (before_value, now_value),
                Worse::Higher,
                shift.flatten(),
            ));
        }
        let shift = self.tested().then(|| {
            significance::ratio_shift(
                (before.errors, before.requests),
                (now.errors, now.requests),
                self.alpha,
            )
        });
        rows.push(self.compare(
            subject,
            "error rate",
            "ratio",
            (Some(before.error_rate), Some(now.error_rate)),
            Worse::Higher,
            shift.flatten(),
        ));
    }

    /// Whether changes must also be significant (`alpha` below 1).
    fn tested(&self) -> bool {
        self.alpha < 1.0
    }

    /// A row whose change regresses when beyond the bound and — where a bootstrap could be made —
    /// significant. The bootstrap's interval is reported relative to the floored baseline, like
    /// the change.
    fn compare(
        &self,
        subject: &str,
        metric: &str,
        unit: &str,
        (baseline, current): (Option<f64>, Option<f64>),
        worse: Worse,
        shift: Option<Shift>,
    ) -> DiffRow {
        let mut row = compare(
            subject,
            metric,
            unit,
            baseline,
            current,
            worse,
            self.max_regression,
        );
        if let (Some(shift), Some(before)) = (shift, baseline) {
            let scale = before.abs().max(floor(unit));
            let relative = Shift {
                low: shift.low / scale,
                high: shift.high / scale,
                ..shift
            };
            row.regression &= relative.p_value < self.alpha;
            row.significance = Some(relative);
        }
        row
    }
}

fn compare(
    subject: &str,
    metric: &str,
    unit: &str,
    baseline: Option<f64>,
    current: Option<f64>,
    worse: Worse,
    max_regression: f64,
) -> DiffRow {
    let change = match (baseline, current) {
        (Some(before), Some(now)) => Some((now - before) / before.abs().max(floor(unit))),
        _ => None,
    };
    let regression = change.is_some_and(|c| match worse {
        Worse::Higher => c > max_regression,
        Worse::Lower => -c > max_regression,
        Worse::Either => false,
    });
    DiffRow {
        subject: subject.to_string(),
        metric: metric.to_string(),
        unit: unit.to_string(),
        baseline,
        current,
        change,
        regression,
        significance: None,
        note: None,
    }
}

/// The smallest baseline a relative change is computed against.
fn floor(unit: &str) -> f64 {
    match unit {
        "ratio" => 0.001,
        _ => 1.0,
    }
}

fn slo_row(now: &SloVerdict, before: &SloVerdict, max_regression: f64) -> DiffRow {
    let unit = now.unit.clone().unwrap_or_default();
    let mut row = compare(
        &format!("slo {}", now.name),
        "measured",
        &unit,
        before.measured,
        now.measured,
        direction(&now.objective),
        max_regression,
    );
    if now.status != before.status {
        row.note = Some(format!("status {} → {}", before.status, now.status));
        if now.status == SloStatus::Fail {
            row.regression = true;
        }
    }
    row
}

/// Which way is worse, read from the objective text (`p95 < 500 ms` → higher is worse).
fn direction(objective: &str) -> Worse {
    match objective.find(['<', '>', '≤', '≥']) {
        Some(i) => match objective[i..].chars().next() {
            Some('<') | Some('≤') => Worse::Higher,
            _ => Worse::Lower,
        },
        None => Worse::Either,
    }
}

fn only_in(subject: &str, run: &str) -> DiffRow {
    DiffRow {
        subject: subject.to_string(),
        metric: "-".to_string(),
        unit: String::new(),
        baseline: None,
        current: None,
        change: None,
        regression: false,
        significance: None,
        note: Some(format!("only in the {run}")),
    }
}

/// A regression bound that is not a percentage; the message says the spelling probably meant.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BoundError {
    /// A bare number: it read as a fraction before (`10` was 1000 %).
    #[error("`{text}` has no unit: did you mean `{text}%`?{}", fraction_hint(.text))]
    NoUnit { text: String },
    #[error("`{text}` is not a percentage like `10%`")]
    NotAPercentage { text: String },
    #[error("`{text}` must be zero or more")]
    Negative { text: String },
}

/// For a bare number between 0 and 1, the percentage it meant if it was a fraction.
fn fraction_hint(text: &str) -> String {
    match text.parse::<f64>() {
        Ok(v) if v > 0.0 && v < 1.0 => format!(
            " (or `{}%`, if `{text}` was a fraction)",
            crate::threshold::trim_number(v * 100.0)
        ),
        _ => String::new(),
    }
}

/// Reads a regression bound, a percentage: `10%`. A bare `10` is refused — it read as 1000 %
/// before, a bound no regression ever crosses — with the spelling that was probably meant.
pub fn parse_bound(text: &str) -> Result<f64, BoundError> {
    let text = text.trim();
    let owned = || text.to_string();
    let Some(percent) = text.strip_suffix('%') else {
        return Err(match text.parse::<f64>() {
            Ok(_) => BoundError::NoUnit { text: owned() },
            Err(_) => BoundError::NotAPercentage { text: owned() },
        });
    };
    let value = percent
        .trim()
        .parse::<f64>()
        .map(|p| p / 100.0)
        .map_err(|_| BoundError::NotAPercentage { text: owned() })?;
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(BoundError::Negative { text: owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::sample_report;
    use crate::histogram::LatencyHistogram;

    #[test]
    fn a_run_compared_with_itself_has_no_regression() {
        let report = sample_report();
        let diff = diff(&report, &report, 0.0, 1.0);
        assert!(!diff.has_regressions(), "{}", diff.to_markdown());
        // Overall, three transactions and one SLO.
        assert_eq!(diff.rows.len(), 3 + 3 * 3 + 1);
        assert!(diff.rows.iter().all(|r| r.change == Some(0.0)));
    }

    #[test]
    fn slower_transactions_and_more_errors_regress_beyond_the_bound() {
        let baseline = sample_report();
        let mut current = baseline.clone();
        let t = &mut current.transactions[0];
        let mut latency = t.latency.unwrap();
        latency.p95_ms *= 1.05;
        latency.p99_ms *= 1.25;
        t.latency = Some(latency);
        current.totals.error_rate = baseline.totals.error_rate * 2.0;

        let diff = diff(&current, &baseline, 0.10, 1.0);
        let regressions: Vec<(String, String)> = diff
            .regressions()
            .map(|r| (r.subject.clone(), r.metric.clone()))
            .collect();
        let name = &baseline.transactions[0].name;
        assert_eq!(
            regressions,
            [
                ("overall".to_string(), "error rate".to_string()),
                (format!("transaction {name}"), "p99".to_string()),
            ]
        );
        let markdown = diff.to_markdown();
        assert!(markdown.contains("+25.0 %"), "{markdown}");
        assert!(
            markdown.contains("2 regressions beyond the allowed 10.0 %"),
            "{markdown}"
        );
    }

    /// A report whose first transaction's (and the totals') latencies are `n` values spread
    /// evenly over `from_us..to_us`, with `errors` of them failed.
    fn spread_report(n: u64, from_us: u64, to_us: u64, errors: u64) -> Report {
        let mut report = sample_report();
        let mut histogram = LatencyHistogram::fine();
        for i in 0..n {
            histogram.record_micros(from_us + (to_us - from_us) * i / n.max(1));
        }
        let t = &mut report.transactions[0];
        t.requests = n;
        t.errors = errors;
        t.error_rate = errors as f64 / n as f64;
        t.latency = histogram.stats();
        t.histogram = histogram;
        report
    }

    #[test]
    fn a_change_within_the_noise_is_not_a_regression_but_a_real_one_is() {
        let name = sample_report().transactions[0].name.clone();
        let subject = format!("transaction {name}");
        let p95_row = |d: &ReportDiff| {
            d.rows
                .iter()
                .find(|r| r.subject == subject && r.metric == "p95")
                .cloned()
                .unwrap()
        };
        // 20 requests each, the same but for the two slowest, 30 % slower: p95 is up 30 %,
        // and two requests decide it.
        let base = spread_report(20, 10_000, 20_000, 0);
        let mut new = base.clone();
        let mut histogram = LatencyHistogram::fine();
        for i in 0..20 {
            let micros = 10_000 + 10_000 * i / 20;
            histogram.record_micros(if i >= 18 { micros * 13 / 10 } else { micros });
        }
        new.transactions[0].latency = histogram.stats();
        new.transactions[0].histogram = histogram;
        let judged = diff(&new, &base, 0.10, DEFAULT_ALPHA);
        let row = p95_row(&judged);
        assert!(row.change.unwrap() > 0.10, "{row:?}");
        assert!(!row.regression, "{}", judged.to_markdown());
        assert!(row.significance.unwrap().p_value >= DEFAULT_ALPHA);
        // Without the test (α = 1) the bound alone decides, as before.
        assert!(p95_row(&diff(&new, &base, 0.10, 1.0)).regression);

        // The same 20 % over 20,000 requests is no accident.
        let (base, new) = (
            spread_report(20_000, 10_000, 20_000, 0),
            spread_report(20_000, 10_000, 24_000, 0),
        );
        let judged = diff(&new, &base, 0.10, DEFAULT_ALPHA);
        let row = p95_row(&judged);
        assert!(row.regression, "{}", judged.to_markdown());
        let shift = row.significance.unwrap();
        assert!(shift.p_value < 0.01 && shift.low > 0.10, "{shift:?}");
        let markdown = judged.to_markdown();
        assert!(markdown.contains("p < 0.001, 99 % CI +"), "{markdown}");
        assert!(markdown.contains("(significant at α = 0.01)"), "{markdown}");
    }

    #[test]
    fn error_rates_need_enough_errors_to_regress() {
        let name = sample_report().transactions[0].name.clone();
        let errors_row = |d: ReportDiff| {
            d.rows
                .into_iter()
                .find(|r| r.subject == format!("transaction {name}") && r.metric == "error rate")
                .unwrap()
        };
        // One failed request against none: +100 % of the floor, and noise.
        let base = spread_report(1000, 10_000, 20_000, 0);
        let one = spread_report(1000, 10_000, 20_000, 1);
        assert!(!errors_row(diff(&one, &base, 0.10, DEFAULT_ALPHA)).regression);
        // An outage's worth of them is not.
        let many = spread_report(1000, 10_000, 20_000, 40);
        assert!(errors_row(diff(&many, &base, 0.10, DEFAULT_ALPHA)).regression);
    }

    #[test]
    fn slo_direction_comes_from_the_objective_and_a_new_failure_always_regresses() {
        let baseline = sample_report();
        let mut current = baseline.clone();
        // `availability >= 99.9 %`: lower is worse.
        current.slos[0].measured = Some(0.5);
        let row = &diff(&current, &baseline, 0.10, 1.0)
            .rows
            .last()
            .cloned()
            .unwrap();
        assert!(row.regression, "{row:?}");

        let mut better = baseline.clone();
        better.slos[0].measured = Some(1.0);
        assert!(!diff(&better, &baseline, 0.0, 1.0).has_regressions());

        let mut failed = baseline.clone();
        failed.slos[0].status = SloStatus::Fail;
        let row = diff(&failed, &baseline, 0.10, 1.0)
            .rows
            .last()
            .cloned()
            .unwrap();
        assert!(row.regression);
        assert_eq!(row.note.as_deref(), Some("status pass → fail"));
    }

    #[test]
    fn runs_of_different_load_are_named_as_not_comparable() {
        let baseline = sample_report();
        assert!(mismatches(&baseline, &baseline).is_empty());
        let mut other = baseline.clone();
        other.scenario = "checkout".into();
        other.profile.name = "k6-baseline".into();
        other.profile.model = crate::model::LoadModel::Open;
        assert_eq!(
            mismatches(&other, &baseline),
            [
                "scenario: `checkout` (new) vs `browse` (baseline)",
                "profile: `k6-baseline` (new) vs `smoke` (baseline)",
                "load model: open (new) vs closed (baseline)",
            ]
        );
        let mut scaled = baseline.clone();
        scaled.profile.stages[0].target *= 2.0;
        let found = mismatches(&scaled, &baseline);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("stages: "), "{found:?}");

        let mut forced = diff(&other, &baseline, 0.1, 1.0);
        forced.warnings = mismatches(&other, &baseline);
        let markdown = forced.to_markdown();
        assert!(
            markdown.starts_with("> ⚠️ **WARNING: these runs are not comparable**"),
            "{markdown}"
        );
        assert!(
            markdown.contains("> - scenario: `checkout` (new)"),
            "{markdown}"
        );
    }

    #[test]
    fn a_zero_baseline_is_floored() {
        let row = compare(
            "x",
            "error rate",
            "ratio",
            Some(0.0),
            Some(0.0005),
            Worse::Higher,
            0.10,
        );
        assert_eq!(row.change, Some(0.5));
        assert!(row.regression);
        let row = compare("x", "p95", "ms", Some(0.0), Some(0.05), Worse::Higher, 0.10);
        assert!(!row.regression, "0.05 ms more than nothing is noise");
    }

    #[test]
    fn bounds_are_percentages() {
        assert_eq!(parse_bound("10%").unwrap(), 0.1);
        assert_eq!(parse_bound(" 2.5 % ").unwrap(), 0.025);
        assert!(parse_bound("-5%").is_err());
        assert!(parse_bound("ten").is_err());
        assert_eq!(
            parse_bound("-5%").unwrap_err(),
            BoundError::Negative { text: "-5%".into() }
        );
        assert_eq!(
            parse_bound("10").unwrap_err().to_string(),
            "`10` has no unit: did you mean `10%`?"
        );
        assert_eq!(
            parse_bound("0.25").unwrap_err().to_string(),
            "`0.25` has no unit: did you mean `0.25%`? (or `25%`, if `0.25` was a fraction)"
        );
    }
}
