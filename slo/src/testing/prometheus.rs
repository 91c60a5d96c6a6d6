//! A throw-away Prometheus for tests: backfilled with `promtool` from OpenMetrics text, started
//! on 127.0.0.1 with a free port and its own temporary data directory, stopped by PID.
//!
//! Backfilled data makes query results exact and repeatable, so tests can assert known answers.
//! Servers are spawned from one long-lived thread with a parent-death signal, so even a test
//! binary killed outright takes its Prometheus with it; a server shared by a whole test binary
//! ([`TestPrometheus::share_until_exit`]) is stopped by an exit hook.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long Prometheus may take to open its port and become ready.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running Prometheus.
pub struct TestPrometheus {
    url: String,
    child: Option<Child>,
    dir: Option<TempDir>,
}

impl TestPrometheus {
    /// Backfills `openmetrics` and starts Prometheus on it. `None` (after printing why) when
    /// `prometheus` or `promtool` is not installed, so callers can skip; panics on any other
    /// failure, with the server's log.
    pub fn start(openmetrics: &str) -> Option<TestPrometheus> {
        let (Some(prometheus), Some(promtool)) = (on_path("prometheus"), on_path("promtool"))
        else {
            super::missing_tool(
                "prometheus and promtool",
                "scripts/setup.sh installs them (apt-get install prometheus)",
            );
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("slo-prometheus-")
            .tempdir()
            .expect("temporary directory");
        let data = dir.path().join("data");
        let input = dir.path().join("backfill.om");
        std::fs::write(&input, openmetrics).expect("writing the OpenMetrics file");
        let backfill = Command::new(&promtool)
            .args(["tsdb", "create-blocks-from", "openmetrics"])
            .arg(&input)
            .arg(&data)
            .output()
            .expect("running promtool");
        assert!(
            backfill.status.success(),
            "promtool backfill failed: {}{}",
            String::from_utf8_lossy(&backfill.stdout),
            String::from_utf8_lossy(&backfill.stderr)
        );
        Some(launch(
            &prometheus,
            dir,
            "global:\n  scrape_interval: 15s\n",
            &[],
        ))
    }

    /// Starts Prometheus with no data, the configuration `config` (YAML: scrape jobs, say) and
    /// the extra command-line `flags` (e.g. `--web.enable-remote-write-receiver`). `None`
    /// (after printing why) when `prometheus` is not installed; panics on any other failure.
    pub fn start_configured(config: &str, flags: &[&str]) -> Option<TestPrometheus> {
        let Some(prometheus) = on_path("prometheus") else {
            super::missing_tool(
                "prometheus",
                "scripts/setup.sh installs it (apt-get install prometheus)",
            );
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("slo-prometheus-")
            .tempdir()
            .expect("temporary directory");
        Some(launch(&prometheus, dir, config, flags))
    }

    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Keeps the server for the rest of the test binary (tests in one binary share it) and
    /// stops it by PID when the binary exits.
    pub fn share_until_exit(mut self) -> &'static TestPrometheus {
        let child = self.child.take().expect("running server");
        let dir = self.dir.take().expect("data dir").keep();
        register_exit_stop(child.id() as libc::pid_t, dir);
        // The `Child` handle is dropped without killing: the exit hook owns the process now.
        drop(child);
        Box::leak(Box::new(self))
    }
}

impl Drop for TestPrometheus {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop(child.id() as libc::pid_t);
            let _ = child.wait();
        }
    }
}

