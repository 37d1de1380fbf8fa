//! Ports published after the container is wired (Docker's `ProgramExternalConnectivity`,
//! which comes after `Join`), and withdrawn before it is unwired: the same claims and DNAT
//! elements a setup with ports makes, added to and removed from an existing record.

use std::net::IpAddr;

use crate::context::Context;
use crate::error::{Error, Result};
use crate::kernel::{BridgeSpec, Kernel, SystemKernel};
use crate::ports::claims::PortClaims;
use crate::ports::publish::{self, PublishedPort};
use crate::ports::PortSpec;
use crate::state::record::Record;
use crate::state::reservation::Reservation;
use crate::state::restore;

/// Publishes `specs` on the first interface of the container `id` (wired already). A
/// container that has published ports keeps them: a repeated call changes nothing.
pub fn publish(ctx: &Context, id: &str, specs: &[PortSpec]) -> Result<Vec<PublishedPort>> {
    publish_with(ctx, &mut SystemKernel::new(), id, specs)
}

/// Withdraws the ports of the container `id`: the DNAT elements, then the claims. Nothing
/// published, or no record: nothing to do.
pub fn unpublish(ctx: &Context, id: &str) -> Result<()> {
    unpublish_with(ctx, &mut SystemKernel::new(), id)
}

pub(crate) fn publish_with(
    ctx: &Context,
    kernel: &mut dyn Kernel,
    id: &str,
    specs: &[PortSpec],
) -> Result<Vec<PublishedPort>> {
    let _serialized = ctx.records.lock(id)?;
    let mut record = ctx
        .records
        .load(id)?
        .ok_or_else(|| Error::NotAttached(id.to_string()))?;
    let Some(iface) = record.interfaces.first() else {
        return Err(Error::NotAttached(id.to_string()));
    };
    if !iface.ports.is_empty() || specs.is_empty() {
        return Ok(iface.ports.clone());
    }
    let network = ctx.networks.known(&ctx.root, &iface.network)?;
    if network.as_ref().is_some_and(|n| n.internal) {
        return Err(Error::InternalPorts {
            network: iface.network.clone(),
        });
    }
    let claims = PortClaims::open(&ctx.root)?.begin()?;
    let ports = publish::resolve(&claims, specs, id, &ctx.boot_id, &publish::ephemeral_range)?;
    // Record first: a crash from here on leaves teardown the claims and elements to undo.
    record.interfaces[0].ports = ports.clone();
    ctx.records.save(&record)?;
    let reserved = Reservation {
        leases: Vec::new(),
        ports: Some((claims, ports.clone())),
    };
    let result = reserved
        .commit(id, &ctx.boot_id)
        .and_then(|()| program(ctx, kernel, &record, network.map(|n| n.mtu)));
    if let Err(e) = result {
        // Undone as a teardown would, then the record without them.
        let _ = kernel.firewall_remove(&record.interfaces[0].dnat_elements());
        let _ = release(ctx, id, &record.interfaces[0].ports);
        record.interfaces[0].ports.clear();
        let _ = ctx.records.save(&record);
        return Err(e);
    }
    Ok(ports)
}

/// The kernel's part: hairpin (a container reaches its own port through the host), loopback
/// sources allowed on the bridge (127.0.0.1:<port> from the host), then the elements in one
/// batch; a missing table is made and every live container's elements are put back.
fn program(
    ctx: &Context,
    kernel: &mut dyn Kernel,
    record: &Record,
    mtu: Option<u32>,
) -> Result<()> {
    let iface = &record.interfaces[0];
    let gateways: Vec<(IpAddr, u8)> = iface
        .addresses
        .iter()
        .filter_map(|a| Some((a.gateway?, a.prefix_len)))
        .collect();
    kernel.ensure_bridge(&BridgeSpec {
        name: &iface.bridge,
        network: &iface.network,
        mtu: mtu.unwrap_or(crate::network::DEFAULT_MTU),
        gateways: &gateways,
        route_localnet: true,
    })?;
    kernel.set_hairpin(&iface.host_veth)?;
    if kernel.firewall_add_networks(&[], &[], &iface.dnat_elements())? {
        restore::restore(ctx, kernel)?;
    }
    Ok(())
}

pub(crate) fn unpublish_with(ctx: &Context, kernel: &mut dyn Kernel, id: &str) -> Result<()> {
    let _serialized = ctx.records.lock(id)?;
    let Some(mut record) = ctx.records.load(id)? else {
        return Ok(());
    };
    let Some(iface) = record.interfaces.first_mut() else {
        return Ok(());
    };
    if iface.ports.is_empty() {
        return Ok(());
    }
    // No claim goes while its element may still answer.
    kernel.firewall_remove(&iface.dnat_elements())?;
    release(ctx, id, &iface.ports)?;
    iface.ports.clear();
    ctx.records.save(&record)
}

fn release(ctx: &Context, id: &str, ports: &[PublishedPort]) -> Result<()> {
    let claims = PortClaims::open(&ctx.root)?.begin()?;
    for p in ports {
        claims.release(p.protocol, p.host, p.host_ip, id)?;
    }
    Ok(())
}
