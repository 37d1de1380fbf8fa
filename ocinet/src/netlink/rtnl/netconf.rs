//! Whether the kernel forwards IPv4 (IPv6), asked over rtnetlink (RTM_GETNETCONF), not read
//! from /proc/sys.
//!
//! Why not /proc/sys/net/ipv4/ip_forward: the kernel keeps an `ipv4` entry below /proc/sys/net
//! for every network namespace that has looked there, all on one hash chain, and each lookup
//! walks that chain, checking each entry's namespace. Where runtimes set sysctls inside every
//! container (CNI's bridge plugin and netavark do), that is one entry per container on the
//! machine: at 2,000 containers a lookup cost more than the rest of a setup.

use std::io;

use nix::libc;

use crate::netlink::raw::{self, RawSocket};

const RTM_NEWNETCONF: u16 = 80;
const RTM_GETNETCONF: u16 = 82;
const NETCONFA_IFINDEX: u16 = 1;
const NETCONFA_FORWARDING: u16 = 2;
/// NETCONFA_IFINDEX_ALL: the namespace-wide setting (`net.ipv4.conf.all`, which
/// `net.ipv4.ip_forward` is; `net.ipv6.conf.all`).
const IFINDEX_ALL: i32 = -1;
/// struct netconfmsg: the family, padded to 4 bytes.
const NETCONFMSG_LEN: usize = 4;

/// `net.ipv4.ip_forward` of the namespace of `socket` (a NETLINK_ROUTE socket).
pub(crate) fn ipv4_forwarding(socket: &RawSocket) -> io::Result<bool> {
    forwarding_of(socket, libc::AF_INET as u8)
}

/// `net.ipv6.conf.all.forwarding` of the namespace of `socket`.
pub(crate) fn ipv6_forwarding(socket: &RawSocket) -> io::Result<bool> {
    forwarding_of(socket, libc::AF_INET6 as u8)
}

fn forwarding_of(socket: &RawSocket, family: u8) -> io::Result<bool> {
    socket.send(&request(family))?;
    socket.receive(|kind, msg| {
        if let Some(code) = raw::error_code(kind, msg) {
            return Err(io::Error::from_raw_os_error(-code));
        }
        if kind != RTM_NEWNETCONF {
            return Ok(None);
        }
        forwarding(msg).map(Some)
    })
}

fn request(family: u8) -> Vec<u8> {
    let mut buf = Vec::with_capacity(32);
    let start = raw::begin(&mut buf, RTM_GETNETCONF, 0, 1);
    buf.extend([family, 0, 0, 0]);
    raw::attr(&mut buf, NETCONFA_IFINDEX, &IFINDEX_ALL.to_ne_bytes());
    raw::finish(&mut buf, start);
    buf
}

/// NETCONFA_FORWARDING of an RTM_NEWNETCONF message.
fn forwarding(msg: &[u8]) -> io::Result<bool> {
    let attrs = msg
        .get(raw::HEADER_LEN + NETCONFMSG_LEN..)
        .unwrap_or_default();
    raw::attributes(attrs)
        .find(|(kind, _)| *kind == NETCONFA_FORWARDING)
        .and_then(|(_, value)| value.try_into().ok())
        .map(|v: [u8; 4]| i32::from_ne_bytes(v) != 0)
        .ok_or_else(|| io::Error::other("the kernel's netconf answer has no forwarding setting"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(forwarding: Option<i32>) -> Vec<u8> {
        let mut buf = Vec::new();
        let start = raw::begin(&mut buf, RTM_NEWNETCONF, 0, 1);
        buf.extend([libc::AF_INET as u8, 0, 0, 0]);
        raw::attr(&mut buf, NETCONFA_IFINDEX, &IFINDEX_ALL.to_ne_bytes());
        if let Some(f) = forwarding {
            raw::attr(&mut buf, NETCONFA_FORWARDING, &f.to_ne_bytes());
        }
        raw::finish(&mut buf, start);
        buf
    }

    #[test]
    fn the_request_asks_for_the_namespace_wide_ipv4_setting() {
        let r = request(libc::AF_INET as u8);
        assert_eq!(r.len(), 28);
        assert_eq!(u16::from_ne_bytes([r[4], r[5]]), RTM_GETNETCONF);
        assert_eq!(r[16], libc::AF_INET as u8);
        assert_eq!(
            i32::from_ne_bytes([r[24], r[25], r[26], r[27]]),
            IFINDEX_ALL
        );
        assert_eq!(request(libc::AF_INET6 as u8)[16], libc::AF_INET6 as u8);
    }

    #[test]
    fn forwarding_is_read_from_the_answer() {
        assert!(forwarding(&answer(Some(1))).unwrap());
        assert!(!forwarding(&answer(Some(0))).unwrap());
        assert!(forwarding(&answer(None)).is_err());
    }
}
