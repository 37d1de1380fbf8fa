//! What an overlay network's agent and the hook share in the state root, per network:
//! `<root>/overlay/<network>/`
//! - `block.json`: this host's block, written by the agent once it holds the block and the
//!   VXLAN device is up; the hook leases container addresses from it;
//! - `agent.pid`: the agent's pid and start time (liveness without `kill -0`);
//! - `agent.lock`: held by the agent for its whole life (one agent per network and root);
//! - `peers.json`: the other hosts' blocks as last programmed (for `ocinet-shim networks`);
//! - `agent.log`: the agent's stdout and stderr.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use ipnet::{Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

use crate::context::Context;
use crate::error::Result;
use crate::host::process;
use crate::host::store::{self, StateRoot};
use crate::state::ipam::{LeaseStore, LeaseTxn};

/// This host's share of an overlay network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostBlock {
    /// The block leased in etcd: container addresses come from it.
    pub block: Ipv4Net,
    /// The block's first address, on the bridge: the containers' gateway.
    pub gateway: Ipv4Addr,
    /// A dual-stack overlay's IPv6 block, derived from `block` (`network::overlay_block6`),
    /// and its first address, the containers' IPv6 gateway on the bridge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block6: Option<Ipv6Net>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway6: Option<Ipv6Addr>,
    /// The MTU of the bridge, the VXLAN device and the containers' links.
    pub mtu: u32,
    pub bridge: String,
    pub vxlan: String,
    /// This host's underlay address (the tunnels' source) and VTEP MAC.
    pub underlay: Ipv4Addr,
    pub vtep_mac: String,
}

/// Another host's block, as programmed on this one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerBlock {
    pub block: Ipv4Net,
    /// Its IPv6 block on a dual-stack overlay (derived from `block`, as this host's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block6: Option<Ipv6Net>,
    pub underlay: Ipv4Addr,
    pub vtep_mac: String,
}

/// The agent's identity while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AgentPid {
    pub pid: i32,
    pub start: u64,
}

/// The directory of one overlay network.
#[derive(Debug, Clone)]
pub struct OverlayDir {
    dir: PathBuf,
}

impl OverlayDir {
    /// The network name is validated by the caller (it comes from a loaded network).
    pub fn open(root: &StateRoot, network: &str) -> Result<OverlayDir> {
        Ok(OverlayDir {
            dir: root.subdir(&["overlay", network])?,
        })
    }

    pub fn path(&self) -> &std::path::Path {
        &self.dir
    }

    pub fn block(&self) -> Result<Option<HostBlock>> {
        store::read_json(&self.dir.join("block.json"))
    }

    pub fn write_block(&self, block: &HostBlock) -> Result<()> {
        store::write_json(&self.dir.join("block.json"), block)
    }

    pub fn remove_block(&self) -> Result<()> {
        store::remove_file(&self.dir.join("block.json"))
    }

    pub fn peers(&self) -> Result<Vec<PeerBlock>> {
        Ok(store::read_json(&self.dir.join("peers.json"))?.unwrap_or_default())
    }

    pub fn write_peers(&self, peers: &[PeerBlock]) -> Result<()> {
        store::write_json(&self.dir.join("peers.json"), &peers)
    }

    /// The running agent, if there is one (its pid file names a live process).
    pub(crate) fn live_agent(&self) -> Option<AgentPid> {
        let agent: AgentPid = store::read_json(&self.dir.join("agent.pid")).ok()??;
        process::is_same_process(agent.pid, agent.start).then_some(agent)
    }

    /// Records this process as the agent.
    pub fn write_agent(&self) -> Result<()> {
        let pid = std::process::id() as i32;
        let start = process::start_time(pid).unwrap_or_default();
        store::write_json(&self.dir.join("agent.pid"), &AgentPid { pid, start })
    }

    pub fn remove_agent(&self) -> Result<()> {
        store::remove_file(&self.dir.join("agent.pid"))
    }

    /// Held by the agent for its life: a second agent waits until the first has left.
    pub fn lock_agent(&self) -> Result<std::fs::File> {
        store::lock(&self.dir.join("agent.lock"))
    }

    pub(crate) fn log_path(&self) -> PathBuf {
        self.dir.join("agent.log")
    }
}

/// The network's lease lock, held while it lives: a setup takes it from its plan until its
/// lease is written, so an agent deciding under it that no container needs it cannot miss one
/// being set up.
pub struct NetworkLock {
    _txn: LeaseTxn,
}

/// The network's lease lock, or `None` when a setup holds it now.
pub fn try_lock_network(root: &StateRoot, network: &str) -> Result<Option<NetworkLock>> {
    Ok(LeaseStore::open(root, network)?
        .try_begin()?
        .map(|txn| NetworkLock { _txn: txn }))
}

/// True when a live container on this host is on `network`.
pub fn in_use(ctx: &Context, network: &str) -> Result<bool> {
    let (records, _unreadable) = ctx.records.all()?;
    Ok(records
        .iter()
        .any(|r| r.interfaces.iter().any(|i| i.network == network) && !r.is_stale(&ctx.boot_id)))
}

/// A VTEP MAC derived from the underlay address: stable across restarts of the agent, unique
/// per host, locally administered and unicast.
pub fn vtep_mac(underlay: Ipv4Addr) -> [u8; 6] {
    let [a, b, c, d] = underlay.octets();
    [0x0e, 0x0c, a, b, c, d]
}

/// The IPv6 VTEP address of a VXLAN device with MAC `mac`: its EUI-64 link-local address.
/// The kernel refuses an IPv6 route through an IPv4 gateway, so a dual-stack overlay's IPv6
/// routes go via this address (a link-local gateway needs no `onlink` and no route to it),
/// made permanent in the neighbour table as the IPv4 VTEP address is. Unique per host, as the
/// MAC is, and the same on every host that computes it.
pub fn vtep_address6(mac: [u8; 6]) -> Ipv6Addr {
    let [a, b, c, d, e, f] = mac;
    Ipv6Addr::from([
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        a ^ 0x02,
        b,
        c,
        0xff,
        0xfe,
        d,
        e,
        f,
    ])
}

pub fn format_mac(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Parses `aa:bb:cc:dd:ee:ff`; `None` for anything else, a multicast or the zero address.
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        let part = parts.next().filter(|p| p.len() == 2)?;
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    if parts.next().is_some() || mac[0] & 1 == 1 || mac == [0; 6] {
        return None;
    }
    Some(mac)
}

pub use crate::network::vxlan_name;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs() {
        let mac = vtep_mac(Ipv4Addr::new(192, 0, 2, 11));
        assert_eq!(format_mac(mac), "0e:0c:c0:00:02:0b");
        assert_eq!(parse_mac(&format_mac(mac)), Some(mac));
        for bad in [
            "",
            "01:00:5e:00:00:01",
            "00:00:00:00:00:00",
            "0e:0c:c0:00:02",
            "zz:0c:c0:00:02:0b",
        ] {
            assert_eq!(parse_mac(bad), None, "{bad}");
        }
        assert!(vxlan_name(16_777_215).len() <= 15);
        assert_eq!(
            vtep_address6(mac).to_string(),
            "fe80::c0c:c0ff:fe00:20b",
            "as the kernel would make it from the MAC"
        );
    }
}
