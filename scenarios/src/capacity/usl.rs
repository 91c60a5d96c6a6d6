//! The Universal Scalability Law fitted to the steps of a capacity search, to answer what the
//! measured points cannot: where throughput peaks, and what the curve looks like beyond them.
//!
//! X(N) = λN / (1 + σ(N−1) + κN(N−1)) — λ the throughput of one unit of concurrency, σ the
//! contention (serialized share of the work), κ the coherency cost (crosstalk growing with the
//! square of the concurrency). Concurrency is not the users configured but the work actually
//! in the system, N = X·R by Little's law, from each step's throughput and mean latency, so
//! think time and an open model's arrival rate need no special case. The fit is a
//! Levenberg–Marquardt least squares (the `levenberg-marquardt` crate); the confidence intervals
//! come from the fit's Jacobian (covariance s²(JᵀJ)⁻¹, Student's t at n − 3 degrees of freedom).

use levenberg_marquardt::{LeastSquaresProblem, LevenbergMarquardt};
use nalgebra::{Dyn, Matrix3, OMatrix, OVector, Owned, U3, Vector3};
use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF as _, StudentsT};

/// One measured step: concurrency (N = X·R) and throughput X, in requests per second.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub concurrency: f64,
    pub throughput: f64,
}

/// A fitted parameter with its 95 % confidence interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub value: f64,
    pub low: f64,
    pub high: f64,
}

/// The fitted law and what it predicts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UslFit {
    pub lambda: Estimate,
    pub sigma: Estimate,
    pub kappa: Estimate,
    /// Share of the throughput's variance the law explains.
    pub r_squared: f64,
    /// The concurrency at which throughput peaks, √((1−σ)/κ); `None` without coherency cost
    /// (κ ≤ 0) or when contention alone already caps it (σ ≥ 1).
    pub peak_concurrency: Option<f64>,
    /// The throughput at that concurrency.
    pub peak_throughput: Option<f64>,
    /// How many steps the fit used.
    pub points: usize,
}

impl UslFit {
    /// The law's throughput at concurrency `n`.
    pub fn throughput(&self, n: f64) -> f64 {
        usl(self.lambda.value, self.sigma.value, self.kappa.value, n)
    }
}

/// Why no law could be fitted.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum FitError {
    #[error("the model needs at least 4 steps with traffic, there were {0}")]
    TooFewPoints(usize),
    #[error("the fit did not converge ({0})")]
    NoConvergence(String),
}

fn usl(lambda: f64, sigma: f64, kappa: f64, n: f64) -> f64 {
    lambda * n / (1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0))
}

/// Fits the law to `points` (steps without throughput or latency are the caller's to leave out).
pub fn fit(points: &[Point]) -> Result<UslFit, FitError> {
    let points: Vec<Point> = points
        .iter()
        .copied()
        .filter(|p| p.concurrency > 0.0 && p.throughput > 0.0)
        .collect();
    if points.len() < 4 {
        return Err(FitError::TooFewPoints(points.len()));
    }
    // λ is about the throughput per unit of concurrency where concurrency is lowest; contention
    // and coherency start small. Several starts guard against a poor local minimum.
    let lowest = points
        .iter()
        .min_by(|a, b| a.concurrency.total_cmp(&b.concurrency))
        .copied()
        .unwrap_or(points[0]);
    let lambda0 = lowest.throughput / lowest.concurrency;
    let mut best: Option<(f64, Problem)> = None;
    let mut last_failure = String::new();
    for sigma0 in [0.01, 0.1, 0.3] {
        for kappa0 in [1e-5, 1e-3, 1e-2] {
            let start = Problem {
                points: points.clone(),
                params: Vector3::new(lambda0, sigma0, kappa0),
            };
            let (solved, report) = LevenbergMarquardt::new().minimize(start);
            if !report.termination.was_successful() {
                last_failure = format!("{:?}", report.termination);
                continue;
            }
            let cost = solved.rss();
            if cost.is_finite() && best.as_ref().is_none_or(|(b, _)| cost < *b) {
                best = Some((cost, solved));
            }
        }
    }
    let (rss, solved) = best.ok_or(FitError::NoConvergence(last_failure))?;
    Ok(solved.summarize(rss))
}

