//! Annotations → a validated [`NetworkRequest`]. Everything here is user input.

use std::collections::HashMap;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::dns::names::DnsNames;
use crate::error::{Error, Result};
use crate::network::{Network, DEFAULT_NETWORK};
use crate::ports::{self, PortSpec, PORTS_ANNOTATION};
use crate::validate;

pub(crate) const NETWORK_ANNOTATION: &str = "io.ocinet.network";
pub(crate) const IP_ANNOTATION: &str = "io.ocinet.ip";
pub(crate) const IP6_ANNOTATION: &str = "io.ocinet.ip6";
pub(crate) const MAC_ANNOTATION: &str = "io.ocinet.mac";
pub(crate) use crate::dns::names::{ALIASES_ANNOTATION, NAME_ANNOTATION};
/// The longest annotation value read (a long port list is a few hundred bytes).
const MAX_VALUE_BYTES: usize = 16 * 1024;
/// The name of a container's first interface, as Docker names it.
pub(crate) const DEFAULT_INTERFACE: &str = "eth0";

/// Docker's network models.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkMode {
    /// Only `lo`.
    None,
    /// A veth into the named network's bridge on this host (a `bridge` or `overlay` network;
    /// written `<network>` or `bridge:<network>`).
    Bridge { network: String },
    /// The host's network namespace.
    Host,
    /// Another container's network namespace.
    Container { id: String },
    /// Several networks by name (`<a>,<b>`): `eth0` on the first, `eth1` on the second, ...,
    /// the default route via the first; the engine wires each as a `Bridge` in order.
    Networks { networks: Vec<String> },
}

/// The most networks one container joins (`io.ocinet.network=<a>,<b>,...`).
pub(crate) const MAX_NETWORKS: usize = 8;

impl fmt::Display for NetworkMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetworkMode::None => f.write_str("none"),
            NetworkMode::Bridge { network } => write!(f, "bridge:{network}"),
            NetworkMode::Host => f.write_str("host"),
            NetworkMode::Container { id } => write!(f, "container:{id}"),
            NetworkMode::Networks { networks } => f.write_str(&networks.join(",")),
        }
    }
}

impl NetworkMode {
    /// Parses `io.ocinet.network`; absent means Docker's default, the default bridge network.
    pub fn parse(value: Option<&str>) -> Result<NetworkMode> {
        let Some(value) = value else {
            return Ok(NetworkMode::Bridge {
                network: DEFAULT_NETWORK.to_string(),
            });
        };
        let bad = |reason: String| Error::Annotation {
            key: NETWORK_ANNOTATION,
            value: value.to_string(),
            reason,
        };
        if value.contains(',') {
            return parse_list(value).map_err(bad);
        }
        let (kind, arg) = match value.split_once(':') {
            Some((k, a)) => (k, Some(a)),
            None => (value, None),
        };
        match (kind, arg) {
            ("none", None) => Ok(NetworkMode::None),
            ("host", None) => Ok(NetworkMode::Host),
            ("bridge", None) | ("default", None) => Ok(NetworkMode::Bridge {
                network: DEFAULT_NETWORK.to_string(),
            }),
            ("bridge", Some(net)) => {
                validate::network_name(net).map_err(bad)?;
                Ok(NetworkMode::Bridge {
                    network: net.to_string(),
                })
            }
            ("container", Some(id)) => {
                validate::container_id(id).map_err(bad)?;
                Ok(NetworkMode::Container { id: id.to_string() })
            }
            // A network by name, as `docker run --network NAME`.
            (name, None) if validate::network_name(name).is_ok() => Ok(NetworkMode::Bridge {
                network: name.to_string(),
            }),
            _ => Err(bad(
                "use none, bridge, <network>, bridge:<network>, host or container:<id>".to_string(),
            )),
        }
    }
}

