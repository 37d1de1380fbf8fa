//! The host below the kernel's sockets: network namespaces and their `ip netns` names, a
//! container's mount namespace, sysctls, atomic files and locks in the state root (`store`),
//! processes (boot id, start times, detached children, helpers started on demand and the
//! `supervision` that restarts them), the start of the per-container binaries without Rust's
//! runtime setup, names derived from ids, the crash points of the fault tests, and one HTTP GET
//! to a local daemon's unix socket (`unix_http`: dockerd's API).

pub(crate) mod background;
pub mod fault;
pub(crate) mod helper;
pub mod mount_ns;
pub mod naming;
pub mod netns;
pub(crate) mod netns_name;
pub mod output;
pub mod process;
pub mod startup;
pub mod store;
pub mod supervision;
pub(crate) mod sysctl;
pub(crate) mod unix_http;
