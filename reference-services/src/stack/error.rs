//! Why the embedded stack could not start: the one error type of [`super::Stack`]'s entry points,
//! so that callers (the CLI, chaos drills, tests) can tell a port the user asked for that is taken
//! (a usage problem) from a machine that cannot run the stack (infrastructure).
//!
//! Following the thiserror convention, a variant's message says what failed and its source says
//! why; print the chain (`{:#}` through anyhow) to see both.

use std::path::PathBuf;

use crate::platform::sockets::{BindError, PortInUse};

use super::{kafka::MockKafkaError, supervisor::SupervisorError};

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// No `data_dir` was given and no temporary directory could be made.
    #[error("creating a temporary data dir for the embedded stack")]
    TempDir(#[source] std::io::Error),
    /// The data dir (or a directory in it: logs, Prometheus data) cannot be created.
    #[error("creating {}", .path.display())]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The gateway port asked for (`StackOptions::gateway_port`) is taken; says by whom.
    #[error("the gateway port")]
    GatewayPortInUse(#[source] PortInUse),
    /// A listener the stack binds for a service (`what` names it) could not be bound.
    #[error("{what}")]
    Bind {
        what: String,
        #[source]
        source: BindError,
    },
    /// The mock Kafka cluster did not start or its topics could not be created.
    #[error(transparent)]
    Kafka(#[from] MockKafkaError),
    /// `PrometheusMode::Binary` names a file that does not exist.
    #[error("no Prometheus binary at {}", .0.display())]
    NoPrometheusBinary(PathBuf),
    /// The embedded Prometheus's config file could not be written.
    #[error("writing the Prometheus config {}", .path.display())]
    PrometheusConfig {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A service (or Prometheus) did not start or become ready in time (`error` names which),
    /// followed by the last lines of their logs. The reason is part of the message, not a
    /// source, so that the log lines come after it.
    #[error("the embedded stack did not start: {error}\n{logs}")]
    NotReady {
        error: SupervisorError,
        logs: String,
    },
    /// Supervising a child failed (e.g. a dependency added out of order: a bug in the stack).
    #[error(transparent)]
    Supervisor(#[from] SupervisorError),
}
