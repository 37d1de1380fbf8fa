//! Network definitions: the built-in default network and user files in
//! `<config-dir>/networks/<name>.json`.

use std::fs;
use std::io::ErrorKind;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::validate;

pub const DEFAULT_NETWORK: &str = "ocinet";
pub const DEFAULT_BRIDGE: &str = "ocinet0";
const DEFAULT_MTU: u32 = 1500;
/// Network files are a few hundred bytes; anything far larger is a mistake or an attack.
const MAX_NETWORK_FILE_BYTES: u64 = 64 * 1024;

/// A network as the engine uses it: one IPv4 subnet behind one Linux bridge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Network {
    pub name: String,
    pub bridge: String,
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    pub masquerade: bool,
    pub mtu: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NetworkFile {
    bridge: Option<String>,
    subnets: Vec<SubnetFile>,
    masquerade: Option<bool>,
    mtu: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubnetFile {
    subnet: String,
    gateway: Option<String>,
}

impl Network {
    /// The default network on `subnet` (chosen once per host, see [`choose_default_subnet`]).
    pub fn default_on(subnet: Ipv4Net) -> Network {
        Network {
            name: DEFAULT_NETWORK.to_string(),
            bridge: DEFAULT_BRIDGE.to_string(),
            subnet,
            gateway: first_host(subnet),
            masquerade: true,
            mtu: DEFAULT_MTU,
        }
    }

    /// Parses and validates a network file's content.
    pub fn parse(name: &str, path: &Path, text: &str) -> Result<Network> {
        let bad = |reason: String| Error::NetworkConfig {
            path: path.to_path_buf(),
            reason,
        };
        validate::network_name(name).map_err(&bad)?;
        let file: NetworkFile = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        let [only] = file.subnets.as_slice() else {
            return Err(bad(format!(
                "\"subnets\" must list exactly one IPv4 subnet, it lists {}",
                file.subnets.len()
            )));
        };
        let subnet: Ipv4Net = only.subnet.parse().map_err(|_| {
            bad(format!(
                "subnet {:?} is not an IPv4 CIDR such as 10.90.0.0/24",
                only.subnet
            ))
        })?;
        if subnet.trunc() != subnet {
            return Err(bad(format!(
                "subnet {subnet} has host bits set; write {}",
                subnet.trunc()
            )));
        }
        if subnet.prefix_len() > 30 || subnet.prefix_len() < 8 {
            return Err(bad(format!(
                "subnet {subnet} must have a prefix between /8 and /30"
            )));
        }
        let gateway = match &only.gateway {
            None => first_host(subnet),
            Some(g) => {
                let gateway: Ipv4Addr = g
                    .parse()
                    .map_err(|_| bad(format!("gateway {g:?} is not an IPv4 address")))?;
                if !is_host_address(subnet, gateway) {
                    return Err(bad(format!(
                        "gateway {gateway} is not a host address of {subnet}"
                    )));
                }
                gateway
            }
        };
        let bridge = match file.bridge {
            Some(b) => {
                validate::interface_name(&b).map_err(&bad)?;
                b
            }
            None => default_bridge_name(name),
        };
        let mtu = file.mtu.unwrap_or(DEFAULT_MTU);
        if !(68..=65535).contains(&mtu) {
            return Err(bad(format!("mtu {mtu} must be between 68 and 65535")));
        }
        Ok(Network {
            name: name.to_string(),
            bridge,
            subnet,
            gateway,
            masquerade: file.masquerade.unwrap_or(true),
            mtu,
        })
    }

    /// The prefix length of the subnet, for addresses on the bridge and in containers.
    pub fn prefix_len(&self) -> u8 {
        self.subnet.prefix_len()
    }
}

/// Where user networks live.
#[derive(Debug, Clone)]
pub struct NetworkDirectory {
    dir: PathBuf,
}

impl NetworkDirectory {
    pub fn new(config_dir: &Path) -> NetworkDirectory {
        NetworkDirectory {
            dir: config_dir.join("networks"),
        }
    }

    pub fn path_of(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    /// The names of every user network defined here (files with invalid names are skipped:
    /// they can never be loaded).
    pub fn names(&self) -> Result<Vec<String>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(format!("cannot list {}", self.dir.display()), e)),
        };
        let mut names: Vec<String> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_str()?.strip_suffix(".json")?.to_string();
                validate::network_name(&name).ok().map(|()| name)
            })
            .collect();
        names.sort();
        Ok(names)
    }

    /// Loads a user network; `Ok(None)` when no file defines it.
    pub fn load(&self, name: &str) -> Result<Option<Network>> {
        validate::network_name(name).map_err(|reason| Error::NetworkConfig {
            path: self.dir.clone(),
            reason,
        })?;
        let path = self.path_of(name);
        let text = match read_small(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(Error::NetworkConfig {
                    path,
                    reason: e.to_string(),
                })
            }
        };
        Network::parse(name, &path, &text).map(Some)
    }
}