/// `<a>,<b>,...`: distinct network names (`bridge` is the default network), at most
/// [`MAX_NETWORKS`], none of `none`, `host`, `container:<id>`.
fn parse_list(value: &str) -> std::result::Result<NetworkMode, String> {
    let mut networks: Vec<String> = Vec::new();
    for item in value.split(',') {
        let name = match NetworkMode::parse(Some(item)) {
            Ok(NetworkMode::Bridge { network }) => network,
            Ok(other) => {
                return Err(format!(
                    "{other} cannot be one of several networks: list network names only"
                ))
            }
            Err(_) => return Err(format!("{item:?} in the list is not a network name")),
        };
        if networks.contains(&name) {
            return Err(format!("network {name} is listed twice"));
        }
        networks.push(name);
    }
    if networks.len() > MAX_NETWORKS {
        return Err(format!(
            "{} networks listed, at most {MAX_NETWORKS} are joined",
            networks.len()
        ));
    }
    Ok(NetworkMode::Networks { networks })
}

/// Everything a front end asks of the network (the hook: from the annotations).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRequest {
    pub mode: NetworkMode,
    pub ports: Vec<PortSpec>,
    pub static_ip: Option<Ipv4Addr>,
    /// `io.ocinet.ip6`: the address on the network's IPv6 subnet.
    pub static_ip6: Option<Ipv6Addr>,
    pub mac: Option<[u8; 6]>,
    /// The interface's name inside the container (CNI names it: `CNI_IFNAME`), validated by
    /// the front end.
    pub interface: String,
    /// The network's definition when the front end carries it (a CNI configuration), parsed
    /// by `Network::from_json`; `None`: by name, from `<config-dir>/networks/<name>.json` or
    /// the built-in default. Its name is the mode's.
    pub definition: Option<Network>,
    /// The container's DNS name and aliases on networks with `dns` (`io.ocinet.name`,
    /// `io.ocinet.aliases`; the hook's default name is the container id).
    pub names: DnsNames,
}

impl NetworkRequest {
    pub fn from_annotations(annotations: &HashMap<String, String>) -> Result<NetworkRequest> {
        for key in [
            NETWORK_ANNOTATION,
            PORTS_ANNOTATION,
            IP_ANNOTATION,
            IP6_ANNOTATION,
            MAC_ANNOTATION,
            NAME_ANNOTATION,
            ALIASES_ANNOTATION,
        ] {
            if let Some(value) = annotations.get(key).filter(|v| v.len() > MAX_VALUE_BYTES) {
                return Err(Error::Annotation {
                    key,
                    value: format!("{}...", value.chars().take(32).collect::<String>()),
                    reason: format!(
                        "{} bytes, more than the {MAX_VALUE_BYTES} accepted",
                        value.len()
                    ),
                });
            }
        }
        let get = |key: &str| annotations.get(key).map(String::as_str);
        let mode = NetworkMode::parse(get(NETWORK_ANNOTATION))?;
        let static_ip = get(IP_ANNOTATION).map(parse_ip).transpose()?;
        let static_ip6 = get(IP6_ANNOTATION).map(parse_ip6).transpose()?;
        let mac = get(MAC_ANNOTATION).map(parse_mac).transpose()?;
        let names = DnsNames::parse(get(NAME_ANNOTATION), get(ALIASES_ANNOTATION))?;
        let ports = match get(PORTS_ANNOTATION) {
            None => Vec::new(),
            Some(value) => ports::parse_list(value).map_err(|reason| Error::Annotation {
                key: PORTS_ANNOTATION,
                value: value.to_string(),
                reason,
            })?,
        };
        if !matches!(
            mode,
            NetworkMode::Bridge { .. } | NetworkMode::Networks { .. }
        ) {
            for (key, present) in [
                (IP_ANNOTATION, static_ip.is_some()),
                (IP6_ANNOTATION, static_ip6.is_some()),
                (MAC_ANNOTATION, mac.is_some()),
                (PORTS_ANNOTATION, !ports.is_empty()),
            ] {
                if present {
                    return Err(Error::Annotation {
                        key,
                        value: get(key).unwrap_or_default().to_string(),
                        reason: format!("only bridge networks take it, the mode is {mode}"),
                    });
                }
            }
        }
        Ok(NetworkRequest {
            mode,
            ports,
            static_ip,
            static_ip6,
            mac,
            interface: DEFAULT_INTERFACE.to_string(),
            definition: None,
            names,
        })
    }
}

