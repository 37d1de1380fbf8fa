//! ocinet's nftables table, `inet ocinet`. Per-network masquerade is one element of a set and
//! each published port (or range) one element of a DNAT map, so setup and teardown add or
//! remove elements in one batch and the rules never grow with the number of containers.

use ipnet::Ipv4Net;

use crate::error::{Error, Result};
use std::net::Ipv4Addr;

use crate::nfnetlink::{self, Element, Op, SetChange, NFT_SET_ELEM_INTERVAL_END};
use crate::nft::{Nft, NftError};
use crate::ports::{PortRange, Protocol};

pub const TABLE: &str = "inet ocinet";
const TABLE_NAME: &str = "ocinet";

/// The table, its sets and chains. Created whole, in one batch, when it is missing (first use,
/// or after `nft flush ruleset`).
/// `dnat_port` maps `daddr . proto . dport` to `container . port`; `dnat_addr` to the container
/// alone, keeping the port, so a range published on the same numbers is a single element.
/// Localhost access needs the masquerade of 127.0.0.0/8 (and route_localnet on the bridge);
/// hairpin (a container to a published port) needs the masquerade of DNATed container traffic.
fn table_definition() -> String {
    let dnat = "fib daddr type local meta l4proto { tcp, udp, sctp } dnat ip to ip daddr . meta l4proto . th dport map";
    format!(
        "add table {TABLE}
add set {TABLE} masq_subnets {{ type ipv4_addr; flags interval; }}
add map {TABLE} dnat_port {{ type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; flags interval; }}
add map {TABLE} dnat_addr {{ type ipv4_addr . inet_proto . inet_service : ipv4_addr; flags interval; }}
add chain {TABLE} prerouting {{ type nat hook prerouting priority dstnat; policy accept; }}
add chain {TABLE} output {{ type nat hook output priority -100; policy accept; }}
add chain {TABLE} postrouting {{ type nat hook postrouting priority srcnat; policy accept; }}
add rule {TABLE} prerouting {dnat} @dnat_port
add rule {TABLE} prerouting {dnat} @dnat_addr
add rule {TABLE} output {dnat} @dnat_port
add rule {TABLE} output {dnat} @dnat_addr
add rule {TABLE} postrouting ip saddr @masq_subnets ip daddr != @masq_subnets masquerade
add rule {TABLE} postrouting ct status dnat ip saddr 127.0.0.0/8 masquerade
add rule {TABLE} postrouting ct status dnat ip saddr @masq_subnets masquerade
"
    )
}

/// One DNAT map element: traffic to `host_ip` (`None`: any local address), `protocol` and a
/// port in `ports` goes to `target` (`target_port`, or the same port when `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnatElement {
    pub host_ip: Option<Ipv4Addr>,
    pub protocol: Protocol,
    pub ports: PortRange,
    pub target: Ipv4Addr,
    pub target_port: Option<u16>,
}

impl DnatElement {
    /// `dnat_port` when the port changes, `dnat_addr` when it is kept (a range is one element).
    pub fn map(&self) -> &'static str {
        if self.target_port.is_some() {
            "dnat_port"
        } else {
            "dnat_addr"
        }
    }

    /// The key in nft syntax.
    pub fn key(&self) -> String {
        let daddr = self
            .host_ip
            .map_or("0.0.0.0/0".to_string(), |ip| ip.to_string());
        format!("{daddr} . {} . {}", self.protocol, self.ports)
    }

    /// The value in nft syntax.
    pub fn value(&self) -> String {
        match self.target_port {
            Some(port) => format!("{} . {port}", self.target),
            None => self.target.to_string(),
        }
    }

    /// The key as the kernel stores it: each field of a concatenation padded to 4 bytes.
    pub fn key_bytes(&self) -> Vec<u8> {
        let addr = self.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
        concat_key(addr, self.protocol.number(), self.ports.start)
    }

    /// The end of the key's interval (the same as the key for one address and port).
    pub fn key_end_bytes(&self) -> Vec<u8> {
        let addr = self.host_ip.unwrap_or(Ipv4Addr::BROADCAST);
        concat_key(addr, self.protocol.number(), self.ports.end)
    }

    pub fn data_bytes(&self) -> Vec<u8> {
        let mut data = self.target.octets().to_vec();
        if let Some(port) = self.target_port {
            data.extend(port.to_be_bytes());
            data.extend([0, 0]);
        }
        data
    }
}

fn concat_key(addr: Ipv4Addr, protocol: u8, port: u16) -> Vec<u8> {
    let mut key = addr.octets().to_vec();
    key.extend([protocol, 0, 0, 0]);
    key.extend(port.to_be_bytes());
    key.extend([0, 0]);
    key
}

