//! `routed`: no bridge. Each container's veth is a point-to-point link; the host routes a /32
//! to the container through it, and its host end is the container's gateway. Containers reach
//! each other, the host and the outside through the host's routing, masqueraded and published
//! as on a bridge network.
//!
//! How the host end answers for the gateway: the gateway's address is on the host's `lo` (a
//! /32), and each side knows the other's MAC from the start: the container has the gateway as
//! a permanent neighbour at the host end's MAC (the same on every host end), the host has the
//! container as a permanent neighbour at its MAC (Docker's, known before the link exists), and
//! the container's address is a /32 with an `onlink` default route via the gateway. So nothing
//! on the link ever asks ARP, rather than proxy ARP (which answers after a random delay of up
//! to `proxy_delay`, 0.8 s by default, unless set per link under /proc/sys) or Calico's
//! 169.254.1.1 (which the host answers for only while it has a route there, and which is not an
//! address of the host that a container could reach it at). And permanent entries count
//! against no neighbour table limit (see `neighbours`): a thousand routed containers need no
//! change to the host's `gc_thresh`.
//!
//! The gateway on `lo`, and an `unreachable` route for the subnet, are the network's, made by
//! its first container and left as a bridge is; a container's route and neighbour entries go
//! with its veth, so undo is a bridge container's.

use std::net::IpAddr;

use ipnet::IpNet;

use super::veth::{self, AddressPool};
use super::{DriverInfo, Env, NetworkDriver, Plan, Prepared, Recorded};
use crate::error::{Error, Result};
use crate::host::fault;
use crate::kernel::RoutedVethSpec;
use crate::netlink::rtnl::link::Addressing;
use crate::network::Network;
use crate::state::ipam::LeaseStore;
use crate::state::record::InterfaceRecord;

pub(crate) struct RoutedDriver;

impl NetworkDriver for RoutedDriver {
    /// The network's lease lock only: a routed network needs nothing outside the container
    /// that its first container's apply does not make.
    fn prepare(&self, info: &mut DriverInfo<'_>, network: &Network) -> Result<Prepared> {
        Ok(Prepared {
            leases: LeaseStore::open(&info.env.ctx.root, &network.name)?.begin()?,
            overlay_block: None,
        })
    }

    fn plan(
        &self,
        info: &mut DriverInfo<'_>,
        network: Network,
        prepared: Prepared,
    ) -> Result<Plan> {
        // A /32 (/128): every other address, the subnet's included, is through the gateway.
        let subnets = network
            .subnets
            .iter()
            .map(|&s| (s, if s.gateway.is_ipv6() { 128 } else { 32 }))
            .collect();
        let pool = AddressPool {
            leases: prepared.leases,
            subnets,
        };
        veth::plan(info, network, pool)
    }

    fn apply(&self, info: &mut DriverInfo<'_>, plan: Plan, iface: Recorded<'_>) -> Result<()> {
        let (network, iface) = veth::planned("routed", plan.network, iface)?;
        let (target, request) = (info.target, info.request);
        // The first address (IPv4 when there is one) names both MACs.
        let (Some(first), Some(gateway)) = (
            iface.addresses.first().map(|a| a.address),
            iface.addresses.first().and_then(|a| a.gateway),
        ) else {
            return Err(Error::Namespace(
                "a routed plan lacks the container's address or its gateway".to_string(),
            ));
        };
        if let Some(reserved) = plan.reserved {
            reserved.commit(&target.id, &info.env.ctx.boot_id)?;
        }

        let gateway_mac = veth::docker_mac(gateway);
        let subnets: Vec<(IpNet, IpAddr)> = network
            .subnets
            .iter()
            .map(|s| (s.subnet, s.gateway))
            .collect();
        let addresses: Vec<IpAddr> = iface.addresses.iter().map(|a| a.address).collect();
        let gateways: Vec<IpAddr> = iface.addresses.iter().filter_map(|a| a.gateway).collect();
        let spec = RoutedVethSpec {
            host_name: &iface.host_veth,
            mtu: network.mtu,
            subnets: &subnets,
            gateway_mac,
            peer_name: &iface.name,
            peer_mac: veth::container_mac(request, first),
            addresses: &addresses,
            route_localnet: !iface.ports.is_empty(),
            group: network.device_group(),
        };
        info.env.kernel.create_routed_veth(&spec, &target.netns)?;
        fault::point("setup:veth");
        info.env.kernel.route_to_container(&spec)?;
        fault::point("setup:route");
        let with_prefixes: Vec<(IpAddr, u8)> = iface
            .addresses
            .iter()
            .map(|a| (a.address, a.prefix_len))
            .collect();
        let addressing = Addressing {
            name: &iface.name,
            addresses: &with_prefixes,
            gateways: &gateways,
            routes: &[],
            gateway_mac: Some(gateway_mac),
        };
        info.env
            .kernel
            .configure_container(&target.netns, Some(&addressing))?;
        fault::point("setup:container-address");
        veth::forward_and_publish(info, &network, iface)
    }

    /// As a bridge container's (`veth::undo`): the /32 route and the neighbour entry go with
    /// the veth. The gateway on `lo` and the subnet's route stay, as a bridge does.
    fn undo(&self, env: &mut Env<'_>, id: &str, iface: &InterfaceRecord) -> Vec<Error> {
        veth::undo(env, id, iface)
    }
}
