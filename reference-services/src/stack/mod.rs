//! The embedded stack: the whole platform on one machine, no Docker. A mock Kafka cluster
//! (3 brokers, topics created), every reference service as a child process of the shakedown
//! binary (`shakedown serve NAME`) with SQLite storage in one data dir, started in dependency
//! order and gated on `/ready`, a supervisor that restarts killed children, and — when a
//! `prometheus` binary is available — a Prometheus scraping every service.
//!
//! It is what `shakedown up` shows and what `shakedown run` tests when no `--target` is given;
//! local chaos acts on it through [`Stack::kill`] and [`Stack::kafka`].

pub mod kafka;
pub mod prometheus;
pub mod supervisor;

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, Result, bail};
use nix::sys::signal::Signal;

use crate::{
    platform::{config::free_port, jwt::random_secret},
    services::{self, ServiceSpec},
};
use kafka::MockKafka;
use supervisor::{ChildSpec, Supervisor};

/// Whether to run a Prometheus next to the services.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum PrometheusMode {
    /// When `prometheus` is on `PATH`.
    #[default]
    Auto,
    Off,
    /// This binary, and fail if it cannot start.
    Binary(PathBuf),
}

/// How to start the stack.
#[derive(Clone, Debug)]
pub struct StackOptions {
    /// A binary that runs a service with `serve NAME` (the shakedown binary itself).
    pub executable: PathBuf,
    /// Where data and logs go; `None` uses a temporary directory removed on stop.
    pub data_dir: Option<PathBuf>,
    pub prometheus: PrometheusMode,
    pub brokers: i32,
    /// Gateway port; `None` picks a free one.
    pub gateway_port: Option<u16>,
    pub ready_timeout: Duration,
    /// Extra environment for every service (e.g. `FAULT_LATENCY_MS`, `RUST_LOG`).
    pub env: Vec<(String, String)>,
}

impl StackOptions {
    /// Defaults that run services with `executable serve NAME`.
    pub fn new(executable: PathBuf) -> Self {
        Self {
            executable,
            data_dir: None,
            prometheus: PrometheusMode::Auto,
            brokers: 3,
            gateway_port: None,
            ready_timeout: Duration::from_secs(60),
            env: Vec::new(),
        }
    }
}

/// Where one service of the stack can be reached.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub name: String,
    pub url: String,
    pub admin_url: String,
    pub log: PathBuf,
}

