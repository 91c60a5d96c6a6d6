//! The PromQL behind each SLI, built without any I/O so it can be tested as text and printed
//! in verdicts exactly as it was sent.
//!
//! Most SLIs are one instant query at the window's end over a `[<window>s]` range. Counter SLIs
//! (latency histograms, error ratios) count exact increments step by step instead of `rate()`,
//! see [`increments`]. Two SLIs need the shape of a series (longest time at max replicas, lag
//! recovery) and are range queries judged sample by sample in [`crate::series`].

use crate::model::{
    ErrorRatioSli, HpaMeasure, HpaSli, KafkaLagSli, KafkaMeasure, LatencySli, PromqlSli, Sli,
};
use crate::window::Window;

/// kube-state-metrics series of an HPA.
const HPA_CURRENT: &str = "kube_horizontalpodautoscaler_status_current_replicas";
const HPA_DESIRED: &str = "kube_horizontalpodautoscaler_status_desired_replicas";
const HPA_MIN: &str = "kube_horizontalpodautoscaler_spec_min_replicas";
const HPA_MAX: &str = "kube_horizontalpodautoscaler_spec_max_replicas";
/// kafka-exporter's lag per group, topic and partition.
const KAFKA_LAG: &str = "kafka_consumergroup_lag";
/// kafka-lag-exporter's time lag (seconds) per group, topic and partition; its group label is
/// `group`, where kafka-exporter's is `consumergroup`.
const KAFKA_LAG_SECONDS: &str = "kafka_consumergroup_group_lag_seconds";
/// kafka-lag-exporter's highest time lag of a group over all its partitions.
const KAFKA_MAX_LAG_SECONDS: &str = "kafka_consumergroup_group_max_lag_seconds";

/// One question for Prometheus.
#[derive(Clone, Debug, PartialEq)]
pub enum Plan {
    /// Evaluate `expr` at `at` (Unix seconds); it must yield one value.
    Instant { expr: String, at: i64 },
    /// Evaluate `expr` from `start` to `end` every `step` seconds and judge the samples.
    Range {
        expr: String,
        start: i64,
        end: i64,
        step: i64,
        judge: RangeJudgement,
    },
}

/// How the samples of a range query become one value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RangeJudgement {
    /// The series is 1 while at max replicas: the longest stretch of 1s, in seconds.
    LongestTrueRun,
    /// Seconds from `since` to the first sample below `below`.
    RecoveryBelow { below: f64, since: i64 },
}

impl Plan {
    /// The latest instant the plan evaluates (Unix seconds): it must have passed before asking.
    pub fn last_instant(&self) -> i64 {
        match self {
            Plan::Instant { at, .. } => *at,
            Plan::Range { end, .. } => *end,
        }
    }

    #[cfg(test)]
    pub fn expr(&self) -> &str {
        match self {
            Plan::Instant { expr, .. } | Plan::Range { expr, .. } => expr,
        }
    }
}

/// The plan for `sli` over `window`; `Err` says why it cannot be asked (e.g. the instant to
/// count recovery from is not known), which makes the verdict `unknown`.
pub fn plan(sli: &Sli, window: &Window) -> Result<Plan, String> {
    let at = window.to.timestamp();
    let instant = |expr: String| Ok(Plan::Instant { expr, at });
    match sli {
        Sli::Latency(l) => Ok(counted(window, |span| latency(l, span))),
        Sli::ErrorRatio(e) => Ok(counted(window, |span| error_ratio(e, span))),
        Sli::Promql(p) => instant(promql(p, window)),
        Sli::Hpa(h) => {
            let selector = hpa_selector(h);
            match h.measure {
                HpaMeasure::ScaleOut => instant(format!(
                    "max(max_over_time({HPA_CURRENT}{{{selector}}}[{range}])) - max({HPA_MIN}{{{selector}}})",
                    range = window.promql_range()
                )),
                HpaMeasure::EndGap => instant(format!(
                    "abs(max({HPA_DESIRED}{{{selector}}}) - max({HPA_CURRENT}{{{selector}}}))"
                )),
                HpaMeasure::TimeAtMax => Ok(Plan::Range {
                    expr: format!(
                        "max({HPA_CURRENT}{{{selector}}}) >= bool max({HPA_MAX}{{{selector}}})"
                    ),
                    start: window.from.timestamp(),
                    end: at,
                    step: step_seconds(window),
                    judge: RangeJudgement::LongestTrueRun,
                }),
            }
        }
        Sli::KafkaLag(k) => kafka(k, window),
        Sli::Client(_) => Err("client SLIs are read from a run report, not Prometheus".into()),
    }
}

