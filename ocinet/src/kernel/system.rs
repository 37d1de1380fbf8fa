//! The kernel as it is: [`Kernel`] over rtnetlink and nf_tables sockets.

use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net};

use super::ra_guard;
use super::*;
use crate::error::Result;
use crate::host::netns::{Netns, NetnsRef};
use crate::host::{netns_name, sysctl};
use crate::kernel::firewall::{DnatElement, Firewall, NetworkFilter};
use crate::netlink::rtnl::link::{self, Addressing, BridgeRef, Rtnl, VethPeer};
use crate::netlink::rtnl::neigh_table::{self, Limits, Table};
use crate::netlink::rtnl::netconf;

/// The real kernel: one rtnetlink socket per namespace and one nftables session, each opened
/// at its first use and kept for the rest of the setup or teardown. The firewall session is
/// closed last, when this is dropped: a teardown's veth deletion and the kernel's freeing of
/// removed elements then wait out their RCU grace periods side by side (see `Firewall`).
#[derive(Default)]
pub(crate) struct SystemKernel {
    host: Option<Rtnl>,
    /// The container's namespace and its socket, for the one container being wired.
    container: Option<(NetnsRef, Netns, Option<Rtnl>)>,
    firewall: Option<Firewall>,
}

impl SystemKernel {
    pub fn new() -> SystemKernel {
        SystemKernel::default()
    }

    fn host(&mut self) -> Result<&Rtnl> {
        if self.host.is_none() {
            self.host = Some(Rtnl::open()?);
        }
        Ok(self.host.as_ref().expect("opened above"))
    }

    fn netns(&mut self, netns: &NetnsRef) -> Result<&Netns> {
        if self.container.as_ref().is_none_or(|(r, _, _)| r != netns) {
            self.container = Some((netns.clone(), netns.open()?, None));
        }
        Ok(&self.container.as_ref().expect("opened above").1)
    }

    fn inside(&mut self, netns: &NetnsRef) -> Result<&Rtnl> {
        self.netns(netns)?;
        let (_, ns, rtnl) = self.container.as_mut().expect("opened above");
        if rtnl.is_none() {
            *rtnl = Some(Rtnl::open_in(ns)?);
        }
        Ok(rtnl.as_ref().expect("opened above"))
    }

    /// The host's socket and the container's namespace, both open (a veth spans them).
    fn host_and_netns(&mut self, netns: &NetnsRef) -> Result<(&Rtnl, &Netns)> {
        self.netns(netns)?;
        self.host()?;
        let ns = &self.container.as_ref().expect("opened above").1;
        Ok((self.host.as_ref().expect("opened above"), ns))
    }

    fn firewall(&mut self) -> Result<&Firewall> {
        if self.firewall.is_none() {
            self.firewall = Some(Firewall::new()?);
        }
        Ok(self.firewall.as_ref().expect("opened above"))
    }
}

impl Kernel for SystemKernel {
    fn host_ipv4_routes(&mut self) -> Result<Vec<Ipv4Net>> {
        link::ipv4_routes(self.host()?)
    }

    fn is_host_netns(&mut self, netns: &NetnsRef) -> Result<bool> {
        let theirs = self.netns(netns)?.id()?;
        Ok(theirs == Netns::current()?.id()?)
    }

    fn same_netns(&mut self, a: &NetnsRef, b: &NetnsRef) -> Result<bool> {
        Ok(a.open()?.id()? == b.open()?.id()?)
    }

    fn ensure_bridge(&mut self, bridge: &BridgeSpec<'_>) -> Result<u32> {
        let (index, created) = link::ensure_bridge(
            self.host()?,
            bridge.name,
            bridge.mtu,
            bridge.gateways,
            bridge.route_localnet,
        )?;
        // Once, as the bridge is made (no carrier yet, so nothing was solicited): /proc/sys is
        // off the common path (see `sysctl`).
        if created && bridge.gateways.iter().any(|(ip, _)| ip.is_ipv6()) {
            sysctl::refuse_router_advertisements(bridge.name)?;
        }
        Ok(index)
    }

    fn create_veth(&mut self, veth: &VethSpec<'_>, netns: &NetnsRef) -> Result<()> {
        let (host, ns) = self.host_and_netns(netns)?;
        let peer = VethPeer {
            name: veth.peer_name,
            netns: ns,
            mac: veth.peer_mac,
        };
        let bridge = BridgeRef {
            index: veth.bridge_index,
            name: veth.bridge.name,
            network: veth.bridge.network,
        };
        link::create_veth(host, veth.host_name, &bridge, veth.bridge.mtu, &peer)
    }

