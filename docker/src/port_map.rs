//! Docker's port bindings (`docker run -p`, in ProgramExternalConnectivity's options) to
//! ocinet's port specs, and the published ports back to Docker's form (EndpointOperInfo, for
//! `docker port` and `docker inspect`).

use std::net::IpAddr;

use ocinet::ports::publish::PublishedPort;
use ocinet::ports::{PortRange, PortSpec, Protocol};
use serde_json::Value;

use crate::api::{Options, PortBinding, PORT_MAP};
use crate::error::{bad, Result};

/// The specs of the bindings in `options`, on a network with an IPv6 subnet (`ipv6`) or not.
/// A binding on every IPv6 address (`::`) beside the same one on every IPv4 address is its
/// IPv6 half: ocinet's spec on every host address covers both families (the IPv6 one only
/// where the container has an IPv6 address), so it adds nothing. Alone, `::` is refused (ocinet
/// has no "every IPv6 address only"), and so is any IPv6 host address on an IPv4-only network.
pub fn specs(options: Option<&Options>, ipv6: bool) -> Result<Vec<PortSpec>> {
    let bindings: Vec<PortBinding> = match options.and_then(|o| o.get(PORT_MAP)) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(v) => serde_json::from_value(v.clone()).map_err(|e| {
            bad(format!(
                "Docker's {PORT_MAP} is not a list of port bindings: {e}"
            ))
        })?,
    };
    let mut out = Vec::new();
    for b in &bindings {
        let protocol = match b.proto {
            6 => Protocol::Tcp,
            17 => Protocol::Udp,
            132 => Protocol::Sctp,
            other => {
                return Err(bad(format!(
                    "port {}: IP protocol {other} cannot be published (tcp, udp or sctp)",
                    b.port
                )))
            }
        };
        let host_ip = match b.host_ip.as_str() {
            "" => None,
            text => match text.parse::<IpAddr>() {
                Ok(ip) if ip.is_unspecified() && ip.is_ipv6() && has_ipv4_twin(&bindings, b) => {
                    continue
                }
                Ok(ip) if ip.is_ipv6() && !ipv6 => return Err(bad(format!(
                    "port {}: IPv6 host address {ip} cannot be published (the network has no IPv6 subnet, its containers IPv4 only): publish on an IPv4 address",
                    b.port
                ))),
                Ok(ip) if ip.is_ipv6() && ip.is_unspecified() => return Err(bad(format!(
                    "port {}: host address :: alone cannot be published (ocinet publishes on every address of both families, or on one address): publish without a host address, or on one IPv6 address",
                    b.port
                ))),
                Ok(ip) if ip.is_unspecified() => None,
                Ok(ip) => Some(ip),
                Err(_) => {
                    return Err(bad(format!(
                        "port {}: host address {text:?} is not an address",
                        b.port
                    )))
                }
            },
        };
        let host = match (b.host_port, b.host_port_end) {
            (0, _) => None,
            (start, end) if end > start => Some(PortRange { start, end }),
            (port, _) => Some(PortRange::single(port)),
        };
        let spec = PortSpec {
            host_ip,
            host,
            container: PortRange::single(b.port),
            protocol,
        };
        if !out.contains(&spec) {
            out.push(spec);
        }
    }
    Ok(out)
}

fn has_ipv4_twin(bindings: &[PortBinding], v6: &PortBinding) -> bool {
    bindings.iter().any(|b| {
        matches!(b.host_ip.as_str(), "" | "0.0.0.0")
            && (b.proto, b.port, b.host_port, b.host_port_end)
                == (v6.proto, v6.port, v6.host_port, v6.host_port_end)
    })
}

