//! `process-kill`: SIGKILL one service of the embedded stack, as a crash or an OOM kill would,
//! and measure how long until its supervisor has it running and ready again — the local
//! counterpart of a pod kill and its ReplicaSet.

use std::time::{Duration, Instant};

use chrono::Utc;
use futures::FutureExt;
use shop::stack::Stack;
use tokio_util::sync::CancellationToken;

use crate::action::{Action, ActionFuture};
use crate::error::ChaosError;
use crate::journal::{ActionRecord, Outcome};
use crate::model::ProcessKill;

/// How often readiness is polled while waiting for the restart.
const POLL: Duration = Duration::from_millis(50);

pub struct ProcessKillAction<'s> {
    pub stack: &'s Stack,
    pub spec: ProcessKill,
}

impl Action for ProcessKillAction<'_> {
    fn kind(&self) -> &str {
        "process-kill"
    }

    fn target(&self) -> String {
        self.spec.service.0.clone()
    }

    // Cancellation does not cut the wait short: a kill cannot be undone, and the recovery time
    // is what the drill is for (bounded by `recovery_timeout`).
    fn run<'a>(&'a self, _cancel: &'a CancellationToken) -> ActionFuture<'a> {
        async move {
            let service = self.spec.service.0.as_str();
            let supervisor = self.stack.supervisor();
            let started_at = Utc::now();
            let killed_at = Instant::now();
            let pid = self
                .stack
                .kill(service)
                .map_err(|e| ChaosError::Failed(format!("process-kill {service}: {e:#}")))?;
            // Recovered = a new process (another pid) that answers /ready. The supervisor
            // clears both pid and readiness when the old one exits, so a stale "ready" of the
            // killed process cannot count.
            let deadline = killed_at + self.spec.recovery_timeout;
            let (outcome, recovery, detail) = loop {
                let new_pid = supervisor.pid(service).ok().flatten();
                if new_pid.is_some_and(|p| p != pid) && supervisor.is_ready(service) {
                    break (
                        Outcome::Ok,
                        Some(killed_at.elapsed()),
                        Some(format!("restarted as pid {}", new_pid.unwrap_or_default())),
                    );
                }
                if Instant::now() >= deadline {
                    break (
                        Outcome::Failed,
                        None,
                        Some(format!(
                            "not ready again within {}",
                            humantime::format_duration(self.spec.recovery_timeout)
                        )),
                    );
                }
                tokio::time::sleep(POLL).await;
            };
            Ok(ActionRecord {
                action: "process-kill".into(),
                target: service.to_string(),
                started_at,
                ended_at: Some(Utc::now()),
                outcome,
                affected: vec![format!("pid {pid}")],
                recovery,
                detail,
            })
        }
        .boxed()
    }
}
