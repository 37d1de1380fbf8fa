//! rtnetlink: bridges, veth pairs, addresses and routes. One current-thread tokio runtime; a
//! netlink socket belongs to the namespace it was opened in, so the container's socket is
//! opened while this thread is briefly inside the container's namespace.
//!
//! Requests that do not need each other's answers are pipelined: joined futures queue their
//! messages in order on one socket, the kernel handles them in that order, and the answers
//! come back together (one round trip instead of one each).

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};

use futures_util::{join, try_join, TryStreamExt};
use ipnet::Ipv4Net;
use nix::libc;
use rtnetlink::packet_core::DefaultNla;
use rtnetlink::packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use rtnetlink::packet_route::link::{
    AfSpecInet, AfSpecInet6, AfSpecUnspec, In6AddrGenMode, InetDevConf, InfoData, InfoKind,
    InfoVeth, LinkAttribute, LinkMessage, LinkProtoInfoBridge,
};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::{
    AddressMessageBuilder, Handle, LinkAddRequest, LinkBridge, LinkMessageBuilder, LinkUnspec,
    LinkVeth, RouteMessageBuilder,
};
use tokio::runtime::Runtime;

use crate::error::{Error, Result};
use crate::link_probe::LinkProbe;
use crate::netns::Netns;
use crate::raw_netlink::RawSocket;
use crate::rtnl_batch::Batch;

const ENOENT: i32 = 2;
const ESRCH: i32 = 3;
const ENODEV: i32 = 19;
const EEXIST: i32 = 17;
/// What the kernel answers when a bridge has no free port number left.
const EXFULL: i32 = 54;
/// IFLA_BRPORT_MODE (linux/if_link.h): the port's hairpin mode.
const IFLA_BRPORT_MODE: u16 = 4;

/// A netlink session: the runtime plus a handle and a link probe on the host's namespace.
pub struct Netlink {
    rt: Runtime,
    host: Handle,
    host_probe: LinkProbe,
}

/// A netlink socket and a link probe in another namespace (the container's).
pub struct Inside {
    socket: RawSocket,
    probe: LinkProbe,
}

impl Inside {
    /// Opens both while this thread is briefly inside `ns`.
    pub fn open(ns: &Netns) -> Result<Inside> {
        ns.run_inside(|| {
            Ok(Inside {
                socket: RawSocket::open(libc::NETLINK_ROUTE)
                    .map_err(|e| Error::Netlink(format!("cannot open a netlink socket: {e}")))?,
                probe: LinkProbe::open()?,
            })
        })?
    }
}

impl Netlink {
    pub fn new() -> Result<Netlink> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(|e| Error::Netlink(format!("cannot start the netlink runtime: {e}")))?;
        let host = connect(&rt)?;
        Ok(Netlink {
            rt,
            host,
            host_probe: LinkProbe::open()?,
        })
    }

    pub fn host(&self) -> &Handle {
        &self.host
    }

    pub fn host_probe(&self) -> &LinkProbe {
        &self.host_probe
    }

    pub fn run<F: Future>(&self, fut: F) -> F::Output {
        self.rt.block_on(fut)
    }
}

fn connect(rt: &Runtime) -> Result<Handle> {
    let _guard = rt.enter();
    let (conn, handle, _) = rtnetlink::new_connection()
        .map_err(|e| Error::Netlink(format!("cannot open a netlink socket: {e}")))?;
    rt.spawn(conn);
    Ok(handle)
}

/// The errno of a netlink error reply, if it is one.
fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}

fn nl_err(what: impl std::fmt::Display) -> impl FnOnce(rtnetlink::Error) -> Error {
    move |e| Error::Netlink(format!("{what}: {e}"))
}

