//! Network definitions: the built-in default network and user files in
//! `<config-dir>/networks/<name>.json`.

use std::fs;
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::host::store::{self, StateRoot};
use crate::kernel::firewall::{FilterDevice, NetworkFilter};
use crate::validate;

pub const DEFAULT_NETWORK: &str = "ocinet";
pub const DEFAULT_BRIDGE: &str = "ocinet0";
pub const DEFAULT_MTU: u32 = 1500;
/// Network files are a few hundred bytes; anything far larger is a mistake or an attack.
const MAX_NETWORK_FILE_BYTES: u64 = 64 * 1024;
/// Where the default network's subnet is kept once chosen, in the state root.
const DEFAULT_NETWORK_FILE: &str = "default-network.json";

/// The driver that wires containers to a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DriverKind {
    /// A veth pair into a Linux bridge on this host.
    Bridge,
    /// A bridge on each host holding that host's block of the subnet, joined to the other hosts
    /// by VXLAN; cluster state in etcd.
    Overlay,
    /// No bridge: each container's veth is a point-to-point link, the host routes a /32 to it
    /// and answers for the gateway.
    Routed,
}

/// One subnet of a network and its gateway, of either family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Subnet {
    pub subnet: IpNet,
    pub gateway: IpAddr,
}

/// A network as the engine uses it: its subnets behind one Linux bridge (or, routed, behind the
/// host's routes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Network {
    pub name: String,
    pub driver: DriverKind,
    /// Empty for a routed network.
    pub bridge: String,
    /// One IPv4 subnet for now (the IPv6 issue adds a second family).
    pub subnets: Vec<Subnet>,
    pub masquerade: bool,
    /// The links' MTU. For an overlay, what its agent computed (the file's `mtu`, else the
    /// underlay's minus the VXLAN overhead) replaces it at setup.
    pub mtu: u32,
    /// No way out: no default route, no masquerade, no published ports, and ocinet's forward
    /// chain drops what would leave the bridge for anywhere else.
    pub internal: bool,
    /// Traffic between this network and any other ocinet network is dropped (both ways) unless
    /// it is to a published port through the host's addresses.
    pub isolate: bool,
    /// Containers of the network reach each other; `false` isolates its bridge ports from one
    /// another (the host, the gateway and published ports stay reachable).
    pub icc: bool,
    /// Containers' names resolve on this network (`ocinet-resolver` on its gateway). Default
    /// true except for the built-in default network (as Docker's default bridge).
    pub dns: bool,
    /// The overlay's settings (`driver: overlay` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overlay: Option<Overlay>,
}

/// An overlay network's settings, the same file on every host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Overlay {
    pub etcd: Etcd,
    /// The VXLAN network identifier (24 bits).
    pub vni: u32,
    /// The UDP port of the tunnels.
    pub port: u16,
    /// The prefix length of each host's block of the subnet.
    pub block: u8,
    /// Seconds a host that died keeps its block.
    pub ttl: u32,
    /// This host's underlay address or interface; `None`: the address it reaches etcd from.
    pub underlay: Option<Underlay>,
    /// The MTU the file asks for; `None`: the underlay's minus the VXLAN overhead.
    pub mtu: Option<u32>,
}

/// How to reach the cluster's etcd.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Etcd {
    pub endpoints: Vec<String>,
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Underlay {
    Address(Ipv4Addr),
    Interface(String),
}

