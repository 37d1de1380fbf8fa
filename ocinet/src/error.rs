//! One error type for the engine. Every message is one line that names what is wrong and, where
//! the user can act, how to fix it: runtimes show a failing hook's stderr to the user verbatim.

use std::io;
use std::net::IpAddr;
use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("usage: {0}")]
    Usage(String),

    #[error("invalid container state on stdin: {0}; the runtime must pass the OCI state JSON")]
    State(String),

    #[error("cannot load bundle config {path}: {reason}; check the state's \"bundle\" path")]
    Bundle { path: PathBuf, reason: String },

    #[error("invalid annotation {key}={value:?}: {reason}")]
    Annotation {
        key: &'static str,
        value: String,
        reason: String,
    },

    #[error("unknown network {name:?}: define it in {path} or use the default network \"ocinet\"")]
    UnknownNetwork { name: String, path: PathBuf },

    #[error("invalid network definition {path}: {reason}")]
    NetworkConfig { path: PathBuf, reason: String },

    #[error("network {network} ({subnet}) has no free address: delete a container on it or give it a larger subnet")]
    Exhausted { network: String, subnet: String },

    #[error("address {ip} is already leased to container {holder} on network {network}: request another io.ocinet.ip (io.ocinet.ip6) or delete that container")]
    AddressTaken {
        ip: IpAddr,
        holder: String,
        network: String,
    },

    #[error("address {ip} cannot be leased on network {network}: it has no {family} subnet; remove {annotation} or add an {family} subnet to the network")]
    NoSubnetOfFamily {
        ip: IpAddr,
        network: String,
        family: &'static str,
        annotation: &'static str,
    },

    #[error("address {ip} cannot be leased on network {network} ({subnet}): request a host address inside the subnet that is not the gateway, network or broadcast address")]
    AddressOutside {
        ip: IpAddr,
        network: String,
        subnet: String,
    },

    #[error("bridge {bridge} of network {network} is full: a Linux bridge takes at most 1023 ports; put further containers on another network (io.ocinet.network=bridge:NAME)")]
    BridgeFull { bridge: String, network: String },

    #[error("host port {spec} is already published by container {holder}: pick another host port or delete that container")]
    PortTaken { spec: String, holder: String },

    #[error("{0}")]
    Namespace(String),

    #[error("network {network} is internal: it publishes no ports; remove io.ocinet.ports or join another network")]
    InternalPorts { network: String },

    #[error("container {0} is not running: start it (with ocinet) before joining its network")]
    NotRunning(String),

    #[error("teardown of container {id} is incomplete ({problems}); its record is kept: fix the cause, then run `ocinet-shim gc`")]
    Teardown { id: String, problems: String },

    #[error("container {id} is already wired by ocinet for the running process {pid}: container ids must be unique among runtimes sharing the state root {root}")]
    Duplicate { id: String, pid: i32, root: PathBuf },

    #[error("{id} is already wired in the network namespace {netns}: tear it down first")]
    Attached { id: String, netns: PathBuf },

    #[error("container {0} has no attachment made by ocinet")]
    NotAttached(String),

    #[error("container {id} is not as it was wired: {what}")]
    Drift { id: String, what: String },

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },

    #[error("corrupt state file {path}: {reason}; remove it if no container uses it")]
    Corrupt { path: PathBuf, reason: String },

    #[error("name {name} is already held on network {network} by container {holder}: give another io.ocinet.name or io.ocinet.aliases, or delete that container")]
    NameTaken {
        name: String,
        network: String,
        holder: String,
    },

    #[error("{0}")]
    Resolver(String),

    #[error("{0}")]
    Overlay(String),

    #[error("netlink: {0}")]
    Netlink(String),

    #[error("nftables: {0}")]
    Firewall(String),
}

impl Error {
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// Attaches a description of what was being done to an `io::Error`.
pub trait IoContext<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::io(what(), e))
    }
}
