//! The IPv4 neighbour table's garbage collection limits (`net.ipv4.neigh.default.gc_thresh1`,
//! `2`, `3`), read and set over rtnetlink (RTM_GETNEIGHTBL, RTM_SETNEIGHTBL) rather than under
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
use crate::link::Rtnl;
use crate::rtnl_batch::{self, Batch};

/// The IPv4 table's name in the kernel.
const ARP_TABLE: &str = "arp_cache";

/// The neighbour table's limits: no collection below `thresh1`; above `thresh2`, entries older
/// than 5 s are collected at each new one; `thresh3` is the most entries it holds (a new one
/// past it fails when nothing can be collected, and the neighbour is unreachable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub thresh1: u32,
    pub thresh2: u32,
    pub thresh3: u32,
}

/// The IPv4 neighbour table's limits, asked in the namespace of `rtnl`.
pub fn ipv4_limits(rtnl: &Rtnl) -> Result<Limits> {
    let mut request = NeighbourTableMessage::default();
    request.header.family = AddressFamily::Inet;
    let what = "cannot read the IPv4 neighbour table's limits";
    let answers = rtnl_batch::dump(
        rtnl.socket(),
        RouteNetlinkMessage::GetNeighbourTable(request),
        what,
    )?;
    answers
        .iter()
        .filter_map(|answer| match answer {
            RouteNetlinkMessage::NewNeighbourTable(table) => limits_of(table),
            _ => None,
        })
        .next()
        .ok_or_else(|| Error::Netlink(format!("{what}: the kernel did not list {ARP_TABLE}")))
}

/// The limits a table's description carries (the first message of each table does; the ones
/// after it describe each link's parameters).
fn limits_of(table: &NeighbourTableMessage) -> Option<Limits> {
    let mut name = None;
    let (mut t1, mut t2, mut t3) = (None, None, None);
    for attribute in &table.attributes {
        match attribute {
            NeighbourTableAttribute::Name(n) => name = Some(n.as_str()),
            NeighbourTableAttribute::Threshold1(v) => t1 = Some(*v),
            NeighbourTableAttribute::Threshold2(v) => t2 = Some(*v),
            NeighbourTableAttribute::Threshold3(v) => t3 = Some(*v),
            _ => {}
        }
    }
    if name != Some(ARP_TABLE) {
        return None;
    }
    Some(Limits {
        thresh1: t1?,
        thresh2: t2?,
        thresh3: t3?,
    })
}

/// Sets the IPv4 neighbour table's limits; `Ok(false)` when the kernel refuses because this is
/// not the initial network namespace (the only one that may).
pub fn set_ipv4_limits(rtnl: &Rtnl, limits: &Limits) -> Result<bool> {
    let mut request = NeighbourTableMessage::default();
    request.header.family = AddressFamily::Inet;
    request.attributes = vec![
        NeighbourTableAttribute::Name(ARP_TABLE.to_string()),
        NeighbourTableAttribute::Threshold1(limits.thresh1),
        NeighbourTableAttribute::Threshold2(limits.thresh2),
        NeighbourTableAttribute::Threshold3(limits.thresh3),
    ];
    let mut batch = Batch::new();
    batch.push(
        RouteNetlinkMessage::SetNeighbourTable(request),
        0,
        "cannot set the IPv4 neighbour table's limits".to_string(),
    );
    match batch.send(rtnl.socket()) {
        Ok(()) => Ok(true),
        Err(refused) if refused.errno() == Some(libc::ENOENT) => Ok(false),
        Err(refused) => Err(refused.into()),
    }
}
