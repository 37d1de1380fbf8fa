//! What an overlay network needs of each host's kernel, in flannel's VXLAN model: one VXLAN
//! device per host, and for every other host (a peer) a permanent neighbour entry (the peer's
//! VTEP address to its VTEP MAC), a permanent FDB entry (that MAC to the peer's underlay
//! address) and a route to the peer's block via its VTEP address. The kernel learns nothing
//! and floods nothing: the agent programs every peer. A dual-stack overlay's peer has an IPv6
//! block too: its route goes via the peer's link-local VTEP address (the kernel takes no IPv4
//! gateway for an IPv6 route), with a permanent IPv6 neighbour entry to the same VTEP MAC.
//!
//! The overlay agent, a binary of its own, calls this module; everything goes over the
//! namespace's plain rtnetlink socket ([`Rtnl`]), a peer's three entries in one datagram.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use nix::libc;
use rtnetlink::packet_core::{NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::packet_route::link::{
    InfoData, InfoKind, InfoVxlan, LinkAttribute, LinkInfo, LinkMessage,
};
use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteType,
};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::{AddressMessageBuilder, LinkUnspec, LinkVxlan, RouteMessageBuilder};

pub use ocinet::netlink::rtnl::link::Rtnl;

use ocinet::error::{Error, Result};
use ocinet::netlink::rtnl::batch::{self, Batch};
use ocinet::netlink::rtnl::link::{self, push_up_without_ipv6_addresses};
use ocinet::netlink::rtnl::probe::LinkProbe;
use ocinet::overlay::state::vtep_address6;

/// The routing protocol number (`proto`) of the routes this module adds, so that [`peers`]
/// finds ours among everyone's and a delete removes only ours. Unassigned in iproute2's
/// rt_protos (0-4 kernel, 8-18, 42 babel, 99 openr, 186-192 routing daemons) and not used by
/// the usual overlay agents (Calico's is 80); `ip route show proto 111` lists them.
pub const RTPROT_OCINET: u8 = 0x6f;

/// Deleting what is gone: ESRCH for a route, ENOENT for a neighbour or FDB entry, ENODEV for
/// the device itself.
const GONE: &[i32] = &[libc::ENOENT, libc::ESRCH, libc::ENODEV];

/// The host's VXLAN device as the overlay wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VxlanSpec {
    pub name: String,
    pub vni: u32,
    /// The UDP destination port (the kernel's default is 8472; IANA's is 4789).
    pub port: u16,
    /// This host's underlay address: the source of the encapsulated packets.
    pub local: Ipv4Addr,
    /// The underlay device, when the encapsulated packets must leave through it.
    pub underlay_index: Option<u32>,
    /// The device's own MAC: peers program it, so it must not change when the device is
    /// recreated.
    pub mac: [u8; 6],
    pub mtu: u32,
    /// The device's only IPv4 address (e.g. the block's network address as /32).
    pub address: Option<(Ipv4Addr, u8)>,
}

/// Another host of the overlay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer {
    /// The peer's block: routed to it.
    pub block: Ipv4Net,
    /// The address of the peer's VXLAN device (its block's network address): the gateway of
    /// the block's route.
    pub vtep_address: Ipv4Addr,
    /// The MAC of the peer's VXLAN device.
    pub vtep_mac: [u8; 6],
    /// The peer's underlay address, where the encapsulated packets go.
    pub underlay: Ipv4Addr,
    /// The peer's IPv6 block on a dual-stack overlay: routed via its link-local VTEP address
    /// ([`vtep_address6`] of `vtep_mac`).
    pub block6: Option<Ipv6Net>,
}

/// Makes sure the VXLAN device of `spec` exists as asked, holds exactly `spec.address` (no
/// other IPv4 address, no IPv6 address of its own) and is up; returns its index.
///
/// A VXLAN device of that name with another VNI, port, local address, underlay device, group
/// or with learning on is deleted and created anew: the kernel refuses to change a device's
/// VNI or port, one path serves the rest too, and the device is the agent's own (it chose the
/// name), so nothing of anyone else's is lost. Its neighbour and FDB entries and routes go
/// with it: reconcile the peers after this ([`peers`] then lists none). A link of that name
/// that is not a VXLAN device is someone else's and is left alone (an error). MTU and MAC are
/// changed in place.
pub fn ensure_vxlan(rtnl: &Rtnl, spec: &VxlanSpec) -> Result<u32> {
    let query = LinkUnspec::new_with_name(&spec.name).build();
    let existing = match link_view(rtnl, query, &spec.name)? {
        Some(link) if link.kind != Some(InfoKind::Vxlan) => {
            return Err(Error::Netlink(format!(
                "link {} exists but is not a vxlan device: remove it or choose another name",
                spec.name
            )))
        }
        Some(link) if !mismatches(spec, &link.vxlan).is_empty() => {
            link::delete_link(rtnl, &spec.name)?;
            None
        }
        other => other,
    };
    let mut batch = Batch::new();
    let (index, stale) = match existing {
        Some(link) => {
            push_changes(&mut batch, spec, &link);
            (link.index, ipv4_addresses_of(rtnl, link.index)?)
        }
        None => (create(rtnl, spec)?, Vec::new()),
    };
    push_addresses(&mut batch, spec, index, &stale);
    push_up_without_ipv6_addresses(&mut batch, || LinkUnspec::new_with_index(index), &spec.name);
    batch.send(rtnl.socket())?;
    Ok(index)
}

/// Deletes the VXLAN device `name` (with its peers' entries and routes); a missing one is
/// fine.
pub fn delete_vxlan(rtnl: &Rtnl, name: &str) -> Result<()> {
    link::delete_link(rtnl, name)
}

