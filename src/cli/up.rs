//! `shakedown up`: the embedded reference stack in the foreground, with a table of endpoints,
//! until Ctrl-C.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use shop::stack::{PrometheusMode, Stack, StackError, StackOptions};

use super::shutdown::Shutdown;
use super::{
    Exit,
    exit::{Classified, Classify},
};

#[derive(Args, Debug, Clone)]
pub struct StackArgs {
    /// Port of the API gateway on 127.0.0.1 (`up`: 8080; `run`, `drill`: a free port).
    #[arg(long)]
    pub gateway_port: Option<u16>,
    /// Keep data and logs here (default: a temporary directory removed on exit).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Do not start Prometheus even if it is on PATH.
    #[arg(long, conflicts_with_all = ["prometheus_bin", "prometheus"])]
    pub no_prometheus: bool,
    /// Prometheus binary to run (default: `prometheus` from PATH, if any).
    #[arg(long, conflicts_with = "prometheus")]
    pub prometheus_bin: Option<PathBuf>,
    /// Deprecated spelling of --prometheus-bin (one release).
    #[arg(long, hide = true)]
    pub prometheus: Option<PathBuf>,
    /// Number of mock Kafka brokers.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=5))]
    pub brokers: i32,
}

impl StackArgs {
    /// Stack options that start services with this very binary.
    pub fn options(&self, gateway_port: Option<u16>) -> Result<StackOptions> {
        let gateway_port = self.gateway_port.or(gateway_port);
        let executable = std::env::current_exe().context("locating the shakedown binary")?;
        let mut options = StackOptions::new(executable);
        options.data_dir = self.data_dir.clone();
        options.brokers = self.brokers;
        options.gateway_port = gateway_port;
        let binary = super::deprecated::renamed(
            self.prometheus_bin.clone(),
            self.prometheus.clone(),
            "--prometheus",
            "--prometheus-bin",
        );
        options.prometheus = match (&binary, self.no_prometheus) {
            (_, true) => PrometheusMode::Off,
            (Some(path), false) => PrometheusMode::Binary(path.clone()),
            (None, false) => PrometheusMode::Auto,
        };
        Ok(options)
    }

    /// Starts the embedded stack with the gateway on `gateway_port` unless `--gateway-port`.
    ///
    /// A gateway port that is taken is a configuration problem (exit 2), reported at once with
    /// its holder: the user asked for that port (or `up`'s default, 8080) and can pick another.
    /// Every other port of the stack is chosen by the kernel, so it cannot be taken.
    /// The stack's endpoints are written to [`ENDPOINTS_FILE`] in its data dir.
    pub async fn start(&self, gateway_port: Option<u16>) -> Result<Stack> {
        self.start_with_rules(gateway_port, None).await
    }

    /// [`start`](Self::start), with a rule file for the embedded Prometheus (a drill's burn-rate
    /// alerts).
    pub async fn start_with_rules(
        &self,
        gateway_port: Option<u16>,
        prometheus_rules: Option<String>,
    ) -> Result<Stack> {
        let mut options = self.options(gateway_port)?;
        options.prometheus_rules = prometheus_rules;
        let stack = Stack::start(options).await.map_err(|e| {
            let hint = match &e {
                StackError::GatewayPortInUse(_) => {
                    "; stop it or choose another port with --gateway-port"
                }
                _ => "",
            };
            let exit = e.exit();
            // `{:#}` through anyhow: the message with its causes (e.g. the port's holder).
            let message = format!("{:#}{hint}", anyhow::Error::from(e));
            anyhow::Error::from(Classified { exit, message })
        })?;
        if let Err(error) = write_endpoints(&stack) {
            stack.stop().await;
            return Err(error);
        }
        Ok(stack)
    }

    /// The gateway to load: `target` when given, else a freshly started embedded stack's (on a free
    /// port unless `--gateway-port`), which the caller stops when done.
    pub async fn target_or_start(
        &self,
        target: Option<&str>,
        quiet: bool,
    ) -> Result<(Option<Stack>, String)> {
        if let Some(target) = target {
            return Ok((None, target.to_string()));
        }
        if !quiet {
            eprintln!("starting the embedded stack (mock Kafka, 14 services)...");
        }
        let stack = self.start(None).await?;
        let url = stack.gateway_url().to_string();
        Ok((Some(stack), url))
    }
}

