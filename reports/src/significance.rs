//! Is the difference between two runs more than noise? A bootstrap of the difference of a
//! latency quantile, or of an error ratio, drawn from the runs' own recorded data.
//!
//! Comparing two p95s as two numbers fails releases on noise and hides real shifts in it. Each
//! run's HDR histogram is resampled with the Poisson bootstrap — every recorded bin's count
//! redrawn from Poisson(count), the large-sample equivalent of resampling the requests with
//! replacement, at a cost per replicate proportional to the bins rather than the requests —
//! the quantile is recomputed in each replicate, and the distribution of `new − baseline` gives
//! a one-sided p-value for "the new run is worse" and a confidence interval of the difference.
//! Quantiles are judged directly rather than through a rank test (Mann–Whitney) because a rank
//! test barely moves when only the tail gets slower, which is what a p99 gate exists to catch.
//! The seed is fixed: the same two reports always get the same verdict.

use rand::SeedableRng as _;
use rand::rngs::StdRng;
use rand_distr::{Binomial, Distribution as _, Poisson};

use crate::histogram::LatencyHistogram;

/// Bootstrap replicates per comparison: the smallest p-value is 1/1001, well below any
/// sensible `--alpha`, and the cost stays a fraction of a second for a long run's histogram.
pub const REPLICATES: usize = 1000;

/// Any fixed value works; fixed so that a verdict can be reproduced.
const SEED: u64 = 0x5EED_D1FF;

/// How sure the bootstrap is that the new run is worse, and by how much.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Shift {
    /// One-sided p-value of "the new run is worse": the share of replicates in which it was not
    /// (with the usual +1 so it is never 0).
    pub p_value: f64,
    /// The confidence interval of `new − baseline`, in the figure's own unit, at `confidence`.
    pub low: f64,
    pub high: f64,
    /// Two-sided confidence of the interval (`1 − alpha`).
    pub confidence: f64,
}

/// The bootstrap of `quantile` (0..=1) of `new` minus that of `baseline`, in milliseconds.
/// `None` when either histogram is empty.
pub fn quantile_shift(
    baseline: &LatencyHistogram,
    new: &LatencyHistogram,
    quantile: f64,
    alpha: f64,
) -> Option<Shift> {
    let (before, now) = (Bins::of(baseline)?, Bins::of(new)?);
    let mut rng = StdRng::seed_from_u64(SEED);
    let differences = (0..REPLICATES)
        .filter_map(|_| {
            let before = before.resampled_quantile_ms(quantile, &mut rng)?;
            let now = now.resampled_quantile_ms(quantile, &mut rng)?;
            Some(now - before)
        })
        .collect();
    summarize(differences, alpha)
}

/// The bootstrap of the error ratio of `new` minus that of `baseline`, each given as
/// `(errors, requests)`. `None` when either run has no requests.
pub fn ratio_shift(baseline: (u64, u64), new: (u64, u64), alpha: f64) -> Option<Shift> {
    let (before, now) = (Ratio::of(baseline)?, Ratio::of(new)?);
    let mut rng = StdRng::seed_from_u64(SEED);
    let differences = (0..REPLICATES)
        .filter_map(|_| Some(now.resampled(&mut rng)? - before.resampled(&mut rng)?))
        .collect();
    summarize(differences, alpha)
}

fn summarize(mut differences: Vec<f64>, alpha: f64) -> Option<Shift> {
    // Replicates where a side drew no request at all carry no information; with fewer than half
    // left the data is too thin to judge.
    if differences.len() < REPLICATES / 2 {
        return None;
    }
    differences.sort_by(f64::total_cmp);
    let not_worse = differences.iter().filter(|d| **d <= 0.0).count();
    let n = differences.len();
    let at = |q: f64| differences[((q * n as f64).floor() as usize).min(n - 1)];
    let alpha = alpha.clamp(0.0, 1.0);
    Some(Shift {
        p_value: (not_worse + 1) as f64 / (n + 1) as f64,
        low: at(alpha / 2.0),
        high: at(1.0 - alpha / 2.0),
        confidence: 1.0 - alpha,
    })
}

