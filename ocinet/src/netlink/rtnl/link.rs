//! rtnetlink: bridges, veth pairs, addresses and routes. Messages are built with the rtnetlink
//! crate's builders and sent over one plain netlink socket per namespace, requests that do not
//! need each other's answers together in one datagram (`batch`). A netlink socket belongs
//! to the namespace it was opened in, so the container's is opened while this thread is
//! briefly inside the container's namespace.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net};
use nix::libc;
use rtnetlink::packet_core::{DefaultNla, NLM_F_CREATE, NLM_F_EXCL};
use rtnetlink::packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage,
};
use rtnetlink::packet_route::link::{
    AfSpecInet, AfSpecInet6, AfSpecUnspec, In6AddrGenMode, InetDevConf, InfoData, InfoKind,
    InfoVeth, LinkAttribute, LinkMessage, LinkProtoInfoBridge,
};
use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState,
};
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteProtocol, RouteScope, RouteType,
};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::{
    AddressMessageBuilder, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth,
    RouteMessageBuilder,
};

use crate::error::{Error, Result};
use crate::host::netns::Netns;
use crate::netlink::raw::RawSocket;
use crate::netlink::rtnl::batch::{self, Batch};
use crate::netlink::rtnl::probe::LinkProbe;

/// IFLA_BRPORT_MODE (linux/if_link.h): the port's hairpin mode.
const IFLA_BRPORT_MODE: u16 = 4;
/// Creating what is there already.
const EXISTS: &[i32] = &[libc::EEXIST];
/// Deleting a link that is gone (ESRCH, ENOENT: its namespace went first).
const GONE: &[i32] = &[libc::ENODEV, libc::ENOENT, libc::ESRCH];

/// An rtnetlink socket of one network namespace (links are also looked up on it, see
/// `probe`).
pub struct Rtnl {
    socket: RawSocket,
}

impl Rtnl {
    /// The calling thread's namespace's.
    pub fn open() -> Result<Rtnl> {
        Ok(Rtnl {
            socket: RawSocket::open(libc::NETLINK_ROUTE)
                .map_err(|e| Error::Netlink(format!("cannot open a netlink socket: {e}")))?,
        })
    }

    /// `ns`'s, opened while this thread is briefly inside it.
    pub(crate) fn open_in(ns: &Netns) -> Result<Rtnl> {
        ns.run_inside(Rtnl::open)?
    }

    /// The rtnetlink socket, for requests this module does not make (netconf).
    pub fn socket(&self) -> &RawSocket {
        &self.socket
    }

    /// One request that needs no answer but its acknowledgement (see [`Batch::push_allowing`]).
    fn send_one(
        &self,
        message: RouteNetlinkMessage,
        flags: u16,
        fine: &'static [i32],
        what: String,
    ) -> Result<()> {
        let mut batch = Batch::new();
        batch.push_allowing(message, flags, fine, what);
        Ok(batch.send(&self.socket)?)
    }

    fn probe(&self) -> LinkProbe<'_> {
        LinkProbe::on(&self.socket)
    }

    /// The index of link `name`, which must be there.
    fn index(&self, name: &str) -> Result<u32> {
        self.probe()
            .index(name)?
            .ok_or_else(|| Error::Netlink(format!("link {name} vanished")))
    }
}

/// An interface's addresses (with their prefix lengths) and the gateways of its default
/// routes (one per family).
pub(crate) struct Addressing<'a> {
    pub name: &'a str,
    pub addresses: &'a [(IpAddr, u8)],
    pub gateways: &'a [IpAddr],
    /// Routes to subnets through a gateway, beside (or instead of) the default ones: an
    /// internal overlay has no default route, yet reaches the other hosts' blocks of its subnet.
    pub routes: &'a [(IpNet, IpAddr)],
    /// The gateway's MAC when the gateway is the other end of a point-to-point link (routed):
    /// then it is a permanent neighbour and the default route is on-link (the address is a
    /// /32, so no subnet holds the gateway).
    pub gateway_mac: Option<[u8; 6]>,
}

