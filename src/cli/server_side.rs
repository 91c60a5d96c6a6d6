//! After a run with Prometheus at hand (the embedded stack's or `--prometheus-url`): the
//! server's latency per route next to the client's per transaction, attached to the report
//! (`slo::sources::routes`). A diagnostic: when Prometheus cannot answer, the run's verdict and
//! report stand without it and a warning says why.

use clap::Args;
use reports::Report;
use scenarios::Scenario;
use slo::sources::PrometheusSource;
use slo::sources::routes::{self, Requested};

/// Which series are the server's.
#[derive(Args, Debug, Clone)]
pub struct ServerSideArgs {
    /// PromQL label matchers selecting the target's own latency series (its
    /// `http_request_duration_seconds` histogram), for the client/server comparison per route.
    #[arg(long, default_value = "service=\"api-gateway\"")]
    pub server_selector: String,
}

/// Asks `prometheus` for the run's window and attaches the comparison to `report`.
pub async fn attach(
    report: &mut Report,
    scenario: &Scenario,
    prometheus: &str,
    args: &ServerSideArgs,
    quiet: bool,
) {
    let requested: Vec<Requested> = scenario
        .request_paths()
        .into_iter()
        .map(|p| Requested {
            transaction: p.transaction,
            method: p.method,
            path: p.path,
        })
        .collect();
    if requested.is_empty() {
        return;
    }
    super::gate::until_scraped(report.ended_at).await;
    let asked = async {
        let source = PrometheusSource::new(prometheus).map_err(|e| e.to_string())?;
        source
            .route_latency(&args.server_selector, report.started_at, report.ended_at)
            .await
            .map_err(|e| e.to_string())
    };
    match asked.await {
        Ok((found, queries)) => {
            let side = routes::compare(
                report,
                &requested,
                &found,
                format!("prometheus {prometheus}, {}", args.server_selector),
                queries,
            );
            report.server_side = Some(side);
        }
        Err(why) => {
            if !quiet {
                eprintln!("warning: no server-side latency per route: {why}");
            }
        }
    }
}