/// Makes sure bridge `name` exists, is up and holds `gateway/prefix`; returns its index.
/// Safe against a concurrent hook doing the same. A bridge that exists is used as it is.
///
/// A bridge ocinet makes has multicast snooping off. Snooping only narrows multicast where an
/// IGMP querier runs on the network; without one (the bridge's own querier is off by default,
/// as on docker0) the kernel floods multicast to every port either way, so containers see the
/// same traffic. What snooping costs without a querier: each port that joins restarts the
/// multicast timers of every port on the bridge, so each container's setup costs more than the
/// one before. Who runs a querier turns it on (`ip link set BRIDGE type bridge mcast_snooping 1`).
pub async fn ensure_bridge(
    handle: &Handle,
    probe: &LinkProbe,
    name: &str,
    mtu: u32,
    gateway: Ipv4Addr,
    prefix: u8,
    route_localnet: bool,
) -> Result<u32> {
    let bridge = match probe.get(name)? {
        Some(bridge) => bridge,
        None => {
            let msg = LinkBridge::new(name)
                .mtu(mtu)
                .address(bridge_mac(gateway).to_vec())
                .mcast_snooping(false)
                .up()
                .build();
            match handle.link().add(msg).execute().await {
                Ok(()) => {}
                Err(e) if errno(&e) == Some(EEXIST) => {}
                Err(e) => return Err(nl_err(format!("cannot create bridge {name}"))(e)),
            }
            probe
                .get(name)?
                .ok_or_else(|| Error::Netlink(format!("bridge {name} vanished after creation")))?
        }
    };
    let address = async {
        match handle
            .address()
            .add(bridge.index, IpAddr::V4(gateway), prefix)
            .execute()
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if errno(&e) == Some(EEXIST) => Ok(()),
            Err(e) => Err(nl_err(format!(
                "cannot add {gateway}/{prefix} to bridge {name}"
            ))(e)),
        }
    };
    let up = async {
        if bridge.up {
            return Ok(());
        }
        set_up(handle, bridge.index)
            .await
            .map_err(|e| Error::Netlink(format!("bridge {name}: {e}")))
    };
    let localnet = async {
        if !route_localnet || route_localnet_is_on(handle, bridge.index).await? {
            return Ok(());
        }
        let mut conf = InetDevConf::default();
        conf.route_localnet = 1;
        let msg = LinkUnspec::new_with_index(bridge.index)
            .append_extra_attribute(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet(vec![
                AfSpecInet::DevConfRequest(conf),
            ])]))
            .build();
        link_request(
            handle.link().change(msg),
            format!("cannot enable route_localnet on bridge {name}"),
        )
        .await
    };
    try_join!(address, up, localnet)?;
    Ok(bridge.index)
}

/// Whether link `index` routes packets with loopback sources (`route_localnet`), from the
/// link's IPv4 settings as rtnetlink describes the link.
async fn route_localnet_is_on(handle: &Handle, index: u32) -> Result<bool> {
    let what = || nl_err(format!("cannot read the IPv4 settings of link {index}"));
    let link = handle
        .link()
        .get()
        .match_index(index)
        .execute()
        .try_next()
        .await
        .map_err(what())?
        .ok_or_else(|| Error::Netlink(format!("link {index} vanished")))?;
    Ok(link.attributes.iter().any(|a| match a {
        LinkAttribute::AfSpecUnspec(families) => families.iter().any(|f| match f {
            AfSpecUnspec::Inet(settings) => settings
                .iter()
                .any(|s| matches!(s, AfSpecInet::DevConf(c) if c.route_localnet != 0)),
            _ => false,
        }),
        _ => false,
    }))
}

/// The bridge's own MAC address, fixed at creation (as Docker does): 02:42 and the gateway's
/// IPv4 address, locally administered and unique on the network, as the gateway's address is
/// never leased. A bridge left to choose takes the lowest MAC among its ports, so joining and
/// leaving containers change the gateway's MAC under the others, and the kernel compares every
/// port's MAC each time one joins.
fn bridge_mac(gateway: Ipv4Addr) -> [u8; 6] {
    let [a, b, c, d] = gateway.octets();
    [0x02, 0x42, a, b, c, d]
}

async fn set_up(handle: &Handle, index: u32) -> Result<()> {
    handle
        .link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(nl_err(format!("cannot set link {index} up")))
}

/// The bridge a veth joins: its index, and names for messages.
pub struct BridgeRef<'a> {
    pub index: u32,
    pub name: &'a str,
    pub network: &'a str,
}

/// What the container end of a veth looks like.
pub struct VethPeer<'a> {
    pub name: &'a str,
    pub netns: &'a Netns,
    pub mac: Option<[u8; 6]>,
}

