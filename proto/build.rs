//! Generates the `baton.v1` Rust code at build time without a system `protoc`:
//! `protox` (pure Rust) parses the `.proto` files into a descriptor set, which
//! `tonic-prost-build` turns into messages, a client and a server. The encoded
//! descriptor set is also written to `OUT_DIR` for gRPC server reflection.

use std::path::PathBuf;

use prost::Message;

const PROTOS: &[&str] = &["baton/v1/baton.proto", "baton/v1/worker.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let fds = protox::compile(PROTOS, ["."])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("baton_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure().compile_fds(fds)?;
    Ok(())
}
