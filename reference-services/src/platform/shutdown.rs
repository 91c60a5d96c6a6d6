//! Graceful shutdown, done once: a token cancelled by SIGTERM or Ctrl-C that every listener and
//! background task watches, plus a tracker so the process exits only after they finished
//! (in-flight requests drained, the Kafka producer flushed).

use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// Shared shutdown signal and the set of tasks that must finish before exit.
#[derive(Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
    tasks: TaskTracker,
}

impl Shutdown {
    /// A shutdown handle that fires on SIGTERM or SIGINT.
    pub fn on_signals() -> Self {
        let shutdown = Self::default();
        let token = shutdown.token.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutdown signal received; draining");
            token.cancel();
        });
        shutdown
    }

    /// Starts shutdown now (used by tests and by fatal errors).
    pub fn trigger(&self) {
        self.token.cancel();
    }

    pub fn is_triggered(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves when shutdown has started.
    pub async fn wait(&self) {
        self.token.cancelled().await
    }

    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// Runs `task` in the background; [`Shutdown::drain`] waits for it.
    pub fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tasks.spawn(task);
    }

    /// Waits until every spawned task has finished.
    pub async fn drain(&self) {
        self.tasks.close();
        self.tasks.wait().await;
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
