//! Host-port claims: who publishes which `hostIP:port/protocol`. One file per claimed
//! protocol and port, holding its claims by host address (`None` = every address), all under
//! one lock. A claim of an earlier boot is stale and free again.

use std::fs::File;
use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::host::store::{self, StateRoot};
use crate::ports::{PortRange, Protocol};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Claim {
    /// `None`: every host address.
    pub host_ip: Option<IpAddr>,
    pub id: String,
    pub boot_id: String,
}

#[derive(Debug, Clone)]
pub(crate) struct PortClaims {
    dir: PathBuf,
}

/// The claims under their lock.
pub(crate) struct ClaimTxn {
    claims: PortClaims,
    _lock: File,
}

impl PortClaims {
    pub fn open(root: &StateRoot) -> Result<PortClaims> {
        let dir = root.subdir(&["ports"])?;
        for proto in [Protocol::Tcp, Protocol::Udp, Protocol::Sctp] {
            store::subdir_of(&dir, proto.name())?;
        }
        Ok(PortClaims { dir })
    }

    /// Locks the claims until the transaction is dropped (it owns a copy of the paths, so a
    /// driver's plan can hold it while the engine writes the record).
    pub(crate) fn begin(&self) -> Result<ClaimTxn> {
        Ok(ClaimTxn {
            _lock: store::lock(&self.dir.join("lock"))?,
            claims: self.clone(),
        })
    }

    fn path(&self, protocol: Protocol, port: u16) -> PathBuf {
        self.dir.join(protocol.name()).join(port.to_string())
    }

    fn read(&self, protocol: Protocol, port: u16) -> Result<Vec<Claim>> {
        Ok(store::read_json(&self.path(protocol, port))?.unwrap_or_default())
    }

    fn write(&self, protocol: Protocol, port: u16, claims: &[Claim]) -> Result<()> {
        let path = self.path(protocol, port);
        if claims.is_empty() {
            return store::remove_file(&path);
        }
        store::write_json(&path, &claims)
    }
}

fn overlaps(a: Option<IpAddr>, b: Option<IpAddr>) -> bool {
    a.is_none() || b.is_none() || a == b
}

impl ClaimTxn {
    /// The container holding a live claim that conflicts with `host_ip:port/protocol`.
    pub(crate) fn holder(
        &self,
        protocol: Protocol,
        port: u16,
        host_ip: Option<IpAddr>,
        id: &str,
        boot_id: &str,
    ) -> Result<Option<String>> {
        Ok(self
            .claims
            .read(protocol, port)?
            .into_iter()
            .find(|c| c.id != id && c.boot_id == boot_id && overlaps(c.host_ip, host_ip))
            .map(|c| c.id))
    }

    /// Claims every port of `range`, or fails naming the holder of the first taken one.
    pub(crate) fn claim(
        &self,
        protocol: Protocol,
        range: PortRange,
        host_ip: Option<IpAddr>,
        id: &str,
        boot_id: &str,
    ) -> Result<()> {
        for port in range.ports() {
            if let Some(holder) = self.holder(protocol, port, host_ip, id, boot_id)? {
                return Err(Error::PortTaken {
                    spec: format!("{}:{port}/{protocol}", crate::ports::host_address(host_ip)),
                    holder,
                });
            }
        }
        for port in range.ports() {
            let mut claims = self.claims.read(protocol, port)?;
            claims.retain(|c| c.boot_id == boot_id && !(c.id == id && c.host_ip == host_ip));
            claims.push(Claim {
                host_ip,
                id: id.to_string(),
                boot_id: boot_id.to_string(),
            });
            self.claims.write(protocol, port, &claims)?;
        }
        Ok(())
    }

    /// Drops `id`'s claims on `range`; others' stay. Idempotent.
    pub(crate) fn release(
        &self,
        protocol: Protocol,
        range: PortRange,
        host_ip: Option<IpAddr>,
        id: &str,
    ) -> Result<()> {
        for port in range.ports() {
            let claims = match self.claims.read(protocol, port) {
                Ok(c) => c,
                // A corrupt claim file on a port we held: nothing in it can be trusted.
                Err(Error::Corrupt { .. }) => Vec::new(),
                Err(e) => return Err(e),
            };
            let kept: Vec<Claim> = claims
                .iter()
                .filter(|c| !(c.id == id && c.host_ip == host_ip))
                .cloned()
                .collect();
            if kept.len() != claims.len() || claims.is_empty() {
                self.claims.write(protocol, port, &kept)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_conflict_by_address_and_release() {
        let dir = std::env::temp_dir().join(format!("ocinet-claims-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let claims = PortClaims::open(&StateRoot::open(&dir).unwrap()).unwrap();
        let txn = claims.begin().unwrap();
        let lo = Some(IpAddr::from([127, 0, 0, 1]));
        let other = Some(IpAddr::from([10, 0, 0, 1]));
        txn.claim(Protocol::Tcp, PortRange::single(8080), lo, "a", "b1")
            .unwrap();
        // Same address, or the wildcard: taken, and the error names the holder.
        let err = txn
            .claim(Protocol::Tcp, PortRange::single(8080), None, "b", "b1")
            .unwrap_err();
        assert!(err.to_string().contains("container a"), "{err}");
        assert!(txn
            .claim(
                Protocol::Tcp,
                PortRange {
                    start: 8070,
                    end: 8090
                },
                lo,
                "b",
                "b1"
            )
            .is_err());
        // Another address, another protocol, another boot: free.
        txn.claim(Protocol::Tcp, PortRange::single(8080), other, "b", "b1")
            .unwrap();
        txn.claim(Protocol::Udp, PortRange::single(8080), None, "c", "b1")
            .unwrap();
        txn.claim(Protocol::Tcp, PortRange::single(8080), None, "d", "b2")
            .unwrap();
        // A refused range claimed nothing.
        assert_eq!(
            txn.holder(Protocol::Tcp, 8070, None, "z", "b1").unwrap(),
            None
        );
        txn.release(Protocol::Tcp, PortRange::single(8080), None, "d")
            .unwrap();
        txn.release(Protocol::Tcp, PortRange::single(8080), lo, "a")
            .unwrap();
        txn.release(Protocol::Tcp, PortRange::single(8080), lo, "a")
            .unwrap();
        txn.claim(Protocol::Tcp, PortRange::single(8080), lo, "e", "b1")
            .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
