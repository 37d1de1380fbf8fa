//! UDP datagrams in batches: up to [`BATCH`] received with one `recvmmsg` and answered with one
//! `sendmmsg`. Under load a question costs a fraction of two system calls instead of two (and
//! no wakeup of an async task): the CPU a query takes is what limits a resolver sharing its
//! cores with the containers that ask it. The buffers are made once and used again.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd};

use nix::libc;

/// Datagrams per system call.
pub const BATCH: usize = 32;
/// Room per question: a UDP question is far smaller (a longer one is cut, as a plain receive
/// into this much would cut it).
const SLOT: usize = 4096;

/// Where a datagram came from, as the kernel gave it (sent back to as is) and as an address.
#[derive(Clone, Copy)]
pub struct Peer {
    raw: libc::sockaddr_storage,
    len: libc::socklen_t,
    pub addr: SocketAddr,
}

impl Peer {
    /// The address of what `recvmmsg` wrote; `None` for a family other than IPv4 and IPv6.
    fn parse(raw: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<Peer> {
        let addr = match i32::from(raw.ss_family) {
            libc::AF_INET if len as usize >= size_of::<libc::sockaddr_in>() => {
                // SAFETY: the family and length say it is a sockaddr_in.
                let sin = unsafe { &*(raw as *const _ as *const libc::sockaddr_in) };
                SocketAddr::V4(SocketAddrV4::new(
                    Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
                    u16::from_be(sin.sin_port),
                ))
            }
            libc::AF_INET6 if len as usize >= size_of::<libc::sockaddr_in6>() => {
                // SAFETY: the family and length say it is a sockaddr_in6.
                let sin6 = unsafe { &*(raw as *const _ as *const libc::sockaddr_in6) };
                SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                    u16::from_be(sin6.sin6_port),
                    sin6.sin6_flowinfo,
                    sin6.sin6_scope_id,
                ))
            }
            _ => return None,
        };
        Some(Peer {
            raw: *raw,
            len,
            addr,
        })
    }
}

/// Received datagrams: their bytes and senders.
pub struct Inbox {
    bufs: Vec<[u8; SLOT]>,
    names: Vec<libc::sockaddr_storage>,
    iovs: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
    count: usize,
}

impl Inbox {
    pub fn new() -> Inbox {
        Inbox {
            bufs: vec![[0u8; SLOT]; BATCH],
            // SAFETY (both): all-zero is valid for these C structs; pointers are set per call.
            names: vec![unsafe { zeroed() }; BATCH],
            iovs: vec![unsafe { zeroed() }; BATCH],
            headers: vec![unsafe { zeroed() }; BATCH],
            count: 0,
        }
    }

