//! Signals, handled once for the whole process: SIGINT (a terminal's Ctrl-C reaches the whole
//! process group, so it often arrives twice), SIGTERM (CI cancellation, pod termination) and
//! SIGHUP all mean "stop the load, run every rollback, write the partial report, stop the
//! embedded stack, exit with the documented code".
//!
//! shakedown owns the process's one signal handler (the `ctrlc` crate allows exactly one):
//! installed before Goose starts, it makes Goose's own handler — which exits the process on a
//! second Ctrl-C, skipping rollbacks — fail to install. Every command that runs for a while
//! takes [`Shutdown::token`] and stops when it is cancelled.
//!
//! A later signal never abandons rollbacks silently: the second one prints what is still in
//! force and how to undo it; only a third one, at least [`FORCE_AFTER`] after the first (a
//! process-group Ctrl-C delivers two at once), exits at once — after printing the same list.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::Exit;

/// Signals closer than this to the first one are the same Ctrl-C delivered twice.
pub const FORCE_AFTER: Duration = Duration::from_secs(1);

/// The process's stop request.
#[derive(Clone)]
pub struct Shutdown {
    token: CancellationToken,
}

impl Shutdown {
    /// Installs the process's signal handler. Call once, before any load starts; a second call
    /// (or a handler someone else installed first) is an error.
    pub fn install() -> anyhow::Result<Shutdown> {
        let token = CancellationToken::new();
        let state = Arc::new(State {
            token: token.clone(),
            count: AtomicU32::new(0),
            first: Mutex::new(None),
        });
        ctrlc::set_handler(move || state.on_signal())
            .map_err(|e| anyhow::anyhow!("installing the signal handler: {e}"))?;
        Ok(Shutdown { token })
    }

    /// Cancelled by the first signal.
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }
}

struct State {
    token: CancellationToken,
    count: AtomicU32,
    first: Mutex<Option<Instant>>,
}

/// What one signal asks for.
#[derive(Debug, PartialEq, Eq)]
enum Response {
    /// The first: stop everything gracefully.
    Stop,
    /// The first one again, delivered twice (process and process group).
    Duplicate,
    /// A later one: keep stopping, say what is in force.
    Remind,
    /// The third: give up waiting.
    Exit,
}

impl State {
    fn on_signal(&self) {
        match self.respond(Instant::now()) {
            Response::Stop => eprintln!(
                "signal received: stopping the load and the experiment; rollbacks still run and the partial report is written"
            ),
            Response::Duplicate => {}
            Response::Remind => eprintln!(
                "still stopping (rollbacks run, the report is written); send the signal once more to exit at once.{}",
                in_force_text()
            ),
            Response::Exit => {
                eprintln!(
                    "exiting at once, without waiting for rollbacks.{}",
                    in_force_text()
                );
                std::process::exit(Exit::Failed as i32);
            }
        }
    }

    fn respond(&self, now: Instant) -> Response {
        let first = *self
            .first
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(now);
        if !self.token.is_cancelled() {
            self.token.cancel();
            self.count.store(1, Ordering::SeqCst);
            return Response::Stop;
        }
        if now.duration_since(first) < FORCE_AFTER {
            return Response::Duplicate;
        }
        match self.count.fetch_add(1, Ordering::SeqCst) + 1 {
            ..=2 => Response::Remind,
            _ => Response::Exit,
        }
    }
}

/// What chaos actions left in force, with how to undo each, as lines to print.
fn in_force_text() -> String {
    let entries = chaos::in_force::snapshot();
    if entries.is_empty() {
        return "\nnothing injected is in force.".to_string();
    }
    let mut text = String::from("\nstill in force (undo by hand if shakedown is stopped):");
    for entry in entries {
        text.push_str(&format!(
            "\n  - {} (since {}): {}",
            entry.what,
            entry
                .since
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            entry.undo
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> State {
        State {
            token: CancellationToken::new(),
            count: AtomicU32::new(0),
            first: Mutex::new(None),
        }
    }

    #[test]
    fn a_doubled_ctrl_c_stops_once_and_never_exits() {
        let state = state();
        let t0 = Instant::now();
        assert_eq!(state.respond(t0), Response::Stop);
        assert!(state.token.is_cancelled());
        // The process-group copy, and a burst of them, within the same second.
        for ms in [1, 5, 400, 900] {
            assert_eq!(
                state.respond(t0 + Duration::from_millis(ms)),
                Response::Duplicate
            );
        }
    }

    #[test]
    fn later_signals_remind_then_the_third_exits() {
        let state = state();
        let t0 = Instant::now();
        assert_eq!(state.respond(t0), Response::Stop);
        assert_eq!(state.respond(t0 + FORCE_AFTER * 2), Response::Remind);
        assert_eq!(state.respond(t0 + FORCE_AFTER * 3), Response::Exit);
    }

    #[test]
    fn the_reminder_names_what_is_in_force_and_how_to_undo_it() {
        let _fault = chaos::in_force::enter(
            "faults {\"latency_ms\":300} on order",
            "curl -X DELETE http://127.0.0.1:9/admin/faults",
        );
        let text = in_force_text();
        assert!(text.contains("on order"), "{text}");
        assert!(
            text.contains("curl -X DELETE http://127.0.0.1:9/admin/faults"),
            "{text}"
        );
    }
}