/// Programs `peer` on VXLAN device `vxlan_index`: its neighbour entry, its FDB entry and the
/// route to its block, in one datagram. Each replaces what is there, so adding a peer again,
/// or one whose underlay address changed, is fine. The FDB entry is the MAC's: a peer whose
/// MAC changed leaves the old one behind, so remove the old peer first.
pub fn add_peer(rtnl: &Rtnl, vxlan_index: u32, peer: &Peer) -> Result<()> {
    let replace = NLM_F_CREATE | NLM_F_REPLACE;
    let mut batch = Batch::new();
    batch.push(
        RouteNetlinkMessage::NewNeighbour(peer_neighbour(vxlan_index, peer, false)),
        replace,
        format!(
            "cannot add the neighbour entry {} -> {} on link {vxlan_index}",
            peer.vtep_address,
            mac_text(&peer.vtep_mac)
        ),
    );
    batch.push(
        RouteNetlinkMessage::NewNeighbour(peer_fdb(vxlan_index, peer)),
        replace,
        format!(
            "cannot add the fdb entry {} -> {} on link {vxlan_index}",
            mac_text(&peer.vtep_mac),
            peer.underlay
        ),
    );
    batch.push(
        RouteNetlinkMessage::NewRoute(peer_route(vxlan_index, peer)),
        replace,
        format!(
            "cannot add the route to {} via {} on link {vxlan_index}",
            peer.block, peer.vtep_address
        ),
    );
    if let Some(block6) = peer.block6 {
        let vtep6 = vtep_address6(peer.vtep_mac);
        batch.push(
            RouteNetlinkMessage::NewNeighbour(peer_neighbour(vxlan_index, peer, true)),
            replace,
            format!(
                "cannot add the neighbour entry {vtep6} -> {} on link {vxlan_index}",
                mac_text(&peer.vtep_mac)
            ),
        );
        batch.push(
            RouteNetlinkMessage::NewRoute(peer_route6(vxlan_index, block6, vtep6)),
            replace,
            format!("cannot add the route to {block6} via {vtep6} on link {vxlan_index}"),
        );
    }
    Ok(batch.send(rtnl.socket())?)
}

/// Removes what [`add_peer`] programmed, route first; each entry may be gone already.
pub fn remove_peer(rtnl: &Rtnl, vxlan_index: u32, peer: &Peer) -> Result<()> {
    let mut batch = Batch::new();
    if let Some(block6) = peer.block6 {
        let vtep6 = vtep_address6(peer.vtep_mac);
        batch.push_allowing(
            RouteNetlinkMessage::DelRoute(peer_route6(vxlan_index, block6, vtep6)),
            0,
            GONE,
            format!("cannot delete the route to {block6} via {vtep6} on link {vxlan_index}"),
        );
        batch.push_allowing(
            RouteNetlinkMessage::DelNeighbour(peer_neighbour(vxlan_index, peer, true)),
            0,
            GONE,
            format!("cannot delete the neighbour entry {vtep6} on link {vxlan_index}"),
        );
    }
    batch.push_allowing(
        RouteNetlinkMessage::DelRoute(peer_route(vxlan_index, peer)),
        0,
        GONE,
        format!(
            "cannot delete the route to {} via {} on link {vxlan_index}",
            peer.block, peer.vtep_address
        ),
    );
    batch.push_allowing(
        RouteNetlinkMessage::DelNeighbour(peer_neighbour(vxlan_index, peer, false)),
        0,
        GONE,
        format!(
            "cannot delete the neighbour entry {} on link {vxlan_index}",
            peer.vtep_address
        ),
    );
    batch.push_allowing(
        RouteNetlinkMessage::DelNeighbour(peer_fdb(vxlan_index, peer)),
        0,
        GONE,
        format!(
            "cannot delete the fdb entry {} -> {} on link {vxlan_index}",
            mac_text(&peer.vtep_mac),
            peer.underlay
        ),
    );
    Ok(batch.send(rtnl.socket())?)
}

/// Removes one route of ours, of either family, to `block` via `via` (one that an agent before
/// this one left, of a peer whose MAC and underlay are no longer known); a missing one is fine.
pub fn remove_route(rtnl: &Rtnl, vxlan_index: u32, block: IpNet, via: IpAddr) -> Result<()> {
    let route = match (block, via) {
        (IpNet::V4(block), IpAddr::V4(via)) => peer_route(
            vxlan_index,
            &Peer {
                block,
                vtep_address: via,
                vtep_mac: [0; 6],
                underlay: Ipv4Addr::UNSPECIFIED,
                block6: None,
            },
        ),
        (IpNet::V6(block), IpAddr::V6(via)) => peer_route6(vxlan_index, block, via),
        _ => {
            return Err(Error::Netlink(format!(
                "a route to {block} via {via} mixes families"
            )))
        }
    };
    let mut batch = Batch::new();
    batch.push_allowing(
        RouteNetlinkMessage::DelRoute(route),
        0,
        GONE,
        format!("cannot delete the route to {block} via {via} on link {vxlan_index}"),
    );
    Ok(batch.send(rtnl.socket())?)
}

/// Deletes a link by name (the overlay's bridge, when the host leaves); a missing one is fine.
pub fn delete_link(rtnl: &Rtnl, name: &str) -> Result<()> {
    link::delete_link(rtnl, name)
}

/// The routes [`add_peer`] made on VXLAN device `vxlan_index` (main table, our protocol), of
/// both families: each block with its gateway, the peer's VTEP address. What an agent that
/// restarts compares with the cluster's state.
pub fn peers(rtnl: &Rtnl, vxlan_index: u32) -> Result<Vec<(IpNet, IpAddr)>> {
    let mut found = Vec::new();
    for query in [
        RouteMessageBuilder::<Ipv4Addr>::new().build(),
        RouteMessageBuilder::<Ipv6Addr>::new().build(),
    ] {
        let answers = batch::dump(
            rtnl.socket(),
            RouteNetlinkMessage::GetRoute(query),
            "cannot list routes",
        )?;
        found.extend(answers.iter().filter_map(|answer| match answer {
            RouteNetlinkMessage::NewRoute(route) => peer_of_route(route, vxlan_index),
            _ => None,
        }));
    }
    Ok(found)
}

