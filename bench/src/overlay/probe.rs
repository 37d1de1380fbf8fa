//! Whether a container answers yet: ICMP echo requests from inside another container's network
//! namespace, one every few milliseconds, until one is answered. A raw socket of the bench's
//! own: busybox's ping sends one a second, too coarse for a wait of up to a second.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    recv, sendto, socket, AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, SockaddrIn,
};

use crate::exec::Result;
use crate::netns;

const ECHO_REQUEST: u8 = 8;
const ECHO_REPLY: u8 = 0;

/// Sends echo requests from the namespace `from` to `to` every `every` until one is answered;
/// the instant the answer came, or an error after `within`.
pub fn until_answered(
    from: &File,
    to: Ipv4Addr,
    every: Duration,
    within: Duration,
) -> Result<Instant> {
    // A socket belongs to the namespace it was made in: the thread can leave it at once.
    let sock = netns::within(from, || {
        socket(
            AddressFamily::Inet,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            SockProtocol::Icmp,
        )
        .map_err(|e| format!("cannot open a raw ICMP socket: {e}"))
    })?;
    let id = (std::process::id() & 0xffff) as u16;
    let deadline = Instant::now() + within;
    let mut seq: u16 = 0;
    loop {
        let now = Instant::now();
        if now > deadline {
            return Err(format!("{to} did not answer within {within:?}"));
        }
        seq = seq.wrapping_add(1);
        // An unreachable network is an answer too: not the one awaited.
        let _ = sendto(
            sock.as_raw_fd(),
            &echo_request(id, seq),
            &SockaddrIn::from(SocketAddrV4::new(to, 0)),
            MsgFlags::empty(),
        );
        let next = now + every;
        while let Some(left) = next.checked_duration_since(Instant::now()) {
            if wait_readable(&sock, left)? && answered(&sock, to, id) {
                return Ok(Instant::now());
            }
        }
    }
}

fn wait_readable(sock: &OwnedFd, left: Duration) -> Result<bool> {
    let millis = u16::try_from(left.as_millis().max(1)).unwrap_or(u16::MAX);
    let mut fds = [PollFd::new(sock.as_fd(), PollFlags::POLLIN)];
    match poll(&mut fds, PollTimeout::from(millis)) {
        Ok(n) => Ok(n > 0),
        Err(nix::errno::Errno::EINTR) => Ok(false),
        Err(e) => Err(format!("poll: {e}")),
    }
}

/// Reads every datagram waiting; true if one is the echo reply from `to` to our `id`. A raw
/// ICMP socket sees every ICMP datagram of the namespace, its IP header first.
fn answered(sock: &OwnedFd, to: Ipv4Addr, id: u16) -> bool {
    let mut buf = [0u8; 1500];
    let mut found = false;
    while let Ok(n) = recv(sock.as_raw_fd(), &mut buf, MsgFlags::empty()) {
        let packet = &buf[..n];
        let Some(header_len) = packet.first().map(|b| usize::from(b & 0x0f) * 4) else {
            continue;
        };
        if n < header_len + 8 || packet[12..16] != to.octets() {
            continue;
        }
        let icmp = &packet[header_len..];
        found |= icmp[0] == ECHO_REPLY && icmp[4..6] == id.to_be_bytes();
    }
    found
}

fn echo_request(id: u16, seq: u16) -> [u8; 16] {
    let mut p = [0u8; 16];
    p[0] = ECHO_REQUEST;
    p[4..6].copy_from_slice(&id.to_be_bytes());
    p[6..8].copy_from_slice(&seq.to_be_bytes());
    p[8..].copy_from_slice(b"ocinetbn");
    let sum = checksum(&p);
    p[2..4].copy_from_slice(&sum.to_be_bytes());
    p
}

/// The Internet checksum (RFC 1071).
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_echo_request_sums_to_zero() {
        let p = echo_request(0x1234, 7);
        assert_eq!(checksum(&p), 0);
        assert_eq!(p[0], ECHO_REQUEST);
    }
}
