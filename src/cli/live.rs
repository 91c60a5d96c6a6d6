//! The live-metrics flags shared by `run`, `drill` and `capacity` (`--metrics-listen`,
//! `--metrics-linger`, `--remote-write`, `--remote-write-interval`), and their life: checked
//! and opened before any load (a bad address, a port in use or a bad URL is a usage error,
//! exit 2), fed by every run of the command, and ended when the command's load is over — the
//! endpoint shut down gracefully, the final figures pushed. A failing remote-write receiver
//! never stops the load: it is warned about once, and the tally is printed at the end.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use scenarios::live::{LiveMetrics, LiveSink, MetricsListener, RemoteWrite, RemoteWriter};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::exit;
use super::shutdown::Shutdown;

#[derive(Args, Debug, Clone, Default)]
pub struct LiveArgs {
    /// Serve live metrics (OpenMetrics, `shakedown_*` series) at http://ADDR/metrics while the
    /// load runs, e.g. 127.0.0.1:9464 (port 0: any free port; the address is printed).
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<String>,
    /// Keep serving this long after the load ends, so Prometheus scrapes the final figures
    /// (one scrape interval is enough). Skipped after Ctrl-C.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = humantime::parse_duration)]
    pub metrics_linger: Duration,
    /// Push the live metrics to this Prometheus remote-write endpoint while the load runs,
    /// e.g. http://127.0.0.1:9090/api/v1/write (Prometheus needs
    /// --web.enable-remote-write-receiver). A failing endpoint does not stop the run.
    #[arg(long, value_name = "URL")]
    pub remote_write: Option<String>,
    /// How often to push to --remote-write (the final figures are pushed at the end too).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = humantime::parse_duration)]
    pub remote_write_interval: Duration,
}

/// The live metrics of one command, while they are served.
pub struct Live {
    metrics: Arc<LiveMetrics>,
    stop: CancellationToken,
    server: Option<JoinHandle<()>>,
    linger: Duration,
    writer: Option<(String, RemoteWriter)>,
}

impl LiveArgs {
    /// Opens what the flags ask for; `None` when they ask for nothing. Call inside the runtime,
    /// before any load.
    pub fn start(&self, quiet: bool) -> Result<Option<Live>> {
        if self.metrics_listen.is_none() && self.remote_write.is_none() {
            return Ok(None);
        }
        let remote = self
            .remote_write
            .as_deref()
            .map(|url| RemoteWrite::new(url, self.remote_write_interval))
            .transpose()
            .map_err(|e| exit::usage(e.to_string()))?;
        let listener = self
            .metrics_listen
            .as_deref()
            .map(MetricsListener::bind)
            .transpose()
            .map_err(|e| exit::usage(e.to_string()))?;
        let metrics = Arc::new(LiveMetrics::new());
        let stop = CancellationToken::new();
        let server = listener.map(|listener| {
            if !quiet {
                eprintln!("metrics: http://{}/metrics", listener.local_addr());
            }
            listener.serve(metrics.clone(), stop.clone())
        });
        let writer = remote.map(|remote| {
            if !quiet {
                eprintln!("metrics: remote write to {}", remote.url());
            }
            let url = remote.url().to_string();
            let writer = RemoteWriter::start(remote, metrics.clone(), |warning| {
                eprintln!("warning: {warning}");
            });
            (url, writer)
        });
        Ok(Some(Live {
            metrics,
            stop,
            server,
            linger: self.metrics_linger,
            writer,
        }))
    }
}

/// A command that ends early (an error before or after the load) still closes the endpoint.
impl Drop for Live {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Live {
    /// What the runs feed, if anything is live.
    pub fn sink(live: &Option<Live>) -> Option<Arc<dyn LiveSink>> {
        live.as_ref()
            .map(|live| live.metrics.clone() as Arc<dyn LiveSink>)
    }

    /// The figures themselves, for a coordinator that sets them to its workers' sum.
    pub fn metrics(live: &Option<Live>) -> Option<Arc<LiveMetrics>> {
        live.as_ref().map(|live| live.metrics.clone())
    }

    /// Ends the live metrics after the load: pushes the final figures, lingers (unless the
    /// command was interrupted), then stops the endpoint gracefully.
    pub async fn finish(live: Option<Live>, shutdown: &Shutdown) {
        let Some(mut live) = live else {
            return;
        };
        if let Some((url, writer)) = live.writer.take() {
            let tally = writer.finish().await;
            if tally.failures > 0 {
                eprintln!(
                    "warning: remote write: {} of {} pushes to {url} failed (last: {})",
                    tally.failures,
                    tally.pushes,
                    tally.last_error.as_deref().unwrap_or("unknown")
                );
            }
        }
        let token = shutdown.token();
        if live.server.is_some() && !live.linger.is_zero() && !token.is_cancelled() {
            tokio::select! {
                _ = tokio::time::sleep(live.linger) => {}
                _ = token.cancelled() => {}
            }
        }
        live.stop.cancel();
        if let Some(server) = live.server.take() {
            let _ = server.await;
        }
    }
}