/// `address/prefix` on link `index`, of either family. An IPv6 address is `nodad`: usable
/// (not tentative) the moment it is added, as the lease makes it unique on its network; with
/// duplicate address detection a container's first packets would wait a second or more for
/// it, and its probes would be multicast flooded to every port of the bridge.
fn new_address(index: u32, address: IpAddr, prefix: u8) -> RouteNetlinkMessage {
    RouteNetlinkMessage::NewAddress(match address {
        IpAddr::V4(ip) => AddressMessageBuilder::<Ipv4Addr>::new()
            .index(index)
            .address(ip, prefix)
            .build(),
        IpAddr::V6(ip) => {
            let mut msg = AddressMessageBuilder::<Ipv6Addr>::new()
                .index(index)
                .address(ip, prefix)
                .build();
            msg.header.flags.insert(AddressHeaderFlags::Nodad);
            // The kernel reads IFA_FLAGS over the header's flags when both are there.
            msg.attributes
                .retain(|a| !matches!(a, AddressAttribute::Flags(_)));
            msg.attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
            msg
        }
    })
}

/// The default route of the gateway's family, via `gateway` on link `index` (`onlink`: the
/// gateway is in no subnet of the link).
fn default_route(index: u32, gateway: IpAddr, onlink: bool) -> RouteNetlinkMessage {
    route_via(index, None, gateway, onlink)
}

/// `destination via gateway dev index` (the default route without a destination).
fn route_via(
    index: u32,
    destination: Option<IpNet>,
    gateway: IpAddr,
    onlink: bool,
) -> RouteNetlinkMessage {
    let mut route = match gateway {
        IpAddr::V4(ip) => {
            let mut builder = RouteMessageBuilder::<Ipv4Addr>::new();
            if let Some(IpNet::V4(net)) = destination {
                builder = builder.destination_prefix(net.network(), net.prefix_len());
            }
            builder.gateway(ip).output_interface(index).build()
        }
        IpAddr::V6(ip) => {
            let mut builder = RouteMessageBuilder::<Ipv6Addr>::new();
            if let Some(IpNet::V6(net)) = destination {
                builder = builder.destination_prefix(net.network(), net.prefix_len());
            }
            builder.gateway(ip).output_interface(index).build()
        }
    };
    if onlink {
        route.header.flags.insert(RouteFlags::Onlink);
    }
    RouteNetlinkMessage::NewRoute(route)
}

/// A permanent neighbour entry: `address` is at `mac` on link `index`. Permanent entries are
/// never resolved, probed or collected, and do not count against the neighbour table's
/// `gc_thresh` limits (see `neigh_table`).
fn permanent_neighbour(index: u32, address: IpAddr, mac: [u8; 6]) -> RouteNetlinkMessage {
    RouteNetlinkMessage::NewNeighbour(permanent_neighbour_entry(index, address, mac))
}

