//! Address leases (either family), one file per leased address under the network's directory, guarded by a
//! file lock. A lease names its container and the boot it was made in: leases of an earlier
//! boot are free again.

use std::fs::{self, File};
use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::host::store::{self, StateRoot};
use crate::network::{is_host_address, Network, Subnet};

/// Who holds an address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Lease {
    pub id: String,
    pub boot_id: String,
}

/// The lease store of one network.
#[derive(Debug, Clone)]
pub(crate) struct LeaseStore {
    dir: PathBuf,
    leases: PathBuf,
}

/// A locked view of the store: choose and commit happen under one lock so no two containers
/// get the same address.
pub(crate) struct LeaseTxn {
    store: LeaseStore,
    _lock: File,
}

/// The part of a network definition the allocator needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pool<'a> {
    pub network: &'a str,
    pub subnet: IpNet,
    pub gateway: IpAddr,
}

impl<'a> Pool<'a> {
    /// The pool of one subnet of `network`.
    pub(crate) fn of(network: &'a Network, subnet: &Subnet) -> Pool<'a> {
        Pool {
            network: &network.name,
            subnet: subnet.subnet,
            gateway: subnet.gateway,
        }
    }
}

impl LeaseStore {
    /// The store of network `name` (validated by the caller); needs no network definition, so
    /// teardown works after the definition is gone.
    pub fn open(root: &StateRoot, name: &str) -> Result<LeaseStore> {
        let dir = root.subdir(&["networks", name])?;
        Ok(LeaseStore {
            leases: store::subdir_of(&dir, "leases")?,
            dir,
        })
    }

    /// Removes the directory of retired network `name` (its leases, cursors and lock): a
    /// network made and removed by every CI run would otherwise leave one behind each time.
    /// Taken under its lock, so a setup that holds it finishes first. Idempotent.
    pub(crate) fn remove_network(root: &StateRoot, name: &str) -> Result<()> {
        let dir = root.path().join("networks").join(name);
        match fs::symlink_metadata(&dir) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(Error::Corrupt {
                    path: dir,
                    reason: "expected a directory (symlinks are not followed)".to_string(),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(format!("cannot stat {}", dir.display()), e)),
        }
        let _held = store::lock(&dir.join("lock"))?;
        store::remove_tree(&dir)
    }

    /// Locks the store until the transaction is dropped (it owns a copy of the store's paths, so
    /// a driver's plan can hold it while the engine writes the record).
    pub(crate) fn begin(&self) -> Result<LeaseTxn> {
        Ok(LeaseTxn {
            _lock: store::lock(&self.dir.join("lock"))?,
            store: self.clone(),
        })
    }

    /// As [`LeaseStore::begin`], but `None` at once when a setup holds the lock.
    pub(crate) fn try_begin(&self) -> Result<Option<LeaseTxn>> {
        Ok(
            store::try_lock(&self.dir.join("lock"))?.map(|lock| LeaseTxn {
                _lock: lock,
                store: self.clone(),
            }),
        )
    }

    fn lease_path(&self, ip: IpAddr) -> PathBuf {
        self.leases.join(ip.to_string())
    }

    /// The cursor of one family (a dual-stack network leases one address of each): the next
    /// search starts after it, so an IPv6 subnet's 2^64 addresses are never walked, only those
    /// leased in a row after the cursor.
    fn hint_path(&self, ip: IpAddr) -> PathBuf {
        self.dir.join(match ip {
            IpAddr::V4(_) => "last-leased",
            IpAddr::V6(_) => "last-leased6",
        })
    }

    /// Who holds `ip`, if anyone.
    pub(crate) fn holder(&self, ip: IpAddr) -> Result<Option<Lease>> {
        store::read_json(&self.lease_path(ip))
    }

