//! Running the real `shakedown` binary from a test, the one way every CLI test does it: with an
//! environment that cannot leak into the result (CI=true so a missing tool fails, no SLO source
//! or cluster picked up from the developer's shell), and the small readers of its output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// `shakedown` with a clean environment: `CI=true` (a test that would skip fails, as in CI), no
/// `SHAKEDOWN_PROMETHEUS` / `SHAKEDOWN_KAFKA` from the shell, a kubeconfig that does not exist
/// and no in-cluster service host (never a real cluster by accident), quiet service logs.
pub fn shakedown() -> Command {
    let mut command = Command::new(super::binary());
    command
        .env("CI", "true")
        .env_remove("SHAKEDOWN_PROMETHEUS")
        .env_remove("SHAKEDOWN_KAFKA")
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("RUST_LOG", "warn");
    command
}

/// Runs `shakedown ARGS` to completion.
pub fn run(args: &[&str]) -> Output {
    shakedown().args(args).output().expect("running shakedown")
}

/// The exit code (the process was not killed by a signal).
pub fn code(output: &Output) -> i32 {
    output.status.code().expect("exited with a code")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn stdout(output: &Output) -> String {
    text(&output.stdout)
}

pub fn stderr(output: &Output) -> String {
    text(&output.stderr)
}

/// stdout then stderr, for assertions that do not care which.
pub fn all_output(output: &Output) -> String {
    format!("{}{}", stdout(output), stderr(output))
}

/// A JSON file.
pub fn json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The one run directory under `out` (besides the `latest` link).
pub fn only_run_dir(out: &Path) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap_or_else(|e| panic!("{}: {e}", out.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap() != "latest")
        .collect();
    assert_eq!(
        dirs.len(),
        1,
        "one run directory in {}: {dirs:?}",
        out.display()
    );
    dirs.into_iter().next().unwrap()
}

/// A loopback port nobody listens on (bound, then released).
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Whether a working `prometheus` is on PATH.
pub fn prometheus_installed() -> bool {
    Command::new("prometheus")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A path in the repository, as an argument.
pub fn repo(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(path)
        .display()
        .to_string()
}
