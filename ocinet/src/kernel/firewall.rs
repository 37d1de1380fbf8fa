//! ocinet's nftables table, `inet ocinet`. Per-network masquerade is one element of a set and
//! each published port (or range) one element of a DNAT map, so setup and teardown add or
//! remove elements in one batch and the rules never grow with the number of containers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net};

use crate::error::{Error, Result};

use crate::netlink::nft::message::{
    BatchError, Element, Op, Session, SetChange, NFT_SET_ELEM_INTERVAL_END,
};
use crate::netlink::nft::table::{
    self, BRIDGES_SET, DIRECT_BRIDGES_SET, DIRECT_INTERNAL_SET, DIRECT_ISOLATED_SET,
    DIRECT_SUBNETS_SET, DNAT6_ADDR_MAP, DNAT6_ANY_MAP, DNAT6_PORT_MAP, DNAT_ADDR_MAP, DNAT_ANY_MAP,
    DNAT_PORT_MAP, GROUPS_SET, ICC_OFF_GROUPS_SET, IFNAME_LEN, INTERNAL_GROUPS_SET, INTERNAL_SET,
    ISOLATED_GROUPS_SET, ISOLATED_SET, MASQUERADE6_SET, MASQUERADE_SET, SAME_BRIDGE_SET,
    SAME_GROUP_SET, TABLE_NAME,
};
use crate::ports::{PortRange, Protocol};

pub(crate) const TABLE: &str = "inet ocinet";

/// A network as the forward chain knows it: its device (a bridge's name, or a routed network's
/// device group) in `bridges` or `groups` and in the matching `same_*` set, and in the
/// `isolated`, `internal` (and, for a group, `icc_off`) sets when the network is so. Added at
/// each setup (already present is fine); the network stays, as its masquerade does, until it is
/// retired (`docker network rm`: `engine::retire_network`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NetworkFilter {
    pub device: FilterDevice,
    /// An overlay's VXLAN device: its traffic to and from the other hosts' blocks is the
    /// network's own, so it stands beside the bridge in every set (and pairs with it in
    /// `same_bridge`); without it an overlay would not be isolated across hosts and an internal
    /// one would not span them.
    pub tunnel: Option<String>,
    /// A directly routed overlay's subnet: its traffic with the peers routed to directly
    /// enters and leaves by the underlay interface, which carries everyone's traffic, so the
    /// forward chain tells it by this subnet (`direct_*` sets) as it tells the tunnel's by the
    /// device.
    pub direct: Option<Ipv4Net>,
    pub isolate: bool,
    pub internal: bool,
    /// `false`: containers of the network may not reach each other. A bridge does that with
    /// its ports' `isolated` flag; a routed network with `icc_off_groups`.
    pub icc: bool,
}

/// How the forward chain tells a network's traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FilterDevice {
    Bridge(String),
    /// The device group of every host end of a routed network.
    Group(u32),
}

/// A device name as the sets keep it: NUL-padded to IFNAMSIZ.
fn name_key(name: &str) -> Vec<u8> {
    let mut key = name.as_bytes().to_vec();
    key.resize(IFNAME_LEN as usize, 0);
    key
}

impl NetworkFilter {
    /// The devices as keys: names NUL-padded to IFNAMSIZ (the bridge, then an overlay's
    /// tunnel), or a group in host order.
    fn keys(&self) -> Vec<Vec<u8>> {
        match &self.device {
            FilterDevice::Bridge(name) => std::iter::once(name.as_str())
                .chain(self.tunnel.as_deref())
                .map(name_key)
                .collect(),
            FilterDevice::Group(group) => vec![group.to_ne_bytes().to_vec()],
        }
    }

    fn is_group(&self) -> bool {
        matches!(self.device, FilterDevice::Group(_))
    }
}

/// One DNAT map element: traffic to `host_ip` (`None`: any local address), `protocol` and a
/// port in `ports` goes to `target` (`target_port`, or the same port when `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DnatElement {
    pub host_ip: Option<IpAddr>,
    pub protocol: Protocol,
    pub ports: PortRange,
    pub target: IpAddr,
    pub target_port: Option<u16>,
}

