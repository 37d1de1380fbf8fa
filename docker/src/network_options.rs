//! `docker network create -d ocinet` to an ocinet network file: the pools and gateways Docker's
//! IPAM chose (IPv4, and IPv6 with `--ipv6`), `--internal`, and the `-o KEY=VALUE` options (ocinet's field names, or Docker's
//! bridge driver's for the same settings).

use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::{json, Map, Value};

use crate::api::{CreateNetwork, IpamData, Options, ENABLE_IPV6, GENERIC, INTERNAL};
use crate::error::{bad, Result};

/// `-o` keys and the network file field each sets.
const OPTIONS: &[(&str, &str, Kind)] = &[
    ("bridge", "bridge", Kind::Text),
    ("com.docker.network.bridge.name", "bridge", Kind::Text),
    ("mtu", "mtu", Kind::Number),
    ("com.docker.network.driver.mtu", "mtu", Kind::Number),
    ("masquerade", "masquerade", Kind::Bool),
    (
        "com.docker.network.bridge.enable_ip_masquerade",
        "masquerade",
        Kind::Bool,
    ),
    ("icc", "icc", Kind::Bool),
    ("com.docker.network.bridge.enable_icc", "icc", Kind::Bool),
    ("isolate", "isolate", Kind::Bool),
];

#[derive(Clone, Copy)]
enum Kind {
    Text,
    Number,
    Bool,
}

/// The ocinet network of a Docker network: `docker-` and the short id Docker shows.
pub fn network_name(network_id: &str) -> Result<String> {
    check_id("network", network_id)?;
    Ok(format!(
        "docker-{}",
        &network_id[..network_id.len().min(12)]
    ))
}

/// Docker's ids are 64 hex digits; a file name is made of them, so nothing else is taken.
pub fn check_id(what: &str, id: &str) -> Result<()> {
    if (12..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(());
    }
    Err(bad(format!(
        "{what} id {:?} is not a Docker id (12 to 64 hex digits)",
        id.chars().take(80).collect::<String>()
    )))
}

/// The network file's fields for `request` (parsed and checked afterwards by ocinet's own
/// parser, as any network file: an IPv6 subnet outside /64../120, link-local or multicast is
/// refused there, in one line).
pub fn definition(request: &CreateNetwork) -> Result<Value> {
    let options = request.options.clone().unwrap_or_default();
    let pools = request.ipv4_data.as_deref().unwrap_or_default();
    let [pool] = pools else {
        return Err(bad(format!(
            "an ocinet network takes exactly one IPv4 subnet, Docker gave {}: pass one --subnet",
            pools.len()
        )));
    };
    let mut subnets = vec![subnet_of(pool, false)?];
    match request.ipv6_data.as_deref().unwrap_or_default() {
        // Docker allocates IPv6 pools only with --ipv6; without one, --ipv6 would mean an
        // IPv4-only network the user did not ask for.
        [] if truthy(options.get(ENABLE_IPV6)) => {
            return Err(bad(
                "--ipv6 needs an IPv6 subnet: pass --subnet for it too (such as --subnet fd00:77::/64)",
            ))
        }
        [] => {}
        [pool6] => subnets.push(subnet_of(pool6, true)?),
        more => {
            return Err(bad(format!(
                "an ocinet network takes at most one IPv6 subnet, Docker gave {}: pass one IPv6 --subnet",
                more.len()
            )))
        }
    }
    let mut fields = Map::new();
    fields.insert("driver".into(), json!("bridge"));
    // Docker's embedded DNS answers its containers' names; ocinet's resolver would only add a
    // second server that knows none of them.
    fields.insert("dns".into(), json!(false));
    let subnets: Vec<Value> = subnets
        .iter()
        .map(|(subnet, gateway)| json!({"subnet": subnet.to_string(), "gateway": gateway.to_string()}))
        .collect();
    fields.insert("subnets".into(), Value::Array(subnets));
    if truthy(options.get(INTERNAL)) {
        fields.insert("internal".into(), json!(true));
    }
    for (key, value) in generic(&options)? {
        let Some((_, field, kind)) = OPTIONS.iter().find(|(k, _, _)| *k == key) else {
            return Err(bad(format!(
                "unknown option {key:?}: the ocinet plugin takes -o bridge=NAME, mtu=N, masquerade=true|false, icc=true|false, isolate=true|false"
            )));
        };
        fields.insert(field.to_string(), typed(&key, &value, *kind)?);
    }
    Ok(Value::Object(fields))
}

