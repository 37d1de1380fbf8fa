//! This host's underlay: the address its tunnels leave from (the host's identity in the
//! cluster: several hosts may share one machine, hostname and machine id), its interface and
//! the MTU the overlay's links get.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs, UdpSocket};

use ipnet::Ipv4Net;
use ocinet::network::{Overlay, Underlay, VXLAN_OVERHEAD};

use crate::error::{AgentError, Result};

#[derive(Debug, Clone)]
pub struct HostUnderlay {
    pub address: Ipv4Addr,
    pub interface: String,
    pub mtu: u32,
}

/// The address given, the first IPv4 address of the interface given, or the source address
/// this host uses to reach the first etcd endpoint; it must be an address of this host.
pub fn find(overlay: &Overlay) -> Result<HostUnderlay> {
    let (address, interface) = match &overlay.underlay {
        Some(Underlay::Address(ip)) => (*ip, interface_of(*ip)?),
        Some(Underlay::Interface(name)) => (address_of(name)?, name.clone()),
        None => {
            let ip = source_towards(&overlay.etcd.endpoints[0])?;
            (ip, interface_of(ip)?)
        }
    };
    let link_mtu = crate::vxlan::link_mtu(&crate::vxlan::Rtnl::open()?, &interface)?
        .ok_or_else(|| AgentError::Underlay(format!("underlay interface {interface} vanished")))?;
    let mtu = match overlay.mtu {
        Some(mtu) if mtu + VXLAN_OVERHEAD > link_mtu => {
            return Err(AgentError::Underlay(format!(
                "mtu {mtu} does not fit the underlay {interface} (mtu {link_mtu}) with VXLAN's {VXLAN_OVERHEAD} bytes: use at most {}",
                link_mtu.saturating_sub(VXLAN_OVERHEAD)
            )))
        }
        Some(mtu) => mtu,
        None => link_mtu.saturating_sub(VXLAN_OVERHEAD),
    };
    Ok(HostUnderlay {
        address,
        interface,
        mtu,
    })
}

/// The interface holding `ip`, which must be an address of this host.
fn interface_of(ip: Ipv4Addr) -> Result<String> {
    addresses()?
        .into_iter()
        .find(|(_, a)| *a == ip)
        .map(|(name, _)| name)
        .ok_or_else(|| {
            AgentError::Underlay(format!(
                "underlay {ip} is not an address of this host: give one of its addresses or interfaces in \"underlay\""
            ))
        })
}

fn address_of(name: &str) -> Result<Ipv4Addr> {
    addresses()?
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, ip)| ip)
        .ok_or_else(|| {
            AgentError::Underlay(format!(
                "underlay interface {name} has no IPv4 address on this host"
            ))
        })
}

/// The IPv4 subnets of `interface`'s addresses: the underlay peers that direct routing reaches
/// without a tunnel (a /32 holds no other host).
pub fn connected_subnets(interface: &str) -> Result<Vec<Ipv4Net>> {
    let all = nix::ifaddrs::getifaddrs()
        .map_err(|e| AgentError::Underlay(format!("cannot list this host's addresses: {e}")))?;
    Ok(all
        .filter(|ifa| ifa.interface_name == interface)
        .filter_map(|ifa| {
            let ip = ifa.address?.as_sockaddr_in()?.ip();
            let mask = ifa.netmask?.as_sockaddr_in()?.ip();
            let prefix = u32::from(mask).leading_ones() as u8;
            Ipv4Net::new(ip, prefix).ok().map(|net| net.trunc())
        })
        .filter(|net| net.prefix_len() < 32)
        .collect())
}

/// Every IPv4 address of this host's interfaces, with the interface's name.
fn addresses() -> Result<Vec<(String, Ipv4Addr)>> {
    let all = nix::ifaddrs::getifaddrs()
        .map_err(|e| AgentError::Underlay(format!("cannot list this host's addresses: {e}")))?;
    Ok(all
        .filter_map(|ifa| {
            let ip = ifa.address?.as_sockaddr_in()?.ip();
            Some((ifa.interface_name, ip))
        })
        .collect())
}

/// The source address of this host's route towards `endpoint` (no packet is sent).
fn source_towards(endpoint: &str) -> Result<Ipv4Addr> {
    let fail = |why: String| {
        AgentError::Underlay(format!(
            "cannot tell this host's underlay address from the route to {endpoint} ({why}): set \"underlay\" in the network file"
        ))
    };
    let host_port = endpoint
        .split_once("://")
        .map_or(endpoint, |(_, rest)| rest)
        .trim_end_matches('/');
    let target: SocketAddr = host_port
        .to_socket_addrs()
        .map_err(|e| fail(e.to_string()))?
        .find(SocketAddr::is_ipv4)
        .ok_or_else(|| fail("no IPv4 address".to_string()))?;
    let socket = UdpSocket::bind("0.0.0.0:0").map_err(|e| fail(e.to_string()))?;
    socket.connect(target).map_err(|e| fail(e.to_string()))?;
    match socket.local_addr().map_err(|e| fail(e.to_string()))?.ip() {
        IpAddr::V4(ip) if !ip.is_loopback() => Ok(ip),
        ip => Err(fail(format!("the route leaves from {ip}"))),
    }
}