/// The DNAT maps of the table, by what their keys hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DnatMap {
    /// One port on every local address (`-p 8080:80`, Docker's common case): an exact-match
    /// hash map, so adding an element costs the same however many there are. (An interval
    /// map copies its whole lookup table on every change: slower with each container.)
    Any,
    /// An address and a port or range, to the container and a port: an interval map.
    Port,
    /// An address and a port or range, to the container on the same port numbers.
    Addr,
}

impl DnatMap {
    pub(crate) const ALL: [DnatMap; 3] = [DnatMap::Port, DnatMap::Addr, DnatMap::Any];

    /// The map's name for IPv4 targets (`v6`: for IPv6 ones).
    pub(crate) fn name(self, v6: bool) -> &'static str {
        match (self, v6) {
            (DnatMap::Any, false) => DNAT_ANY_MAP,
            (DnatMap::Port, false) => DNAT_PORT_MAP,
            (DnatMap::Addr, false) => DNAT_ADDR_MAP,
            (DnatMap::Any, true) => DNAT6_ANY_MAP,
            (DnatMap::Port, true) => DNAT6_PORT_MAP,
            (DnatMap::Addr, true) => DNAT6_ADDR_MAP,
        }
    }
}

impl DnatElement {
    /// `dnat_any` for one port on every address; else `dnat_port` when the port changes,
    /// `dnat_addr` when it is kept (a range is one element).
    pub(crate) fn map(&self) -> DnatMap {
        if self.host_ip.is_none() && self.ports.start == self.ports.end {
            DnatMap::Any
        } else if self.target_port.is_some() {
            DnatMap::Port
        } else {
            DnatMap::Addr
        }
    }

    /// The name of the map that holds it (IPv6 targets have maps of their own).
    pub(crate) fn map_name(&self) -> &'static str {
        self.map().name(self.target.is_ipv6())
    }

    /// The key in nft syntax.
    pub(crate) fn key(&self) -> String {
        if self.map() == DnatMap::Any {
            return format!("{} . {}", self.protocol, self.ports);
        }
        let daddr = match (self.host_ip, self.target) {
            (None, IpAddr::V4(_)) => "0.0.0.0/0".to_string(),
            (None, IpAddr::V6(_)) => "::/0".to_string(),
            (Some(ip), _) => ip.to_string(),
        };
        format!("{daddr} . {} . {}", self.protocol, self.ports)
    }

    /// The value in nft syntax.
    pub(crate) fn value(&self) -> String {
        match self.value_port() {
            Some(port) => format!("{} . {port}", self.target),
            None => self.target.to_string(),
        }
    }

    /// The port the value holds: `dnat_any`'s values always have one.
    fn value_port(&self) -> Option<u16> {
        match self.map() {
            DnatMap::Any => Some(self.target_port.unwrap_or(self.ports.start)),
            DnatMap::Port | DnatMap::Addr => self.target_port,
        }
    }

    /// A map's key and value are of one family: a host address of the other family is
    /// refused with a line (`publish` never makes one), never written with a wrong length.
    fn check_family(&self) -> Result<()> {
        if self
            .host_ip
            .is_some_and(|ip| ip.is_ipv6() != self.target.is_ipv6())
        {
            return Err(Error::Firewall(format!(
                "cannot publish {} to {}: the host address and the container's are of different families",
                self.key(),
                self.value()
            )));
        }
        Ok(())
    }

    /// The key as the kernel stores it: each field of a concatenation padded to 4 bytes.
    pub(crate) fn key_bytes(&self) -> Vec<u8> {
        if self.map() == DnatMap::Any {
            return padded_fields(self.protocol.number(), self.ports.start);
        }
        let any = match self.target {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        self.address_key(any, self.ports.start)
    }

    /// The end of the key's interval (the same as the key for one address and port); `None`
    /// in `dnat_any`, which holds no intervals.
    pub(crate) fn key_end_bytes(&self) -> Option<Vec<u8>> {
        let all = match self.target {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::BROADCAST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(u128::MAX)),
        };
        (self.map() != DnatMap::Any).then(|| self.address_key(all, self.ports.end))
    }

    /// An interval map's key: the host address (`any` for every address), protocol, `port`.
    fn address_key(&self, any: IpAddr, port: u16) -> Vec<u8> {
        let mut key = octets(self.host_ip.unwrap_or(any));
        key.extend(padded_fields(self.protocol.number(), port));
        key
    }

    pub(crate) fn data_bytes(&self) -> Vec<u8> {
        let mut data = octets(self.target);
        if let Some(port) = self.value_port() {
            data.extend(port.to_be_bytes());
            data.extend([0, 0]);
        }
        data
    }
}