/// The pool (of the family `v6`) and its gateway: Docker writes the gateway with the pool's
/// prefix (`10.0.0.1/24`, `fd00::1/64`).
fn subnet_of(pool: &IpamData, v6: bool) -> Result<(IpNet, IpAddr)> {
    let family = if v6 { "IPv6" } else { "IPv4" };
    let subnet: IpNet = pool
        .pool
        .parse()
        .ok()
        .filter(|s: &IpNet| s.addr().is_ipv6() == v6)
        .ok_or_else(|| {
            bad(format!(
                "Docker gave the pool {:?}, not an {family} subnet",
                pool.pool
            ))
        })?;
    let gateway = match pool.gateway.split('/').next().unwrap_or_default() {
        "" => return Err(bad(format!("Docker gave no gateway for the pool {subnet}"))),
        g => g
            .parse::<IpAddr>()
            .map_err(|_| bad(format!("Docker gave the gateway {g:?}, not an address")))?,
    };
    if !subnet.contains(&gateway) {
        return Err(bad(format!(
            "gateway {gateway} is outside the subnet {subnet}"
        )));
    }
    Ok((subnet.trunc(), gateway))
}

/// The user's `-o` pairs: Docker passes them as strings.
fn generic(options: &Options) -> Result<Vec<(String, String)>> {
    match options.get(GENERIC) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                Value::Bool(b) => Ok((k.clone(), b.to_string())),
                Value::Number(n) => Ok((k.clone(), n.to_string())),
                _ => Err(bad(format!("option {k:?} must be a plain value"))),
            })
            .collect(),
        Some(_) => Err(bad(format!("Docker's {GENERIC} is not a map of options"))),
    }
}

fn typed(key: &str, value: &str, kind: Kind) -> Result<Value> {
    match kind {
        Kind::Text => Ok(json!(value)),
        Kind::Number => value
            .parse::<u32>()
            .map(|n| json!(n))
            .map_err(|_| bad(format!("option {key}={value:?} must be a number"))),
        Kind::Bool => match value {
            "true" | "1" => Ok(json!(true)),
            "false" | "0" => Ok(json!(false)),
            _ => Err(bad(format!("option {key}={value:?} must be true or false"))),
        },
    }
}

