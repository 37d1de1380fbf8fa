//! The kernel side of the overlay on this host: the VXLAN device, and for each other host's
//! block a route through it, a permanent neighbour entry for its VTEP and a permanent FDB
//! entry sending that VTEP's frames to its underlay address; on a dual-stack overlay also a
//! route to its IPv6 block and an IPv6 neighbour entry for its link-local VTEP address.
//! With direct routing, a peer on one of the underlay interface's subnets gets none of these
//! but a route via its underlay address ([`crate::direct`]).

use std::collections::HashMap;

use ipnet::Ipv4Net;
use ocinet::network::Overlay;
use ocinet::overlay::state::{parse_mac, HostBlock, PeerBlock};

use crate::direct;
use crate::error::{AgentError, Result};
use crate::peers::{peer_changes, stray_routes};
use crate::underlay::{self, HostUnderlay};
use crate::vxlan::{self, Peer, Rtnl, VxlanSpec};

pub struct Tunnels {
    rtnl: Rtnl,
    vxlan: String,
    index: u32,
    /// What is programmed, by block.
    programmed: HashMap<Ipv4Net, PeerBlock>,
    /// What an agent before this one programmed (its `peers.json`): removed at the first
    /// reconcile unless still wanted, so a killed agent leaves no neighbour or FDB entry.
    inherited: Vec<PeerBlock>,
    /// Whether peers on the underlay interface's subnets are routed to directly.
    direct_routing: bool,
    underlay: HostUnderlay,
    /// The overlay's IPv4 subnet: the direct routes on the underlay interface to its blocks
    /// are this agent's (another overlay's agent may have its own there).
    subnet: Ipv4Net,
}

impl Tunnels {
    /// Makes sure the VXLAN device of this host's block is up.
    pub fn up(
        overlay: &Overlay,
        host: &HostBlock,
        (underlay, subnet): (&HostUnderlay, Ipv4Net),
        vtep_mac: [u8; 6],
        inherited: Vec<PeerBlock>,
    ) -> Result<Tunnels> {
        let rtnl = Rtnl::open()?;
        let spec = VxlanSpec {
            name: host.vxlan.clone(),
            vni: overlay.vni,
            port: overlay.port,
            local: host.underlay,
            underlay_index: None,
            mac: vtep_mac,
            mtu: host.mtu,
            address: Some((host.block.network(), 32)),
        };
        let index = vxlan::ensure_vxlan(&rtnl, &spec)?;
        Ok(Tunnels {
            rtnl,
            vxlan: host.vxlan.clone(),
            index,
            programmed: HashMap::new(),
            inherited,
            direct_routing: overlay.direct_routing,
            underlay: underlay.clone(),
            subnet,
        })
    }

    /// Programs `wanted` and removes every other peer, including routes an agent before this
    /// one left; with direct routing, the peers on the underlay's subnets are routed to
    /// directly and the others tunnelled, each switched over as that changes.
    pub fn reconcile(&mut self, wanted: &[PeerBlock]) -> Result<Vec<String>> {
        // A kernel problem here is a line in the log, not etcd's fault: the round goes on.
        let mut problems = Vec::new();
        let connected = match self.direct_routing {
            true => underlay::connected_subnets(&self.underlay.interface).unwrap_or_else(|e| {
                problems.push(format!("{e}: every peer goes through the tunnel"));
                Vec::new()
            }),
            false => Vec::new(),
        };
        let (direct, tunnelled) = direct::split_direct(wanted, &connected, self.underlay.address);
        problems.extend(self.reconcile_tunnels(&tunnelled)?);
        match self.reconcile_direct(&direct, true) {
            Ok(more) => problems.extend(more),
            Err(e) => problems.push(e.to_string()),
        }
        Ok(problems)
    }

    /// The direct routes made to match `direct`; the others of this overlay on the underlay
    /// interface (an earlier agent's, or a peer's now tunnelled) removed. The subnet's
    /// unreachable route is there while direct routing is on and the host `staying`.
    fn reconcile_direct(&self, direct: &[PeerBlock], staying: bool) -> Result<Vec<String>> {
        let name = self.underlay.interface.as_str();
        let index = nix::net::if_::if_nametoindex(name).map_err(|e| {
            AgentError::Underlay(format!("underlay interface {name} is gone ({e})"))
        })?;
        direct::set_unreachable(&self.rtnl, self.subnet, self.direct_routing && staying)?;
        let present = direct::present(&self.rtnl, index, self.subnet)?;
        let (remove, add) = direct::route_changes(&present, direct);
        let mut problems = Vec::new();
        for (block, via) in remove {
            if let Err(e) = direct::remove(&self.rtnl, index, block, via) {
                problems.push(e.to_string());
            }
        }
        for (block, via) in add {
            if let Err(e) = direct::add(&self.rtnl, index, block, via) {
                problems.push(e.to_string());
            }
        }
        Ok(problems)
    }

    fn reconcile_tunnels(&mut self, wanted: &[PeerBlock]) -> Result<Vec<String>> {
        let mut problems = Vec::new();
        let changes = peer_changes(
            std::mem::take(&mut self.inherited),
            &self.programmed,
            wanted,
        );
        for peer in changes.remove {
            match self.remove(&peer) {
                Ok(()) => {
                    self.programmed.remove(&peer.block);
                }
                Err(e) => problems.push(e.to_string()),
            }
        }
        for peer in changes.add {
            match self.add(&peer) {
                Ok(()) => {
                    self.programmed.insert(peer.block, peer);
                }
                Err(e) => problems.push(e.to_string()),
            }
        }
        for (block, via) in stray_routes(vxlan::peers(&self.rtnl, self.index)?, wanted) {
            if let Err(e) = vxlan::remove_route(&self.rtnl, self.index, block, via) {
                problems.push(e.to_string());
            }
        }
        Ok(problems)
    }

    fn add(&self, peer: &PeerBlock) -> Result<()> {
        Ok(vxlan::add_peer(&self.rtnl, self.index, &as_peer(peer)?)?)
    }

    fn remove(&self, peer: &PeerBlock) -> Result<()> {
        Ok(vxlan::remove_peer(&self.rtnl, self.index, &as_peer(peer)?)?)
    }

    /// Removes the direct routes, the VXLAN device and the bridge: this host leaves the
    /// overlay.
    pub fn down(self, bridge: &str) -> Result<()> {
        let problems = match self.reconcile_direct(&[], false) {
            Ok(problems) => problems,
            Err(e) => vec![e.to_string()],
        };
        for problem in problems {
            ocinet::stderr_line!("ocinet-agent: {problem}");
        }
        vxlan::delete_vxlan(&self.rtnl, &self.vxlan)?;
        vxlan::delete_link(&self.rtnl, bridge)?;
        Ok(())
    }
}

fn as_peer(peer: &PeerBlock) -> Result<Peer> {
    let vtep_mac = parse_mac(&peer.vtep_mac).ok_or_else(|| {
        crate::error::AgentError::Underlay(format!("bad VTEP MAC {}", peer.vtep_mac))
    })?;
    Ok(Peer {
        block: peer.block,
        vtep_address: peer.block.network(),
        vtep_mac,
        underlay: peer.underlay,
        block6: peer.block6,
    })
}
