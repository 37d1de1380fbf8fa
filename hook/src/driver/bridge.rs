//! `bridge`: a veth pair from the network's Linux bridge into the container, a leased address,
//! a default route via the gateway, forwarding on and egress masqueraded.
//!
//! An `overlay` network's containers are wired the same way on each host: its bridge holds
//! this host's block of the subnet (leased cluster-wide by the network's agent, which joins the
//! hosts' bridges by VXLAN), and masquerade spares the whole overlay subnet.

use std::net::IpAddr;

use ipnet::IpNet;

use super::{require_own_namespace, Driver, Env, Plan, Target};
use crate::claims::PortClaims;
use crate::error::{Error, Result};
use crate::fault;
use crate::firewall::BridgeFilter;
use crate::ipam::{LeaseStore, Pool};
use crate::kernel::{BridgeSpec, VethSpec};
use crate::link::Addressing;
use crate::naming;
use crate::network::{DriverKind, Subnet};
use crate::overlay_agent;
use crate::publish;
use crate::record::{AddressRecord, FilterRecord, InterfaceRecord};
use crate::reload;
use crate::request::{NetworkMode, NetworkRequest};
use crate::reservation::Reservation;

pub struct BridgeDriver;

impl Driver for BridgeDriver {
    fn own_namespace(&self) -> bool {
        true
    }