fn truthy(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: Value) -> CreateNetwork {
        serde_json::from_value(body).unwrap()
    }

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn pool_gateway_internal_and_options_become_the_file_fields() {
        let req = request(json!({
            "NetworkID": ID,
            "Options": {
                "com.docker.network.internal": true,
                "com.docker.network.generic": {"bridge": "ocd1", "com.docker.network.driver.mtu": "1400", "icc": "false"}
            },
            "IPv4Data": [{"AddressSpace": "LocalDefault", "Pool": "10.77.0.0/24", "Gateway": "10.77.0.1/24"}],
            "IPv6Data": []
        }));
        let fields = definition(&req).unwrap();
        assert_eq!(
            fields,
            json!({"driver": "bridge", "dns": false,
                   "subnets": [{"subnet": "10.77.0.0/24", "gateway": "10.77.0.1"}],
                   "internal": true, "bridge": "ocd1", "mtu": 1400, "icc": false})
        );
        assert_eq!(network_name(ID).unwrap(), "docker-0123456789ab");
    }

    #[test]
    fn an_ipv6_pool_is_the_second_subnet_with_its_gateway() {
        let req = request(json!({
            "NetworkID": ID,
            "Options": {"com.docker.network.enable_ipv6": true},
            "IPv4Data": [{"AddressSpace": "LocalDefault", "Pool": "10.77.0.0/24", "Gateway": "10.77.0.1/24"}],
            "IPv6Data": [{"AddressSpace": "LocalDefault", "Pool": "fd00:77::/64", "Gateway": "fd00:77::1/64"}]
        }));
        let fields = definition(&req).unwrap();
        assert_eq!(
            fields["subnets"],
            json!([{"subnet": "10.77.0.0/24", "gateway": "10.77.0.1"},
                   {"subnet": "fd00:77::/64", "gateway": "fd00:77::1"}])
        );
        // What ocinet's parser refuses (a /48) is refused when the file is checked, by the
        // handler; the fields themselves pass it on as given.
        let wide = request(json!({
            "NetworkID": ID,
            "IPv4Data": [{"Pool": "10.77.0.0/24", "Gateway": "10.77.0.1/24"}],
            "IPv6Data": [{"Pool": "fd00:77::/48", "Gateway": "fd00:77::1/48"}]
        }));
        assert_eq!(
            definition(&wide).unwrap()["subnets"][1]["subnet"],
            "fd00:77::/48"
        );
    }

    #[test]
    fn refuses_what_it_cannot_make_in_one_line() {
        let pool = json!([{"Pool": "10.77.0.0/24", "Gateway": "10.77.0.1/24"}]);
        let cases = [
            (
                json!({"NetworkID": ID, "IPv4Data": pool, "Options": {"com.docker.network.generic": {"vlan": "3"}}}),
                "unknown option \"vlan\"",
            ),
            (
                json!({"NetworkID": ID, "IPv4Data": pool, "Options": {"com.docker.network.generic": {"mtu": "big"}}}),
                "must be a number",
            ),
            (
                json!({"NetworkID": ID, "IPv4Data": pool, "Options": {"com.docker.network.enable_ipv6": true}}),
                "--ipv6 needs an IPv6 subnet",
            ),
            (
                json!({"NetworkID": ID, "IPv4Data": pool, "IPv6Data": [
                    {"Pool": "fd00:77::/64", "Gateway": "fd00:77::1/64"},
                    {"Pool": "fd00:78::/64", "Gateway": "fd00:78::1/64"}]}),
                "at most one IPv6 subnet, Docker gave 2",
            ),
            (
                json!({"NetworkID": ID, "IPv4Data": pool, "IPv6Data": [{"Pool": "10.1.0.0/24", "Gateway": "10.1.0.1/24"}]}),
                "not an IPv6 subnet",
            ),
            (
                json!({"NetworkID": ID, "IPv4Data": [{"Pool": "fd00:77::/64", "Gateway": "fd00:77::1/64"}]}),
                "not an IPv4 subnet",
            ),
            (
                json!({"NetworkID": ID, "IPv4Data": pool, "IPv6Data": [{"Pool": "fd00:77::/64", "Gateway": "fd00:78::1/64"}]}),
                "gateway fd00:78::1 is outside the subnet fd00:77::/64",
            ),
            (
                json!({"NetworkID": ID, "IPv4Data": pool, "IPv6Data": [{"Pool": "fd00:77::/64", "Gateway": ""}]}),
                "no gateway for the pool fd00:77::/64",
            ),
            (
                json!({"NetworkID": ID, "IPv4Data": []}),
                "exactly one IPv4 subnet, Docker gave 0",
            ),
            (
                json!({"NetworkID": ID, "IPv4Data": [{"Pool": "10.77.0.0/24", "Gateway": "10.78.0.1/24"}]}),
                "outside the subnet",
            ),
        ];
        for (body, expected) in cases {
            let e = definition(&request(body)).unwrap_err().to_string();
            assert!(e.contains(expected), "{e}");
            assert!(!e.contains('\n'));
        }
        assert!(network_name("../etc").is_err());
        assert!(network_name("abc").is_err());
    }
}
