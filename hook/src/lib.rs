//! ocinet: Docker's container network models for any OCI runtime, with no daemon.
//!
//! Layers, each using only the ones below it (see ARCHITECTURE.md):
//! front ends (`oci_hook`; the shim's admin commands) → `engine` (and `gc`, `reload`) →
//! `driver` → resources (`network`, `ipam`, `claims`, `publish`, `record`, `reservation`,
//! `kernel`) → the kernel's sockets (`link`, `firewall`, `netns`, ...) and files (`store`).

// The public surface: what the binaries, the shim, the overlay agent (`vxlan`), the tests and
// the fuzz targets use.
pub mod activity;
pub mod context;
pub mod engine;
pub mod error;
pub mod fault;
pub mod gc;
pub mod names;
pub mod neighbours;
pub mod network;
pub mod oci;
pub mod oci_hook;
pub mod overlay_state;
pub mod ports;
pub mod process;
pub mod publish;
pub mod record;
pub mod reload;
pub mod request;
pub mod resolv_conf;
pub mod resolver_process;
pub mod startup;
pub mod store;
pub mod validate;
pub mod vxlan;

mod background;
mod claims;
mod driver;
mod firewall;
mod helper;
mod ipam;
mod kernel;
mod link;
mod link_probe;
mod mount_ns;
pub mod naming;
mod neigh_table;
mod netconf;
mod netns;
mod netns_name;
mod nfnetlink;
mod nft_table;
mod overlay_agent;
mod ra_guard;
mod raw_netlink;
mod reservation;
mod rtnl_batch;
mod sysctl;
