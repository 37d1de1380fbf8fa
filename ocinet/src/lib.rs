//! ocinet: Docker's container network models for any OCI runtime, with no daemon.
//!
//! One folder per layer, each using only the ones below it (ARCHITECTURE.md has the rules and
//! their exceptions): `engine` → `driver` → the resources (`network`, `ports`, `state`, `dns`,
//! `overlay`) → `kernel` (the seam the unit tests replace) → `netlink` (the kernel's sockets)
//! and `host` (namespaces, files, processes). `context`, `error`, `validate`, `request` and
//! `oci` are shared.

pub mod context;
pub mod dns;
pub mod driver;
pub mod engine;
pub mod error;
pub mod host;
pub mod kernel;
pub mod netlink;
pub mod network;
pub mod oci;
pub mod overlay;
pub mod ports;
pub mod request;
pub mod state;
pub mod validate;
