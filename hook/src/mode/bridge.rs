//! `bridge`: a veth pair from the network's bridge into the container, a leased address, a
//! default route via the gateway, forwarding on and egress masqueraded.

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::claims::PortClaims;
use crate::engine::{private_netns, Context};
use crate::error::{Error, Result};
use crate::fault;
use crate::firewall::Firewall;
use crate::ipam::LeaseStore;
use crate::link::{self, BridgeRef, Rtnl, VethPeer};
use crate::naming;
use crate::network::{choose_default_subnet, Network, DEFAULT_NETWORK};
use crate::publish;
use crate::record::{BridgeAttachment, Record};
use crate::reload;
use crate::request::NetworkRequest;
use crate::store;
use crate::{netconf, sysctl};

const CONTAINER_INTERFACE: &str = "eth0";

pub fn setup(
    ctx: &Context,
    record: &mut Record,
    network_name: &str,
    request: &NetworkRequest,
    preferred: Option<std::net::Ipv4Addr>,
) -> Result<()> {
    let pid = record.pid.unwrap_or_default();
    let host = Rtnl::open()?;
    let network = resolve(ctx, &host, network_name)?;
    let ns = private_netns(pid, &record.mode)?;

    // Lease and record under the network's lock; the record is on disk before the lease is,
    // so teardown always knows what to release.
    let leases = LeaseStore::open(&ctx.root, &network.name)?;
    let txn = leases.begin()?;
    let address = txn.choose(
        (&network).into(),
        &record.id,
        &ctx.boot_id,
        request.static_ip,
        preferred,
    )?;
    let claims = PortClaims::open(&ctx.root)?;
    let claim_txn = claims.begin()?;
    let ports = publish::resolve(
        &claim_txn,
        &request.ports,
        &record.id,
        &ctx.boot_id,
        &publish::ephemeral_range,
    )?;
    let attachment = BridgeAttachment {
        network: network.name.clone(),
        bridge: network.bridge.clone(),
        host_veth: naming::host_veth_name(&record.id),
        container_interface: CONTAINER_INTERFACE.to_string(),
        address,
        prefix_len: network.prefix_len(),
        gateway: network.gateway,
        mac: request.mac.map(format_mac),
        ports,
        published: false,
    };
    record.bridge = Some(attachment.clone());
    ctx.records.save(record)?;
    fault::point("setup:record");
    txn.commit(address, &record.id, &ctx.boot_id)?;
    fault::point("setup:lease");
    for p in &attachment.ports {
        claim_txn.claim(p.protocol, p.host, p.host_ip, &record.id, &ctx.boot_id)?;
    }
    fault::point("setup:claims");
    drop(claim_txn);
    drop(txn);

    let inside = Rtnl::open_in(&ns)?;
    let bridge = link::ensure_bridge(
        &host,
        &network.bridge,
        network.mtu,
        network.gateway,
        network.prefix_len(),
        // 127.0.0.1:<port> from the host is DNATed out of the bridge: allow loopback sources
        // there.
        !attachment.ports.is_empty(),
    )?;
    fault::point("setup:bridge");
    let peer = VethPeer {
        name: CONTAINER_INTERFACE,
        netns: &ns,
        mac: request.mac,
    };
    let bridge = BridgeRef {
        index: bridge,
        name: &network.bridge,
        network: &network.name,
    };
    link::create_veth(&host, &attachment.host_veth, &bridge, network.mtu, &peer)?;
    fault::point("setup:veth");
    if !attachment.ports.is_empty() {
        // Hairpin: a container may reach its own published port through the host.
        link::set_hairpin(&host, &attachment.host_veth)?;
    }
    // Last, and in one datagram: the container's link comes up with a carrier, and the
    // kernel's work for that takes the rtnl lock (see `rtnl_batch`).
    link::configure_container(
        &inside,
        Some((
            CONTAINER_INTERFACE,
            address,
            network.prefix_len(),
            network.gateway,
        )),
    )?;
    fault::point("setup:container-address");
    ensure_ipv4_forwarding(&host)?;
    fault::point("setup:forwarding");
    // Masquerade and DNAT elements in one nftables batch.
    let masquerade = network.masquerade.then_some(network.subnet);
    let elements = publish::dnat_elements(&attachment.ports, address);
    let firewall = Firewall::new()?;
    // The batch is atomic: refused, it added nothing; from here on, undoing removes them.
    firewall.add(masquerade.as_slice(), &elements)?;
    if let Some(b) = record.bridge.as_mut() {
        b.published = true;
    }
    fault::point("setup:firewall");
    if firewall.table_was_created() {
        // The table was gone (`nft flush ruleset`): every live container's rules went with it.
        reload::restore(ctx)?;
    }
    Ok(())
}

