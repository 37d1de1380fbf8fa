//! ADD's result in the version asked: interfaces (each host veth, then the interface in the
//! sandbox), addresses with their interface's index and gateway, the default route, and DNS.
//! A `prevResult` (a plugin before ocinet in the chain) is carried over in front of it.

use std::net::IpAddr;
use std::path::Path;

use ocinet::engine::Attachment;
use serde_json::{json, Map, Value};

use crate::version::Version;

/// The result of an ADD that made `attachment` in the namespace `netns`.
pub fn render(
    version: Version,
    attachment: &Attachment,
    netns: &Path,
    prev: Option<&Value>,
    dns: Option<&Value>,
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
    for iface in &attachment.interfaces {
        interfaces.push(json!({"name": iface.host_veth}));
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
    }
    let mut out = Map::new();
    out.insert("cniVersion".into(), json!(version.as_str()));
    out.insert("interfaces".into(), Value::Array(interfaces));
    out.insert("ips".into(), Value::Array(ips));
    out.insert("routes".into(), Value::Array(routes));
    if let Some(dns) = dns.or_else(|| prev.and_then(|p| p.get("dns")).filter(|d| d.is_object())) {
        out.insert("dns".into(), dns.clone());
    }
    Value::Object(out)
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

    #[test]
    fn results_by_version() {
        let netns = Path::new("/run/netns/x");
        let v1 = render(Version::V1_0_0, &attachment(), netns, None, None);
        assert_eq!(
            v1,
            json!({"cniVersion": "1.0.0",
                "interfaces": [{"name": "ocv0123456789ab"},
                    {"name": "eth0", "mac": "02:42:0a:62:00:02", "sandbox": "/run/netns/x"}],
                "ips": [{"address": "10.98.0.2/24", "gateway": "10.98.0.1", "interface": 1}],
                "routes": [{"dst": "0.0.0.0/0", "gw": "10.98.0.1"}]})
        );
        let v04 = render(
            Version::V0_4_0,
            &attachment(),
            netns,
            None,
            Some(&json!({"nameservers": ["10.98.0.1"]})),
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
        let r = render(Version::V0_4_0, &dual, netns, None, None);
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
        );
        assert_eq!(r["interfaces"].as_array().unwrap().len(), 3);
        assert_eq!(
            r["ips"][0],
            json!({"address": "192.0.2.5/24", "interface": 0})
        );
        assert_eq!(r["ips"][1]["interface"], 2);
        // The previous plugin's default route stands.
        assert_eq!(r["routes"].as_array().unwrap().len(), 1);
    }
}