/// The entry of `permanent_neighbour`, to add or to delete (the overlay's VTEP addresses).
pub fn permanent_neighbour_entry(index: u32, address: IpAddr, mac: [u8; 6]) -> NeighbourMessage {
    let mut neighbour = NeighbourMessage::default();
    neighbour.header.family = match address {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    neighbour.header.ifindex = index;
    neighbour.header.state = NeighbourState::Permanent;
    neighbour
        .attributes
        .push(NeighbourAttribute::Destination(match address {
            IpAddr::V4(ip) => NeighbourAddress::Inet(ip),
            IpAddr::V6(ip) => NeighbourAddress::Inet6(ip),
        }));
    neighbour
        .attributes
        .push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
    neighbour
}

/// Makes sure bridge `name` exists, is up and holds the gateway addresses; returns its index
/// and whether this call created it.
/// Safe against a concurrent hook doing the same. A bridge that exists is used as it is.
///
/// A bridge ocinet makes has multicast snooping off. Snooping only narrows multicast where an
/// IGMP querier runs on the network; without one (the bridge's own querier is off by default,
/// as on docker0) the kernel floods multicast to every port either way, so containers see the
/// same traffic. What snooping costs without a querier: each port that joins restarts the
/// multicast timers of every port on the bridge, so each container's setup costs more than the
/// one before. Who runs a querier turns it on (`ip link set BRIDGE type bridge mcast_snooping 1`).
pub(crate) fn ensure_bridge(
    rtnl: &Rtnl,
    name: &str,
    mtu: u32,
    gateways: &[(IpAddr, u8)],
    route_localnet: bool,
) -> Result<(u32, bool)> {
    let (bridge, created) = match rtnl.probe().get(name)? {
        Some(bridge) => (bridge, false),
        None => {
            rtnl.send_one(
                RouteNetlinkMessage::NewLink(
                    LinkBridge::new(name)
                        .mtu(mtu)
                        .address(bridge_mac(gateways).to_vec())
                        .mcast_snooping(false)
                        .up()
                        .build(),
                ),
                NLM_F_CREATE | NLM_F_EXCL,
                EXISTS,
                format!("cannot create bridge {name}"),
            )?;
            let bridge = rtnl
                .probe()
                .get(name)?
                .ok_or_else(|| Error::Netlink(format!("bridge {name} vanished after creation")))?;
            (bridge, true)
        }
    };
    let mut batch = Batch::new();
    for &(gateway, prefix) in gateways {
        batch.push_allowing(
            new_address(bridge.index, gateway, prefix),
            NLM_F_CREATE | NLM_F_EXCL,
            EXISTS,
            format!("cannot add {gateway}/{prefix} to bridge {name}"),
        );
    }
    if !bridge.up {
        batch.push(
            RouteNetlinkMessage::SetLink(LinkUnspec::new_with_index(bridge.index).up().build()),
            0,
            format!("cannot set bridge {name} up"),
        );
    }
    batch.send(&rtnl.socket)?;
    if route_localnet && !route_localnet_is_on(rtnl, bridge.index)? {
        rtnl.send_one(
            with_route_localnet(LinkUnspec::new_with_index(bridge.index)),
            0,
            &[],
            format!("cannot enable route_localnet on bridge {name}"),
        )?;
    }
    Ok((bridge.index, created))
}

/// A change of `link` that lets it route packets with loopback sources: 127.0.0.1:<port> from
/// the host is DNATed out of it to a container.
fn with_route_localnet(link: LinkMessageBuilder<LinkUnspec>) -> RouteNetlinkMessage {
    RouteNetlinkMessage::NewLink(
        link.append_extra_attribute(LinkAttribute::AfSpecUnspec(vec![route_localnet_on()]))
            .build(),
    )
}

/// IPv4's `route_localnet` on, as one family's part of a link change.
fn route_localnet_on() -> AfSpecUnspec {
    let mut conf = InetDevConf::default();
    conf.route_localnet = 1;
    AfSpecUnspec::Inet(vec![AfSpecInet::DevConfRequest(conf)])
}

/// IPv6's `addrgenmode none` (no addresses of the link's own), as one family's part of a
/// link change.
fn no_ipv6_addresses() -> AfSpecUnspec {
    AfSpecUnspec::Inet6(vec![AfSpecInet6::AddrGenMode(In6AddrGenMode::None)])
}

/// Whether link `index` routes packets with loopback sources (`route_localnet`), from the
/// link's IPv4 settings as rtnetlink describes the link.
fn route_localnet_is_on(rtnl: &Rtnl, index: u32) -> Result<bool> {
    let what = format!("cannot read the IPv4 settings of link {index}");
    let answer = batch::ask(
        &rtnl.socket,
        RouteNetlinkMessage::GetLink(LinkUnspec::new_with_index(index).build()),
        &what,
    )?;
    let RouteNetlinkMessage::NewLink(link) = answer else {
        return Err(Error::Netlink(format!("{what}: unexpected answer")));
    };
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
/// IPv4 address (the last four bytes of the first gateway of another family), locally administered and unique on the network, as the gateway's address is
/// never leased. A bridge left to choose takes the lowest MAC among its ports, so joining and
/// leaving containers change the gateway's MAC under the others, and the kernel compares every
/// port's MAC each time one joins.
fn bridge_mac(gateways: &[(IpAddr, u8)]) -> [u8; 6] {
    let low = |ip: &IpAddr| match ip {
        IpAddr::V4(v4) => v4.octets(),
        IpAddr::V6(v6) => {
            let o = v6.octets();
            [o[12], o[13], o[14], o[15]]
        }
    };
    let gateway = gateways
        .iter()
        .find(|(ip, _)| ip.is_ipv4())
        .or(gateways.first())
        .map_or([0, 0, 0, 1], |(ip, _)| low(ip));
    let [a, b, c, d] = gateway;
    [0x02, 0x42, a, b, c, d]
}

/// The bridge a veth joins: its index, and names for messages.
pub(crate) struct BridgeRef<'a> {
    pub index: u32,
    pub name: &'a str,
    pub network: &'a str,
}

/// What the container end of a veth looks like.
pub(crate) struct VethPeer<'a> {
    pub name: &'a str,
    pub netns: &'a Netns,
    pub mac: Option<[u8; 6]>,
}

