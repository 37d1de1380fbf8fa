//! Kernel network settings under /proc/sys/net, of the namespace the calling thread is in.
//!
//! Only off the common path: a setup reads what it needs over netlink (forwarding through
//! netconf, a bridge's route_localnet with the link) and comes here to write a setting that is
//! off, or to read the ephemeral port range for a port it has to pick. Why: the kernel keeps
//! an entry for every network namespace that has looked below /proc/sys/net (`ipv4`, `ipv6`,
//! ...), all on one hash chain per name, and each lookup walks that chain, checking each
//! entry's namespace. Where runtimes set sysctls inside every container (CNI's bridge plugin
//! and netavark do), that is one entry per container on the machine.

use std::fs;
use std::io;
use std::path::Path;

use crate::error::{Error, Result};

const NET: &str = "/proc/sys/net";

/// Turns IPv4 forwarding on (read first: it may be on already).
pub(crate) fn enable_ip_forward() -> Result<()> {
    ensure("ipv4/ip_forward").map_err(|e| Error::io("cannot enable IPv4 forwarding", e))
}

/// Makes link `name` (validated by the caller) of the calling thread's namespace accept no
/// IPv6 router advertisement (`accept_ra` 0): nothing but ocinet configures a container's
/// addresses and routes, and a bridge of ocinet's is no host uplink. Without a link-local
/// address the link sends no router solicitation either.
pub(crate) fn refuse_router_advertisements(name: &str) -> Result<()> {
    let path = format!("ipv6/conf/{name}/accept_ra");
    fs::write(Path::new(NET).join(&path), "0")
        .map_err(|e| Error::io(format!("cannot write net/{path}"), e))
}

/// Turns IPv6 forwarding on for every link (read first: it may be on already). The caller
/// keeps advertised default routes first (`ra_guard`).
pub(crate) fn enable_ipv6_forward() -> Result<()> {
    ensure("ipv6/conf/all/forwarding").map_err(|e| Error::io("cannot enable IPv6 forwarding", e))
}

/// Writes `value` to the setting at `path` (below /proc/sys/net).
pub fn write(path: &str, value: &str) -> io::Result<()> {
    fs::write(Path::new(NET).join(path), value)
}

/// The text of the setting at `path` (below /proc/sys/net).
pub fn read(path: &str) -> io::Result<String> {
    fs::read_to_string(Path::new(NET).join(path))
}

/// Sets the switch at `path` to 1 unless it already is.
fn ensure(path: &str) -> io::Result<()> {
    if read(path).is_ok_and(|v| v.trim() == "1") {
        return Ok(());
    }
    fs::write(Path::new(NET).join(path), "1")
}