fn read_small(path: &Path) -> std::io::Result<String> {
    let meta = fs::metadata(path)?;
    if meta.len() > MAX_NETWORK_FILE_BYTES {
        return Err(std::io::Error::other(format!(
            "larger than {MAX_NETWORK_FILE_BYTES} bytes"
        )));
    }
    fs::read_to_string(path)
}

/// `oc-<name>` when it fits in 15 bytes, else `oc-` and a hash of the name (stable, unique).
pub fn default_bridge_name(network: &str) -> String {
    let name = format!("oc-{network}");
    if name.len() <= 15 && validate::interface_name(&name).is_ok() {
        name
    } else {
        format!(
            "oc-{:012x}",
            crate::naming::stable_hash(network.as_bytes()) >> 16
        )
    }
}

pub fn first_host(subnet: Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(subnet.network()) + 1)
}

/// True for addresses inside `subnet` other than its network and broadcast addresses.
pub fn is_host_address(subnet: Ipv4Net, ip: Ipv4Addr) -> bool {
    subnet.contains(&ip) && ip != subnet.network() && ip != subnet.broadcast()
}

/// The candidate pool for the default network, in order of preference (Docker's, then podman's
/// neighbourhood).
fn default_candidates() -> impl Iterator<Item = Ipv4Net> {
    let docker = (17..=31).map(|b| Ipv4Net::new(Ipv4Addr::new(172, b, 0, 0), 16));
    let podman = (88..=127).map(|b| Ipv4Net::new(Ipv4Addr::new(10, b, 0, 0), 16));
    docker.chain(podman).filter_map(|n| n.ok())
}

/// The first candidate /16 that overlaps none of the host's routes (default routes excluded).
pub fn choose_default_subnet(routes: &[Ipv4Net]) -> Option<Ipv4Net> {
    default_candidates().find(|candidate| {
        routes
            .iter()
            .filter(|r| r.prefix_len() > 0)
            .all(|r| !r.contains(candidate) && !candidate.contains(r))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Network> {
        Network::parse("net1", Path::new("/etc/ocinet/networks/net1.json"), text)
    }

    #[test]
    fn minimal_file_gets_defaults() {
        let n = parse(r#"{"subnets":[{"subnet":"10.90.0.0/24"}]}"#).unwrap();
        assert_eq!(n.bridge, "oc-net1");
        assert_eq!(n.gateway, Ipv4Addr::new(10, 90, 0, 1));
        assert!(n.masquerade);
        assert_eq!(n.mtu, 1500);
    }

    #[test]
    fn full_file() {
        let n = parse(
            r#"{"bridge":"ocbr1","subnets":[{"subnet":"10.90.0.0/24","gateway":"10.90.0.254"}],"masquerade":false,"mtu":1400}"#,
        )
        .unwrap();
        assert_eq!(n.bridge, "ocbr1");
        assert_eq!(n.gateway, Ipv4Addr::new(10, 90, 0, 254));
        assert!(!n.masquerade);
        assert_eq!(n.mtu, 1400);
    }

    #[test]
    fn bad_files_are_rejected() {
        for bad in [
            "",
            "{}",
            r#"{"subnets":[]}"#,
            r#"{"subnets":[{"subnet":"10.90.0.0"}]}"#,
            r#"{"subnets":[{"subnet":"10.90.0.5/24"}]}"#,
            r#"{"subnets":[{"subnet":"10.90.0.0/31"}]}"#,
            r#"{"subnets":[{"subnet":"fd00::/64"}]}"#,
            r#"{"subnets":[{"subnet":"10.90.0.0/24","gateway":"10.91.0.1"}]}"#,
            r#"{"subnets":[{"subnet":"10.90.0.0/24","gateway":"10.90.0.255"}]}"#,
            r#"{"subnets":[{"subnet":"10.90.0.0/24"}],"bridge":"much-too-long-name"}"#,
            r#"{"subnets":[{"subnet":"10.90.0.0/24"}],"bridge":"../x"}"#,
            r#"{"subnets":[{"subnet":"10.90.0.0/24"}],"mtu":10}"#,
            r#"{"subnets":[{"subnet":"10.90.0.0/24"}],"unknown":1}"#,
        ] {
            let err = parse(bad).unwrap_err().to_string();
            assert!(err.contains("net1.json"), "{bad}: {err}");
        }
    }

    #[test]
    fn long_network_names_get_hashed_bridge_names() {
        assert_eq!(default_bridge_name("web"), "oc-web");
        let long = default_bridge_name("a-rather-long-network-name");
        assert_eq!(long.len(), 15);
        assert_ne!(long, default_bridge_name("a-rather-long-network-nam2"));
    }

    #[test]
    fn default_subnet_avoids_host_routes() {
        assert_eq!(
            choose_default_subnet(&[]).unwrap(),
            "172.17.0.0/16".parse::<Ipv4Net>().unwrap()
        );
        let routes: Vec<Ipv4Net> = ["0.0.0.0/0", "172.16.0.0/12", "10.88.5.0/24"]
            .iter()
            .map(|r| r.parse().unwrap())
            .collect();
        assert_eq!(
            choose_default_subnet(&routes).unwrap(),
            "10.89.0.0/16".parse::<Ipv4Net>().unwrap()
        );
    }
}
