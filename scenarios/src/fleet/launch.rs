//! Where the workers come from. A [`Launcher`] starts N workers that will join the coordinator
//! at a URL, tells whether one died before joining, and cleans up at the end: [`Local`] spawns
//! `shakedown worker` processes on this machine; [`Manual`] leaves starting them to the operator
//! (other machines, containers) and only says how; `k8s::Kube` runs them as a Kubernetes
//! Indexed Job.

use std::future::Future;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use super::error::FleetError;

pub trait Launcher: Send {
    /// Starts `workers` workers that join the coordinator at `url` for the run `run_id`.
    fn launch(
        &mut self,
        url: &str,
        workers: u32,
        run_id: &str,
    ) -> impl Future<Output = Result<(), FleetError>> + Send;
    /// A worker that is gone before the run started, described; `None` while all live (or when
    /// the launcher cannot know).
    fn exited(&mut self) -> Option<String>;
    /// Waits a little for the workers to end by themselves, then ends the rest.
    fn finish(&mut self) -> impl Future<Output = ()> + Send;
}

/// Worker processes of this binary on this machine (`--on local`).
pub struct Local {
    program: PathBuf,
    /// Workers also write their own reports under `<this>/<run id>/workers/` (`shakedown
    /// worker --out`), next to the run's report.
    reports: Option<PathBuf>,
    children: Vec<Child>,
}

impl Local {
    /// `program` is the shakedown binary (`std::env::current_exe()` in the CLI).
    pub fn new(program: PathBuf, reports: Option<PathBuf>) -> Self {
        Self {
            program,
            reports,
            children: Vec::new(),
        }
    }
}

/// How long workers may take to end on their own once the run is over.
const GRACE: Duration = Duration::from_secs(10);

impl Launcher for Local {
    async fn launch(&mut self, url: &str, workers: u32, run_id: &str) -> Result<(), FleetError> {
        for index in 0..workers {
            let mut command = Command::new(&self.program);
            command
                .args(["worker", "--quiet", "--coordinator", url])
                .args(["--name", &format!("local-{index}")])
                .args(["--index", &index.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .kill_on_drop(true);
            if let Some(reports) = &self.reports {
                command
                    .arg("--out")
                    .arg(reports.join(run_id).join("workers"));
            }
            let child = command
                .spawn()
                .map_err(|source| FleetError::Spawn { index, source })?;
            self.children.push(child);
        }
        Ok(())
    }

    fn exited(&mut self) -> Option<String> {
        self.children.iter_mut().find_map(|child| {
            let pid = child.id();
            match child.try_wait() {
                Ok(Some(status)) => Some(format!(
                    "local worker process{} exited ({status})",
                    pid.map_or(String::new(), |p| format!(" {p}"))
                )),
                _ => None,
            }
        })
    }

    async fn finish(&mut self) {
        for child in &mut self.children {
            if tokio::time::timeout(GRACE, child.wait()).await.is_err() {
                let _ = child.kill().await;
            }
        }
    }
}

/// Workers the operator starts (`--on manual`): the coordinator prints the command.
pub struct Manual;

impl Launcher for Manual {
    async fn launch(&mut self, url: &str, workers: u32, _run_id: &str) -> Result<(), FleetError> {
        eprintln!(
            "waiting for {workers} workers: start each with `shakedown worker --coordinator {url}`"
        );
        Ok(())
    }

    fn exited(&mut self) -> Option<String> {
        None
    }

    async fn finish(&mut self) {}
}
