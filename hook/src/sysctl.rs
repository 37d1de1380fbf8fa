//! Kernel network settings under /proc/sys/net, of the namespace the calling thread is in.
//! Link names reach here validated (no '/' or '..'), so every path stays in /proc/sys/net.

use std::fs;
use std::io;

use crate::error::{Error, Result};

const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

/// Turns IPv4 forwarding on (read first: it is on after the first container).
pub fn enable_ip_forward() -> Result<()> {
    ensure(IP_FORWARD).map_err(|e| Error::io("cannot enable IPv4 forwarding", e))
}

/// Lets `link` route packets with loopback sources (127.0.0.1:<port> DNATed out of a bridge).
pub fn enable_route_localnet(link: &str) -> Result<()> {
    ensure(&format!("/proc/sys/net/ipv4/conf/{link}/route_localnet"))
        .map_err(|e| Error::io(format!("cannot enable route_localnet on {link}"), e))
}

/// Turns IPv6 off on `link`, a link just made and not yet carrying traffic. A kernel without
/// IPv6 has no such setting: nothing to turn off.
pub fn disable_ipv6(link: &str) -> Result<()> {
    match fs::write(format!("/proc/sys/net/ipv6/conf/{link}/disable_ipv6"), "1") {
        Err(e) if e.kind() == io::ErrorKind::NotFound && !ipv6_present() => Ok(()),
        other => other.map_err(|e| Error::io(format!("cannot turn IPv6 off on {link}"), e)),
    }
}

fn ipv6_present() -> bool {
    fs::exists("/proc/sys/net/ipv6").unwrap_or(true)
}

/// Sets the switch at `path` to 1 unless it already is.
fn ensure(path: &str) -> io::Result<()> {
    if fs::read_to_string(path).is_ok_and(|v| v.trim() == "1") {
        return Ok(());
    }
    fs::write(path, "1")
}