pub struct Firewall {
    /// libnftables, created only when the fast path cannot do the job.
    nft: std::cell::OnceCell<Nft>,
    /// Set when this instance had to create the table (first use, or after a flush).
    created: std::cell::Cell<bool>,
}

impl Firewall {
    pub fn new() -> Result<Firewall> {
        Ok(Firewall {
            nft: std::cell::OnceCell::new(),
            created: std::cell::Cell::new(false),
        })
    }

    fn nft(&self) -> Result<&Nft> {
        if let Some(nft) = self.nft.get() {
            return Ok(nft);
        }
        let nft = Nft::new()?;
        Ok(self.nft.get_or_init(|| nft))
    }

    /// True if the table was missing and this instance created it.
    pub fn table_was_created(&self) -> bool {
        self.created.get()
    }

    /// Runs `batch`, creating the table first if it is missing.
    fn run_with_table(&self, batch: &str) -> Result<()> {
        match self.nft()?.run(batch) {
            Ok(_) => return Ok(()),
            Err(e) if e.is_missing() => {}
            Err(e) => return Err(fail(batch, e)),
        }
        // `create table` fails if another hook made it meanwhile: then just retry the batch.
        let create = table_definition().replacen("add table", "create table", 1);
        match self.nft()?.run(&format!("{create}{batch}")) {
            Ok(_) => {
                self.created.set(true);
                Ok(())
            }
            Err(e) if e.is_exists() => self
                .nft()?
                .run(batch)
                .map(|_| ())
                .map_err(|e| fail(batch, e)),
            Err(e) => Err(fail(batch, e)),
        }
    }

    /// Adds masquerade subnets and DNAT elements in one atomic batch, all or none (already
    /// present ones are fine), creating the table if it is missing: a container's setup, and
    /// how `reload` puts back what a flush removed.
    pub fn add(&self, subnets: &[Ipv4Net], elements: &[DnatElement]) -> Result<()> {
        // The common case, straight to the kernel. Anything unusual (the table gone after a
        // flush, an interval touching another) goes the way of libnftables, which handles all.
        if nfnetlink::run(TABLE_NAME, Op::Add, &set_changes(subnets, elements)).is_ok() {
            return Ok(());
        }
        let mut batch: String = subnets
            .iter()
            .map(|s| format!("add element {TABLE} masq_subnets {{ {s} }}\n"))
            .collect();
        batch.extend(elements.iter().map(add_element));
        if batch.is_empty() {
            return Ok(());
        }
        self.run_with_table(&batch)
    }

    /// Removes the DNAT elements; ones already gone are fine (teardown is idempotent).
    pub fn unpublish(&self, elements: &[DnatElement]) -> Result<()> {
        let delete =
            |e: &DnatElement| format!("delete element {TABLE} {} {{ {} }}\n", e.map(), e.key());
        if nfnetlink::run(TABLE_NAME, Op::Delete, &set_changes(&[], elements)).is_ok() {
            return Ok(());
        }
        let batch: String = elements.iter().map(delete).collect();
        if batch.is_empty() || self.nft()?.run(&batch).is_ok() {
            return Ok(());
        }
        // Some element (or the whole table) is gone: remove the rest one by one.
        for e in elements {
            match self.nft()?.run(&delete(e)) {
                Ok(_) => {}
                Err(err) if err.is_missing() => {}
                Err(err) => return Err(fail(&delete(e), err)),
            }
        }
        Ok(())
    }
}

/// The raw elements: a subnet is an rbtree interval (its start, and the address after it
/// flagged as the interval's end); a DNAT element a concatenated key with its end and value.
fn set_changes<'a>(subnets: &[Ipv4Net], elements: &[DnatElement]) -> Vec<SetChange<'a>> {
    let mut masq = SetChange {
        set: "masq_subnets",
        elements: Vec::new(),
    };
    for subnet in subnets {
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
    let mut port = SetChange {
        set: "dnat_port",
        elements: Vec::new(),
    };
    let mut addr = SetChange {
        set: "dnat_addr",
        elements: Vec::new(),
    };
    for e in elements {
        let target = if e.target_port.is_some() {
            &mut port
        } else {
            &mut addr
        };
        target.elements.push(Element {
            key: e.key_bytes(),
            key_end: Some(e.key_end_bytes()),
            data: Some(e.data_bytes()),
            flags: 0,
        });
    }
    vec![masq, port, addr]
}

fn add_element(e: &DnatElement) -> String {
    format!(
        "add element {TABLE} {} {{ {} : {} }}\n",
        e.map(),
        e.key(),
        e.value()
    )
}

fn fail(batch: &str, e: NftError) -> Error {
    let what = batch.lines().next().unwrap_or_default();
    Error::Firewall(format!("{what}: {}", e.0))
}
