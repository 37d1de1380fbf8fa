//! `bridge`: a veth pair from the network's Linux bridge into the container, a leased address,
//! a default route via the gateway, forwarding on and egress masqueraded.
//!
//! An `overlay` network's containers are wired the same way on each host: its bridge holds
//! this host's block of the subnet (leased cluster-wide by the network's agent, which joins the
//! hosts' bridges by VXLAN), and masquerade spares the whole overlay subnet. A dual-stack
//! overlay's bridge holds the host's IPv6 block too (derived from its IPv4 block).

use std::net::IpAddr;

use ipnet::IpNet;

use super::veth::{self, AddressPool};
use super::{DriverInfo, Env, NetworkDriver, Plan, Prepared, Recorded};
use crate::driver::neighbours;
use crate::error::{Error, Result};
use crate::host::fault;
use crate::kernel::{BridgeSpec, VethSpec};
use crate::netlink::rtnl::link::Addressing;
use crate::network::{DriverKind, Network, Subnet};
use crate::overlay::agent;
use crate::state::ipam::LeaseStore;
use crate::state::record::InterfaceRecord;

pub(crate) struct BridgeDriver;

impl NetworkDriver for BridgeDriver {
    /// The network's lease lock, then an overlay's agent, started under it unless it runs.
    fn prepare(&self, info: &mut DriverInfo<'_>, network: &Network) -> Result<Prepared> {
        let ctx = info.env.ctx;
        let leases = LeaseStore::open(&ctx.root, &network.name)?.begin()?;
        let overlay_block = match network.driver {
            DriverKind::Overlay => Some(agent::ensure_running(ctx, network)?),
            DriverKind::Bridge | DriverKind::Routed => None,
        };
        Ok(Prepared {
            leases,
            overlay_block,
        })
    }

    fn plan(
        &self,
        info: &mut DriverInfo<'_>,
        mut network: Network,
        prepared: Prepared,
    ) -> Result<Plan> {
        // An overlay's containers get addresses of this host's block, from its agent.
        let subnets = match prepared.overlay_block {
            Some(block) => {
                // An agent started before the file gained (or lost) its IPv6 subnet runs the
                // old definition: its peers' IPv6 routes would not match these addresses.
                if block.block6 != network.overlay_block6(block.block) {
                    return Err(Error::Overlay(format!(
                        "the overlay agent of network {} runs an older definition of it (IPv6 block {}, the file's {}): stop this host's containers of the network so that it restarts",
                        network.name,
                        text_or_none(block.block6),
                        text_or_none(network.overlay_block6(block.block)),
                    )));
                }
                network.mtu = block.mtu;
                network.bridge = block.bridge;
                let mut subnets = vec![Subnet {
                    subnet: IpNet::V4(block.block),
                    gateway: IpAddr::V4(block.gateway),
                }];
                // A dual-stack overlay: an IPv6 address of the host's derived block as well,
                // leased and added (`nodad`) as on a dual-stack bridge.
                if let (Some(block6), Some(gateway6)) = (block.block6, block.gateway6) {
                    subnets.push(Subnet {
                        subnet: IpNet::V6(block6),
                        gateway: IpAddr::V6(gateway6),
                    });
                }
                subnets
            }
            None => network.subnets.clone(),
        };
        let pool = AddressPool {
            leases: prepared.leases,
            subnets: subnets
                .into_iter()
                .map(|s| (s, s.subnet.prefix_len()))
                .collect(),
        };
        veth::plan(info, network, pool)
    }

    fn apply(&self, info: &mut DriverInfo<'_>, plan: Plan, iface: Recorded<'_>) -> Result<()> {
        let (network, iface) = veth::planned("bridge", plan.network, iface)?;
        let (target, request) = (info.target, info.request);
        if let Some(reserved) = plan.reserved {
            reserved.commit(&target.id, &info.env.ctx.boot_id)?;
        }

        // The bridge holds the gateways of the interface's subnets (an overlay's: of the block).
        let gateways: Vec<(IpAddr, u8)> = iface
            .addresses
            .iter()
            .filter_map(|a| Some((a.gateway?, a.prefix_len)))
            .collect();
        let bridge = BridgeSpec {
            name: &network.bridge,
            network: &network.name,
            mtu: network.mtu,
            gateways: &gateways,
            route_localnet: !iface.ports.is_empty(),
        };
        let bridge_index = info.env.kernel.ensure_bridge(&bridge)?;
        fault::point("setup:bridge");
        let mac = iface
            .addresses
            .first()
            .map(|a| veth::container_mac(request, a.address));
        let veth = VethSpec {
            host_name: &iface.host_veth,
            bridge: &bridge,
            bridge_index,
            peer_name: &iface.name,
            peer_mac: mac,
        };
        info.env.kernel.create_veth(&veth, &target.netns)?;
        fault::point("setup:veth");
        if !iface.ports.is_empty() {
            // Hairpin: a container may reach its own published port through the host.
            info.env.kernel.set_hairpin(&iface.host_veth)?;
        }
        if !network.icc {
            info.env.kernel.set_port_isolated(&iface.host_veth)?;
        }
        // Last, and in one datagram: the container's link comes up with a carrier, and the
        // kernel's work for that takes the rtnl lock (see `netlink::rtnl::batch`).
        let addresses: Vec<(IpAddr, u8)> = iface
            .addresses
            .iter()
            .map(|a| (a.address, a.prefix_len))
            .collect();
        // A default route per family; an internal network has no way out: none through it.
        let default_gateways: Vec<IpAddr> = match network.internal {
            true => Vec::new(),
            false => iface.addresses.iter().filter_map(|a| a.gateway).collect(),
        };
        // An internal overlay still reaches its other hosts' blocks: a route to its whole
        // subnet of each family through the block's gateway (a default route does that for
        // the others).
        let overlay_routes: Vec<(IpNet, IpAddr)> = match (network.internal, &network.overlay) {
            (true, Some(_)) => iface
                .addresses
                .iter()
                .filter_map(|a| {
                    let gateway = a.gateway?;
                    let whole = network
                        .subnets
                        .iter()
                        .find(|s| s.subnet.addr().is_ipv6() == gateway.is_ipv6())?;
                    Some((whole.subnet, gateway))
                })
                .collect(),
            _ => Vec::new(),
        };
        let addressing = Addressing {
            name: &iface.name,
            addresses: &addresses,
            gateways: &default_gateways,
            routes: &overlay_routes,
            gateway_mac: None,
        };
        // A handed-over end is addressed by the runtime that moves it (Docker).
        if !target.netns.is_handover() {
            info.env
                .kernel
                .configure_container(&target.netns, Some(&addressing))?;
        }
        fault::point("setup:container-address");
        veth::forward_and_publish(info, &network, iface)?;
        let ipv6 = iface.addresses.iter().any(|a| a.address.is_ipv6());
        neighbours::check(info, ipv6);
        Ok(())
    }