/// An instant query over counters, evaluated at the end of the window's counted span.
fn counted(window: &Window, expr: impl FnOnce(&CountedSpan) -> String) -> Plan {
    let span = CountedSpan::of(window);
    Plan::Instant {
        expr: expr(&span),
        at: span.at,
    }
}

fn step_seconds(window: &Window) -> i64 {
    crate::window::step_seconds(window.step)
}

fn latency(l: &LatencySli, span: &CountedSpan) -> String {
    let buckets = format!("{}_bucket{}", l.metric.0, braces(&l.selector.0));
    format!(
        "histogram_quantile({q}, sum by (le) ({increments}))",
        q = l.quantile.0,
        increments = increments(&buckets, span)
    )
}

fn error_ratio(e: &ErrorRatioSli, span: &CountedSpan) -> String {
    // No bad series at all means no errors, not "no data": `or vector(0)` keeps the ratio
    // defined. No series for all requests still yields nothing, which is `unknown`.
    let bad = format!("{}{}", e.metric.0, braces(&e.selector.and(&e.bad)));
    let all = format!("{}{}", e.metric.0, braces(&e.selector.0));
    format!(
        "(sum({bad}) or vector(0)) / sum({all})",
        bad = increments(&bad, span),
        all = increments(&all, span)
    )
}

/// How long a counter's last sample still stands for its value across a gap. A failed scrape
/// writes stale markers, and a plain selector would then see the series vanish and, one
/// scrape later, be "born" again with its whole cumulative value. `last_over_time` over a range
/// skips stale markers, so a gap shorter than this is no birth. Five minutes is Prometheus's
/// default lookback: a series silent for longer is gone for Prometheus too.
const COUNTER_LOOKBACK: &str = "5m";

/// The span counter SLIs count increments over: whole steps of the window's step S, on
/// multiples of S (Prometheus aligns subquery steps to multiples of the step since the epoch,
/// whatever the evaluation time), from the last multiple at or before the window's start to
/// the first at or after its end. An aligned window is counted exactly; any other is widened
/// by less than one step at each end, so no increment inside the window is ever lost.
#[derive(Clone, Copy, Debug, PartialEq)]
struct CountedSpan {
    /// Evaluation time of the instant query: the end of the span.
    at: i64,
    /// Length of the span in seconds.
    seconds: i64,
    /// S in seconds.
    step: i64,
}

impl CountedSpan {
    fn of(window: &Window) -> CountedSpan {
        let step = step_seconds(window);
        let from = window.from.timestamp().div_euclid(step) * step;
        let to = window.to.timestamp();
        let at = to.div_euclid(step) * step + if to.rem_euclid(step) > 0 { step } else { 0 };
        CountedSpan {
            at,
            seconds: at - from,
            step,
        }
    }
}

/// The increments of the counters `selector` (one series per label set, without `__name__`)
/// during `span`, counting a series born inside the span from 0 and a reset as a restart
/// from 0.
///
/// Why not `increase()` / `rate()`: they only count differences between samples inside the
/// range, so a series whose first sample is already 60 (an error burst on a status never seen
/// before) adds nothing, and they extrapolate to the range's edges. Here the span is cut into
/// steps of S; each step adds `value - value S earlier` when the series existed S earlier and
/// did not drop, and its whole value when it is new or was reset (`or` ignores the metric name;
/// `* 1` drops it — `last_over_time` keeps it on 2.42 — so both arms are the same series for
/// `sum_over_time`). The steps telescope to the exact increase of an unbroken series.
///
/// The subquery range is one millisecond short of the span: Prometheus 2.x includes a step
/// that falls exactly on the range's start (3.x does not), and that step's delta lies before
/// the span. Measured on Prometheus 2.42: `[1200s:15s]` counts 81 steps, `[1199s999ms:15s]`
/// counts the 80 of the window; both versions agree on the latter.
fn increments(selector: &str, span: &CountedSpan) -> String {
    let step = span.step;
    let now = format!("last_over_time({selector}[{COUNTER_LOOKBACK}])");
    let before = format!("last_over_time({selector}[{COUNTER_LOOKBACK}] offset {step}s)");
    format!(
        "sum_over_time((({now} - {before}) >= 0 or {now} * 1)[{range}:{step}s])",
        range = just_under(span.seconds)
    )
}

/// A PromQL duration one millisecond shorter than `seconds`, e.g. `1199s999ms` for 1200.
fn just_under(seconds: i64) -> String {
    if seconds > 1 {
        format!("{}s999ms", seconds - 1)
    } else {
        "999ms".to_string()
    }
}

fn promql(p: &PromqlSli, window: &Window) -> String {
    p.query
        .replace("$window", &window.promql_range())
        .replace("$from", &window.from.timestamp().to_string())
        .replace("$to", &window.to.timestamp().to_string())
}