/// An address as the kernel stores it (4 or 16 bytes).
fn octets(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

/// A protocol and a port as fields of a concatenation: each padded to 4 bytes.
fn padded_fields(protocol: u8, port: u16) -> Vec<u8> {
    let mut fields = vec![protocol, 0, 0, 0];
    fields.extend(port.to_be_bytes());
    fields.extend([0, 0]);
    fields
}

/// Changes to ocinet's table. Dropping it may wait for the kernel to free removed elements
/// (see [`Session`]): a teardown drops it last.
pub(crate) struct Firewall {
    session: Session,
    /// Set when this instance had to create the table (first use, or after a flush).
    created: std::cell::Cell<bool>,
}

impl Firewall {
    pub fn new() -> Result<Firewall> {
        Ok(Firewall {
            session: Session::open().map_err(|e| failed("cannot open a socket to", e))?,
            created: std::cell::Cell::new(false),
        })
    }

    /// True if the table was missing and this instance created it.
    pub(crate) fn table_was_created(&self) -> bool {
        self.created.get()
    }

    /// Adds the networks' bridges (the forward chain's sets), masquerade subnets and DNAT
    /// elements in one atomic batch, all or none (already present ones are fine), creating the
    /// table if it is missing: a container's setup, and how `reload` puts back what a flush
    /// removed.
    pub(crate) fn add_networks(
        &self,
        networks: &[NetworkFilter],
        subnets: &[IpNet],
        elements: &[DnatElement],
    ) -> Result<()> {
        let mut changes = set_changes(subnets, elements)?;
        changes.extend(filter_changes(networks));
        match self.session.run(TABLE_NAME, Op::Add, &changes) {
            Ok(()) => return Ok(()),
            Err(e) if e.is_missing() => {}
            Err(e) => return Err(failed(&adding(subnets, elements), e)),
        }
        // The table is gone (first use, or `nft flush ruleset`). Another hook may be making it
        // right now: then its batch wins and this one finds it there.
        match table::create(&self.session) {
            Ok(()) => self.created.set(true),
            Err(e) if e.is_exists() => {}
            Err(e) => return Err(failed("cannot create", e)),
        }
        self.session.run(TABLE_NAME, Op::Add, &changes).map_err(|e| {
            if e.is_missing() {
                // The table is there but not whole (someone deleted a set or map of it).
                Error::Firewall(format!(
                    "nftables table {TABLE} lacks a set or map of ocinet's ({}): delete it with `nft delete table {TABLE}`, then run `ocinet-shim reload`",
                    e.0
                ))
            } else {
                failed(&adding(subnets, elements), e)
            }
        })
    }

    /// Removes the DNAT elements; ones already gone are fine (teardown is idempotent).
    pub(crate) fn unpublish(&self, elements: &[DnatElement]) -> Result<()> {
        self.remove(set_changes(&[], elements)?)
    }

    /// Removes networks from the forward chain's sets and their masquerade subnets (a network
    /// deleted: `docker network rm`); ones already gone are fine.
    pub(crate) fn remove_networks(
        &self,
        networks: &[NetworkFilter],
        subnets: &[IpNet],
    ) -> Result<()> {
        let mut changes = set_changes(subnets, &[])?;
        changes.extend(filter_changes(networks));
        self.remove(changes)
    }

    fn remove(&self, changes: Vec<SetChange<'_>>) -> Result<()> {
        match self.session.run(TABLE_NAME, Op::Delete, &changes) {
            Ok(()) => return Ok(()),
            Err(e) if e.is_missing() => {}
            Err(e) => return Err(failed("cannot remove from", e)),
        }
        // Some element (or the whole table) is gone, and the batch did nothing: remove the
        // rest one by one.
        for change in &changes {
            for element in &change.elements {
                let one = SetChange {
                    set: change.set,
                    elements: vec![element.clone()],
                };
                match self.session.run(TABLE_NAME, Op::Delete, &[one]) {
                    Ok(()) => {}
                    Err(err) if err.is_missing() => {}
                    Err(err) => return Err(failed("cannot remove from", err)),
                }
            }
        }
        Ok(())
    }
}

/// The forward chain's elements of `networks`.
fn filter_changes<'a>(networks: &[NetworkFilter]) -> Vec<SetChange<'a>> {
    let element = |key: Vec<u8>| Element {
        key,
        key_end: None,
        data: None,
        flags: 0,
    };
    let of = |set: &'a str, group: bool, keep: &dyn Fn(&NetworkFilter) -> bool| SetChange {
        set,
        elements: networks
            .iter()
            .filter(|n| n.is_group() == group && keep(n))
            .flat_map(|n| n.keys())
            .map(element)
            .collect(),
    };
    let same = |set: &'a str, group: bool| SetChange {
        set,
        elements: networks
            .iter()
            .filter(|n| n.is_group() == group)
            .flat_map(|n| {
                let keys = n.keys();
                // Every pair of the network's devices: bridge to bridge, bridge to tunnel and back.
                keys.iter()
                    .flat_map(|a| keys.iter().map(move |b| [a.as_slice(), b].concat()))
                    .collect::<Vec<_>>()
            })
            .map(element)
            .collect(),
    };
    let direct = |set: &'a str, keep: &dyn Fn(&NetworkFilter) -> bool| SetChange {
        set,
        elements: networks
            .iter()
            .filter(|n| keep(n))
            .filter_map(|n| n.direct)
            .flat_map(subnet_interval)
            .collect(),
    };
    // The subnet with the bridge: a range of a concatenation is its first and last key.
    let direct_bridges = SetChange {
        set: DIRECT_BRIDGES_SET,
        elements: networks
            .iter()
            .filter_map(|n| match (&n.device, n.direct) {
                (FilterDevice::Bridge(bridge), Some(subnet)) => Some((bridge, subnet)),
                _ => None,
            })
            .map(|(bridge, subnet)| Element {
                key: [subnet.network().octets().to_vec(), name_key(bridge)].concat(),
                key_end: Some([subnet.broadcast().octets().to_vec(), name_key(bridge)].concat()),
                data: None,
                flags: 0,
            })
            .collect(),
    };
    vec![
        of(BRIDGES_SET, false, &|_| true),
        of(ISOLATED_SET, false, &|n| n.isolate),
        of(INTERNAL_SET, false, &|n| n.internal),
        same(SAME_BRIDGE_SET, false),
        of(GROUPS_SET, true, &|_| true),
        of(ISOLATED_GROUPS_SET, true, &|n| n.isolate),
        of(INTERNAL_GROUPS_SET, true, &|n| n.internal),
        of(ICC_OFF_GROUPS_SET, true, &|n| !n.icc),
        same(SAME_GROUP_SET, true),
        direct_bridges,
        direct(DIRECT_SUBNETS_SET, &|_| true),
        direct(DIRECT_ISOLATED_SET, &|n| n.isolate),
        direct(DIRECT_INTERNAL_SET, &|n| n.internal),
    ]
    .into_iter()
    .filter(|c| !c.elements.is_empty())
    .collect()
}