/// The least-squares problem: residuals X_model(N_i) − X_i over the three parameters.
#[derive(Clone)]
struct Problem {
    points: Vec<Point>,
    params: Vector3<f64>,
}

impl Problem {
    fn rss(&self) -> f64 {
        self.residuals().map_or(f64::INFINITY, |r| r.norm_squared())
    }

    fn summarize(&self, rss: f64) -> UslFit {
        let (lambda, sigma, kappa) = (self.params[0], self.params[1], self.params[2]);
        let n = self.points.len();
        let dof = (n - 3) as f64;
        let mean = self.points.iter().map(|p| p.throughput).sum::<f64>() / n as f64;
        let total: f64 = self
            .points
            .iter()
            .map(|p| (p.throughput - mean).powi(2))
            .sum();
        let r_squared = if total > 0.0 { 1.0 - rss / total } else { 0.0 };
        // Half-widths from the covariance s²(JᵀJ)⁻¹; no interval when it is singular.
        let half_widths = self
            .jacobian()
            .and_then(|j| {
                let jtj: Matrix3<f64> = j.transpose() * &j;
                jtj.try_inverse()
            })
            .map(|inverse| {
                let t = StudentsT::new(0.0, 1.0, dof)
                    .map(|t| t.inverse_cdf(0.975))
                    .unwrap_or(f64::NAN);
                let s2 = rss / dof;
                Vector3::from_fn(|i, _| t * (s2 * inverse[(i, i)]).max(0.0).sqrt())
            })
            .unwrap_or_else(|| Vector3::repeat(f64::NAN));
        let estimate = |i: usize| Estimate {
            value: self.params[i],
            low: self.params[i] - half_widths[i],
            high: self.params[i] + half_widths[i],
        };
        let peak_concurrency = (kappa > 0.0 && sigma < 1.0).then(|| ((1.0 - sigma) / kappa).sqrt());
        UslFit {
            lambda: estimate(0),
            sigma: estimate(1),
            kappa: estimate(2),
            r_squared,
            peak_concurrency,
            peak_throughput: peak_concurrency.map(|n| usl(lambda, sigma, kappa, n)),
            points: n,
        }
    }
}

impl LeastSquaresProblem<f64, Dyn, U3> for Problem {
    type ResidualStorage = Owned<f64, Dyn>;
    type JacobianStorage = Owned<f64, Dyn, U3>;
    type ParameterStorage = Owned<f64, U3>;

    fn set_params(&mut self, params: &Vector3<f64>) {
        self.params = *params;
    }

    fn params(&self) -> Vector3<f64> {
        self.params
    }

    fn residuals(&self) -> Option<OVector<f64, Dyn>> {
        let (lambda, sigma, kappa) = (self.params[0], self.params[1], self.params[2]);
        Some(OVector::<f64, Dyn>::from_iterator(
            self.points.len(),
            self.points
                .iter()
                .map(|p| usl(lambda, sigma, kappa, p.concurrency) - p.throughput),
        ))
    }

    fn jacobian(&self) -> Option<OMatrix<f64, Dyn, U3>> {
        let (lambda, sigma, kappa) = (self.params[0], self.params[1], self.params[2]);
        let mut jacobian = OMatrix::<f64, Dyn, U3>::zeros(self.points.len());
        for (row, p) in self.points.iter().enumerate() {
            let n = p.concurrency;
            let denominator = 1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0);
            let squared = denominator * denominator;
            jacobian[(row, 0)] = n / denominator;
            jacobian[(row, 1)] = -lambda * n * (n - 1.0) / squared;
            jacobian[(row, 2)] = -lambda * n * n * (n - 1.0) / squared;
        }
        Some(jacobian)
    }
}