/// The MTU of link `name`, or `None` when there is no such link.
pub fn link_mtu(rtnl: &Rtnl, name: &str) -> Result<Option<u32>> {
    Ok(link_view(rtnl, LinkUnspec::new_with_name(name).build(), name)?.map(|link| link.mtu))
}

/// The link holding IPv4 address `ip`: its index, name and MTU (the tests' check of the
/// underlay they made).
#[cfg(test)]
fn interface_with_address(rtnl: &Rtnl, ip: Ipv4Addr) -> Result<Option<(u32, String, u32)>> {
    let answers = batch::dump(
        rtnl.socket(),
        RouteNetlinkMessage::GetAddress(AddressMessageBuilder::<Ipv4Addr>::new().build()),
        "cannot list addresses",
    )?;
    let Some(index) = answers.iter().find_map(|answer| match answer {
        RouteNetlinkMessage::NewAddress(a) if local_address(a) == Some(ip) => Some(a.header.index),
        _ => None,
    }) else {
        return Ok(None);
    };
    // The link can go between the two requests: then nothing holds the address any more.
    let query = LinkUnspec::new_with_index(index).build();
    Ok(link_view(rtnl, query, &index.to_string())?.map(|link| (link.index, link.name, link.mtu)))
}

/// A link as rtnetlink describes it, as far as this module needs.
struct LinkView {
    index: u32,
    name: String,
    mtu: u32,
    mac: Option<Vec<u8>>,
    kind: Option<InfoKind>,
    vxlan: Vec<InfoVxlan>,
}

/// The link `query` (a GETLINK by name or index) names, or `None` when there is none; `link`
/// names it in errors.
fn link_view(rtnl: &Rtnl, query: LinkMessage, link: &str) -> Result<Option<LinkView>> {
    let what = format!("cannot read link {link}");
    let query = RouteNetlinkMessage::GetLink(query);
    let answer = match batch::ask(rtnl.socket(), query, &what) {
        Ok(answer) => answer,
        Err(refused) if refused.errno() == Some(libc::ENODEV) => return Ok(None),
        Err(refused) => return Err(refused.into()),
    };
    let RouteNetlinkMessage::NewLink(link) = answer else {
        return Err(Error::Netlink(format!("{what}: unexpected answer")));
    };
    let mut view = LinkView {
        index: link.header.index,
        name: String::new(),
        mtu: 0,
        mac: None,
        kind: None,
        vxlan: Vec::new(),
    };
    for attribute in link.attributes {
        match attribute {
            LinkAttribute::IfName(name) => view.name = name,
            LinkAttribute::Mtu(mtu) => view.mtu = mtu,
            LinkAttribute::Address(mac) => view.mac = Some(mac),
            LinkAttribute::LinkInfo(infos) => read_link_info(&mut view, infos),
            _ => {}
        }
    }
    Ok(Some(view))
}

fn read_link_info(view: &mut LinkView, infos: Vec<LinkInfo>) {
    for info in infos {
        match info {
            LinkInfo::Kind(kind) => view.kind = Some(kind),
            LinkInfo::Data(InfoData::Vxlan(vxlan)) => view.vxlan = vxlan,
            _ => {}
        }
    }
}

/// The creation request of the device: no learning (every peer is programmed), no group (no
/// flooding to a default destination), down (it comes up once it has no IPv6 addresses of its
/// own, see `push_up_without_ipv6_addresses`).
fn vxlan_link(spec: &VxlanSpec) -> LinkMessage {
    let mut builder = LinkVxlan::new(&spec.name, spec.vni)
        .port(spec.port)
        .local(spec.local)
        .learning(false)
        .mtu(spec.mtu)
        .address(spec.mac.to_vec());
    if let Some(underlay) = spec.underlay_index {
        builder = builder.dev(underlay);
    }
    builder.build()
}

/// Creates the device; returns its index.
fn create(rtnl: &Rtnl, spec: &VxlanSpec) -> Result<u32> {
    let what = format!(
        "cannot create vxlan device {} (vni {}, port {})",
        spec.name, spec.vni, spec.port
    );
    let mut batch = Batch::new();
    batch.push(
        RouteNetlinkMessage::NewLink(vxlan_link(spec)),
        NLM_F_CREATE | NLM_F_EXCL,
        what.clone(),
    );
    batch.send(rtnl.socket()).map_err(|refused| {
        // The kernel allows one device per VNI and port (and local address) in a namespace.
        if refused.errno() == Some(libc::EEXIST) {
            Error::Netlink(format!(
                "{what}: {}: another vxlan device has this vni and port, or another link this name",
                refused.error
            ))
        } else {
            refused.into()
        }
    })?;
    LinkProbe::on(rtnl.socket())
        .index(&spec.name)?
        .ok_or_else(|| Error::Netlink(format!("vxlan device {} vanished", spec.name)))
}