/// Creates `host_name` on the bridge, with its peer created straight in the container's
/// namespace (no rename, no move afterwards); then, queued in this order, `addrgenmode none`
/// and up for the host end.
///
/// ocinet's networks are IPv4 only (Docker too turns IPv6 off on a container's interface when
/// the network has none), so neither end gets an IPv6 address of its own. Why these steps, in
/// this order: the kernel walks the host's whole IPv6 route table (one entry or more per link
/// of every container on the machine, whoever made it) each time IPv6 is turned off on a link
/// (`disable_ipv6`), and each time a link that is up but has no carrier yet changes state. A
/// change while the link is down announces nothing, and bringing it up before its peer is up
/// walks nothing; the host end's carrier comes with the container's end, after this. The host
/// end then gets the kernel's multicast route (`ff00::/8`), one per container, as every link
/// with IPv6 on does.
///
/// Each end gets one queue each way, not the kernel's default of one per possible CPU: the
/// kernel makes a sysfs directory and a uevent for every queue of every end, and a veth only
/// spreads work over its queues when XDP or GRO is turned on for it.
pub async fn create_veth(
    handle: &Handle,
    host_name: &str,
    bridge: &BridgeRef<'_>,
    mtu: u32,
    peer: &VethPeer<'_>,
) -> Result<()> {
    let mut peer_msg = LinkMessageBuilder::<LinkUnspec>::new()
        .name(peer.name.to_string())
        .mtu(mtu)
        .append_extra_attribute(LinkAttribute::NumTxQueues(1))
        .append_extra_attribute(LinkAttribute::NumRxQueues(1))
        .setns_by_fd(peer.netns.raw_fd());
    if let Some(mac) = peer.mac {
        peer_msg = peer_msg.address(mac.to_vec());
    }
    let msg = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
        .name(host_name.to_string())
        .mtu(mtu)
        .controller(bridge.index)
        // The bridge makes every port promiscuous as it joins; promiscuous from creation, the
        // join changes no flag, so the kernel sends no link notification for it (each walks the
        // host's list of peer namespace ids, one per container).
        .promiscuous(true)
        .append_extra_attribute(LinkAttribute::NumTxQueues(1))
        .append_extra_attribute(LinkAttribute::NumRxQueues(1))
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer_msg.build())))
        .build();
    let create = handle.link().add(msg).execute();
    let up = up_without_ipv6_addresses(handle, || LinkUnspec::new_with_name(host_name), host_name);
    // Both queued before either answer is read; a refused creation is the error to report
    // (the changes after it then find no link).
    let (created, up) = join!(create, up);
    match created {
        Ok(()) => up,
        Err(e) if errno(&e) == Some(EXFULL) => Err(Error::BridgeFull {
            bridge: bridge.name.to_string(),
            network: bridge.network.to_string(),
        }),
        Err(e) => Err(nl_err(format!("cannot create veth {host_name}"))(e)),
    }
}

/// Brings a link up without IPv6 addresses of its own (`addrgenmode none`, then up: two
/// messages queued in that order, as the kernel applies flags before address-family settings
/// within one message, and a link that comes up with a carrier gets its link-local address at
/// once). `link` names the link (by index or name) for each message.
///
/// Without a link-local address a container sends no duplicate address detection, router
/// solicitation or MLD report: multicast that the bridge would flood to every container.
async fn up_without_ipv6_addresses(
    handle: &Handle,
    link: impl Fn() -> LinkMessageBuilder<LinkUnspec>,
    name: &str,
) -> Result<()> {
    let no_addresses = link_request(
        handle.link().change(without_ipv6_addresses(link())),
        format!("cannot set addrgenmode none on {name}"),
    );
    let up = link_request(
        handle.link().change(link().up().build()),
        format!("cannot set {name} up"),
    );
    try_join!(no_addresses, up)?;
    Ok(())
}

/// [`up_without_ipv6_addresses`], queued on a batch.
fn push_up_without_ipv6_addresses(
    batch: &mut Batch,
    link: impl Fn() -> LinkMessageBuilder<LinkUnspec>,
    name: &str,
) {
    batch.push(
        RouteNetlinkMessage::NewLink(without_ipv6_addresses(link())),
        0,
        format!("cannot set addrgenmode none on {name}"),
    );
    batch.push(
        RouteNetlinkMessage::NewLink(link().up().build()),
        0,
        format!("cannot set {name} up"),
    );
}

/// A change of `link` to `addrgenmode none`: no IPv6 addresses of its own.
fn without_ipv6_addresses(link: LinkMessageBuilder<LinkUnspec>) -> LinkMessage {
    link.append_extra_attribute(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet6(
        vec![AfSpecInet6::AddrGenMode(In6AddrGenMode::None)],
    )]))
    .build()
}

/// Turns on hairpin mode on bridge port `port`, so traffic can leave and re-enter through it.
///
/// Asked of the bridge (an AF_BRIDGE RTM_SETLINK, as `bridge link set hairpin on` does), not
/// as a port change of the link (`ip link set type bridge_slave`): that way the kernel does not
/// announce a state change of the link, which every link listener would handle (IPv6 walks
/// its routes, rtnetlink describes the link to its listeners).
pub async fn set_hairpin(handle: &Handle, probe: &LinkProbe, port: &str) -> Result<()> {
    let index = probe
        .index(port)?
        .ok_or_else(|| Error::Netlink(format!("bridge port {port} vanished")))?;
    let mut msg = LinkMessage::default();
    msg.header.interface_family = AddressFamily::Bridge;
    msg.header.index = index;
    msg.attributes.push(LinkAttribute::ProtoInfoBridge(vec![
        LinkProtoInfoBridge::Other(DefaultNla::new(IFLA_BRPORT_MODE, vec![1])),
    ]));
    handle
        .link()
        .set(msg)
        .execute()
        .await
        .map_err(nl_err(format!("cannot set hairpin mode on {port}")))
}