    fn set_hairpin(&mut self, port: &str) -> Result<()> {
        link::set_hairpin(self.host()?, port)
    }

    fn set_port_isolated(&mut self, port: &str) -> Result<()> {
        link::set_port_isolated(self.host()?, port)
    }

    fn create_routed_veth(&mut self, veth: &RoutedVethSpec<'_>, netns: &NetnsRef) -> Result<()> {
        let (host, ns) = self.host_and_netns(netns)?;
        let peer = VethPeer {
            name: veth.peer_name,
            netns: ns,
            mac: Some(veth.peer_mac),
        };
        link::create_routed_veth(host, &veth.host_end(), &peer)
    }

    fn route_to_container(&mut self, veth: &RoutedVethSpec<'_>) -> Result<()> {
        link::route_to_container(
            self.host()?,
            &veth.host_end(),
            veth.addresses,
            veth.peer_mac,
        )
    }

    fn configure_container(
        &mut self,
        netns: &NetnsRef,
        iface: Option<&Addressing<'_>>,
    ) -> Result<()> {
        // An IPv6 interface accepts no router advertisement: set before it comes up. Only
        // for IPv6 (a /proc/sys lookup in the container's namespace costs more the more
        // namespaces have made one: see `sysctl`).
        if let Some(i) = iface.filter(|i| i.addresses.iter().any(|(ip, _)| ip.is_ipv6())) {
            let name = i.name;
            self.netns(netns)?
                .run_inside(|| sysctl::refuse_router_advertisements(name))??;
        }
        link::configure_container(self.inside(netns)?, iface)
    }

    /// As Docker turns it on: asked over netlink, written under /proc/sys only when it is off
    /// (or the kernel would not say).
    fn ensure_ipv4_forwarding(&mut self) -> Result<()> {
        match netconf::ipv4_forwarding(self.host()?.socket()) {
            Ok(true) => Ok(()),
            _ => sysctl::enable_ip_forward(),
        }
    }

    /// Asked over netlink; only when it is off are routes listed and /proc/sys written.
    fn ensure_ipv6_forwarding(&mut self) -> Result<Vec<String>> {
        if let Ok(true) = netconf::ipv6_forwarding(self.host()?.socket()) {
            return Ok(Vec::new());
        }
        let kept = ra_guard::keep_router_advertised_routes(self.host()?)?;
        sysctl::enable_ipv6_forward()?;
        Ok(kept)
    }

    fn firewall_add_networks(
        &mut self,
        networks: &[NetworkFilter],
        subnets: &[IpNet],
        elements: &[DnatElement],
    ) -> Result<bool> {
        let firewall = self.firewall()?;
        firewall.add_networks(networks, subnets, elements)?;
        Ok(firewall.table_was_created())
    }

    fn firewall_remove(&mut self, elements: &[DnatElement]) -> Result<()> {
        self.firewall()?.unpublish(elements)
    }

    fn firewall_remove_networks(
        &mut self,
        networks: &[NetworkFilter],
        subnets: &[IpNet],
    ) -> Result<()> {
        self.firewall()?.remove_networks(networks, subnets)
    }

    fn delete_link(&mut self, name: &str) -> Result<()> {
        link::delete_link(self.host()?, name)
    }

    fn bind_netns_name(&mut self, netns: &NetnsRef, name: &str) -> Result<()> {
        netns_name::bind(&netns.path(), name)
    }

    fn unbind_netns_name(&mut self, name: &str) -> Result<()> {
        netns_name::unbind(name)
    }

    fn host_link_exists(&mut self, name: &str) -> Result<bool> {
        link::link_exists(self.host()?, name)
    }

    fn link_addresses(
        &mut self,
        netns: &NetnsRef,
        name: &str,
    ) -> Result<Option<Vec<(IpAddr, u8)>>> {
        link::link_addresses(self.inside(netns)?, name)
    }

    /// Asked in the container's namespace: the limits are the host's wherever they are
    /// read, and the answer lists each link's parameters besides, two links there against one
    /// per link on the host (thousands, a 20 ms answer).
    fn neighbour_limits(&mut self, netns: &NetnsRef, table: Table) -> Result<Limits> {
        neigh_table::limits(self.inside(netns)?, table)
    }

    fn set_neighbour_limits(&mut self, table: Table, limits: &Limits) -> Result<bool> {
        neigh_table::set_limits(self.host()?, table, limits)
    }
}
