//! Judging a series of samples over time: the questions a range query or a live sampler answers
//! that a single number cannot ("how long was it pinned?", "when did it recover?").
//!
//! Shared by the Prometheus range queries and the live kafka / kube samplers, so both sources
//! compute the same thing the same way.

/// One sample: Unix time in seconds and a value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub at: f64,
    pub value: f64,
}

/// The largest value, `None` for no samples.
pub fn max(points: &[Point]) -> Option<f64> {
    points.iter().map(|p| p.value).reduce(f64::max)
}

/// The longest stretch of consecutive samples for which `holds` is true, measured from the
/// first to the last sample of the stretch (so a condition seen in a single sample lasted 0 s:
/// nothing proves it lasted longer). 0 when it never holds.
pub fn longest_run(points: &[Point], holds: impl Fn(f64) -> bool) -> f64 {
    let mut longest = 0.0_f64;
    let mut start: Option<f64> = None;
    for point in points {
        if holds(point.value) {
            let first = *start.get_or_insert(point.at);
            longest = longest.max(point.at - first);
        } else {
            start = None;
        }
    }
    longest
}

/// The first sample at or after `since` for which `holds` is true.
pub fn first_at_or_after(
    points: &[Point],
    since: f64,
    holds: impl Fn(f64) -> bool,
) -> Option<Point> {
    points
        .iter()
        .find(|p| p.at >= since && holds(p.value))
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(values: &[f64]) -> Vec<Point> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| Point {
                at: 100.0 + 15.0 * i as f64,
                value: *v,
            })
            .collect()
    }

    #[test]
    fn longest_run_counts_between_first_and_last_sample() {
        let s = series(&[2.0, 10.0, 10.0, 3.0, 10.0, 10.0, 10.0, 10.0]);
        assert_eq!(longest_run(&s, |v| v >= 10.0), 45.0);
        assert_eq!(longest_run(&s, |v| v > 50.0), 0.0);
        assert_eq!(longest_run(&[], |_| true), 0.0);
    }

    #[test]
    fn recovery_is_the_first_good_sample_after_the_mark() {
        let s = series(&[5000.0, 900.0, 4000.0, 2000.0, 800.0]);
        assert_eq!(
            first_at_or_after(&s, 120.0, |v| v < 1000.0).map(|p| p.at),
            Some(160.0)
        );
        assert_eq!(first_at_or_after(&s, 200.0, |v| v < 1000.0), None);
        assert_eq!(max(&s), Some(5000.0));
        assert_eq!(max(&[]), None);
    }
}
