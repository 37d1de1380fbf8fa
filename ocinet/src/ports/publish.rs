//! Published ports: from `-p` specs to host-port claims and DNAT map elements.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::host::naming::stable_hash;
use crate::host::sysctl;
use crate::kernel::firewall::DnatElement;
use crate::ports::claims::ClaimTxn;
use crate::ports::PORTS_ANNOTATION;
use crate::ports::{PortRange, PortSpec, Protocol};

/// A port mapping as set up: host and container ranges of equal length.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedPort {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<IpAddr>,
    pub host: PortRange,
    pub container: PortRange,
    pub protocol: Protocol,
}

/// Turns specs into concrete mappings: fixed host ports as given, a free one picked from a host
/// range (`7000-7010:80`) or from the ephemeral range (`80`; `ephemeral` is asked only then).
/// Checks claims; writes nothing.
pub(crate) fn resolve(
    txn: &ClaimTxn,
    specs: &[PortSpec],
    id: &str,
    boot_id: &str,
    ephemeral: &dyn Fn() -> PortRange,
) -> Result<Vec<PublishedPort>> {
    let mut out: Vec<PublishedPort> = Vec::new();
    for spec in specs {
        let host_ip = match spec.host_ip {
            // The kernel routes no packet from ::1 out of `lo` (IPv6 has no route_localnet):
            // DNATed to a container, it would vanish; refused rather than a silent time-out.
            Some(IpAddr::V6(ip)) if ip.is_loopback() => {
                return Err(Error::Annotation {
                    key: PORTS_ANNOTATION,
                    value: format!("[{ip}]"),
                    reason: "Linux cannot forward IPv6 loopback traffic to a container; publish on [::] or 127.0.0.1 instead".to_string(),
                })
            }
            other => other,
        };
        let free = |range: PortRange| -> Result<bool> {
            for port in range.ports() {
                if txn
                    .holder(spec.protocol, port, host_ip, id, boot_id)?
                    .is_some()
                {
                    return Ok(false);
                }
            }
            // Two specs of this container may not overlap either.
            Ok(!out.iter().any(|p| {
                p.protocol == spec.protocol
                    && p.host.overlaps(range)
                    && (p.host_ip.is_none() || host_ip.is_none() || p.host_ip == host_ip)
            }))
        };
        let host = match spec.host {
            Some(h) if h.count() == spec.container.count() => {
                // Fixed host ports: only these need checking; picked ones are free by choice.
                if !free(h)? {
                    let holder = h
                        .ports()
                        .find_map(|p| {
                            txn.holder(spec.protocol, p, host_ip, id, boot_id)
                                .ok()
                                .flatten()
                        })
                        .unwrap_or_else(|| format!("{id} (two of its own specs overlap)"));
                    return Err(Error::PortTaken {
                        spec: format!(
                            "{}:{h}/{}",
                            crate::ports::host_address(host_ip),
                            spec.protocol
                        ),
                        holder,
                    });
                }
                h
            }
            // A host range for one container port: the first free port of it.
            Some(h) => pick(h, 1, 0, &free)?.ok_or_else(|| Error::PortTaken {
                spec: format!("{h}/{}", spec.protocol),
                holder: "other containers (every port of the range)".to_string(),
            })?,
            None => {
                let ephemeral = ephemeral();
                let offset = (stable_hash(format!("{id}/{}", out.len()).as_bytes())
                    % u64::from(ephemeral.count())) as u32;
                pick(ephemeral, spec.container.count(), offset, &free)?.ok_or_else(|| {
                    Error::PortTaken {
                        spec: format!("{ephemeral}/{}", spec.protocol),
                        holder: "other containers (no free ephemeral port)".to_string(),
                    }
                })?
            }
        };
        out.push(PublishedPort {
            host_ip,
            host,
            container: spec.container,
            protocol: spec.protocol,
        });
    }
    Ok(out)
}

/// The first block of `len` free ports in `range`, scanning from `offset` (wrapping).
fn pick(
    range: PortRange,
    len: u32,
    offset: u32,
    free: &dyn Fn(PortRange) -> Result<bool>,
) -> Result<Option<PortRange>> {
    let slots = range.count().saturating_sub(len) + 1;
    if len > range.count() {
        return Ok(None);
    }
    for i in 0..slots {
        let start = u32::from(range.start) + (offset + i) % slots;
        let candidate = PortRange {
            start: start as u16,
            end: (start + len - 1) as u16,
        };
        if free(candidate)? {
            return Ok(Some(candidate));
        }
    }
    Ok(None)
}

/// The DNAT elements that publish `ports` to the container's `addresses` (one per family): a
/// port on every host address goes to each, one on a host address to the container's address
/// of that family; one element per mapping when the port numbers are the same on both sides
/// (the kernel keeps the port), else one per port.
pub(crate) fn dnat_elements(ports: &[PublishedPort], addresses: &[IpAddr]) -> Vec<DnatElement> {
    let mut out = Vec::new();
    for &address in addresses {
        let of_family: Vec<PublishedPort> = ports
            .iter()
            .filter(|p| p.host_ip.is_none_or(|ip| ip.is_ipv6() == address.is_ipv6()))
            .cloned()
            .collect();
        out.extend(elements_to(&of_family, address));
    }
    out
}

