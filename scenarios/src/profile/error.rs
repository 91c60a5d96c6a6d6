//! Why a profile was refused.
//!
//! Every variant is a usage/configuration error (CLI exit code 2). A bad file names the file,
//! the line and column, and the field path (`closed.stages[2].duration`), so the fix is one
//! look away.

use std::fmt;
use std::path::PathBuf;

/// A profile that could not be read, parsed, found or reshaped.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The file could not be read.
    #[error("cannot read profile {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The YAML is malformed or a field has a bad value.
    #[error("{}", Invalid { origin, line: *line, column: *column, field, message })]
    Invalid {
        /// The file path, or `built-in profile "name"`.
        origin: String,
        /// 1-based line, when the parser knows it.
        line: Option<usize>,
        /// 1-based column, when the parser knows it.
        column: Option<usize>,
        /// Path of the offending field, e.g. `closed.stages[2].duration`; empty for the
        /// document as a whole.
        field: String,
        message: String,
    },
    /// Neither a file nor a built-in name.
    #[error(
        "unknown profile \"{name}\": no such file, and not a built-in profile (built-in: {})",
        known.join(", ")
    )]
    UnknownBuiltin { name: String, known: Vec<String> },
    /// A scale factor or override does not fit the profile.
    #[error("cannot apply {what} to profile \"{profile}\": {message}")]
    Reshape {
        profile: String,
        what: String,
        message: String,
    },
}

/// Formats the `Invalid` variant as `file:line:column: field `x`: message`.
struct Invalid<'a> {
    origin: &'a str,
    line: Option<usize>,
    column: Option<usize>,
    field: &'a str,
    message: &'a str,
}

impl fmt::Display for Invalid<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid profile {}", self.origin)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        if self.field.is_empty() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": field `{}`: {}", self.field, self.message)
        }
    }
}

/// The shared configuration reader's errors, in the profile's terms (the `invalid profile`
/// prefix, no field for the document).
impl From<config::Error> for ProfileError {
    fn from(error: config::Error) -> Self {
        match error {
            config::Error::Io { path, source, .. } => ProfileError::Read { path, source },
            config::Error::Invalid {
                path,
                line,
                column,
                field,
                message,
            } => ProfileError::Invalid {
                origin: path.display().to_string(),
                line,
                column,
                field,
                message,
            },
        }
    }
}

impl ProfileError {
    /// The line the error points at, if known.
    pub fn line(&self) -> Option<usize> {
        match self {
            ProfileError::Invalid { line, .. } => *line,
            _ => None,
        }
    }

    /// The field path the error points at, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            ProfileError::Invalid { field, .. } if !field.is_empty() => Some(field),
            _ => None,
        }
    }
}