/// An IPv4 subnet as an rbtree interval: its first address, and the address after its last
/// flagged as the interval's end (none after 255.255.255.255).
fn subnet_interval(net: Ipv4Net) -> Vec<Element> {
    let end = u32::from(net.broadcast())
        .checked_add(1)
        .map(|after| Element {
            key: after.to_be_bytes().to_vec(),
            key_end: None,
            data: None,
            flags: NFT_SET_ELEM_INTERVAL_END,
        });
    std::iter::once(Element {
        key: net.network().octets().to_vec(),
        key_end: None,
        data: None,
        flags: 0,
    })
    .chain(end)
    .collect()
}

/// "cannot add ..." naming what, in nft syntax, for the error of a refused batch.
fn adding(subnets: &[IpNet], elements: &[DnatElement]) -> String {
    let subnets = subnets.iter().map(|s| {
        let set = match s {
            IpNet::V4(_) => MASQUERADE_SET,
            IpNet::V6(_) => MASQUERADE6_SET,
        };
        format!("{set} {{ {s} }}")
    });
    let elements = elements
        .iter()
        .map(|e| format!("{} {{ {} : {} }}", e.map_name(), e.key(), e.value()));
    let all: Vec<String> = subnets.chain(elements).collect();
    format!("cannot add {} to", all.join(", "))
}