/// Removes the host veth (its peer goes with it) and releases the lease. The bridge stays, as
/// Docker's `docker0` does: other containers may be on it, and the next one will be.
pub fn teardown(ctx: &Context, id: &str, attachment: &BridgeAttachment) -> Result<()> {
    // Held until the veth is gone: its deletion and the kernel's freeing of the removed
    // elements then wait out their RCU grace periods side by side (see `Firewall`).
    let mut firewall = None;
    if !attachment.ports.is_empty() {
        if attachment.published {
            firewall
                .insert(Firewall::new()?)
                .unpublish(&publish::dnat_elements(
                    &attachment.ports,
                    attachment.address,
                ))?;
        }
        fault::point("teardown:unpublish");
        let claims = PortClaims::open(&ctx.root)?;
        let txn = claims.begin()?;
        for p in &attachment.ports {
            txn.release(p.protocol, p.host, p.host_ip, id)?;
        }
    }
    fault::point("teardown:claims");
    link::delete_link(&Rtnl::open()?, &attachment.host_veth)?;
    drop(firewall);
    fault::point("teardown:veth");
    LeaseStore::open(&ctx.root, &attachment.network)?.release(attachment.address, id)?;
    fault::point("teardown:lease");
    Ok(())
}

fn format_mac(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The subnet of the default network, chosen once per state root and kept.
#[derive(Serialize, Deserialize)]
struct DefaultNetworkFile {
    subnet: Ipv4Net,
}

const DEFAULT_NETWORK_FILE: &str = "default-network.json";

/// The default network, if its subnet has been chosen (at the first bridge setup on this root).
pub fn chosen_default_network(ctx: &Context) -> Result<Option<Network>> {
    let path = ctx.root.path().join(DEFAULT_NETWORK_FILE);
    Ok(store::read_json::<DefaultNetworkFile>(&path)?.map(|f| Network::default_on(f.subnet)))
}

/// A user definition wins; the default network is built in; anything else is unknown.
fn resolve(ctx: &Context, host: &Rtnl, name: &str) -> Result<Network> {
    if let Some(network) = ctx.networks.load(name)? {
        return Ok(network);
    }
    if name != DEFAULT_NETWORK {
        return Err(Error::UnknownNetwork {
            name: name.to_string(),
            path: ctx.networks.path_of(name),
        });
    }
    if let Some(network) = chosen_default_network(ctx)? {
        return Ok(network);
    }
    let _lock = store::lock(&ctx.root.path().join("lock"))?;
    if let Some(network) = chosen_default_network(ctx)? {
        return Ok(network);
    }
    let path = ctx.root.path().join(DEFAULT_NETWORK_FILE);
    let routes = link::ipv4_routes(host)?;
    let subnet = choose_default_subnet(&routes).ok_or_else(|| {
        Error::Namespace(format!(
            "every candidate subnet for the default network overlaps a host route: define {} with a free subnet",
            ctx.networks.path_of(DEFAULT_NETWORK).display()
        ))
    })?;
    store::write_json(&path, &DefaultNetworkFile { subnet })?;
    Ok(Network::default_on(subnet))
}

/// IPv4 forwarding on, as Docker turns it on: asked over netlink, written under /proc/sys only
/// when it is off (or the kernel would not say).
fn ensure_ipv4_forwarding(host: &Rtnl) -> Result<()> {
    match netconf::ipv4_forwarding(host.socket()) {
        Ok(true) => Ok(()),
        _ => sysctl::enable_ip_forward(),
    }
}