/// Creates `host_name` on the bridge, with its peer created straight in the container's
/// namespace (no rename, no move afterwards); then, in the same datagram and in this order,
/// `addrgenmode none` and up for the host end.
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
pub(crate) fn create_veth(
    rtnl: &Rtnl,
    host_name: &str,
    bridge: &BridgeRef<'_>,
    mtu: u32,
    peer: &VethPeer<'_>,
) -> Result<()> {
    let msg = veth_pair(host_name, mtu, peer)
        .controller(bridge.index)
        // The bridge makes every port promiscuous as it joins; promiscuous from creation, the
        // join changes no flag, so the kernel neither logs it nor tells every netdevice
        // notifier of a change (measured: bench/README.md).
        .promiscuous(true)
        .build();
    let mut batch = Batch::new();
    batch.push(
        RouteNetlinkMessage::NewLink(msg),
        NLM_F_CREATE | NLM_F_EXCL,
        format!("cannot create veth {host_name}"),
    );
    push_up_without_ipv6_addresses(
        &mut batch,
        || LinkUnspec::new_with_name(host_name),
        host_name,
    );
    // A refused creation is the first refusal (the changes after it then find no link).
    batch.send(&rtnl.socket).map_err(|refused| {
        // What the kernel answers when a bridge has no free port number left.
        if refused.errno() == Some(libc::EXFULL) {
            Error::BridgeFull {
                bridge: bridge.name.to_string(),
                network: bridge.network.to_string(),
            }
        } else {
            refused.into()
        }
    })
}

/// A veth pair `host_name` (here) and `peer` (created straight in its namespace), one queue
/// each way per end (see [`create_veth`]).
fn veth_pair(host_name: &str, mtu: u32, peer: &VethPeer<'_>) -> LinkMessageBuilder<LinkVeth> {
    let mut peer_msg = LinkMessageBuilder::<LinkUnspec>::new()
        .name(peer.name.to_string())
        .mtu(mtu)
        .append_extra_attribute(LinkAttribute::NumTxQueues(1))
        .append_extra_attribute(LinkAttribute::NumRxQueues(1))
        .setns_by_fd(peer.netns.raw_fd());
    if let Some(mac) = peer.mac {
        peer_msg = peer_msg.address(mac.to_vec());
    }
    LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
        .name(host_name.to_string())
        .mtu(mtu)
        .append_extra_attribute(LinkAttribute::NumTxQueues(1))
        .append_extra_attribute(LinkAttribute::NumRxQueues(1))
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer_msg.build())))
}

