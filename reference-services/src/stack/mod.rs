//! The embedded stack: the whole platform on one machine, no Docker. A mock Kafka cluster
//! (3 brokers, topics created), every reference service as a child process of the shakedown
//! binary (`shakedown serve NAME`) with SQLite storage in one data dir, started in dependency
//! order and gated on `/ready`, a supervisor that restarts killed children, and — when a
//! `prometheus` binary is available — a Prometheus scraping every service.
//!
//! It is what `shakedown up` shows and what `shakedown run` tests when no `--target` is given;
//! local chaos acts on it through [`Stack::kill`] and [`Stack::kafka`].
//!
//! The stack binds every service's listeners itself (port 0, or the gateway port asked for) and
//! the children inherit them (`LISTEN_FD`, `ADMIN_FD`): a port is never chosen by one process and
//! bound by another, so stacks started in parallel, or next to anything else binding ports, cannot
//! lose a port in between; and a port asked for that is taken fails the start at once, naming its
//! holder, before anything is started.

mod error;
pub mod kafka;
pub mod prometheus;
pub mod supervisor;

use std::{
    net::SocketAddr,
    os::fd::AsRawFd,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use nix::sys::signal::Signal;

use crate::{
    platform::{jwt::random_secret, sockets},
    services::{self, ServiceSpec},
};
pub use error::StackError;
use kafka::MockKafka;
use supervisor::{ChildSpec, Supervisor, SupervisorError};

/// The embedded stack's per-address sign-in budget (`AUTH_ADDRESS_BURST`): all its load comes
/// from one address.
const EMBEDDED_ADDRESS_BURST: &str = "1000000";
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
    /// Gateway port on 127.0.0.1; `None` lets the kernel pick one. A taken port fails the start
    /// with [`StackError::GatewayPortInUse`].
    pub gateway_port: Option<u16>,
    pub ready_timeout: Duration,
    /// Extra environment for every service (e.g. `FAULT_LATENCY_MS`, `RUST_LOG`).
    pub env: Vec<(String, String)>,
    /// A Prometheus rule file (text) for the embedded Prometheus to evaluate, e.g. the SLO
    /// burn-rate alerts a drill expects.
    pub prometheus_rules: Option<String>,
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
            prometheus_rules: None,
        }
    }
}

/// Where one service of the stack can be reached.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub name: String,
    pub url: String,
    /// Loopback admin API: `/admin/faults`, `/admin/accounting`.
    pub admin_url: String,
    pub log: PathBuf,
    /// The service publishes through an outbox (see [`ServiceSpec::outbox`]).
    pub outbox: bool,
}

/// The listeners of one service, bound by the stack and inherited by every incarnation of it.
struct Listeners {
    spec: ServiceSpec,
    main: Arc<std::net::TcpListener>,
    admin: Arc<std::net::TcpListener>,
    addr: SocketAddr,
    admin_addr: SocketAddr,
}

impl Listeners {
    fn bind(spec: ServiceSpec, gateway_port: Option<u16>) -> Result<Self, StackError> {
        let port = match (spec.name, gateway_port) {
            ("api-gateway", Some(port)) => port,
            _ => 0,
        };
        let loopback = |port| SocketAddr::from(([127, 0, 0, 1], port));
        // Only an asked-for port can be taken (the gateway's): the kernel picks the others.
        let (main, addr) = bind_listener(loopback(port), || match port {
            0 => format!("binding a loopback port for {}", spec.name),
            _ => "the gateway port".to_string(),
        })
        .map_err(|e| match e {
            StackError::Bind {
                source: sockets::BindError::InUse(in_use),
                ..
            } => StackError::GatewayPortInUse(in_use),
            e => e,
        })?;
        let (admin, admin_addr) = bind_listener(loopback(0), || {
            format!("binding a loopback admin port for {}", spec.name)
        })?;
        Ok(Self {
            spec,
            addr,
            admin_addr,
            main: Arc::new(main),
            admin: Arc::new(admin),
        })
    }
}

/// Binds `addr` and reads the address the kernel gave it; `what` names the listener in errors.
fn bind_listener(
    addr: SocketAddr,
    what: impl Fn() -> String,
) -> Result<(std::net::TcpListener, SocketAddr), StackError> {
    let failed = |source| StackError::Bind {
        what: what(),
        source,
    };
    let listener = sockets::bind(addr).map_err(failed)?;
    let bound = listener.local_addr().map_err(|source| {
        failed(sockets::BindError::Socket {
            action: "reading the bound address of",
            addr,
            source,
        })
    })?;
    Ok((listener, bound))
}

