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
        let samples = times.into_iter().enumerate().map(|(k, at)| {
            let counts: Vec<u64> = per_step.iter().map(|n| n * k as u64).collect();
            (at, counts)
        });
        self.histogram_samples(name, labels, bounds, samples)
    }

    /// A histogram given sample by sample: at each time, the observations counted so far in
    /// each bucket (non-cumulative across buckets, `+Inf` last; one more entry than `bounds`).
    /// Its series exist from the first time given, whatever the counts (a label set born
    /// late), and may drop (a counter reset).
    pub fn histogram_samples(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        bounds: &[f64],
        samples: impl IntoIterator<Item = (i64, Vec<u64>)>,
    ) -> &mut Self {
        let mut samples: Vec<(i64, Vec<u64>)> = samples.into_iter().collect();
        samples.sort_by_key(|(at, _)| *at);
        for (at, counts) in &samples {
            assert_eq!(
                counts.len(),
                bounds.len() + 1,
                "one count per bucket and +Inf at {at}"
            );
        }
        // An observation's value, for `_sum`: its bucket's bound (twice the last for +Inf).
        let value = |i: usize| {
            bounds
                .get(i)
                .copied()
                .unwrap_or(bounds[bounds.len() - 1] * 2.0)
        };
        let labels = owned(labels);
        let family = self.family(name, "histogram");
        for i in 0..=bounds.len() {
            let le = bounds.get(i).map_or("+Inf".to_string(), |b| b.to_string());
            let mut bucket_labels = labels.clone();
            bucket_labels.push(("le".into(), le));
            family.series.push(Series {
                name: format!("{name}_bucket"),
                labels: bucket_labels,
                samples: samples
                    .iter()
                    .map(|(at, counts)| (*at, counts[..=i].iter().sum::<u64>() as f64))
                    .collect(),
            });
        }
        family.series.push(Series {
            name: format!("{name}_count"),
            labels: labels.clone(),
            samples: samples
                .iter()
                .map(|(at, counts)| (*at, counts.iter().sum::<u64>() as f64))
                .collect(),
        });
        family.series.push(Series {
            name: format!("{name}_sum"),
            labels,
            samples: samples
                .iter()
                .map(|(at, counts)| {
                    let sum = counts
                        .iter()
                        .enumerate()
                        .map(|(i, n)| *n as f64 * value(i))
                        .sum();
                    (*at, sum)
                })
                .collect(),
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