/// Brings a link up without IPv6 addresses of its own (`addrgenmode none`, then up: two
/// messages in that order, as the kernel applies flags before address-family settings
/// within one message, and a link that comes up with a carrier gets its link-local address at
/// once). `link` names the link (by index or name) for each message.
///
/// Without a link-local address a container sends no duplicate address detection, router
/// solicitation or MLD report: multicast that the bridge would flood to every container.
pub fn push_up_without_ipv6_addresses(
    batch: &mut Batch,
    link: impl Fn() -> LinkMessageBuilder<LinkUnspec>,
    name: &str,
) {
    push_settings_then_up(
        batch,
        link,
        name,
        vec![no_ipv6_addresses()],
        "addrgenmode none",
    );
}

/// `families`' settings (`what`, for the error) in one change of `link`, then up. One change,
/// not one per family: each change of a host link is announced, and every announcement walks
/// the host's list of peer namespaces (one per container).
fn push_settings_then_up(
    batch: &mut Batch,
    link: impl Fn() -> LinkMessageBuilder<LinkUnspec>,
    name: &str,
    families: Vec<AfSpecUnspec>,
    what: &str,
) {
    batch.push(
        RouteNetlinkMessage::NewLink(
            link()
                .append_extra_attribute(LinkAttribute::AfSpecUnspec(families))
                .build(),
        ),
        0,
        format!("cannot set {what} on {name}"),
    );
    batch.push(
        RouteNetlinkMessage::NewLink(link().up().build()),
        0,
        format!("cannot set {name} up"),
    );
}

/// The host end of a routed network's veth, and what it answers for.
pub(crate) struct RoutedEnd<'a> {
    pub name: &'a str,
    /// The gateway's MAC (`02:42` and its address, as a bridge of the same subnet would have):
    /// every host end of the network has it, each on its own point-to-point link.
    pub mac: [u8; 6],
    pub mtu: u32,
    /// Each subnet (one per family) and its gateway.
    pub subnets: &'a [(IpNet, IpAddr)],
    /// Published ports: 127.0.0.1:<port> from the host is DNATed out of this end.
    pub route_localnet: bool,
    /// The network's device group, by which ocinet's forward chain knows its traffic.
    pub group: u32,
}

/// The index of `lo`, the same in every namespace (the kernel registers it first, with a fixed
/// index).
const LOOPBACK_INDEX: u32 = 1;