fn kafka(k: &KafkaLagSli, window: &Window) -> Result<Plan, String> {
    use crate::model::LagKind;
    let topics = match &k.topics[..] {
        [] => String::new(),
        [topic] => format!(", topic={}", string_literal(topic)),
        topics => {
            let alternatives: Vec<String> = topics.iter().map(|t| regex_escape(t)).collect();
            format!(", topic=~{}", string_literal(&alternatives.join("|")))
        }
    };
    // Message lag adds up over partitions; time lag is the oldest message anywhere, a maximum.
    // Without topics the exporter's own per-group maximum answers the time lag.
    let lag = match k.lag {
        LagKind::Messages => format!(
            "sum({KAFKA_LAG}{{consumergroup={}{topics}}})",
            string_literal(&k.group)
        ),
        LagKind::Time if k.topics.is_empty() => format!(
            "max({KAFKA_MAX_LAG_SECONDS}{{group={}}})",
            string_literal(&k.group)
        ),
        LagKind::Time => format!(
            "max({KAFKA_LAG_SECONDS}{{group={}{topics}}})",
            string_literal(&k.group)
        ),
    };
    match k.measure {
        KafkaMeasure::MaxLag | KafkaMeasure::TimeLag => Ok(Plan::Instant {
            expr: format!(
                "max_over_time({lag}[{range}:{step}s])",
                range = window.promql_range(),
                step = step_seconds(window)
            ),
            at: window.to.timestamp(),
        }),
        KafkaMeasure::RecoveryTime => {
            let since = window
                .instant(&k.after)
                .map_err(|e| e.to_string())?
                .timestamp();
            if since > window.to.timestamp() {
                return Err(format!(
                    "recovery is counted from {} ({}), after the window ends",
                    k.after,
                    crate::time::human_instant(since as f64)
                ));
            }
            Ok(Plan::Range {
                expr: lag,
                start: since.max(window.from.timestamp()),
                end: window.to.timestamp(),
                step: step_seconds(window),
                judge: RangeJudgement::RecoveryBelow {
                    below: k.below.unwrap_or(0.0),
                    since,
                },
            })
        }
    }
}

fn hpa_selector(h: &HpaSli) -> String {
    format!(
        "namespace={}, horizontalpodautoscaler={}",
        string_literal(&h.namespace),
        string_literal(&h.name)
    )
}

/// `{matchers}`, or nothing for no matchers.
fn braces(matchers: &str) -> String {
    if matchers.is_empty() {
        String::new()
    } else {
        format!("{{{matchers}}}")
    }
}

