//! The share of bad requests of an SLO over one window, in PromQL: what the burn-rate recording
//! rules record.
//!
//! - `error_ratio`: bad requests (the SLI's `selector` and `bad` matchers) over all of them
//!   (`selector`), from the request counter.
//! - `latency`: requests slower than the objective's bound over all of them, from the histogram:
//!   the bucket whose `le` is the bound counts the fast ones. The bound must therefore be one of
//!   the histogram's bucket boundaries (the reference services' are
//!   `shop::platform::metrics::LATENCY_BUCKETS`); `lt` and `lte` both read that bucket, since a
//!   histogram only knows "at most". Client libraries write `le` in their shortest form (`0.5`)
//!   but whole seconds as `1` (Go, text format) or `1.0` (OpenMetrics): both are matched.
//!
//! Counters are read with `rate()`, as alerting rules are everywhere: a series born inside a
//! window adds nothing to it, which is why the reference services create their series at zero.

use std::time::Duration;

use crate::model::{ErrorRatioSli, LatencySli, Selector, Sli, Slo};
use crate::rules::windows::promql;

/// The PromQL of the bad-request ratio of `slo` over `window`, or why it has none.
pub fn error_ratio(slo: &Slo, window: Duration) -> Result<String, String> {
    let w = promql(window);
    match &slo.sli {
        Sli::ErrorRatio(sli) => Ok(errors(sli, &w)),
        Sli::Latency(sli) => Ok(slow(sli, slo.objective.value, &w)),
        other => Err(format!(
            "a `{}` SLI does not count good and bad requests",
            other.kind_name()
        )),
    }
}

fn errors(sli: &ErrorRatioSli, window: &str) -> String {
    let metric = &sli.metric.0;
    format!(
        "(sum(rate({metric}{{{bad}}}[{window}])) or vector(0)) / sum(rate({metric}{}[{window}]))",
        braces(&sli.selector.0),
        bad = sli.selector.and(&sli.bad),
    )
}

fn slow(sli: &LatencySli, bound_seconds: f64, window: &str) -> String {
    let metric = &sli.metric.0;
    let fast = sli.selector.and(&Selector(le_matcher(bound_seconds)));
    let all = braces(&sli.selector.0);
    format!(
        "(sum(rate({metric}_count{all}[{window}])) - sum(rate({metric}_bucket{{{fast}}}[{window}]))) / sum(rate({metric}_count{all}[{window}]))"
    )
}

fn braces(matchers: &str) -> String {
    if matchers.is_empty() {
        String::new()
    } else {
        format!("{{{matchers}}}")
    }
}

/// The `le` matcher of the bucket at `seconds`: `le="0.5"`, or `le=~"1(\\.0)?"` for whole seconds.
pub fn le_matcher(seconds: f64) -> String {
    if seconds.fract() == 0.0 {
        format!(r#"le=~"{seconds}(\\.0)?""#)
    } else {
        format!(r#"le="{seconds}""#)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slo(sli: &str, objective: &str) -> Slo {
        let text = format!(
            "apiVersion: shakedown/v1\nkind: SLOSet\nmetadata: {{name: t}}\nslos:\n  - name: s\n    sli: {sli}\n    objective: {objective}\n"
        );
        crate::parse(&text, std::path::Path::new("t.yaml"))
            .unwrap()
            .slos
            .remove(0)
    }

    #[test]
    fn latency_counts_requests_above_the_bucket_of_the_bound() {
        let latency = slo(
            "{latency: {quantile: 0.95, selector: 'service=\"api-gateway\"'}}",
            "{lt: 500ms}",
        );
        assert_eq!(
            error_ratio(&latency, Duration::from_secs(300)).unwrap(),
            "(sum(rate(http_request_duration_seconds_count{service=\"api-gateway\"}[5m])) - sum(rate(http_request_duration_seconds_bucket{service=\"api-gateway\", le=\"0.5\"}[5m]))) / sum(rate(http_request_duration_seconds_count{service=\"api-gateway\"}[5m]))"
        );
        assert_eq!(le_matcher(1.0), r#"le=~"1(\\.0)?""#);
        assert_eq!(le_matcher(0.25), r#"le="0.25""#);
    }

    #[test]
    fn error_ratio_divides_bad_by_all() {
        let errors = slo("{error_ratio: {}}", "{lt: 1%}");
        assert_eq!(
            error_ratio(&errors, Duration::from_secs(3600)).unwrap(),
            "(sum(rate(http_request_duration_seconds_count{status=~\"5..\"}[1h])) or vector(0)) / sum(rate(http_request_duration_seconds_count[1h]))"
        );
        let hpa = slo(
            "{hpa: {namespace: n, name: o, measure: scale_out}}",
            "{gt: 0}",
        );
        assert!(error_ratio(&hpa, Duration::from_secs(60)).is_err());
    }
}
