//! Who holds which name, at which address, on which network: built from the records (each
//! interface lists the names it holds) and changed by the hooks' `add`/`del`. Family-generic:
//! an interface's IPv6 addresses answer AAAA as its IPv4 ones answer A.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use ocinet::state::record::Record;

/// One container's place on one network.
#[derive(Debug, Clone)]
pub struct Member {
    network: String,
    gateways: Vec<IpAddr>,
    names: Vec<String>,
    addresses: Vec<IpAddr>,
}

/// A container's names, as a record or a hook's `add` gives them.
#[derive(Debug)]
pub struct Entry {
    members: Vec<Member>,
    process: Option<Process>,
}

impl Entry {
    /// A hook's `add ID PID START\tNETWORK GATEWAYS ADDRESSES NAMES\t...` (see
    /// `ocinet::dns::resolver::add_message`): the id and its entry.
    pub fn parse(line: &str) -> Result<(String, Entry), String> {
        let bad = || format!("malformed add: {line:?}");
        let mut parts = line.split('\t');
        let head: Vec<&str> = parts.next().unwrap_or_default().split(' ').collect();
        let [_, id, pid, start] = head.as_slice() else {
            return Err(bad());
        };
        ocinet::validate::container_id(id)?;
        let pid: i32 = pid.parse().map_err(|_| bad())?;
        let start: u64 = start.parse().map_err(|_| bad())?;
        let list = |s: &str| -> Vec<String> {
            match s {
                "-" => Vec::new(),
                s => s.split(',').map(str::to_string).collect(),
            }
        };
        let ips = |s: &str| -> Result<Vec<IpAddr>, String> {
            list(s)
                .iter()
                .map(|a| a.parse().map_err(|_| bad()))
                .collect()
        };
        let mut members = Vec::new();
        for part in parts {
            let [network, gateways, addresses, names] = part.split(' ').collect::<Vec<_>>()[..]
            else {
                return Err(bad());
            };
            members.push(Member {
                network: network.to_string(),
                gateways: ips(gateways)?,
                addresses: ips(addresses)?,
                names: list(names).iter().map(|n| n.to_ascii_lowercase()).collect(),
            });
        }
        let process = (pid > 0).then_some(Process { pid, start });
        Ok((id.to_string(), Entry { members, process }))
    }
}

/// A container's liveness, from its record: pid and start time.
#[derive(Debug, Clone, Copy)]
pub struct Process {
    pub pid: i32,
    pub start: u64,
}

#[derive(Debug, Default)]
struct Net {
    gateways: BTreeSet<IpAddr>,
    /// Lower-case name -> holders (normally one; a race could leave two briefly).
    names: HashMap<String, Vec<String>>,
    /// Address -> container id.
    by_address: HashMap<IpAddr, String>,
}

#[derive(Debug, Default)]
pub struct Table {
    nets: HashMap<String, Net>,
    containers: HashMap<String, (Vec<Member>, Option<Process>)>,
}

/// What a name is to the container asking.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    /// Held on a network the asker shares: these addresses (of the network the question came
    /// in on, if the holder is there, else of the first shared one).
    Found(Vec<IpAddr>),
    /// A container's name, but on no network the asker is on; or a single label nobody holds.
    NotHere,
    /// Not a container's name: for the host's resolvers.
    Elsewhere,
}

impl Table {
    /// Adds (or replaces) the record's names. Returns false when it lists none.
    pub fn add(&mut self, record: &Record) -> bool {
        let entry = Entry {
            members: record
                .interfaces
                .iter()
                .filter(|i| !i.names.is_empty())
                .map(|i| Member {
                    network: i.network.clone(),
                    gateways: i.addresses.iter().filter_map(|a| a.gateway).collect(),
                    names: i.names.clone(),
                    addresses: i.addresses.iter().map(|a| a.address).collect(),
                })
                .collect(),
            process: match (record.pid, record.pid_start) {
                (Some(pid), Some(start)) => Some(Process { pid, start }),
                _ => None,
            },
        };
        self.insert(&record.id, entry)
    }

    /// Adds (or replaces) `id`'s names. Returns false when it has none.
    pub fn insert(&mut self, id: &str, entry: Entry) -> bool {
        self.remove(id);
        if entry.members.is_empty() {
            return false;
        }
        for m in &entry.members {
            let net = self.nets.entry(m.network.clone()).or_default();
            net.gateways.extend(m.gateways.iter().copied());
            for name in &m.names {
                net.names
                    .entry(name.clone())
                    .or_default()
                    .push(id.to_string());
            }
            for a in &m.addresses {
                net.by_address.insert(*a, id.to_string());
            }
        }
        self.containers
            .insert(id.to_string(), (entry.members, entry.process));
        true
    }

