//! The plugin's configuration on stdin: CNI's own keys, ocinet's `root` and `configDir`, the
//! network's fields (those of a network file), and what the runtime adds (`runtimeConfig`,
//! `prevResult`, `cni.dev/valid-attachments`). Each field's JSON type is `schema`'s check,
//! made before the field is read.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use ocinet::context::{options_from, Options};
use ocinet::dns::names::{DnsNames, MAX_ALIASES};
use ocinet::network::{self, Network};
use ocinet::ports::{PortRange, PortSpec, Protocol};
use ocinet::validate;
use serde_json::{Map, Value};

use crate::bridge_plugin;
use crate::env::{self, record_id};
use crate::error::{code, CniError, Result};
use crate::schema;
use crate::version::{Version, SUPPORTED};

/// CNI's keys of a plugin configuration, as libcni passes them.
pub(crate) const CNI_KEYS: &[&str] = &[
    "cniVersion",
    "name",
    "type",
    "args",
    "capabilities",
    "runtimeConfig",
    "prevResult",
    "dns",
    "cni.dev/valid-attachments",
];
/// ocinet's own: where the state and the network files are (defaults: the hook's).
pub(crate) const OCINET_KEYS: &[&str] = &["root", "configDir"];
/// What every command reads, DEL included (the answer's version, the state root).
const READ_BY_ALL: &[&str] = &["cniVersion", "name", "root", "configDir"];
/// Configurations are a few hundred bytes; a prevResult adds a few more.
pub const MAX_BYTES: usize = 1 << 20;

#[derive(Debug)]
pub struct Config {
    pub version: Version,
    pub name: String,
    pub options: Options,
    /// The configuration as given (for what each command reads of it).
    raw: Map<String, Value>,
}

/// Runtime-given parts of an ADD: `runtimeConfig` (the capabilities) and CNI_ARGS.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Runtime {
    pub ports: Vec<PortSpec>,
    pub ip: Option<Ipv4Addr>,
    pub ip6: Option<Ipv6Addr>,
    pub mac: Option<[u8; 6]>,
    /// The container's names on this network: `K8S_POD_NAME`, then the `aliases`
    /// capability's list for the network.
    pub names: DnsNames,
}

fn invalid(msg: String) -> CniError {
    CniError::new(code::INVALID_CONFIG, msg)
}

