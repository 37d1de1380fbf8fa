//! ocinet's nftables table, `inet ocinet`. Per-network masquerade is one element of a set and
//! each published port (or range) one element of a DNAT map, so setup and teardown add or
//! remove elements in one batch and the rules never grow with the number of containers.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;

use crate::error::{Error, Result};
use crate::network::{DriverKind, Network};

use crate::nfnetlink::{BatchError, Element, Op, Session, SetChange, NFT_SET_ELEM_INTERVAL_END};
use crate::nft_table::{
    self, BRIDGES_SET, DNAT_ADDR_MAP, DNAT_ANY_MAP, DNAT_PORT_MAP, GROUPS_SET, ICC_OFF_GROUPS_SET,
    IFNAME_LEN, INTERNAL_GROUPS_SET, INTERNAL_SET, ISOLATED_GROUPS_SET, ISOLATED_SET,
    MASQUERADE_SET, SAME_BRIDGE_SET, SAME_GROUP_SET, TABLE_NAME,
};
use crate::ports::{PortRange, Protocol};

pub const TABLE: &str = "inet ocinet";

/// A network as the forward chain knows it: its device (a bridge's name, or a routed network's
/// device group) in `bridges` or `groups` and in the matching `same_*` set, and in the
/// `isolated`, `internal` (and, for a group, `icc_off`) sets when the network is so. Added at
/// each setup (already present is fine); the network stays, as its masquerade does, until it is
/// retired (`docker network rm`: `engine::retire_network`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkFilter {
    pub device: FilterDevice,
    pub isolate: bool,
    pub internal: bool,
    /// `false`: containers of the network may not reach each other. A bridge does that with
    /// its ports' `isolated` flag; a routed network with `icc_off_groups`.
    pub icc: bool,
}

/// How the forward chain tells a network's traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterDevice {
    Bridge(String),
    /// The device group of every host end of a routed network.
    Group(u32),
}

impl NetworkFilter {
    /// How the forward chain knows `network`'s traffic: by its bridge's name, or (routed: no
    /// bridge) by the device group of its host ends.
    pub fn of(network: &Network) -> NetworkFilter {
        let device = match network.driver {
            DriverKind::Routed => FilterDevice::Group(network.device_group()),
            DriverKind::Bridge | DriverKind::Overlay => {
                FilterDevice::Bridge(network.bridge.clone())
            }
        };
        NetworkFilter {
            device,
            isolate: network.isolate,
            internal: network.internal,
            icc: network.icc,
        }
    }

    /// The device as a key: a name NUL-padded to IFNAMSIZ, or a group in host order.
    fn key(&self) -> Vec<u8> {
        match &self.device {
            FilterDevice::Bridge(name) => {
                let mut key = name.as_bytes().to_vec();
                key.resize(IFNAME_LEN as usize, 0);
                key
            }
            FilterDevice::Group(group) => group.to_ne_bytes().to_vec(),
        }
    }

    fn is_group(&self) -> bool {
        matches!(self.device, FilterDevice::Group(_))
    }
}

/// One DNAT map element: traffic to `host_ip` (`None`: any local address), `protocol` and a
/// port in `ports` goes to `target` (`target_port`, or the same port when `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnatElement {
    pub host_ip: Option<IpAddr>,
    pub protocol: Protocol,
    pub ports: PortRange,
    pub target: IpAddr,
    pub target_port: Option<u16>,
}

/// The DNAT maps of the table, by what their keys hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnatMap {
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
    pub const ALL: [DnatMap; 3] = [DnatMap::Port, DnatMap::Addr, DnatMap::Any];

    pub fn name(self) -> &'static str {
        match self {
            DnatMap::Any => DNAT_ANY_MAP,
            DnatMap::Port => DNAT_PORT_MAP,
            DnatMap::Addr => DNAT_ADDR_MAP,
        }
    }
}

impl DnatElement {
    /// `dnat_any` for one port on every address; else `dnat_port` when the port changes,
    /// `dnat_addr` when it is kept (a range is one element).
    pub fn map(&self) -> DnatMap {
        if self.host_ip.is_none() && self.ports.start == self.ports.end {
            DnatMap::Any
        } else if self.target_port.is_some() {
            DnatMap::Port
        } else {
            DnatMap::Addr
        }
    }

    /// The key in nft syntax.
    pub fn key(&self) -> String {
        if self.map() == DnatMap::Any {
            return format!("{} . {}", self.protocol, self.ports);
        }
        let daddr = match self.host_ip {
            None => "0.0.0.0/0".to_string(),
            Some(ip) => ip.to_string(),
        };
        format!("{daddr} . {} . {}", self.protocol, self.ports)
    }

