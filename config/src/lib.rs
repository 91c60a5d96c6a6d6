//! One way to read a configuration file (SLO sets, chaos experiments, load profiles, and
//! scenario files next).
//!
//! A malformed file is a configuration error (CLI exit 2), and the message must lead straight to
//! the fix: the file, the line and column, the field path (`slos[2].objective.lt`) and what was
//! wrong. `serde_path_to_error` supplies the path, `serde_yaml_ng` the position; serde_yaml_ng's
//! own copy of both is stripped from the message here, once, so every file kind reports errors
//! the same way. [`validated`] keeps a node's position for checks that run while it is read,
//! and [`Duration`] is the one notation for durations (`30s`, `1m30s`, `500ms`, `0`).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

pub mod duration;
pub mod validated;

pub use duration::{Duration, DurationError};

/// The macro expands in other crates; it reaches serde through this crate.
#[doc(hidden)]
pub use serde as __serde;

/// Why a configuration file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read.
    #[error("cannot read {what} {}: {source}", path.display())]
    Io {
        /// What the file is, e.g. `SLO file`, `experiment`.
        what: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The YAML is malformed, a value is bad, or a rule across fields is broken.
    #[error("{}{}: {}: {message}", path.display(), Position(*line, *column), FieldText(field))]
    Invalid {
        path: PathBuf,
        /// 1-based line of the offending node, when the YAML parser knows it.
        line: Option<usize>,
        /// 1-based column of the offending node, when the YAML parser knows it.
        column: Option<usize>,
        /// Path of the offending field, e.g. `slos[1].objective`; empty for the document.
        field: String,
        message: String,
    },
}

impl Error {
    /// A rule across fields was broken (checked after parsing, so there is no position).
    pub fn field(path: impl Into<PathBuf>, field: &str, message: impl fmt::Display) -> Error {
        Error::Invalid {
            path: path.into(),
            line: None,
            column: None,
            field: field.to_string(),
            message: message.to_string(),
        }
    }

    /// The line the error points at, if known.
    pub fn line(&self) -> Option<usize> {
        match self {
            Error::Invalid { line, .. } => *line,
            Error::Io { .. } => None,
        }
    }
}

struct Position(Option<usize>, Option<usize>);

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.0, self.1) {
            (Some(line), Some(column)) => write!(f, ":{line}:{column}"),
            (Some(line), None) => write!(f, ":{line}"),
            _ => Ok(()),
        }
    }
}

struct FieldText<'a>(&'a str);

impl fmt::Display for FieldText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("document")
        } else {
            write!(f, "field `{}`", self.0)
        }
    }
}

/// Reads and parses the file at `path`; `what` names the kind of file in a read error
/// (`cannot read SLO file x.yaml: ...`).
pub fn read<T: DeserializeOwned>(path: impl AsRef<Path>, what: &str) -> Result<T, Error> {
    let path = path.as_ref();
    parse(&read_text(path, what)?, path)
}

/// The text of the file at `path`, for readers that parse it more than once or need it
/// themselves; `what` names the kind of file in the error.
pub fn read_text(path: impl AsRef<Path>, what: &str) -> Result<String, Error> {
    let path = path.as_ref();
    std::fs::read_to_string(path).map_err(|source| Error::Io {
        what: what.to_string(),
        path: path.to_path_buf(),
        source,
    })
}

/// Parses YAML text; `path` only names the text in errors.
pub fn parse<T: DeserializeOwned>(text: &str, path: impl AsRef<Path>) -> Result<T, Error> {
    let deserializer = serde_yaml_ng::Deserializer::from_str(text);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let field = error.path().to_string();
        // serde_path_to_error names the root `.`.
        let field = if field == "." { String::new() } else { field };
        let inner = error.into_inner();
        let location = inner.location();
        Error::Invalid {
            path: path.as_ref().to_path_buf(),
            line: location.as_ref().map(|l| l.line()),
            column: location.as_ref().map(|l| l.column()),
            message: bare_message(&inner.to_string(), &field, location.as_ref()),
            field,
        }
    })
}