/// How an existing VXLAN device differs from `spec` in what the kernel cannot change or what
/// would make it another overlay (as "vni 42, want 4200"); empty when it is the one asked for.
fn mismatches(spec: &VxlanSpec, vxlan: &[InfoVxlan]) -> Vec<String> {
    let find = |pick: fn(&InfoVxlan) -> Option<String>| vxlan.iter().find_map(pick);
    let checks: [(&str, Option<String>, Option<String>); 6] = [
        (
            "vni",
            find(|i| match i {
                InfoVxlan::Id(v) => Some(v.to_string()),
                _ => None,
            }),
            Some(spec.vni.to_string()),
        ),
        (
            "port",
            find(|i| match i {
                InfoVxlan::Port(v) => Some(v.to_string()),
                _ => None,
            }),
            Some(spec.port.to_string()),
        ),
        (
            "local",
            find(|i| match i {
                InfoVxlan::Local(v) => Some(v.to_string()),
                _ => None,
            }),
            Some(spec.local.to_string()),
        ),
        (
            "link",
            find(|i| match i {
                InfoVxlan::Link(v) => Some(v.to_string()),
                _ => None,
            }),
            spec.underlay_index.map(|v| v.to_string()),
        ),
        (
            "group",
            find(|i| match i {
                InfoVxlan::Group(v) => Some(v.to_string()),
                InfoVxlan::Group6(v) => Some(v.to_string()),
                _ => None,
            }),
            None,
        ),
        (
            "learning",
            find(|i| match i {
                InfoVxlan::Learning(v) => Some(v.to_string()),
                _ => None,
            }),
            Some(false.to_string()),
        ),
    ];
    let text = |v: &Option<String>| v.as_deref().unwrap_or("none").to_string();
    checks
        .iter()
        .filter(|(_, have, want)| have != want)
        .map(|(name, have, want)| format!("{name} {}, want {}", text(have), text(want)))
        .collect()
}

/// MTU and MAC of an existing device, where they differ from `spec`.
fn push_changes(batch: &mut Batch, spec: &VxlanSpec, link: &LinkView) {
    let mut change = LinkUnspec::new_with_index(link.index);
    let mut changed = false;
    if link.mtu != spec.mtu {
        change = change.mtu(spec.mtu);
        changed = true;
    }
    if link.mac.as_deref() != Some(&spec.mac[..]) {
        change = change.address(spec.mac.to_vec());
        changed = true;
    }
    if changed {
        batch.push(
            RouteNetlinkMessage::SetLink(change.build()),
            0,
            format!(
                "cannot set mtu {} and mac {} on {}",
                spec.mtu,
                mac_text(&spec.mac),
                spec.name
            ),
        );
    }
}

/// The device's IPv4 addresses made exactly `spec.address`: the others in `present` deleted
/// (a block that moved leaves its old address behind), then the one asked for.
fn push_addresses(batch: &mut Batch, spec: &VxlanSpec, index: u32, present: &[(Ipv4Addr, u8)]) {
    for &(ip, prefix) in present.iter().filter(|&&a| Some(a) != spec.address) {
        batch.push_allowing(
            RouteNetlinkMessage::DelAddress(ipv4_address(index, ip, prefix)),
            0,
            GONE,
            format!("cannot delete {ip}/{prefix} from {}", spec.name),
        );
    }
    if let Some((ip, prefix)) = spec.address {
        batch.push(
            RouteNetlinkMessage::NewAddress(ipv4_address(index, ip, prefix)),
            NLM_F_CREATE | NLM_F_REPLACE,
            format!("cannot add {ip}/{prefix} to {}", spec.name),
        );
    }
}

fn ipv4_address(index: u32, ip: Ipv4Addr, prefix: u8) -> AddressMessage {
    AddressMessageBuilder::<Ipv4Addr>::new()
        .index(index)
        .address(ip, prefix)
        .build()
}

/// The IPv4 addresses of link `index`, with their prefix lengths.
fn ipv4_addresses_of(rtnl: &Rtnl, index: u32) -> Result<Vec<(Ipv4Addr, u8)>> {
    let answers = batch::dump(
        rtnl.socket(),
        RouteNetlinkMessage::GetAddress(AddressMessageBuilder::<Ipv4Addr>::new().build()),
        "cannot list addresses",
    )?;
    Ok(answers
        .iter()
        .filter_map(|answer| match answer {
            RouteNetlinkMessage::NewAddress(a) if a.header.index == index => {
                Some((local_address(a)?, a.header.prefix_len))
            }
            _ => None,
        })
        .collect())
}

/// The address a link holds (IFA_LOCAL; IFA_ADDRESS is the peer's on point-to-point links).
fn local_address(address: &AddressMessage) -> Option<Ipv4Addr> {
    let v4 = |ip: &IpAddr| match ip {
        IpAddr::V4(v4) => Some(*v4),
        IpAddr::V6(_) => None,
    };
    let local = address.attributes.iter().find_map(|a| match a {
        AddressAttribute::Local(ip) => v4(ip),
        _ => None,
    });
    local.or_else(|| {
        address.attributes.iter().find_map(|a| match a {
            AddressAttribute::Address(ip) => v4(ip),
            _ => None,
        })
    })
}

/// `vtep_address lladdr vtep_mac nud permanent`: the peer's VTEP answers no ARP over the
/// overlay (nothing floods), so its MAC is given. `ipv6`: the same for its link-local VTEP
/// address ([`vtep_address6`]), which the IPv6 routes go via.
fn peer_neighbour(vxlan_index: u32, peer: &Peer, ipv6: bool) -> NeighbourMessage {
    let address = match ipv6 {
        true => IpAddr::V6(vtep_address6(peer.vtep_mac)),
        false => IpAddr::V4(peer.vtep_address),
    };
    link::permanent_neighbour_entry(vxlan_index, address, peer.vtep_mac)
}

/// `bridge fdb replace vtep_mac dev VXLAN dst underlay self permanent`: frames to the peer's
/// VTEP MAC are encapsulated to its underlay address. NTF_SELF: the entry is the VXLAN
/// device's own table (no bridge is involved).
fn peer_fdb(vxlan_index: u32, peer: &Peer) -> NeighbourMessage {
    let mut msg = NeighbourMessage::default();
    msg.header.family = AddressFamily::Bridge;
    msg.header.ifindex = vxlan_index;
    msg.header.state = NeighbourState::Permanent;
    msg.header.flags = NeighbourFlags::Own;
    msg.attributes = vec![
        NeighbourAttribute::LinkLayerAddress(peer.vtep_mac.to_vec()),
        NeighbourAttribute::Destination(NeighbourAddress::Inet(peer.underlay)),
    ];
    msg
}

