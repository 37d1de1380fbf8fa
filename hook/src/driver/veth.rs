//! What the drivers that give a container a veth share: an address leased on its network and
//! its published ports, planned under the leases' and claims' locks, and undone from the record
//! alone.

use std::net::IpAddr;

use ipnet::IpNet;

use super::{Env, Plan, Target};
use crate::claims::PortClaims;
use crate::error::{Error, Result};
use crate::fault;
use crate::firewall::NetworkFilter;
use crate::ipam::{LeaseStore, LeaseTxn, Pool};
use crate::naming;
use crate::network::{DriverKind, Network, Subnet};
use crate::publish;
use crate::record::{AddressRecord, FilterRecord, InterfaceRecord};
use crate::reload;
use crate::request::NetworkRequest;
use crate::reservation::Reservation;

/// Where a container's address comes from: the network's lease store (locked by the caller,
/// which may need the lock before it knows the subnet), the subnet and its gateway, and the
/// prefix length the container's interface gets.
pub struct AddressPool {
    pub leases: LeaseTxn,
    pub subnet: Subnet,
    pub prefix_len: u8,
}

/// Chooses the address and the host ports, and lists them with the veth's names as the
/// record will; the locks stay held in the plan's reservation until apply commits it.
pub fn plan(
    env: &Env<'_>,
    target: &Target,
    request: &NetworkRequest,
    preferred: Option<IpAddr>,
    network: Network,
    pool: AddressPool,
) -> Result<Plan> {
    let ctx = env.ctx;
    let address = pool.leases.choose(
        Pool::of(&network, &pool.subnet),
        &target.id,
        &ctx.boot_id,
        request.static_ip.map(IpAddr::V4),
        preferred,
    )?;
    let claims = PortClaims::open(&ctx.root)?.begin()?;
    let ports = publish::resolve(
        &claims,
        &request.ports,
        &target.id,
        &ctx.boot_id,
        &publish::ephemeral_range,
    )?;
    let interface = InterfaceRecord {
        driver: network.driver,
        network: network.name.clone(),
        bridge: network.bridge.clone(),
        host_veth: naming::host_veth_name(&veth_key(target, request)),
        name: request.interface.clone(),
        addresses: vec![AddressRecord {
            address,
            prefix_len: pool.prefix_len,
            gateway: Some(pool.subnet.gateway),
        }],
        mac: Some(format_mac(container_mac(request, address))),
        ports: ports.clone(),
        masquerade: match (&request.definition, network.masquerade) {
            (Some(_), true) => network.subnets.iter().map(|s| s.subnet).collect(),
            _ => Vec::new(),
        },
        filter: (request.definition.is_some() || network.driver == DriverKind::Routed).then(|| {
            FilterRecord {
                isolate: network.isolate,
                internal: network.internal,
                icc: network.icc,
                group: (network.driver == DriverKind::Routed).then(|| network.device_group()),
            }
        }),
        published: false,
    };
    Ok(Plan {
        interface: Some(interface),
        reserved: Some(Reservation {
            leases: vec![(pool.leases, address)],
            ports: Some((claims, ports)),
        }),
        network: Some(network),
    })
}

/// The network and interface that a `kind` plan hands to its apply; a plan lacking either is a
/// bug, said in one line rather than a panic.
pub fn planned<'a>(
    kind: &str,
    network: Option<Network>,
    iface: Option<&'a mut InterfaceRecord>,
) -> Result<(Network, &'a mut InterfaceRecord)> {
    match (network, iface) {
        (Some(network), Some(iface)) => Ok((network, iface)),
        _ => Err(Error::Namespace(format!(
            "a {kind} plan lacks its network or interface"
        ))),
    }
}

/// The last steps of a veth's setup: forwarding on, then the network's masquerade and the
/// interface's DNAT elements in one nftables batch (atomic: refused, it added nothing; from
/// here on, undoing removes them). A table found missing (`nft flush ruleset`) took every live
/// container's rules with it: they are restored.
pub fn forward_and_publish(
    env: &mut Env<'_>,
    network: &Network,
    iface: &mut InterfaceRecord,
) -> Result<()> {
    env.kernel.ensure_ipv4_forwarding()?;
    fault::point("setup:forwarding");
    let masquerade: Vec<IpNet> = match network.masquerade {
        true => network.subnets.iter().map(|s| s.subnet).collect(),
        false => Vec::new(),
    };
    let filters = [NetworkFilter::of(network)];
    let table_was_missing =
        env.kernel
            .firewall_add_networks(&filters, &masquerade, &iface.dnat_elements())?;
    iface.published = true;
    fault::point("setup:firewall");
    if table_was_missing {
        reload::restore(env.ctx, env.kernel)?;
    }
    Ok(())
}

/// Removes the DNAT elements and claims, the host veth (its peer, and the routes and
/// neighbours through it, go with it) and the leases. A claim is released only once its
/// elements are gone, and a lease only once the veth is: otherwise the next container could get
/// a port or an address that the old one still answers for.
pub fn undo(env: &mut Env<'_>, id: &str, iface: &InterfaceRecord) -> Vec<Error> {
    let mut problems = Vec::new();
    if !iface.ports.is_empty() {
        let unpublished = match iface.published {
            true => env.kernel.firewall_remove(&iface.dnat_elements()),
            false => Ok(()),
        };
        fault::point("teardown:unpublish");
        match unpublished {
            Ok(()) => problems.extend(release_claims(env, id, iface).err()),
            Err(e) => problems.push(e),
        }
    }
    fault::point("teardown:claims");
    let veth_gone = env.kernel.delete_link(&iface.host_veth);
    fault::point("teardown:veth");
    match veth_gone {
        Ok(()) => problems.extend(release_leases(env, id, iface).err()),
        Err(e) => problems.push(e),
    }
    fault::point("teardown:lease");
    problems
}

fn release_claims(env: &Env<'_>, id: &str, iface: &InterfaceRecord) -> Result<()> {
    let claims = PortClaims::open(&env.ctx.root)?.begin()?;
    for p in &iface.ports {
        claims.release(p.protocol, p.host, p.host_ip, id)?;
    }
    Ok(())
}

fn release_leases(env: &Env<'_>, id: &str, iface: &InterfaceRecord) -> Result<()> {
    let leases = LeaseStore::open(&env.ctx.root, &iface.network)?;
    for a in &iface.addresses {
        leases.release(a.address, id)?;
    }
    Ok(())
}

/// The requested MAC, else Docker's: `02:42` and the IPv4 address. Known before the link
/// exists (the record and a CNI result list it), and an address that passes to another
/// container takes its MAC along, so neighbours' caches stay right.
pub fn container_mac(request: &NetworkRequest, address: IpAddr) -> [u8; 6] {
    match request.mac {
        Some(mac) => mac,
        None => docker_mac(address),
    }
}

/// `02:42` and the last four bytes of `address`: locally administered, unicast.
pub fn docker_mac(address: IpAddr) -> [u8; 6] {
    let [a, b, c, d] = match address {
        IpAddr::V4(ip) => ip.octets(),
        IpAddr::V6(ip) => {
            let o = ip.octets();
            [o[12], o[13], o[14], o[15]]
        }
    };
    [0x02, 0x42, a, b, c, d]
}

fn format_mac(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// What names the host veth: the container id for its first interface (as before several
/// networks), the id and the interface for the others.
fn veth_key(target: &Target, request: &NetworkRequest) -> String {
    match request.interface.as_str() {
        crate::request::DEFAULT_INTERFACE => target.id.clone(),
        other => format!("{}:{other}", target.id),
    }
}