impl NetworkRequest {
    /// One request per network joined, in order: several networks give `eth0`, `eth1`, ...;
    /// the ports, static address and MAC go with the first (which has the default route).
    pub(crate) fn per_network(&self) -> Vec<NetworkRequest> {
        let NetworkMode::Networks { networks } = &self.mode else {
            return vec![self.clone()];
        };
        networks
            .iter()
            .enumerate()
            .map(|(i, network)| NetworkRequest {
                mode: NetworkMode::Bridge {
                    network: network.clone(),
                },
                ports: if i == 0 {
                    self.ports.clone()
                } else {
                    Vec::new()
                },
                static_ip: self.static_ip.filter(|_| i == 0),
                static_ip6: self.static_ip6.filter(|_| i == 0),
                mac: self.mac.filter(|_| i == 0),
                interface: match i {
                    0 => self.interface.clone(),
                    _ => format!("eth{i}"),
                },
                definition: None,
                names: self.names.clone(),
            })
            .collect()
    }
}

fn parse_ip(value: &str) -> Result<Ipv4Addr> {
    value.parse().map_err(|_| Error::Annotation {
        key: IP_ANNOTATION,
        value: value.to_string(),
        reason: "not an IPv4 address such as 10.88.0.10".to_string(),
    })
}

fn parse_ip6(value: &str) -> Result<Ipv6Addr> {
    value.parse().map_err(|_| Error::Annotation {
        key: IP6_ANNOTATION,
        value: value.to_string(),
        reason: "not an IPv6 address such as fd00:90::10".to_string(),
    })
}