/// A running embedded stack.
pub struct Stack {
    supervisor: Supervisor,
    kafka: MockKafka,
    endpoints: Vec<Endpoint>,
    prometheus_url: Option<String>,
    data_dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl Stack {
    /// Starts everything and waits until every service is ready.
    pub async fn start(options: StackOptions) -> Result<Self> {
        let (temp, data_dir) = match &options.data_dir {
            Some(dir) => (None, dir.clone()),
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("shakedown-stack-")
                    .tempdir()?;
                let path = temp.path().to_path_buf();
                (Some(temp), path)
            }
        };
        let logs = data_dir.join("logs");
        std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
        let kafka = MockKafka::start(options.brokers)?;

        let endpoints: Vec<(ServiceSpec, u16, u16)> = services::ALL
            .iter()
            .map(|spec| {
                let port = match (spec.name, options.gateway_port) {
                    ("api-gateway", Some(port)) => port,
                    _ => free_port(),
                };
                (*spec, port, free_port())
            })
            .collect();
        if let Some(port) = options.gateway_port {
            std::net::TcpListener::bind(("127.0.0.1", port)).with_context(|| {
                format!("gateway port {port} is in use: stop what uses it or pick another port")
            })?;
        }

        let secret = String::from_utf8(random_secret()).expect("hex is UTF-8");
        let mut shared_env: Vec<(String, String)> = vec![
            (
                "KAFKA_BOOTSTRAP_SERVERS".into(),
                kafka.bootstrap_servers().to_string(),
            ),
            ("JWT_SECRET".into(), secret),
            ("DATA_DIR".into(), data_dir.join("db").display().to_string()),
        ];
        for (spec, port, _) in &endpoints {
            let var = format!("{}_URL", spec.name.to_uppercase().replace('-', "_"));
            shared_env.push((var, format!("http://127.0.0.1:{port}")));
        }
        shared_env.extend(options.env.iter().cloned());

        let mut supervisor = Supervisor::new();
        let mut table = Vec::new();
        for (spec, port, admin_port) in &endpoints {
            let url = format!("http://127.0.0.1:{port}");
            let log = logs.join(format!("{}.log", spec.name));
            let mut env = shared_env.clone();
            env.push(("LISTEN_ADDR".into(), format!("127.0.0.1:{port}")));
            env.push(("ADMIN_ADDR".into(), format!("127.0.0.1:{admin_port}")));
            supervisor.add(
                ChildSpec {
                    name: spec.name.to_string(),
                    program: options.executable.clone(),
                    args: vec!["serve".into(), spec.name.into()],
                    env,
                    log: log.clone(),
                    ready_url: Some(format!("{url}/ready")),
                },
                spec.depends_on,
            )?;
            table.push(Endpoint {
                name: spec.name.to_string(),
                url,
                admin_url: format!("http://127.0.0.1:{admin_port}"),
                log,
            });
        }

        let prometheus_url = match Self::prometheus_binary(&options.prometheus)? {
            Some(binary) => {
                let dir = data_dir.join("prometheus");
                std::fs::create_dir_all(&dir)?;
                let targets: Vec<_> = endpoints
                    .iter()
                    .map(|(s, port, _)| (s.name.to_string(), format!("127.0.0.1:{port}")))
                    .collect();
                let config = prometheus::write_config(&dir, &targets)?;
                let listen = format!("127.0.0.1:{}", free_port());
                supervisor.add(
                    ChildSpec {
                        name: "prometheus".into(),
                        program: binary,
                        args: prometheus::args(&config, &dir.join("data"), &listen),
                        env: Vec::new(),
                        log: logs.join("prometheus.log"),
                        ready_url: Some(prometheus::ready_url(&listen)),
                    },
                    &[],
                )?;
                Some(format!("http://{listen}"))
            }
            None => None,
        };

        let mut stack = Self {
            supervisor,
            kafka,
            endpoints: table,
            prometheus_url,
            data_dir,
            _temp: temp,
        };
        if let Err(e) = stack.supervisor.wait_all_ready(options.ready_timeout).await {
            let hints = stack.log_tails(12);
            stack.supervisor.stop().await;
            bail!("the embedded stack did not start: {e:#}\n{hints}");
        }
        Ok(stack)
    }

    fn prometheus_binary(mode: &PrometheusMode) -> Result<Option<PathBuf>> {
        Ok(match mode {
            PrometheusMode::Off => None,
            PrometheusMode::Auto => prometheus::find_on_path(),
            PrometheusMode::Binary(path) if path.is_file() => Some(path.clone()),
            PrometheusMode::Binary(path) => bail!("no Prometheus binary at {}", path.display()),
        })
    }

    /// The last lines of the logs of services that are not ready, to explain a failed start.
    fn log_tails(&self, lines: usize) -> String {
        let mut out = String::new();
        for e in self
            .endpoints
            .iter()
            .filter(|e| !self.supervisor.is_ready(&e.name))
        {
            let text = std::fs::read_to_string(&e.log).unwrap_or_default();
            let tail: Vec<_> = text.lines().rev().take(lines).collect();
            out.push_str(&format!("--- {} ({}):\n", e.name, e.log.display()));
            for line in tail.into_iter().rev() {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    pub fn gateway_url(&self) -> &str {
        &self
            .endpoint("api-gateway")
            .expect("the gateway is part of the stack")
            .url
    }

    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    pub fn endpoint(&self, service: &str) -> Option<&Endpoint> {
        self.endpoints.iter().find(|e| e.name == service)
    }

    pub fn prometheus_url(&self) -> Option<&str> {
        self.prometheus_url.as_deref()
    }

    pub fn kafka(&self) -> &MockKafka {
        &self.kafka
    }

    pub fn supervisor(&self) -> &Supervisor {
        &self.supervisor
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// SIGKILLs the running process of `service`; the supervisor restarts it.
    pub fn kill(&self, service: &str) -> Result<u32> {
        self.supervisor.signal(service, Signal::SIGKILL)
    }

    /// Stops every service and Prometheus, then the Kafka cluster.
    pub async fn stop(mut self) {
        self.supervisor.stop().await;
    }
}
