//! Who may call what: the auth file, roles, and the layer that enforces them.
//!
//! `--auth-file FILE` names identities ([`file`]), each with roles ([`roles`]) and a
//! bearer token's SHA-256 or a client certificate's name. [`AuthLayer`] sits in front
//! of every gRPC service: health is open (probes), reflection needs `read`, each
//! `baton.v1.Baton` method the role [`roles::access_for`] gives it. Without an auth
//! file nobody is asked (the conductor then listens on loopback, or was started with
//! `--insecure`). The file is re-read when it changes ([`source`]).
//!
//! - [`roles`]: the roles and the method-to-role table (a new RPC gets its line there).
//! - [`file`]: the file's format; tokens compared by hash, in constant time.
//! - [`check`]: [`Authenticator`], [`Caller`], [`Denied`]: one decision for gRPC and HTTP.
//! - [`layer`]: the tower layer, with the audit lines of state-changing calls.
//! - [`cert`]: the names (subject, CN, SANs) of a client certificate.
//! - [`source`]: files re-read on change (also the TLS material).

pub mod cert;
pub mod check;
pub mod file;
pub mod layer;
pub mod roles;
pub mod source;

pub use check::{Authenticator, Caller, Denied};
pub use layer::{AuthLayer, OverrideCheck};
pub use roles::{access_for, Access, Role};
