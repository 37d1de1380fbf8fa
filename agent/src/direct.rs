//! Direct routing (`"direct_routing": true`): a peer whose underlay address is on one of the
//! underlay interface's own subnets gets no tunnel but a plain route, `block via underlay dev
//! UNDERLAY proto 111`, as flannel's `DirectRouting` does. Its packets cross the underlay as
//! they are (no encapsulation, no NAT); every other peer keeps the tunnel.
//!
//! The routes are found again by what they are (ours, on the underlay interface, to a block of
//! this overlay's subnet), so a reconcile removes what an agent before this one left, and a
//! peer that moves between direct and tunnel leaves nothing of the other way behind.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net};
use nix::libc;
use ocinet::netlink::rtnl::batch::Batch;
use ocinet::overlay::state::PeerBlock;
use rtnetlink::packet_core::{NLM_F_CREATE, NLM_F_REPLACE};
use rtnetlink::packet_route::route::{RouteMessage, RouteProtocol, RouteType};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::RouteMessageBuilder;

use crate::error::Result;
use crate::vxlan::{self, Rtnl, RTPROT_OCINET};

/// Deleting a route that is gone already.
const GONE: &[i32] = &[libc::ESRCH, libc::ENOENT, libc::ENODEV];

/// Which peers go direct: those whose underlay address is on one of `connected` (the underlay
/// interface's subnets), never this host's own address.
pub(crate) fn split_direct(
    wanted: &[PeerBlock],
    connected: &[Ipv4Net],
    own: Ipv4Addr,
) -> (Vec<PeerBlock>, Vec<PeerBlock>) {
    wanted
        .iter()
        .cloned()
        .partition(|p| p.underlay != own && connected.iter().any(|net| net.contains(&p.underlay)))
}

/// A direct route: the peer's block, via its underlay address.
pub(crate) type DirectRoute = (Ipv4Net, Ipv4Addr);

/// What a reconcile does to the direct routes: `(block, via)` to remove (stale or stray,
/// first) and to add (wanted, not there as wanted).
pub(crate) fn route_changes(
    present: &[DirectRoute],
    direct: &[PeerBlock],
) -> (Vec<DirectRoute>, Vec<DirectRoute>) {
    let wanted: HashMap<Ipv4Net, Ipv4Addr> = direct.iter().map(|p| (p.block, p.underlay)).collect();
    let remove = present
        .iter()
        .filter(|(block, via)| wanted.get(block) != Some(via))
        .copied()
        .collect();
    let add = direct
        .iter()
        .map(|p| (p.block, p.underlay))
        .filter(|route| !present.contains(route))
        .collect();
    (remove, add)
}

/// The direct routes on the underlay interface `index` to blocks of `subnet` (several overlays
/// may share the interface: each agent sees its own only).
pub(crate) fn present(rtnl: &Rtnl, index: u32, subnet: Ipv4Net) -> Result<Vec<DirectRoute>> {
    Ok(vxlan::peers(rtnl, index)?
        .into_iter()
        .filter_map(|route| match route {
            (IpNet::V4(block), IpAddr::V4(via)) if subnet.contains(&block) => Some((block, via)),
            _ => None,
        })
        .collect())
}

/// Adds (or replaces: a tunnel's route to the block goes with it) `block via via dev index`.
pub(crate) fn add(rtnl: &Rtnl, index: u32, block: Ipv4Net, via: Ipv4Addr) -> Result<()> {
    let mut batch = Batch::new();
    batch.push(
        RouteNetlinkMessage::NewRoute(route(index, block, via)),
        NLM_F_CREATE | NLM_F_REPLACE,
        format!("cannot add the direct route to {block} via {via} on link {index}"),
    );
    Ok(batch
        .send(rtnl.socket())
        .map_err(ocinet::error::Error::from)?)
}

/// Removes `block via via dev index`; a missing one is fine.
pub(crate) fn remove(rtnl: &Rtnl, index: u32, block: Ipv4Net, via: Ipv4Addr) -> Result<()> {
    let mut batch = Batch::new();
    batch.push_allowing(
        RouteNetlinkMessage::DelRoute(route(index, block, via)),
        0,
        GONE,
        format!("cannot delete the direct route to {block} via {via} on link {index}"),
    );
    Ok(batch
        .send(rtnl.socket())
        .map_err(ocinet::error::Error::from)?)
}

