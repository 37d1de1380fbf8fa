//! What the drivers that give a container a veth share: an address leased on its network and
//! its published ports, planned under the leases' and claims' locks, and undone from the record
//! alone.

use std::net::IpAddr;

use ipnet::IpNet;

use super::{DriverInfo, Env, Plan, Target};
use crate::error::{Error, Result};
use crate::host::fault;
use crate::host::naming;
use crate::network::{DriverKind, Network, Subnet};
use crate::ports::claims::PortClaims;
use crate::ports::publish;
use crate::request::NetworkRequest;
use crate::state::activity::{self, Entry};
use crate::state::ipam::{LeaseStore, LeaseTxn, Pool};
use crate::state::record::{AddressRecord, FilterRecord, InterfaceRecord};
use crate::state::reservation::Reservation;
use crate::state::restore;

/// Where a container's addresses come from: the network's lease store (locked since the
/// network's prepare, which needs the lock before the subnet is known: an overlay's agent
/// starts under it), and each subnet (IPv4 first: its address names the MAC) with its gateway
/// and the prefix length the container's interface gets.
pub(crate) struct AddressPool {
    pub(crate) leases: LeaseTxn,
    pub(crate) subnets: Vec<(Subnet, u8)>,
}

/// The static addresses a request asks for (IPv4, IPv6); one on a family the network
/// lacks is refused (a user would otherwise wonder where it went).
fn requested(request: &NetworkRequest, network: &Network) -> Result<[Option<IpAddr>; 2]> {
    let refuse = |family: &'static str, annotation: &'static str, ip: IpAddr| {
        Err(Error::NoSubnetOfFamily {
            ip,
            network: network.name.clone(),
            family,
            annotation,
        })
    };
    let has = |v6: bool| {
        network
            .subnets
            .iter()
            .any(|s| s.subnet.addr().is_ipv6() == v6)
    };
    let v4 = request.static_ip.map(IpAddr::V4);
    let v6 = request.static_ip6.map(IpAddr::V6);
    match (v4, v6) {
        (Some(ip), _) if !has(false) => refuse("IPv4", crate::request::IP_ANNOTATION, ip),
        (_, Some(ip)) if !has(true) => refuse("IPv6", crate::request::IP6_ANNOTATION, ip),
        _ => Ok([v4, v6]),
    }
}

