//! Networks: what a network is (its kind, subnets, gateways, an overlay's settings) and the
//! addresses and devices derived from it. The file format and its checks are `file`, where
//! user networks live is `directory`, and the built-in default network is `default`.

mod default;
mod directory;
mod file;
#[cfg(test)]
mod tests;

pub(crate) use default::chosen_default_network;
pub(crate) use directory::NetworkDirectory;
pub use file::FIELDS;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

use crate::kernel::firewall::{FilterDevice, NetworkFilter};

pub const DEFAULT_NETWORK: &str = "ocinet";
pub(crate) const DEFAULT_BRIDGE: &str = "ocinet0";
pub(crate) const DEFAULT_MTU: u32 = 1500;

/// The driver that wires containers to a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DriverKind {
    /// A veth pair into a Linux bridge on this host.
    Bridge,
    /// A bridge on each host holding that host's block of the subnet, joined to the other hosts
    /// by VXLAN; cluster state in etcd.
    Overlay,
    /// No bridge: each container's veth is a point-to-point link, the host routes a /32 to it
    /// and answers for the gateway.
    Routed,
}

/// One subnet of a network and its gateway, of either family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Subnet {
    pub subnet: IpNet,
    pub gateway: IpAddr,
}

/// A network as the engine uses it: its subnets behind one Linux bridge (or, routed, behind the
/// host's routes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Network {
    pub name: String,
    pub driver: DriverKind,
    /// Empty for a routed network.
    pub bridge: String,
    /// One IPv4 subnet for now (the IPv6 issue adds a second family).
    pub subnets: Vec<Subnet>,
    pub masquerade: bool,
    /// The links' MTU. For an overlay, what its agent computed (the file's `mtu`, else the
    /// underlay's minus the VXLAN overhead) replaces it at setup.
    pub mtu: u32,
    /// No way out: no default route, no masquerade, no published ports, and ocinet's forward
    /// chain drops what would leave the bridge for anywhere else.
    pub internal: bool,
    /// Traffic between this network and any other ocinet network is dropped (both ways) unless
    /// it is to a published port through the host's addresses.
    pub isolate: bool,
    /// Containers of the network reach each other; `false` isolates its bridge ports from one
    /// another (the host, the gateway and published ports stay reachable).
    pub icc: bool,
    /// Containers' names resolve on this network (`ocinet-resolver` on its gateway). Default
    /// true except for the built-in default network (as Docker's default bridge).
    pub dns: bool,
    /// The overlay's settings (`driver: overlay` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overlay: Option<Overlay>,
}

/// An overlay network's settings, the same file on every host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Overlay {
    pub etcd: Etcd,
    /// The VXLAN network identifier (24 bits).
    pub vni: u32,
    /// The UDP port of the tunnels.
    pub port: u16,
    /// The prefix length of each host's block of the subnet.
    pub block: u8,
    /// Seconds a host that died keeps its block.
    pub ttl: u32,
    /// This host's underlay address or interface; `None`: the address it reaches etcd from.
    pub underlay: Option<Underlay>,
    /// Peers on one of this host's underlay subnets are routed to directly, without VXLAN.
    pub direct_routing: bool,
    /// The MTU the file asks for; `None`: the underlay's minus the VXLAN overhead.
    pub mtu: Option<u32>,
}

/// How to reach the cluster's etcd.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Etcd {
    pub endpoints: Vec<String>,
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Underlay {
    Address(Ipv4Addr),
    Interface(String),
}

/// The VXLAN port IANA assigned (the kernel's own default is 8472: always set it).
pub(crate) const VXLAN_PORT: u16 = 4789;
/// Bytes VXLAN adds to each packet over IPv4: outer IP, UDP, VXLAN and inner Ethernet headers.
pub const VXLAN_OVERHEAD: u32 = 50;
impl Network {
    /// How the forward chain knows this network's traffic: by its bridge's name, or (routed: no
    /// bridge) by the device group of its host ends.
    pub(crate) fn filter(&self) -> NetworkFilter {
        let device = match self.driver {
            DriverKind::Routed => FilterDevice::Group(self.device_group()),
            DriverKind::Bridge | DriverKind::Overlay => FilterDevice::Bridge(self.bridge.clone()),
        };
        NetworkFilter {
            device,
            tunnel: self.tunnel(),
            direct: self.direct_subnet(),
            isolate: self.isolate,
            internal: self.internal,
            icc: self.icc,
        }
    }

    /// The first subnet: the IPv4 one when there is one (an overlay's and a routed network's
    /// only one).
    pub fn primary(&self) -> &Subnet {
        // `parse` and `default_on` never make a network without one.
        &self.subnets[0]
    }

