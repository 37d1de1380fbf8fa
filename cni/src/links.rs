//! The MAC address of a link of the plugin's own (the host's) namespace, for the result: the
//! bridge and the host veth are listed with theirs, as the reference `bridge` plugin lists
//! them. One ioctl for that one link (the library's `LinkProbe`); a dump of every link would
//! cost a busy host thousands of entries per ADD.

use std::net::UdpSocket;

use ocinet::netlink::rtnl::probe::LinkProbe;
use ocinet::overlay::state::format_mac;

/// `name`'s MAC as `aa:bb:cc:dd:ee:ff`, or `None` when there is no such link or it cannot be
/// asked (a result without a MAC is still a valid result: the specification makes it
/// optional).
pub(crate) fn mac_of(name: &str) -> Option<String> {
    // Any socket of this namespace answers; port 0 binds nothing another process wants.
    let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
    let mac = LinkProbe::on(&socket).mac(name).ok()??;
    Some(format_mac(mac))
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