#[derive(Args, Debug)]
pub struct UpArgs {
    #[command(flatten)]
    pub stack: StackArgs,
}

pub async fn run(args: UpArgs, quiet: bool, shutdown: &Shutdown) -> Result<Exit> {
    if !quiet {
        eprintln!(
            "starting the embedded stack (mock Kafka, 14 services{})...",
            if args.stack.no_prometheus {
                ""
            } else {
                ", Prometheus if on PATH"
            }
        );
    }
    let stack = args.stack.start(Some(8080)).await?;
    println!("{}", endpoint_table(&stack));
    println!("Press Ctrl-C to stop.");
    shutdown.token().cancelled().await;
    eprintln!("stopping...");
    stack.stop().await;
    Ok(Exit::Pass)
}

/// The file in a stack's data dir that says where everything listens, for scripts (and tests)
/// that drive a stack started by `up`, `run` or `drill --data-dir DIR`.
pub const ENDPOINTS_FILE: &str = "endpoints.json";

/// Writes [`ENDPOINTS_FILE`] into the stack's data dir.
fn write_endpoints(stack: &Stack) -> Result<()> {
    let services: Vec<_> = stack
        .endpoints()
        .iter()
        .map(|e| {
            serde_json::json!({
                "name": e.name,
                "url": e.url,
                "admin_url": e.admin_url,
                "log": e.log,
            })
        })
        .collect();
    let document = serde_json::json!({
        "gateway": stack.gateway_url(),
        "prometheus": stack.prometheus_url(),
        "kafka": stack.kafka().bootstrap_servers(),
        "services": services,
    });
    let path = stack.data_dir().join(ENDPOINTS_FILE);
    std::fs::write(&path, serde_json::to_string_pretty(&document)?)
        .with_context(|| format!("writing {}", path.display()))
}

/// The endpoints of a running stack, as a plain-text table.
pub fn endpoint_table(stack: &Stack) -> String {
    let mut out = format!(
        "{:<18} {:<24} {:<24} {}\n",
        "SERVICE", "URL", "ADMIN (faults)", "LOG"
    );
    for e in stack.endpoints() {
        out.push_str(&format!(
            "{:<18} {:<24} {:<24} {}\n",
            e.name,
            e.url,
            e.admin_url,
            e.log.display()
        ));
    }
    out.push_str(&format!(
        "{:<18} {}\n",
        "kafka (mock)",
        stack.kafka().bootstrap_servers()
    ));
    match stack.prometheus_url() {
        Some(url) => out.push_str(&format!("{:<18} {url}\n", "prometheus")),
        None => out.push_str(&format!(
            "{:<18} not started (no prometheus on PATH)\n",
            "prometheus"
        )),
    }
    out.push_str(&format!(
        "\nGateway: {}   Data: {}",
        stack.gateway_url(),
        stack.data_dir().display()
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        stack: StackArgs,
    }

    fn prometheus(args: &[&str]) -> Result<PrometheusMode, clap::Error> {
        let parsed = Wrapper::try_parse_from(std::iter::once("up").chain(args.iter().copied()))?;
        Ok(parsed.stack.options(None).unwrap().prometheus)
    }

    #[test]
    fn the_prometheus_binary_is_prometheus_bin_and_the_old_spelling_still_works() {
        let binary = PrometheusMode::Binary(PathBuf::from("/opt/prom"));
        assert_eq!(
            prometheus(&["--prometheus-bin", "/opt/prom"]).unwrap(),
            binary
        );
        assert_eq!(prometheus(&["--prometheus", "/opt/prom"]).unwrap(), binary);
        assert_eq!(prometheus(&[]).unwrap(), PrometheusMode::Auto);
        assert_eq!(
            prometheus(&["--no-prometheus"]).unwrap(),
            PrometheusMode::Off
        );
        for both in [
            &["--prometheus-bin", "/a", "--prometheus", "/b"][..],
            &["--no-prometheus", "--prometheus-bin", "/a"],
            &["--no-prometheus", "--prometheus", "/a"],
        ] {
            let error = prometheus(both).unwrap_err();
            assert_eq!(
                error.kind(),
                clap::error::ErrorKind::ArgumentConflict,
                "{both:?}"
            );
        }
    }
}
