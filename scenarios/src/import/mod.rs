//! Scenario files from what a team already has: an OpenAPI description of its API, or a browser
//! recording (HAR) of a journey through it. Writing the first scenario file by hand is the
//! slowest step of load-testing a new API; an import gives a file that is valid from the start
//! and says, in comments, which values were guessed and need the user's eye.
//!
//! Both importers return the text of a `shakedown/v1` scenario file (see `scenarios/README.md`,
//! "Importing"); the CLI writes it with `shakedown scenario import openapi|har`.

mod correlate;
mod doc;
mod har;
mod har_filter;
mod names;
mod openapi;
mod schema;

use std::path::{Path, PathBuf};

pub use har::HarOptions;

/// Why an import failed. Every variant names the input file, and where it can, the place in it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read or parsed (the message has file, line and column).
    #[error(transparent)]
    Read(#[from] config::Error),
    /// The file parsed, but it is not what the importer reads.
    #[error("{}: not {expected}: {reason}", path.display())]
    NotThisKind {
        path: PathBuf,
        /// `an OpenAPI 3 description`, `a HAR 1.2 recording`.
        expected: &'static str,
        reason: String,
    },
    /// A `$ref` that does not point into the same document.
    #[error("{}: at {at}: cannot resolve $ref `{reference}`: {reason}", path.display())]
    Reference {
        path: PathBuf,
        /// Where the `$ref` is, e.g. `paths./orders.post.requestBody`.
        at: String,
        reference: String,
        reason: String,
    },
    /// Nothing in the input would make a step.
    #[error("{}: {message}", path.display())]
    Empty { path: PathBuf, message: String },
}

/// The scenario file text for the OpenAPI 3.0 or 3.1 description (YAML or JSON) at `path`: one
/// step per operation, in the order of the description.
pub fn openapi(path: &Path) -> Result<String, Error> {
    let text = config::read_text(path, "OpenAPI description")?;
    openapi::import(&text, path)
}

/// The scenario file text for the HAR 1.2 recording at `path`: one step per request to the
/// recorded application, in order, with the recording's think times.
pub fn har(path: &Path, options: &HarOptions) -> Result<String, Error> {
    let text = config::read_text(path, "HAR recording")?;
    har::import(&text, path, options)
}
