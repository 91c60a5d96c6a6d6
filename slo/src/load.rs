//! Reading an SLO file, with errors a person can act on.
//!
//! A malformed file is a configuration error (exit 2), and the message must lead straight to
//! the fix: the file, the line and column, the field path (`slos[2].objective.lt`) and what
//! was wrong. The shared `config` crate reads every configuration file that way.

use std::path::Path;

use crate::model::SloSet;

/// Why an SLO file could not be used.
pub type LoadError = config::Error;

/// Reads and validates the SLO file at `path`.
pub fn load(path: impl AsRef<Path>) -> Result<SloSet, LoadError> {
    config::read(path, "SLO file")
}

/// Parses SLO file text; `path` only names the file in errors.
pub fn parse(text: &str, path: &Path) -> Result<SloSet, LoadError> {
    config::parse(text, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(text: &str) -> (Option<usize>, String, String) {
        match parse(text, Path::new("slos.yaml")).unwrap_err() {
            LoadError::Invalid {
                line,
                field,
                message,
                ..
            } => (line, field, message),
            other => panic!("unexpected {other}"),
        }
    }

    const HEAD: &str = "apiVersion: shakedown/v1\nkind: SLOSet\nmetadata:\n  name: t\nslos:\n";

    #[test]
    fn a_wrong_field_is_reported_with_its_line_and_path() {
        let text = format!(
            "{HEAD}  - name: a\n    sli:\n      latency:\n        quantile: 1.5\n    objective: {{lt: 1}}\n"
        );
        let (line, field, message) = error_of(&text);
        assert_eq!(line, Some(9));
        assert_eq!(field, "slos[0].sli.latency.quantile");
        assert!(message.contains("not between 0 and 1"), "{message}");
    }

    #[test]
    fn unknown_fields_and_kinds_are_named() {
        let text = format!(
            "{HEAD}  - name: a\n    sli: {{latency: {{quantile: 0.9}}}}\n    objective: {{lt: 1}}\n    owner: me\n"
        );
        let (line, _, message) = error_of(&text);
        assert_eq!(line, Some(9), "the line of the unknown field");
        assert!(message.contains("unknown field `owner`"), "{message}");

        let text = format!(
            "{HEAD}  - name: a\n    sli: {{latancy: {{quantile: 0.9}}}}\n    objective: {{lt: 1}}\n"
        );
        let (line, field, message) = error_of(&text);
        assert_eq!(line, Some(7));
        assert_eq!(field, "slos[0].sli");
        assert!(message.contains("unknown variant `latancy`"), "{message}");

        let (_, field, message) = error_of("apiVersion: shakedown/v9\n");
        assert_eq!(field, "apiVersion");
        assert!(message.contains("shakedown/v1"), "{message}");
    }

    #[test]
    fn rules_across_fields_point_at_the_node_that_breaks_them() {
        let text = format!(
            "{HEAD}  - name: a\n    sli: {{latency: {{quantile: 0.9}}}}\n    objective:\n      lt: 500ms\n      warn: 600ms\n"
        );
        let (line, field, message) = error_of(&text);
        assert_eq!((line, field.as_str()), (Some(9), "slos[0].objective"));
        assert!(message.contains("passing side"), "{message}");

        let text = format!(
            "{HEAD}  - name: a\n    sli: {{error_ratio: {{}}}}\n    objective: {{lt: 1%}}\ndefaults:\n  window: 0s\n"
        );
        let (line, field, _) = error_of(&text);
        assert_eq!((line, field.as_str()), (Some(10), "defaults.window"));
    }

    #[test]
    fn a_source_that_cannot_measure_the_sli_is_refused() {
        let text = format!(
            "{HEAD}  - name: a\n    sli: {{latency: {{quantile: 0.9}}}}\n    objective: {{lt: 1}}\n    source: kafka\n"
        );
        let (_, field, message) = error_of(&text);
        assert_eq!(field, "slos[0]");
        assert!(
            message.contains("source `kafka` cannot measure a `latency` SLI"),
            "{message}"
        );
    }

    #[test]
    fn duplicate_names_are_refused() {
        let slo = "  - name: a\n    sli: {error_ratio: {}}\n    objective: {lt: 1%}\n";
        let text = format!("{HEAD}{slo}{slo}");
        let (_, field, message) = error_of(&text);
        assert_eq!(field, "slos");
        assert!(message.contains("two SLOs are named `a`"), "{message}");
    }

    #[test]
    fn the_display_names_file_line_and_field() {
        let error = parse(
            "apiVersion: shakedown/v1\nkind: Nope\n",
            Path::new("x/slos.yaml"),
        )
        .unwrap_err()
        .to_string();
        assert!(error.starts_with("x/slos.yaml:2:"), "{error}");
        assert!(error.contains("field `kind`"), "{error}");
    }
}