/// A histogram's recorded bins, grouped in blocks of about √bins so a replicate costs
/// O(√bins) draws instead of one per bin: the block totals are drawn from Poisson(block count)
/// — a sum of independent Poisson draws is Poisson of the sum — and only the block holding the
/// quantile is split into its bins, multinomially, which is exactly how independent Poisson
/// draws are distributed once their sum is known.
struct Bins {
    blocks: Vec<Block>,
}

struct Block {
    law: Poisson<f64>,
    /// The block's bins: value in ms and recorded count.
    bins: Vec<(f64, u64)>,
    count: u64,
}

impl Bins {
    fn of(histogram: &LatencyHistogram) -> Option<Self> {
        let bins: Vec<(f64, u64)> = histogram
            .inner()
            .iter_recorded()
            .map(|bin| {
                (
                    bin.value_iterated_to() as f64 / 1000.0,
                    bin.count_at_value(),
                )
            })
            .collect();
        let size = (bins.len() as f64).sqrt().ceil().max(1.0) as usize;
        let blocks = bins
            .chunks(size)
            .map(|bins| {
                let count = bins.iter().map(|(_, count)| count).sum::<u64>();
                // `Poisson::new` refuses only non-positive or non-finite means; every block
                // holds recorded bins, so its count is at least one.
                Poisson::new(count as f64).ok().map(|law| Block {
                    law,
                    bins: bins.to_vec(),
                    count,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        (!blocks.is_empty()).then_some(Self { blocks })
    }

    /// The quantile of one resampled copy, chosen the way `hdrhistogram` does: the first value
    /// whose cumulative count reaches `ceil(quantile × total)`.
    fn resampled_quantile_ms(&self, quantile: f64, rng: &mut StdRng) -> Option<f64> {
        let totals: Vec<u64> = self
            .blocks
            .iter()
            .map(|block| block.law.sample(rng) as u64)
            .collect();
        let total: u64 = totals.iter().sum();
        if total == 0 {
            return None;
        }
        let wanted = ((quantile * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (block, drawn) in self.blocks.iter().zip(totals) {
            if seen + drawn < wanted {
                seen += drawn;
                continue;
            }
            // Split the block's `drawn` among its bins: each bin takes a binomial share of
            // what the bins after it have not.
            let (mut left, mut weight_left) = (drawn, block.count);
            for (value, count) in &block.bins {
                let share = if weight_left == *count {
                    left
                } else {
                    Binomial::new(left, *count as f64 / weight_left as f64)
                        .map_or(0, |law| law.sample(rng))
                };
                seen += share;
                if seen >= wanted {
                    return Some(*value);
                }
                left -= share;
                weight_left -= count;
            }
        }
        self.blocks.last()?.bins.last().map(|(value, _)| *value)
    }
}

/// Errors and successes of one run, each resampled from its own Poisson law.
struct Ratio {
    errors: Option<Poisson<f64>>,
    successes: Option<Poisson<f64>>,
}

impl Ratio {
    fn of((errors, requests): (u64, u64)) -> Option<Self> {
        if requests == 0 {
            return None;
        }
        let law = |count: u64| Poisson::new(count as f64).ok();
        Some(Self {
            errors: law(errors),
            successes: law(requests.saturating_sub(errors)),
        })
    }

    fn resampled(&self, rng: &mut StdRng) -> Option<f64> {
        let draw =
            |law: &Option<Poisson<f64>>, rng: &mut StdRng| law.map_or(0.0, |l| l.sample(rng));
        let errors = draw(&self.errors, rng);
        let total = errors + draw(&self.successes, rng);
        (total >= 1.0).then(|| errors / total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_distr::LogNormal;

    /// A histogram of `n` latencies drawn from a log-normal law around `median_ms`, scaled.
    fn drawn(n: usize, median_ms: f64, scale: f64, seed: u64) -> LatencyHistogram {
        let law = LogNormal::new(median_ms.ln(), 0.5).unwrap();
        let mut rng = StdRng::seed_from_u64(seed);
        let mut histogram = LatencyHistogram::fine();
        for _ in 0..n {
            let ms: f64 = law.sample(&mut rng) * scale;
            histogram.record_micros((ms * 1000.0) as u64);
        }
        histogram
    }

    #[test]
    fn runs_from_one_distribution_are_not_called_slower() {
        // 100 seeded pairs of runs from the same law: at α = 0.01 the p95 may be flagged in
        // about 1 % of them; the issue asks for no more than 5 %.
        let flagged = (0..100)
            .filter(|trial| {
                let base = drawn(2000, 20.0, 1.0, 2 * trial);
                let new = drawn(2000, 20.0, 1.0, 2 * trial + 1);
                quantile_shift(&base, &new, 0.95, 0.01).unwrap().p_value < 0.01
            })
            .count();
        assert!(
            flagged <= 5,
            "{flagged} of 100 same-distribution pairs flagged"
        );
    }

    #[test]
    fn a_five_percent_shift_with_enough_samples_is_detected() {
        let detected = (0..20)
            .filter(|trial| {
                let base = drawn(20_000, 20.0, 1.0, 1000 + 2 * trial);
                let new = drawn(20_000, 20.0, 1.05, 1001 + 2 * trial);
                let shift = quantile_shift(&base, &new, 0.95, 0.01).unwrap();
                shift.p_value < 0.01 && shift.low > 0.0
            })
            .count();
        assert!(
            detected >= 19,
            "only {detected} of 20 shifted pairs detected"
        );
    }

    #[test]
    fn a_slower_tail_alone_is_detected_at_p99() {
        // 2 % of requests three times slower: the median does not move, p99 does.
        let base = drawn(20_000, 20.0, 1.0, 7);
        let mut new = drawn(19_600, 20.0, 1.0, 8);
        new.merge(&drawn(400, 60.0, 1.0, 9)).unwrap();
        let shift = quantile_shift(&base, &new, 0.99, 0.01).unwrap();
        assert!(shift.p_value < 0.01, "{shift:?}");
        let median = quantile_shift(&base, &new, 0.50, 0.01).unwrap();
        assert!(median.low < 0.0 || median.p_value > 0.001, "{median:?}");
    }

    #[test]
    fn the_interval_contains_the_observed_difference() {
        let base = drawn(5000, 20.0, 1.0, 3);
        let new = drawn(5000, 20.0, 1.10, 4);
        let observed = new.quantile_ms(0.95).unwrap() - base.quantile_ms(0.95).unwrap();
        let shift = quantile_shift(&base, &new, 0.95, 0.01).unwrap();
        assert!(
            shift.low <= observed && observed <= shift.high,
            "{shift:?} vs {observed}"
        );
        assert_eq!(shift.confidence, 0.99);
        // Reproducible: a fixed seed.
        assert_eq!(quantile_shift(&base, &new, 0.95, 0.01), Some(shift));
    }

    #[test]
    fn error_ratios_are_judged_by_their_counts() {
        // One error against none is noise; fifty are not.
        assert!(ratio_shift((0, 1000), (1, 1000), 0.01).unwrap().p_value > 0.01);
        assert!(ratio_shift((0, 1000), (50, 1000), 0.01).unwrap().p_value < 0.01);
        // 1 % → 1.2 % over 100k requests each is real; over 1,000 it is not.
        assert!(
            ratio_shift((1000, 100_000), (1200, 100_000), 0.01)
                .unwrap()
                .p_value
                < 0.01
        );
        assert!(ratio_shift((10, 1000), (12, 1000), 0.01).unwrap().p_value > 0.01);
        assert_eq!(ratio_shift((0, 0), (1, 10), 0.01), None);
    }

    #[test]
    fn empty_histograms_cannot_be_judged() {
        let empty = LatencyHistogram::fine();
        let some = drawn(10, 5.0, 1.0, 1);
        assert_eq!(quantile_shift(&empty, &some, 0.95, 0.01), None);
        assert_eq!(quantile_shift(&some, &empty, 0.95, 0.01), None);
    }
}
