//! ocinet's nftables table, `inet ocinet`. Per-network masquerade is one element of a set and
//! each published port (or range) one element of a DNAT map, so setup and teardown add or
//! remove elements in one batch and the rules never grow with the number of containers.

use ipnet::Ipv4Net;

use crate::error::{Error, Result};
use crate::nft::{Nft, NftError};

pub const TABLE: &str = "inet ocinet";

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

/// One DNAT map element: `map` is `dnat_port` or `dnat_addr`, `key` and `value` in nft syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnatElement {
    pub map: &'static str,
    pub key: String,
    pub value: String,
}

pub struct Firewall {
    nft: Nft,
    /// Set when this instance had to create the table (first use, or after a flush).
    created: std::cell::Cell<bool>,
}

impl Firewall {
    pub fn new() -> Result<Firewall> {
        Ok(Firewall {
            nft: Nft::new()?,
            created: std::cell::Cell::new(false),
        })
    }

    /// True if the table was missing and this instance created it.
    pub fn table_was_created(&self) -> bool {
        self.created.get()
    }

    /// Runs `batch`, creating the table first if it is missing.
    fn run_with_table(&self, batch: &str) -> Result<()> {
        match self.nft.run(batch) {
            Ok(_) => return Ok(()),
            Err(e) if e.is_missing() => {}
            Err(e) => return Err(fail(batch, e)),
        }
        // `create table` fails if another hook made it meanwhile: then just retry the batch.
        let create = table_definition().replacen("add table", "create table", 1);
        match self.nft.run(&format!("{create}{batch}")) {
            Ok(_) => {
                self.created.set(true);
                Ok(())
            }
            Err(e) if e.is_exists() => self.nft.run(batch).map(|_| ()).map_err(|e| fail(batch, e)),
            Err(e) => Err(fail(batch, e)),
        }
    }

    /// Traffic from `subnet` to anywhere but our masqueraded subnets leaves with the host's
    /// address.
    pub fn ensure_masquerade(&self, subnet: Ipv4Net) -> Result<()> {
        self.setup(Some(subnet), &[])
    }

    /// What a container's setup needs, in one batch (one ruleset fetch, one commit): the
    /// masquerade of its subnet (`None`: not masqueraded) and its DNAT elements, all or none.
    pub fn setup(&self, masquerade: Option<Ipv4Net>, elements: &[DnatElement]) -> Result<()> {
        self.add(masquerade.as_slice(), elements)
    }

    /// Adds masquerade subnets and DNAT elements (already present ones are fine), creating the
    /// table if it is missing: also how `reload` puts back what a flush removed.
    pub fn add(&self, subnets: &[Ipv4Net], elements: &[DnatElement]) -> Result<()> {
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
}

impl Firewall {
    /// Adds the DNAT elements, all or none (one batch).
    pub fn publish(&self, elements: &[DnatElement]) -> Result<()> {
        self.setup(None, elements)
    }

    /// Removes the DNAT elements; ones already gone are fine (teardown is idempotent).
    pub fn unpublish(&self, elements: &[DnatElement]) -> Result<()> {
        let delete =
            |e: &DnatElement| format!("delete element {TABLE} {} {{ {} }}\n", e.map, e.key);
        let batch: String = elements.iter().map(delete).collect();
        if batch.is_empty() || self.nft.run(&batch).is_ok() {
            return Ok(());
        }
        // Some element (or the whole table) is gone: remove the rest one by one.
        for e in elements {
            match self.nft.run(&delete(e)) {
                Ok(_) => {}
                Err(err) if err.is_missing() => {}
                Err(err) => return Err(fail(&delete(e), err)),
            }
        }
        Ok(())
    }
}

fn add_element(e: &DnatElement) -> String {
    format!(
        "add element {TABLE} {} {{ {} : {} }}\n",
        e.map, e.key, e.value
    )
}

fn fail(batch: &str, e: NftError) -> Error {
    let what = batch.lines().next().unwrap_or_default();
    Error::Firewall(format!("{what}: {}", e.0))
}