/// The VXLAN port IANA assigned (the kernel's own default is 8472: always set it).
pub const VXLAN_PORT: u16 = 4789;
/// Bytes VXLAN adds to each packet over IPv4: outer IP, UDP, VXLAN and inner Ethernet headers.
pub const VXLAN_OVERHEAD: u32 = 50;
const DEFAULT_BLOCK: u8 = 24;
const DEFAULT_TTL: u32 = 60;
/// VNIs of defaults start here (Docker's overlay does the same), leaving low ones to users.
const DEFAULT_VNI_BASE: u32 = 4096;
const MAX_VNI: u32 = (1 << 24) - 1;

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
    /// The default network on `subnet` (chosen once per host, see [`choose_default_subnet`]).
    pub fn default_on(subnet: Ipv4Net) -> Network {
        Network {
            name: DEFAULT_NETWORK.to_string(),
            driver: DriverKind::Bridge,
            bridge: DEFAULT_BRIDGE.to_string(),
            subnets: vec![Subnet {
                subnet: IpNet::V4(subnet),
                gateway: first_host(IpNet::V4(subnet)),
            }],
            masquerade: true,
            mtu: DEFAULT_MTU,
            internal: false,
            isolate: true,
            icc: true,
            dns: false,
            overlay: None,
        }
    }

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

    /// How the forward chain knows this network's traffic: by its bridge's name, or (routed: no
    /// bridge) by the device group of its host ends.
    pub fn filter(&self) -> NetworkFilter {
        let device = match self.driver {
            DriverKind::Routed => FilterDevice::Group(self.device_group()),
            DriverKind::Bridge | DriverKind::Overlay => FilterDevice::Bridge(self.bridge.clone()),
        };
        NetworkFilter {
            device,
            tunnel: self.tunnel(),
            isolate: self.isolate,
            internal: self.internal,
            icc: self.icc,
        }
    }

    /// The first subnet: the IPv4 one when there is one (an overlay's and a routed network's
    /// only one).
    pub fn primary(&self) -> &Subnet {
        // `parse` and `default_on` never make a network without one.
        &self.subnets[0]
    }

    /// The IPv6 subnet, if the network has one.
    pub fn ipv6_subnet(&self) -> Option<&Subnet> {
        self.subnets.iter().find(|s| s.subnet.addr().is_ipv6())
    }

    /// The device group of a routed network's host ends, which ocinet's forward chain tells
    /// the network by (it has no bridge to name): its subnet's network address, unique on the
    /// host because networks do not overlap (`check_no_overlap`), never 0 (`parse_subnet`
    /// refuses 0.0.0.0/8), and stable across setups with no state to keep.
    pub fn device_group(&self) -> u32 {
        device_group(self.primary().subnet)
    }

    /// An overlay's VXLAN device on this host (its bridge's way to the other hosts' blocks);
    /// `None` for other drivers.
    pub fn tunnel(&self) -> Option<String> {
        self.overlay.as_ref().map(|o| vxlan_name(o.vni))
    }

    /// An overlay's IPv6 block of the host holding IPv4 block `block` ([`overlay_block6`]);
    /// `None` without an IPv6 subnet.
    pub fn overlay_block6(&self, block: Ipv4Net) -> Option<Ipv6Net> {
        match (self.primary().subnet, self.ipv6_subnet()?.subnet) {
            (IpNet::V4(subnet4), IpNet::V6(subnet6)) => overlay_block6(subnet4, subnet6, block),
            _ => None,
        }
    }

    /// The IPv4 subnets (to masquerade, and for the bridge's fixed MAC).
    pub fn ipv4_subnets(&self) -> impl Iterator<Item = Ipv4Net> + '_ {
        self.subnets.iter().filter_map(|s| match s.subnet {
            IpNet::V4(net) => Some(net),
            IpNet::V6(_) => None,
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

/// The VXLAN device of a VNI: one per overlay network on a host.
pub fn vxlan_name(vni: u32) -> String {
    format!("ocx{vni}")
}

/// The IPv6 block of an overlay host whose IPv4 block is `block4` of `subnet4`: `subnet6` split
/// into as many blocks as `subnet4` is, the one of the same index. Derived, not leased: etcd
/// holds the IPv4 blocks only, and every host computes every peer's IPv6 block alike. `None`
/// when `block4` is not in `subnet4` or the IPv6 block would be longer than a /128
/// (`parse_overlay` refuses files whose blocks pass /120).
pub fn overlay_block6(subnet4: Ipv4Net, subnet6: Ipv6Net, block4: Ipv4Net) -> Option<Ipv6Net> {
    if !subnet4.contains(&block4) {
        return None;
    }
    let split = block4.prefix_len() - subnet4.prefix_len();
    let prefix6 = subnet6
        .prefix_len()
        .checked_add(split)
        .filter(|p| *p <= 128)?;
    let index = (u32::from(block4.network()) - u32::from(subnet4.network()))
        .checked_shr(32 - u32::from(block4.prefix_len()))
        .unwrap_or(0);
    let offset = u128::from(index)
        .checked_shl(128 - u32::from(prefix6))
        .unwrap_or(0);
    Ipv6Net::new(
        Ipv6Addr::from(u128::from(subnet6.network()) | offset),
        prefix6,
    )
    .ok()
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

/// See [`Network::device_group`]. An IPv6 subnet folds its /64 prefix into 32 bits.
pub fn device_group(subnet: IpNet) -> u32 {
    match subnet {
        IpNet::V4(net) => u32::from(net.network()),
        IpNet::V6(net) => {
            let prefix = (u128::from(net.network()) >> 64) as u64;
            ((prefix >> 32) as u32 ^ prefix as u32).max(1)
        }
    }
}

/// The subnet of the default network, chosen once per state root and kept.
#[derive(Serialize, Deserialize)]
struct DefaultNetworkFile {
    subnet: Ipv4Net,
}

/// The default network, if its subnet has been chosen (at the first setup on it in this root).
pub fn chosen_default_network(root: &StateRoot) -> Result<Option<Network>> {
    let path = root.path().join(DEFAULT_NETWORK_FILE);
    Ok(store::read_json::<DefaultNetworkFile>(&path)?.map(|f| Network::default_on(f.subnet)))
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

    /// A network known by name without changing anything: a user file, else the default
    /// network once its subnet is chosen (for listing, reload and teardown's masquerade).
    pub fn known(&self, root: &StateRoot, name: &str) -> Result<Option<Network>> {
        match self.load(name)? {
            Some(network) => Ok(Some(network)),
            None if name == DEFAULT_NETWORK => chosen_default_network(root),
            None => Ok(None),
        }
    }

    /// Fails unless an inline definition (a CNI configuration's) can stand for its name here:
    /// not the built-in default (its subnet is chosen per boot), the same as a file of the same
    /// name (containers of both share its leases and bridge), and an overlay only with its file
    /// (its agent reads it there).
    pub fn check_inline(&self, network: &Network) -> Result<()> {
        let path = self.path_of(&network.name);
        let refuse = |reason: String| {
            Err(Error::NetworkConfig {
                path: path.clone(),
                reason,
            })
        };
        if network.name == DEFAULT_NETWORK {
            return refuse(format!(
                "{DEFAULT_NETWORK} is the built-in default network: give no fields for it, or another name"
            ));
        }
        match self.load(&network.name)? {
            Some(file) if file != *network => refuse(format!(
                "network {} is defined here differently from the inline definition: make them the same, or give one another name",
                network.name
            )),
            None if network.driver == DriverKind::Overlay => refuse(format!(
                "overlay network {} must be defined in this file (its agent reads it there)",
                network.name
            )),
            _ => Ok(()),
        }
    }

    /// Fails when a subnet of `network` overlaps one of another network defined here (or of
    /// the default network, once chosen): their containers' addresses would collide and their
    /// routes shadow each other.
    pub fn check_no_overlap(&self, root: &StateRoot, network: &Network) -> Result<()> {
        let mut others: Vec<Network> = Vec::new();
        for name in self.names()?.into_iter().filter(|n| *n != network.name) {
            // A broken file of another network is that network's problem, not this one's.
            if let Ok(Some(other)) = self.load(&name) {
                others.push(other);
            }
        }
        if network.name != DEFAULT_NETWORK && !others.iter().any(|o| o.name == DEFAULT_NETWORK) {
            others.extend(chosen_default_network(root)?);
        }
        for other in &others {
            for mine in &network.subnets {
                if let Some(theirs) = other
                    .subnets
                    .iter()
                    .find(|s| s.subnet.contains(&mine.subnet) || mine.subnet.contains(&s.subnet))
                {
                    return Err(Error::NetworkConfig {
                        path: self.path_of(&network.name),
                        reason: format!(
                            "subnet {} overlaps network {} ({}): give each network a subnet of its own",
                            mine.subnet, other.name, theirs.subnet
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    /// The network a setup joins: a user definition wins; the default network is built in,
    /// its subnet chosen at its first use from the host's routes (`host_routes`, asked only
    /// then); anything else is unknown.
    pub fn resolve(
        &self,
        root: &StateRoot,
        name: &str,
        host_routes: &mut dyn FnMut() -> Result<Vec<Ipv4Net>>,
    ) -> Result<Network> {
        if let Some(network) = self.known(root, name)? {
            return Ok(network);
        }
        if name != DEFAULT_NETWORK {
            return Err(Error::UnknownNetwork {
                name: name.to_string(),
                path: self.path_of(name),
            });
        }
        let _lock = store::lock(&root.path().join("lock"))?;
        if let Some(network) = chosen_default_network(root)? {
            return Ok(network);
        }
        let subnet = choose_default_subnet(&host_routes()?).ok_or_else(|| {
            Error::Namespace(format!(
                "every candidate subnet for the default network overlaps a host route: define {} with a free subnet",
                self.path_of(DEFAULT_NETWORK).display()
            ))
        })?;
        store::write_json(
            &root.path().join(DEFAULT_NETWORK_FILE),
            &DefaultNetworkFile { subnet },
        )?;
        Ok(Network::default_on(subnet))
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
            crate::host::naming::stable_hash(network.as_bytes()) >> 16
        )
    }
}

/// The first host address of `subnet` (the default gateway).
pub fn first_host(subnet: IpNet) -> IpAddr {
    match subnet {
        IpNet::V4(net) => IpAddr::V4(Ipv4Addr::from(u32::from(net.network()) + 1)),
        IpNet::V6(net) => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(net.network()) + 1)),
    }
}

/// True for addresses inside `subnet` other than its network address (and, for IPv4, its
/// broadcast address).
pub fn is_host_address(subnet: IpNet, ip: IpAddr) -> bool {
    let broadcast = matches!(subnet, IpNet::V4(_)) && ip == subnet.broadcast();
    subnet.contains(&ip) && ip != subnet.network() && !broadcast
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
        assert_eq!(n.driver, DriverKind::Bridge);
        assert_eq!(n.primary().gateway, IpAddr::V4(Ipv4Addr::new(10, 90, 0, 1)));
        assert!(n.masquerade);
        assert_eq!(n.mtu, 1500);
        assert!(!n.internal && n.isolate && n.icc);
    }

    #[test]
    fn filter_options() {
        let n = parse(
            r#"{"subnets":[{"subnet":"10.90.0.0/24"}],"internal":true,"isolate":false,"icc":false}"#,
        )
        .unwrap();
        assert!(n.internal && !n.isolate && !n.icc);
        // Nothing leaves an internal network: nothing to masquerade.
        assert!(!n.masquerade);
        let err =
            parse(r#"{"subnets":[{"subnet":"10.90.0.0/24"}],"internal":true,"masquerade":true}"#)
                .unwrap_err()
                .to_string();
        assert!(err.contains("no way out"), "{err}");
    }

    #[test]
    fn full_file() {
        let n = parse(
            r#"{"bridge":"ocbr1","subnets":[{"subnet":"10.90.0.0/24","gateway":"10.90.0.254"}],"masquerade":false,"mtu":1400}"#,
        )
        .unwrap();
        assert_eq!(n.bridge, "ocbr1");
        assert_eq!(
            n.primary().gateway,
            IpAddr::V4(Ipv4Addr::new(10, 90, 0, 254))
        );
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
            r#"{"subnets":[{"subnet":"fd00::/63"}]}"#,
            r#"{"subnets":[{"subnet":"10.90.0.0/24","gateway":"10.91.0.1"}]}"#,
            r#"{"subnets":[{"subnet":"10.90.0.0/24","gateway":"10.90.0.255"}]}"#,
            r#"{"subnets":[{"subnet":"10.90.0.0/24"}],"bridge":"much-too-long-name"}"#,
            r#"{"subnets":[{"subnet":"10.90.0.0/24"}],"bridge":"../x"}"#,
            r#"{"subnets":[{"subnet":"10.90.0.0/24"}],"mtu":10}"#,
            r#"{"subnets":[{"subnet":"10.90.0.0/24"}],"unknown":1}"#,
            r#"{"subnets":[{"subnet":"10.90.0.0/24"}],"driver":"macvlan"}"#,
            r#"{"subnets":[{"subnet":"10.90.0.0/24"},{"subnet":"10.91.0.0/24"}]}"#,
        ] {
            let err = parse(bad).unwrap_err().to_string();
            assert!(err.contains("net1.json"), "{bad}: {err}");
        }
    }

    #[test]
    fn dual_stack_and_ipv6_only_files() {
        let n = parse(
            r#"{"subnets":[{"subnet":"fd00:90::/64"},{"subnet":"10.90.0.0/24","gateway":"10.90.0.254"}]}"#,
        )
        .unwrap();
        // IPv4 first, whatever the file's order; the IPv6 gateway defaults to the first address.
        assert_eq!(n.primary().subnet, "10.90.0.0/24".parse::<IpNet>().unwrap());
        let v6 = n.ipv6_subnet().unwrap();
        assert_eq!(v6.gateway, "fd00:90::1".parse::<IpAddr>().unwrap());
        let only =
            parse(r#"{"subnets":[{"subnet":"fd00:91::/120","gateway":"fd00:91::fe"}]}"#).unwrap();
        assert_eq!(only.subnets.len(), 1);
        assert_eq!(
            only.primary().gateway,
            "fd00:91::fe".parse::<IpAddr>().unwrap()
        );
        for (subnets, says) in [
            (r#"{"subnet":"fd00::/63"}"#, "between /64 and /120"),
            (r#"{"subnet":"fd00::/121"}"#, "between /64 and /120"),
            (r#"{"subnet":"fe80::/64"}"#, "link-local"),
            (r#"{"subnet":"ff02::/64"}"#, "multicast"),
            (r#"{"subnet":"::/64"}"#, "not a unicast"),
            (r#"{"subnet":"::ffff:10.0.0.0/120"}"#, "not a unicast"),
            (
                r#"{"subnet":"fd00::/64","gateway":"fd01::1"}"#,
                "not a host address",
            ),
            (
                r#"{"subnet":"fd00::/64","gateway":"10.0.0.1"}"#,
                "not a host address",
            ),
            (
                r#"{"subnet":"fd00::/64"},{"subnet":"fd01::/64"}"#,
                "of one family",
            ),
            (
                r#"{"subnet":"10.1.0.0/24"},{"subnet":"10.2.0.0/24"}"#,
                "of one family",
            ),
            (
                r#"{"subnet":"10.1.0.0/24"},{"subnet":"fd00::/64"},{"subnet":"fd01::/64"}"#,
                "it lists 3",
            ),
        ] {
            let text = format!(r#"{{"subnets":[{subnets}]}}"#);
            let err = parse(&text).unwrap_err().to_string();
            assert!(
                err.contains(says) && err.contains("net1.json"),
                "{text}: {err}"
            );
            assert_eq!(err.lines().count(), 1, "{err}");
        }
        let routed = parse(
            r#"{"driver":"routed","subnets":[{"subnet":"10.1.0.0/24"},{"subnet":"fd00::/64"}]}"#,
        )
        .unwrap();
        assert_eq!(routed.subnets.len(), 2);
    }

    fn overlay_on(subnets: &str, extra: &str) -> Result<Network> {
        parse(&format!(
            r#"{{"driver":"overlay","subnets":[{subnets}],"etcd":{{"endpoints":["http://192.0.2.1:2379"]}}{extra}}}"#
        ))
    }

    #[test]
    fn a_dual_stack_overlay_is_taken_ipv4_first() {
        let n = overlay_on(
            r#"{"subnet":"fd00:200::/64"},{"subnet":"10.200.0.0/16"}"#,
            "",
        )
        .unwrap();
        assert_eq!(
            n.primary().subnet,
            "10.200.0.0/16".parse::<IpNet>().unwrap()
        );
        assert_eq!(
            n.ipv6_subnet().map(|s| s.subnet),
            Some("fd00:200::/64".parse().unwrap())
        );
        // /16 into /24 blocks: 8 bits, so the /64 into /72 blocks, of the same index.
        let block6 = |b: &str| n.overlay_block6(b.parse().unwrap()).map(|b| b.to_string());
        assert_eq!(block6("10.200.0.0/24").as_deref(), Some("fd00:200::/72"));
        assert_eq!(
            block6("10.200.3.0/24").as_deref(),
            Some("fd00:200:0:0:300::/72")
        );
        assert_eq!(
            block6("10.200.255.0/24").as_deref(),
            Some("fd00:200:0:0:ff00::/72")
        );
        assert_eq!(block6("10.201.0.0/24"), None, "not of the subnet");
    }

    #[test]
    fn an_ipv6_only_too_finely_split_or_icc_off_overlay_is_refused_in_one_line() {
        for (subnets, extra, says) in [
            (
                r#"{"subnet":"fd00:200::/64"}"#,
                "",
                "subnet fd00:200::/64 is IPv6 and an overlay network needs an IPv4 subnet too",
            ),
            (
                r#"{"subnet":"10.0.0.0/8"},{"subnet":"fd00:200::/104"}"#,
                r#","block":30"#,
                "the IPv6 subnet fd00:200::/104 split as the IPv4 subnet 10.0.0.0/8 is into /30 blocks gives /126 blocks, longer than /120",
            ),
            (
                r#"{"subnet":"10.0.0.0/16"}"#,
                r#","icc":false"#,
                "\"icc\": false is not available on an overlay network",
            ),
        ] {
            let err = overlay_on(subnets, extra).unwrap_err().to_string();
            assert!(err.contains(says), "{subnets}: {err}");
            assert_eq!(err.lines().count(), 1, "{err}");
        }
        // A /120 block is the longest an IPv6 bridge subnet may be: taken.
        overlay_on(
            r#"{"subnet":"10.0.0.0/8"},{"subnet":"fd00:200::/112"}"#,
            r#","block":16"#,
        )
        .unwrap();
    }

    #[test]
    fn routed_file_has_no_bridge_and_no_overlay_settings() {
        let n = parse(r#"{"driver":"routed","subnets":[{"subnet":"10.90.0.0/24"}],"mtu":1400}"#)
            .unwrap();
        assert_eq!(n.driver, DriverKind::Routed);
        assert_eq!(n.bridge, "");
        assert_eq!(n.primary().gateway, IpAddr::V4(Ipv4Addr::new(10, 90, 0, 1)));
        assert_eq!((n.mtu, n.masquerade), (1400, true));
        for (bad, says) in [
            (r#","bridge":"ocr0""#, "no bridge"),
            (r#","vni":42"#, "overlay setting"),
        ] {
            let text =
                format!(r#"{{"driver":"routed","subnets":[{{"subnet":"10.90.0.0/24"}}]{bad}}}"#);
            let err = parse(&text).unwrap_err().to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
        let err = parse(r#"{"driver":"ipvlan","subnets":[{"subnet":"10.90.0.0/24"}]}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"routed\""), "{err}");
    }

    #[test]
    fn a_routed_networks_device_group_is_its_subnet_and_never_zero() {
        let group = |subnet: &str| {
            parse(&format!(
                r#"{{"driver":"routed","subnets":[{{"subnet":"{subnet}"}}]}}"#
            ))
            .map(|n| n.device_group())
        };
        assert_eq!(group("10.90.0.0/24").unwrap(), 0x0a5a_0000);
        // Networks that do not overlap have different network addresses, so different groups.
        assert_ne!(
            group("10.90.0.0/24").unwrap(),
            group("10.90.1.0/24").unwrap()
        );
        let err = group("0.0.0.0/8").unwrap_err().to_string();
        assert!(err.contains("0.0.0.0/8"), "{err}");
    }

    fn overlay(extra: &str) -> Result<Network> {
        parse(&format!(
            r#"{{"driver":"overlay","subnets":[{{"subnet":"10.200.0.0/16"}}],"etcd":{{"endpoints":["http://192.0.2.1:2379"]}}{extra}}}"#
        ))
    }

    #[test]
    fn overlay_file_gets_defaults() {
        let n = overlay("").unwrap();
        assert_eq!(n.driver, DriverKind::Overlay);
        let o = n.overlay.unwrap();
        assert_eq!(
            (o.port, o.block, o.ttl, o.mtu, o.underlay),
            (4789, 24, 60, None, None)
        );
        assert!((4096..=MAX_VNI).contains(&o.vni));
        // The same name gives the same VNI on every host.
        assert_eq!(overlay("").unwrap().overlay.unwrap().vni, o.vni);
        let full = overlay(
            r#","vni":4200,"port":8472,"block":26,"ttl":30,"underlay":"192.0.2.11","mtu":1400,"masquerade":false"#,
        )
        .unwrap();
        let o = full.overlay.unwrap();
        assert_eq!(
            (o.vni, o.port, o.block, o.ttl, o.mtu),
            (4200, 8472, 26, 30, Some(1400))
        );
        assert_eq!(
            o.underlay,
            Some(Underlay::Address(Ipv4Addr::new(192, 0, 2, 11)))
        );
        assert!(!full.masquerade);
        let by_name = overlay(r#","underlay":"eth1""#).unwrap().overlay.unwrap();
        assert_eq!(by_name.underlay, Some(Underlay::Interface("eth1".into())));
    }

    #[test]
    fn bad_overlay_files_say_what_is_wrong() {
        for (extra, says) in [
            (r#","vni":0"#, "vni 0"),
            (r#","vni":16777216"#, "vni 16777216"),
            (r#","block":8"#, "smaller than a block"),
            (r#","block":31"#, "block /31"),
            (r#","ttl":1"#, "ttl 1"),
            (r#","port":0"#, "port 0"),
            (r#","underlay":"224.0.0.1""#, "not a unicast"),
            (r#","underlay":"not an interface!""#, "neither"),
            (r#","etcd":{"endpoints":[]}"#, "no endpoint"),
        ] {
            let text = format!(
                r#"{{"driver":"overlay","subnets":[{{"subnet":"10.200.0.0/16"}}]{}}}"#,
                if extra.starts_with(",\"etcd\"") {
                    extra.to_string()
                } else {
                    format!(r#","etcd":{{"endpoints":["http://192.0.2.1:2379"]}}{extra}"#)
                }
            );
            let err = parse(&text).unwrap_err().to_string();
            assert!(err.contains(says), "{extra}: {err}");
        }
        for (text, says) in [
            (
                r#"{"driver":"overlay","subnets":[{"subnet":"10.200.0.0/16"}]}"#,
                "needs \"etcd\"",
            ),
            (
                r#"{"driver":"overlay","subnets":[{"subnet":"10.200.0.0/16"}],"etcd":{"endpoints":["192.0.2.1:2379"]}}"#,
                "http://HOST:PORT",
            ),
            (
                r#"{"driver":"overlay","subnets":[{"subnet":"10.200.0.0/16"}],"etcd":{"endpoints":["http://a:1"],"cert":"/c"}}"#,
                "go together",
            ),
            (
                r#"{"subnets":[{"subnet":"10.90.0.0/24"}],"vni":4200}"#,
                "overlay setting",
            ),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(says), "{text}: {err}");
        }
    }

    #[test]
    fn an_overlay_may_not_overlap_another_network() {
        let dir = std::env::temp_dir().join(format!("ocinet-overlap-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("etc/networks")).unwrap();
        let root = StateRoot::open(&dir.join("root")).unwrap();
        let networks = NetworkDirectory::new(&dir.join("etc"));
        let write = |name: &str, text: &str| {
            fs::write(dir.join(format!("etc/networks/{name}.json")), text).unwrap()
        };
        write(
            "ov",
            r#"{"driver":"overlay","subnets":[{"subnet":"10.200.0.0/16"}],"etcd":{"endpoints":["http://192.0.2.1:2379"]}}"#,
        );
        write("apart", r#"{"subnets":[{"subnet":"10.201.0.0/24"}]}"#);
        let ov = networks.load("ov").unwrap().unwrap();
        networks.check_no_overlap(&root, &ov).unwrap();
        write("inside", r#"{"subnets":[{"subnet":"10.200.5.0/24"}]}"#);
        let err = networks
            .check_no_overlap(&root, &ov)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("overlaps network inside (10.200.5.0/24)"),
            "{err}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn inline_definitions_validate_as_files_and_must_agree_with_them() {
        let inline = |fields: serde_json::Value| {
            Network::from_json("n1", Path::new("CNI configuration"), fields)
        };
        let n = inline(serde_json::json!({"subnets": [{"subnet": "10.98.0.0/24"}]})).unwrap();
        let file = r#"{"subnets":[{"subnet":"10.98.0.0/24"}]}"#;
        assert_eq!(n, Network::parse("n1", Path::new("n1.json"), file).unwrap());
        let err = inline(serde_json::json!({"subnets": [{"subnet": "10.98.0.5/24"}]}));
        assert!(err
            .unwrap_err()
            .to_string()
            .contains("CNI configuration: subnet 10.98.0.5/24 has host bits"));
        // Every field a file takes is taken inline.
        let mut all: serde_json::Map<String, serde_json::Value> = FIELDS
            .iter()
            .map(|f| (f.to_string(), serde_json::Value::Null))
            .collect();
        all["subnets"] = serde_json::json!([{"subnet": "10.98.0.0/24"}]);
        assert_eq!(inline(serde_json::Value::Object(all)).unwrap(), n);

        let dir = std::env::temp_dir().join(format!("ocinet-inline-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("networks")).unwrap();
        let networks = NetworkDirectory::new(&dir);
        networks.check_inline(&n).unwrap();
        fs::write(
            dir.join("networks/n1.json"),
            r#"{"subnets":[{"subnet":"10.98.0.0/24"}]}"#,
        )
        .unwrap();
        networks.check_inline(&n).unwrap();
        fs::write(
            dir.join("networks/n1.json"),
            r#"{"subnets":[{"subnet":"10.99.0.0/24"}]}"#,
        )
        .unwrap();
        let err = networks.check_inline(&n).unwrap_err().to_string();
        assert!(err.contains("differently"), "{err}");
        let default = Network::default_on("10.88.0.0/16".parse().unwrap());
        let err = networks.check_inline(&default).unwrap_err().to_string();
        assert!(err.contains("built-in default"), "{err}");
        let overlay = Network {
            name: "ov".into(),
            driver: DriverKind::Overlay,
            ..n.clone()
        };
        let err = networks.check_inline(&overlay).unwrap_err().to_string();
        assert!(err.contains("its agent reads it there"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
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
