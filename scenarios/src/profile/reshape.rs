//! Scaling and overriding profiles without editing them.
//!
//! CI wants the same shape as the full test, only shorter and lighter; an engineer wants "the
//! baseline, but 200 users". Both keep the profile's shape: every stage is stretched or
//! squeezed by the same factor.
//!
//! Closed-model stage durations stay whole seconds (Goose's resolution), rounded to the nearest
//! second and never below one second for a stage that had time; a stage with users never
//! scales below one user, so a small scale still runs every stage.

use std::time::Duration;

use super::{Load, Profile, ProfileError, RateStage, UserStage};

/// Command-line overrides; `None` leaves that aspect of the profile as it is.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Overrides {
    /// Stretch or squeeze the stages so the whole profile lasts this long.
    pub duration: Option<Duration>,
    /// Closed model: scale user targets so the peak is this many users.
    /// Open model: the most concurrent users (`max_users`).
    pub users: Option<u32>,
    /// Open model only: scale the arrival rates so the peak is this many iterations/s.
    pub rate: Option<f64>,
}

impl Profile {
    /// The same profile with time and load multiplied by `factor`: `k6-baseline` at 0.2 runs
    /// 6s→4, 18s→10, 12s→20, 12s→10, 6s→0 users. Open model: durations, rates and
    /// `max_users` scale together.
    pub fn scaled(&self, factor: f64) -> Result<Profile, ProfileError> {
        if !factor.is_finite() || factor <= 0.0 {
            return Err(self.reshape_error(
                "scale",
                &format!("the factor must be a positive number, got {factor}"),
            ));
        }
        let mut profile = self.clone();
        profile.load = match &self.load {
            Load::Closed { stages } => Load::Closed {
                stages: stages
                    .iter()
                    .map(|s| UserStage {
                        duration: scale_whole_seconds(s.duration, factor),
                        users: scale_users(s.users, factor),
                    })
                    .collect(),
            },
            Load::Open {
                start_rate,
                max_users,
                stages,
            } => Load::Open {
                start_rate: start_rate * factor,
                max_users: scale_users(*max_users, factor),
                stages: stages
                    .iter()
                    .map(|s| RateStage {
                        duration: scale_duration(s.duration, factor),
                        rate: s.rate * factor,
                    })
                    .collect(),
            },
        };
        Ok(profile)
    }

    /// The profile with the given overrides applied (duration first, then users and rate).
    pub fn with_overrides(&self, overrides: &Overrides) -> Result<Profile, ProfileError> {
        let mut profile = self.clone();
        if let Some(duration) = overrides.duration {
            profile = profile.with_duration(duration)?;
        }
        if let Some(users) = overrides.users {
            profile = profile.with_users(users)?;
        }
        if let Some(rate) = overrides.rate {
            profile = profile.with_rate(rate)?;
        }
        Ok(profile)
    }

    fn with_duration(&self, duration: Duration) -> Result<Profile, ProfileError> {
        let planned = self.planned_duration();
        if duration.is_zero() {
            return Err(self.reshape_error("duration", "the duration must be longer than zero"));
        }
        let factor = duration.as_secs_f64() / planned.as_secs_f64();
        let mut profile = self.clone();
        match &mut profile.load {
            Load::Closed { stages } => {
                for stage in stages {
                    stage.duration = scale_whole_seconds(stage.duration, factor);
                }
            }
            Load::Open { stages, .. } => {
                for stage in stages {
                    stage.duration = scale_duration(stage.duration, factor);
                }
            }
        }
        Ok(profile)
    }

    fn with_users(&self, users: u32) -> Result<Profile, ProfileError> {
        if users == 0 {
            return Err(self.reshape_error("users", "at least one user is needed"));
        }
        let mut profile = self.clone();
        match &mut profile.load {
            Load::Closed { stages } => {
                let peak = stages.iter().map(|s| s.users).max().unwrap_or(0);
                let factor = f64::from(users) / f64::from(peak.max(1));
                for stage in stages {
                    stage.users = scale_users(stage.users, factor);
                }
            }
            Load::Open { max_users, .. } => *max_users = users,
        }
        Ok(profile)
    }

    fn with_rate(&self, rate: f64) -> Result<Profile, ProfileError> {
        if !rate.is_finite() || rate <= 0.0 {
            return Err(self.reshape_error(
                "rate",
                &format!("the rate must be a positive number of iterations/s, got {rate}"),
            ));
        }
        let mut profile = self.clone();
        match &mut profile.load {
            Load::Closed { .. } => {
                return Err(self.reshape_error(
                    "rate",
                    "this is a closed-model (users) profile; a rate needs an open-model profile",
                ));
            }
            Load::Open {
                start_rate, stages, ..
            } => {
                let peak = stages.iter().map(|s| s.rate).fold(*start_rate, f64::max);
                let factor = rate / peak;
                *start_rate *= factor;
                for stage in stages {
                    stage.rate *= factor;
                }
            }
        }
        Ok(profile)
    }

    fn reshape_error(&self, what: &str, message: &str) -> ProfileError {
        ProfileError::Reshape {
            profile: self.name.clone(),
            what: what.to_string(),
            message: message.to_string(),
        }
    }
}

/// Users scale with rounding; a stage that had users keeps at least one.
fn scale_users(users: u32, factor: f64) -> u32 {
    if users == 0 {
        return 0;
    }
    let scaled = (f64::from(users) * factor).round();
    scaled.clamp(1.0, f64::from(u32::MAX)) as u32
}

/// Whole seconds, rounded; a stage that had time keeps at least one second.
fn scale_whole_seconds(duration: Duration, factor: f64) -> Duration {
    if duration.is_zero() {
        return duration;
    }
    let seconds = (duration.as_secs_f64() * factor).round().max(1.0);
    Duration::from_secs(seconds as u64)
}

/// Open-model durations keep millisecond precision.
fn scale_duration(duration: Duration, factor: f64) -> Duration {
    Duration::from_millis((duration.as_secs_f64() * factor * 1000.0).round() as u64)
}
