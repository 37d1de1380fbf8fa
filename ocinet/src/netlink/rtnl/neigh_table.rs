//! The IPv4 (IPv6) neighbour table's garbage collection limits
//! (`net.ipv4.neigh.default.gc_thresh1`, `2`, `3`; `net.ipv6...`), read and set over rtnetlink (RTM_GETNEIGHTBL, RTM_SETNEIGHTBL) rather than under
//! /proc/sys (see `sysctl` for why the hot path stays out of there).
//!
//! The table and its limits are the whole host's, not a namespace's: every namespace's entries
//! count against them (a container's entry for its gateway as much as the host's for the
//! container), any namespace reads them, and only the initial namespace may change them (the
//! kernel refuses with ENOENT elsewhere, and has no `neigh/default` under /proc/sys there).

use nix::libc;
use rtnetlink::packet_route::neighbour_table::{NeighbourTableAttribute, NeighbourTableMessage};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::error::{Error, Result};
use crate::netlink::rtnl::batch::{self, Batch};
use crate::netlink::rtnl::link::Rtnl;

/// A neighbour table of the kernel: IPv4's (ARP) or IPv6's (neighbour discovery).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Table {
    Ipv4,
    Ipv6,
}

impl Table {
    /// The table's name in the kernel.
    fn name(self) -> &'static str {
        match self {
            Table::Ipv4 => "arp_cache",
            Table::Ipv6 => "ndisc_cache",
        }
    }

    fn family(self) -> AddressFamily {
        match self {
            Table::Ipv4 => AddressFamily::Inet,
            Table::Ipv6 => AddressFamily::Inet6,
        }
    }

    /// The sysctl of its limits, without the digit: `...gc_thresh`.
    pub(crate) fn setting(self) -> &'static str {
        match self {
            Table::Ipv4 => "net.ipv4.neigh.default.gc_thresh",
            Table::Ipv6 => "net.ipv6.neigh.default.gc_thresh",
        }
    }

    pub(crate) fn family_name(self) -> &'static str {
        match self {
            Table::Ipv4 => "IPv4",
            Table::Ipv6 => "IPv6",
        }
    }
}

/// The neighbour table's limits: no collection below `thresh1`; above `thresh2`, entries older
/// than 5 s are collected at each new one; `thresh3` is the most entries it holds (a new one
/// past it fails when nothing can be collected, and the neighbour is unreachable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    pub thresh1: u32,
    pub thresh2: u32,
    pub thresh3: u32,
}

/// The limits of `table`, asked in the namespace of `rtnl`.
pub(crate) fn limits(rtnl: &Rtnl, table: Table) -> Result<Limits> {
    let mut request = NeighbourTableMessage::default();
    request.header.family = table.family();
    let what = format!(
        "cannot read the {} neighbour table's limits",
        table.family_name()
    );
    let answers = batch::dump(
        rtnl.socket(),
        RouteNetlinkMessage::GetNeighbourTable(request),
        &what,
    )?;
    answers
        .iter()
        .filter_map(|answer| match answer {
            RouteNetlinkMessage::NewNeighbourTable(message) => limits_of(message, table),
            _ => None,
        })
        .next()
        .ok_or_else(|| Error::Netlink(format!("{what}: the kernel did not list {}", table.name())))
}

/// The limits a table's description carries (the first message of each table does; the ones
/// after it describe each link's parameters).
fn limits_of(message: &NeighbourTableMessage, table: Table) -> Option<Limits> {
    let mut name = None;
    let (mut t1, mut t2, mut t3) = (None, None, None);
    for attribute in &message.attributes {
        match attribute {
            NeighbourTableAttribute::Name(n) => name = Some(n.as_str()),
            NeighbourTableAttribute::Threshold1(v) => t1 = Some(*v),
            NeighbourTableAttribute::Threshold2(v) => t2 = Some(*v),
            NeighbourTableAttribute::Threshold3(v) => t3 = Some(*v),
            _ => {}
        }
    }
    if name != Some(table.name()) {
        return None;
    }
    Some(Limits {
        thresh1: t1?,
        thresh2: t2?,
        thresh3: t3?,
    })
}

/// Sets the limits of `table`; `Ok(false)` when the kernel refuses because this is not the
/// initial network namespace (the only one that may).
pub(crate) fn set_limits(rtnl: &Rtnl, table: Table, limits: &Limits) -> Result<bool> {
    let mut request = NeighbourTableMessage::default();
    request.header.family = table.family();
    request.attributes = vec![
        NeighbourTableAttribute::Name(table.name().to_string()),
        NeighbourTableAttribute::Threshold1(limits.thresh1),
        NeighbourTableAttribute::Threshold2(limits.thresh2),
        NeighbourTableAttribute::Threshold3(limits.thresh3),
    ];
    let mut batch = Batch::new();
    batch.push(
        RouteNetlinkMessage::SetNeighbourTable(request),
        0,
        format!(
            "cannot set the {} neighbour table's limits",
            table.family_name()
        ),
    );
    match batch.send(rtnl.socket()) {
        Ok(()) => Ok(true),
        Err(refused) if refused.errno() == Some(libc::ENOENT) => Ok(false),
        Err(refused) => Err(refused.into()),
    }
}