/// `block via vtep_address dev VXLAN onlink proto 111`: on-link, as no address of the device
/// covers the peer's VTEP address (each holds a /32).
fn peer_route(vxlan_index: u32, peer: &Peer) -> RouteMessage {
    RouteMessageBuilder::<Ipv4Addr>::new()
        .destination_prefix(peer.block.network(), peer.block.prefix_len())
        .gateway(peer.vtep_address)
        .output_interface(vxlan_index)
        .protocol(RouteProtocol::from(RTPROT_OCINET))
        .onlink()
        .build()
}

/// `block6 via vtep_address6 dev VXLAN proto 111`: a link-local gateway is on the link by
/// definition (no `onlink`, no route to it needed).
fn peer_route6(vxlan_index: u32, block6: Ipv6Net, via: Ipv6Addr) -> RouteMessage {
    RouteMessageBuilder::<Ipv6Addr>::new()
        .destination_prefix(block6.network(), block6.prefix_len())
        .gateway(via)
        .output_interface(vxlan_index)
        .protocol(RouteProtocol::from(RTPROT_OCINET))
        .build()
}

/// The block and gateway of `route` if it is one of ours on link `vxlan_index`.
fn peer_of_route(route: &RouteMessage, vxlan_index: u32) -> Option<(IpNet, IpAddr)> {
    let header = &route.header;
    let mut table = u32::from(header.table);
    let (mut oif, mut destination, mut gateway) = (None, None, None);
    for attribute in &route.attributes {
        match attribute {
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::Destination(RouteAddress::Inet(ip)) => {
                destination = Some(IpAddr::V4(*ip))
            }
            RouteAttribute::Destination(RouteAddress::Inet6(ip)) => {
                destination = Some(IpAddr::V6(*ip))
            }
            RouteAttribute::Gateway(RouteAddress::Inet(ip)) => gateway = Some(IpAddr::V4(*ip)),
            RouteAttribute::Gateway(RouteAddress::Inet6(ip)) => gateway = Some(IpAddr::V6(*ip)),
            _ => {}
        }
    }
    let ours = u8::from(header.protocol) == RTPROT_OCINET
        && header.kind == RouteType::Unicast
        && table == u32::from(RouteHeader::RT_TABLE_MAIN)
        && oif == Some(vxlan_index);
    if !ours {
        return None;
    }
    Some((
        IpNet::new(destination?, header.destination_prefix_length).ok()?,
        gateway?,
    ))
}