fn parse_mac(value: &str) -> Result<[u8; 6]> {
    let bad = |reason: &str| Error::Annotation {
        key: MAC_ANNOTATION,
        value: value.to_string(),
        reason: reason.to_string(),
    };
    let mut mac = [0u8; 6];
    let mut parts = value.split(':');
    for byte in mac.iter_mut() {
        let part = parts
            .next()
            .filter(|p| p.len() == 2)
            .ok_or_else(|| bad("write six hex pairs such as 02:42:ac:11:00:02"))?;
        *byte = u8::from_str_radix(part, 16)
            .map_err(|_| bad("write six hex pairs such as 02:42:ac:11:00:02"))?;
    }
    if parts.next().is_some() {
        return Err(bad("write six hex pairs such as 02:42:ac:11:00:02"));
    }
    if mac[0] & 1 == 1 || mac == [0; 6] {
        return Err(bad("must be a unicast, non-zero address"));
    }
    Ok(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn several_networks() {
        let list = |v: &str| NetworkMode::parse(Some(v));
        assert_eq!(
            list("a,bridge:b,bridge").unwrap(),
            NetworkMode::Networks {
                networks: vec!["a".into(), "b".into(), "ocinet".into()]
            }
        );
        for (bad, why) in [
            ("a,a", "network a is listed twice"),
            ("a,bridge:a", "network a is listed twice"),
            ("a,none", "none cannot be one of several networks"),
            ("host,a", "host cannot be one of several networks"),
            (
                "a,container:x",
                "container:x cannot be one of several networks",
            ),
            ("a,", "\"\" in the list is not a network name"),
            ("n1,n2,n3,n4,n5,n6,n7,n8,n9", "9 networks listed, at most 8"),
        ] {
            let err = list(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
            assert_eq!(err.lines().count(), 1);
        }
        let req = NetworkRequest::from_annotations(&annotations(&[
            ("io.ocinet.network", "a,b"),
            ("io.ocinet.ports", "8080:80"),
            ("io.ocinet.ip", "10.1.0.5"),
        ]))
        .unwrap();
        let parts = req.per_network();
        assert_eq!(parts.len(), 2);
        assert_eq!(
            (parts[0].interface.as_str(), parts[1].interface.as_str()),
            ("eth0", "eth1")
        );
        assert_eq!(parts[0].ports.len(), 1);
        assert!(parts[1].ports.is_empty() && parts[1].static_ip.is_none());
        assert_eq!(
            parts[1].mode,
            NetworkMode::Bridge {
                network: "b".into()
            }
        );
    }

    #[test]
    fn modes() {
        let bridge = |n: &str| NetworkMode::Bridge {
            network: n.to_string(),
        };
        assert_eq!(NetworkMode::parse(None).unwrap(), bridge("ocinet"));
        assert_eq!(
            NetworkMode::parse(Some("bridge")).unwrap(),
            bridge("ocinet")
        );
        assert_eq!(
            NetworkMode::parse(Some("bridge:net1")).unwrap(),
            bridge("net1")
        );
        assert_eq!(NetworkMode::parse(Some("none")).unwrap(), NetworkMode::None);
        assert_eq!(NetworkMode::parse(Some("host")).unwrap(), NetworkMode::Host);
        assert_eq!(
            NetworkMode::parse(Some("container:abc")).unwrap(),
            NetworkMode::Container { id: "abc".into() }
        );
        assert_eq!(NetworkMode::parse(Some("ov1")).unwrap(), bridge("ov1"));
        for bad in [
            "",
            "-bridged",
            "none:x",
            "host:1",
            "bridge:",
            "bridge:../etc",
            "container:",
            "container:../1",
            "container:/proc/1/ns/net",
            "mac vlan",
            "../x",
        ] {
            let err = NetworkMode::parse(Some(bad)).unwrap_err().to_string();
            assert!(err.contains("io.ocinet.network"), "{bad}: {err}");
        }
    }

    #[test]
    fn request_with_static_ip_and_mac() {
        let req = NetworkRequest::from_annotations(&annotations(&[
            ("io.ocinet.network", "bridge:n"),
            ("io.ocinet.ip", "10.90.0.7"),
            ("io.ocinet.ip6", "fd00:90::7"),
            ("io.ocinet.mac", "02:42:AC:11:00:02"),
        ]))
        .unwrap();
        assert_eq!(req.static_ip, Some(Ipv4Addr::new(10, 90, 0, 7)));
        assert_eq!(req.static_ip6, Some("fd00:90::7".parse().unwrap()));
        assert_eq!(req.mac, Some([2, 0x42, 0xac, 0x11, 0, 2]));
    }

    #[test]
    fn request_rejects_bad_values() {
        for pairs in [
            &[("io.ocinet.ip", "10.0.0.300")][..],
            &[("io.ocinet.ip", "::1")],
            &[("io.ocinet.ip6", "10.0.0.2")],
            &[("io.ocinet.ip6", "fd00::1/64")],
            &[("io.ocinet.network", "host"), ("io.ocinet.ip6", "fd00::2")],
            &[("io.ocinet.mac", "01:00:5e:00:00:01")],
            &[("io.ocinet.mac", "00:00:00:00:00:00")],
            &[("io.ocinet.mac", "02:42:ac:11:00")],
            &[("io.ocinet.mac", "02:42:ac:11:00:02:03")],
            &[("io.ocinet.mac", "zz:42:ac:11:00:02")],
            &[("io.ocinet.network", "none"), ("io.ocinet.ip", "10.0.0.2")],
            &[
                ("io.ocinet.network", "host"),
                ("io.ocinet.mac", "02:00:00:00:00:01"),
            ],
        ] {
            assert!(
                NetworkRequest::from_annotations(&annotations(pairs)).is_err(),
                "{pairs:?}"
            );
        }
    }
}
