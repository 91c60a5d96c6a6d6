//! `abort_on_fail`, judged while the run goes on: each tick the coordinator merges every
//! worker's totals so far and evaluates the profile's abort thresholds on them, exactly as the
//! final report evaluates thresholds; the first one that fails (after its `delay_abort_eval`)
//! stops every worker.

use std::time::Duration;

use reports::Verdict;

use super::live::merged_totals;
use super::state::Fleet;
use crate::profile::{AbortRule, Profile};

pub struct AbortWatch {
    rules: Vec<AbortRule>,
}

impl AbortWatch {
    pub fn new(profile: &Profile) -> Self {
        Self {
            rules: profile.aborts.clone(),
        }
    }

    /// The reason to abort now, `elapsed` into the run; `None` while every due rule holds (or
    /// there is nothing measured yet).
    pub fn check(&mut self, fleet: &Fleet, elapsed: Duration) -> Option<String> {
        let due: Vec<&AbortRule> = self.rules.iter().filter(|r| elapsed >= r.delay).collect();
        if due.is_empty() {
            return None;
        }
        let totals = merged_totals(fleet, elapsed.as_secs_f64().max(1e-3));
        if totals.requests == 0 {
            return None;
        }
        due.into_iter().find_map(|rule| {
            let result = rule.threshold.evaluate(&totals);
            (result.status == Verdict::Fail).then(|| {
                let measured = result.measured.map_or("nothing".to_string(), |m| {
                    reports::format_value(m, &result.unit)
                });
                format!(
                    "threshold {} failed with {measured} after {:.1} s (abort_on_fail)",
                    rule.threshold,
                    elapsed.as_secs_f64()
                )
            })
        })
    }
}
