//! The PromQL behind each SLI, built without any I/O so it can be tested as text and printed
//! in verdicts exactly as it was sent.
//!
//! Most SLIs are one instant query at the window's end over a `[<window>s]` range. Two need the
//! shape of a series (longest time at max replicas, lag recovery) and are range queries judged
//! sample by sample in [`crate::series`].

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
        Sli::Latency(l) => instant(latency(l, window)),
        Sli::ErrorRatio(e) => instant(error_ratio(e, window)),
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

fn step_seconds(window: &Window) -> i64 {
    (window.step.as_secs() as i64).max(1)
}

fn latency(l: &LatencySli, window: &Window) -> String {
    format!(
        "histogram_quantile({q}, sum by (le) (rate({metric}_bucket{selector}[{range}])))",
        q = l.quantile.0,
        metric = l.metric.0,
        selector = braces(&l.selector.0),
        range = window.promql_range()
    )
}

fn error_ratio(e: &ErrorRatioSli, window: &Window) -> String {
    // No bad series at all means no errors, not "no data": `or vector(0)` keeps the ratio
    // defined. No series for all requests still yields nothing, which is `unknown`.
    format!(
        "(sum(rate({metric}{bad}[{range}])) or vector(0)) / sum(rate({metric}{all}[{range}]))",
        metric = e.metric.0,
        bad = braces(&e.selector.and(&e.bad)),
        all = braces(&e.selector.0),
        range = window.promql_range()
    )
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
            let since = window.instant(&k.after)?.timestamp();
            if since > window.to.timestamp() {
                return Err(format!(
                    "recovery is counted from {} ({since}), after the window ends",
                    k.after
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

    #[test]
    fn latency_and_error_ratio_queries() {
        let w = window();
        let plan = plan(
            &sli("latency: {quantile: 0.95, selector: 'service=\"api-gateway\"'}"),
            &w,
        )
        .unwrap();
        assert_eq!(
            plan,
            Plan::Instant {
                expr: "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{service=\"api-gateway\"}[900s])))".into(),
                at: 1_700_000_900
            }
        );
        let plan = plan_expr(&sli("error_ratio: {}"), &w);
        assert_eq!(
            plan,
            "(sum(rate(http_request_duration_seconds_count{status=~\"5..\"}[900s])) or vector(0)) / sum(rate(http_request_duration_seconds_count[900s]))"
        );
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
