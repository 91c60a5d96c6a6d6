//! Where SLI values come from: one small [`Source`] per backend.
//!
//! A source answers one question — "what was this SLI over this window?" — with a value, a
//! lower bound, or an explicit "no data". It also says, before measuring, exactly what it will
//! ask ([`Probe`]), so every verdict carries a query a person can re-run by hand, even when the
//! backend could not be reached.

mod alerts;
mod breakdown;
mod client;
mod config;
mod kafka;
mod kube;
mod preflight;
mod prometheus;
mod promql;
pub mod routes;
mod sampling;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::model::Sli;
use crate::window::Window;

/// Routes that are probes and scrapes rather than load: every server-side figure leaves them out.
const OPS_ROUTES: &str = "/health|/ready|/metrics";

pub use alerts::firing_query;
pub use breakdown::{Breakdown, GroupFigures};
pub use client::ClientSource;
pub use config::{SetupError, SourcesConfig};
pub use kafka::KafkaSource;
pub use kube::KubeSource;
pub use preflight::{PreflightFailed, preflight, require};
pub use prometheus::PrometheusSource;

/// The kinds of source an SLO file can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// A Prometheus server (HTTP API).
    Prometheus,
    /// The load generator's own HDR numbers in a run report.
    Client,
    /// A Kafka cluster, read directly (committed offsets vs high watermarks).
    Kafka,
    /// The Kubernetes API.
    Kube,
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SourceKind::Prometheus => "prometheus",
            SourceKind::Client => "client",
            SourceKind::Kafka => "kafka",
            SourceKind::Kube => "kube",
        })
    }
}

/// What a source found.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Measured {
    /// The value, in the SLI's base unit.
    Exact(f64),
    /// The true value is this or more (e.g. not recovered by the end of the window).
    AtLeast(f64),
    /// Nothing to judge: no series, no samples, no requests.
    NoData,
}

impl Measured {
    /// The number to show, if any.
    pub fn value(self) -> Option<f64> {
        match self {
            Measured::Exact(v) | Measured::AtLeast(v) if !v.is_nan() => Some(v),
            _ => None,
        }
    }
}

/// A measurement and what a person should know about it.
#[derive(Clone, Debug, PartialEq)]
pub struct Reading {
    pub measured: Measured,
    /// Context: the inputs behind a derived value, or why there is no data.
    pub note: Option<String>,
}

impl Reading {
    pub fn exact(value: f64) -> Reading {
        Reading {
            measured: Measured::Exact(value),
            note: None,
        }
    }

    pub fn no_data(why: impl Into<String>) -> Reading {
        Reading {
            measured: Measured::NoData,
            note: Some(why.into()),
        }
    }

    pub fn with_note(mut self, note: impl Into<String>) -> Reading {
        self.note = Some(note.into());
        self
    }
}

/// How a value is obtained, for the verdict: a re-runnable description.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Probe {
    /// The backend and how it is asked, e.g. `prometheus http://...: instant query at 1700000900`.
    pub source: String,
    /// The query itself (PromQL, an API path), when there is one.
    pub query: Option<String>,
}

/// Why a source gave no measurement at all.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct SourceError {
    pub kind: SourceErrorKind,
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceErrorKind {
    /// The backend could not be reached or did not answer in time (exit 3).
    Unreachable,
    /// The backend refused the question, e.g. invalid PromQL (a configuration error, exit 2).
    Rejected,
}

impl fmt::Display for SourceErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SourceErrorKind::Unreachable => "unreachable",
            SourceErrorKind::Rejected => "rejected",
        })
    }
}

impl SourceError {
    pub fn unreachable(message: impl Into<String>) -> SourceError {
        SourceError {
            kind: SourceErrorKind::Unreachable,
            message: message.into(),
        }
    }

    pub fn rejected(message: impl Into<String>) -> SourceError {
        SourceError {
            kind: SourceErrorKind::Rejected,
            message: message.into(),
        }
    }
}

/// A backend that can measure some kinds of SLI.
///
/// `measure` may take as long as the window still runs: live sources sample until its end,
/// history sources wait for it before asking.
pub trait Source: Send + Sync {
    fn kind(&self) -> SourceKind;

    /// What `measure` will ask, for the verdict (no I/O).
    fn describe(&self, sli: &Sli, window: &Window) -> Probe;

    /// The SLI's value over `window`.
    fn measure<'a>(
        &'a self,
        sli: &'a Sli,
        window: &'a Window,
    ) -> BoxFuture<'a, Result<Reading, SourceError>>;
}

/// The connected sources of one check, by kind.
#[derive(Clone, Default)]
pub struct Sources {
    by_kind: BTreeMap<SourceKind, Arc<dyn Source>>,
    /// Sources that could not be set up, with the reason (e.g. no kubeconfig).
    broken: BTreeMap<SourceKind, SourceError>,
}

impl Sources {
    pub fn new() -> Sources {
        Sources::default()
    }

    /// Adds (or replaces) a source.
    pub fn with(mut self, source: impl Source + 'static) -> Sources {
        self.broken.remove(&source.kind());
        self.by_kind.insert(source.kind(), Arc::new(source));
        self
    }

    /// Records that a source could not be set up: its SLOs get this error.
    pub fn with_broken(mut self, kind: SourceKind, error: SourceError) -> Sources {
        self.by_kind.remove(&kind);
        self.broken.insert(kind, error);
        self
    }

    pub fn get(&self, kind: SourceKind) -> Result<&Arc<dyn Source>, Missing<'_>> {
        if let Some(source) = self.by_kind.get(&kind) {
            return Ok(source);
        }
        Err(match self.broken.get(&kind) {
            Some(error) => Missing::Broken(error),
            None => Missing::NotConfigured,
        })
    }
}

/// Why a source is not available.
pub enum Missing<'a> {
    /// Nobody said where it is (e.g. no `--prometheus-url`).
    NotConfigured,
    /// It was configured but could not be set up.
    Broken(&'a SourceError),
}

/// How to point the user at the flag that configures a source.
pub fn configure_hint(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::Prometheus => "pass --prometheus-url URL",
        SourceKind::Client => "pass --run REPORT.json (client SLIs read a run report)",
        SourceKind::Kafka => "pass --kafka BOOTSTRAP",
        SourceKind::Kube => "pass --kube-context CONTEXT or set KUBECONFIG",
    }
}
