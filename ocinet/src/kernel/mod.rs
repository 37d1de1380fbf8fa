//! The kernel side of wiring behind one narrow trait: links, addresses, routes, forwarding,
//! the firewall and namespace names. Drivers and the engine only speak to [`Kernel`], so unit
//! tests run them without root against a recording fake, and every request still goes out on
//! the plain sockets of `link`, `netconf` and `firewall` in production.

use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net};

use crate::error::Result;
use crate::host::netns::{Netns, NetnsRef};
use crate::host::{netns_name, sysctl};
use crate::kernel::firewall::{DnatElement, Firewall, NetworkFilter};
use crate::netlink::rtnl::link::{self, Addressing, BridgeRef, RoutedEnd, Rtnl, VethPeer};
use crate::netlink::rtnl::neigh_table::{self, Limits, Table};
use crate::netlink::rtnl::netconf;
pub mod firewall;
mod ra_guard;

/// A bridge to make sure of.
pub struct BridgeSpec<'a> {
    pub name: &'a str,
    pub network: &'a str,
    pub mtu: u32,
    /// The gateway addresses the bridge holds, with their prefix lengths.
    pub gateways: &'a [(IpAddr, u8)],
    /// Allow loopback sources on the bridge: 127.0.0.1:<port> from the host is DNATed out of it.
    pub route_localnet: bool,
}

/// A veth pair from a bridge into a container's namespace.
pub struct VethSpec<'a> {
    pub host_name: &'a str,
    pub bridge: &'a BridgeSpec<'a>,
    pub bridge_index: u32,
    pub peer_name: &'a str,
    pub peer_mac: Option<[u8; 6]>,
}

/// A routed network's veth pair: no bridge; the host end answers for the gateway and routes a
/// /32 to the container.
pub struct RoutedVethSpec<'a> {
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
pub trait Kernel {
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

/// The real kernel: one rtnetlink socket per namespace and one nftables session, each opened
/// at its first use and kept for the rest of the setup or teardown. The firewall session is
/// closed last, when this is dropped: a teardown's veth deletion and the kernel's freeing of
/// removed elements then wait out their RCU grace periods side by side (see `Firewall`).
#[derive(Default)]
pub struct SystemKernel {
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

/// A kernel that records every call, in order, and fails the calls it is told to: unit tests
/// check the order of steps, rollback and teardown with it, without root.
#[cfg(test)]
pub mod fake {
    use super::*;
    use crate::error::Error;
    use crate::kernel::firewall::FilterDevice;

    #[derive(Default)]
    pub struct RecordingKernel {
        /// One line per call: its name and its main argument.
        pub calls: Vec<String>,
        /// Calls (by name) that fail every time.
        pub failing: Vec<&'static str>,
        /// Whether the container's namespace is the host's.
        pub host_netns: bool,
        /// What `firewall_add` answers: the table was missing.
        pub table_missing: bool,
        /// Host routes, for the default network's choice.
        pub routes: Vec<Ipv4Net>,
        /// Links that do not exist (as `host_link_exists` and `link_addresses` see them); any
        /// other exists, with the addresses `configure_container` gave it.
        pub missing: Vec<String>,
        /// The addresses the last `configure_container` set.
        pub configured: Vec<(IpAddr, u8)>,
        /// The IPv4 neighbour table's limits, as `neighbour_limits` reads them.
        pub limits: Option<Limits>,
        /// The IPv6 one's.
        pub limits6: Option<Limits>,
        /// Whether `set_neighbour_limits` may set them (the initial namespace).
        pub initial_netns: bool,
    }

    impl RecordingKernel {
        fn call(&mut self, name: &'static str, arg: String) -> Result<()> {
            self.calls
                .push(format!("{name} {arg}").trim_end().to_string());
            if self.failing.contains(&name) {
                return Err(Error::Netlink(format!("{name} failed (injected)")));
            }
            Ok(())
        }

        /// The names of the calls made, in order.
        pub fn names(&self) -> Vec<&str> {
            self.calls
                .iter()
                .map(|c| c.split(' ').next().unwrap_or_default())
                .collect()
        }
    }