    pub fn remove(&mut self, id: &str) {
        let Some((members, _)) = self.containers.remove(id) else {
            return;
        };
        for m in members {
            let Some(net) = self.nets.get_mut(&m.network) else {
                continue;
            };
            for name in &m.names {
                if let Some(holders) = net.names.get_mut(name) {
                    holders.retain(|h| h != id);
                    if holders.is_empty() {
                        net.names.remove(name);
                    }
                }
            }
            for a in &m.addresses {
                if net.by_address.get(a).map(String::as_str) == Some(id) {
                    net.by_address.remove(a);
                }
            }
        }
    }

    /// Whether `id` is in the table.
    pub fn has(&self, id: &str) -> bool {
        self.containers.contains_key(id)
    }

    /// Whether the container at `address` on `network` is in the table.
    pub fn knows_address(&self, network: &str, address: IpAddr) -> bool {
        self.nets
            .get(network)
            .is_some_and(|n| n.by_address.contains_key(&address))
    }

    /// The networks with names.
    pub fn networks(&self) -> Vec<String> {
        self.nets.keys().cloned().collect()
    }

    pub fn is_empty(&self) -> bool {
        self.containers.is_empty()
    }

    pub fn len(&self) -> usize {
        self.containers.len()
    }

    /// Every container and its process, for the sweep.
    pub fn processes(&self) -> Vec<(String, Option<Process>)> {
        self.containers
            .iter()
            .map(|(id, (_, p))| (id.clone(), *p))
            .collect()
    }

    /// The gateways of the networks with names: where to listen.
    pub fn gateways(&self) -> Vec<(String, IpAddr)> {
        let mut all = Vec::new();
        for (name, net) in &self.nets {
            all.extend(net.gateways.iter().map(|g| (name.clone(), *g)));
        }
        all
    }

    /// The networks whose names the asker sees: every network of the container at `source`
    /// on `network` (the one the question came in on first); only `network` for anyone else
    /// (the host).
    fn networks_of<'a>(
        &'a self,
        network: &'a str,
        source: IpAddr,
    ) -> impl Iterator<Item = &'a str> + 'a {
        let others = self
            .nets
            .get(network)
            .and_then(|n| n.by_address.get(&source))
            .and_then(|id| self.containers.get(id))
            .map(|(members, _)| members.as_slice())
            .unwrap_or_default();
        std::iter::once(network).chain(
            others
                .iter()
                .map(|m| m.network.as_str())
                .filter(move |n| *n != network),
        )
    }

    /// The addresses of `name` (lower case, no trailing dot) when the container at `source`
    /// asking on `network` sees it: [`Table::lookup`]'s `Found`, borrowed (the common
    /// question, answered with no allocation).
    pub fn found(&self, network: &str, source: IpAddr, name: &str) -> Option<&[IpAddr]> {
        self.networks_of(network, source).find_map(|net| {
            let holder = self.nets.get(net)?.names.get(name)?.first()?;
            let addresses = self
                .containers
                .get(holder)
                .and_then(|(ms, _)| ms.iter().find(|m| m.network == net))
                .map(|m| m.addresses.as_slice())
                .unwrap_or_default();
            Some(addresses)
        })
    }

    /// `name` (lower case, no trailing dot) as the container at `source` asking on `network`
    /// sees it.
    pub fn lookup(&self, network: &str, source: IpAddr, name: &str) -> Lookup {
        if let Some(addresses) = self.found(network, source, name) {
            return Lookup::Found(addresses.to_vec());
        }
        let anywhere = self.nets.values().any(|n| n.names.contains_key(name));
        if anywhere || !name.contains('.') {
            Lookup::NotHere
        } else {
            Lookup::Elsewhere
        }
    }

    /// The name of the container at `address` as the asker sees it (PTR): `Found` holds it,
    /// `None` when no container has the address.
    pub fn reverse(&self, network: &str, source: IpAddr, address: IpAddr) -> Option<Reverse> {
        for net in self.networks_of(network, source) {
            let holder = self.nets.get(net).and_then(|n| n.by_address.get(&address));
            let name = holder
                .and_then(|id| self.containers.get(id))
                .and_then(|(ms, _)| ms.iter().find(|m| m.network == net))
                .and_then(|m| m.names.first());
            if let Some(name) = name {
                return Some(Reverse::Found(name.clone()));
            }
        }
        let anywhere = self
            .nets
            .values()
            .any(|n| n.by_address.contains_key(&address));
        anywhere.then_some(Reverse::NotHere)
    }
}

