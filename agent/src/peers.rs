//! Which peers this host's tunnels go to, decided apart from etcd and the kernel: the peers
//! wanted, from the blocks etcd lists, and what to remove and add to go from what is
//! programmed to them.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net};
use ocinet::network::Network;
use ocinet::overlay::state::PeerBlock;

use crate::blocks::Member;

/// The other hosts' blocks (`blocks` as [`crate::cluster::Cluster::blocks`] read and checked
/// them), each with its IPv6 block on a dual-stack overlay. Never this host's own block, nor
/// another block with this host's underlay address (one an agent before this one held, not
/// yet run out).
pub(crate) fn wanted_peers(
    blocks: HashMap<Ipv4Net, Member>,
    own_block: Ipv4Net,
    own_underlay: Ipv4Addr,
    network: &Network,
) -> Vec<PeerBlock> {
    blocks
        .into_iter()
        .filter(|(b, m)| *b != own_block && m.underlay != own_underlay)
        .map(|(b, m)| PeerBlock {
            block: b,
            block6: network.overlay_block6(b),
            underlay: m.underlay,
            vtep_mac: m.vtep_mac,
        })
        .collect()
}

/// What a reconcile does to the kernel's peers.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct PeerChanges {
    /// Removed first: no longer wanted, or wanted with another address or MAC (then also in
    /// `add`, as it is wanted now).
    pub(crate) remove: Vec<PeerBlock>,
    /// Then added: wanted and not programmed as it is wanted.
    pub(crate) add: Vec<PeerBlock>,
}

/// From `inherited` (what an agent before this one programmed; stale unless wanted as it is)
/// and `programmed` (what this agent programmed) to `wanted`.
pub(crate) fn peer_changes(
    inherited: Vec<PeerBlock>,
    programmed: &HashMap<Ipv4Net, PeerBlock>,
    wanted: &[PeerBlock],
) -> PeerChanges {
    let wanted_by_block: HashMap<Ipv4Net, &PeerBlock> =
        wanted.iter().map(|p| (p.block, p)).collect();
    let remove: Vec<PeerBlock> = inherited
        .into_iter()
        .chain(programmed.values().cloned())
        .filter(|p| wanted_by_block.get(&p.block) != Some(&p))
        .collect();
    // A removed peer takes its block's route and neighbour entry with it (they are named by the
    // block), whichever peer programmed them.
    let removed_blocks: HashSet<Ipv4Net> = remove.iter().map(|p| p.block).collect();
    let add = wanted
        .iter()
        .filter(|p| programmed.get(&p.block) != Some(*p) || removed_blocks.contains(&p.block))
        .cloned()
        .collect();
    PeerChanges { remove, add }
}

