//! The evaluator: a measurement and an objective make a status.
//!
//! Kept apart from the sources so the rule is in one place and testable without any server.
//! A value that is only a lower bound ("still not recovered after 30 s") is judged only when
//! the bound already decides the outcome; otherwise the verdict is `unknown`, never a guess.

use reports::SloStatus;

use crate::model::Objective;
use crate::sources::Measured;

/// Judges `measured` against `objective`.
pub fn evaluate(objective: &Objective, measured: &Measured) -> SloStatus {
    match *measured {
        Measured::NoData => SloStatus::Unknown,
        Measured::Exact(value) if value.is_nan() => SloStatus::Unknown,
        Measured::Exact(value) => judge(objective, value),
        Measured::AtLeast(bound) if bound.is_nan() => SloStatus::Unknown,
        Measured::AtLeast(bound) => {
            if objective.comparison.lower_is_better() {
                // The true value is `bound` or more: only a failure is certain.
                if objective.comparison.holds(bound, objective.value) {
                    SloStatus::Unknown
                } else {
                    SloStatus::Fail
                }
            } else {
                // Higher is better, the true value is at least `bound`: it can only improve.
                match judge(objective, bound) {
                    SloStatus::Fail => SloStatus::Unknown,
                    status => status,
                }
            }
        }
    }
}

fn judge(objective: &Objective, value: f64) -> SloStatus {
    if !objective.comparison.holds(value, objective.value) {
        return SloStatus::Fail;
    }
    match objective.warn {
        Some(warn) if !objective.comparison.holds(value, warn) => SloStatus::Warn,
        _ => SloStatus::Pass,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Comparison;

    fn objective(comparison: Comparison, value: f64, warn: Option<f64>) -> Objective {
        Objective {
            comparison,
            value,
            warn,
            written: (
                crate::value::Written::Bare,
                warn.map(|_| crate::value::Written::Bare),
            ),
        }
    }

    #[test]
    fn exact_values_pass_warn_or_fail() {
        let lt = objective(Comparison::Lt, 0.5, Some(0.4));
        assert_eq!(evaluate(&lt, &Measured::Exact(0.2)), SloStatus::Pass);
        assert_eq!(evaluate(&lt, &Measured::Exact(0.4)), SloStatus::Warn);
        assert_eq!(evaluate(&lt, &Measured::Exact(0.45)), SloStatus::Warn);
        assert_eq!(evaluate(&lt, &Measured::Exact(0.5)), SloStatus::Fail);
        let lte = objective(Comparison::Lte, 0.5, None);
        assert_eq!(evaluate(&lte, &Measured::Exact(0.5)), SloStatus::Pass);
        let gte = objective(Comparison::Gte, 0.99, Some(0.995));
        assert_eq!(evaluate(&gte, &Measured::Exact(0.999)), SloStatus::Pass);
        assert_eq!(evaluate(&gte, &Measured::Exact(0.992)), SloStatus::Warn);
        assert_eq!(evaluate(&gte, &Measured::Exact(0.98)), SloStatus::Fail);
        let gt = objective(Comparison::Gt, 0.0, None);
        assert_eq!(evaluate(&gt, &Measured::Exact(0.0)), SloStatus::Fail);
    }

    #[test]
    fn no_data_and_nan_are_unknown_never_zero() {
        let lt = objective(Comparison::Lt, 0.01, None);
        assert_eq!(evaluate(&lt, &Measured::NoData), SloStatus::Unknown);
        assert_eq!(
            evaluate(&lt, &Measured::Exact(f64::NAN)),
            SloStatus::Unknown
        );
    }

    #[test]
    fn lower_bounds_decide_only_when_they_can() {
        let lte = objective(Comparison::Lte, 60.0, Some(30.0));
        assert_eq!(evaluate(&lte, &Measured::AtLeast(90.0)), SloStatus::Fail);
        assert_eq!(evaluate(&lte, &Measured::AtLeast(45.0)), SloStatus::Unknown);
        let gt = objective(Comparison::Gt, 2.0, Some(4.0));
        assert_eq!(evaluate(&gt, &Measured::AtLeast(5.0)), SloStatus::Pass);
        assert_eq!(evaluate(&gt, &Measured::AtLeast(3.0)), SloStatus::Warn);
        assert_eq!(evaluate(&gt, &Measured::AtLeast(1.0)), SloStatus::Unknown);
    }
}