/// What an address is to the container asking.
#[derive(Debug, PartialEq, Eq)]
pub enum Reverse {
    Found(String),
    NotHere,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn record(id: &str, ifaces: &[(&str, &str, &str, &[&str])]) -> Record {
        let interfaces: Vec<serde_json::Value> = ifaces
            .iter()
            .enumerate()
            .map(|(i, (net, addr, gw, names))| {
                serde_json::json!({
                    "driver": "bridge", "network": net, "bridge": format!("oc-{net}"),
                    "host_veth": format!("ocv{id}{i}"), "name": format!("eth{i}"),
                    "addresses": [{"address": addr, "prefix_len": 24, "gateway": gw}],
                    "names": names,
                })
            })
            .collect();
        serde_json::from_value(serde_json::json!({
            "version": 2, "id": id, "boot_id": "b", "front_end": "oci-hook",
            "mode": "x", "pid": 1, "pid_start": 1, "interfaces": interfaces,
        }))
        .unwrap()
    }

    /// web (www) and client on n1, db on n2, both on n1 and n2.
    pub(crate) fn table_of() -> Table {
        let mut t = Table::default();
        t.add(&record(
            "c-web",
            &[("n1", "10.91.0.2", "10.91.0.1", &["web", "www"])],
        ));
        t.add(&record(
            "client",
            &[("n1", "10.91.0.3", "10.91.0.1", &["client"])],
        ));
        t.add(&record(
            "c-db",
            &[("n2", "10.92.0.2", "10.92.0.1", &["db"])],
        ));
        t.add(&record(
            "both",
            &[
                ("n1", "10.91.0.4", "10.91.0.1", &["both"]),
                ("n2", "10.92.0.3", "10.92.0.1", &["both"]),
            ],
        ));
        t
    }

    #[test]
    fn a_hooks_add_says_what_the_record_says() {
        let rec = record(
            "both",
            &[
                ("n1", "10.91.0.4", "10.91.0.1", &["both", "b1"]),
                ("n2", "10.92.0.3", "10.92.0.1", &["both"]),
                ("n3", "10.93.0.3", "10.93.0.1", &[]),
            ],
        );
        let line = ocinet::dns::resolver::add_message(&rec);
        let (id, entry) = Entry::parse(&line).unwrap();
        assert_eq!(id, "both");
        let mut from_line = Table::default();
        from_line.insert(&id, entry);
        let mut from_record = Table::default();
        from_record.add(&rec);
        let from: IpAddr = "10.92.0.9".parse().unwrap();
        for t in [&from_line, &from_record] {
            assert_eq!(
                t.lookup("n1", from, "b1"),
                Lookup::Found(vec!["10.91.0.4".parse().unwrap()])
            );
            assert_eq!(
                t.lookup("n2", from, "both"),
                Lookup::Found(vec!["10.92.0.3".parse().unwrap()])
            );
            let mut g = t.gateways();
            g.sort();
            assert_eq!(g.len(), 2);
        }
        for bad in [
            "add x",
            "add ../x 1 2",
            "add x 1 2\tn1 10.0.0.1 nope web",
            "add x 1 2\tn1 -",
        ] {
            assert!(Entry::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn add_remove_and_gateways() {
        let mut t = table_of();
        assert_eq!(t.len(), 4);
        let mut gws: Vec<String> = t
            .gateways()
            .iter()
            .map(|(n, g)| format!("{n} {g}"))
            .collect();
        gws.sort();
        assert_eq!(gws, ["n1 10.91.0.1", "n2 10.92.0.1"]);
        let from: IpAddr = "10.91.0.3".parse().unwrap();
        assert_eq!(
            t.lookup("n1", from, "www"),
            Lookup::Found(vec!["10.91.0.2".parse().unwrap()])
        );
        t.remove("c-web");
        assert_eq!(t.lookup("n1", from, "www"), Lookup::NotHere);
        assert_eq!(t.reverse("n1", from, "10.91.0.2".parse().unwrap()), None);
        // Added again (a second stage): replaced, not doubled.
        let both = record("both", &[("n1", "10.91.0.9", "10.91.0.1", &["both"])]);
        t.add(&both);
        t.add(&both);
        assert_eq!(
            t.lookup("n1", from, "both"),
            Lookup::Found(vec!["10.91.0.9".parse().unwrap()])
        );
        // A record without names adds nothing.
        assert!(!t.add(&record("plain", &[("n1", "10.91.0.7", "10.91.0.1", &[])])));
        for id in ["client", "c-db", "both"] {
            t.remove(id);
        }
        assert!(t.is_empty());
        t.remove("nobody");
    }
}