/// A routed network's veth, in one datagram: first the network's own objects, which the first
/// container makes and the others find there (the gateway as a /32 on `lo`, so the host answers
/// for it on every link as any local address, and an `unreachable` route for the subnet, so
/// addresses leased to no container fail here rather than leave by the default route); then
/// the pair, its host end `addrgenmode none` and up, as [`create_veth`] does without a bridge.
pub(crate) fn create_routed_veth(
    rtnl: &Rtnl,
    end: &RoutedEnd<'_>,
    peer: &VethPeer<'_>,
) -> Result<()> {
    let mut batch = Batch::new();
    for &(subnet, gateway) in end.subnets {
        let host_prefix = match gateway {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        batch.push_allowing(
            new_address(LOOPBACK_INDEX, gateway, host_prefix),
            NLM_F_CREATE | NLM_F_EXCL,
            EXISTS,
            format!("cannot add the gateway {gateway} to lo"),
        );
        batch.push_allowing(
            unreachable_route(subnet),
            NLM_F_CREATE | NLM_F_EXCL,
            EXISTS,
            format!("cannot add the unreachable route of {subnet}"),
        );
    }
    let name = end.name;
    batch.push(
        RouteNetlinkMessage::NewLink(
            veth_pair(name, end.mtu, peer)
                .address(end.mac.to_vec())
                .append_extra_attribute(LinkAttribute::Group(end.group))
                .build(),
        ),
        NLM_F_CREATE | NLM_F_EXCL,
        format!("cannot create veth {name}"),
    );
    let (families, what) = match end.route_localnet {
        true => (
            vec![no_ipv6_addresses(), route_localnet_on()],
            "addrgenmode none and route_localnet",
        ),
        false => (vec![no_ipv6_addresses()], "addrgenmode none"),
    };
    push_settings_then_up(
        &mut batch,
        || LinkUnspec::new_with_name(name),
        name,
        families,
        what,
    );
    Ok(batch.send(&rtnl.socket)?)
}

/// The host's way to a routed container, in one datagram: for each of its addresses a /32
/// (/128) route through its veth, from the gateway's address of that family, and the
/// container as a permanent neighbour (its MAC is known), so the host never asks for it and
/// the entry counts against no neighbour table limit.
pub(crate) fn route_to_container(
    rtnl: &Rtnl,
    end: &RoutedEnd<'_>,
    addresses: &[IpAddr],
    mac: [u8; 6],
) -> Result<()> {
    let index = rtnl.index(end.name)?;
    let mut batch = Batch::new();
    for &address in addresses {
        let gateway = end
            .subnets
            .iter()
            .map(|&(_, g)| g)
            .find(|g| g.is_ipv6() == address.is_ipv6())
            .ok_or_else(|| {
                Error::Netlink(format!(
                    "{address} has no gateway of its family on {}",
                    end.name
                ))
            })?;
        push_route_to(&mut batch, end.name, index, address, gateway, mac)?;
    }
    Ok(batch.send(&rtnl.socket)?)
}

/// One address's route and permanent neighbour (see [`route_to_container`]).
fn push_route_to(
    batch: &mut Batch,
    name: &str,
    index: u32,
    address: IpAddr,
    gateway: IpAddr,
    mac: [u8; 6],
) -> Result<()> {
    let route = match (address, gateway) {
        (IpAddr::V4(ip), IpAddr::V4(gateway)) => RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(ip, 32)
            .pref_source(gateway)
            .output_interface(index)
            .scope(RouteScope::Link)
            .build(),
        (IpAddr::V6(ip), IpAddr::V6(gateway)) => RouteMessageBuilder::<Ipv6Addr>::new()
            .destination_prefix(ip, 128)
            .pref_source(gateway)
            .output_interface(index)
            .scope(RouteScope::Link)
            .build(),
        _ => {
            return Err(Error::Netlink(format!(
                "{address} and its gateway {gateway} are of different families"
            )))
        }
    };
    let create = NLM_F_CREATE | NLM_F_EXCL;
    batch.push(
        RouteNetlinkMessage::NewRoute(route),
        create,
        format!("cannot add the route to {address} via {name}"),
    );
    batch.push(
        permanent_neighbour(index, address, mac),
        create,
        format!("cannot add {address} as a neighbour on {name}"),
    );
    Ok(())
}

/// `unreachable SUBNET`: packets to it that no more specific route takes are refused here.
fn unreachable_route(subnet: IpNet) -> RouteNetlinkMessage {
    RouteNetlinkMessage::NewRoute(match subnet {
        IpNet::V4(net) => RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(net.network(), net.prefix_len())
            .kind(RouteType::Unreachable)
            .build(),
        IpNet::V6(net) => RouteMessageBuilder::<Ipv6Addr>::new()
            .destination_prefix(net.network(), net.prefix_len())
            .kind(RouteType::Unreachable)
            .build(),
    })
}

/// Turns on hairpin mode on bridge port `port`, so traffic can leave and re-enter through it.
///
/// Asked of the bridge (an AF_BRIDGE RTM_SETLINK, as `bridge link set hairpin on` does), not
/// as a port change of the link (`ip link set type bridge_slave`): that way the kernel does not
/// announce a state change of the link, which every link listener would handle (IPv6 walks
/// its routes, rtnetlink describes the link to its listeners).
pub(crate) fn set_hairpin(rtnl: &Rtnl, port: &str) -> Result<()> {
    let mut msg = LinkMessage::default();
    msg.header.interface_family = AddressFamily::Bridge;
    msg.header.index = rtnl.index(port)?;
    msg.attributes.push(LinkAttribute::ProtoInfoBridge(vec![
        LinkProtoInfoBridge::Other(DefaultNla::new(IFLA_BRPORT_MODE, vec![1])),
    ]));
    rtnl.send_one(
        RouteNetlinkMessage::SetLink(msg),
        0,
        &[],
        format!("cannot set hairpin mode on {port}"),
    )
}

/// IFLA_BRPORT_ISOLATED (linux/if_link.h): an isolated port forwards to no other isolated port.
const IFLA_BRPORT_ISOLATED: u16 = 33;

/// Isolates bridge port `port` from the bridge's other isolated ports (`bridge link set
/// isolated on`): a network's `icc: false`. The bridge's own device is no port, so the host,
/// the gateway and published ports through the host stay reachable; no `br_netfilter` needed.
/// Asked of the bridge, as [`set_hairpin`] is, for the same reason.
pub(crate) fn set_port_isolated(rtnl: &Rtnl, port: &str) -> Result<()> {
    let mut msg = LinkMessage::default();
    msg.header.interface_family = AddressFamily::Bridge;
    msg.header.index = rtnl.index(port)?;
    msg.attributes.push(LinkAttribute::ProtoInfoBridge(vec![
        LinkProtoInfoBridge::Other(DefaultNla::new(IFLA_BRPORT_ISOLATED, vec![1])),
    ]));
    rtnl.send_one(
        RouteNetlinkMessage::SetLink(msg),
        0,
        &[],
        format!("cannot isolate bridge port {port}"),
    )
}

/// Inside the container: `lo` up and, for bridge and routed containers, the addresses, link up,
/// the gateway as a neighbour (routed) and the default route on the interface, all in one
/// datagram, in this order: the route needs the address and the link up before it.
pub(crate) fn configure_container(inside: &Rtnl, iface: Option<&Addressing<'_>>) -> Result<()> {
    let mut batch = Batch::new();
    batch.push(
        RouteNetlinkMessage::SetLink(LinkUnspec::new_with_index(inside.index("lo")?).up().build()),
        0,
        "cannot set lo up".to_string(),
    );
    if let Some(iface) = iface {
        let ifname = iface.name;
        let index = inside.index(ifname)?;
        let create = NLM_F_CREATE | NLM_F_EXCL;
        for &(address, prefix) in iface.addresses {
            batch.push(
                new_address(index, address, prefix),
                create,
                format!("cannot add {address}/{prefix} to {ifname}"),
            );
        }
        push_up_without_ipv6_addresses(&mut batch, || LinkUnspec::new_with_index(index), ifname);
        if let Some(mac) = iface.gateway_mac {
            for &gateway in iface.gateways {
                // After up: taking a link down flushes even its permanent neighbours.
                batch.push(
                    permanent_neighbour(index, gateway, mac),
                    create,
                    format!("cannot add the gateway {gateway} as a neighbour on {ifname}"),
                );
            }
        }
        for &gateway in iface.gateways {
            // A second interface (CNI's eth1) leaves the first one's default route, as Docker.
            batch.push_allowing(
                default_route(index, gateway, iface.gateway_mac.is_some()),
                create,
                EXISTS,
                format!("cannot add the default route via {gateway}"),
            );
        }
        for &(subnet, gateway) in iface.routes {
            batch.push(
                route_via(index, Some(subnet), gateway, false),
                create,
                format!("cannot add the route to {subnet} via {gateway}"),
            );
        }
    }
    Ok(batch.send(&inside.socket)?)
}

/// Deletes a link by name (the kernel looks it up); a missing one is fine (teardown is
/// idempotent).
pub fn delete_link(rtnl: &Rtnl, name: &str) -> Result<()> {
    rtnl.send_one(
        RouteNetlinkMessage::DelLink(LinkUnspec::new_with_name(name).build()),
        0,
        GONE,
        format!("cannot delete link {name}"),
    )
}

/// True when the namespace has a link named `name`.
pub(crate) fn link_exists(rtnl: &Rtnl, name: &str) -> Result<bool> {
    Ok(rtnl.probe().index(name)?.is_some())
}

/// The addresses on link `name` with their prefix lengths, or `None` when there is no such
/// link (what CNI's CHECK compares with the record).
pub(crate) fn link_addresses(rtnl: &Rtnl, name: &str) -> Result<Option<Vec<(IpAddr, u8)>>> {
    let Some(index) = rtnl.probe().index(name)? else {
        return Ok(None);
    };
    let answers = batch::dump(
        &rtnl.socket,
        RouteNetlinkMessage::GetAddress(AddressMessage::default()),
        "cannot list addresses",
    )?;
    Ok(Some(
        answers
            .iter()
            .filter_map(|answer| match answer {
                RouteNetlinkMessage::NewAddress(a) if a.header.index == index => Some(a),
                _ => None,
            })
            .filter_map(|a| {
                a.attributes.iter().find_map(|attr| match attr {
                    AddressAttribute::Address(ip) => Some((*ip, a.header.prefix_len)),
                    _ => None,
                })
            })
            .collect(),
    ))
}

/// The links (by index) of the namespace's IPv6 default routes learned from router
/// advertisements (protocol `ra`): the kernel deletes those, unless the link's `accept_ra` is
/// 2, the moment IPv6 forwarding goes on.
pub(crate) fn ipv6_ra_default_route_links(rtnl: &Rtnl) -> Result<Vec<u32>> {
    let answers = batch::dump(
        &rtnl.socket,
        RouteNetlinkMessage::GetRoute(RouteMessageBuilder::<Ipv6Addr>::new().build()),
        "cannot list IPv6 routes",
    )?;
    let mut links: Vec<u32> = answers
        .iter()
        .filter_map(|answer| match answer {
            RouteNetlinkMessage::NewRoute(route) => Some(route),
            _ => None,
        })
        .filter(|route| {
            route.header.destination_prefix_length == 0
                && route.header.protocol == RouteProtocol::Ra
        })
        .flat_map(|route| {
            route.attributes.iter().filter_map(|a| match a {
                RouteAttribute::Oif(index) => Some(*index),
                _ => None,
            })
        })
        .collect();
    links.sort_unstable();
    links.dedup();
    Ok(links)
}

/// Every IPv4 destination in the namespace's routing tables (to pick a default subnet that
/// collides with none).
pub(crate) fn ipv4_routes(rtnl: &Rtnl) -> Result<Vec<Ipv4Net>> {
    let answers = batch::dump(
        &rtnl.socket,
        RouteNetlinkMessage::GetRoute(RouteMessageBuilder::<Ipv4Addr>::new().build()),
        "cannot list routes",
    )?;
    Ok(answers
        .iter()
        .filter_map(|answer| match answer {
            RouteNetlinkMessage::NewRoute(route) => Some(route),
            _ => None,
        })
        .filter_map(|route| {
            let dest = route.attributes.iter().find_map(|a| match a {
                RouteAttribute::Destination(RouteAddress::Inet(ip)) => Some(*ip),
                _ => None,
            })?;
            Ipv4Net::new(dest, route.header.destination_prefix_length).ok()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridge_mac_is_local_unicast_and_follows_the_gateway() {
        let gw = |a, b, c, d| [(IpAddr::V4(Ipv4Addr::new(a, b, c, d)), 16)];
        let mac = bridge_mac(&gw(172, 17, 0, 1));
        assert_eq!(mac, [0x02, 0x42, 172, 17, 0, 1]);
        assert_eq!(mac[0] & 0b11, 0b10, "locally administered, unicast");
        assert_ne!(mac, bridge_mac(&gw(10, 88, 0, 1)));
    }
}