    /// Undoes the veth, its ports and its lease (`veth::undo`). The bridge stays, as Docker's
    /// `docker0` does: other containers may be on it, and the next one will be.
    fn undo(&self, env: &mut Env<'_>, id: &str, iface: &InterfaceRecord) -> Vec<Error> {
        veth::undo(env, id, iface)
    }
}

fn text_or_none(block: Option<ipnet::Ipv6Net>) -> String {
    block.map_or_else(|| "none".to_string(), |b| b.to_string())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::driver::Target;
    use crate::engine::tests::{request, Sandbox};
    use crate::host::netns::NetnsRef;
    use crate::kernel::fake::RecordingKernel;
    use crate::overlay::state::{HostBlock, OverlayDir};

    fn overlay(subnets: serde_json::Value) -> Network {
        let fields = serde_json::json!({
            "driver": "overlay",
            "subnets": subnets,
            "etcd": {"endpoints": ["http://192.0.2.1:2379"]},
        });
        Network::from_json("ov", Path::new("ov.json"), fields).unwrap()
    }

    /// What an agent of `ov` would have written for this host: its fourth block.
    fn block() -> HostBlock {
        HostBlock {
            block: "10.200.3.0/24".parse().unwrap(),
            gateway: "10.200.3.1".parse().unwrap(),
            block6: None,
            gateway6: None,
            mtu: 1450,
            bridge: "ocb-ov".to_string(),
            vxlan: "ocx-ov".to_string(),
            underlay: "192.0.2.7".parse().unwrap(),
            vtep_mac: "02:00:c0:00:02:07".to_string(),
        }
    }

    /// The bridge driver's plan of `c1` on `network`, given `block` as its prepare would:
    /// the plan, and the kernel's calls.
    fn plan_with(sb: &Sandbox, network: Network, block: HostBlock) -> (Result<Plan>, Vec<String>) {
        let mut kernel = RecordingKernel::default();
        let pid = std::process::id() as i32;
        let target = Target {
            id: "c1".to_string(),
            netns: NetnsRef::Pid(pid),
            pid: Some(pid),
        };
        let request = request(&[("io.ocinet.network", "ov")]);
        let mut info = DriverInfo {
            env: Env {
                ctx: &sb.ctx,
                kernel: &mut kernel,
            },
            target: &target,
            request: &request,
            preferred: &[],
        };
        let prepared = Prepared {
            leases: LeaseStore::open(&sb.ctx.root, "ov")
                .unwrap()
                .begin()
                .unwrap(),
            overlay_block: Some(block),
        };
        let planned = BridgeDriver.plan(&mut info, network, prepared);
        (planned, kernel.calls)
    }

    #[test]
    fn an_overlay_plan_leases_from_the_block_it_is_given_and_starts_nothing() {
        let sb = Sandbox::new("overlay-plan");
        let network = overlay(serde_json::json!([{"subnet": "10.200.0.0/16"}]));
        let (planned, calls) = plan_with(&sb, network, block());
        let plan = planned.unwrap();
        assert!(calls.is_empty(), "{calls:?}");
        let iface = plan.interface.unwrap();
        assert_eq!(iface.addresses[0].to_string(), "10.200.3.2/24");
        assert_eq!(iface.bridge, "ocb-ov");
        assert_eq!(plan.network.map(|n| n.mtu), Some(1450));
        // No agent was asked for the block: none was started, none left a log.
        let dir = OverlayDir::open(&sb.ctx.root, "ov").unwrap();
        assert!(dir.live_agent().is_none());
        assert!(!dir.log_path().exists());
    }

    #[test]
    fn an_overlay_plan_refuses_a_block_of_an_older_definition() {
        let sb = Sandbox::new("overlay-older");
        let dual = overlay(serde_json::json!([
            {"subnet": "10.200.0.0/16"},
            {"subnet": "fd00:200::/64"},
        ]));
        let (planned, calls) = plan_with(&sb, dual, block());
        let err = planned.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("runs an older definition"), "{err}");
        assert!(calls.is_empty(), "{calls:?}");
    }
}
