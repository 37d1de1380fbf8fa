//! Puts back the firewall state of every live container from its record: after `nft flush
//! ruleset` (or a firewall service reload) the table is gone with all its elements.

use ipnet::IpNet;

use crate::context::Context;
use crate::error::Result;
use crate::kernel::firewall::{FilterDevice, NetworkFilter};
use crate::kernel::Kernel;
use crate::network::DriverKind;

/// What a reload restored.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Restored {
    /// Live containers whose elements were put back.
    pub containers: usize,
    pub subnets: usize,
    pub elements: usize,
}

/// Restores every live container's network filters, masqueraded subnets and DNAT elements.
pub(crate) fn restore(ctx: &Context, kernel: &mut dyn Kernel) -> Result<Restored> {
    let mut subnets: Vec<IpNet> = Vec::new();
    let mut elements = Vec::new();
    let mut filters: Vec<NetworkFilter> = Vec::new();
    let mut containers = 0;
    // A corrupt or vanished record has nothing to restore; the others still do.
    let (records, _unreadable) = ctx.records.all()?;
    for record in records.iter().filter(|r| !r.is_stale(&ctx.boot_id)) {
        if record.interfaces.is_empty() {
            continue;
        }
        containers += 1;
        for iface in &record.interfaces {
            let network = ctx.networks.known(&ctx.root, &iface.network).ok().flatten();
            // A network given inline (CNI) is known only by its records.
            let (isolate, internal, icc, group) = match (&network, iface.filter) {
                (Some(n), _) => (n.isolate, n.internal, n.icc, Some(n.device_group())),
                (None, Some(f)) => (f.isolate, f.internal, f.icc, f.group),
                (None, None) => (true, false, true, None),
            };
            // The record's bridge is the one its containers are on, whatever the file says now.
            let device = match (iface.driver, group) {
                (DriverKind::Routed, Some(group)) => Some(FilterDevice::Group(group)),
                // A routed record of an earlier release, its file gone: no group is known.
                (DriverKind::Routed, None) => None,
                (DriverKind::Bridge | DriverKind::Overlay, _) => {
                    Some(FilterDevice::Bridge(iface.bridge.clone()))
                }
            };
            if let Some(device) = device {
                let filter = NetworkFilter {
                    device,
                    // An overlay's VNI is in its file, and in its record for when the file
                    // is gone.
                    tunnel: network.as_ref().and_then(|n| n.tunnel()).or_else(|| {
                        iface
                            .filter
                            .and_then(|f| f.vni)
                            .map(crate::network::vxlan_name)
                    }),
                    direct: network.as_ref().and_then(|n| n.direct_subnet()),
                    isolate,
                    internal,
                    icc,
                };
                if !filters.contains(&filter) {
                    filters.push(filter);
                }
            }
            let masqueraded = match network {
                Some(n) if n.masquerade => n.subnets.iter().map(|s| s.subnet).collect(),
                Some(_) => Vec::new(),
                None => iface.masquerade.clone(),
            };
            for subnet in masqueraded {
                if !subnets.contains(&subnet) {
                    subnets.push(subnet);
                }
            }
            elements.extend(iface.dnat_elements());
        }
    }
    kernel.firewall_add_networks(&filters, &subnets, &elements)?;
    Ok(Restored {
        containers,
        subnets: subnets.len(),
        elements: elements.len(),
    })
}
