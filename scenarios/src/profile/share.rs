//! One worker's share of a profile, for load spread over N generators (a Kubernetes Indexed Job,
//! or several machines): every worker keeps the stage timings, so they ramp together, and the
//! users or arrival rates are divided so the workers add up to exactly the whole profile.

use reports::WorkerShare;

use super::{Load, Profile, ProfileError};

impl Profile {
    /// Worker `index` (0-based) of `workers`: closed model, each stage's users split as evenly as
    /// whole users allow (the first `users % workers` workers take one more); open model, rates
    /// divided by `workers` and `max_users` split like users (at least one each).
    pub fn share(&self, workers: u32, index: u32) -> Result<Profile, ProfileError> {
        if workers == 0 {
            return Err(self.share_error("there must be at least one worker".into()));
        }
        if index >= workers {
            return Err(self.share_error(format!(
                "worker index {index} is outside 0..{workers} (indexes start at 0)"
            )));
        }
        if workers == 1 {
            return Ok(self.clone());
        }
        let mut profile = self.clone();
        match &mut profile.load {
            Load::Closed { stages } => {
                for stage in stages.iter_mut() {
                    stage.users = split(stage.users, workers, index);
                }
                if stages.iter().all(|s| s.users == 0) {
                    let peak = match &self.load {
                        Load::Closed { stages } => stages.iter().map(|s| s.users).max(),
                        Load::Open { .. } => None,
                    };
                    return Err(self.share_error(format!(
                        "worker {index} of {workers} gets no users (the profile peaks at {} users): use fewer workers",
                        peak.unwrap_or(0)
                    )));
                }
            }
            Load::Open {
                start_rate,
                max_users,
                stages,
            } => {
                let n = f64::from(workers);
                *start_rate /= n;
                for stage in stages.iter_mut() {
                    stage.rate /= n;
                }
                *max_users = split(*max_users, workers, index).max(1);
            }
        }
        // The name stays the whole profile's: reports of all workers name the same profile,
        // and the share is recorded on its own (`ProfileSummary::worker`).
        profile.worker = Some(WorkerShare { index, workers });
        Ok(profile)
    }

    fn share_error(&self, message: String) -> ProfileError {
        ProfileError::Reshape {
            profile: self.name.clone(),
            what: "workers".into(),
            message,
        }
    }
}

/// `total` split over `workers`: the first `total % workers` get one more.
fn split(total: u32, workers: u32, index: u32) -> u32 {
    total / workers + u32::from(index < total % workers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closed(stages: &str) -> Profile {
        Profile::from_yaml(&format!("name: p\nclosed:\n  stages:\n{stages}"), "test").unwrap()
    }

    fn users(profile: &Profile) -> Vec<u32> {
        match &profile.load {
            Load::Closed { stages } => stages.iter().map(|s| s.users).collect(),
            Load::Open { .. } => unreachable!(),
        }
    }

    #[test]
    fn shares_add_up_to_the_whole_with_the_same_timings() {
        let whole = Profile::builtin("k6-baseline").unwrap();
        let shares: Vec<Profile> = (0..3).map(|i| whole.share(3, i).unwrap()).collect();
        let sums: Vec<u32> = (0..users(&whole).len())
            .map(|stage| shares.iter().map(|p| users(p)[stage]).sum())
            .collect();
        assert_eq!(sums, users(&whole));
        for share in &shares {
            assert_eq!(share.planned_duration(), whole.planned_duration());
        }
        // 20 users over 3 workers: 7, 7, 6.
        assert_eq!(users(&shares[0])[0], 7);
        assert_eq!(users(&shares[2])[0], 6);
        assert_eq!(shares[1].name, "k6-baseline", "the whole profile's name");
        assert_eq!(
            shares[1].worker,
            Some(WorkerShare {
                index: 1,
                workers: 3
            })
        );
        assert_eq!(shares[1].summary().worker, shares[1].worker);
        assert_eq!(whole.summary().worker, None);
    }

    #[test]
    fn open_model_rates_divide_and_every_worker_keeps_a_user() {
        let whole = Profile::builtin("open-baseline").unwrap();
        let share = whole.share(4, 3).unwrap();
        let (
            Load::Open {
                stages: w,
                max_users: wm,
                ..
            },
            Load::Open {
                stages: s,
                max_users: sm,
                ..
            },
        ) = (&whole.load, &share.load)
        else {
            unreachable!()
        };
        for (whole, share) in w.iter().zip(s) {
            assert!((share.rate * 4.0 - whole.rate).abs() < 1e-9);
            assert_eq!(share.duration, whole.duration);
        }
        assert_eq!(*sm, wm / 4);
    }

    #[test]
    fn impossible_shares_are_refused_naming_the_workers() {
        let tiny = closed("    - { duration: 5s, users: 2 }\n");
        assert!(
            tiny.share(3, 2)
                .unwrap_err()
                .to_string()
                .contains("no users")
        );
        assert!(
            tiny.share(3, 3)
                .unwrap_err()
                .to_string()
                .contains("outside 0..3")
        );
        assert!(tiny.share(0, 0).is_err());
        assert_eq!(tiny.share(1, 0).unwrap(), tiny);
    }
}
