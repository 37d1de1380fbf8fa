//! The kernel side of wiring behind one narrow trait: links, addresses, routes, forwarding,
//! the firewall and namespace names. Drivers and the engine only speak to `Kernel`, so unit
//! tests run them without root against a recording fake, and every request still goes out on
//! the plain sockets of `link`, `netconf` and `firewall` in production (`system`).

use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net};

use crate::error::Result;
use crate::host::netns::NetnsRef;
use crate::kernel::firewall::{DnatElement, NetworkFilter};
use crate::netlink::rtnl::link::{Addressing, RoutedEnd};
use crate::netlink::rtnl::neigh_table::{Limits, Table};
#[cfg(test)]
pub(crate) mod fake;
pub(crate) mod firewall;
mod ra_guard;
mod system;

pub(crate) use system::SystemKernel;

/// A bridge to make sure of.
pub(crate) struct BridgeSpec<'a> {
    pub name: &'a str,
    pub network: &'a str,
    pub mtu: u32,
    /// The gateway addresses the bridge holds, with their prefix lengths.
    pub gateways: &'a [(IpAddr, u8)],
    /// Allow loopback sources on the bridge: 127.0.0.1:<port> from the host is DNATed out of it.
    pub route_localnet: bool,
}

/// A veth pair from a bridge into a container's namespace.
pub(crate) struct VethSpec<'a> {
    pub host_name: &'a str,
    pub bridge: &'a BridgeSpec<'a>,
    pub bridge_index: u32,
    pub peer_name: &'a str,
    pub peer_mac: Option<[u8; 6]>,
}

/// A routed network's veth pair: no bridge; the host end answers for the gateway and routes a
/// /32 to the container.
pub(crate) struct RoutedVethSpec<'a> {
    pub host_name: &'a str,
    pub mtu: u32,
    /// Each subnet of the network (one per family) with its gateway.
    pub subnets: &'a [(IpNet, IpAddr)],
    /// The host end's MAC, which the container knows as its gateway's.
    pub gateway_mac: [u8; 6],
    pub peer_name: &'a str,
    pub peer_mac: [u8; 6],
    /// The container's addresses (one per family).
    pub addresses: &'a [IpAddr],
    pub route_localnet: bool,
    pub group: u32,
}

impl RoutedVethSpec<'_> {
    fn host_end(&self) -> RoutedEnd<'_> {
        RoutedEnd {
            name: self.host_name,
            mac: self.gateway_mac,
            mtu: self.mtu,
            subnets: self.subnets,
            route_localnet: self.route_localnet,
            group: self.group,
        }
    }
}

/// What drivers and the engine ask of the kernel. Every removal accepts that its object is
/// already gone (teardown is idempotent).
pub(crate) trait Kernel {
    /// Every IPv4 destination in the host's routing tables.
    fn host_ipv4_routes(&mut self) -> Result<Vec<Ipv4Net>>;
    /// True when `netns` is the namespace the engine runs in (the host's).
    fn is_host_netns(&mut self, netns: &NetnsRef) -> Result<bool>;
    /// True when both name the same namespace.
    fn same_netns(&mut self, a: &NetnsRef, b: &NetnsRef) -> Result<bool>;
    /// Makes sure the bridge exists, is up and holds its gateways; returns its index.
    fn ensure_bridge(&mut self, bridge: &BridgeSpec<'_>) -> Result<u32>;
    fn create_veth(&mut self, veth: &VethSpec<'_>, netns: &NetnsRef) -> Result<()>;
    fn set_hairpin(&mut self, port: &str) -> Result<()>;
    /// Isolates a bridge port from the bridge's other isolated ports (`icc: false`).
    fn set_port_isolated(&mut self, port: &str) -> Result<()>;
    /// Makes sure of the routed network's gateway on the host, and creates the pair.
    fn create_routed_veth(&mut self, veth: &RoutedVethSpec<'_>, netns: &NetnsRef) -> Result<()>;
    /// The host's /32 route and permanent neighbour entry to the container, through its veth.
    fn route_to_container(&mut self, veth: &RoutedVethSpec<'_>) -> Result<()>;
    /// `lo` up and, when given, the interface's addresses, link and default route.
    fn configure_container(
        &mut self,
        netns: &NetnsRef,
        iface: Option<&Addressing<'_>>,
    ) -> Result<()>;
    fn ensure_ipv4_forwarding(&mut self) -> Result<()>;
    /// Turns IPv6 forwarding on if it is off, first giving links with a router-advertised
    /// default route `accept_ra` 2 (see `ra_guard`); returns those links' names.
    fn ensure_ipv6_forwarding(&mut self) -> Result<Vec<String>>;
    /// Adds masquerade subnets and DNAT elements in one atomic batch; true when the table was
    /// missing and had to be made (every live container's elements are then to be restored).
    // Provided, and unused by the bridge driver now: kept for drivers that wire no bridge.
    #[allow(dead_code)]
    fn firewall_add(&mut self, subnets: &[IpNet], elements: &[DnatElement]) -> Result<bool> {
        self.firewall_add_networks(&[], subnets, elements)
    }
    /// As `firewall_add`, with the networks' bridges for the forward chain (isolation,
    /// internal networks) in the same batch.
    fn firewall_add_networks(
        &mut self,
        networks: &[NetworkFilter],
        subnets: &[IpNet],
        elements: &[DnatElement],
    ) -> Result<bool>;
    fn firewall_remove(&mut self, elements: &[DnatElement]) -> Result<()>;
    /// Removes a deleted network's bridge from the forward chain's sets and its masquerade
    /// subnets; ones already gone are fine.
    fn firewall_remove_networks(
        &mut self,
        networks: &[NetworkFilter],
        subnets: &[IpNet],
    ) -> Result<()>;
    fn delete_link(&mut self, name: &str) -> Result<()>;
    fn bind_netns_name(&mut self, netns: &NetnsRef, name: &str) -> Result<()>;
    fn unbind_netns_name(&mut self, name: &str) -> Result<()>;
    /// True when the host has a link named `name`.
    fn host_link_exists(&mut self, name: &str) -> Result<bool>;
    /// The addresses of link `name` in `netns`; `None` when it has no such link.
    fn link_addresses(&mut self, netns: &NetnsRef, name: &str)
        -> Result<Option<Vec<(IpAddr, u8)>>>;
    /// The host's IPv4 neighbour table limits, asked in `netns`.
    fn neighbour_limits(&mut self, netns: &NetnsRef, table: Table) -> Result<Limits>;
    /// Sets them; false when this namespace may not (only the initial one may).
    fn set_neighbour_limits(&mut self, table: Table, limits: &Limits) -> Result<bool>;
}
