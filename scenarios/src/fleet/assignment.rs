//! What a worker is told to run: the scenario and profile as text or built-in names plus the
//! knobs the coordinator applied (scale, overrides), so that a worker resolves exactly the
//! profile the coordinator resolved, takes its share of it, and needs no file of its own.

use std::path::Path;

use super::error::FleetError;
use super::proto;
use crate::file::Scenario;
use crate::profile::{Overrides, Profile};

/// The run as the coordinator was asked for it, before it is split.
#[derive(Clone, Debug)]
pub struct Sources {
    pub scenario: proto::ScenarioSource,
    pub profile: proto::ProfileSource,
}

impl Sources {
    /// Reads the scenario (a built-in name or a file) and the profile (a file or a built-in
    /// name, as [`Profile::resolve`] tells them apart) once, on the coordinator.
    pub fn read(
        scenario: &str,
        profile: &str,
        scale: Option<f64>,
        overrides: &Overrides,
    ) -> Result<Sources, FleetError> {
        let scenario = if Scenario::builtin(scenario).is_some() {
            proto::scenario_source::Source::Builtin(scenario.to_string())
        } else {
            proto::scenario_source::Source::File(file_text(scenario, "scenario file")?)
        };
        let path = Path::new(profile);
        let looks_like_file = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
        let profile_source = if looks_like_file || path.is_file() {
            proto::profile_source::Source::File(file_text(profile, "profile")?)
        } else {
            proto::profile_source::Source::Builtin(profile.to_string())
        };
        Ok(Sources {
            scenario: proto::ScenarioSource {
                source: Some(scenario),
            },
            profile: proto::ProfileSource {
                source: Some(profile_source),
                scale,
                duration_ms: overrides
                    .duration
                    .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                users: overrides.users,
                rate: overrides.rate,
            },
        })
    }

    /// The sources a worker received.
    pub fn received(assignment: &proto::Assignment) -> Result<Sources, FleetError> {
        let missing = |what: &str| FleetError::Assignment(format!("no {what}"));
        Ok(Sources {
            scenario: assignment
                .scenario
                .clone()
                .ok_or_else(|| missing("scenario"))?,
            profile: assignment
                .profile
                .clone()
                .ok_or_else(|| missing("profile"))?,
        })
    }

    /// The scenario, compiled.
    pub fn scenario(&self) -> Result<Scenario, FleetError> {
        match &self.scenario.source {
            Some(proto::scenario_source::Source::Builtin(name)) => {
                Ok(Scenario::resolve(name).map_err(crate::error::RunError::from)?)
            }
            Some(proto::scenario_source::Source::File(file)) => {
                // Relative file names in it (feeders, bodies) are resolved from where the file
                // was on the coordinator: the same place for local workers.
                let base = Path::new(&file.origin).parent().map(Path::to_path_buf);
                Ok(
                    Scenario::from_yaml(&file.text, &file.origin, base.as_deref())
                        .map_err(crate::error::RunError::from)?,
                )
            }
            None => Err(FleetError::Assignment("no scenario".into())),
        }
    }

    /// The whole profile: resolved, scaled, overridden.
    pub fn whole_profile(&self) -> Result<Profile, FleetError> {
        let source = &self.profile;
        let mut profile = match &source.source {
            Some(proto::profile_source::Source::Builtin(name)) => Profile::builtin(name)?,
            Some(proto::profile_source::Source::File(file)) => {
                crate::profile::parse_file_text(&file.text, &file.origin, &file.stem)?
            }
            None => return Err(FleetError::Assignment("no profile".into())),
        };
        if let Some(scale) = source.scale {
            profile = profile.scaled(scale)?;
        }
        Ok(profile.with_overrides(&Overrides {
            duration: source.duration_ms.map(std::time::Duration::from_millis),
            users: source.users,
            rate: source.rate,
        })?)
    }

    /// Worker `index`'s share of the profile.
    pub fn share(&self, workers: u32, index: u32) -> Result<Profile, FleetError> {
        Ok(self.whole_profile()?.share(workers, index)?)
    }
}

fn file_text(path: &str, what: &str) -> Result<proto::FileText, FleetError> {
    let text = config::read_text(Path::new(path), what).map_err(|e| FleetError::ScenarioFile {
        path: path.to_string(),
        message: e.to_string(),
    })?;
    let stem = Path::new(path)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "profile".to_string());
    Ok(proto::FileText {
        origin: path.to_string(),
        text,
        stem,
    })
}
