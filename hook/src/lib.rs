//! ocinet: Docker's container network models for any OCI runtime, with no daemon.

pub mod activity;
pub mod claims;
pub mod engine;
pub mod error;
pub mod fault;
pub mod firewall;
pub mod gc;
pub mod ipam;
pub mod link;
pub mod link_probe;
pub mod mode;
pub mod naming;
pub mod netns;
pub mod netns_name;
pub mod network;
pub mod nfnetlink;
pub mod nft_table;
pub mod oci;
pub mod ports;
pub mod process;
pub mod publish;
pub mod record;
pub mod reload;
pub mod request;
pub mod store;
pub mod validate;
