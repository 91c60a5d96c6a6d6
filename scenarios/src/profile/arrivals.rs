//! When each iteration of an open-model run is due.
//!
//! The rate ramps linearly within each stage (from the previous stage's target, or the start
//! rate), so the number of iterations due by time `t` is the integral Λ(t) of the rate — a
//! piecewise quadratic. Iteration `n` (0-based) is due at the moment Λ reaches `n`: the first
//! at time zero, like k6. Inverting Λ exactly (rather than stepping a clock) keeps the
//! schedule independent of how late the generator runs, which is the whole point of an open
//! model.

use std::time::Duration;

use super::RateStage;

/// The intended start times of an open-model run's iterations.
#[derive(Clone, Debug, PartialEq)]
pub struct ArrivalSchedule {
    /// Each stage as (start time s, duration s, rate at start, rate at end).
    segments: Vec<Segment>,
    /// Total length in seconds.
    total_s: f64,
    /// How many iterations are due before the end.
    count: u64,
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Segment {
    start_s: f64,
    duration_s: f64,
    from_rate: f64,
    to_rate: f64,
    /// Iterations due before this segment starts (Λ at its start).
    due_before: f64,
}

impl Segment {
    /// Iterations due within the first `tau` seconds of the segment.
    fn due_within(&self, tau: f64) -> f64 {
        let slope = (self.to_rate - self.from_rate) / self.duration_s;
        self.from_rate * tau + slope * tau * tau / 2.0
    }

    /// Seconds into the segment at which `due` more iterations have become due.
    fn time_for(&self, due: f64) -> f64 {
        if due <= 0.0 {
            return 0.0;
        }
        // Solve from·τ + a·τ² = due with a = slope / 2, in the form that stays stable when
        // the slope is tiny or zero: τ = 2·due / (from + √(from² + 4·a·due)).
        let a = (self.to_rate - self.from_rate) / self.duration_s / 2.0;
        let root = (self.from_rate * self.from_rate + 4.0 * a * due)
            .max(0.0)
            .sqrt();
        (2.0 * due / (self.from_rate + root)).min(self.duration_s)
    }
}

impl ArrivalSchedule {
    /// The schedule for `stages`, ramping from `start_rate`.
    pub fn new(start_rate: f64, stages: &[RateStage]) -> Self {
        let mut segments = Vec::with_capacity(stages.len());
        let (mut start_s, mut due_before, mut from_rate) = (0.0, 0.0, start_rate);
        for stage in stages {
            let duration_s = stage.duration.as_secs_f64();
            if duration_s > 0.0 {
                let segment = Segment {
                    start_s,
                    duration_s,
                    from_rate,
                    to_rate: stage.rate,
                    due_before,
                };
                due_before += segment.due_within(duration_s);
                start_s += duration_s;
                segments.push(segment);
            }
            // A zero-length stage jumps straight to its rate.
            from_rate = stage.rate;
        }
        // Iterations 0..count have Λ⁻¹(n) strictly before the end.
        let count = due_before.ceil() as u64;
        Self {
            segments,
            total_s: start_s,
            count,
        }
    }

    /// How many iterations the schedule holds.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// True when no iteration is ever due (every rate is zero).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The schedule's length.
    pub fn total(&self) -> Duration {
        Duration::from_secs_f64(self.total_s)
    }

    /// When iteration `n` (0-based) is due, counted from the start of the run; `None` past
    /// the end of the schedule.
    pub fn due_at(&self, n: u64) -> Option<Duration> {
        if n >= self.count {
            return None;
        }
        let target = n as f64;
        // The first segment by whose end Λ has reached `target`; a segment without arrivals
        // (rate 0 → 0) never contains the moment Λ reaches a new value. Rounding can leave the
        // last iteration a hair beyond every segment: it belongs to the last one with arrivals.
        let has_arrivals = |s: &&Segment| s.due_within(s.duration_s) > 0.0;
        let segment = self
            .segments
            .iter()
            .filter(has_arrivals)
            .find(|s| s.due_before + s.due_within(s.duration_s) >= target)
            .or_else(|| self.segments.iter().rev().find(has_arrivals))?;
        let seconds = segment.start_s + segment.time_for(target - segment.due_before);
        Some(Duration::from_secs_f64(seconds.min(self.total_s)))
    }