impl Config {
    /// Decodes the configuration and its version; what only some commands need is checked by
    /// them (a DEL must go through with a configuration its ADD refused).
    pub fn parse(input: &[u8]) -> Result<Config> {
        if input.len() > MAX_BYTES {
            return Err(CniError::new(
                code::DECODING,
                format!("the configuration on stdin is larger than {MAX_BYTES} bytes"),
            ));
        }
        let value: Value = serde_json::from_slice(input).map_err(|e| {
            CniError::new(
                code::DECODING,
                format!("the configuration on stdin is not JSON: {e}"),
            )
        })?;
        let Value::Object(raw) = value else {
            return Err(CniError::new(
                code::DECODING,
                "the configuration on stdin is not a JSON object",
            ));
        };
        schema::check_keys(&raw, READ_BY_ALL)?;
        let version = version_of(&raw)?;
        let name = match raw.get("name") {
            Some(Value::String(name)) => name.clone(),
            _ => return Err(invalid("the configuration has no \"name\"".to_string())),
        };
        let path = |key: &str| -> Result<Option<PathBuf>> {
            match raw.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(p)) if Path::new(p).is_absolute() => Ok(Some(p.into())),
                Some(other) => Err(invalid(format!(
                    "\"{key}\" {other} is not an absolute path"
                ))),
            }
        };
        let options = options_from(path("root")?, path("configDir")?);
        Ok(Config {
            version,
            name,
            options,
            raw,
        })
    }

    /// Fails on a key that is neither CNI's, ocinet's, a network field nor the reference
    /// bridge plugin's (a typo would otherwise be ignored), on any field of the wrong type, on
    /// what of the bridge plugin's ocinet cannot do (`bridge_plugin`) and on a bad name.
    pub fn check_strict(&self) -> Result<()> {
        for (key, value) in &self.raw {
            let known = CNI_KEYS.contains(&key.as_str())
                || OCINET_KEYS.contains(&key.as_str())
                || network::FIELDS.contains(&key.as_str())
                || bridge_plugin::KEYS.contains(&key.as_str());
            if !known {
                return Err(CniError::new(
                    code::UNSUPPORTED_FIELD,
                    format!("unsupported field {key:?} = {value}: ocinet takes CNI's keys, \"root\", \"configDir\", a network file's fields and the bridge plugin's"),
                ));
            }
        }
        schema::check_all(&self.raw)?;
        bridge_plugin::read(&self.raw)?;
        validate::network_name(&self.name).map_err(|r| invalid(format!("\"name\": {r}")))?;
        Ok(())
    }

    /// Whether the bridge plugin's `hairpinMode: true` asks for hairpin on the host veth.
    pub fn hairpin(&self) -> Result<bool> {
        schema::check_keys(&self.raw, bridge_plugin::KEYS)?;
        Ok(bridge_plugin::read(&self.raw)?.hairpin)
    }

    /// The network defined inline (any of a network file's fields given), else `None`: the
    /// network of that name in the config dir, or the built-in default `ocinet`.
    /// The bridge plugin's `ipam` and `ipMasq` are read as the network's `subnets` and
    /// `masquerade`.
    pub fn network(&self) -> Result<Option<Network>> {
        let Some(fields) = self.network_fields()? else {
            return Ok(None);
        };
        let origin = format!("in the CNI configuration of {}", self.name);
        Network::from_json(&self.name, Path::new(&origin), fields)
            .map(Some)
            .map_err(CniError::from)
    }

    /// The inline network's fields as a network file would give them, if any is given.
    pub fn network_fields(&self) -> Result<Option<Value>> {
        schema::check_keys(&self.raw, network::FIELDS)?;
        schema::check_keys(&self.raw, bridge_plugin::KEYS)?;
        let mut fields: Map<String, Value> = self
            .raw
            .iter()
            .filter(|(k, v)| is_network_field(k, v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        fields.extend(bridge_plugin::read(&self.raw)?.fields);
        Ok((!fields.is_empty()).then_some(Value::Object(fields)))
    }

    /// `runtimeConfig`'s port mappings, addresses, MAC and aliases, over CNI_ARGS' IP and MAC;
    /// CNI_ARGS' `K8S_POD_NAME` as the container's name.
    pub fn runtime(&self, args: &env::Args) -> Result<Runtime> {
        // Typed first: below, a value that is not of the type read can only be null.
        schema::check_keys(&self.raw, &["runtimeConfig"])?;
        let mut out = Runtime {
            ports: Vec::new(),
            ip: args.ip,
            ip6: None,
            mac: args.mac,
            names: DnsNames::default(),
        };
        let rc = self.raw.get("runtimeConfig");
        let aliases = rc
            .and_then(|rc| rc.get("aliases"))
            .and_then(|a| a.get(&self.name))
            .and_then(Value::as_array);
        out.names = names(args.pod_name.as_deref(), aliases.map(Vec::as_slice))?;
        let Some(rc) = rc else {
            return Ok(out);
        };
        if let Some(list) = rc.get("portMappings").and_then(Value::as_array) {
            out.ports = list.iter().map(port_mapping).collect::<Result<_>>()?;
        }
        if let Some(ips) = rc.get("ips").and_then(Value::as_array) {
            let (ip, ip6) = static_ips(ips)?;
            out.ip = ip.or(out.ip);
            out.ip6 = ip6;
        }
        if let Some(text) = rc.get("mac").and_then(Value::as_str) {
            out.mac =
                Some(env::parse_mac(text).map_err(|r| invalid(format!("runtimeConfig.mac: {r}")))?);
        }
        Ok(out)
    }

    /// The previous plugin's result, carried over.
    pub fn prev_result(&self) -> Result<Option<&Value>> {
        schema::check_keys(&self.raw, &["prevResult"])?;
        Ok(self.raw.get("prevResult").filter(|v| v.is_object()))
    }

    /// CNI's DNS settings for the result (an object; `"dns": true` or `false` is the
    /// network's name service).
    pub fn dns(&self) -> Result<Option<&Value>> {
        schema::check_keys(&self.raw, &["dns"])?;
        Ok(self
            .raw
            .get("dns")
            .filter(|v| v.as_object().is_some_and(|o| !o.is_empty())))
    }

    /// GC's `cni.dev/valid-attachments`, as record ids. Absent is refused rather than read
    /// as "none is valid": a runtime that left it out would lose every attachment.
    pub fn valid_attachments(&self) -> Result<HashSet<String>> {
        schema::check_keys(&self.raw, &["cni.dev/valid-attachments"])?;
        let Some(list) = self
            .raw
            .get("cni.dev/valid-attachments")
            .filter(|v| !v.is_null())
        else {
            return Err(invalid(
                "GC needs \"cni.dev/valid-attachments\" (an empty list collects every attachment)"
                    .to_string(),
            ));
        };
        let bad = || {
            invalid(
                "cni.dev/valid-attachments must list {\"containerID\": ..., \"ifname\": ...}"
                    .to_string(),
            )
        };
        let mut ids = HashSet::new();
        for entry in list.as_array().ok_or_else(bad)? {
            let id = entry
                .get("containerID")
                .and_then(Value::as_str)
                .ok_or_else(bad)?;
            let ifname = entry
                .get("ifname")
                .and_then(Value::as_str)
                .ok_or_else(bad)?;
            ids.insert(record_id(id, ifname));
        }
        Ok(ids)
    }
}

/// The top level's `dns` is the network's when it is a boolean; an object is CNI's DNS
/// settings, for the result.
fn is_network_field(key: &str, value: &Value) -> bool {
    match key {
        "dns" => value.is_boolean(),
        _ => network::FIELDS.contains(&key),
    }
}

/// The container's DNS names: `K8S_POD_NAME` (podman's container name) first, then the
/// `aliases` capability's list for this network (podman's `--network-alias` and short id;
/// strings: `schema` checked). A name that cannot be a DNS name (podman allows `a..b`, a short
/// id may be all digits) is not registered rather than failing the container's start, as the
/// `dnsname` plugin serves what dnsmasq can; too many aliases are refused.
fn names(pod_name: Option<&str>, aliases: Option<&[Value]>) -> Result<DnsNames> {
    let usable = |n: &&str| validate::dns_name(n).is_ok();
    let aliases: Vec<String> = aliases
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_str)
        .filter(usable)
        .map(str::to_string)
        .collect();
    if aliases.len() > MAX_ALIASES {
        return Err(invalid(format!(
            "runtimeConfig.aliases: {} aliases for the network, at most {MAX_ALIASES}",
            aliases.len()
        )));
    }
    Ok(DnsNames {
        name: pod_name.filter(usable).map(str::to_string),
        aliases,
    })
}

