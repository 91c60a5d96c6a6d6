//! Built-in profiles, selectable by name.
//!
//! They are the YAML files in `scenarios/profiles/`, embedded at compile time, so the files
//! people copy and edit are exactly what the built-in names run — and they go through the
//! same validation as user files.

use super::{Profile, ProfileError};

const BUILTIN: [(&str, &str); 3] = [
    (
        "k6-baseline",
        include_str!("../../profiles/k6-baseline.yaml"),
    ),
    ("smoke", include_str!("../../profiles/smoke.yaml")),
    (
        "open-baseline",
        include_str!("../../profiles/open-baseline.yaml"),
    ),
];

/// Names of the built-in profiles.
pub fn builtin_names() -> Vec<&'static str> {
    BUILTIN.iter().map(|(name, _)| *name).collect()
}

pub(super) fn load(name: &str) -> Result<Profile, ProfileError> {
    let (_, yaml) = BUILTIN
        .iter()
        .find(|(builtin, _)| *builtin == name)
        .ok_or_else(|| ProfileError::UnknownBuiltin {
            name: name.to_string(),
            known: builtin_names().into_iter().map(str::to_string).collect(),
        })?;
    super::file::parse(yaml, &format!("built-in profile \"{name}\""), name)
}