fn mac_text(mac: &[u8; 6]) -> String {
    let [a, b, c, d, e, f] = mac;
    format!("{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    use nix::sched::{unshare, CloneFlags};
    use rtnetlink::packet_core::Emitable;
    use rtnetlink::packet_route::link::LinkFlags;
    use rtnetlink::packet_route::route::RouteFlags;
    use rtnetlink::LinkVeth;

    use ocinet::netlink::raw;

    const UNDERLAY: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 11);
    // linux/if_link.h
    const IFLA_VXLAN_ID: u16 = 1;
    const IFLA_VXLAN_GROUP: u16 = 2;
    const IFLA_VXLAN_LINK: u16 = 3;
    const IFLA_VXLAN_LOCAL: u16 = 4;
    const IFLA_VXLAN_LEARNING: u16 = 7;
    const IFLA_VXLAN_PORT: u16 = 15;

    fn spec(underlay_index: u32) -> VxlanSpec {
        VxlanSpec {
            name: "ocx4200".to_string(),
            vni: 4200,
            port: 4789,
            local: UNDERLAY,
            underlay_index: Some(underlay_index),
            mac: [0x02, 0x6f, 10, 200, 1, 0],
            mtu: 1450,
            address: Some((Ipv4Addr::new(10, 200, 1, 0), 32)),
        }
    }

    fn peer(third: u8, underlay: Ipv4Addr) -> Peer {
        Peer {
            block: Ipv4Net::new(Ipv4Addr::new(10, 200, third, 0), 24).unwrap(),
            vtep_address: Ipv4Addr::new(10, 200, third, 0),
            vtep_mac: [0x02, 0x6f, 10, 200, third, 0],
            underlay,
            block6: Some(
                Ipv6Net::new(
                    Ipv6Addr::new(0xfd00, 0x200, 0, 0, u16::from(third) << 8, 0, 0, 0),
                    72,
                )
                .unwrap(),
            ),
        }
    }

    /// An IPv4-only peer (an overlay without an IPv6 subnet).
    fn peer4(third: u8, underlay: Ipv4Addr) -> Peer {
        Peer {
            block6: None,
            ..peer(third, underlay)
        }
    }

    /// The routes [`peers`] lists for `p`: its IPv4 block, and its IPv6 block if it has one.
    fn routes_of(p: &Peer) -> Vec<(IpNet, IpAddr)> {
        let mut routes = vec![(IpNet::V4(p.block), IpAddr::V4(p.vtep_address))];
        if let Some(block6) = p.block6 {
            routes.push((IpNet::V6(block6), IpAddr::V6(vtep_address6(p.vtep_mac))));
        }
        routes
    }

    /// The value of the first attribute `kind` among `attributes`.
    fn attr(attributes: &[u8], kind: u16) -> &[u8] {
        raw::attributes(attributes)
            .find_map(|(k, v)| (k == kind).then_some(v))
            .unwrap_or_else(|| panic!("no attribute {kind}"))
    }

    #[test]
    fn the_device_is_asked_with_a_big_endian_port_no_learning_and_down() {
        let msg = vxlan_link(&spec(7));
        let mut buf = vec![0; msg.buffer_len()];
        msg.emit(&mut buf);
        // struct ifinfomsg: family, pad, type, index, flags (at 8), change.
        let flags = u32::from_ne_bytes(buf[8..12].try_into().unwrap());
        assert_eq!(flags & libc::IFF_UP as u32, 0);
        let attributes = &buf[16..];
        assert_eq!(attr(attributes, libc::IFLA_ADDRESS), spec(7).mac);
        assert_eq!(attr(attributes, libc::IFLA_MTU), 1450u32.to_ne_bytes());
        let link_info = attr(attributes, libc::IFLA_LINKINFO);
        assert_eq!(attr(link_info, libc::IFLA_INFO_KIND), b"vxlan\0");
        let vxlan = attr(link_info, libc::IFLA_INFO_DATA);
        assert_eq!(attr(vxlan, IFLA_VXLAN_PORT), [0x12, 0xb5]);
        assert_eq!(attr(vxlan, IFLA_VXLAN_LEARNING), [0]);
        assert_eq!(attr(vxlan, IFLA_VXLAN_ID), 4200u32.to_ne_bytes());
        assert_eq!(attr(vxlan, IFLA_VXLAN_LOCAL), [192, 0, 2, 11]);
        assert_eq!(attr(vxlan, IFLA_VXLAN_LINK), 7u32.to_ne_bytes());
        let kinds: Vec<u16> = raw::attributes(vxlan).map(|(k, _)| k).collect();
        assert!(!kinds.contains(&IFLA_VXLAN_GROUP));
    }

    #[test]
    fn a_peer_is_a_permanent_neighbour_a_self_fdb_entry_and_an_onlink_route_of_ours() {
        let p = peer(3, Ipv4Addr::new(192, 0, 2, 12));
        let neighbour = peer_neighbour(5, &p, false);
        assert_eq!(neighbour.header.family, AddressFamily::Inet);
        assert_eq!(neighbour.header.ifindex, 5);
        assert_eq!(neighbour.header.state, NeighbourState::Permanent);
        assert!(neighbour
            .attributes
            .contains(&NeighbourAttribute::Destination(NeighbourAddress::Inet(
                p.vtep_address
            ))));
        assert!(neighbour
            .attributes
            .contains(&NeighbourAttribute::LinkLayerAddress(p.vtep_mac.to_vec())));

        let fdb = peer_fdb(5, &p);
        assert_eq!(fdb.header.family, AddressFamily::Bridge);
        assert_eq!(fdb.header.flags, NeighbourFlags::Own);
        assert_eq!(fdb.header.state, NeighbourState::Permanent);
        assert!(fdb
            .attributes
            .contains(&NeighbourAttribute::Destination(NeighbourAddress::Inet(
                p.underlay
            ))));

        let route = peer_route(5, &p);
        assert_eq!(u8::from(route.header.protocol), RTPROT_OCINET);
        assert!(route.header.flags.contains(RouteFlags::Onlink));
        assert_eq!(route.header.table, RouteHeader::RT_TABLE_MAIN);
        assert_eq!(route.header.destination_prefix_length, 24);
        assert_eq!(
            peer_of_route(&route, 5),
            Some((IpNet::V4(p.block), IpAddr::V4(p.vtep_address)))
        );

        let neighbour6 = peer_neighbour(5, &p, true);
        assert_eq!(neighbour6.header.family, AddressFamily::Inet6);
        assert_eq!(neighbour6.header.state, NeighbourState::Permanent);
        assert!(neighbour6
            .attributes
            .contains(&NeighbourAttribute::LinkLayerAddress(p.vtep_mac.to_vec())));
        let block6 = p.block6.unwrap();
        let route6 = peer_route6(5, block6, vtep_address6(p.vtep_mac));
        assert_eq!(u8::from(route6.header.protocol), RTPROT_OCINET);
        assert_eq!(route6.header.destination_prefix_length, 72);
        assert_eq!(peer_of_route(&route6, 5), Some(routes_of(&p)[1]));
    }

    #[test]
    fn only_routes_of_ours_on_the_device_are_peers() {
        let p = peer(3, Ipv4Addr::new(192, 0, 2, 12));
        assert_eq!(peer_of_route(&peer_route(5, &p), 6), None);
        let mut other = peer_route(5, &p);
        other.header.protocol = RouteProtocol::Static;
        assert_eq!(peer_of_route(&other, 5), None);
        let mut elsewhere = peer_route(5, &p);
        elsewhere.attributes.push(RouteAttribute::Table(100));
        assert_eq!(peer_of_route(&elsewhere, 5), None);
    }

    #[test]
    fn mismatches_name_what_differs_from_the_spec() {
        let wanted = vec![
            InfoVxlan::Id(4200),
            InfoVxlan::Link(7),
            InfoVxlan::Local(UNDERLAY),
            InfoVxlan::Learning(false),
            InfoVxlan::Port(4789),
        ];
        assert!(mismatches(&spec(7), &wanted).is_empty());
        let kernel_defaults = vec![
            InfoVxlan::Id(4200),
            InfoVxlan::Group(Ipv4Addr::new(239, 1, 1, 1)),
            InfoVxlan::Learning(true),
            InfoVxlan::Port(8472),
        ];
        assert_eq!(
            mismatches(&spec(7), &kernel_defaults),
            [
                "port 8472, want 4789",
                "local none, want 192.0.2.11",
                "link none, want 7",
                "group 239.1.1.1, want none",
                "learning true, want false",
            ]
        );
    }

    #[test]
    fn macs_are_written_as_ip_writes_them() {
        assert_eq!(mac_text(&[0x02, 0x6f, 10, 200, 1, 0]), "02:6f:0a:c8:01:00");
    }

    /// Runs `test` on a thread of its own in a network namespace of its own (unshare moves only
    /// the calling thread; the namespace goes with the thread), never in the host's. Skips, saying
    /// why, when not root or when namespaces cannot be made.
    fn in_fresh_netns(test: impl FnOnce(&Rtnl) + Send + 'static) {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root to make a network namespace and links");
            return;
        }
        let outcome = std::thread::spawn(move || {
            if let Err(e) = unshare(CloneFlags::CLONE_NEWNET) {
                eprintln!("skipped: cannot make a network namespace: {e}");
                return;
            }
            test(&Rtnl::open().unwrap());
        })
        .join();
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    }

    /// A veth pair as the underlay (dummy links may not be built into the kernel), up, with
    /// 192.0.2.11/24 on `ul0`; returns `ul0`'s index.
    fn underlay(rtnl: &Rtnl) -> u32 {
        let mut batch = Batch::new();
        batch.push(
            RouteNetlinkMessage::NewLink(LinkVeth::new("ul0", "ul1").build()),
            NLM_F_CREATE | NLM_F_EXCL,
            "create ul0".to_string(),
        );
        for name in ["ul0", "ul1"] {
            batch.push(
                RouteNetlinkMessage::SetLink(LinkUnspec::new_with_name(name).up().build()),
                0,
                format!("set {name} up"),
            );
        }
        batch.send(rtnl.socket()).unwrap();
        let index = LinkProbe::on(rtnl.socket()).index("ul0").unwrap().unwrap();
        let mut batch = Batch::new();
        batch.push(
            RouteNetlinkMessage::NewAddress(ipv4_address(index, UNDERLAY, 24)),
            NLM_F_CREATE | NLM_F_EXCL,
            "address ul0".to_string(),
        );
        batch.send(rtnl.socket()).unwrap();
        index
    }

    fn link(rtnl: &Rtnl, index: u32) -> LinkMessage {
        let query = RouteNetlinkMessage::GetLink(LinkUnspec::new_with_index(index).build());
        match batch::ask(rtnl.socket(), query, "get link").unwrap() {
            RouteNetlinkMessage::NewLink(link) => link,
            other => panic!("unexpected answer {other:?}"),
        }
    }

    fn vxlan_info(link: &LinkMessage) -> Vec<InfoVxlan> {
        link.attributes
            .iter()
            .find_map(|a| match a {
                LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|i| match i {
                    LinkInfo::Data(InfoData::Vxlan(v)) => Some(v.clone()),
                    _ => None,
                }),
                _ => None,
            })
            .unwrap_or_default()
    }

    fn ipv6_addresses_of(rtnl: &Rtnl, index: u32) -> usize {
        let query = AddressMessageBuilder::<Ipv6Addr>::new().build();
        batch::dump(
            rtnl.socket(),
            RouteNetlinkMessage::GetAddress(query),
            "dump",
        )
        .unwrap()
        .iter()
        .filter(|a| matches!(a, RouteNetlinkMessage::NewAddress(a) if a.header.index == index))
        .count()
    }

    /// Neighbour (AF_INET) or FDB (AF_BRIDGE) entries on link `index` for link-layer address
    /// `mac`.
    fn entries(
        rtnl: &Rtnl,
        family: AddressFamily,
        index: u32,
        mac: [u8; 6],
    ) -> Vec<NeighbourMessage> {
        let mut query = NeighbourMessage::default();
        query.header.family = family;
        batch::dump(
            rtnl.socket(),
            RouteNetlinkMessage::GetNeighbour(query),
            "dump",
        )
        .unwrap()
        .into_iter()
        .filter_map(|answer| match answer {
            RouteNetlinkMessage::NewNeighbour(n) => Some(n),
            _ => None,
        })
        .filter(|n| {
            n.header.ifindex == index
                && n.attributes
                    .contains(&NeighbourAttribute::LinkLayerAddress(mac.to_vec()))
        })
        .collect()
    }

    fn destination(entry: &NeighbourMessage) -> Option<Vec<u8>> {
        entry.attributes.iter().find_map(|a| match a {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => {
                Some(ip.octets().to_vec())
            }
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(ip)) => {
                Some(ip.octets().to_vec())
            }
            NeighbourAttribute::Destination(NeighbourAddress::Other(bytes)) => Some(bytes.clone()),
            _ => None,
        })
    }

    #[test]
    fn the_device_is_made_once_as_asked_and_replaced_when_it_differs() {
        in_fresh_netns(|rtnl| {
            let ul = underlay(rtnl);
            let wanted = spec(ul);
            let index = ensure_vxlan(rtnl, &wanted).unwrap();
            assert_eq!(ensure_vxlan(rtnl, &wanted).unwrap(), index);

            let device = link(rtnl, index);
            assert!(device.header.flags.contains(LinkFlags::Up));
            assert!(device.attributes.contains(&LinkAttribute::Mtu(1450)));
            assert!(device
                .attributes
                .contains(&LinkAttribute::Address(wanted.mac.to_vec())));
            let info = vxlan_info(&device);
            for expected in [
                InfoVxlan::Id(4200),
                InfoVxlan::Port(4789),
                InfoVxlan::Local(UNDERLAY),
                InfoVxlan::Link(ul),
                InfoVxlan::Learning(false),
            ] {
                assert!(info.contains(&expected), "{expected:?} not in {info:?}");
            }
            assert_eq!(
                ipv4_addresses_of(rtnl, index).unwrap(),
                [(Ipv4Addr::new(10, 200, 1, 0), 32)]
            );
            assert_eq!(
                ipv6_addresses_of(rtnl, index),
                0,
                "no IPv6 address of its own"
            );

            // Address and MTU change in place; the old address goes.
            let moved = VxlanSpec {
                mtu: 1400,
                address: Some((Ipv4Addr::new(10, 200, 9, 0), 32)),
                ..wanted.clone()
            };
            assert_eq!(ensure_vxlan(rtnl, &moved).unwrap(), index);
            assert_eq!(link_mtu(rtnl, "ocx4200").unwrap(), Some(1400));
            assert_eq!(
                ipv4_addresses_of(rtnl, index).unwrap(),
                [(Ipv4Addr::new(10, 200, 9, 0), 32)]
            );

            // Another port: the device is made anew, with the peers' routes gone.
            add_peer(rtnl, index, &peer(3, Ipv4Addr::new(192, 0, 2, 12))).unwrap();
            let other_port = VxlanSpec {
                port: 8472,
                ..wanted.clone()
            };
            let replaced = ensure_vxlan(rtnl, &other_port).unwrap();
            assert!(vxlan_info(&link(rtnl, replaced)).contains(&InfoVxlan::Port(8472)));
            assert_eq!(peers(rtnl, replaced).unwrap(), []);
            assert_eq!(ipv6_addresses_of(rtnl, replaced), 0);

            // One device per VNI and port.
            let twin = VxlanSpec {
                name: "ocx-twin".to_string(),
                address: None,
                ..other_port.clone()
            };
            let refused = ensure_vxlan(rtnl, &twin).unwrap_err().to_string();
            assert!(
                refused.starts_with(
                    "netlink: cannot create vxlan device ocx-twin (vni 4200, port 8472): File exists"
                ) && refused.contains("another vxlan device"),
                "{refused}"
            );

            // A link of that name that is no vxlan device is left alone.
            let taken = VxlanSpec {
                name: "ul0".to_string(),
                ..wanted.clone()
            };
            let refused = ensure_vxlan(rtnl, &taken).unwrap_err().to_string();
            assert!(refused.contains("not a vxlan device"), "{refused}");

            assert_eq!(
                interface_with_address(rtnl, UNDERLAY).unwrap(),
                Some((ul, "ul0".to_string(), 1500))
            );
            assert_eq!(
                interface_with_address(rtnl, Ipv4Addr::new(198, 51, 100, 1)).unwrap(),
                None
            );

            delete_vxlan(rtnl, "ocx4200").unwrap();
            delete_vxlan(rtnl, "ocx4200").unwrap();
            assert_eq!(link_mtu(rtnl, "ocx4200").unwrap(), None);
        });
    }

    #[test]
    fn peers_are_added_replaced_listed_and_removed_idempotently() {
        in_fresh_netns(|rtnl| {
            let vx = ensure_vxlan(rtnl, &spec(underlay(rtnl))).unwrap();
            let first = peer(3, Ipv4Addr::new(192, 0, 2, 12));
            add_peer(rtnl, vx, &first).unwrap();
            add_peer(rtnl, vx, &first).unwrap();
            assert_eq!(peers(rtnl, vx).unwrap(), routes_of(&first));

            let neighbours = entries(rtnl, AddressFamily::Inet, vx, first.vtep_mac);
            assert_eq!(neighbours.len(), 1);
            assert_eq!(neighbours[0].header.state, NeighbourState::Permanent);
            assert_eq!(destination(&neighbours[0]), Some(vec![10, 200, 3, 0]));
            let neighbours6 = entries(rtnl, AddressFamily::Inet6, vx, first.vtep_mac);
            assert_eq!(neighbours6.len(), 1);
            assert_eq!(neighbours6[0].header.state, NeighbourState::Permanent);
            assert_eq!(
                destination(&neighbours6[0]),
                Some(vtep_address6(first.vtep_mac).octets().to_vec())
            );

            // The peer moved to another underlay address: its FDB entry is replaced, not
            // appended to.
            let moved = Peer {
                underlay: Ipv4Addr::new(192, 0, 2, 13),
                ..first
            };
            add_peer(rtnl, vx, &moved).unwrap();
            let fdb = entries(rtnl, AddressFamily::Bridge, vx, first.vtep_mac);
            assert_eq!(fdb.len(), 1, "{fdb:?}");
            assert_eq!(fdb[0].header.state, NeighbourState::Permanent);
            assert!(fdb[0].header.flags.contains(NeighbourFlags::Own));
            assert_eq!(destination(&fdb[0]), Some(vec![192, 0, 2, 13]));

            let second = peer4(4, Ipv4Addr::new(192, 0, 2, 14));
            add_peer(rtnl, vx, &second).unwrap();
            // A route of someone else on the device is not a peer.
            let mut batch = Batch::new();
            batch.push(
                RouteNetlinkMessage::NewRoute(
                    RouteMessageBuilder::<Ipv4Addr>::new()
                        .destination_prefix(Ipv4Addr::new(10, 200, 5, 0), 24)
                        .gateway(Ipv4Addr::new(10, 200, 5, 0))
                        .output_interface(vx)
                        .onlink()
                        .build(),
                ),
                NLM_F_CREATE | NLM_F_EXCL,
                "static route".to_string(),
            );
            batch.send(rtnl.socket()).unwrap();
            let mut listed = peers(rtnl, vx).unwrap();
            listed.sort();
            let mut expected = [routes_of(&first), routes_of(&second)].concat();
            expected.sort();
            assert_eq!(listed, expected);

            remove_peer(rtnl, vx, &moved).unwrap();
            remove_peer(rtnl, vx, &moved).unwrap();
            assert_eq!(peers(rtnl, vx).unwrap(), routes_of(&second));
            assert!(entries(rtnl, AddressFamily::Inet, vx, first.vtep_mac).is_empty());
            assert!(entries(rtnl, AddressFamily::Inet6, vx, first.vtep_mac).is_empty());
            assert!(entries(rtnl, AddressFamily::Bridge, vx, first.vtep_mac).is_empty());
            assert_eq!(
                entries(rtnl, AddressFamily::Bridge, vx, second.vtep_mac).len(),
                1
            );

            delete_vxlan(rtnl, "ocx4200").unwrap();
            remove_peer(rtnl, vx, &second).unwrap();
        });
    }
}