/// The metric of the subnet's unreachable route: after any route of the subnet's own the
/// host has (the lowest metric wins), and never the same as one of them, so a replace only
/// ever replaces ours.
const UNREACHABLE_METRIC: u32 = 0x6f00_0000;

/// `unreachable subnet proto 111 metric UNREACHABLE_METRIC`: an address of the overlay's
/// subnet that no host holds is refused here. Without it, the forward chain's pass for the
/// overlay's own traffic to the underlay would let an internal overlay's packets for it out
/// by the default route; the blocks' routes are longer and win.
pub(crate) fn set_unreachable(rtnl: &Rtnl, subnet: Ipv4Net, wanted: bool) -> Result<()> {
    let mut batch = Batch::new();
    let what = format!("the unreachable route to {subnet}");
    match wanted {
        true => batch.push(
            RouteNetlinkMessage::NewRoute(unreachable(subnet)),
            NLM_F_CREATE | NLM_F_REPLACE,
            format!("cannot add {what}"),
        ),
        false => batch.push_allowing(
            RouteNetlinkMessage::DelRoute(unreachable(subnet)),
            0,
            GONE,
            format!("cannot delete {what}"),
        ),
    }
    Ok(batch
        .send(rtnl.socket())
        .map_err(ocinet::error::Error::from)?)
}

fn unreachable(subnet: Ipv4Net) -> RouteMessage {
    RouteMessageBuilder::<Ipv4Addr>::new()
        .destination_prefix(subnet.network(), subnet.prefix_len())
        .kind(RouteType::Unreachable)
        .priority(UNREACHABLE_METRIC)
        .protocol(RouteProtocol::from(RTPROT_OCINET))
        .build()
}

/// `block via via dev index proto 111`: the gateway is on the link's own subnet, so no
/// `onlink` is needed.
fn route(index: u32, block: Ipv4Net, via: Ipv4Addr) -> RouteMessage {
    RouteMessageBuilder::<Ipv4Addr>::new()
        .destination_prefix(block.network(), block.prefix_len())
        .gateway(via)
        .output_interface(index)
        .protocol(RouteProtocol::from(RTPROT_OCINET))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(third: u8, underlay: [u8; 4]) -> PeerBlock {
        PeerBlock {
            block: format!("10.200.{third}.0/24").parse().unwrap(),
            block6: None,
            underlay: Ipv4Addr::from(underlay),
            vtep_mac: format!("02:6f:0a:c8:{third:02x}:00"),
        }
    }

    #[test]
    fn peers_on_a_connected_subnet_go_direct_and_the_others_through_the_tunnel() {
        let near = peer(2, [192, 0, 2, 12]);
        let far = peer(3, [198, 51, 100, 13]);
        let connected = ["192.0.2.0/24".parse().unwrap()];
        let own = Ipv4Addr::new(192, 0, 2, 11);
        let (direct, tunnel) = split_direct(&[near.clone(), far.clone()], &connected, own);
        assert_eq!((direct, tunnel), (vec![near], vec![far]));
        // No connected subnet (direct routing off, or the interface lost its address).
        let all = [peer(2, [192, 0, 2, 12])];
        assert_eq!(split_direct(&all, &[], own), (vec![], all.to_vec()));
    }

    #[test]
    fn a_reconcile_removes_stale_and_stray_routes_and_adds_the_missing() {
        let route = |block: &str, via: [u8; 4]| (block.parse().unwrap(), Ipv4Addr::from(via));
        let present = [
            route("10.200.2.0/24", [192, 0, 2, 12]), // wanted as it is
            route("10.200.4.0/24", [192, 0, 2, 99]), // its host moved
            route("10.200.7.0/24", [192, 0, 2, 17]), // left by an agent before: gone
        ];
        let direct = [
            peer(2, [192, 0, 2, 12]),
            peer(4, [192, 0, 2, 14]),
            peer(5, [192, 0, 2, 15]),
        ];
        let (remove, add) = route_changes(&present, &direct);
        assert_eq!(remove, [present[1], present[2]]);
        assert_eq!(
            add,
            [
                route("10.200.4.0/24", [192, 0, 2, 14]),
                route("10.200.5.0/24", [192, 0, 2, 15])
            ]
        );
        assert_eq!(route_changes(&present[..1], &direct[..1]), (vec![], vec![]));
    }
}