/// Chooses the address and the host ports, and lists them with the veth's names as the
/// record will; the locks stay held in the plan's reservation until apply commits it.
pub(crate) fn plan(info: &DriverInfo<'_>, network: Network, pool: AddressPool) -> Result<Plan> {
    let DriverInfo {
        env,
        target,
        request,
        preferred,
    } = info;
    let ctx = env.ctx;
    let [static4, static6] = requested(request, &network)?;
    let mut addresses = Vec::with_capacity(pool.subnets.len());
    for (subnet, prefix_len) in &pool.subnets {
        let v6 = subnet.subnet.addr().is_ipv6();
        let address = pool.leases.choose(
            Pool::of(&network, subnet),
            &target.id,
            &ctx.boot_id,
            if v6 { static6 } else { static4 },
            // The same container keeps its address of each family across a restart.
            preferred.iter().copied().find(|p| p.is_ipv6() == v6),
        )?;
        addresses.push(AddressRecord {
            address,
            prefix_len: *prefix_len,
            gateway: Some(subnet.gateway),
        });
    }
    let Some(first) = addresses.first().map(|a| a.address) else {
        return Err(Error::Namespace(format!(
            "network {} has no subnet to lease from",
            network.name
        )));
    };
    let claims = PortClaims::open(&ctx.root)?.begin()?;
    let ports = publish::resolve(
        &claims,
        &request.ports,
        &target.id,
        &ctx.boot_id,
        &publish::ephemeral_range,
    )?;
    let leased: Vec<IpAddr> = addresses.iter().map(|a| a.address).collect();
    if let Some(ip) = publish::unreachable_host_address(&ports, &leased) {
        return Err(Error::Annotation {
            key: crate::ports::PORTS_ANNOTATION,
            value: crate::ports::host_address(Some(ip)),
            reason: format!(
                "network {} gives the container no {} address to publish on it: publish on another host address, or add a subnet of that family",
                network.name,
                if ip.is_ipv6() { "IPv6" } else { "IPv4" }
            ),
        });
    }
    let interface = InterfaceRecord {
        driver: network.driver,
        network: network.name.clone(),
        bridge: network.bridge.clone(),
        host_veth: naming::host_veth_name(&veth_key(target, request)),
        name: request.interface.clone(),
        mac: Some(format_mac(container_mac(request, first))),
        addresses: addresses.clone(),
        ports: ports.clone(),
        masquerade: match (&request.definition, network.masquerade) {
            (Some(_), true) => network.subnets.iter().map(|s| s.subnet).collect(),
            _ => Vec::new(),
        },
        // Kept where the file alone would not tell `reload` enough: an inline definition (CNI),
        // a routed network's group, an overlay's VNI.
        filter: (request.definition.is_some() || network.driver != DriverKind::Bridge).then(|| {
            FilterRecord {
                isolate: network.isolate,
                internal: network.internal,
                icc: network.icc,
                group: (network.driver == DriverKind::Routed).then(|| network.device_group()),
                vni: network.overlay.as_ref().map(|o| o.vni),
            }
        }),
        // The engine claims them once the plan is made (`names.rs`).
        names: Vec::new(),
        published: false,
    };
    Ok(Plan {
        interface: Some(interface),
        reserved: Some(Reservation {
            leases: vec![(pool.leases, addresses.iter().map(|a| a.address).collect())],
            ports: Some((claims, ports)),
        }),
        network: Some(network),
    })
}

/// The network and interface that a `kind` plan hands to its apply; a plan lacking either is a
/// bug, said in one line rather than a panic.
pub(crate) fn planned<'a>(
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
pub(crate) fn forward_and_publish(
    info: &mut DriverInfo<'_>,
    network: &Network,
    iface: &mut InterfaceRecord,
) -> Result<()> {
    let (env, id) = (&mut info.env, &info.target.id);
    env.kernel.ensure_ipv4_forwarding()?;
    if iface.addresses.iter().any(|a| a.address.is_ipv6()) {
        let kept = env.kernel.ensure_ipv6_forwarding()?;
        if !kept.is_empty() {
            let text = format!(
                "IPv6 forwarding on: accept_ra set to 2 on {} to keep the default route learned from router advertisements",
                kept.join(", ")
            );
            let _ = activity::append(env.ctx.root.path(), &Entry::note(id, "ra-guard", &text));
        }
    }
    fault::point("setup:forwarding");
    let masquerade: Vec<IpNet> = match network.masquerade {
        true => network.subnets.iter().map(|s| s.subnet).collect(),
        false => Vec::new(),
    };
    let filters = [network.filter()];
    let table_was_missing =
        env.kernel
            .firewall_add_networks(&filters, &masquerade, &iface.dnat_elements())?;
    iface.published = true;
    fault::point("setup:firewall");
    if table_was_missing {
        restore::restore(env.ctx, env.kernel)?;
    }
    Ok(())
}

/// Removes the DNAT elements and claims, the host veth (its peer, and the routes and
/// neighbours through it, go with it) and the leases. A claim is released only once its
/// elements are gone, and a lease only once the veth is: otherwise the next container could get
/// a port or an address that the old one still answers for.
pub(crate) fn undo(env: &mut Env<'_>, id: &str, iface: &InterfaceRecord) -> Vec<Error> {
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
pub(crate) fn container_mac(request: &NetworkRequest, address: IpAddr) -> [u8; 6] {
    match request.mac {
        Some(mac) => mac,
        None => docker_mac(address),
    }
}

/// `02:42` and the last four bytes of `address`: locally administered, unicast.
pub(crate) fn docker_mac(address: IpAddr) -> [u8; 6] {
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