/// A PromQL double-quoted string holding `value` verbatim.
fn string_literal(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `value` as a regular expression that matches only itself (RE2 syntax).
fn regex_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Defaults;
    use chrono::{TimeZone, Utc};

    fn window() -> Window {
        Window::new(
            Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
            Utc.timestamp_opt(1_700_000_900, 0).unwrap(),
            &Defaults::default(),
        )
        .unwrap()
    }

    fn sli(yaml: &str) -> Sli {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    /// INC(selector) as the tests expect it, for a span of `range` and a step of 15 s.
    fn inc(selector: &str, range: &str) -> String {
        let now = format!("last_over_time({selector}[5m])");
        format!(
            "sum_over_time((({now} - last_over_time({selector}[5m] offset 15s)) >= 0 or {now} * 1)[{range}:15s])"
        )
    }

    #[test]
    fn latency_and_error_ratio_count_increments_step_by_step() {
        // 1_700_000_000 is 5 s past a multiple of 15 s, and so is the end: the span widens to
        // [1_699_999_995, 1_700_000_910], 915 s.
        let w = window();
        let plan = plan(
            &sli("latency: {quantile: 0.95, selector: 'service=\"api-gateway\"'}"),
            &w,
        )
        .unwrap();
        let buckets = inc(
            "http_request_duration_seconds_bucket{service=\"api-gateway\"}",
            "914s999ms",
        );
        assert_eq!(
            plan,
            Plan::Instant {
                expr: format!("histogram_quantile(0.95, sum by (le) ({buckets}))"),
                at: 1_700_000_910
            }
        );
        let expr = plan_expr(&sli("error_ratio: {}"), &w);
        let bad = inc(
            "http_request_duration_seconds_count{status=~\"5..\"}",
            "914s999ms",
        );
        let all = inc("http_request_duration_seconds_count", "914s999ms");
        assert_eq!(expr, format!("(sum({bad}) or vector(0)) / sum({all})"));
    }

    #[test]
    fn an_aligned_window_is_counted_exactly() {
        let aligned = Window::new(
            Utc.timestamp_opt(1_699_999_800, 0).unwrap(),
            Utc.timestamp_opt(1_700_001_000, 0).unwrap(),
            &Defaults::default(),
        )
        .unwrap();
        assert_eq!(
            CountedSpan::of(&aligned),
            CountedSpan {
                at: 1_700_001_000,
                seconds: 1200,
                step: 15
            }
        );
        let expr = plan_expr(
            &sli("error_ratio: {selector: 'service=\"a\"', bad: 'code=\"500\"'}"),
            &aligned,
        );
        assert!(
            expr.starts_with(&format!(
                "(sum({}) or vector(0))",
                inc(
                    "http_request_duration_seconds_count{service=\"a\", code=\"500\"}",
                    "1199s999ms"
                )
            )),
            "{expr}"
        );
        assert_eq!(just_under(1), "999ms");
    }

    #[test]
    fn templated_routes_can_be_selected() {
        let expr = plan_expr(
            &sli("error_ratio: {selector: 'route=\"/api/v1/products/{id}\"'}"),
            &window(),
        );
        assert!(
            expr.contains(
                "http_request_duration_seconds_count{route=\"/api/v1/products/{id}\"}[5m]"
            ),
            "{expr}"
        );
        let braces: Result<Sli, _> =
            serde_yaml_ng::from_str("error_ratio: {selector: '{a=\"b\"}'}");
        assert!(braces.unwrap_err().to_string().contains("without braces"));
    }

    fn plan_expr(sli: &Sli, w: &Window) -> String {
        plan(sli, w).unwrap().expr().to_string()
    }

    #[test]
    fn promql_placeholders_are_filled_in() {
        let expr = plan_expr(
            &sli("promql: {query: 'max_over_time(up[$window]) + $from - $to'}"),
            &window(),
        );
        assert_eq!(expr, "max_over_time(up[900s]) + 1700000000 - 1700000900");
    }

    #[test]
    fn label_values_are_escaped() {
        let expr = plan_expr(
            &sli("kafka_lag: {group: 'g\"1', topics: [order.created, audit], measure: max_lag}"),
            &window(),
        );
        assert_eq!(
            expr,
            "max_over_time(sum(kafka_consumergroup_lag{consumergroup=\"g\\\"1\", topic=~\"order\\\\.created|audit\"})[900s:15s])"
        );
    }

    #[test]
    fn time_lag_reads_kafka_lag_exporter_by_its_group_label() {
        let w = window();
        assert_eq!(
            plan_expr(
                &sli("kafka_lag: {group: notification-group, topics: [orders], measure: time_lag}"),
                &w
            ),
            "max_over_time(max(kafka_consumergroup_group_lag_seconds{group=\"notification-group\", topic=\"orders\"})[900s:15s])"
        );
        // No topics: the exporter's per-group maximum.
        assert_eq!(
            plan_expr(&sli("kafka_lag: {group: g, measure: time_lag}"), &w),
            "max_over_time(max(kafka_consumergroup_group_max_lag_seconds{group=\"g\"})[900s:15s])"
        );
        let mut marked = w.clone();
        marked.marks.load_end = Some(Utc.timestamp_opt(1_700_000_600, 0).unwrap());
        let recovery = sli(
            "kafka_lag: {group: g, topics: [orders, payments], measure: recovery_time, below: 5s}",
        );
        match plan(&recovery, &marked).unwrap() {
            Plan::Range {
                expr, start, judge, ..
            } => {
                assert_eq!(
                    expr,
                    "max(kafka_consumergroup_group_lag_seconds{group=\"g\", topic=~\"orders|payments\"})"
                );
                assert_eq!(start, 1_700_000_600);
                assert_eq!(
                    judge,
                    RangeJudgement::RecoveryBelow {
                        below: 5.0,
                        since: 1_700_000_600
                    }
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        // Recovery in messages still reads kafka-exporter.
        let messages = sli("kafka_lag: {group: g, measure: recovery_time, below: 1000}");
        assert_eq!(
            plan(&messages, &marked).unwrap().expr(),
            "sum(kafka_consumergroup_lag{consumergroup=\"g\"})"
        );
    }

    #[test]
    fn recovery_needs_a_known_instant_inside_the_window() {
        let w = window();
        let recovery = sli("kafka_lag: {group: g, measure: recovery_time, below: 1000}");
        assert!(plan(&recovery, &w).unwrap_err().contains("end of load"));
        let mut marked = w.clone();
        marked.marks.load_end = Some(Utc.timestamp_opt(1_700_000_600, 0).unwrap());
        match plan(&recovery, &marked).unwrap() {
            Plan::Range {
                start, end, judge, ..
            } => {
                assert_eq!((start, end), (1_700_000_600, 1_700_000_900));
                assert_eq!(
                    judge,
                    RangeJudgement::RecoveryBelow {
                        below: 1000.0,
                        since: 1_700_000_600
                    }
                );
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
