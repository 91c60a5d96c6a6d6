//! The client source: the load generator's own HDR histograms and counts from a run report.
//!
//! This is what users of the system saw, including the network and the gateway; it needs no
//! server at all. Latencies come from the histogram corrected for coordinated omission when
//! the run has one (open model), because that is what a user arriving on schedule saw.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use reports::{LatencyHistogram, Report};

use super::{Probe, Reading, Source, SourceError, SourceKind};
use crate::model::{ClientMeasure, ClientSli, Sli};
use crate::window::Window;

/// A run report's numbers.
pub struct ClientSource {
    report: Arc<Report>,
    /// Where the report came from (a path), for the verdict.
    origin: String,
}

/// The numbers of the whole run or of one transaction.
struct Figures<'a> {
    requests: u64,
    errors: u64,
    histogram: &'a LatencyHistogram,
    corrected: Option<&'a LatencyHistogram>,
}

impl ClientSource {
    pub fn new(report: Arc<Report>, origin: impl Into<String>) -> ClientSource {
        ClientSource {
            report,
            origin: origin.into(),
        }
    }

    fn figures(&self, sli: &ClientSli) -> Result<Figures<'_>, String> {
        let Some(name) = &sli.transaction else {
            let totals = &self.report.totals;
            return Ok(Figures {
                requests: totals.requests,
                errors: totals.errors,
                histogram: &totals.histogram,
                corrected: totals.corrected_histogram.as_ref(),
            });
        };
        self.report
            .transactions
            .iter()
            .find(|t| &t.name == name)
            .map(|t| Figures {
                requests: t.requests,
                errors: t.errors,
                histogram: &t.histogram,
                corrected: t.corrected_histogram.as_ref(),
            })
            .ok_or_else(|| {
                let known: Vec<&str> = self
                    .report
                    .transactions
                    .iter()
                    .map(|t| t.name.as_str())
                    .collect();
                format!(
                    "the run has no transaction `{name}` (it has: {})",
                    known.join(", ")
                )
            })
    }

    fn read(&self, sli: &ClientSli) -> Reading {
        let figures = match self.figures(sli) {
            Ok(f) => f,
            Err(why) => return Reading::no_data(why),
        };
        if figures.requests == 0 {
            return Reading::no_data("no requests were recorded");
        }
        match (sli.measure, sli.quantile) {
            (ClientMeasure::Latency, Some(q)) => {
                let histogram = figures.corrected.unwrap_or(figures.histogram);
                match histogram.quantile_ms(q.0) {
                    Some(ms) => Reading::exact(ms / 1000.0)
                        .with_note(format!("{} requests", figures.requests)),
                    None => Reading::no_data("the latency histogram is empty"),
                }
            }
            (ClientMeasure::Latency, None) => Reading::no_data("no quantile given"),
            (ClientMeasure::ErrorRate, _) => {
                Reading::exact(figures.errors as f64 / figures.requests as f64).with_note(format!(
                    "{} of {} requests failed",
                    figures.errors, figures.requests
                ))
            }
        }
    }
}

impl Source for ClientSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Client
    }

    fn describe(&self, sli: &Sli, _window: &Window) -> Probe {
        let what = match sli {
            Sli::Client(c) => {
                let scope = c
                    .transaction
                    .as_ref()
                    .map_or("all transactions".to_string(), |t| {
                        format!("transaction {t}")
                    });
                match (c.measure, c.quantile) {
                    (ClientMeasure::Latency, Some(q)) => {
                        let corrected = if self.report.totals.corrected_histogram.is_some() {
                            "corrected "
                        } else {
                            ""
                        };
                        format!("{scope}: {q} of the {corrected}HDR latency histogram")
                    }
                    _ => format!("{scope}: errors / requests"),
                }
            }
            other => format!("{} SLIs are not in run reports", other.kind_name()),
        };
        Probe {
            source: format!(
                "client: run {} ({}), {}..{}",
                self.report.run_id,
                self.origin,
                self.report.started_at.to_rfc3339(),
                self.report.ended_at.to_rfc3339()
            ),
            query: Some(what),
        }
    }

    fn measure<'a>(
        &'a self,
        sli: &'a Sli,
        _window: &'a Window,
    ) -> BoxFuture<'a, Result<Reading, SourceError>> {
        let reading = match sli {
            Sli::Client(c) => Ok(self.read(c)),
            other => Err(SourceError::rejected(format!(
                "the client source cannot measure a `{}` SLI",
                other.kind_name()
            ))),
        };
        futures::future::ready(reading).boxed()
    }
}
