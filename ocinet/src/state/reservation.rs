//! What a driver's plan reserves in the state root: addresses chosen under their lease
//! store's lock and host ports checked under the claims' lock. Committed only once the record
//! that names them is on disk, so teardown always knows what to release.

use std::net::IpAddr;

use crate::error::Result;
use crate::host::fault;
use crate::ports::claims::ClaimTxn;
use crate::ports::publish::PublishedPort;
use crate::state::ipam::LeaseTxn;

pub(crate) struct Reservation {
    /// Each lease store's lock with the addresses chosen under it (one per family).
    pub leases: Vec<(LeaseTxn, Vec<IpAddr>)>,
    pub ports: Option<(ClaimTxn, Vec<PublishedPort>)>,
}

impl Reservation {
    /// Writes the leases, then the claims; the locks go with `self`.
    pub(crate) fn commit(self, id: &str, boot_id: &str) -> Result<()> {
        for (txn, addresses) in &self.leases {
            for address in addresses {
                txn.commit(*address, id, boot_id)?;
            }
        }
        fault::point("setup:lease");
        if let Some((txn, ports)) = &self.ports {
            for p in ports {
                txn.claim(p.protocol, p.host, p.host_ip, id, boot_id)?;
            }
        }
        fault::point("setup:claims");
        Ok(())
    }
}