/// `cniVersion`, a string (`schema` checked); absent, the specification's oldest, 0.1.0.
fn version_of(raw: &Map<String, Value>) -> Result<Version> {
    let given = raw.get("cniVersion").and_then(Value::as_str);
    let text = given.unwrap_or("0.1.0");
    Version::parse(text).ok_or_else(|| {
        let what = match given {
            Some(_) => format!("cniVersion {text:?}"),
            None => "no cniVersion (which means 0.1.0)".to_string(),
        };
        CniError::new(
            code::INCOMPATIBLE_VERSION,
            format!(
                "{what} is not supported: use one of {}",
                SUPPORTED.join(", ")
            ),
        )
    })
}

/// One of `runtimeConfig.portMappings`: `{"hostPort", "containerPort", "protocol", "hostIP"}`
/// (podman expands ranges into single ports). Typed by `schema`: a port is a whole number,
/// the others strings or null.
fn port_mapping(m: &Value) -> Result<PortSpec> {
    let bad = |why: String| invalid(format!("runtimeConfig.portMappings entry {m}: {why}"));
    let port = |key: &str| -> Result<u16> {
        match m.get(key).and_then(Value::as_u64) {
            Some(p @ 1..=65535) => Ok(p as u16),
            _ => Err(bad(format!("{key} must be a port from 1 to 65535"))),
        }
    };
    let protocol = match m
        .get("protocol")
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase)
    {
        None => Protocol::Tcp,
        Some(p) if p.is_empty() || p == "tcp" => Protocol::Tcp,
        Some(p) if p == "udp" => Protocol::Udp,
        Some(p) if p == "sctp" => Protocol::Sctp,
        Some(p) => return Err(bad(format!("protocol {p:?} is not tcp, udp or sctp"))),
    };
    let host_ip = match m.get("hostIP").and_then(Value::as_str) {
        None | Some("") => None,
        Some(text) => match text.parse::<IpAddr>() {
            Ok(ip) if ip.is_unspecified() => None,
            Ok(ip) => Some(ip),
            Err(_) => return Err(bad(format!("hostIP {text:?} is not an IP address"))),
        },
    };
    Ok(PortSpec {
        host_ip,
        host: Some(PortRange::single(port("hostPort")?)),
        container: PortRange::single(port("containerPort")?),
        protocol,
    })
}

