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
            "{HEAD}  - name: a\n    sli: {{latency: {{quantile: 0.9}}}}\n    objective: {{lt: 1s}}\n    owner: me\n"
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

    fn slo_with(sli: &str, objective: &str) -> String {
        format!("{HEAD}  - name: a\n    sli: {sli}\n    objective:\n{objective}")
    }

    #[test]
    fn a_bound_without_its_unit_points_at_its_own_line_and_gives_the_fix() {
        let latency = "{latency: {quantile: 0.95}}";
        let (line, field, message) = error_of(&slo_with(latency, "      lt: 500\n"));
        assert_eq!((line, field.as_str()), (Some(9), "slos[0].objective.lt"));
        assert_eq!(
            message,
            "`lt: 500` has no unit: a latency objective needs one, e.g. `lt: 500ms` (units: us, ms, s, m)"
        );
        // 0.5 used to mean seconds: the fix keeps that meaning.
        let (_, _, message) = error_of(&slo_with(latency, "      lt: 0.5\n"));
        assert!(message.contains("e.g. `lt: 500ms`"), "{message}");
        let (line, field, message) =
            error_of(&slo_with(latency, "      lt: 500ms\n      warn: 400\n"));
        assert_eq!((line, field.as_str()), (Some(10), "slos[0].objective.warn"));
        assert!(message.starts_with("`warn: 400` has no unit"), "{message}");
        let (_, _, message) = error_of(&slo_with(latency, "      lt: 1%\n"));
        assert!(
            message.contains("is a ratio, but a latency objective needs a duration"),
            "{message}"
        );

        let errors = "{error_ratio: {}}";
        let (line, field, message) = error_of(&slo_with(errors, "      lt: 5\n"));
        assert_eq!((line, field.as_str()), (Some(9), "slos[0].objective.lt"));
        assert_eq!(
            message,
            "`lt: 5` has no unit: a ratio objective needs a percentage, e.g. `lt: 5%`"
        );
        let (_, _, message) = error_of(&slo_with(errors, "      lt: 0.01\n"));
        assert!(
            message.contains("e.g. `lt: 1%` (or the fraction written `lt: 0.01 ratio`)"),
            "{message}"
        );
        let (_, _, message) = error_of(&slo_with(errors, "      lt: 500ms\n"));
        assert!(
            message.contains("is a duration, but a ratio objective"),
            "{message}"
        );
        let (_, _, message) = error_of(&slo_with(errors, "      lt: 150%\n"));
        assert!(message.contains("outside 0 %..100 %"), "{message}");

        let recovery = "{kafka_lag: {group: g, topics: [t], measure: recovery_time, below: 10}}";
        let (_, field, message) = error_of(&slo_with(recovery, "      lte: 60\n"));
        assert_eq!(field, "slos[0].objective.lte");
        assert!(
            message.contains("a duration objective needs one, e.g. `lte: 60s`"),
            "{message}"
        );
        let client = "{client: {measure: latency, quantile: 0.99}}";
        let (_, field, _) = error_of(&slo_with(client, "      lt: 1000\n"));
        assert_eq!(field, "slos[0].objective.lt");

        let promql = "{promql: {query: 'up'}}";
        let (_, _, message) = error_of(&slo_with(promql, "      lt: 500ms\n"));
        assert!(message.contains("`unit:`"), "{message}");
        let hpa = "{hpa: {namespace: n, name: o, measure: scale_out}}";
        let (_, _, message) = error_of(&slo_with(hpa, "      gt: 10%\n"));
        assert!(
            message.contains("a replicas objective is a plain count"),
            "{message}"
        );
    }

    #[test]
    fn bounds_in_the_sli_unit_are_read_in_its_base_unit() {
        let parsed = |sli: &str, objective: &str| {
            parse(&slo_with(sli, objective), Path::new("slos.yaml"))
                .unwrap()
                .slos[0]
                .objective
        };
        let o = parsed(
            "{error_ratio: {}}",
            "      lt: 0.02 ratio\n      warn: 1%\n",
        );
        assert_eq!((o.value, o.warn), (0.02, Some(0.01)));
        let o = parsed("{latency: {quantile: 0.9}}", "      lt: 2s\n");
        assert_eq!(o.value, 2.0);
        let o = parsed(
            "{hpa: {namespace: n, name: o, measure: end_gap}}",
            "      lte: 0\n",
        );
        assert_eq!(o.value, 0.0);
        let o = parsed("{promql: {query: 'up'}}", "      gt: 0.5\n");
        assert_eq!(o.value, 0.5);
    }

    #[test]
    fn an_objective_written_before_its_sli_is_still_checked() {
        let text = format!(
            "{HEAD}  - name: a\n    objective: {{lt: 500}}\n    sli: {{latency: {{quantile: 0.9}}}}\n"
        );
        let (_, field, message) = error_of(&text);
        assert_eq!(field, "slos[0]");
        assert!(
            message.starts_with("in `objective`: `lt: 500` has no unit"),
            "{message}"
        );
        let text = format!(
            "{HEAD}  - name: a\n    objective: {{lt: 500ms}}\n    sli: {{latency: {{quantile: 0.9}}}}\n"
        );
        assert!(parse(&text, Path::new("slos.yaml")).is_ok());
    }

    #[test]
    fn a_source_that_cannot_measure_the_sli_is_refused() {
        let text = format!(
            "{HEAD}  - name: a\n    sli: {{latency: {{quantile: 0.9}}}}\n    objective: {{lt: 1s}}\n    source: kafka\n"
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