    /// Every lease file, as address and holder; corrupt ones are skipped.
    #[cfg(test)]
    fn leases(&self) -> Result<Vec<(IpAddr, Lease)>> {
        let entries = fs::read_dir(&self.leases)
            .map_err(|e| Error::io(format!("cannot list {}", self.leases.display()), e))?;
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let Some(ip) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<IpAddr>().ok())
            else {
                continue;
            };
            if let Ok(Some(lease)) = self.holder(ip) {
                out.push((ip, lease));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Frees `ip` if `id` holds it; anything else (free, another holder) is left alone.
    pub(crate) fn release(&self, ip: IpAddr, id: &str) -> Result<()> {
        let _txn = self.begin()?;
        match self.holder(ip) {
            Ok(Some(lease)) if lease.id == id => store::remove_file(&self.lease_path(ip)),
            Ok(_) => Ok(()),
            // A corrupt lease that our record names is ours to clear.
            Err(Error::Corrupt { .. }) => store::remove_file(&self.lease_path(ip)),
            Err(e) => Err(e),
        }
    }
}

impl Ord for Lease {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.id.cmp(&other.id)
    }
}
impl PartialOrd for Lease {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl LeaseTxn {
    /// Picks the address for `id`: the requested one (or a clear error), else `preferred` when
    /// it is still free (same container, same address), else the next free one after the last
    /// address leased.
    pub(crate) fn choose(
        &self,
        pool: Pool<'_>,
        id: &str,
        boot_id: &str,
        requested: Option<IpAddr>,
        preferred: Option<IpAddr>,
    ) -> Result<IpAddr> {
        let s = &self.store;
        if let Some(ip) = requested {
            if !is_host_address(pool.subnet, ip) || ip == pool.gateway {
                return Err(Error::AddressOutside {
                    ip,
                    network: pool.network.to_string(),
                    subnet: pool.subnet.to_string(),
                });
            }
            return match s.holder(ip)? {
                Some(lease) if lease.id != id && lease.boot_id == boot_id => {
                    Err(Error::AddressTaken {
                        ip,
                        holder: lease.id,
                        network: pool.network.to_string(),
                    })
                }
                _ => Ok(ip),
            };
        }
        let usable = |ip: IpAddr| match s.holder(ip) {
            Ok(None) => true,
            Ok(Some(lease)) => lease.id == id || lease.boot_id != boot_id,
            Err(_) => false, // corrupt: leave it for an operator, take another
        };
        if let Some(ip) =
            preferred.filter(|ip| is_host_address(pool.subnet, *ip) && *ip != pool.gateway)
        {
            if usable(ip) {
                return Ok(ip);
            }
        }
        let hint = store::read_file(&s.hint_path(pool.subnet.addr()))
            .ok()
            .flatten()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|t| t.trim().parse().ok());
        next_free(pool.subnet, pool.gateway, hint, usable).ok_or_else(|| Error::Exhausted {
            network: pool.network.to_string(),
            subnet: pool.subnet.to_string(),
        })
    }

