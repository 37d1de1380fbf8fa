//! A plain netlink socket: a buffer of one or more messages goes to the kernel, the answers
//! come back message by message. It carries the rtnetlink crate's messages (`batch`) and
//! what that crate does not cover (nf_tables batches, netconf), with no async runtime.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::libc;

/// Size of a netlink message header (struct nlmsghdr).
pub(crate) const HEADER_LEN: usize = 16;

pub struct RawSocket {
    fd: OwnedFd,
}

impl AsFd for RawSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl RawSocket {
    /// A socket of netlink family `protocol` (NETLINK_*), in the calling thread's namespace.
    pub fn open(protocol: libc::c_int) -> io::Result<RawSocket> {
        // SAFETY: plain socket(2); the descriptor is owned right away.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                protocol,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor nobody else owns.
        Ok(RawSocket {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Sends `buf` (one or more messages) to the kernel in one datagram.
    pub fn send(&self, buf: &[u8]) -> io::Result<()> {
        // SAFETY: an all-zero sockaddr_nl addresses the kernel.
        let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        kernel.nl_family = libc::AF_NETLINK as u16;
        // SAFETY: buf and the address are valid for the call.
        let sent = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                buf.as_ptr().cast(),
                buf.len(),
                0,
                (&kernel as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        if sent as usize != buf.len() {
            return Err(io::Error::other("short send of a netlink message"));
        }
        Ok(())
    }

    /// Reads answers and hands each message (type, whole message) to `each` until it returns
    /// a value.
    pub(crate) fn receive<T>(
        &self,
        mut each: impl FnMut(u16, &[u8]) -> io::Result<Option<T>>,
    ) -> io::Result<T> {
        let mut buf = vec![0u8; 8192];
        loop {
            // SAFETY: buf is valid for its length.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            let n = n as usize;
            let mut at = 0usize;
            while at + HEADER_LEN <= n {
                let len = u32_at(&buf, at) as usize;
                let kind = u16::from_ne_bytes([buf[at + 4], buf[at + 5]]);
                if len < HEADER_LEN || at + len > n {
                    return Err(io::Error::other("malformed netlink answer"));
                }
                if let Some(done) = each(kind, &buf[at..at + len])? {
                    return Ok(done);
                }
                at += (len + 3) & !3;
            }
        }
    }
}

/// The errno an NLMSG_ERROR message carries (0 for an acknowledgement); `None` for any other
/// message.
pub(crate) fn error_code(kind: u16, msg: &[u8]) -> Option<i32> {
    (kind == libc::NLMSG_ERROR as u16 && msg.len() >= HEADER_LEN + 4)
        .then(|| u32_at(msg, HEADER_LEN) as i32)
}

/// The sequence number of a message (its header's).
pub(crate) fn sequence(msg: &[u8]) -> u32 {
    u32_at(msg, 8)
}

/// The header of a request: length (filled in by [`finish`]), type, flags besides REQUEST, seq.
pub(crate) fn begin(buf: &mut Vec<u8>, msg_type: u16, flags: u16, seq: u32) -> usize {
    let start = buf.len();
    buf.extend(0u32.to_ne_bytes());
    buf.extend(msg_type.to_ne_bytes());
    buf.extend((flags | libc::NLM_F_REQUEST as u16).to_ne_bytes());
    buf.extend(seq.to_ne_bytes());
    buf.extend(0u32.to_ne_bytes());
    start
}

/// Writes the length of the message begun at `start` and pads it.
pub(crate) fn finish(buf: &mut Vec<u8>, start: usize) {
    let len = (buf.len() - start) as u32;
    buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
    pad(buf);
}

pub(crate) fn attr(buf: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    buf.extend(((4 + payload.len()) as u16).to_ne_bytes());
    buf.extend(kind.to_ne_bytes());
    buf.extend(payload);
    pad(buf);
}

/// The attributes of `payload` (type without flag bits, value), as far as they are well formed.
pub fn attributes(mut payload: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if payload.len() < 4 {
            return None;
        }
        let len = usize::from(u16::from_ne_bytes([payload[0], payload[1]]));
        let kind = u16::from_ne_bytes([payload[2], payload[3]]) & 0x3fff;
        if len < 4 || len > payload.len() {
            return None;
        }
        let value = &payload[4..len];
        payload = &payload[((len + 3) & !3).min(payload.len())..];
        Some((kind, value))
    })
}

fn pad(buf: &mut Vec<u8>) {
    while !buf.len().is_multiple_of(4) {
        buf.push(0);
    }
}

fn u32_at(buf: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_framed_and_its_attributes_read_back() {
        let mut b = Vec::new();
        let start = begin(&mut b, 82, 0, 7);
        b.extend([2, 0, 0, 0]);
        attr(&mut b, 1, &(-1i32).to_ne_bytes());
        attr(&mut b, 2, &[9]);
        finish(&mut b, start);
        assert_eq!(b.len(), 16 + 4 + 8 + 8);
        assert_eq!(u32_at(&b, 0) as usize, b.len());
        let attrs: Vec<_> = attributes(&b[20..]).collect();
        assert_eq!(
            attrs,
            vec![(1, &(-1i32).to_ne_bytes()[..]), (2, &[9u8][..])]
        );
    }

    #[test]
    fn malformed_attributes_end_the_walk() {
        assert_eq!(attributes(&[8, 0, 1, 0, 1]).count(), 0);
        assert_eq!(attributes(&[2, 0, 1, 0]).count(), 0);
    }

    #[test]
    fn error_codes_come_only_from_error_messages() {
        let mut msg = vec![0u8; 20];
        msg[16..20].copy_from_slice(&(-19i32).to_ne_bytes());
        assert_eq!(error_code(libc::NLMSG_ERROR as u16, &msg), Some(-19));
        assert_eq!(error_code(80, &msg), None);
    }
}