    /// The value in nft syntax.
    pub fn value(&self) -> String {
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

    /// The maps of `inet ocinet` hold IPv4 addresses; IPv6 elements wait for their own maps
    /// (the IPv6 issue): refused with a line, never written with a wrong length.
    fn check_family(&self) -> Result<()> {
        let v6 = self.target.is_ipv6() || self.host_ip.is_some_and(|ip| ip.is_ipv6());
        if v6 {
            return Err(Error::Firewall(format!(
                "cannot publish {} to {}: IPv6 port mappings are not supported yet",
                self.key(),
                self.value()
            )));
        }
        Ok(())
    }

    /// The key as the kernel stores it: each field of a concatenation padded to 4 bytes.
    pub fn key_bytes(&self) -> Vec<u8> {
        if self.map() == DnatMap::Any {
            return padded_fields(self.protocol.number(), self.ports.start);
        }
        self.address_key(Ipv4Addr::UNSPECIFIED, self.ports.start)
    }

    /// The end of the key's interval (the same as the key for one address and port); `None`
    /// in `dnat_any`, which holds no intervals.
    pub fn key_end_bytes(&self) -> Option<Vec<u8>> {
        (self.map() != DnatMap::Any).then(|| self.address_key(Ipv4Addr::BROADCAST, self.ports.end))
    }

    /// An interval map's key: the host address (`any` for every address), protocol, `port`.
    fn address_key(&self, any: Ipv4Addr, port: u16) -> Vec<u8> {
        let mut key = octets(self.host_ip.unwrap_or(IpAddr::V4(any)));
        key.extend(padded_fields(self.protocol.number(), port));
        key
    }

    pub fn data_bytes(&self) -> Vec<u8> {
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
pub struct Firewall {
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
    pub fn table_was_created(&self) -> bool {
        self.created.get()
    }

    /// Adds the networks' bridges (the forward chain's sets), masquerade subnets and DNAT
    /// elements in one atomic batch, all or none (already present ones are fine), creating the
    /// table if it is missing: a container's setup, and how `reload` puts back what a flush
    /// removed.
    pub fn add_networks(
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
        match nft_table::create(&self.session) {
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
    pub fn unpublish(&self, elements: &[DnatElement]) -> Result<()> {
        self.remove(set_changes(&[], elements)?)
    }

    /// Removes networks from the forward chain's sets and their masquerade subnets (a network
    /// deleted: `docker network rm`); ones already gone are fine.
    pub fn remove_networks(&self, networks: &[NetworkFilter], subnets: &[IpNet]) -> Result<()> {
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
            .map(|n| element(n.key()))
            .collect(),
    };
    let same = |set: &'a str, group: bool| SetChange {
        set,
        elements: networks
            .iter()
            .filter(|n| n.is_group() == group)
            .map(|n| element([n.key(), n.key()].concat()))
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
    ]
    .into_iter()
    .filter(|c| !c.elements.is_empty())
    .collect()
}

/// "cannot add ..." naming what, in nft syntax, for the error of a refused batch.
fn adding(subnets: &[IpNet], elements: &[DnatElement]) -> String {
    let subnets = subnets
        .iter()
        .map(|s| format!("{MASQUERADE_SET} {{ {s} }}"));
    let elements = elements
        .iter()
        .map(|e| format!("{} {{ {} : {} }}", e.map().name(), e.key(), e.value()));
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
    for element in elements {
        element.check_family()?;
    }
    for subnet in subnets {
        let IpNet::V4(subnet) = subnet else {
            return Err(Error::Firewall(format!(
                "cannot masquerade {subnet}: IPv6 subnets are not supported yet"
            )));
        };
        masq.elements.push(Element {
            key: subnet.network().octets().to_vec(),
            key_end: None,
            data: None,
            flags: 0,
        });
        if let Some(after) = u32::from(subnet.broadcast()).checked_add(1) {
            masq.elements.push(Element {
                key: after.to_be_bytes().to_vec(),
                key_end: None,
                data: None,
                flags: NFT_SET_ELEM_INTERVAL_END,
            });
        }
    }
    let dnat = DnatMap::ALL.iter().map(|&map| SetChange {
        set: map.name(),
        elements: elements
            .iter()
            .filter(|e| e.map() == map)
            .map(|e| Element {
                key: e.key_bytes(),
                key_end: e.key_end_bytes(),
                data: Some(e.data_bytes()),
                flags: 0,
            })
            .collect(),
    });
    Ok(std::iter::once(masq).chain(dnat).collect())
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
            isolate: true,
            internal: false,
            icc: false,
        };
        let routed = NetworkFilter {
            device: FilterDevice::Group(0x0a5a_0000),
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
}
