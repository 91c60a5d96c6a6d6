//! The run's watcher: samples active users, drives the progress bar, and stops the run
//! early when the target has died.
//!
//! "Died" means every request of the last few seconds failed to connect: more load would
//! only measure the outage, and the partial report up to that point is what matters.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::progress::Progress;
use crate::recorder::Recorder;

/// How often the watcher looks.
const TICK: Duration = Duration::from_millis(250);

/// How long every request must have failed to connect before the run is stopped.
pub const DEAD_TARGET_WINDOW: Duration = Duration::from_secs(5);

/// Why the watcher stopped the run, if it did.
#[derive(Default)]
pub struct StopReason(OnceLock<String>);

impl StopReason {
    pub fn get(&self) -> Option<&str> {
        self.0.get().map(String::as_str)
    }

    fn set(&self, reason: String) {
        let _ = self.0.set(reason);
    }
}

/// Watches until aborted; stops the run through Goose's killswitch when the target dies or
/// `cancel` fires.
pub async fn watch(
    recorder: Arc<Recorder>,
    progress: Arc<Progress>,
    stop: Arc<StopReason>,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        if cancel.is_cancelled() {
            tick.tick().await;
        } else {
            // Wake at once on cancellation: the load stops within milliseconds of a signal.
            tokio::select! {
                _ = tick.tick() => {}
                _ = cancel.cancelled() => {}
            }
        }
        // Checked on every pass, not once: Goose clears its killswitch while it sets up, so a
        // cancellation that came before that must be applied again.
        if cancel.is_cancelled() && !goose::is_killswitch_triggered() {
            goose::trigger_killswitch(crate::runner::INTERRUPTED);
        }
        recorder.sample_active_users();
        progress.update(&recorder.live());
        if stop.get().is_none() && recorder.all_failed_to_connect(DEAD_TARGET_WINDOW) {
            let reason = format!(
                "target down: every request of the last {} s failed to connect",
                DEAD_TARGET_WINDOW.as_secs()
            );
            tracing::warn!("{reason}; stopping the run early");
            stop.set(reason.clone());
            goose::trigger_killswitch(&reason);
        }
    }
}