    /// Waits for at least one datagram on `socket` (a blocking one), then takes what else is
    /// already there without waiting (`MSG_WAITFORONE`), up to [`BATCH`]. Returns how many.
    pub fn receive(&mut self, socket: &impl AsFd) -> io::Result<usize> {
        for i in 0..BATCH {
            self.iovs[i] = libc::iovec {
                iov_base: self.bufs[i].as_mut_ptr().cast(),
                iov_len: SLOT,
            };
            let h = &mut self.headers[i].msg_hdr;
            h.msg_name = (&mut self.names[i] as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_iov = &mut self.iovs[i];
            h.msg_iovlen = 1;
            h.msg_control = std::ptr::null_mut();
            h.msg_controllen = 0;
            h.msg_flags = 0;
            self.headers[i].msg_len = 0;
        }
        self.count = 0;
        loop {
            // SAFETY: every header points into this inbox's buffers, which outlive the call.
            let n = unsafe {
                libc::recvmmsg(
                    socket.as_fd().as_raw_fd(),
                    self.headers.as_mut_ptr(),
                    BATCH as libc::c_uint,
                    libc::MSG_WAITFORONE,
                    std::ptr::null_mut(),
                )
            };
            if n >= 0 {
                self.count = n as usize;
                return Ok(self.count);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    /// Datagram `i` of the last [`Inbox::receive`]: its bytes and sender (`None` past the
    /// count, or from an address that is not IP).
    pub fn get(&self, i: usize) -> Option<(&[u8], Peer)> {
        if i >= self.count {
            return None;
        }
        let h = &self.headers[i];
        let peer = Peer::parse(&self.names[i], h.msg_hdr.msg_namelen)?;
        let len = (h.msg_len as usize).min(SLOT);
        Some((&self.bufs[i][..len], peer))
    }
}

/// Answers gathered for one `sendmmsg`.
pub struct Outbox {
    bufs: Vec<Vec<u8>>,
    peers: Vec<libc::sockaddr_storage>,
    lens: Vec<libc::socklen_t>,
    iovs: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
    count: usize,
}

impl Outbox {
    pub fn new() -> Outbox {
        Outbox {
            bufs: (0..BATCH).map(|_| Vec::with_capacity(512)).collect(),
            // SAFETY (all three): all-zero is valid for these C structs; pointers are set per
            // call.
            peers: vec![unsafe { zeroed() }; BATCH],
            lens: vec![0; BATCH],
            iovs: vec![unsafe { zeroed() }; BATCH],
            headers: vec![unsafe { zeroed() }; BATCH],
            count: 0,
        }
    }

    /// An empty buffer for the next answer, to `peer`; `None` when the box is full (a box
    /// holds as many as an inbox, so one batch of questions always fits).
    pub fn next(&mut self, peer: &Peer) -> Option<&mut Vec<u8>> {
        let i = self.count;
        let buf = self.bufs.get_mut(i)?;
        buf.clear();
        self.peers[i] = peer.raw;
        self.lens[i] = peer.len;
        self.count += 1;
        Some(buf)
    }

    /// Sends every answer gathered and empties the box. An answer the kernel refuses (an
    /// unreachable asker, a full buffer) is dropped, as one datagram would be: the asker asks
    /// again.
    pub fn send(&mut self, socket: &impl AsFd) {
        let count = std::mem::take(&mut self.count);
        for i in 0..count {
            self.iovs[i] = libc::iovec {
                iov_base: self.bufs[i].as_mut_ptr().cast(),
                iov_len: self.bufs[i].len(),
            };
            let h = &mut self.headers[i].msg_hdr;
            h.msg_name = (&mut self.peers[i] as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = self.lens[i];
            h.msg_iov = &mut self.iovs[i];
            h.msg_iovlen = 1;
            h.msg_control = std::ptr::null_mut();
            h.msg_controllen = 0;
            h.msg_flags = 0;
        }
        let mut at = 0;
        while at < count {
            // SAFETY: headers `at..count` point into this box's buffers, alive for the call.
            let n = unsafe {
                libc::sendmmsg(
                    socket.as_fd().as_raw_fd(),
                    self.headers[at..].as_mut_ptr(),
                    (count - at) as libc::c_uint,
                    0,
                )
            };
            if n > 0 {
                at += n as usize;
            } else if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                // The first one failed: skip it, send the rest.
                at += 1;
            }
        }
    }
}

/// Sends one datagram without waiting (the socket blocks for its batches' thread): a
/// forwarded answer, from an async task. Dropped if the kernel has no room.
pub fn send_now(socket: &impl AsFd, bytes: &[u8], peer: &Peer) -> io::Result<()> {
    // SAFETY: the buffer and address are valid for the call's length.
    let n = unsafe {
        libc::sendto(
            socket.as_fd().as_raw_fd(),
            bytes.as_ptr().cast(),
            bytes.len(),
            libc::MSG_DONTWAIT,
            (&peer.raw as *const libc::sockaddr_storage).cast(),
            peer.len,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::time::Duration;

    #[test]
    fn a_batch_in_and_its_answers_out_to_each_sender() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let at = server.local_addr().unwrap();
        let clients: Vec<UdpSocket> = (0..3)
            .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        for (i, c) in clients.iter().enumerate() {
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            c.send_to(&[i as u8; 5], at).unwrap();
            c.send_to(&[i as u8 + 10; 7], at).unwrap();
        }
        let (mut inbox, mut outbox) = (Inbox::new(), Outbox::new());
        let mut seen = 0;
        while seen < 6 {
            let n = inbox.receive(&server).unwrap();
            for i in 0..n {
                let (bytes, peer) = inbox.get(i).unwrap();
                let bytes = bytes.to_vec();
                let buf = outbox.next(&peer).unwrap();
                buf.extend_from_slice(&bytes);
                buf.push(0xff);
            }
            assert!(inbox.get(n).is_none());
            outbox.send(&server);
            seen += n;
        }
        for (i, c) in clients.iter().enumerate() {
            let mut buf = [0u8; 64];
            let n = c.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], &[[i as u8; 5].as_slice(), &[0xff]].concat()[..]);
            let n = c.recv(&mut buf).unwrap();
            assert_eq!(
                &buf[..n],
                &[[i as u8 + 10; 7].as_slice(), &[0xff]].concat()[..]
            );
        }
        // One at a time, to a sender of a batch.
        clients[1].send_to(b"?", at).unwrap();
        assert_eq!(inbox.receive(&server).unwrap(), 1);
        let (_, peer) = inbox.get(0).unwrap();
        assert_eq!(peer.addr, clients[1].local_addr().unwrap());
        send_now(&server, b"once", &peer).unwrap();
        let mut buf = [0u8; 8];
        let n = clients[1].recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"once");
    }

    #[test]
    fn a_full_outbox_says_so() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client.send_to(b"?", server.local_addr().unwrap()).unwrap();
        let mut inbox = Inbox::new();
        assert_eq!(inbox.receive(&server).unwrap(), 1);
        let (_, peer) = inbox.get(0).unwrap();
        let mut outbox = Outbox::new();
        for _ in 0..BATCH {
            assert!(outbox.next(&peer).is_some());
        }
        assert!(outbox.next(&peer).is_none());
    }
}