/// `create_dir_all`, failing with [`StackError::DataDir`].
fn create_dir(path: &Path) -> Result<(), StackError> {
    std::fs::create_dir_all(path).map_err(|source| StackError::DataDir {
        path: path.to_path_buf(),
        source,
    })
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
    pub async fn start(options: StackOptions) -> Result<Self, StackError> {
        // Bad options fail before anything is created or started.
        let prometheus_binary = Self::prometheus_binary(&options.prometheus)?;
        let (temp, data_dir) = match &options.data_dir {
            Some(dir) => (None, dir.clone()),
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("shakedown-stack-")
                    .tempdir()
                    .map_err(StackError::TempDir)?;
                let path = temp.path().to_path_buf();
                (Some(temp), path)
            }
        };
        let logs = data_dir.join("logs");
        create_dir(&logs)?;
        // First, before anything runs: a taken gateway port is reported at once.
        let endpoints = services::ALL
            .iter()
            .map(|spec| Listeners::bind(*spec, options.gateway_port))
            .collect::<Result<Vec<_>, _>>()?;
        let kafka = MockKafka::start(options.brokers)?;

        let secret = String::from_utf8(random_secret()).expect("hex is UTF-8");
        let mut shared_env: Vec<(String, String)> = vec![
            (
                "KAFKA_BOOTSTRAP_SERVERS".into(),
                kafka.bootstrap_servers().to_string(),
            ),
            ("JWT_SECRET".into(), secret),
            ("DATA_DIR".into(), data_dir.join("db").display().to_string()),
        ];
        for service in &endpoints {
            let var = format!("{}_URL", service.spec.name.to_uppercase().replace('-', "_"));
            shared_env.push((var, format!("http://{}", service.addr)));
        }
        // Every virtual user of a local load test signs in from 127.0.0.1: one client address,
        // whose default sign-in budget (auth's per-address throttle) a checkout run of a few
        // hundred users would spend. The per-account throttle stays; a value set by the caller
        // (environment or options) wins.
        if std::env::var_os("AUTH_ADDRESS_BURST").is_none() {
            shared_env.push(("AUTH_ADDRESS_BURST".into(), EMBEDDED_ADDRESS_BURST.into()));
        }
        shared_env.extend(options.env.iter().cloned());

        let mut supervisor = Supervisor::new();
        let mut table = Vec::new();
        for service in &endpoints {
            let spec = service.spec;
            let url = format!("http://{}", service.addr);
            let log = logs.join(format!("{}.log", spec.name));
            let mut env = shared_env.clone();
            // The descriptor numbers are the parent's own: the child inherits them unchanged.
            // The addresses are informational (logs, `ps e`): the inherited sockets win.
            env.extend([
                ("LISTEN_FD".into(), service.main.as_raw_fd().to_string()),
                ("ADMIN_FD".into(), service.admin.as_raw_fd().to_string()),
                ("LISTEN_ADDR".into(), service.addr.to_string()),
                ("ADMIN_ADDR".into(), service.admin_addr.to_string()),
            ]);
            supervisor.add(
                ChildSpec {
                    name: spec.name.to_string(),
                    program: options.executable.clone(),
                    args: vec!["serve".into(), spec.name.into()],
                    env,
                    log: log.clone(),
                    ready_url: Some(format!("{url}/ready")),
                    inherit: vec![service.main.clone(), service.admin.clone()],
                    announce: None,
                },
                spec.depends_on,
            )?;
            table.push(Endpoint {
                name: spec.name.to_string(),
                url,
                admin_url: format!("http://{}", service.admin_addr),
                log,
                outbox: spec.outbox,
            });
        }

        let with_prometheus = match prometheus_binary {
            Some(binary) => {
                let dir = data_dir.join("prometheus");
                create_dir(&dir)?;
                let targets: Vec<_> = endpoints
                    .iter()
                    .map(|s| (s.spec.name.to_string(), s.addr.to_string()))
                    .collect();
                let config =
                    prometheus::write_config(&dir, &targets, options.prometheus_rules.as_deref())
                        .map_err(|source| StackError::PrometheusConfig {
                        path: prometheus::config_file(&dir),
                        source,
                    })?;
                supervisor.add(
                    ChildSpec {
                        name: "prometheus".into(),
                        program: binary,
                        args: prometheus::args(&config, &dir.join("data"), prometheus::LISTEN),
                        log: logs.join("prometheus.log"),
                        announce: Some(prometheus::announce()),
                        ..ChildSpec::default()
                    },
                    &[],
                )?;
                Some(targets.len())
            }
            None => None,
        };

        let mut stack = Self {
            supervisor,
            kafka,
            endpoints: table,
            prometheus_url: None,
            data_dir,
            _temp: temp,
        };
        if let Err(error) = stack.supervisor.wait_all_ready(options.ready_timeout).await {
            let logs = stack.log_tails(12);
            stack.supervisor.stop().await;
            return Err(StackError::NotReady { error, logs });
        }
        // Known once Prometheus is ready: it announced the port the kernel gave it.
        if let Some(targets) = with_prometheus {
            let addr = stack.supervisor.address("prometheus")?;
            stack.prometheus_url = addr.map(|a| format!("http://{a}"));
            if let Some(url) = &stack.prometheus_url
                && let Err(why) =
                    prometheus::wait_first_scrapes(url, targets, prometheus::FIRST_SCRAPES).await
            {
                tracing::warn!("{why}: the first seconds of a run may have no server-side data");
            }
        }
        Ok(stack)
    }

    fn prometheus_binary(mode: &PrometheusMode) -> Result<Option<PathBuf>, StackError> {
        Ok(match mode {
            PrometheusMode::Off => None,
            PrometheusMode::Auto => prometheus::find_on_path(),
            PrometheusMode::Binary(path) if path.is_file() => Some(path.clone()),
            PrometheusMode::Binary(path) => {
                return Err(StackError::NoPrometheusBinary(path.clone()));
            }
        })
    }

    /// The last lines of the logs of services that are not ready, to explain a failed start.
    fn log_tails(&self, lines: usize) -> String {
        let mut out = String::new();
        let prometheus = self.supervisor.pid("prometheus").is_ok().then(|| {
            (
                "prometheus",
                self.data_dir.join("logs").join("prometheus.log"),
            )
        });
        let logs = self
            .endpoints
            .iter()
            .map(|e| (e.name.as_str(), e.log.clone()))
            .chain(prometheus);
        for (name, log) in logs.filter(|(name, _)| !self.supervisor.is_ready(name)) {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<_> = text.lines().rev().take(lines).collect();
            out.push_str(&format!("--- {name} ({}):\n", log.display()));
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
    pub fn kill(&self, service: &str) -> Result<u32, SupervisorError> {
        self.supervisor.signal(service, Signal::SIGKILL)
    }

    /// Stops every service and Prometheus, then the Kafka cluster.
    pub async fn stop(mut self) {
        self.supervisor.stop().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Options whose start fails before any child runs (the executable does not exist).
    fn options(data_dir: &Path) -> StackOptions {
        let mut options = StackOptions::new(PathBuf::from("/nonexistent/shakedown"));
        options.data_dir = Some(data_dir.to_path_buf());
        options.prometheus = PrometheusMode::Off;
        options
    }

    #[tokio::test]
    async fn a_data_dir_that_cannot_be_created_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, "not a directory").unwrap();
        let error = Stack::start(options(&file.join("stack")))
            .await
            .err()
            .expect("the start fails");
        let logs = file.join("stack").join("logs");
        match &error {
            StackError::DataDir { path, .. } => assert_eq!(path, &logs),
            other => panic!("expected DataDir, got {other:?}"),
        }
        assert_eq!(error.to_string(), format!("creating {}", logs.display()));
    }

    #[tokio::test]
    async fn a_missing_prometheus_binary_fails_before_anything_starts() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("stack");
        let mut options = options(&data);
        options.prometheus = PrometheusMode::Binary(dir.path().join("no-prometheus"));
        let error = Stack::start(options).await.err().expect("the start fails");
        assert!(
            matches!(&error, StackError::NoPrometheusBinary(p) if p.ends_with("no-prometheus")),
            "{error:?}"
        );
        assert!(!data.exists(), "nothing was created");
    }

    #[tokio::test]
    async fn a_taken_gateway_port_is_a_gateway_port_in_use_error_naming_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = held.local_addr().unwrap().port();
        let mut options = options(dir.path());
        options.gateway_port = Some(port);
        let error = Stack::start(options).await.err().expect("the start fails");
        let StackError::GatewayPortInUse(in_use) = &error else {
            panic!("expected GatewayPortInUse, got {error:?}");
        };
        assert_eq!(in_use.addr.port(), port);
        assert_eq!(
            in_use.holder.as_ref().map(|h| h.pid),
            Some(std::process::id())
        );
        let chain = format!("{:#}", anyhow::Error::from(error));
        assert!(
            chain.starts_with(&format!(
                "the gateway port: 127.0.0.1:{port} is in use by pid"
            )),
            "{chain}"
        );
    }
}
