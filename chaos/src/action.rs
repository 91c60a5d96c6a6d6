//! The action interface: one small implementation per thing an experiment can break
//! (process-kill, broker-failure, faults, pod-kill, ...), so the runner schedules, halts and
//! rolls back without knowing what any of them does — and tests drive it with fakes.

use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::error::ChaosError;
use crate::journal::ActionRecord;

/// What an action's run returns: its journal record, or why it could not be done at all.
pub type ActionFuture<'a> = BoxFuture<'a, Result<ActionRecord, ChaosError>>;

/// One action bound to its target, ready to run.
pub trait Action: Send + Sync {
    /// The kind as written in the file, e.g. `process-kill`.
    fn kind(&self) -> &str;
    /// What it aims at, e.g. `order` or `ecommerce/app=order`.
    fn target(&self) -> String;
    /// Does it. An action that breaks something for a while (faults, brokers down) must undo
    /// it before returning when `cancel` fires (halt, Ctrl-C), so the method can stop early
    /// without leaving the system broken.
    fn run<'a>(&'a self, cancel: &'a CancellationToken) -> ActionFuture<'a>;
}

/// Sleeps for `duration` unless `cancel` fires first; true when the whole time passed.
pub async fn hold(duration: std::time::Duration, cancel: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(duration) => true,
        _ = cancel.cancelled() => false,
    }
}
