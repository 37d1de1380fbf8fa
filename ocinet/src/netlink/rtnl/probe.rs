//! A link's index, up state and MAC by name, through SIOCGIFINDEX, SIOCGIFFLAGS and
//! SIOCGIFHWADDR on a socket of the namespace it was opened in. Any socket serves (the kernel answers these for every family),
//! so the probe borrows the namespace's netlink socket rather than opening one of its own.
//!
//! Why not RTM_GETLINK: since Linux 6.x a GETLINK first settles the link's pending state
//! events (`linkwatch_sync_dev`: carrier, IPv6 addrconf, route updates) in the caller's time.
//! Right after a veth is created that costs more than the creation; asked this way, the kernel
//! only looks the name up and the events are settled by its own worker, after the hook is gone.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use nix::libc;

use crate::error::{Error, Result};

/// A link as the probe sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LinkState {
    pub index: u32,
    pub up: bool,
}

pub struct LinkProbe<'a>(BorrowedFd<'a>);

impl<'a> LinkProbe<'a> {
    /// A probe of the network namespace `socket` was opened in (a socket keeps it).
    pub fn on(socket: &'a impl AsFd) -> LinkProbe<'a> {
        LinkProbe(socket.as_fd())
    }

    /// The link named `name`, or `None` when there is none.
    pub(crate) fn get(&self, name: &str) -> Result<Option<LinkState>> {
        let Some(index) = self.index(name)? else {
            return Ok(None);
        };
        let Some(flags) = self.ioctl(name, libc::SIOCGIFFLAGS as libc::Ioctl)? else {
            return Ok(None);
        };
        // SAFETY: SIOCGIFFLAGS filled the union's flags member.
        let flags = unsafe { flags.ifr_ifru.ifru_flags };
        Ok(Some(LinkState {
            index,
            up: i32::from(flags) & libc::IFF_UP != 0,
        }))
    }

    /// The index of `name`, or `None` when there is none.
    pub fn index(&self, name: &str) -> Result<Option<u32>> {
        let Some(index) = self.ioctl(name, libc::SIOCGIFINDEX as libc::Ioctl)? else {
            return Ok(None);
        };
        // SAFETY: SIOCGIFINDEX filled the union's index member.
        let index = unsafe { index.ifr_ifru.ifru_ifindex };
        Ok(Some(u32::try_from(index).unwrap_or_default()))
    }

    /// The hardware address of `name`, or `None` when there is none.
    pub fn mac(&self, name: &str) -> Result<Option<[u8; 6]>> {
        let Some(req) = self.ioctl(name, libc::SIOCGIFHWADDR as libc::Ioctl)? else {
            return Ok(None);
        };
        // SAFETY: SIOCGIFHWADDR filled the union's hardware address member.
        let data = unsafe { req.ifr_ifru.ifru_hwaddr.sa_data };
        let mut mac = [0u8; 6];
        for (dst, src) in mac.iter_mut().zip(data) {
            *dst = src as u8;
        }
        Ok(Some(mac))
    }

    fn ioctl(&self, name: &str, request: libc::Ioctl) -> Result<Option<libc::ifreq>> {
        let bytes = name.as_bytes();
        if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
            return Err(Error::Netlink(format!(
                "{name:?} is not a valid interface name (1 to 15 bytes)"
            )));
        }
        // SAFETY: ifreq is plain data; all zeros is a valid value.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        for (dst, src) in req.ifr_name.iter_mut().zip(bytes) {
            *dst = *src as libc::c_char;
        }
        // SAFETY: the fd is an open socket and `req` a properly sized ifreq that outlives the call.
        let rc = unsafe { libc::ioctl(self.0.as_raw_fd(), request, &mut req) };
        if rc == 0 {
            return Ok(Some(req));
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ENODEV) => Ok(None),
            _ => Err(Error::io(format!("cannot look up link {name}"), e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::raw::RawSocket;

    fn socket() -> RawSocket {
        RawSocket::open(libc::NETLINK_ROUTE).unwrap()
    }

    #[test]
    fn loopback_is_found_and_unknown_names_are_none() {
        let socket = socket();
        let probe = LinkProbe::on(&socket);
        let lo = probe.get("lo").unwrap().unwrap();
        assert!(lo.index > 0);
        assert_eq!(probe.mac("lo").unwrap(), Some([0; 6]));
        assert_eq!(probe.mac("ocinet-nonesuch").unwrap(), None);
        assert_eq!(probe.index("ocinet-nonesuch").unwrap(), None);
    }

    #[test]
    fn names_the_kernel_cannot_hold_are_refused() {
        let socket = socket();
        let probe = LinkProbe::on(&socket);
        assert!(probe.get("").is_err());
        assert!(probe.get("sixteen-chars-xx").is_err());
        assert!(probe.get("a\0b").is_err());
    }
}