    /// Writes the lease of `ip` to `id` (atomically), and remembers it as the last one leased.
    pub(crate) fn commit(&self, ip: IpAddr, id: &str, boot_id: &str) -> Result<()> {
        let s = &self.store;
        let lease = Lease {
            id: id.to_string(),
            boot_id: boot_id.to_string(),
        };
        store::write_json(&s.lease_path(ip), &lease)?;
        // The hint only speeds up the search; losing it loses nothing, so it is not fsynced.
        let _ = fs::write(s.hint_path(ip), ip.to_string());
        Ok(())
    }
}

/// The first usable address after `after` (wrapping around the subnet), skipping the network
/// address, the IPv4 broadcast address and the gateway. `None` when every host address is taken.
pub(crate) fn next_free(
    subnet: IpNet,
    gateway: IpAddr,
    after: Option<IpAddr>,
    mut usable: impl FnMut(IpAddr) -> bool,
) -> Option<IpAddr> {
    let (network, broadcast) = (as_number(subnet.network()), as_number(subnet.broadcast()));
    let first = network + 1;
    let last = match subnet {
        IpNet::V4(_) => broadcast.checked_sub(1)?,
        IpNet::V6(_) => broadcast,
    };
    if first > last {
        return None;
    }
    let count = last - first + 1;
    let start = after
        .filter(|a| a.is_ipv4() == subnet.network().is_ipv4())
        .map(as_number)
        .filter(|a| (first..=last).contains(a))
        .map_or(0, |a| a - first + 1);
    let v4 = subnet.network().is_ipv4();
    (0..count)
        .map(|i| from_number(first + (start + i) % count, v4))
        .filter(|ip| *ip != gateway)
        .find(|ip| usable(*ip))
}

fn as_number(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn from_number(n: u128, v4: bool) -> IpAddr {
    if v4 {
        // Only numbers of an IPv4 subnet get here.
        IpAddr::V4(std::net::Ipv4Addr::from(n as u32))
    } else {
        IpAddr::V6(std::net::Ipv6Addr::from(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::net::Ipv4Addr;
    use std::path::Path;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    fn last_octet(ip: IpAddr) -> u8 {
        match ip {
            IpAddr::V4(v4) => v4.octets()[3],
            IpAddr::V6(v6) => v6.octets()[15],
        }
    }

    #[test]
    fn ipv6_subnets_allocate_too() {
        let subnet = net("fd00::/126");
        let gw: IpAddr = "fd00::1".parse().unwrap();
        let mut taken = HashSet::new();
        let mut last = None;
        while let Some(ip) = next_free(subnet, gw, last, |ip| !taken.contains(&ip)) {
            taken.insert(ip);
            last = Some(ip);
        }
        // No broadcast in IPv6: ::2 and ::3 are both usable.
        assert_eq!(taken.len(), 2);
        assert!(taken.contains(&"fd00::3".parse::<IpAddr>().unwrap()));
    }

    #[test]
    fn allocates_in_order_skipping_gateway() {
        let subnet = net("10.0.0.0/29");
        let gw = v4(10, 0, 0, 1);
        let mut taken = HashSet::new();
        let mut got = Vec::new();
        let mut last = None;
        while let Some(ip) = next_free(subnet, gw, last, |ip| !taken.contains(&ip)) {
            taken.insert(ip);
            got.push(last_octet(ip));
            last = Some(ip);
        }
        assert_eq!(got, vec![2, 3, 4, 5, 6]);
    }

    #[test]
    fn wraps_around_after_the_hint() {
        let subnet = net("10.0.0.0/29");
        let gw = v4(10, 0, 0, 1);
        let ip = next_free(subnet, gw, Some(v4(10, 0, 0, 6)), |_| true);
        assert_eq!(ip, Some(v4(10, 0, 0, 2)));
        let taken = [2u8, 3].map(|o| v4(10, 0, 0, o));
        let ip = next_free(subnet, gw, Some(v4(10, 0, 0, 5)), |ip| !taken.contains(&ip));
        assert_eq!(ip, Some(v4(10, 0, 0, 6)));
    }

    #[test]
    fn full_subnet_has_nothing() {
        let subnet = net("10.0.0.0/30");
        let gw = v4(10, 0, 0, 1);
        assert_eq!(next_free(subnet, gw, None, |_| true), Some(v4(10, 0, 0, 2)));
        assert_eq!(next_free(subnet, gw, None, |_| false), None);
    }

    #[test]
    fn gateway_in_the_middle_is_skipped() {
        let subnet = net("10.0.0.0/29");
        let gw = v4(10, 0, 0, 3);
        let mut seen = Vec::new();
        next_free(subnet, gw, None, |ip| {
            seen.push(last_octet(ip));
            false
        });
        assert_eq!(seen, vec![1, 2, 4, 5, 6]);
    }

    fn store(name: &str) -> (LeaseStore, PathBuf) {
        let dir = std::env::temp_dir().join(format!("ocinet-ipam-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let root = StateRoot::open(&dir).unwrap();
        (LeaseStore::open(&root, "ocinet").unwrap(), dir)
    }

    fn pool(subnet: &str) -> Pool<'static> {
        let subnet = net(subnet);
        Pool {
            network: "ocinet",
            subnet,
            gateway: crate::network::first_host(subnet),
        }
    }

    fn lease(s: &LeaseStore, id: &str, boot: &str, req: Option<IpAddr>) -> Result<IpAddr> {
        let txn = s.begin()?;
        let ip = txn.choose(pool("10.0.0.0/29"), id, boot, req, None)?;
        txn.commit(ip, id, boot)?;
        Ok(ip)
    }

    #[test]
    fn store_leases_releases_and_refuses() {
        let (s, dir) = store("cycle");
        let a = lease(&s, "a", "b1", None).unwrap();
        let b = lease(&s, "b", "b1", None).unwrap();
        assert_ne!(a, b);
        // Static request of a taken address names the holder.
        let err = lease(&s, "c", "b1", Some(a)).unwrap_err().to_string();
        assert!(err.contains("leased to container a"), "{err}");
        // Outside the subnet, or the gateway: refused.
        assert!(lease(&s, "c", "b1", Some(v4(10, 0, 1, 2))).is_err());
        assert!(lease(&s, "c", "b1", Some(v4(10, 0, 0, 1))).is_err());
        assert!(lease(&s, "c", "b1", Some(v4(10, 0, 0, 7))).is_err());
        // Fill up, then exhaustion is an error.
        for id in ["c", "d", "e"] {
            lease(&s, id, "b1", None).unwrap();
        }
        let err = lease(&s, "f", "b1", None).unwrap_err().to_string();
        assert!(err.contains("no free address"), "{err}");
        // Releasing by a non-holder does nothing; by the holder frees it.
        s.release(a, "zzz").unwrap();
        assert!(s.holder(a).unwrap().is_some());
        s.release(a, "a").unwrap();
        s.release(a, "a").unwrap();
        assert_eq!(lease(&s, "f", "b1", None).unwrap(), a);
        // Leases of an earlier boot are free.
        assert!(lease(&s, "g", "b2", None).is_ok());
        assert_eq!(s.leases().unwrap().len(), 5);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_removed_network_leaves_no_directory_and_removing_twice_is_fine() {
        let (s, dir) = store("remove");
        lease(&s, "a", "b1", None).unwrap();
        let net_dir = dir.join("networks/ocinet");
        assert!(net_dir.join("last-leased").exists());
        let root = StateRoot::open(&dir).unwrap();
        LeaseStore::remove_network(&root, "ocinet").unwrap();
        assert!(!net_dir.exists());
        LeaseStore::remove_network(&root, "ocinet").unwrap();
        // Never through a link.
        std::os::unix::fs::symlink("/tmp", &net_dir).unwrap();
        let e = LeaseStore::remove_network(&root, "ocinet").unwrap_err();
        assert!(e.to_string().contains("symlinks are not followed"), "{e}");
        assert!(Path::new("/tmp").is_dir());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn same_container_gets_same_address() {
        let (s, dir) = store("same");
        let a = lease(&s, "a", "b1", None).unwrap();
        let txn = s.begin().unwrap();
        let p = pool("10.0.0.0/29");
        assert_eq!(txn.choose(p, "a", "b1", None, Some(a)).unwrap(), a);
        assert_ne!(txn.choose(p, "b", "b1", None, Some(a)).unwrap(), a);
        drop(txn);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn corrupt_lease_is_skipped_not_fatal() {
        let (s, dir) = store("corrupt");
        fs::write(s.lease_path(v4(10, 0, 0, 2)), b"{garbage").unwrap();
        assert_eq!(lease(&s, "a", "b1", None).unwrap(), v4(10, 0, 0, 3));
        fs::remove_dir_all(dir).unwrap();
    }
}
