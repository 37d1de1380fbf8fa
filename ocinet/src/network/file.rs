//! The network file, `<config-dir>/networks/<name>.json`, and the same fields given inline (a
//! CNI configuration): parsed and checked into a [`Network`], defaults filled in, one line
//! saying what is wrong otherwise.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;

use super::*;
use crate::error::{Error, Result};
use crate::validate;

const DEFAULT_BLOCK: u8 = 24;
const DEFAULT_TTL: u32 = 60;
/// VNIs of defaults start here (Docker's overlay does the same), leaving low ones to users.
const DEFAULT_VNI_BASE: u32 = 4096;
pub(super) const MAX_VNI: u32 = (1 << 24) - 1;

/// The keys of a network file: a front end that carries a definition inline (CNI) takes these
/// from its configuration.
pub const FIELDS: &[&str] = &[
    "driver",
    "bridge",
    "subnets",
    "masquerade",
    "mtu",
    "etcd",
    "vni",
    "port",
    "block",
    "ttl",
    "underlay",
    "direct_routing",
    "internal",
    "isolate",
    "icc",
    "dns",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NetworkFile {
    driver: Option<String>,
    bridge: Option<String>,
    subnets: Vec<SubnetFile>,
    masquerade: Option<bool>,
    mtu: Option<u32>,
    etcd: Option<EtcdFile>,
    vni: Option<u32>,
    port: Option<u16>,
    block: Option<u8>,
    ttl: Option<u32>,
    underlay: Option<String>,
    direct_routing: Option<bool>,
    internal: Option<bool>,
    isolate: Option<bool>,
    icc: Option<bool>,
    dns: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EtcdFile {
    endpoints: Vec<String>,
    ca: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubnetFile {
    subnet: String,
    gateway: Option<String>,
}
impl Network {
    /// Parses and validates a network file's content.
    pub fn parse(name: &str, path: &Path, text: &str) -> Result<Network> {
        let file = serde_json::from_str(text).map_err(|e| Error::NetworkConfig {
            path: path.to_path_buf(),
            reason: e.to_string(),
        });
        Network::from_file(name, path, file?)
    }

    /// Parses and validates a definition given inline (a CNI configuration's network fields,
    /// as a network file has them); `origin` names where it came from in errors.
    pub fn from_json(name: &str, origin: &Path, fields: serde_json::Value) -> Result<Network> {
        let file = serde_json::from_value(fields).map_err(|e| Error::NetworkConfig {
            path: origin.to_path_buf(),
            reason: e.to_string(),
        });
        Network::from_file(name, origin, file?)
    }

    fn from_file(name: &str, path: &Path, file: NetworkFile) -> Result<Network> {
        let bad = |reason: String| Error::NetworkConfig {
            path: path.to_path_buf(),
            reason,
        };
        validate::network_name(name).map_err(&bad)?;
        let driver = match file.driver.as_deref() {
            None | Some("bridge") => DriverKind::Bridge,
            Some("overlay") => DriverKind::Overlay,
            Some("routed") => DriverKind::Routed,
            Some(other) => {
                return Err(bad(format!(
                "driver {other:?} is not available in this release; use \"bridge\", \"overlay\" or \"routed\""
            )))
            }
        };
        let subnets = parse_subnets(&file.subnets, driver).map_err(&bad)?;
        let bridge = match file.bridge.clone() {
            Some(_) if driver == DriverKind::Routed => {
                return Err(bad(
                    "a routed network has no bridge: remove \"bridge\"".to_string()
                ))
            }
            None if driver == DriverKind::Routed => String::new(),
            Some(b) => {
                validate::interface_name(&b).map_err(&bad)?;
                b
            }
            None => default_bridge_name(name),
        };
        if let Some(mtu) = file.mtu.filter(|m| !(68..=65535).contains(m)) {
            return Err(bad(format!("mtu {mtu} must be between 68 and 65535")));
        }
        // Containers on other hosts are reached through the host's routing (bridge to VXLAN
        // device), which a bridge port's `isolated` flag does not cover.
        if driver == DriverKind::Overlay && file.icc == Some(false) {
            return Err(bad(
                "\"icc\": false is not available on an overlay network (its containers on other hosts would still reach each other): remove it, or use a bridge or routed network".to_string(),
            ));
        }
        let overlay = match driver {
            DriverKind::Overlay => Some(parse_overlay(name, &file, &subnets).map_err(&bad)?),
            DriverKind::Bridge | DriverKind::Routed => {
                let overlay_only = [
                    ("etcd", file.etcd.is_some()),
                    ("vni", file.vni.is_some()),
                    ("port", file.port.is_some()),
                    ("block", file.block.is_some()),
                    ("ttl", file.ttl.is_some()),
                    ("underlay", file.underlay.is_some()),
                    ("direct_routing", file.direct_routing.is_some()),
                ];
                if let Some((key, _)) = overlay_only.iter().find(|(_, set)| *set) {
                    return Err(bad(format!(
                        "\"{key}\" is an overlay setting: add \"driver\": \"overlay\" or remove it"
                    )));
                }
                None
            }
        };
        let internal = file.internal.unwrap_or(false);
        if internal && file.masquerade == Some(true) {
            return Err(bad(
                "\"internal\": true has no way out to masquerade: remove \"masquerade\""
                    .to_string(),
            ));
        }
        Ok(Network {
            name: name.to_string(),
            driver,
            bridge,
            subnets,
            masquerade: file.masquerade.unwrap_or(!internal),
            mtu: file.mtu.unwrap_or(DEFAULT_MTU),
            internal,
            isolate: file.isolate.unwrap_or(true),
            icc: file.icc.unwrap_or(true),
            dns: file.dns.unwrap_or(name != DEFAULT_NETWORK),
            overlay,
        })
    }
}

/// The overlay settings of a network file, checked; defaults filled in.
fn parse_overlay(
    name: &str,
    file: &NetworkFile,
    subnets: &[Subnet],
) -> std::result::Result<Overlay, String> {
    // `parse_subnets` puts the IPv4 subnet first and refuses an overlay without one.
    let subnet = &subnets[0];
    let etcd = file
        .etcd
        .as_ref()
        .ok_or("an overlay needs \"etcd\": {\"endpoints\": [\"http://ADDRESS:2379\"]}")?;
    if etcd.endpoints.is_empty() {
        return Err("\"etcd.endpoints\" lists no endpoint: give at least one, such as \"http://192.0.2.1:2379\"".to_string());
    }
    for endpoint in &etcd.endpoints {
        validate::etcd_endpoint(endpoint)?;
    }
    if etcd.cert.is_some() != etcd.key.is_some() {
        return Err("\"etcd.cert\" and \"etcd.key\" go together: give both or neither".to_string());
    }
    let vni = file.vni.unwrap_or_else(|| {
        DEFAULT_VNI_BASE
            + (crate::host::naming::stable_hash(name.as_bytes())
                % u64::from(MAX_VNI - DEFAULT_VNI_BASE)) as u32
    });
    if !(1..=MAX_VNI).contains(&vni) {
        return Err(format!("vni {vni} must be between 1 and {MAX_VNI}"));
    }
    let port = file.port.unwrap_or(VXLAN_PORT);
    if port == 0 {
        return Err("port 0 is not a UDP port: leave it out for 4789".to_string());
    }
    let block = file.block.unwrap_or(DEFAULT_BLOCK);
    let prefix = subnet.subnet.prefix_len();
    if block < prefix || block > 30 {
        return Err(format!(
            "block /{block} must be between the subnet's prefix /{prefix} and /30: the subnet {} is smaller than a block",
            subnet.subnet
        ));
    }
    if let Some(v6) = subnets.iter().find(|s| s.subnet.addr().is_ipv6()) {
        let prefix6 = v6.subnet.prefix_len() + (block - prefix);
        if prefix6 > *IPV6_PREFIXES.end() {
            return Err(format!(
                "the IPv6 subnet {} split as the IPv4 subnet {} is into /{block} blocks gives /{prefix6} blocks, longer than /{}: give a larger IPv6 subnet (a /64) or larger blocks",
                v6.subnet,
                subnet.subnet,
                IPV6_PREFIXES.end()
            ));
        }
    }
    let ttl = file.ttl.unwrap_or(DEFAULT_TTL);
    if !(5..=86_400).contains(&ttl) {
        return Err(format!("ttl {ttl} must be between 5 and 86400 seconds"));
    }
    let underlay = match &file.underlay {
        None => None,
        Some(text) => Some(match text.parse::<Ipv4Addr>() {
            Ok(ip) if ip.is_unspecified() || ip.is_multicast() || ip.is_broadcast() => {
                return Err(format!(
                    "underlay {ip} is not a unicast address of this host"
                ))
            }
            Ok(ip) => Underlay::Address(ip),
            Err(_) => {
                validate::interface_name(text).map_err(|_| {
                    format!("underlay {text:?} is neither an IPv4 address nor an interface name")
                })?;
                Underlay::Interface(text.clone())
            }
        }),
    };
    let direct_routing = file.direct_routing.unwrap_or(false);
    // A peer's IPv6 block would need a gateway of its own family on the underlay, which an
    // IPv4 underlay does not give.
    if direct_routing && subnets.len() > 1 {
        return Err(
            "\"direct_routing\" routes IPv4 blocks only: remove the IPv6 subnet or \"direct_routing\"".to_string(),
        );
    }
    Ok(Overlay {
        etcd: Etcd {
            endpoints: etcd.endpoints.clone(),
            ca: etcd.ca.clone(),
            cert: etcd.cert.clone(),
            key: etcd.key.clone(),
        },
        vni,
        port,
        block,
        ttl,
        underlay,
        direct_routing,
        mtu: file.mtu,
    })
}

/// `subnets[]`: one IPv4 subnet, one IPv6 subnet, or one of each (IPv4 first, whatever the
/// file's order: it is the primary). An overlay needs the IPv4 one.
fn parse_subnets(
    entries: &[SubnetFile],
    driver: DriverKind,
) -> std::result::Result<Vec<Subnet>, String> {
    if entries.is_empty() || entries.len() > 2 {
        return Err(format!(
            "\"subnets\" must list one IPv4 subnet, one IPv6 subnet or one of each, it lists {}",
            entries.len()
        ));
    }
    let mut subnets = entries
        .iter()
        .map(parse_subnet)
        .collect::<std::result::Result<Vec<_>, _>>()?;
    subnets.sort_by_key(|s| s.subnet.addr().is_ipv6());
    if let [a, b] = subnets.as_slice() {
        if a.subnet.addr().is_ipv6() == b.subnet.addr().is_ipv6() {
            return Err(format!(
                "subnets {} and {} are of one family: give at most one IPv4 and one IPv6 subnet",
                a.subnet, b.subnet
            ));
        }
    }
    // An overlay's hosts lease IPv4 blocks in etcd; an IPv6 subnet follows them (see
    // [`overlay_block6`]), so it cannot stand alone.
    if driver == DriverKind::Overlay {
        if let [only] = subnets.as_slice() {
            if only.subnet.addr().is_ipv6() {
                return Err(format!(
                    "subnet {} is IPv6 and an overlay network needs an IPv4 subnet too (its hosts lease IPv4 blocks): add one, such as {{\"subnet\": \"10.200.0.0/16\"}}",
                    only.subnet
                ));
            }
        }
    }
    Ok(subnets)
}

/// Prefix lengths an IPv6 bridge subnet may have: a /64 at most (more addresses than that are
/// no use behind one bridge), a /120 at least (256 addresses).
const IPV6_PREFIXES: std::ops::RangeInclusive<u8> = 64..=120;

/// One `subnets[]` entry: a CIDR without host bits and an optional gateway inside it.
fn parse_subnet(entry: &SubnetFile) -> std::result::Result<Subnet, String> {
    let subnet: IpNet = entry.subnet.parse().map_err(|_| {
        format!(
            "subnet {:?} is not a CIDR such as 10.90.0.0/24",
            entry.subnet
        )
    })?;
    if subnet.trunc() != subnet {
        return Err(format!(
            "subnet {subnet} has host bits set; write {}",
            subnet.trunc()
        ));
    }
    match subnet {
        IpNet::V4(net) if net.network().octets()[0] == 0 => {
            return Err(format!(
                "subnet {subnet} is in 0.0.0.0/8, which no host may use; choose another"
            ));
        }
        IpNet::V4(_) if subnet.prefix_len() > 30 || subnet.prefix_len() < 8 => {
            return Err(format!(
                "subnet {subnet} must have a prefix between /8 and /30"
            ));
        }
        IpNet::V6(net) => {
            let first = net.network().segments()[0];
            if first & 0xffc0 == 0xfe80 {
                return Err(format!(
                    "subnet {subnet} is link-local: give a unique local (fd00::/8) or global subnet"
                ));
            }
            if first & 0xff00 == 0xff00 {
                return Err(format!(
                    "subnet {subnet} is multicast: give a unique local (fd00::/8) or global subnet"
                ));
            }
            if net.network().is_loopback()
                || net.network().is_unspecified()
                || net.network().to_ipv4_mapped().is_some()
            {
                return Err(format!(
                    "subnet {subnet} is not a unicast subnet: give a unique local (fd00::/8) or global subnet"
                ));
            }
            if !IPV6_PREFIXES.contains(&net.prefix_len()) {
                return Err(format!(
                    "IPv6 subnet {subnet} must have a prefix between /{} and /{}",
                    IPV6_PREFIXES.start(),
                    IPV6_PREFIXES.end()
                ));
            }
        }
        IpNet::V4(_) => {}
    }
    let gateway = match &entry.gateway {
        None => first_host(subnet),
        Some(g) => {
            let gateway: IpAddr = g
                .parse()
                .map_err(|_| format!("gateway {g:?} is not an IP address"))?;
            if gateway.is_ipv6() != subnet.addr().is_ipv6() || !is_host_address(subnet, gateway) {
                return Err(format!(
                    "gateway {gateway} is not a host address of {subnet}"
                ));
            }
            gateway
        }
    };
    Ok(Subnet { subnet, gateway })
}

/// `oc-<name>` when it fits in 15 bytes, else `oc-` and a hash of the name (stable, unique).
pub(crate) fn default_bridge_name(network: &str) -> String {
    let name = format!("oc-{network}");
    if name.len() <= 15 && validate::interface_name(&name).is_ok() {
        name
    } else {
        format!(
            "oc-{:012x}",
            crate::host::naming::stable_hash(network.as_bytes()) >> 16
        )
    }
}
