//! What breaks first: each step's per-service figures (p95, error ratio, CPU — read from
//! Prometheus by the caller) and the rule that names the first service to saturate, and at which
//! load. The search runs steps in any order (a bisection goes down as well as up), so services
//! are judged in load order against their own figures at the lowest load.
//!
//! A service saturates at a load when, compared with its lowest-load step, its p95 or mean
//! latency has at least doubled and grown by 10 ms or more (queueing: latency turning up with
//! load), or its p95 exceeds the run's p95 objective, or its server error ratio reaches 1 %, or it
//! uses 90 % of the CPU it may use. Callers include their callees' time, so when several services
//! saturate at the same load, those whose own outbound calls slowed down as much (they wait on a
//! dependency) come last, then the lower latency (mean, then p95) first: a gateway waiting on a
//! slow product service is slower than the product service it waits on. Latency alone cannot
//! separate them when a queue builds fast (each target is scraped at its own instant, and the
//! latency moves between the two scrapes); the outbound calls can.

use serde::{Deserialize, Serialize};

use super::StepResult;

/// One service during one step's hold.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceFigures {
    pub name: String,
    #[serde(default)]
    pub requests_per_second: Option<f64>,
    #[serde(default)]
    pub p95_ms: Option<f64>,
    /// Exact where p95 is interpolated within a histogram bucket.
    #[serde(default)]
    pub mean_ms: Option<f64>,
    /// Mean latency of its calls to its slowest dependency: what it spends waiting on it.
    #[serde(default)]
    pub outbound_mean_ms: Option<f64>,
    #[serde(default)]
    pub error_ratio: Option<f64>,
    /// CPU used, in cores (1.0 = one core busy all the time).
    #[serde(default)]
    pub cpu_cores: Option<f64>,
}

/// When a service counts as saturated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rules {
    /// p95 at least this many times its lowest-load p95 …
    pub latency_factor: f64,
    /// … and at least this much higher, in ms (so 1 ms → 2 ms is not saturation).
    pub latency_margin_ms: f64,
    /// A p95 above this (the run's p95 objective), in ms.
    pub p95_objective_ms: Option<f64>,
    /// A server error ratio at or above this.
    pub error_ratio: f64,
    /// The CPU a service may use, in cores, when known (its limit; on one machine, its cores).
    pub cpu_limit_cores: Option<f64>,
    /// The fraction of `cpu_limit_cores` that counts as saturated.
    pub cpu_fraction: f64,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            latency_factor: 2.0,
            latency_margin_ms: 10.0,
            p95_objective_ms: None,
            error_ratio: 0.01,
            cpu_limit_cores: None,
            cpu_fraction: 0.9,
        }
    }
}

/// A service found saturated: the lowest load at which it was, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Saturation {
    pub service: String,
    /// The load (users or iterations/s) of the step.
    pub load: f64,
    /// The step's number, in the order the steps ran.
    pub step: usize,
    /// Its p95 then, in ms.
    pub p95_ms: Option<f64>,
    /// Its mean latency then, in ms.
    #[serde(default)]
    pub mean_ms: Option<f64>,
    /// Its calls to other services slowed down at least half as much as it did: it was
    /// waiting on a dependency rather than saturated itself.
    #[serde(default)]
    pub waits_on_dependencies: bool,
    /// Each sign, in words (e.g. `p95 48.0 ms, 2.6× its 18.5 ms at the lowest load`).
    pub signs: Vec<String>,
}

/// Every service that saturated, the first first: by load, then (at one load) lowest p95.
pub fn saturated(steps: &[StepResult], rules: &Rules) -> Vec<Saturation> {
    let mut order: Vec<(usize, &StepResult)> = steps.iter().enumerate().collect();
    order.sort_by(|(_, a), (_, b)| a.load.total_cmp(&b.load));
    let mut found: Vec<Saturation> = Vec::new();
    let mut baselines: Vec<&ServiceFigures> = Vec::new();
    for (index, step) in order {
        for service in &step.services {
            if found.iter().any(|s| s.service == service.name) {
                continue;
            }
            let baseline = baselines.iter().find(|b| b.name == service.name).copied();
            if baseline.is_none() && (service.p95_ms.is_some() || service.mean_ms.is_some()) {
                baselines.push(service);
            }
            let signs = signs(service, baseline, rules);
            if !signs.is_empty() {
                found.push(Saturation {
                    service: service.name.clone(),
                    load: step.load,
                    step: index + 1,
                    p95_ms: service.p95_ms,
                    mean_ms: service.mean_ms,
                    waits_on_dependencies: waits(service, baseline),
                    signs,
                });
            }
        }
    }
    // At one load, a service waiting on its dependencies comes after those that do not; then
    // the lower latency (a caller includes its callee's time). The mean is compared before p95
    // because it is exact; p95s from coarse buckets are often equal.
    found.sort_by(|a, b| {
        let key = |s: &Saturation| {
            (
                s.mean_ms.unwrap_or(f64::INFINITY),
                s.p95_ms.unwrap_or(f64::INFINITY),
            )
        };
        a.load
            .total_cmp(&b.load)
            .then_with(|| a.waits_on_dependencies.cmp(&b.waits_on_dependencies))
            .then_with(|| key(a).0.total_cmp(&key(b).0))
            .then_with(|| key(a).1.total_cmp(&key(b).1))
    });
    found
}

