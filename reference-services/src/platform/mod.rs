//! What every reference service shares: configuration from the environment, telemetry
//! (JSON logs with W3C trace ids, Prometheus metrics), health and readiness, graceful shutdown,
//! JWT handling, storage, Kafka events with an outbox, gRPC plumbing (with client-side balancing
//! and deadline propagation) and fault injection.
//!
//! Services stay small because all the operational behaviour lives here, done once.

pub mod accounting;
pub mod api;
pub mod balance;
pub mod config;
pub mod deadline;
pub mod events;
pub mod faults;
pub mod grpc;
pub mod http;
pub mod jwt;
pub mod limits;
pub mod metrics;
pub mod outbound;
pub mod outbox;
pub mod process;
pub mod readiness;
pub mod shutdown;
pub mod sockets;
pub mod storage;
pub mod telemetry;
pub mod trace;
