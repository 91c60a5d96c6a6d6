//! A small process supervisor, as a ReplicaSet would be: it starts each child once its
//! dependencies are ready, watches `/ready`, restarts a child that died with exponential back-off,
//! and on stop sends SIGTERM (then SIGKILL after a grace period). Children run in their own
//! process group, so a Ctrl-C at the terminal reaches only shakedown, which stops them in order.
//!
//! Every start, readiness change, exit and restart is broadcast as an [`Event`], which is what a
//! chaos journal needs to measure recovery time.
//!
//! A child can inherit listening sockets that the supervisor holds for as long as it supervises
//! the child: every incarnation serves the same socket, so a restart keeps the port and no other
//! process can take it in between. A child that binds a port of its own (Prometheus) can announce
//! it in its log instead.

use std::{
    collections::HashMap,
    net::SocketAddr,
    os::fd::{AsRawFd, RawFd},
    path::PathBuf,
    process::Stdio,
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

use anyhow::Context;
use nix::{sys::signal::Signal, unistd::Pid};
use tokio::{
    process::{Child, Command},
    sync::{broadcast, watch},
    task::JoinSet,
};
use tokio_util::sync::CancellationToken;

/// How long a child may take to exit after SIGTERM before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(10);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// A child that ran this long is considered healthy again: its back-off starts over.
const STABLE_AFTER: Duration = Duration::from_secs(10);

/// A supervisor call that could not be done: the service is unknown, not running or not ready.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("{service} depends on {dependency}, which was not added first")]
    DependencyOrder { service: String, dependency: String },
    /// `waiting` are the children not ready at the deadline.
    #[error("not ready after {timeout:?}: {} (first seen waiting: {first})", .waiting.join(", "))]
    NotReady {
        timeout: Duration,
        waiting: Vec<String>,
        first: String,
    },
    #[error("{service} not ready after {timeout:?}")]
    ServiceNotReady { service: String, timeout: Duration },
    #[error("{0} is no longer supervised")]
    NoLongerSupervised(String),
    #[error("no supervised service named {0:?}")]
    Unknown(String),
    #[error("{0} is not running right now")]
    NotRunning(String),
    #[error("sending {signal} to {service} (pid {pid}): {errno}")]
    Signal {
        signal: Signal,
        service: String,
        pid: u32,
        errno: nix::errno::Errno,
    },
}

type Result<T, E = SupervisorError> = std::result::Result<T, E>;

/// What to run for one service.
#[derive(Clone, Debug, Default)]
pub struct ChildSpec {
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// stdout and stderr are appended here (restarts keep earlier output).
    pub log: PathBuf,
    /// Polled until it answers 200; `None` means ready as soon as started (or, with
    /// `announce`, once the announced address answers).
    pub ready_url: Option<String>,
    /// Listening sockets the child inherits under their own descriptor numbers (which `env`
    /// should tell it). Held open here across restarts: while a killed child is down, the kernel
    /// queues new connections in the socket's backlog, and the next incarnation accepts them;
    /// requests that were in flight in the killed process still fail, as they would with a pod.
    pub inherit: Vec<Arc<std::net::TcpListener>>,
    /// For a child that picks its own port and logs it.
    pub announce: Option<Announce>,
}

/// How a child that binds a port of its own choosing (port 0) says where it listens.
#[derive(Clone, Debug)]
pub struct Announce {
    /// The text right before `host:port` in the child's log, e.g. `msg="Listening on" address=`.
    pub marker: String,
    /// Readiness path on the announced address, e.g. `/-/ready`.
    pub ready_path: String,
    /// The argument, by prefix (e.g. `--web.listen-address=`), that restarts get with the first
    /// announced address, so that the child keeps its port and its URL across restarts.
    pub pin_arg: Option<String>,
}

/// Something that happened to a child.
#[derive(Clone, Debug, PartialEq)]
pub enum EventKind {
    Started {
        pid: u32,
    },
    Ready,
    Exited {
        code: Option<i32>,
        signal: Option<i32>,
    },
    Restarting {
        attempt: u32,
        delay_ms: u64,
    },
}

#[derive(Clone, Debug)]
pub struct Event {
    pub service: String,
    pub at: SystemTime,
    pub kind: EventKind,
}

struct ChildState {
    pid: Mutex<Option<u32>>,
    /// What the child announced (see [`Announce`]).
    address: Mutex<Option<SocketAddr>>,
    ready: watch::Sender<bool>,
    restarts: std::sync::atomic::AtomicU32,
}

