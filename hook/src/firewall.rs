//! ocinet's nftables table, `inet ocinet`. Per-network masquerade is one element of a set, so
//! setup adds an element in one batch and the rules never grow with the number of networks.

use ipnet::Ipv4Net;

use crate::error::{Error, Result};
use crate::nft::{Nft, NftError};

pub const TABLE: &str = "inet ocinet";

/// The table, its sets and chains. Created whole, in one batch, when it is missing (first use,
/// or after `nft flush ruleset`).
fn table_definition() -> String {
    format!(
        "add table {TABLE}
add set {TABLE} masq_subnets {{ type ipv4_addr; flags interval; }}
add chain {TABLE} postrouting {{ type nat hook postrouting priority srcnat; policy accept; }}
add rule {TABLE} postrouting ip saddr @masq_subnets ip daddr != @masq_subnets masquerade
"
    )
}

pub struct Firewall {
    nft: Nft,
}

impl Firewall {
    pub fn new() -> Result<Firewall> {
        Ok(Firewall { nft: Nft::new()? })
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
            Ok(_) => Ok(()),
            Err(e) if e.is_exists() => self.nft.run(batch).map(|_| ()).map_err(|e| fail(batch, e)),
            Err(e) => Err(fail(batch, e)),
        }
    }

    /// Traffic from `subnet` to anywhere but our masqueraded subnets leaves with the host's
    /// address.
    pub fn ensure_masquerade(&self, subnet: Ipv4Net) -> Result<()> {
        self.run_with_table(&format!(
            "add element {TABLE} masq_subnets {{ {subnet} }}\n"
        ))
    }
}

fn fail(batch: &str, e: NftError) -> Error {
    let what = batch.lines().next().unwrap_or_default();
    Error::Firewall(format!("{what}: {}", e.0))
}