/// Whether the service's outbound calls grew at least half as much as its own mean latency
/// since the lowest load: its time went into waiting.
fn waits(service: &ServiceFigures, baseline: Option<&ServiceFigures>) -> bool {
    let Some(baseline) = baseline else {
        return false;
    };
    let grew = |now: Option<f64>, then: Option<f64>| Some(now? - then?);
    match (
        grew(service.outbound_mean_ms, baseline.outbound_mean_ms),
        grew(service.mean_ms, baseline.mean_ms),
    ) {
        (Some(outbound), Some(own)) => own > 0.0 && outbound >= own / 2.0,
        _ => false,
    }
}

/// Why `service` counts as saturated, given its figures at the lowest load (`None` at that
/// load).
fn signs(
    service: &ServiceFigures,
    baseline: Option<&ServiceFigures>,
    rules: &Rules,
) -> Vec<String> {
    let mut signs = Vec::new();
    let grown = |what: &str, now: Option<f64>, then: Option<f64>| {
        let (now, then) = (now?, then?);
        (now >= then * rules.latency_factor && now - then >= rules.latency_margin_ms).then(|| {
            format!(
                "{what} {now:.1} ms, {:.1}× its {then:.1} ms at the lowest load",
                now / then.max(f64::MIN_POSITIVE)
            )
        })
    };
    if let Some(baseline) = baseline {
        signs.extend(grown("p95", service.p95_ms, baseline.p95_ms));
        signs.extend(grown("mean", service.mean_ms, baseline.mean_ms));
    }
    if let (Some(p95), Some(objective)) = (service.p95_ms, rules.p95_objective_ms)
        && p95 > objective
    {
        signs.push(format!(
            "p95 {p95:.1} ms above the {objective} ms objective"
        ));
    }
    if let Some(ratio) = service.error_ratio
        && ratio >= rules.error_ratio
    {
        signs.push(format!("{:.1} % server errors", ratio * 100.0));
    }
    if let (Some(cores), Some(limit)) = (service.cpu_cores, rules.cpu_limit_cores)
        && cores >= limit * rules.cpu_fraction
    {
        signs.push(format!("CPU {cores:.2} of {limit} cores"));
    }
    signs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(name: &str, p95: f64) -> ServiceFigures {
        ServiceFigures {
            name: name.into(),
            p95_ms: Some(p95),
            mean_ms: Some(p95 / 2.0),
            outbound_mean_ms: None,
            error_ratio: Some(0.0),
            cpu_cores: Some(0.1),
            requests_per_second: Some(10.0),
        }
    }

    fn step(load: f64, services: Vec<ServiceFigures>) -> StepResult {
        StepResult {
            load,
            services,
            ..StepResult::default()
        }
    }

    #[test]
    fn the_callee_is_named_before_the_callers_that_wait_on_it() {
        let steps = vec![
            step(
                10.0,
                vec![
                    service("gateway", 22.0),
                    service("product", 20.0),
                    service("cart", 3.0),
                ],
            ),
            step(
                20.0,
                vec![
                    service("gateway", 30.0),
                    service("product", 28.0),
                    service("cart", 3.2),
                ],
            ),
            step(
                40.0,
                vec![
                    service("gateway", 95.0),
                    service("product", 90.0),
                    service("cart", 3.5),
                ],
            ),
        ];
        let found = saturated(&steps, &Rules::default());
        let names: Vec<&str> = found.iter().map(|s| s.service.as_str()).collect();
        assert_eq!(names, ["product", "gateway"], "{found:#?}");
        assert_eq!(found[0].load, 40.0);
        assert_eq!(found[0].step, 3);
        assert!(found[0].signs[0].contains("4.5×"), "{:?}", found[0].signs);
    }

    #[test]
    fn a_caller_whose_calls_slowed_down_comes_after_its_callee_even_when_faster() {
        let figures = |name: &str, mean: f64, outbound: Option<f64>| ServiceFigures {
            name: name.into(),
            mean_ms: Some(mean),
            outbound_mean_ms: outbound,
            ..ServiceFigures::default()
        };
        // Scraped at different instants of a fast-growing queue: the gateway reads lower.
        let steps = vec![
            step(
                10.0,
                vec![
                    figures("gateway", 23.7, Some(22.0)),
                    figures("product", 22.0, None),
                ],
            ),
            step(
                60.0,
                vec![
                    figures("gateway", 570.0, Some(560.0)),
                    figures("product", 684.0, None),
                ],
            ),
        ];
        let found = saturated(&steps, &Rules::default());
        let names: Vec<&str> = found.iter().map(|s| s.service.as_str()).collect();
        assert_eq!(names, ["product", "gateway"], "{found:#?}");
        assert!(found[1].waits_on_dependencies && !found[0].waits_on_dependencies);
    }

    #[test]
    fn equal_p95s_from_one_bucket_are_told_apart_by_the_mean() {
        let figures = |name: &str, p95: f64, mean: f64| ServiceFigures {
            name: name.into(),
            p95_ms: Some(p95),
            mean_ms: Some(mean),
            ..ServiceFigures::default()
        };
        let steps = vec![
            step(
                10.0,
                vec![
                    figures("gateway", 24.2, 21.0),
                    figures("product", 24.2, 20.0),
                ],
            ),
            step(
                40.0,
                vec![
                    figures("gateway", 24.2, 61.0),
                    figures("product", 24.2, 60.0),
                ],
            ),
        ];
        let found = saturated(&steps, &Rules::default());
        let names: Vec<&str> = found.iter().map(|s| s.service.as_str()).collect();
        assert_eq!(names, ["product", "gateway"], "{found:#?}");
        assert_eq!(
            found[0].signs,
            ["mean 60.0 ms, 3.0× its 20.0 ms at the lowest load"]
        );
    }

    #[test]
    fn loads_are_judged_in_order_whatever_order_the_steps_ran_in() {
        // A bisection: 10, 40 (broke), then 20.
        let steps = vec![
            step(10.0, vec![service("order", 10.0)]),
            step(40.0, vec![service("order", 80.0)]),
            step(20.0, vec![service("order", 40.0)]),
        ];
        let found = saturated(&steps, &Rules::default());
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].load, found[0].step), (20.0, 3));
    }

    #[test]
    fn small_absolute_growth_errors_and_cpu() {
        let mut busy = service("auth", 1.0);
        busy.cpu_cores = Some(1.85);
        let mut failing = service("payment", 4.0);
        failing.error_ratio = Some(0.02);
        let steps = vec![
            step(
                1.0,
                vec![
                    service("fast", 1.0),
                    service("auth", 1.0),
                    service("payment", 4.0),
                ],
            ),
            step(2.0, vec![service("fast", 3.0), busy, failing]),
        ];
        let rules = Rules {
            cpu_limit_cores: Some(2.0),
            ..Rules::default()
        };
        let found = saturated(&steps, &rules);
        let names: Vec<&str> = found.iter().map(|s| s.service.as_str()).collect();
        assert_eq!(
            names,
            ["auth", "payment"],
            "1 ms → 3 ms is no saturation: {found:#?}"
        );
        assert_eq!(found[0].signs, ["CPU 1.85 of 2 cores"]);
        assert_eq!(found[1].signs, ["2.0 % server errors"]);
        assert!(
            saturated(&steps, &Rules::default())
                .iter()
                .all(|s| s.service != "auth")
        );
    }

    #[test]
    fn above_the_objective_at_the_lowest_load_is_saturated_there() {
        let steps = vec![step(5.0, vec![service("recommendation", 700.0)])];
        let rules = Rules {
            p95_objective_ms: Some(500.0),
            ..Rules::default()
        };
        let found = saturated(&steps, &rules);
        assert_eq!(found[0].service, "recommendation");
        assert_eq!(found[0].load, 5.0);
    }
}