    /// The IPv6 subnet, if the network has one.
    pub fn ipv6_subnet(&self) -> Option<&Subnet> {
        self.subnets.iter().find(|s| s.subnet.addr().is_ipv6())
    }

    /// The device group of a routed network's host ends, which ocinet's forward chain tells
    /// the network by (it has no bridge to name): its subnet's network address, unique on the
    /// host because networks do not overlap (`check_no_overlap`), never 0 (`parse_subnet`
    /// refuses 0.0.0.0/8), and stable across setups with no state to keep.
    pub(crate) fn device_group(&self) -> u32 {
        device_group(self.primary().subnet)
    }

    /// An overlay's VXLAN device on this host (its bridge's way to the other hosts' blocks);
    /// `None` for other drivers.
    pub(crate) fn tunnel(&self) -> Option<String> {
        self.overlay.as_ref().map(|o| vxlan_name(o.vni))
    }

    /// A directly routed overlay's subnet: its traffic with peers on the underlay's subnets
    /// enters and leaves by the underlay interface, where the forward chain tells it by this
    /// subnet; `None` for other networks.
    pub(crate) fn direct_subnet(&self) -> Option<Ipv4Net> {
        match (&self.overlay, self.primary().subnet) {
            (Some(overlay), IpNet::V4(subnet)) if overlay.direct_routing => Some(subnet),
            _ => None,
        }
    }

    /// An overlay's IPv6 block of the host holding IPv4 block `block` ([`overlay_block6`]);
    /// `None` without an IPv6 subnet.
    pub fn overlay_block6(&self, block: Ipv4Net) -> Option<Ipv6Net> {
        match (self.primary().subnet, self.ipv6_subnet()?.subnet) {
            (IpNet::V4(subnet4), IpNet::V6(subnet6)) => overlay_block6(subnet4, subnet6, block),
            _ => None,
        }
    }
}

/// The VXLAN device of a VNI: one per overlay network on a host.
pub fn vxlan_name(vni: u32) -> String {
    format!("ocx{vni}")
}

/// The IPv6 block of an overlay host whose IPv4 block is `block4` of `subnet4`: `subnet6` split
/// into as many blocks as `subnet4` is, the one of the same index. Derived, not leased: etcd
/// holds the IPv4 blocks only, and every host computes every peer's IPv6 block alike. `None`
/// when `block4` is not in `subnet4` or the IPv6 block would be longer than a /128
/// (`parse_overlay` refuses files whose blocks pass /120).
pub fn overlay_block6(subnet4: Ipv4Net, subnet6: Ipv6Net, block4: Ipv4Net) -> Option<Ipv6Net> {
    if !subnet4.contains(&block4) {
        return None;
    }
    let split = block4.prefix_len() - subnet4.prefix_len();
    let prefix6 = subnet6
        .prefix_len()
        .checked_add(split)
        .filter(|p| *p <= 128)?;
    let index = (u32::from(block4.network()) - u32::from(subnet4.network()))
        .checked_shr(32 - u32::from(block4.prefix_len()))
        .unwrap_or(0);
    let offset = u128::from(index)
        .checked_shl(128 - u32::from(prefix6))
        .unwrap_or(0);
    Ipv6Net::new(
        Ipv6Addr::from(u128::from(subnet6.network()) | offset),
        prefix6,
    )
    .ok()
}

/// See [`Network::device_group`]. An IPv6 subnet folds its /64 prefix into 32 bits.
pub(crate) fn device_group(subnet: IpNet) -> u32 {
    match subnet {
        IpNet::V4(net) => u32::from(net.network()),
        IpNet::V6(net) => {
            let prefix = (u128::from(net.network()) >> 64) as u64;
            ((prefix >> 32) as u32 ^ prefix as u32).max(1)
        }
    }
}

/// The first host address of `subnet` (the default gateway).
pub fn first_host(subnet: IpNet) -> IpAddr {
    match subnet {
        IpNet::V4(net) => IpAddr::V4(Ipv4Addr::from(u32::from(net.network()) + 1)),
        IpNet::V6(net) => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(net.network()) + 1)),
    }
}

/// True for addresses inside `subnet` other than its network address (and, for IPv4, its
/// broadcast address).
pub(crate) fn is_host_address(subnet: IpNet, ip: IpAddr) -> bool {
    let broadcast = matches!(subnet, IpNet::V4(_)) && ip == subnet.broadcast();
    subnet.contains(&ip) && ip != subnet.network() && !broadcast
}