/// Sends a link creation or change; a refusal says `what` could not be done.
async fn link_request(request: LinkAddRequest, what: String) -> Result<()> {
    request.execute().await.map_err(nl_err(what))
}

/// The index of link `name` inside the container.
fn index_inside(inside: &Inside, name: &str) -> Result<u32> {
    inside
        .probe
        .index(name)?
        .ok_or_else(|| Error::Netlink(format!("{name} did not appear in the container")))
}

/// Inside the container: `lo` up and, for bridge containers, the address, link up and default
/// route on `ifname`, all in one datagram (see `rtnl_batch`), in this order: the route needs
/// the address and the link up before it.
pub fn configure_container(
    inside: &Inside,
    iface: Option<(&str, Ipv4Addr, u8, Ipv4Addr)>,
) -> Result<()> {
    let lo = index_inside(inside, "lo")?;
    let mut batch = Batch::new();
    batch.push(
        RouteNetlinkMessage::SetLink(LinkUnspec::new_with_index(lo).up().build()),
        0,
        "cannot set lo up".to_string(),
    );
    if let Some((ifname, address, prefix, gateway)) = iface {
        let index = index_inside(inside, ifname)?;
        let create = NLM_F_CREATE | NLM_F_EXCL;
        batch.push(
            RouteNetlinkMessage::NewAddress(
                AddressMessageBuilder::<Ipv4Addr>::new()
                    .index(index)
                    .address(address, prefix)
                    .build(),
            ),
            create,
            format!("cannot add {address}/{prefix} to {ifname}"),
        );
        push_up_without_ipv6_addresses(&mut batch, || LinkUnspec::new_with_index(index), ifname);
        batch.push(
            RouteNetlinkMessage::NewRoute(
                RouteMessageBuilder::<Ipv4Addr>::new()
                    .gateway(gateway)
                    .output_interface(index)
                    .build(),
            ),
            create,
            format!("cannot add the default route via {gateway}"),
        );
    }
    Ok(batch.send(&inside.socket)?)
}

/// Deletes a link by name (the kernel looks it up); a missing one is fine (teardown is
/// idempotent).
pub async fn delete_link(handle: &Handle, name: &str) -> Result<()> {
    let msg = LinkUnspec::new_with_name(name).build();
    match handle.link().del_with_message(msg).execute().await {
        Ok(()) => Ok(()),
        Err(e) if matches!(errno(&e), Some(ENODEV | ENOENT | ESRCH)) => Ok(()),
        Err(e) => Err(nl_err(format!("cannot delete link {name}"))(e)),
    }
}

/// Every IPv4 destination in the host's routing tables (to pick a default subnet that collides
/// with none).
pub async fn ipv4_routes(handle: &Handle) -> Result<Vec<Ipv4Net>> {
    let query = RouteMessageBuilder::<Ipv4Addr>::new().build();
    let mut routes = handle.route().get(query).execute();
    let mut out = Vec::new();
    while let Some(msg) = routes
        .try_next()
        .await
        .map_err(nl_err("cannot list routes"))?
    {
        let prefix = msg.header.destination_prefix_length;
        let dest = msg.attributes.iter().find_map(|a| match a {
            RouteAttribute::Destination(RouteAddress::Inet(ip)) => Some(*ip),
            _ => None,
        });
        if let Some(net) = dest.and_then(|ip| Ipv4Net::new(ip, prefix).ok()) {
            out.push(net);
        }
    }
    Ok(out)
}

/// Names of the host's links (for leak checks and garbage collection).
pub async fn link_names(handle: &Handle) -> Result<Vec<String>> {
    let mut links = handle.link().get().execute();
    let mut out = Vec::new();
    while let Some(msg) = links
        .try_next()
        .await
        .map_err(nl_err("cannot list links"))?
    {
        out.extend(msg.attributes.iter().find_map(|a| match a {
            LinkAttribute::IfName(n) => Some(n.clone()),
            _ => None,
        }));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridge_mac_is_local_unicast_and_follows_the_gateway() {
        let mac = bridge_mac(Ipv4Addr::new(172, 17, 0, 1));
        assert_eq!(mac, [0x02, 0x42, 172, 17, 0, 1]);
        assert_eq!(mac[0] & 0b11, 0b10, "locally administered, unicast");
        assert_ne!(mac, bridge_mac(Ipv4Addr::new(10, 88, 0, 1)));
    }
}