/// The supervised children.
pub struct Supervisor {
    children: HashMap<String, Arc<ChildState>>,
    events: broadcast::Sender<Event>,
    stopping: CancellationToken,
    monitors: JoinSet<()>,
    http: reqwest::Client,
}

impl Default for Supervisor {
    fn default() -> Self {
        Self::new()
    }
}

impl Supervisor {
    pub fn new() -> Self {
        Self {
            children: HashMap::new(),
            events: broadcast::channel(1024).0,
            stopping: CancellationToken::new(),
            monitors: JoinSet::new(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .build()
                .expect("building an HTTP client"),
        }
    }

    /// Events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Supervises `spec`, started once every service in `after` is ready.
    pub fn add(&mut self, spec: ChildSpec, after: &[&str]) -> Result<()> {
        let deps = after
            .iter()
            .map(|d| {
                self.children
                    .get(*d)
                    .map(|c| c.ready.subscribe())
                    .ok_or_else(|| SupervisorError::DependencyOrder {
                        service: spec.name.clone(),
                        dependency: d.to_string(),
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        let state = Arc::new(ChildState {
            pid: Mutex::new(None),
            address: Mutex::new(None),
            ready: watch::channel(false).0,
            restarts: 0.into(),
        });
        self.children.insert(spec.name.clone(), state.clone());
        let monitor = Monitor {
            spec,
            state,
            deps,
            events: self.events.clone(),
            stopping: self.stopping.clone(),
            http: self.http.clone(),
        };
        self.monitors.spawn(monitor.run());
        Ok(())
    }

    /// Waits until every child is ready; on timeout names those that are not.
    pub async fn wait_all_ready(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        for (name, state) in &self.children {
            let mut rx = state.ready.subscribe();
            let left = deadline.saturating_duration_since(Instant::now());
            if tokio::time::timeout(left, rx.wait_for(|r| *r))
                .await
                .is_err()
            {
                let waiting: Vec<_> = self
                    .children
                    .iter()
                    .filter(|(_, s)| !*s.ready.borrow())
                    .map(|(n, _)| n.clone())
                    .collect();
                return Err(SupervisorError::NotReady {
                    timeout,
                    waiting,
                    first: name.clone(),
                });
            }
        }
        Ok(())
    }

    /// Waits until `service` is ready.
    pub async fn wait_ready(&self, service: &str, timeout: Duration) -> Result<()> {
        let mut rx = self.state(service)?.ready.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|r| *r))
            .await
            .map_err(|_| SupervisorError::ServiceNotReady {
                service: service.to_string(),
                timeout,
            })?
            .map_err(|_| SupervisorError::NoLongerSupervised(service.to_string()))?;
        Ok(())
    }

    pub fn is_ready(&self, service: &str) -> bool {
        self.state(service)
            .map(|s| *s.ready.borrow())
            .unwrap_or(false)
    }

    /// Current pid of `service`, if it is running.
    pub fn pid(&self, service: &str) -> Result<Option<u32>> {
        Ok(*self.state(service)?.pid.lock().expect("pid lock"))
    }

    /// The address `service` announced in its log (see [`Announce`]), once it has.
    pub fn address(&self, service: &str) -> Result<Option<SocketAddr>> {
        Ok(*self.state(service)?.address.lock().expect("address lock"))
    }

    /// How many times `service` was restarted.
    pub fn restarts(&self, service: &str) -> Result<u32> {
        Ok(self
            .state(service)?
            .restarts
            .load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Sends `signal` to the running process of `service` (SIGKILL for a process-kill drill).
    pub fn signal(&self, service: &str, signal: Signal) -> Result<u32> {
        let pid = self
            .pid(service)?
            .ok_or_else(|| SupervisorError::NotRunning(service.to_string()))?;
        nix::sys::signal::kill(Pid::from_raw(pid as i32), signal).map_err(|errno| {
            SupervisorError::Signal {
                signal,
                service: service.to_string(),
                pid,
                errno,
            }
        })?;
        Ok(pid)
    }

    /// Stops every child (SIGTERM, then SIGKILL after [`STOP_GRACE`]) and waits for them.
    pub async fn stop(&mut self) {
        self.stopping.cancel();
        while self.monitors.join_next().await.is_some() {}
    }

    fn state(&self, service: &str) -> Result<&Arc<ChildState>> {
        self.children
            .get(service)
            .ok_or_else(|| SupervisorError::Unknown(service.to_string()))
    }
}

struct Monitor {
    spec: ChildSpec,
    state: Arc<ChildState>,
    deps: Vec<watch::Receiver<bool>>,
    events: broadcast::Sender<Event>,
    stopping: CancellationToken,
    http: reqwest::Client,
}

impl Monitor {
    fn emit(&self, kind: EventKind) {
        let _ = self.events.send(Event {
            service: self.spec.name.clone(),
            at: SystemTime::now(),
            kind,
        });
    }

    async fn run(mut self) {
        for dep in &mut self.deps {
            tokio::select! {
                _ = self.stopping.cancelled() => return,
                _ = dep.wait_for(|r| *r) => {}
            }
        }
        let mut attempt = 0u32;
        loop {
            let started = Instant::now();
            match self.spawn() {
                Ok((child, log_offset)) => self.watch(child, log_offset).await,
                Err(e) => {
                    tracing::error!(service = %self.spec.name, error = %format!("{e:#}"), "start failed")
                }
            }
            if self.stopping.is_cancelled() {
                return;
            }
            if started.elapsed() > STABLE_AFTER {
                attempt = 0;
            }
            let delay = FIRST_BACKOFF
                .saturating_mul(1 << attempt.min(10))
                .min(MAX_BACKOFF);
            attempt += 1;
            self.state
                .restarts
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.emit(EventKind::Restarting {
                attempt,
                delay_ms: delay.as_millis() as u64,
            });
            tokio::select! {
                _ = self.stopping.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// Starts one incarnation; also returns where its output starts in the log.
    fn spawn(&self) -> anyhow::Result<(Child, u64)> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.spec.log)
            .with_context(|| format!("opening log {}", self.spec.log.display()))?;
        let log_offset = log.metadata().map(|m| m.len()).unwrap_or(0);
        let mut command = Command::new(&self.spec.program);
        command
            .args(self.args())
            .envs(self.spec.env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .kill_on_drop(true);
        // SAFETY: prctl is async-signal-safe; it makes the child die with its supervisor instead
        // of lingering on its ports when shakedown itself is killed.
        unsafe {
            command.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
                    .map_err(|e| std::io::Error::from_raw_os_error(e as i32))
            });
        }
        if !self.spec.inherit.is_empty() {
            let fds: Vec<RawFd> = self.spec.inherit.iter().map(|l| l.as_raw_fd()).collect();
            // SAFETY: runs in the forked child only, where it clears close-on-exec on exactly
            // these descriptors (the parent's keep it, so concurrent spawns inherit nothing);
            // fcntl is async-signal-safe and nothing allocates.
            unsafe {
                command.pre_exec(move || crate::platform::sockets::inherit_in_child(&fds));
            }
        }
        let child = command.spawn().with_context(|| {
            format!(
                "starting {} ({})",
                self.spec.name,
                self.spec.program.display()
            )
        })?;
        let pid = child.id().unwrap_or_default();
        *self.state.pid.lock().expect("pid lock") = Some(pid);
        self.emit(EventKind::Started { pid });
        Ok((child, log_offset))
    }

    /// The arguments, with the announced address pinned once there is one.
    fn args(&self) -> Vec<String> {
        let pinned = *self.state.address.lock().expect("address lock");
        let prefix = self.spec.announce.as_ref().and_then(|a| a.pin_arg.as_ref());
        match (prefix, pinned) {
            (Some(prefix), Some(addr)) => self
                .spec
                .args
                .iter()
                .map(|a| match a.starts_with(prefix.as_str()) {
                    true => format!("{prefix}{addr}"),
                    false => a.clone(),
                })
                .collect(),
            _ => self.spec.args.clone(),
        }
    }

    /// Follows one incarnation of the child until it exits (or until stop).
    async fn watch(&self, mut child: Child, log_offset: u64) {
        let incarnation = CancellationToken::new();
        let poller = self.poll_ready(incarnation.clone(), log_offset);
        let status = tokio::select! {
            status = child.wait() => status,
            _ = self.stopping.cancelled() => {
                if let Some(pid) = child.id() {
                    let _ = nix::sys::signal::kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
                }
                match tokio::time::timeout(STOP_GRACE, child.wait()).await {
                    Ok(status) => status,
                    Err(_) => {
                        tracing::warn!(service = %self.spec.name, "did not stop in time; killing");
                        let _ = child.kill().await;
                        child.wait().await
                    }
                }
            }
        };
        incarnation.cancel();
        let _ = poller.await;
        *self.state.pid.lock().expect("pid lock") = None;
        self.state.ready.send_replace(false);
        use std::os::unix::process::ExitStatusExt;
        let (code, signal) = match &status {
            Ok(s) => (s.code(), s.signal()),
            Err(_) => (None, None),
        };
        if !self.stopping.is_cancelled() {
            tracing::warn!(service = %self.spec.name, ?code, ?signal, "exited; restarting");
        }
        self.emit(EventKind::Exited { code, signal });
    }

    fn poll_ready(
        &self,
        incarnation: CancellationToken,
        log_offset: u64,
    ) -> tokio::task::JoinHandle<()> {
        let http = self.http.clone();
        let mut url = self.spec.ready_url.clone();
        let ready = self.state.ready.clone();
        let events = self.events.clone();
        let service = self.spec.name.clone();
        let announce = self.spec.announce.clone();
        let state = self.state.clone();
        let log = self.spec.log.clone();
        tokio::spawn(async move {
            if let Some(announce) = announce {
                let addr = loop {
                    if let Some(addr) = announced(&log, log_offset, &announce.marker) {
                        break addr;
                    }
                    tokio::select! {
                        _ = incarnation.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                    }
                };
                *state.address.lock().expect("address lock") = Some(addr);
                url = Some(format!("http://{addr}{}", announce.ready_path));
            }
            // Poll fast until ready; then slowly, only to notice the service going unready.
            let mut period = Duration::ZERO;
            loop {
                tokio::select! {
                    _ = incarnation.cancelled() => return,
                    _ = tokio::time::sleep(period) => {}
                }
                let ok = match &url {
                    None => true,
                    Some(url) => http
                        .get(url)
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success()),
                };
                if ok != *ready.borrow() {
                    ready.send_replace(ok);
                    if ok {
                        let _ = events.send(Event {
                            service: service.clone(),
                            at: SystemTime::now(),
                            kind: EventKind::Ready,
                        });
                    }
                }
                period = Duration::from_millis(if ok { 500 } else { 50 });
            }
        })
    }
}

/// The address after the first `marker` in `log` from `offset` on, if it is there yet.
fn announced(log: &std::path::Path, offset: u64, marker: &str) -> Option<SocketAddr> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(log).ok()?;
    file.seek(SeekFrom::Start(offset)).ok()?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    let (_, rest) = text.split_once(marker)?;
    let token = rest.split_whitespace().next()?.trim_matches('"');
    token.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unknown_services_and_dependencies_are_typed_errors() {
        let mut supervisor = Supervisor::new();
        let spec = ChildSpec {
            name: "order".into(),
            program: "/nonexistent/program".into(),
            ..ChildSpec::default()
        };
        let error = supervisor.add(spec, &["product"]).unwrap_err();
        assert!(
            matches!(&error, SupervisorError::DependencyOrder { service, dependency }
                if service == "order" && dependency == "product"),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            "order depends on product, which was not added first"
        );
        let error = supervisor.signal("audit", Signal::SIGKILL).unwrap_err();
        assert!(
            matches!(&error, SupervisorError::Unknown(s) if s == "audit"),
            "{error:?}"
        );
        assert_eq!(error.to_string(), r#"no supervised service named "audit""#);
    }

    #[test]
    fn the_announced_address_is_read_from_this_incarnation_only() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("p.log");
        let marker = r#"msg="Listening on" address="#;
        let first = "ts=1 level=info msg=\"Listening on\" address=127.0.0.1:40001\n";
        std::fs::write(&log, first).unwrap();
        assert_eq!(
            announced(&log, 0, marker),
            Some("127.0.0.1:40001".parse().unwrap())
        );
        let offset = first.len() as u64;
        assert_eq!(announced(&log, offset, marker), None);
        let second = "ts=2 msg=\"Start listening for connections\" address=127.0.0.1:0\nts=3 msg=\"Listening on\" address=127.0.0.1:40002 more=1\n";
        std::fs::write(&log, format!("{first}{second}")).unwrap();
        assert_eq!(
            announced(&log, offset, marker),
            Some("127.0.0.1:40002".parse().unwrap())
        );
    }
}
