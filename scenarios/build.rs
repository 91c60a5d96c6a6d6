//! Compiles the coordinator/worker contract in `proto/` with protox (pure Rust), so building needs
//! no `protoc` (as `reference-services/build.rs` does).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let fds = protox::compile(["proto/shakedown/fleet/v1/fleet.proto"], ["proto"])?;
    tonic_prost_build::configure().compile_fds(fds)?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
