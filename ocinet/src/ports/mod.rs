//! Published ports. Here, Docker's `-p` syntax: `[hostIP:][hostPort[-end]:]containerPort[-end]
//! [/tcp|udp|sctp]`, with an IPv6 host address in brackets (`[::1]:8080:80`), pure parsing (the
//! kernel's firewall uses its types too). Beside it, who holds which host port (`claims`) and
//! specs resolved to claims and DNAT elements (`publish`).

pub(crate) mod claims;
pub mod publish;

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// The annotation that lists a container's specs (as `-p` does).
pub(crate) const PORTS_ANNOTATION: &str = "io.ocinet.ports";

/// Most specs a container may list; each one is a kernel map element or more.
const MAX_SPECS: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }

    /// The IP protocol number (what nftables' `inet_proto` holds).
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Sctp => 132,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An inclusive range of ports; a single port is `start == end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PortRange {
    pub start: u16,
    pub end: u16,
}

impl PortRange {
    pub fn single(port: u16) -> PortRange {
        PortRange {
            start: port,
            end: port,
        }
    }

    pub fn count(self) -> u32 {
        u32::from(self.end) - u32::from(self.start) + 1
    }

    pub(crate) fn is_single(self) -> bool {
        self.start == self.end
    }

    pub(crate) fn overlaps(self, other: PortRange) -> bool {
        self.start <= other.end && other.start <= self.end
    }

    pub fn ports(self) -> impl Iterator<Item = u16> {
        self.start..=self.end
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_single() {
            write!(f, "{}", self.start)
        } else {
            write!(f, "{}-{}", self.start, self.end)
        }
    }
}

/// One `-p` spec as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortSpec {
    pub host_ip: Option<IpAddr>,
    /// `None`: pick free host ports (`-p 80`, `-p 127.0.0.1::80`).
    pub host: Option<PortRange>,
    pub container: PortRange,
    pub protocol: Protocol,
}

/// A host address as a port spec writes it: `0.0.0.0` for every address, IPv6 in brackets.
pub fn host_address(host_ip: Option<IpAddr>) -> String {
    match host_ip {
        None => "0.0.0.0".to_string(),
        Some(IpAddr::V4(ip)) => ip.to_string(),
        Some(IpAddr::V6(ip)) => format!("[{ip}]"),
    }
}

/// Parses the comma-separated `io.ocinet.ports` value. The error names the bad spec.
pub fn parse_list(value: &str) -> Result<Vec<PortSpec>, String> {
    let specs: Vec<&str> = value.split(',').map(str::trim).collect();
    if specs.len() > MAX_SPECS {
        return Err(format!(
            "at most {MAX_SPECS} port specs, got {}",
            specs.len()
        ));
    }
    specs
        .into_iter()
        .map(|s| parse(s).map_err(|reason| format!("port spec {s:?}: {reason}")))
        .collect()
}

/// Parses one spec.
pub fn parse(spec: &str) -> Result<PortSpec, String> {
    if spec.is_empty() {
        return Err("empty; write e.g. 8080:80 or 127.0.0.1:5353:53/udp".to_string());
    }
    let (rest, protocol) = match spec.rsplit_once('/') {
        Some((rest, proto)) => (rest, parse_protocol(proto)?),
        None => (spec, Protocol::Tcp),
    };
    let (host_ip, rest) = split_host_ip(rest)?;
    let parts: Vec<&str> = rest.split(':').collect();
    let (host, container) = match (host_ip.is_some(), parts.as_slice()) {
        (false, [container]) => (None, *container),
        (_, [host, container]) => (Some(*host), *container),
        _ => {
            return Err(
                "too many ':'; the form is [hostIP:][hostPort:]containerPort[/protocol]"
                    .to_string(),
            )
        }
    };
    let container = parse_range(container, "container port")?;
    let host = match host {
        None => None,
        // `ip::80` asks for a free host port; a bare `:80` is a typo.
        Some("") if host_ip.is_some() => None,
        Some("") => return Err("empty host port; write 80, 8080:80 or 127.0.0.1::80".to_string()),
        Some(h) => Some(parse_range(h, "host port")?),
    };
    if let Some(h) = host {
        if !container.is_single() && h.count() != container.count() {
            return Err(format!(
                "host range {h} and container range {container} must have the same length"
            ));
        }
    }
    Ok(PortSpec {
        host_ip,
        host,
        container,
        protocol,
    })
}

fn parse_protocol(proto: &str) -> Result<Protocol, String> {
    match proto {
        "tcp" => Ok(Protocol::Tcp),
        "udp" => Ok(Protocol::Udp),
        "sctp" => Ok(Protocol::Sctp),
        other => Err(format!("unknown protocol {other:?}; use tcp, udp or sctp")),
    }
}

/// Splits off a leading host IP: `[v6]:...` or `a.b.c.d:...:...` (an IPv4 host needs two more
/// colon-separated parts, so `8080:80` is not mistaken for one).
fn split_host_ip(s: &str) -> Result<(Option<IpAddr>, &str), String> {
    if let Some(inner) = s.strip_prefix('[') {
        let (ip, rest) = inner
            .split_once(']')
            .ok_or("IPv6 host address lacks its closing ']'")?;
        let ip: std::net::Ipv6Addr = ip
            .parse()
            .map_err(|_| format!("{ip:?} is not an IPv6 address"))?;
        let rest = rest
            .strip_prefix(':')
            .ok_or("write the IPv6 host address as [addr]:hostPort:containerPort")?;
        return Ok((Some(IpAddr::V6(ip)), rest));
    }
    match s.split(':').collect::<Vec<_>>().as_slice() {
        [ip, _, _] => {
            let addr: IpAddr = ip
                .parse()
                .map_err(|_| format!("host address {ip:?} is not an IP address"))?;
            if addr.is_ipv6() {
                return Err("write an IPv6 host address in brackets: [::1]:8080:80".to_string());
            }
            Ok((Some(addr), &s[ip.len() + 1..]))
        }
        _ => Ok((None, s)),
    }
}

fn parse_range(s: &str, what: &str) -> Result<PortRange, String> {
    let (start, end) = match s.split_once('-') {
        Some((a, b)) => (parse_port(a, what)?, parse_port(b, what)?),
        None => {
            let p = parse_port(s, what)?;
            (p, p)
        }
    };
    if start > end {
        return Err(format!("{what} range {s} ends before it starts"));
    }
    Ok(PortRange { start, end })
}

fn parse_port(s: &str, what: &str) -> Result<u16, String> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{what} {s:?} is not a number from 1 to 65535"));
    }
    match s.parse::<u32>() {
        Ok(p @ 1..=65535) => Ok(p as u16),
        _ => Err(format!("{what} {s} is not from 1 to 65535")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(a: u16, b: u16) -> PortRange {
        PortRange { start: a, end: b }
    }

    #[test]
    fn docker_forms() {
        let p = parse("8080:80").unwrap();
        assert_eq!(
            (p.host_ip, p.host, p.container, p.protocol),
            (None, Some(range(8080, 8080)), range(80, 80), Protocol::Tcp)
        );
        let p = parse("127.0.0.1:5353:53/udp").unwrap();
        assert_eq!(p.host_ip, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(
            (p.host, p.container, p.protocol),
            (Some(range(5353, 5353)), range(53, 53), Protocol::Udp)
        );
        let p = parse("9000-9009:9000-9009").unwrap();
        assert_eq!(
            (p.host, p.container),
            (Some(range(9000, 9009)), range(9000, 9009))
        );
        let p = parse("80").unwrap();
        assert_eq!(
            (p.host_ip, p.host, p.container),
            (None, None, range(80, 80))
        );
        let p = parse("7000-7010:80").unwrap();
        assert_eq!(
            (p.host, p.container),
            (Some(range(7000, 7010)), range(80, 80))
        );
        let p = parse("[::1]:8080:80").unwrap();
        assert_eq!(p.host_ip, Some("::1".parse().unwrap()));
        assert_eq!(p.host, Some(range(8080, 8080)));
        let p = parse("127.0.0.1::80/sctp").unwrap();
        assert_eq!((p.host, p.protocol), (None, Protocol::Sctp));
        let p = parse("[fe80::1]::53/udp").unwrap();
        assert_eq!(p.host, None);
        let p = parse("8000-8009").unwrap();
        assert_eq!((p.host, p.container), (None, range(8000, 8009)));
        let p = parse("65535:1").unwrap();
        assert_eq!(p.host, Some(range(65535, 65535)));
    }

    #[test]
    fn lists() {
        let specs = parse_list("8080:80, 5353:53/udp,9000-9001:9000-9001").unwrap();
        assert_eq!(specs.len(), 3);
        let err = parse_list("8080:80,80:x").unwrap_err();
        assert!(err.contains("\"80:x\""), "{err}");
        assert!(parse_list(&vec!["80"; 300].join(",")).is_err());
    }

    #[test]
    fn malformed_specs() {
        for bad in [
            "",
            "0",
            "65536",
            "-1",
            "80:",
            ":80",
            "abc",
            "80/icmp",
            "80/TCP",
            "80/",
            "8080:80:80:80",
            "9000-9005:9000-9009",
            "9000:9000-9009",
            "9009-9000:80",
            "300.0.0.1:80:80",
            "::1:8080:80",
            "[::1:8080:80",
            "[zz]:8080:80",
            "[::1]8080:80",
            "localhost:8080:80",
            "80-",
            "1-2-3:80",
            "123456:80",
            "+80",
            " 80",
        ] {
            assert!(parse(bad).is_err(), "accepted {bad:?}");
        }
    }
}