    impl Kernel for RecordingKernel {
        fn host_ipv4_routes(&mut self) -> Result<Vec<Ipv4Net>> {
            self.call("host_ipv4_routes", String::new())?;
            Ok(self.routes.clone())
        }
        fn is_host_netns(&mut self, netns: &NetnsRef) -> Result<bool> {
            self.call("is_host_netns", format!("{netns:?}"))?;
            Ok(self.host_netns)
        }
        fn same_netns(&mut self, a: &NetnsRef, b: &NetnsRef) -> Result<bool> {
            self.call("same_netns", format!("{a:?} {b:?}"))?;
            Ok(a == b)
        }
        fn ensure_bridge(&mut self, bridge: &BridgeSpec<'_>) -> Result<u32> {
            self.call("ensure_bridge", bridge.name.to_string())?;
            Ok(7)
        }
        fn create_veth(&mut self, veth: &VethSpec<'_>, _netns: &NetnsRef) -> Result<()> {
            self.call("create_veth", veth.host_name.to_string())
        }
        fn set_hairpin(&mut self, port: &str) -> Result<()> {
            self.call("set_hairpin", port.to_string())
        }
        fn set_port_isolated(&mut self, port: &str) -> Result<()> {
            self.call("set_port_isolated", port.to_string())
        }
        fn create_routed_veth(
            &mut self,
            veth: &RoutedVethSpec<'_>,
            _netns: &NetnsRef,
        ) -> Result<()> {
            self.call("create_routed_veth", veth.host_name.to_string())
        }
        fn route_to_container(&mut self, veth: &RoutedVethSpec<'_>) -> Result<()> {
            self.call(
                "route_to_container",
                format!(
                    "{} {}",
                    veth.addresses
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(","),
                    veth.host_name
                ),
            )
        }
        fn configure_container(
            &mut self,
            _netns: &NetnsRef,
            iface: Option<&Addressing<'_>>,
        ) -> Result<()> {
            if let Some(i) = iface {
                self.configured = i.addresses.to_vec();
            }
            let addresses = iface.map(|i| {
                i.addresses
                    .iter()
                    .map(|(ip, p)| format!("{ip}/{p}"))
                    .collect::<Vec<_>>()
                    .join(",")
            });
            self.call("configure_container", addresses.unwrap_or_default())
        }
        fn ensure_ipv4_forwarding(&mut self) -> Result<()> {
            self.call("ensure_ipv4_forwarding", String::new())
        }
        fn ensure_ipv6_forwarding(&mut self) -> Result<Vec<String>> {
            self.call("ensure_ipv6_forwarding", String::new())?;
            Ok(Vec::new())
        }
        /// Recorded as `firewall_add` (one batch), with the bridges and their flags.
        fn firewall_add_networks(
            &mut self,
            networks: &[NetworkFilter],
            subnets: &[IpNet],
            elements: &[DnatElement],
        ) -> Result<bool> {
            let bridges: Vec<String> = networks
                .iter()
                .map(|n| {
                    let mut flags = String::new();
                    if n.isolate {
                        flags.push_str("+isolate");
                    }
                    if n.internal {
                        flags.push_str("+internal");
                    }
                    match &n.device {
                        FilterDevice::Bridge(name) => format!("{name}{flags}"),
                        FilterDevice::Group(group) => format!("group {group}{flags}"),
                    }
                })
                .collect();
            self.call(
                "firewall_add",
                format!(
                    "[{}] {} subnets, {} elements",
                    bridges.join(","),
                    subnets.len(),
                    elements.len()
                ),
            )?;
            Ok(std::mem::take(&mut self.table_missing))
        }
        fn firewall_remove(&mut self, elements: &[DnatElement]) -> Result<()> {
            self.call("firewall_remove", format!("{} elements", elements.len()))
        }
        fn firewall_remove_networks(
            &mut self,
            networks: &[NetworkFilter],
            subnets: &[IpNet],
        ) -> Result<()> {
            let bridges: Vec<String> = networks
                .iter()
                .map(|n| match &n.device {
                    FilterDevice::Bridge(name) => name.clone(),
                    FilterDevice::Group(group) => format!("group {group}"),
                })
                .collect();
            self.call(
                "firewall_remove_networks",
                format!("[{}] {} subnets", bridges.join(","), subnets.len()),
            )
        }
        fn delete_link(&mut self, name: &str) -> Result<()> {
            self.call("delete_link", name.to_string())
        }
        fn bind_netns_name(&mut self, _netns: &NetnsRef, name: &str) -> Result<()> {
            self.call("bind_netns_name", name.to_string())
        }
        fn unbind_netns_name(&mut self, name: &str) -> Result<()> {
            self.call("unbind_netns_name", name.to_string())
        }
        fn host_link_exists(&mut self, name: &str) -> Result<bool> {
            self.call("host_link_exists", name.to_string())?;
            Ok(!self.missing.iter().any(|m| m == name))
        }
        fn link_addresses(
            &mut self,
            _netns: &NetnsRef,
            name: &str,
        ) -> Result<Option<Vec<(IpAddr, u8)>>> {
            self.call("link_addresses", name.to_string())?;
            Ok((!self.missing.iter().any(|m| m == name)).then(|| self.configured.clone()))
        }
        fn neighbour_limits(&mut self, _netns: &NetnsRef, table: Table) -> Result<Limits> {
            self.call("neighbour_limits", table.family_name().to_string())?;
            let limits = match table {
                Table::Ipv4 => self.limits,
                Table::Ipv6 => self.limits6,
            };
            Ok(limits.unwrap_or(Limits {
                thresh1: 128,
                thresh2: 512,
                thresh3: 1024,
            }))
        }
        fn set_neighbour_limits(&mut self, table: Table, limits: &Limits) -> Result<bool> {
            self.call(
                "set_neighbour_limits",
                format!(
                    "{} {} {} {}",
                    table.family_name(),
                    limits.thresh1,
                    limits.thresh2,
                    limits.thresh3
                ),
            )?;
            if self.initial_netns {
                match table {
                    Table::Ipv4 => self.limits = Some(*limits),
                    Table::Ipv6 => self.limits6 = Some(*limits),
                }
            }
            Ok(self.initial_netns)
        }
    }
}
