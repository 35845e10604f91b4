//! # proto: Baton's gRPC wire contract (`baton.v1`)
//!
//! The `.proto` files live in `proto/baton/v1/`; `build.rs` compiles them with
//! `protox` (no system `protoc`) and generates the Rust code at build time.
//!
//! ## Layout
//! - [`pb`]: the generated messages, `baton_client` and `baton_server`; the remote
//!   worker protocol (`worker.proto`): `workers_client`/`workers_server` and the
//!   conductor-to-conductor `relay_client`/`relay_server`.
//! - [`FILE_DESCRIPTOR_SET`]: the encoded descriptors, for server reflection.
//! - [`Client`]: a typed client over a connected channel; [`ClientError`];
//!   [`ClientOptions`]: token, CA and client certificate for a secured conductor.
//!
//! This crate imports nothing else of Baton's: converting to and from the
//! board's types is the conductor's business.

#![warn(missing_docs)]

mod client;
mod client_options;

pub use client::{Bearer, Client, ClientError, ClientOptions, OptionsError};

/// The generated code, kept private so that lint allowances stay here.
#[allow(missing_docs, clippy::all, clippy::pedantic, rust_2018_idioms, unreachable_pub)]
mod generated {
    tonic::include_proto!("baton.v1");
}

/// The `baton.v1` messages and services, as generated from the `.proto` files.
pub mod pb {
    pub use crate::generated::*;
}

/// The encoded `FileDescriptorSet` of every `baton.v1` file, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/baton_descriptor.bin"));

/// The fully qualified name of the job service, as health checks and reflection name it.
pub const SERVICE_NAME: &str = "baton.v1.Baton";

/// The fully qualified name of the worker service (`Attach`, `ListWorkers`).
pub const WORKERS_SERVICE_NAME: &str = "baton.v1.Workers";

/// The fully qualified name of the conductor-to-conductor relay service.
pub const RELAY_SERVICE_NAME: &str = "baton.v1.Relay";

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    #[test]
    fn descriptor_set_describes_the_baton_service() {
        let fds = prost_types::FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).expect("descriptor set decodes");
        let file = fds.file.iter().find(|f| f.package() == "baton.v1").expect("baton.v1 file present");
        let service = file.service.iter().find(|s| s.name() == "Baton").expect("Baton service present");
        let methods: Vec<&str> = service.method.iter().map(|m| m.name()).collect();
        for wanted in ["PostJob", "GetJob", "ListJobs", "WatchJob", "CancelJob", "ListFlows", "ListConductors", "Drain"]
        {
            assert!(methods.contains(&wanted), "missing {wanted} in {methods:?}");
        }
        let watch = service.method.iter().find(|m| m.name() == "WatchJob").expect("WatchJob present");
        assert!(watch.server_streaming(), "WatchJob must stream");
        assert_eq!(format!("{}.{}", file.package(), service.name()), SERVICE_NAME);
    }

    #[test]
    fn descriptor_set_describes_the_worker_protocol() {
        let fds = prost_types::FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).expect("descriptor set decodes");
        let file = fds.file.iter().find(|f| f.name().ends_with("worker.proto")).expect("worker.proto present");
        let workers = file.service.iter().find(|s| s.name() == "Workers").expect("Workers service present");
        let connect = workers.method.iter().find(|m| m.name() == "Attach").expect("Attach present");
        assert!(connect.client_streaming() && connect.server_streaming(), "Attach must stream both ways");
        assert_eq!(format!("{}.{}", file.package(), workers.name()), WORKERS_SERVICE_NAME);
        let relay = file.service.iter().find(|s| s.name() == "Relay").expect("Relay service present");
        assert_eq!(format!("{}.{}", file.package(), relay.name()), RELAY_SERVICE_NAME);
    }
}