    /// How many iterations are due at or before `elapsed` since the start.
    pub fn due_by(&self, elapsed: Duration) -> u64 {
        let t = elapsed.as_secs_f64();
        if self.count == 0 {
            return 0;
        }
        if t >= self.total_s {
            return self.count;
        }
        let due = self
            .segments
            .iter()
            .rev()
            .find(|s| s.start_s <= t)
            .map_or(0.0, |s| s.due_before + s.due_within(t - s.start_s));
        // Iteration n is due once Λ(t) ≥ n, so n = 0..=floor(Λ(t)) are due.
        (due.floor() as u64 + 1).min(self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(seconds: f64, rate: f64) -> RateStage {
        RateStage {
            duration: Duration::from_secs_f64(seconds),
            rate,
        }
    }

    fn secs(d: Option<Duration>) -> f64 {
        d.expect("due").as_secs_f64()
    }

    #[test]
    fn constant_rate_is_evenly_spaced() {
        let schedule = ArrivalSchedule::new(50.0, &[stage(4.0, 50.0)]);
        assert_eq!(schedule.len(), 200);
        assert_eq!(secs(schedule.due_at(0)), 0.0);
        assert!((secs(schedule.due_at(1)) - 0.02).abs() < 1e-9);
        assert!((secs(schedule.due_at(199)) - 3.98).abs() < 1e-9);
        assert_eq!(schedule.due_at(200), None);
        assert_eq!(schedule.due_by(Duration::from_millis(1_000)), 51);
        assert_eq!(schedule.due_by(Duration::from_secs(10)), 200);
    }

    #[test]
    fn linear_ramp_follows_the_integral() {
        // 0 → 10/s over 10 s: Λ(t) = t²/2, so iteration n is due at √(2n).
        let schedule = ArrivalSchedule::new(0.0, &[stage(10.0, 10.0)]);
        assert_eq!(schedule.len(), 50);
        for n in [1u64, 8, 18, 32, 49] {
            let expected = (2.0 * n as f64).sqrt();
            assert!((secs(schedule.due_at(n)) - expected).abs() < 1e-9, "n={n}");
        }
        assert_eq!(schedule.due_by(Duration::from_secs(4)), 9);
    }

    #[test]
    fn ramp_down_and_multiple_stages() {
        // 20/s for 2 s (40), then 20 → 0 over 2 s (20 more).
        let schedule = ArrivalSchedule::new(20.0, &[stage(2.0, 20.0), stage(2.0, 0.0)]);
        assert_eq!(schedule.len(), 60);
        assert!((secs(schedule.due_at(40)) - 2.0).abs() < 1e-9);
        // Λ(2 + τ) = 40 + 20τ − 5τ²; at n = 55: 5τ² − 20τ + 15 = 0 → τ = 1.
        assert!((secs(schedule.due_at(55)) - 3.0).abs() < 1e-9);
        let times: Vec<f64> = (0..60).map(|n| secs(schedule.due_at(n))).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "monotonic");
    }

    #[test]
    fn pauses_and_jumps() {
        // 10/s for 1 s, silence for 1 s, then a zero-length jump to 30/s for 1 s.
        let schedule = ArrivalSchedule::new(
            10.0,
            &[
                stage(1.0, 10.0),
                stage(0.0, 0.0),
                stage(1.0, 0.0),
                stage(0.0, 30.0),
                stage(1.0, 30.0),
            ],
        );
        assert_eq!(schedule.len(), 40);
        assert!((secs(schedule.due_at(9)) - 0.9).abs() < 1e-9);
        // Λ reaches 10 exactly at the end of the first stage, then stays there for the pause.
        assert!((secs(schedule.due_at(10)) - 1.0).abs() < 1e-9);
        assert!((secs(schedule.due_at(11)) - (2.0 + 1.0 / 30.0)).abs() < 1e-9);
        assert_eq!(schedule.due_by(Duration::from_millis(1_500)), 11);
    }

    #[test]
    fn all_zero_rates_schedule_nothing() {
        let schedule = ArrivalSchedule::new(0.0, &[stage(5.0, 0.0)]);
        assert!(schedule.is_empty());
        assert_eq!(schedule.due_at(0), None);
        assert_eq!(schedule.due_by(Duration::from_secs(3)), 0);
    }
}