/// A port's host address that the container has no address of the same family for: nothing
/// could answer there (an IPv6 host address on an IPv4-only network, or the reverse).
pub(crate) fn unreachable_host_address(
    ports: &[PublishedPort],
    addresses: &[IpAddr],
) -> Option<IpAddr> {
    ports
        .iter()
        .filter_map(|p| p.host_ip)
        .find(|ip| !addresses.iter().any(|a| a.is_ipv6() == ip.is_ipv6()))
}

fn elements_to(ports: &[PublishedPort], address: IpAddr) -> Vec<DnatElement> {
    let mut out = Vec::new();
    for p in ports {
        if p.host == p.container {
            out.push(DnatElement {
                host_ip: p.host_ip,
                protocol: p.protocol,
                ports: p.host,
                target: address,
                target_port: None,
            });
        } else {
            for (h, c) in p.host.ports().zip(p.container.ports()) {
                out.push(DnatElement {
                    host_ip: p.host_ip,
                    protocol: p.protocol,
                    ports: PortRange { start: h, end: h },
                    target: address,
                    target_port: Some(c),
                });
            }
        }
    }
    out
}

/// The host's ephemeral port range (`net.ipv4.ip_local_port_range`), Linux's default if unreadable.
pub(crate) fn ephemeral_range() -> PortRange {
    sysctl::read("ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().filter_map(|p| p.parse::<u16>().ok());
            Some(PortRange {
                start: it.next()?,
                end: it.next()?,
            })
        })
        .filter(|r| r.start >= 1 && r.start <= r.end)
        .unwrap_or(PortRange {
            start: 32768,
            end: 60999,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::firewall::DnatMap;

    #[test]
    fn elements_per_mapping_kind() {
        let ip = IpAddr::from([172, 17, 0, 2]);
        let same = PublishedPort {
            host_ip: None,
            host: PortRange {
                start: 9000,
                end: 9999,
            },
            container: PortRange {
                start: 9000,
                end: 9999,
            },
            protocol: Protocol::Tcp,
        };
        let shifted = PublishedPort {
            host_ip: Some(IpAddr::from([127, 0, 0, 1])),
            host: PortRange {
                start: 5353,
                end: 5354,
            },
            container: PortRange { start: 53, end: 54 },
            protocol: Protocol::Udp,
        };
        let els = dnat_elements(&[same, shifted], &[ip]);
        assert_eq!(els.len(), 3);
        assert_eq!(els[0].key(), "0.0.0.0/0 . tcp . 9000-9999");
        assert_eq!(els[0].value(), "172.17.0.2");
        assert_eq!(els[0].map(), DnatMap::Addr);
        assert_eq!(els[2].key(), "127.0.0.1 . udp . 5354");
        assert_eq!(els[2].value(), "172.17.0.2 . 54");
        assert_eq!(els[2].map(), DnatMap::Port);
        // What the kernel stores: ipv4 . proto (padded to 4) . port (big-endian, padded).
        assert_eq!(
            els[2].key_bytes(),
            [127, 0, 0, 1, 17, 0, 0, 0, 0x14, 0xea, 0, 0]
        );
        assert_eq!(els[2].key_end_bytes(), Some(els[2].key_bytes()));
        assert_eq!(els[2].data_bytes(), [172, 17, 0, 2, 0, 54, 0, 0]);
        assert_eq!(
            els[0].key_bytes(),
            [0, 0, 0, 0, 6, 0, 0, 0, 0x23, 0x28, 0, 0]
        );
        assert_eq!(
            els[0].key_end_bytes(),
            Some(vec![255, 255, 255, 255, 6, 0, 0, 0, 0x27, 0x0f, 0, 0])
        );
        assert_eq!(els[0].data_bytes(), [172, 17, 0, 2]);
    }

    #[test]
    fn one_port_on_every_address_is_an_exact_key_with_the_port_in_the_value() {
        let ip = IpAddr::from([172, 17, 0, 2]);
        let port = |host: u16, container: u16| PublishedPort {
            host_ip: None,
            host: PortRange::single(host),
            container: PortRange::single(container),
            protocol: Protocol::Tcp,
        };
        let els = dnat_elements(&[port(8080, 80), port(9000, 9000)], &[ip]);
        assert!(els.iter().all(|e| e.map() == DnatMap::Any));
        assert_eq!(els[0].key(), "tcp . 8080");
        assert_eq!(els[0].key_bytes(), [6, 0, 0, 0, 0x1f, 0x90, 0, 0]);
        assert_eq!(els[0].key_end_bytes(), None);
        assert_eq!(els[0].data_bytes(), [172, 17, 0, 2, 0, 80, 0, 0]);
        // The same number on both sides still names the port: the map's values all have one.
        assert_eq!(els[1].value(), "172.17.0.2 . 9000");
        assert_eq!(els[1].data_bytes(), [172, 17, 0, 2, 0x23, 0x28, 0, 0]);
    }
}
