//! Generated gRPC types and stubs for the contracts in `proto/shop/v1`.

#![allow(clippy::all, missing_docs)]

tonic::include_proto!("shop.v1");