/// The published ports as Docker lists them: one binding per container port.
pub fn bindings(ports: &[PublishedPort], address: Option<IpAddr>) -> Vec<PortBinding> {
    ports
        .iter()
        .flat_map(|p| {
            p.container
                .ports()
                .zip(p.host.ports())
                .map(move |(c, h)| PortBinding {
                    proto: p.protocol.number(),
                    ip: address.map(|a| a.to_string()).unwrap_or_default(),
                    port: c,
                    host_ip: p
                        .host_ip
                        .map(|a| a.to_string())
                        .unwrap_or_else(|| "0.0.0.0".into()),
                    host_port: h,
                    host_port_end: h,
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn docker_bindings_become_specs() {
        let options = json!({PORT_MAP: [
            {"Proto": 6, "IP": "", "Port": 80, "HostIP": "", "HostPort": 8080, "HostPortEnd": 8080},
            {"Proto": 6, "IP": "", "Port": 80, "HostIP": "::", "HostPort": 8080, "HostPortEnd": 8080},
            {"Proto": 17, "IP": "", "Port": 53, "HostIP": "127.0.0.1", "HostPort": 0, "HostPortEnd": 0},
            {"Proto": 6, "IP": "", "Port": 22, "HostIP": "0.0.0.0", "HostPort": 7000, "HostPortEnd": 7010}
        ]});
        let got = specs(options.as_object(), false).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(
            got[0],
            PortSpec {
                host_ip: None,
                host: Some(PortRange::single(8080)),
                container: PortRange::single(80),
                protocol: Protocol::Tcp
            }
        );
        assert_eq!(got[1].host_ip, Some("127.0.0.1".parse().unwrap()));
        assert_eq!((got[1].host, got[1].protocol), (None, Protocol::Udp));
        assert_eq!(
            got[2].host,
            Some(PortRange {
                start: 7000,
                end: 7010
            })
        );
        assert!(specs(None, false).unwrap().is_empty());
        // `::` alone is not the IPv6 half of anything: refused.
        let v6_only =
            json!({PORT_MAP: [{"Proto": 6, "Port": 80, "HostIP": "::", "HostPort": 8080}]});
        let e = specs(v6_only.as_object(), false).unwrap_err().to_string();
        assert!(
            e.contains("IPv6 host address :: cannot be published"),
            "{e}"
        );
        let bad_proto = json!({PORT_MAP: [{"Proto": 1, "Port": 80}]});
        assert!(specs(bad_proto.as_object(), false)
            .unwrap_err()
            .to_string()
            .contains("IP protocol 1"));
    }

    #[test]
    fn on_a_dual_stack_network_ipv6_host_addresses_are_published() {
        let options = json!({PORT_MAP: [
            {"Proto": 6, "Port": 80, "HostIP": "0.0.0.0", "HostPort": 8080, "HostPortEnd": 8080},
            {"Proto": 6, "Port": 80, "HostIP": "::", "HostPort": 8080, "HostPortEnd": 8080},
            {"Proto": 6, "Port": 81, "HostIP": "2001:db8::10", "HostPort": 8081, "HostPortEnd": 8081}
        ]});
        let got = specs(options.as_object(), true).unwrap();
        // The `::` twin is in the spec on every address (both families), not a spec of its own.
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].host_ip, got[0].host),
            (None, Some(PortRange::single(8080)))
        );
        assert_eq!(got[1].host_ip, Some("2001:db8::10".parse().unwrap()));
        // On an IPv4-only network the same bindings are refused, in one line.
        let e = specs(options.as_object(), false).unwrap_err().to_string();
        assert!(
            e.contains("IPv6 host address 2001:db8::10 cannot be published (the network has no IPv6 subnet"),
            "{e}"
        );
        assert!(!e.contains('\n'));
        // `::` alone: no spec means every IPv6 address only.
        let v6_only =
            json!({PORT_MAP: [{"Proto": 6, "Port": 80, "HostIP": "::", "HostPort": 8080}]});
        let e = specs(v6_only.as_object(), true).unwrap_err().to_string();
        assert!(
            e.contains("host address :: alone cannot be published"),
            "{e}"
        );
    }

    #[test]
    fn published_ports_go_back_as_bindings() {
        let ports = [PublishedPort {
            host_ip: None,
            host: PortRange {
                start: 8080,
                end: 8081,
            },
            container: PortRange { start: 80, end: 81 },
            protocol: Protocol::Tcp,
        }];
        let got = bindings(&ports, Some("10.0.0.2".parse().unwrap()));
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[1].port, got[1].host_port, got[1].ip.as_str()),
            (81, 8081, "10.0.0.2")
        );
    }
}