    fn plan(
        &self,
        env: &mut Env<'_>,
        target: &Target,
        request: &NetworkRequest,
        preferred: Option<IpAddr>,
    ) -> Result<Plan> {
        let NetworkMode::Bridge { network: name } = &request.mode else {
            return Err(Error::Namespace(format!(
                "the bridge driver cannot wire mode {}",
                request.mode
            )));
        };
        let ctx = env.ctx;
        let kernel = &mut *env.kernel;
        let mut network = match &request.definition {
            // Given inline (CNI): it stands for the name only if no file says otherwise.
            Some(inline) if inline.name == *name => {
                ctx.networks.check_inline(inline)?;
                inline.clone()
            }
            Some(inline) => {
                return Err(Error::Namespace(format!(
                    "the request joins network {name} but defines {}",
                    inline.name
                )))
            }
            None => ctx
                .networks
                .resolve(&ctx.root, name, &mut || kernel.host_ipv4_routes())?,
        };
        require_own_namespace(env, target, &request.mode.to_string())?;
        if network.internal && !request.ports.is_empty() {
            return Err(Error::InternalPorts {
                network: network.name.clone(),
            });
        }

        // Chosen under the network's and the claims' locks, held until apply commits them.
        let leases = LeaseStore::open(&ctx.root, &network.name)?.begin()?;
        // An overlay's containers get addresses of this host's block, from its agent.
        let subnet = match network.driver {
            DriverKind::Bridge => *network.primary(),
            DriverKind::Overlay => {
                let block = overlay_agent::host_block(ctx, &network)?;
                network.mtu = block.mtu;
                network.bridge = block.bridge;
                Subnet {
                    subnet: IpNet::V4(block.block),
                    gateway: IpAddr::V4(block.gateway),
                }
            }
        };
        let address = leases.choose(
            Pool::of(&network, &subnet),
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
                prefix_len: subnet.subnet.prefix_len(),
                gateway: Some(subnet.gateway),
            }],
            mac: Some(format_mac(container_mac(request, address))),
            ports: ports.clone(),
            masquerade: match (&request.definition, network.masquerade) {
                (Some(_), true) => network.subnets.iter().map(|s| s.subnet).collect(),
                _ => Vec::new(),
            },
            filter: request.definition.as_ref().map(|_| FilterRecord {
                isolate: network.isolate,
                internal: network.internal,
            }),
            published: false,
        };
        Ok(Plan {
            interface: Some(interface),
            reserved: Some(Reservation {
                leases: vec![(leases, address)],
                ports: Some((claims, ports)),
            }),
            network: Some(network),
        })
    }

    fn apply(
        &self,
        env: &mut Env<'_>,
        target: &Target,
        request: &NetworkRequest,
        plan: Plan,
        iface: Option<&mut InterfaceRecord>,
    ) -> Result<()> {
        let (Some(network), Some(iface)) = (plan.network, iface) else {
            return Err(Error::Namespace(
                "a bridge plan lacks its network or interface".to_string(),
            ));
        };
        if let Some(reserved) = plan.reserved {
            reserved.commit(&target.id, &env.ctx.boot_id)?;
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
        let bridge_index = env.kernel.ensure_bridge(&bridge)?;
        fault::point("setup:bridge");
        let mac = iface
            .addresses
            .first()
            .map(|a| container_mac(request, a.address));
        let veth = VethSpec {
            host_name: &iface.host_veth,
            bridge: &bridge,
            bridge_index,
            peer_name: &iface.name,
            peer_mac: mac,
        };
        env.kernel.create_veth(&veth, &target.netns)?;
        fault::point("setup:veth");
        if !iface.ports.is_empty() {
            // Hairpin: a container may reach its own published port through the host.
            env.kernel.set_hairpin(&iface.host_veth)?;
        }
        if !network.icc {
            env.kernel.set_port_isolated(&iface.host_veth)?;
        }
        // Last, and in one datagram: the container's link comes up with a carrier, and the
        // kernel's work for that takes the rtnl lock (see `rtnl_batch`).
        let addresses: Vec<(IpAddr, u8)> = iface
            .addresses
            .iter()
            .map(|a| (a.address, a.prefix_len))
            .collect();
        let addressing = Addressing {
            name: &iface.name,
            addresses: &addresses,
            // An internal network has no way out: no default route through it.
            gateway: match network.internal {
                true => None,
                false => iface.addresses.first().and_then(|a| a.gateway),
            },
        };
        env.kernel
            .configure_container(&target.netns, Some(&addressing))?;
        fault::point("setup:container-address");
        env.kernel.ensure_ipv4_forwarding()?;
        fault::point("setup:forwarding");
        // Masquerade and DNAT elements in one nftables batch.
        let masquerade: Vec<IpNet> = match network.masquerade {
            true => network.subnets.iter().map(|s| s.subnet).collect(),
            false => Vec::new(),
        };
        // The batch is atomic: refused, it added nothing; from here on, undoing removes them.
        let filter = BridgeFilter {
            bridge: network.bridge.clone(),
            isolate: network.isolate,
            internal: network.internal,
        };
        let table_was_missing =
            env.kernel
                .firewall_add_networks(&[filter], &masquerade, &iface.dnat_elements())?;
        iface.published = true;
        fault::point("setup:firewall");
        if table_was_missing {
            // The table was gone (`nft flush ruleset`): every live container's rules went with it.
            reload::restore(env.ctx, env.kernel)?;
        }
        Ok(())
    }

    /// Removes the DNAT elements and claims, the host veth (its peer goes with it) and the
    /// leases. The bridge stays, as Docker's `docker0` does: other containers may be on it, and
    /// the next one will be. A claim is released only once its elements are gone, and a lease
    /// only once the veth is: otherwise the next container could get a port or an address that
    /// the old one still answers for.
    fn undo(&self, env: &mut Env<'_>, id: &str, iface: &InterfaceRecord) -> Vec<Error> {
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
}

/// What names the host veth: the container id for its first interface (as before several
/// networks), the id and the interface for the others.
fn veth_key(target: &Target, request: &NetworkRequest) -> String {
    match request.interface.as_str() {
        crate::request::DEFAULT_INTERFACE => target.id.clone(),
        other => format!("{}:{other}", target.id),
    }
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
fn container_mac(request: &NetworkRequest, address: IpAddr) -> [u8; 6] {
    match (request.mac, address) {
        (Some(mac), _) => mac,
        (None, IpAddr::V4(ip)) => {
            let [a, b, c, d] = ip.octets();
            [0x02, 0x42, a, b, c, d]
        }
        (None, IpAddr::V6(ip)) => {
            let o = ip.octets();
            [0x02, 0x42, o[12], o[13], o[14], o[15]]
        }
    }
}

fn format_mac(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}
