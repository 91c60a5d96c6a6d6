//! Writing OpenMetrics text for `promtool tsdb create-blocks-from openmetrics`.
//!
//! promtool is strict in ways that fail silently: timestamps must be in seconds, samples of a
//! series in time order, the lines of a metric family together, and the file must end with
//! `# EOF`. This writer keeps all of that true by construction.

use std::fmt::Write as _;

/// A set of metric families with their samples.
#[derive(Debug, Default)]
pub struct OpenMetrics {
    families: Vec<Family>,
}

#[derive(Debug)]
struct Family {
    name: String,
    kind: &'static str,
    /// Series in the order they are written.
    series: Vec<Series>,
}

#[derive(Debug)]
struct Series {
    /// The sample name, e.g. `x_bucket` in family `x`.
    name: String,
    labels: Vec<(String, String)>,
    /// `(unix seconds, value)` in time order.
    samples: Vec<(i64, f64)>,
}

impl OpenMetrics {
    pub fn new() -> OpenMetrics {
        OpenMetrics::default()
    }

    fn family(&mut self, name: &str, kind: &'static str) -> &mut Family {
        if let Some(i) = self.families.iter().position(|f| f.name == name) {
            assert_eq!(self.families[i].kind, kind, "family {name} has one type");
            return &mut self.families[i];
        }
        self.families.push(Family {
            name: name.to_string(),
            kind,
            series: Vec::new(),
        });
        self.families.last_mut().expect("just pushed")
    }

    /// A gauge series: `(unix seconds, value)` samples.
    pub fn gauge(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        samples: impl IntoIterator<Item = (i64, f64)>,
    ) -> &mut Self {
        let samples = sorted(samples);
        self.family(name, "gauge").series.push(Series {
            name: name.to_string(),
            labels: owned(labels),
            samples,
        });
        self
    }

    /// A latency histogram that grows linearly: at each of `times`, `per_step[i]` more
    /// observations land in bucket `i` (non-cumulative; `per_step` has one more entry than
    /// `bounds`, for `+Inf`). Counts start at 0 at the first time.
    pub fn histogram(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        bounds: &[f64],
        per_step: &[u64],
        times: impl IntoIterator<Item = i64>,
    ) -> &mut Self {
        assert_eq!(
            per_step.len(),
            bounds.len() + 1,
            "one increment per bucket and +Inf"
        );
        let times: Vec<i64> = times.into_iter().collect();
        let mut cumulative = 0;
        let labels = owned(labels);
        let family = self.family(name, "histogram");
        for (i, increment) in per_step.iter().enumerate() {
            cumulative += increment;
            let le = bounds.get(i).map_or("+Inf".to_string(), |b| b.to_string());
            let mut bucket_labels = labels.clone();
            bucket_labels.push(("le".into(), le));
            let samples = steps(&times, cumulative as f64);
            family.series.push(Series {
                name: format!("{name}_bucket"),
                labels: bucket_labels,
                samples,
            });
        }
        let sum_per_step: f64 = per_step
            .iter()
            .enumerate()
            .map(|(i, n)| {
                *n as f64
                    * bounds
                        .get(i)
                        .copied()
                        .unwrap_or(bounds[bounds.len() - 1] * 2.0)
            })
            .sum();
        family.series.push(Series {
            name: format!("{name}_count"),
            labels: labels.clone(),
            samples: steps(&times, cumulative as f64),
        });
        family.series.push(Series {
            name: format!("{name}_sum"),
            labels,
            samples: steps(&times, sum_per_step),
        });
        self
    }

    /// The file text, ending with `# EOF`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for family in &self.families {
            let _ = writeln!(out, "# TYPE {} {}", family.name, family.kind);
            for series in &family.series {
                let labels: Vec<String> = series
                    .labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                    .collect();
                for (at, value) in &series.samples {
                    let name = &series.name;
                    let _ = writeln!(out, "{name}{{{}}} {value} {at}", labels.join(","));
                }
            }
        }
        out.push_str("# EOF\n");
        out
    }
}

/// `k * per_step` at the k-th time.
fn steps(times: &[i64], per_step: f64) -> Vec<(i64, f64)> {
    times
        .iter()
        .enumerate()
        .map(|(k, at)| (*at, k as f64 * per_step))
        .collect()
}

fn sorted(samples: impl IntoIterator<Item = (i64, f64)>) -> Vec<(i64, f64)> {
    let mut samples: Vec<(i64, f64)> = samples.into_iter().collect();
    samples.sort_by_key(|(at, _)| *at);
    samples
}

fn owned(labels: &[(&str, &str)]) -> Vec<(String, String)> {
    labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_stay_together_and_the_file_ends_with_eof() {
        let mut om = OpenMetrics::new();
        om.gauge("lag", &[("g", "a")], [(30, 2.0), (15, 1.0)]);
        om.histogram("h", &[("s", "x")], &[0.1], &[3, 1], [0, 15]);
        om.gauge("lag", &[("g", "b")], [(15, 5.0)]);
        let text = om.render();
        let expected = "# TYPE lag gauge\nlag{g=\"a\"} 1 15\nlag{g=\"a\"} 2 30\nlag{g=\"b\"} 5 15\n\
# TYPE h histogram\nh_bucket{s=\"x\",le=\"0.1\"} 0 0\nh_bucket{s=\"x\",le=\"0.1\"} 3 15\n\
h_bucket{s=\"x\",le=\"+Inf\"} 0 0\nh_bucket{s=\"x\",le=\"+Inf\"} 4 15\nh_count{s=\"x\"} 0 0\n\
h_count{s=\"x\"} 4 15\nh_sum{s=\"x\"} 0 0\nh_sum{s=\"x\"} 0.5 15\n# EOF\n";
        assert_eq!(text, expected);
    }
}