/// The routes of `on_device` (the VXLAN device's, with their gateway) that no peer of `wanted`
/// wants, of either family: left by an agent that was killed.
pub(crate) fn stray_routes(
    on_device: Vec<(IpNet, IpAddr)>,
    wanted: &[PeerBlock],
) -> Vec<(IpNet, IpAddr)> {
    let wanted_blocks: HashSet<IpNet> = wanted
        .iter()
        .flat_map(|p| [Some(IpNet::V4(p.block)), p.block6.map(IpNet::V6)])
        .flatten()
        .collect();
    on_device
        .into_iter()
        .filter(|(block, _)| !wanted_blocks.contains(block))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn net(text: &str) -> Ipv4Net {
        text.parse().unwrap()
    }

    fn overlay(subnets: &str) -> Network {
        Network::parse(
            "blue",
            Path::new("blue.json"),
            &format!(
                r#"{{"driver":"overlay","subnets":[{subnets}],"etcd":{{"endpoints":["http://192.0.2.1:2379"]}}}}"#
            ),
        )
        .unwrap()
    }

    fn member(last: u8) -> Member {
        Member {
            underlay: Ipv4Addr::new(192, 0, 2, last),
            vtep_mac: format!("02:6f:0a:c8:{last:02x}:00"),
        }
    }

    fn peer(third: u8, last: u8) -> PeerBlock {
        PeerBlock {
            block: net(&format!("10.200.{third}.0/24")),
            block6: None,
            underlay: Ipv4Addr::new(192, 0, 2, last),
            vtep_mac: format!("02:6f:0a:c8:{last:02x}:00"),
        }
    }

    fn sorted(mut peers: Vec<PeerBlock>) -> Vec<PeerBlock> {
        peers.sort_by_key(|p| p.block);
        peers
    }

    #[test]
    fn every_other_host_is_a_peer_but_never_this_one() {
        let blocks = HashMap::from([
            (net("10.200.1.0/24"), member(11)), // this host's block
            (net("10.200.2.0/24"), member(12)),
            (net("10.200.3.0/24"), member(13)),
            // This host's before a restart, under a lease not yet run out.
            (net("10.200.9.0/24"), member(11)),
        ]);
        let wanted = wanted_peers(
            blocks,
            net("10.200.1.0/24"),
            Ipv4Addr::new(192, 0, 2, 11),
            &overlay(r#"{"subnet":"10.200.0.0/16"}"#),
        );
        assert_eq!(sorted(wanted), [peer(2, 12), peer(3, 13)]);
    }

    #[test]
    fn on_a_dual_stack_overlay_each_peer_has_its_ipv6_block() {
        let blocks = HashMap::from([(net("10.200.3.0/24"), member(13))]);
        let wanted = wanted_peers(
            blocks,
            net("10.200.1.0/24"),
            Ipv4Addr::new(192, 0, 2, 11),
            &overlay(r#"{"subnet":"10.200.0.0/16"},{"subnet":"fd00:200::/64"}"#),
        );
        assert_eq!(
            wanted,
            [PeerBlock {
                block6: Some("fd00:200:0:0:300::/72".parse().unwrap()),
                ..peer(3, 13)
            }]
        );
    }

    #[test]
    fn a_reconcile_adds_the_new_removes_the_gone_and_leaves_the_same_alone() {
        let programmed = HashMap::from([
            (net("10.200.2.0/24"), peer(2, 12)),
            (net("10.200.3.0/24"), peer(3, 13)),
        ]);
        let wanted = [peer(2, 12), peer(4, 14)];
        let changes = peer_changes(Vec::new(), &programmed, &wanted);
        assert_eq!(
            changes,
            PeerChanges {
                remove: vec![peer(3, 13)],
                add: vec![peer(4, 14)],
            }
        );
        let settled = HashMap::from([
            (net("10.200.2.0/24"), peer(2, 12)),
            (net("10.200.4.0/24"), peer(4, 14)),
        ]);
        assert_eq!(
            peer_changes(Vec::new(), &settled, &wanted),
            PeerChanges::default()
        );
    }

    #[test]
    fn a_peer_whose_address_or_mac_changed_is_removed_then_added() {
        let moved = PeerBlock {
            underlay: Ipv4Addr::new(192, 0, 2, 99),
            ..peer(2, 12)
        };
        let new_mac = PeerBlock {
            vtep_mac: "02:6f:0a:c8:63:00".to_string(),
            ..peer(3, 13)
        };
        let programmed = HashMap::from([
            (net("10.200.2.0/24"), peer(2, 12)),
            (net("10.200.3.0/24"), peer(3, 13)),
        ]);
        let changes = peer_changes(Vec::new(), &programmed, &[moved.clone(), new_mac.clone()]);
        assert_eq!(sorted(changes.remove), [peer(2, 12), peer(3, 13)]);
        assert_eq!(changes.add, [moved, new_mac]);
    }

    #[test]
    fn what_an_agent_before_programmed_is_removed_unless_still_wanted() {
        let inherited = vec![peer(2, 12), peer(3, 13), peer(5, 15)];
        let changed = PeerBlock {
            underlay: Ipv4Addr::new(192, 0, 2, 99),
            ..peer(5, 15)
        };
        let changes = peer_changes(inherited, &HashMap::new(), &[peer(2, 12), changed.clone()]);
        assert_eq!(changes.remove, [peer(3, 13), peer(5, 15)]);
        // This agent has programmed nothing yet: every wanted peer is added (again).
        assert_eq!(changes.add, [peer(2, 12), changed.clone()]);
        // Had it programmed the changed peer already, removing the old one would take the
        // block's route with it: added again.
        let programmed = HashMap::from([(changed.block, changed.clone())]);
        let changes = peer_changes(
            vec![peer(5, 15)],
            &programmed,
            std::slice::from_ref(&changed),
        );
        assert_eq!(changes.remove, [peer(5, 15)]);
        assert_eq!(changes.add, [changed]);
    }

    #[test]
    fn routes_on_the_device_that_no_peer_wants_are_strays() {
        let six = PeerBlock {
            block6: Some("fd00:200:0:0:200::/72".parse().unwrap()),
            ..peer(2, 12)
        };
        let route = |block: &str, via: &str| (block.parse().unwrap(), via.parse().unwrap());
        let on_device = vec![
            route("10.200.2.0/24", "10.200.2.0"),
            route("fd00:200:0:0:200::/72", "fe80::6f:aff:fec8:200"),
            route("10.200.7.0/24", "10.200.7.0"),
            route("fd00:200:0:0:700::/72", "fe80::6f:aff:fec8:700"),
        ];
        assert_eq!(
            stray_routes(on_device, &[six]),
            [
                route("10.200.7.0/24", "10.200.7.0"),
                route("fd00:200:0:0:700::/72", "fe80::6f:aff:fec8:700"),
            ]
        );
    }
}