/// The knee of a rising curve (latency against load), by Kneedle: scale both axes to 0..1 and
/// take the point farthest below the straight line from the first point to the last. `None` with
/// fewer than three points or a curve without a bend.
pub fn knee(points: &[(f64, f64)]) -> Option<f64> {
    if points.len() < 3 {
        return None;
    }
    let mut sorted = points.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (x0, x1) = (sorted.first()?.0, sorted.last()?.0);
    let (y0, y1) = sorted
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p.1), hi.max(p.1))
        });
    if x1 <= x0 || y1 <= y0 {
        return None;
    }
    let (distance, x) = sorted
        .iter()
        .map(|(x, y)| {
            let (xn, yn) = ((x - x0) / (x1 - x0), (y - y0) / (y1 - y0));
            (xn - yn, *x)
        })
        .max_by(|a, b| a.0.total_cmp(&b.0))?;
    // A straight or concave curve has nothing below its chord worth calling a knee.
    (distance > 0.1).then_some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(lambda: f64, sigma: f64, kappa: f64, ns: &[f64], noise: &[f64]) -> Vec<Point> {
        ns.iter()
            .zip(noise.iter().cycle())
            .map(|(n, e)| Point {
                concurrency: *n,
                throughput: usl(lambda, sigma, kappa, *n) * (1.0 + e),
            })
            .collect()
    }

    #[test]
    fn exact_points_give_back_the_law() {
        let ns = [1.0, 2.0, 4.0, 8.0, 16.0, 24.0, 32.0, 48.0];
        let fit = fit(&points(100.0, 0.05, 0.002, &ns, &[0.0])).unwrap();
        assert!((fit.lambda.value - 100.0).abs() < 0.01, "{fit:?}");
        assert!((fit.sigma.value - 0.05).abs() < 1e-5, "{fit:?}");
        assert!((fit.kappa.value - 0.002).abs() < 1e-6, "{fit:?}");
        assert!(fit.r_squared > 0.9999);
        let peak = (0.95_f64 / 0.002).sqrt();
        assert!((fit.peak_concurrency.unwrap() - peak).abs() < 0.01);
        assert!((fit.peak_throughput.unwrap() - usl(100.0, 0.05, 0.002, peak)).abs() < 0.01);
    }

    #[test]
    fn noisy_points_stay_close_and_their_intervals_cover_the_truth() {
        let ns = [1.0, 2.0, 4.0, 8.0, 12.0, 16.0, 24.0, 32.0, 48.0];
        let noise = [
            0.01, -0.015, 0.005, -0.01, 0.012, -0.004, 0.008, -0.012, 0.01,
        ];
        let fit = fit(&points(100.0, 0.05, 0.002, &ns, &noise)).unwrap();
        for (name, estimate, truth) in [
            ("sigma", fit.sigma, 0.05),
            ("kappa", fit.kappa, 0.002),
            ("lambda", fit.lambda, 100.0),
        ] {
            assert!(
                (estimate.value - truth).abs() / truth < 0.15,
                "{name}: {estimate:?}"
            );
            assert!(
                estimate.low <= truth && truth <= estimate.high,
                "{name}: {estimate:?} does not cover {truth}"
            );
        }
        assert!(fit.r_squared > 0.98, "{fit:?}");
    }

    #[test]
    fn linear_scaling_has_no_peak() {
        let ns = [1.0, 2.0, 4.0, 8.0, 16.0];
        let fit = fit(&points(50.0, 0.0, 0.0, &ns, &[0.0])).unwrap();
        assert!(fit.kappa.value.abs() < 1e-6, "{fit:?}");
        assert!(fit.sigma.value.abs() < 1e-6, "{fit:?}");
    }

    #[test]
    fn too_few_points_are_refused() {
        let ns = [1.0, 2.0, 4.0];
        assert_eq!(
            fit(&points(50.0, 0.1, 0.01, &ns, &[0.0])),
            Err(FitError::TooFewPoints(3))
        );
    }

    #[test]
    fn the_knee_is_where_latency_turns_up() {
        let curve = [
            (10.0, 20.0),
            (20.0, 21.0),
            (30.0, 22.0),
            (40.0, 24.0),
            (50.0, 40.0),
            (60.0, 120.0),
        ];
        // Scaled, the curve is farthest below its chord at 50 (0.8 − 0.2), just past 40
        // (0.6 − 0.04): the last load before latency runs away.
        assert_eq!(knee(&curve), Some(50.0));
        let straight = [(1.0, 1.0), (2.0, 2.0), (3.0, 3.0), (4.0, 4.0)];
        assert_eq!(knee(&straight), None);
        assert_eq!(knee(&curve[..2]), None);
    }
}
