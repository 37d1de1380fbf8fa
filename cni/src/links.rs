//! The MAC address of a link of the plugin's own (the host's) namespace, for the result: the
//! bridge and the host veth are listed with theirs, as the reference `bridge` plugin lists
//! them. One ioctl on a datagram socket (SIOCGIFHWADDR) asks the kernel for that one link; a
//! dump of every link would cost a busy host thousands of entries per ADD.

use std::net::UdpSocket;
use std::os::fd::AsRawFd;

use nix::libc;

/// `name`'s MAC as `aa:bb:cc:dd:ee:ff`, or `None` when there is no such link (a result without
/// a MAC is still a valid result: the specification makes it optional).
pub(crate) fn mac_of(name: &str) -> Option<String> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return None;
    }
    // Any socket of this namespace answers; port 0 binds nothing another process wants.
    let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
    // SAFETY: ifreq is plain data; all zeros is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    // SAFETY: the fd is an open socket and `req` a properly sized ifreq that outlives the call.
    let rc = unsafe {
        libc::ioctl(
            socket.as_raw_fd(),
            libc::SIOCGIFHWADDR as libc::Ioctl,
            &mut req,
        )
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: SIOCGIFHWADDR filled the union's hardware address member.
    let data = unsafe { req.ifr_ifru.ifru_hwaddr.sa_data };
    let mac: Vec<String> = data[..6]
        .iter()
        .map(|b| format!("{:02x}", *b as u8))
        .collect();
    Some(mac.join(":"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_that_is_not_there_has_no_mac() {
        assert_eq!(mac_of("ocinet-none0"), None);
        assert_eq!(mac_of(""), None);
        assert_eq!(mac_of("a-name-far-too-long"), None);
    }

    #[test]
    fn loopback_has_the_zero_mac() {
        assert_eq!(mac_of("lo").as_deref(), Some("00:00:00:00:00:00"));
    }
}