/// `runtimeConfig.ips` (strings: `schema` checked): at most one IPv4 and one IPv6 address,
/// with or without prefixes.
fn static_ips(ips: &[Value]) -> Result<(Option<Ipv4Addr>, Option<Ipv6Addr>)> {
    let bad = |why: String| invalid(format!("runtimeConfig.ips {}: {why}", Value::from(ips)));
    let mut found = None;
    let mut found6 = None;
    for text in ips.iter().filter_map(Value::as_str) {
        let ip = match text.parse::<IpNet>() {
            Ok(net) => net.addr(),
            Err(_) => text
                .parse::<IpAddr>()
                .map_err(|_| bad(format!("{text:?} is not an address")))?,
        };
        match ip {
            IpAddr::V4(v4) if found.is_none() => found = Some(v4),
            IpAddr::V4(_) => return Err(bad("more than one IPv4 address".to_string())),
            IpAddr::V6(v6) if found6.is_none() => found6 = Some(v6),
            IpAddr::V6(_) => return Err(bad("more than one IPv6 address".to_string())),
        }
    }
    Ok((found, found6))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(v: Value) -> Result<Config> {
        Config::parse(v.to_string().as_bytes())
    }

    #[test]
    fn the_network_is_inline_or_by_name() {
        let c = parse(
            json!({"cniVersion": "1.0.0", "name": "n1", "type": "ocinet",
            "bridge": "ocn1", "subnets": [{"subnet": "10.98.0.0/24"}], "masquerade": true,
            "capabilities": {"portMappings": true}, "root": "/run/x"}),
        )
        .unwrap();
        c.check_strict().unwrap();
        assert_eq!(c.version, Version::V1_0_0);
        assert_eq!(c.options.root, PathBuf::from("/run/x"));
        let n = c.network().unwrap().unwrap();
        assert_eq!((n.name.as_str(), n.bridge.as_str()), ("n1", "ocn1"));
        let by_name =
            parse(json!({"cniVersion": "0.4.0", "name": "ocinet", "type": "ocinet"})).unwrap();
        assert_eq!(by_name.network().unwrap(), None);
        let e = parse(
            json!({"cniVersion": "1.0.0", "name": "n1", "subnets": [{"subnet": "10.98.0.1/24"}]}),
        )
        .unwrap()
        .network()
        .unwrap_err();
        assert_eq!(e.code, code::INVALID_CONFIG);
        assert!(
            e.msg
                .contains("in the CNI configuration of n1: subnet 10.98.0.1/24"),
            "{e}"
        );
    }

    #[test]
    fn bad_configurations_get_their_codes() {
        for (input, want, says) in [
            ("{", code::DECODING, "not JSON"),
            ("[]", code::DECODING, "not a JSON object"),
            (
                r#"{"cniVersion":"0.2.0","name":"n"}"#,
                code::INCOMPATIBLE_VERSION,
                "0.2.0",
            ),
            (
                r#"{"cniVersion":"1.0.0"}"#,
                code::INVALID_CONFIG,
                "no \"name\"",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","root":"rel"}"#,
                code::INVALID_CONFIG,
                "absolute",
            ),
        ] {
            let e = Config::parse(input.as_bytes()).unwrap_err();
            assert_eq!(e.code, want, "{input}");
            assert!(e.msg.contains(says), "{input}: {e}");
        }
        for (v, says) in [
            (
                json!({"cniVersion": "1.0.0", "name": "n", "subnet": "10.0.0.0/24"}),
                "unsupported field \"subnet\"",
            ),
            (
                json!({"cniVersion": "1.0.0", "name": "n", "isGateway": true, "ipam": {"type": "dhcp"}}),
                "\"ipam\" of type \"dhcp\"",
            ),
        ] {
            let e = parse(v).unwrap().check_strict().unwrap_err();
            assert_eq!(e.code, code::UNSUPPORTED_FIELD);
            assert!(e.msg.contains(says), "{e}");
        }
        let e = parse(json!({"cniVersion": "1.0.0", "name": "../n"}))
            .unwrap()
            .check_strict();
        assert_eq!(e.unwrap_err().code, code::INVALID_CONFIG);
    }

    #[test]
    fn runtime_config_gives_ports_address_and_mac() {
        let c = parse(
            json!({"cniVersion": "1.0.0", "name": "n1", "runtimeConfig": {
            "portMappings": [
                {"hostPort": 8080, "containerPort": 80, "protocol": "tcp", "hostIP": ""},
                {"hostPort": 5353, "containerPort": 53, "protocol": "UDP", "hostIP": "127.0.0.1"},
                {"hostPort": 9000, "containerPort": 9000, "protocol": "sctp"}],
            "ips": ["10.98.0.10/24"], "mac": "02:00:00:00:00:0a"}}),
        )
        .unwrap();
        let args = env::Args {
            ip: Some(Ipv4Addr::new(10, 98, 0, 11)),
            mac: None,
            pod_name: None,
        };
        let rt = c.runtime(&args).unwrap();
        assert_eq!(rt.ip, Some(Ipv4Addr::new(10, 98, 0, 10)));
        assert_eq!(rt.mac, Some([2, 0, 0, 0, 0, 10]));
        let got: Vec<_> = rt
            .ports
            .iter()
            .map(|p| {
                (
                    p.host_ip,
                    p.host.unwrap().start,
                    p.container.start,
                    p.protocol,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (None, 8080, 80, Protocol::Tcp),
                (Some("127.0.0.1".parse().unwrap()), 5353, 53, Protocol::Udp),
                (None, 9000, 9000, Protocol::Sctp),
            ]
        );
        for rc in [
            json!({"portMappings": [{"hostPort": 0, "containerPort": 80}]}),
            json!({"portMappings": [{"hostPort": 80, "containerPort": 80, "protocol": "icmp"}]}),
            json!({"portMappings": [{"hostPort": 80, "containerPort": 80, "hostIP": "x"}]}),
            json!({"ips": ["fd00::5/64", "fd00::6"]}),
            json!({"ips": ["10.0.0.1", "10.0.0.2"]}),
            json!({"mac": "01:00:5e:00:00:01"}),
        ] {
            let c =
                parse(json!({"cniVersion": "1.0.0", "name": "n1", "runtimeConfig": rc})).unwrap();
            assert_eq!(
                c.runtime(&env::Args::default()).unwrap_err().code,
                code::INVALID_CONFIG,
                "{rc}"
            );
        }
    }

    #[test]
    fn names_come_from_k8s_pod_name_and_the_networks_aliases() {
        let c = parse(json!({"cniVersion": "1.0.0", "name": "n1",
            "runtimeConfig": {"aliases": {"n1": ["Web", "www", "123456789012", "a..b"],
                "other": ["elsewhere"]}}}))
        .unwrap();
        let args = env::Args {
            pod_name: Some("web".into()),
            ..Default::default()
        };
        let rt = c.runtime(&args).unwrap();
        // Lower case, each once, the pod name first; what cannot be a DNS name is not held.
        assert_eq!(rt.names.all(None), ["web", "www"]);
        let rt = c.runtime(&env::Args::default()).unwrap();
        assert_eq!(rt.names.all(None), ["web", "www"]);
        // Another network's aliases are not this one's.
        let other = parse(json!({"cniVersion": "1.0.0", "name": "n2",
            "runtimeConfig": {"aliases": {"n1": ["web"]}}}))
        .unwrap();
        assert!(other
            .runtime(&env::Args::default())
            .unwrap()
            .names
            .all(None)
            .is_empty());
        let many: Vec<String> = (0..=MAX_ALIASES).map(|i| format!("a{i}")).collect();
        let c = parse(json!({"cniVersion": "1.0.0", "name": "n1",
            "runtimeConfig": {"aliases": {"n1": many}}}))
        .unwrap();
        let e = c.runtime(&env::Args::default()).unwrap_err();
        assert_eq!(e.code, code::INVALID_CONFIG);
        assert!(e.msg.contains("at most"), "{e}");
    }

    #[test]
    fn valid_attachments_are_record_ids() {
        let c = parse(
            json!({"cniVersion": "1.1.0", "name": "n1", "cni.dev/valid-attachments": [
            {"containerID": "c1", "ifname": "eth0"}]}),
        )
        .unwrap();
        assert_eq!(
            c.valid_attachments().unwrap(),
            HashSet::from(["cni-c1-eth0".to_string()])
        );
        let none = parse(json!({"cniVersion": "1.1.0", "name": "n1"})).unwrap();
        assert_eq!(
            none.valid_attachments().unwrap_err().code,
            code::INVALID_CONFIG
        );
    }
}
