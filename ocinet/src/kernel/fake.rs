//! A kernel that records every call, in order, and fails the calls it is told to: unit tests
//! check the order of steps, rollback and teardown with it, without root.

use super::*;
use crate::error::Error;
use crate::kernel::firewall::FilterDevice;

#[derive(Default)]
pub(crate) struct RecordingKernel {
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
    fn create_routed_veth(&mut self, veth: &RoutedVethSpec<'_>, _netns: &NetnsRef) -> Result<()> {
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