fn failed(what: &str, e: BatchError) -> Error {
    let hint = if e.is_exists() {
        // ocinet's claims keep its own elements apart: this one was added by hand.
        format!(
            " (an element with the same key, not made by ocinet, is in the way: see `nft list table {TABLE}`)"
        )
    } else {
        String::new()
    };
    Error::Firewall(format!("{what} nftables table {TABLE}: {}{hint}", e.0))
}

/// The raw elements: a subnet is an rbtree interval (its start, and the address after it
/// flagged as the interval's end); a DNAT element a concatenated key (with its end, in an
/// interval map) and value.
fn set_changes<'a>(subnets: &[IpNet], elements: &[DnatElement]) -> Result<Vec<SetChange<'a>>> {
    let mut masq = SetChange {
        set: MASQUERADE_SET,
        elements: Vec::new(),
    };
    let mut masq6 = SetChange {
        set: MASQUERADE6_SET,
        elements: Vec::new(),
    };
    for element in elements {
        element.check_family()?;
    }
    let interval = |start: Vec<u8>, after: Option<Vec<u8>>| {
        let end = after.map(|key| Element {
            key,
            key_end: None,
            data: None,
            flags: NFT_SET_ELEM_INTERVAL_END,
        });
        std::iter::once(Element {
            key: start,
            key_end: None,
            data: None,
            flags: 0,
        })
        .chain(end)
    };
    for subnet in subnets {
        match subnet {
            IpNet::V4(net) => masq.elements.extend(interval(
                net.network().octets().to_vec(),
                u32::from(net.broadcast())
                    .checked_add(1)
                    .map(|a| a.to_be_bytes().to_vec()),
            )),
            IpNet::V6(net) => masq6.elements.extend(interval(
                net.network().octets().to_vec(),
                u128::from(net.broadcast())
                    .checked_add(1)
                    .map(|a| a.to_be_bytes().to_vec()),
            )),
        }
    }
    let maps = DnatMap::ALL
        .iter()
        .flat_map(|&map| [map.name(false), map.name(true)]);
    let dnat = maps.map(|name| SetChange {
        set: name,
        elements: elements
            .iter()
            .filter(|e| e.map_name() == name)
            .map(|e| Element {
                key: e.key_bytes(),
                key_end: e.key_end_bytes(),
                data: Some(e.data_bytes()),
                flags: 0,
            })
            .collect(),
    });
    Ok([masq, masq6].into_iter().chain(dnat).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sets_of(filters: &[NetworkFilter]) -> Vec<(&'static str, usize)> {
        filter_changes(filters)
            .iter()
            .map(|c| (c.set, c.elements.len()))
            .collect()
    }

    #[test]
    fn bridges_fill_the_name_sets_and_routed_networks_the_group_sets() {
        let bridge = NetworkFilter {
            device: FilterDevice::Bridge("oc-a".to_string()),
            tunnel: None,
            direct: None,
            isolate: true,
            internal: false,
            icc: false,
        };
        let routed = NetworkFilter {
            device: FilterDevice::Group(0x0a5a_0000),
            tunnel: None,
            direct: None,
            isolate: true,
            internal: true,
            icc: false,
        };
        assert_eq!(
            sets_of(&[bridge.clone(), routed.clone()]),
            [
                (BRIDGES_SET, 1),
                (ISOLATED_SET, 1),
                (SAME_BRIDGE_SET, 1),
                (GROUPS_SET, 1),
                (ISOLATED_GROUPS_SET, 1),
                (INTERNAL_GROUPS_SET, 1),
                (ICC_OFF_GROUPS_SET, 1),
                (SAME_GROUP_SET, 1),
            ]
        );
        let changes = filter_changes(&[routed]);
        let same = changes.iter().find(|c| c.set == SAME_GROUP_SET).unwrap();
        let group = 0x0a5a_0000u32.to_ne_bytes();
        assert_eq!(same.elements[0].key, [group, group].concat());
        let changes = filter_changes(&[bridge]);
        let names = changes.iter().find(|c| c.set == BRIDGES_SET).unwrap();
        assert_eq!(names.elements[0].key.len(), IFNAME_LEN as usize);
    }

    #[test]
    fn an_overlays_tunnel_stands_beside_its_bridge_in_every_set() {
        let overlay = NetworkFilter {
            device: FilterDevice::Bridge("oc-ov".to_string()),
            tunnel: Some("ocx4200".to_string()),
            direct: None,
            isolate: true,
            internal: true,
            icc: true,
        };
        assert_eq!(
            sets_of(std::slice::from_ref(&overlay)),
            [
                (BRIDGES_SET, 2),
                (ISOLATED_SET, 2),
                (INTERNAL_SET, 2),
                (SAME_BRIDGE_SET, 4),
            ]
        );
        let changes = filter_changes(&[overlay]);
        let same = changes.iter().find(|c| c.set == SAME_BRIDGE_SET).unwrap();
        assert!(same
            .elements
            .iter()
            .any(|e| e.key == [name_key("oc-ov"), name_key("ocx4200")].concat()));
        assert!(same
            .elements
            .iter()
            .any(|e| e.key == [name_key("ocx4200"), name_key("oc-ov")].concat()));
    }

    #[test]
    fn a_directly_routed_overlay_is_told_by_its_subnet_with_its_bridge() {
        let overlay = NetworkFilter {
            device: FilterDevice::Bridge("oc-ov".to_string()),
            tunnel: Some("ocx4200".to_string()),
            direct: Some("10.200.0.0/16".parse().unwrap()),
            isolate: true,
            internal: false,
            icc: true,
        };
        assert_eq!(
            sets_of(std::slice::from_ref(&overlay)),
            [
                (BRIDGES_SET, 2),
                (ISOLATED_SET, 2),
                (SAME_BRIDGE_SET, 4),
                (DIRECT_BRIDGES_SET, 1),
                (DIRECT_SUBNETS_SET, 2),
                (DIRECT_ISOLATED_SET, 2),
            ]
        );
        let changes = filter_changes(&[overlay]);
        let pair = &changes
            .iter()
            .find(|c| c.set == DIRECT_BRIDGES_SET)
            .unwrap()
            .elements[0];
        assert_eq!(pair.key, [vec![10, 200, 0, 0], name_key("oc-ov")].concat());
        assert_eq!(
            pair.key_end,
            Some([vec![10, 200, 255, 255], name_key("oc-ov")].concat())
        );
        let subnet = &changes
            .iter()
            .find(|c| c.set == DIRECT_SUBNETS_SET)
            .unwrap()
            .elements;
        assert_eq!(
            (subnet[0].key.as_slice(), subnet[1].key.as_slice()),
            (&[10, 200, 0, 0][..], &[10, 201, 0, 0][..])
        );
        assert_eq!(subnet[1].flags, NFT_SET_ELEM_INTERVAL_END);
    }
}
