//! ADD's result in the version asked: interfaces in the reference `bridge` plugin's order (the
//! bridge, the host veth, the interface in the sandbox; a routed network has no bridge), each
//! with its MAC, addresses with their interface's index and gateway, the default route, and
//! DNS: ocinet's resolver on the gateway when the container holds names there. Plugins chained
//! after ocinet rely on that order (`dnsname` binds to the first interface, `bandwidth` and
//! `tuning` look for the host veth and the sandbox's). A `prevResult` (a plugin before ocinet
//! in the chain) is carried over in front of it.

use std::net::IpAddr;
use std::path::Path;

use ocinet::engine::Attachment;
use ocinet::network::DriverKind;
use serde_json::{json, Map, Value};

use crate::version::Version;

/// The result of an ADD that made `attachment` in the namespace `netns`; `mac_of` gives a
/// host link's MAC (`links::mac_of`).
pub fn render(
    version: Version,
    attachment: &Attachment,
    netns: &Path,
    prev: Option<&Value>,
    dns: Option<&Value>,
    mac_of: &dyn Fn(&str) -> Option<String>,
) -> Value {
    let list = |key: &str| -> Vec<Value> {
        prev.and_then(|p| p.get(key))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let mut interfaces = list("interfaces");
    let mut ips: Vec<Value> = list("ips")
        .into_iter()
        .map(|ip| in_version(version, ip))
        .collect();
    let mut routes = list("routes");
    let mut resolvers: Vec<IpAddr> = Vec::new();
    let host_link = |name: &str| match mac_of(name) {
        Some(mac) => json!({"name": name, "mac": mac}),
        None => json!({"name": name}),
    };
    for iface in &attachment.interfaces {
        let bridged = matches!(iface.driver, DriverKind::Bridge | DriverKind::Overlay);
        if bridged && !iface.bridge.is_empty() {
            interfaces.push(host_link(&iface.bridge));
        }
        interfaces.push(host_link(&iface.host_veth));
        let index = interfaces.len();
        let mut inside = json!({"name": iface.name, "sandbox": netns});
        if let Some(mac) = &iface.mac {
            inside["mac"] = json!(mac);
        }
        interfaces.push(inside);
        for a in &iface.addresses {
            let mut ip = json!({"address": a.to_string(), "interface": index});
            if let Some(gateway) = a.gateway {
                ip["gateway"] = json!(gateway);
            }
            ips.push(in_version(version, ip));
        }
        // The default routes the interface got, one per family (the first interface's: see
        // link.rs).
        for gateway in iface.addresses.iter().filter_map(|a| a.gateway) {
            let dst = match gateway {
                IpAddr::V4(_) => "0.0.0.0/0",
                IpAddr::V6(_) => "::/0",
            };
            if !routes
                .iter()
                .any(|r| r.get("dst").and_then(Value::as_str) == Some(dst))
            {
                routes.push(json!({"dst": dst, "gw": gateway}));
            }
        }
        // The resolver listens on the gateways of a network where the container holds names
        // (engine::claim_names); IPv4 first, as the addresses are.
        if !iface.names.is_empty() {
            for gateway in iface.addresses.iter().filter_map(|a| a.gateway) {
                if !resolvers.contains(&gateway) {
                    resolvers.push(gateway);
                }
            }
        }
    }
    let mut out = Map::new();
    out.insert("cniVersion".into(), json!(version.as_str()));
    out.insert("interfaces".into(), Value::Array(interfaces));
    out.insert("ips".into(), Value::Array(ips));
    out.insert("routes".into(), Value::Array(routes));
    let given = dns.or_else(|| prev.and_then(|p| p.get("dns")).filter(|d| d.is_object()));
    if let Some(dns) = with_resolvers(given, &resolvers) {
        out.insert("dns".into(), dns);
    }
    Value::Object(out)
}

/// The DNS settings given (the configuration's, else the previous plugin's) with ocinet's
/// resolvers as the first nameservers; the others' search and options stay.
fn with_resolvers(given: Option<&Value>, resolvers: &[IpAddr]) -> Option<Value> {
    if resolvers.is_empty() {
        return given.cloned();
    }
    let mut dns = given
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut servers: Vec<Value> = resolvers.iter().map(|ip| json!(ip)).collect();
    let others = dns.get("nameservers").and_then(Value::as_array);
    for server in others.into_iter().flatten() {
        if !servers.contains(server) {
            servers.push(server.clone());
        }
    }
    dns.insert("nameservers".into(), Value::Array(servers));
    Some(Value::Object(dns))
}

/// An `ips` entry as `version` writes it: before 1.0.0 with its family, from 1.0.0 without.
fn in_version(version: Version, mut ip: Value) -> Value {
    let Some(entry) = ip.as_object_mut() else {
        return ip;
    };
    if version.ips_carry_family() {
        let v6 = entry
            .get("address")
            .and_then(Value::as_str)
            .is_some_and(|a| a.contains(':'));
        entry.insert("version".into(), json!(if v6 { "6" } else { "4" }));
    } else {
        entry.remove("version");
    }
    ip
}

/// The addresses (`a.b.c.d/len`) a result lists (CHECK compares them with the record).
pub fn addresses(result: &Value) -> Vec<String> {
    result
        .get("ips")
        .and_then(Value::as_array)
        .map(|ips| {
            ips.iter()
                .filter_map(|ip| ip.get("address").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use ocinet::network::DriverKind;
    use ocinet::state::record::{AddressRecord, InterfaceRecord};

    use super::*;

    fn attachment() -> Attachment {
        Attachment {
            interfaces: vec![InterfaceRecord {
                driver: DriverKind::Bridge,
                network: "n1".into(),
                bridge: "ocn1".into(),
                host_veth: "ocv0123456789ab".into(),
                name: "eth0".into(),
                addresses: vec![AddressRecord {
                    address: IpAddr::from([10, 98, 0, 2]),
                    prefix_len: 24,
                    gateway: Some(IpAddr::from([10, 98, 0, 1])),
                }],
                mac: Some("02:42:0a:62:00:02".into()),
                ports: Vec::new(),
                masquerade: Vec::new(),
                filter: None,
                names: Vec::new(),
                published: true,
            }],
            netns_name: None,
        }
    }

    /// The host's links as a test sees them: the bridge and the veth have MACs, others none.
    fn mac_of(name: &str) -> Option<String> {
        match name {
            "ocn1" => Some("02:42:0a:62:00:01".into()),
            "ocv0123456789ab" => Some("9a:1b:2c:3d:4e:5f".into()),
            _ => None,
        }
    }

    #[test]
    fn results_by_version() {
        let netns = Path::new("/run/netns/x");
        let v1 = render(Version::V1_0_0, &attachment(), netns, None, None, &mac_of);
        assert_eq!(
            v1,
            json!({"cniVersion": "1.0.0",
                "interfaces": [{"name": "ocn1", "mac": "02:42:0a:62:00:01"},
                    {"name": "ocv0123456789ab", "mac": "9a:1b:2c:3d:4e:5f"},
                    {"name": "eth0", "mac": "02:42:0a:62:00:02", "sandbox": "/run/netns/x"}],
                "ips": [{"address": "10.98.0.2/24", "gateway": "10.98.0.1", "interface": 2}],
                "routes": [{"dst": "0.0.0.0/0", "gw": "10.98.0.1"}]})
        );
        let v04 = render(
            Version::V0_4_0,
            &attachment(),
            netns,
            None,
            Some(&json!({"nameservers": ["10.98.0.1"]})),
            &mac_of,
        );
        assert_eq!(v04["ips"][0]["version"], "4");
        assert_eq!(v04["dns"]["nameservers"][0], "10.98.0.1");
        assert_eq!(addresses(&v04), ["10.98.0.2/24"]);
        // Dual stack: an address and a default route of each family.
        let mut dual = attachment();
        dual.interfaces[0].addresses.push(AddressRecord {
            address: "fd00:98::2".parse().unwrap(),
            prefix_len: 64,
            gateway: Some("fd00:98::1".parse().unwrap()),
        });
        let r = render(Version::V0_4_0, &dual, netns, None, None, &mac_of);
        assert_eq!(r["ips"][1]["version"], "6");
        assert_eq!(r["ips"][1]["address"], "fd00:98::2/64");
        assert_eq!(
            r["routes"],
            json!([{"dst": "0.0.0.0/0", "gw": "10.98.0.1"}, {"dst": "::/0", "gw": "fd00:98::1"}])
        );
    }

    #[test]
    fn a_previous_result_comes_first_and_indices_follow_it() {
        let prev = json!({"cniVersion": "0.4.0", "interfaces": [{"name": "lo0", "sandbox": "/x"}],
            "ips": [{"version": "4", "address": "192.0.2.5/24", "interface": 0}],
            "routes": [{"dst": "0.0.0.0/0", "gw": "192.0.2.1"}]});
        let r = render(
            Version::V1_0_0,
            &attachment(),
            Path::new("/x"),
            Some(&prev),
            None,
            &mac_of,
        );
        assert_eq!(r["interfaces"].as_array().unwrap().len(), 4);
        assert_eq!(
            r["ips"][0],
            json!({"address": "192.0.2.5/24", "interface": 0})
        );
        assert_eq!(r["ips"][1]["interface"], 3);
        // The previous plugin's default route stands.
        assert_eq!(r["routes"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn a_routed_network_has_no_bridge_and_a_missing_link_no_mac() {
        let mut routed = attachment();
        routed.interfaces[0].driver = DriverKind::Routed;
        routed.interfaces[0].bridge = String::new();
        routed.interfaces[0].host_veth = "ocvgone".into();
        let r = render(
            Version::V1_0_0,
            &routed,
            Path::new("/x"),
            None,
            None,
            &mac_of,
        );
        assert_eq!(
            r["interfaces"],
            json!([{"name": "ocvgone"},
                {"name": "eth0", "mac": "02:42:0a:62:00:02", "sandbox": "/x"}])
        );
        assert_eq!(r["ips"][0]["interface"], 1);
    }

    #[test]
    fn names_make_the_gateway_the_first_nameserver() {
        let netns = Path::new("/x");
        // No names held: no resolver listens, so none is named.
        let plain = render(Version::V1_0_0, &attachment(), netns, None, None, &mac_of);
        assert!(plain.get("dns").is_none(), "{plain}");
        let mut named = attachment();
        named.interfaces[0].names = vec!["web".into()];
        let r = render(Version::V1_0_0, &named, netns, None, None, &mac_of);
        assert_eq!(r["dns"], json!({"nameservers": ["10.98.0.1"]}));
        // The configuration's settings stay, its servers after the resolver.
        let given = json!({"nameservers": ["192.0.2.53", "10.98.0.1"], "search": ["example.org"]});
        let r = render(Version::V1_0_0, &named, netns, None, Some(&given), &mac_of);
        assert_eq!(
            r["dns"],
            json!({"nameservers": ["10.98.0.1", "192.0.2.53"], "search": ["example.org"]})
        );
    }
}
