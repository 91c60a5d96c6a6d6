//! The generated gRPC types of `proto/shakedown/fleet/v1/fleet.proto` (the coordinator/worker
//! contract), kept in one module so the rest of `fleet` reads as plain Rust.

#![allow(clippy::all, missing_docs)]

tonic::include_proto!("shakedown.fleet.v1");