/// Starts `prometheus` on 127.0.0.1 (a free port) with its data in `dir/data`, the
/// configuration `config` and the extra `flags`, and waits until it is ready.
fn launch(prometheus: &Path, dir: TempDir, config: &str, flags: &[&str]) -> TestPrometheus {
    let data = dir.path().join("data");
    let config_file = dir.path().join("prometheus.yml");
    std::fs::write(&config_file, config).expect("writing the config");
    let log = dir.path().join("prometheus.log");
    let mut command = Command::new(prometheus);
    command
        .arg(format!("--config.file={}", config_file.display()))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg("--storage.tsdb.retention.time=100y")
        .arg("--web.listen-address=127.0.0.1:0")
        .args(flags)
        .stdin(Stdio::null())
        .stdout(Stdio::from(std::fs::File::create(&log).expect("log file")))
        .stderr(Stdio::from(std::fs::File::create(&log).expect("log file")));
    let child = spawn_with_parent_death_signal(command);
    let mut server = TestPrometheus {
        url: String::new(),
        child: Some(child),
        dir: Some(dir),
    };
    let address = wait_for_address(&log, server.child.as_mut().expect("child"));
    server.url = format!("http://{address}");
    wait_until_ready(&address, &log);
    server
}

fn on_path(binary: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(binary))
            .find(|path| path.is_file())
    })
}

type SpawnJob = Box<dyn FnOnce() + Send>;

/// Spawns `command` from a thread that lives as long as the process, with SIGTERM as the
/// parent-death signal: Linux sends it when the *thread* that forked exits, so forking from a
/// short-lived test thread would kill the server when that test ends.
fn spawn_with_parent_death_signal(mut command: Command) -> Child {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnJob>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (jobs, inbox) = mpsc::channel::<SpawnJob>();
        std::thread::Builder::new()
            .name("test-server-spawner".into())
            .spawn(move || {
                for job in inbox {
                    job();
                }
                // Keep the thread (the servers' parent) alive until the process exits.
                loop {
                    std::thread::park();
                }
            })
            .expect("spawner thread");
        Mutex::new(jobs)
    });
    // SAFETY: the closure only calls prctl, which is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let (reply, answer) = mpsc::channel();
    spawner
        .lock()
        .expect("spawner lock")
        .send(Box::new(move || {
            let _ = reply.send(command.spawn());
        }))
        .expect("spawner thread is alive");
    answer
        .recv()
        .expect("spawner answers")
        .expect("starting prometheus")
}

/// Reads the port Prometheus chose from its log line `msg="Listening on" address=...`.
fn wait_for_address(log: &Path, child: &mut Child) -> String {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(rest) = text.split("msg=\"Listening on\" address=").nth(1) {
            return rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("prometheus exited ({status}) before listening:\n{text}");
        }
        assert!(
            Instant::now() < deadline,
            "prometheus did not report its address:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `/-/ready` until it answers 200.
fn wait_until_ready(address: &str, log: &Path) {
    let deadline = Instant::now() + START_TIMEOUT;
    while http_status(address, "/-/ready") != Some(200) {
        assert!(
            Instant::now() < deadline,
            "prometheus at {address} never became ready:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The status code of a plain HTTP/1.0 GET, without pulling an HTTP client into test support.
fn http_status(address: &str, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(address).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

/// SIGTERM, then up to 10 s for a clean exit, then SIGKILL.
fn stop(pid: libc::pid_t) {
    // SAFETY: plain syscalls on a PID this process started and has not reaped yet.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut status = 0;
        while libc::waitpid(pid, &mut status, libc::WNOHANG) == 0 {
            if Instant::now() > deadline {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

static AT_EXIT: Mutex<Vec<(libc::pid_t, PathBuf)>> = Mutex::new(Vec::new());

fn register_exit_stop(pid: libc::pid_t, dir: PathBuf) {
    static HOOK: OnceLock<()> = OnceLock::new();
    AT_EXIT.lock().expect("exit list").push((pid, dir));
    HOOK.get_or_init(|| {
        // SAFETY: registers a plain `extern "C"` function; it runs once at process exit.
        unsafe {
            libc::atexit(stop_shared_servers);
        }
    });
}

extern "C" fn stop_shared_servers() {
    let servers = match AT_EXIT.lock() {
        Ok(mut list) => std::mem::take(&mut *list),
        Err(_) => return,
    };
    for (pid, dir) in servers {
        stop(pid);
        let _ = std::fs::remove_dir_all(dir);
    }
}
