//! This host's block as the hook reads it (the block file): which block to ask for again after
//! a restart, and what a block held means on this host (its gateways of both families, its
//! VXLAN device, its MTU).

use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net};
use ocinet::network::{first_host, Network, Overlay};
use ocinet::overlay::state::{vxlan_name, HostBlock};

use crate::underlay::HostUnderlay;

/// The block this host held before (the block file an agent before this one wrote), to ask for
/// first: only if it was held from this underlay address and is of the network's subnet (the
/// address or the network file may have changed since).
pub(crate) fn preferred_block(
    saved: Option<HostBlock>,
    underlay: Ipv4Addr,
    subnet: Ipv4Net,
) -> Option<Ipv4Net> {
    saved
        .filter(|b| b.underlay == underlay && subnet.contains(&b.block))
        .map(|b| b.block)
}

/// What holding `block` means on this host.
pub(crate) fn host_block(
    network: &Network,
    overlay: &Overlay,
    block: Ipv4Net,
    underlay: &HostUnderlay,
    vtep_mac: String,
) -> HostBlock {
    let block6 = network.overlay_block6(block);
    HostBlock {
        block,
        gateway: first_host4(block),
        block6,
        gateway6: block6.and_then(|b| match first_host(IpNet::V6(b)) {
            IpAddr::V6(ip) => Some(ip),
            IpAddr::V4(_) => None,
        }),
        mtu: underlay.mtu,
        bridge: network.bridge.clone(),
        vxlan: vxlan_name(overlay.vni),
        underlay: underlay.address,
        vtep_mac,
    }
}

/// The block's first address, on the bridge: the containers' gateway.
fn first_host4(block: Ipv4Net) -> Ipv4Addr {
    match first_host(IpNet::V4(block)) {
        IpAddr::V4(ip) => ip,
        IpAddr::V6(_) => block.network(),
    }
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
                r#"{{"driver":"overlay","subnets":[{subnets}],"vni":4200,"etcd":{{"endpoints":["http://192.0.2.1:2379"]}}}}"#
            ),
        )
        .unwrap()
    }

    fn underlay() -> HostUnderlay {
        HostUnderlay {
            address: Ipv4Addr::new(192, 0, 2, 11),
            interface: "eth0".to_string(),
            mtu: 1450,
        }
    }

    fn saved(block: &str, underlay: [u8; 4]) -> HostBlock {
        let network = overlay(r#"{"subnet":"10.200.0.0/16"}"#);
        HostBlock {
            underlay: Ipv4Addr::from(underlay),
            ..host_block(
                &network,
                network.overlay.as_ref().unwrap(),
                net(block),
                &self::underlay(),
                "02:6f:c0:00:02:0b".to_string(),
            )
        }
    }

    #[test]
    fn the_block_held_before_is_asked_again_only_from_the_same_address_and_subnet() {
        let subnet = net("10.200.0.0/16");
        let me = Ipv4Addr::new(192, 0, 2, 11);
        assert_eq!(
            preferred_block(Some(saved("10.200.3.0/24", [192, 0, 2, 11])), me, subnet),
            Some(net("10.200.3.0/24"))
        );
        assert_eq!(
            preferred_block(Some(saved("10.200.3.0/24", [192, 0, 2, 12])), me, subnet),
            None,
            "held from another underlay address"
        );
        assert_eq!(
            preferred_block(
                Some(saved("10.200.3.0/24", [192, 0, 2, 11])),
                me,
                net("10.9.0.0/16")
            ),
            None,
            "of another subnet"
        );
        assert_eq!(preferred_block(None, me, subnet), None);
    }

    #[test]
    fn a_block_gives_its_first_host_as_gateway_and_names_the_devices() {
        let network = overlay(r#"{"subnet":"10.200.0.0/16"}"#);
        let host = host_block(
            &network,
            network.overlay.as_ref().unwrap(),
            net("10.200.3.0/24"),
            &underlay(),
            "02:6f:c0:00:02:0b".to_string(),
        );
        assert_eq!(
            host,
            HostBlock {
                block: net("10.200.3.0/24"),
                gateway: Ipv4Addr::new(10, 200, 3, 1),
                block6: None,
                gateway6: None,
                mtu: 1450,
                bridge: network.bridge.clone(),
                vxlan: vxlan_name(4200),
                underlay: Ipv4Addr::new(192, 0, 2, 11),
                vtep_mac: "02:6f:c0:00:02:0b".to_string(),
            }
        );
    }

    #[test]
    fn a_dual_stack_block_has_an_ipv6_block_and_gateway_of_the_same_index() {
        let network = overlay(r#"{"subnet":"10.200.0.0/16"},{"subnet":"fd00:200::/64"}"#);
        let host = host_block(
            &network,
            network.overlay.as_ref().unwrap(),
            net("10.200.3.0/24"),
            &underlay(),
            "02:6f:c0:00:02:0b".to_string(),
        );
        assert_eq!(host.block6, Some("fd00:200:0:0:300::/72".parse().unwrap()));
        assert_eq!(host.gateway6, Some("fd00:200::300:0:0:1".parse().unwrap()));
    }
}