/// The YAML error's message without the position and path it repeats (both are reported in
/// their own fields).
fn bare_message(text: &str, field: &str, location: Option<&serde_yaml_ng::Location>) -> String {
    let mut message = text;
    if let Some(location) = location {
        let suffix = format!(" at line {} column {}", location.line(), location.column());
        message = message.strip_suffix(suffix.as_str()).unwrap_or(message);
    }
    // serde_yaml_ng prefixes the path it knew at that point, which may be shorter than the
    // full field path (`slos[1].sli.error_ratio` for `slos[1].sli.error_ratio.selector`).
    match message.split_once(": ") {
        Some((prefix, rest))
            if !prefix.is_empty()
                && !prefix.contains(' ')
                && (field.starts_with(prefix) || prefix.contains(['.', '['])) =>
        {
            rest.to_string()
        }
        _ => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        #[allow(dead_code)]
        name: String,
        #[serde(default)]
        #[allow(dead_code)]
        items: Vec<Item>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Item {
        #[allow(dead_code)]
        every: Duration,
        #[allow(dead_code)]
        share: Share,
    }

    /// A number between 0 and 1, checked while it is read.
    #[derive(Debug)]
    struct Share(#[allow(dead_code)] f64);

    impl TryFrom<f64> for Share {
        type Error = String;
        fn try_from(value: f64) -> Result<Self, String> {
            if (0.0..=1.0).contains(&value) {
                Ok(Share(value))
            } else {
                Err(format!("{value} is not between 0 and 1"))
            }
        }
    }

    crate::deserialize_validated!(Share, number);

    fn invalid(text: &str) -> (Option<usize>, Option<usize>, String, String, String) {
        let error = parse::<Doc>(text, "dir/file.yaml").unwrap_err();
        let display = error.to_string();
        match error {
            Error::Invalid {
                line,
                column,
                field,
                message,
                ..
            } => (line, column, field, message, display),
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn a_bad_value_is_reported_at_its_own_node_with_its_field_path() {
        let text =
            "name: a\nitems:\n  - every: 1s\n    share: 0.5\n  - every: 2s\n    share: 1.5\n";
        let (line, column, field, message, display) = invalid(text);
        assert_eq!(line, Some(6), "the line of the value, not of its mapping");
        let column = column.expect("a column");
        assert_eq!(field, "items[1].share");
        assert_eq!(message, "1.5 is not between 0 and 1");
        assert_eq!(
            display,
            format!("dir/file.yaml:6:{column}: field `items[1].share`: 1.5 is not between 0 and 1")
        );
    }

    #[test]
    fn the_message_is_bare_of_the_position_and_path_serde_yaml_repeats() {
        let (line, _, field, message, _) =
            invalid("name: a\nitems:\n  - every: 1s\n    shares: 1\n");
        assert_eq!(line, Some(4));
        assert_eq!(field, "items[0].shares");
        assert!(message.starts_with("unknown field `shares`"), "{message}");
        assert!(!message.contains(" at line "), "{message}");
        assert!(!message.contains("items[0]"), "{message}");
    }

    #[test]
    fn a_root_error_names_the_document() {
        let (line, _, field, message, display) = invalid("items: []\n");
        assert_eq!(line, Some(1));
        assert_eq!(field, "");
        assert!(message.contains("missing field `name`"), "{message}");
        assert!(
            display.starts_with("dir/file.yaml:1:1: document: missing field"),
            "{display}"
        );
    }

    #[test]
    fn a_bad_duration_has_one_message_and_its_position() {
        let (line, _, field, message, _) =
            invalid("name: a\nitems:\n  - every: soon\n    share: 0\n");
        assert_eq!((line, field.as_str()), (Some(3), "items[0].every"));
        assert!(
            message.starts_with("invalid duration \"soon\": ")
                && message.ends_with("(use e.g. 30s, 1m30s, 500ms)"),
            "{message}"
        );
    }

    #[test]
    fn a_rule_across_fields_names_file_and_field_without_position() {
        let error = Error::field("x.yaml", "items[0]", "`min` is longer than `max`");
        assert_eq!(error.line(), None);
        assert_eq!(
            error.to_string(),
            "x.yaml: field `items[0]`: `min` is longer than `max`"
        );
    }

    #[test]
    fn a_missing_file_says_what_it_is() {
        let error = read::<Doc>("/nonexistent/slos.yaml", "SLO file").unwrap_err();
        assert!(matches!(error, Error::Io { .. }), "{error}");
        assert!(
            error
                .to_string()
                .starts_with("cannot read SLO file /nonexistent/slos.yaml: "),
            "{error}"
        );
    }
}
