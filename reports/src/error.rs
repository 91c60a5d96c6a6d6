//! Why a report could not be rendered, written or its histograms read: typed, so a caller can
//! tell a disk problem from a bug in a template, and each message says what and where.

use std::path::PathBuf;

/// A latency histogram that could not be merged, encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum HistogramError {
    #[error("merging histograms: {0}")]
    Merge(String),
    #[error("encoding histogram: {0}")]
    Encode(String),
    #[error("histogram is not base64: {0}")]
    Base64(String),
    #[error("histogram is not HdrHistogram V2: {0}")]
    Format(String),
}

/// A rendering (JSON, Markdown, HTML, JUnit) that failed.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Template(#[from] minijinja::Error),
    #[error("drawing chart: {0}")]
    Chart(String),
    #[error(transparent)]
    Junit(#[from] quick_junit::SerializeError),
    #[error(transparent)]
    Histogram(#[from] HistogramError),
}

/// A report directory that could not be written, or its `latest` link not placed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("creating {}", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("rendering {file}")]
    Render {
        file: &'static str,
        #[source]
        source: RenderError,
    },
    #[error("writing {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} has no parent folder", path.display())]
    NoParent { path: PathBuf },
    #[error("{} has no name", path.display())]
    NoName { path: PathBuf },
    #[error("creating {}", path.display())]
    Link {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("replacing {}", path.display())]
    ReplaceLink {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
