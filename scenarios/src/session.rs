//! Per-run and per-user state that scenario transactions share.
//!
//! Goose transactions are plain functions of a `GooseUser`, so whatever they need — the
//! recorder, the open-model pacer, the signed-in token — travels in the user's session data.
//! A first `on_start` transaction installs a [`UserSession`] holding the shared
//! [`RunContext`]; everything after reads it from there.

use std::sync::Arc;
use std::time::{Duration, Instant};

use goose::prelude::*;

use crate::file::run::UserState;
use crate::pacing::{ArrivalPacer, WAIT_SLICE};
use crate::profile::ThinkTime;
use crate::recorder::{ActiveUser, Recorder};

/// What every user of one run shares.
pub struct RunContext {
    pub recorder: Arc<Recorder>,
    /// Present for open-model runs only.
    pub pacer: Option<Arc<ArrivalPacer>>,
    /// The target's base URL without a trailing slash; request paths are appended to it, so
    /// a target behind a path prefix (`https://host/shop`) keeps its prefix.
    pub base_url: String,
    /// The profile's think time, replacing the scenario's (closed model only).
    pub think_override: Option<ThinkTime>,
}

impl RunContext {
    pub fn new(
        recorder: Arc<Recorder>,
        pacer: Option<Arc<ArrivalPacer>>,
        base_url: String,
        think_override: Option<ThinkTime>,
    ) -> Self {
        Self {
            recorder,
            pacer,
            base_url,
            think_override,
        }
    }
}

/// One Goose user's state.
#[derive(Clone)]
pub struct UserSession {
    pub run: Arc<RunContext>,
    _active: ActiveUser,
    /// Open model: how late the current iteration started (zero in the closed model).
    pub lateness: Duration,
    /// False while an open-model user has no iteration to run (schedule used up or the run
    /// is stopping); the scenario's transactions then do nothing.
    pub iteration_open: bool,
    /// A scenario file's variables and progress for this user.
    pub(crate) file: Option<Box<UserState>>,
}

impl UserSession {
    pub(crate) fn new(run: Arc<RunContext>) -> Self {
        let active = run.recorder.user_started();
        Self {
            _active: active,
            lateness: Duration::ZERO,
            iteration_open: true,
            file: None,
            run,
        }
    }
}

/// The user's session, or a transaction error if `install` has not run.
pub fn session(user: &GooseUser) -> Result<&UserSession, Box<TransactionError>> {
    user.get_session_data::<UserSession>()
        .ok_or_else(|| custom_error("user session not initialised"))
}

/// The user's session for changing it.
pub fn session_mut(user: &mut GooseUser) -> Result<&mut UserSession, Box<TransactionError>> {
    user.get_session_data_mut::<UserSession>()
        .ok_or_else(|| custom_error("user session not initialised"))
}

/// Whether the scenario's transactions should run now (see [`UserSession::iteration_open`]).
pub fn iteration_open(user: &GooseUser) -> bool {
    user.get_session_data::<UserSession>()
        .is_some_and(|s| s.iteration_open)
}

pub fn custom_error(message: impl Into<String>) -> Box<TransactionError> {
    Box::new(TransactionError::Custom(message.into()))
}

/// The `on_start` transaction that gives a user its session; it must run first.
pub fn install(run: Arc<RunContext>) -> Transaction {
    Transaction::new(transaction_fn(move |user| {
        let run = run.clone();
        Box::pin(async move {
            user.set_session_data(UserSession::new(run));
            Ok(())
        })
    }))
    .set_name("session")
}

/// The open-model transaction that starts each iteration: take a ticket, wait for it if it is
/// in the future, and note how late the iteration starts.
pub fn await_arrival() -> Transaction {
    Transaction::new(transaction_fn(|user| {
        Box::pin(async move {
            let pacer = session(user)?.run.pacer.clone();
            let Some(pacer) = pacer else {
                return Ok(());
            };
            let ticket = pacer.take();
            let session = session_mut(user)?;
            session.iteration_open = false;
            let Some(ticket) = ticket else {
                // Nothing left to start: idle until Goose stops the user at the plan's end.
                tokio::time::sleep(WAIT_SLICE).await;
                return Ok(());
            };
            // Lateness is only what the user owed to being busy when the ticket fell due. A
            // user that had to wait starts on time; the timer's own overshoot (~1 ms) is the
            // generator's, not the system's, and must not inflate the corrected latency.
            let lateness = Instant::now().saturating_duration_since(ticket.due);
            loop {
                let now = Instant::now();
                if now >= ticket.due {
                    break;
                }
                if goose::is_killswitch_triggered() {
                    return Ok(());
                }
                tokio::time::sleep((ticket.due - now).min(WAIT_SLICE)).await;
            }
            let session = session_mut(user)?;
            session.run.recorder.iteration_started(lateness);
            session.lateness = lateness;
            session.iteration_open = true;
            Ok(())
        })
    }))
    .set_name("arrival")
}

/// Lets closures be transaction functions: pins down the higher-ranked signature Goose wants.
pub fn transaction_fn<F>(function: F) -> TransactionFunction
where
    F: for<'r> Fn(
            &'r mut GooseUser,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = TransactionResult> + Send + 'r>,
        > + Send
        + Sync
        + 'static,
{
    Arc::new(function)
}
