//! The live-metrics flags shared by `run`, `drill` and `capacity` (`--metrics-listen`,
//! `--metrics-linger`), and the endpoint's life: opened before any load (a bad address or a
//! port in use is a usage error, exit 2), fed by every run of the command, and shut down
//! gracefully when the command's load is over.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use scenarios::live::{LiveMetrics, LiveSink, MetricsListener};
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
}

/// The live metrics of one command, while they are served.
pub struct Live {
    metrics: Arc<LiveMetrics>,
    stop: CancellationToken,
    server: Option<JoinHandle<()>>,
    linger: Duration,
}

impl LiveArgs {
    /// Opens what the flags ask for; `None` when they ask for nothing. Call inside the runtime,
    /// before any load.
    pub fn start(&self, quiet: bool) -> Result<Option<Live>> {
        let Some(address) = &self.metrics_listen else {
            return Ok(None);
        };
        let listener = MetricsListener::bind(address).map_err(|e| exit::usage(e.to_string()))?;
        if !quiet {
            eprintln!("metrics: http://{}/metrics", listener.local_addr());
        }
        let metrics = Arc::new(LiveMetrics::new());
        let stop = CancellationToken::new();
        let server = listener.serve(metrics.clone(), stop.clone());
        Ok(Some(Live {
            metrics,
            stop,
            server: Some(server),
            linger: self.metrics_linger,
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

    /// Ends the live metrics after the load: lingers (unless the command was interrupted),
    /// then stops the endpoint gracefully.
    pub async fn finish(live: Option<Live>, shutdown: &Shutdown) {
        let Some(mut live) = live else {
            return;
        };
        let token = shutdown.token();
        if !live.linger.is_zero() && !token.is_cancelled() {
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
