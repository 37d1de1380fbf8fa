//! Kernel network settings under /proc/sys/net, of the namespace the calling thread is in.
//! Link names reach here validated (no '/' or '..'), so every path stays in /proc/sys/net.
//!
//! Why one handle on /proc/sys/net, and paths below it: the kernel keeps a `net` entry under
//! /proc/sys for every network namespace that has looked there, all on one hash chain, and
//! each lookup of `/proc/sys/net` walks that chain, checking each entry's namespace under a
//! global lock. Where runtimes set sysctls inside every container (CNI's bridge plugin and
//! netavark do), the chain grows by one per container; ocinet walks it once per setup.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;

use nix::fcntl::{openat, OFlag};
use nix::sys::stat::Mode;

use crate::error::{Error, Result};

const NET: &str = "/proc/sys/net";

/// /proc/sys/net of this thread's network namespace, opened once.
pub struct NetSysctls(OwnedFd);

impl NetSysctls {
    pub fn open() -> Result<NetSysctls> {
        File::open(NET)
            .map(|f| NetSysctls(f.into()))
            .map_err(|e| Error::io(format!("cannot open {NET}"), e))
    }

    /// Turns IPv4 forwarding on (read first: it is on after the first container).
    pub fn enable_ip_forward(&self) -> Result<()> {
        self.ensure("ipv4/ip_forward")
            .map_err(|e| Error::io("cannot enable IPv4 forwarding", e))
    }

    /// Lets `link` route packets with loopback sources (127.0.0.1:<port> DNATed out of a
    /// bridge).
    pub fn enable_route_localnet(&self, link: &str) -> Result<()> {
        self.ensure(&format!("ipv4/conf/{link}/route_localnet"))
            .map_err(|e| Error::io(format!("cannot enable route_localnet on {link}"), e))
    }

    /// Turns IPv6 off on `link`, a link just made and not yet carrying traffic. A kernel
    /// without IPv6 has no such setting: nothing to turn off.
    pub fn disable_ipv6(&self, link: &str) -> Result<()> {
        let written = self
            .file(&format!("ipv6/conf/{link}/disable_ipv6"), OFlag::O_WRONLY)
            .and_then(|mut f| f.write_all(b"1"));
        match written {
            Err(e) if e.kind() == io::ErrorKind::NotFound && !self.ipv6_present() => Ok(()),
            other => other.map_err(|e| Error::io(format!("cannot turn IPv6 off on {link}"), e)),
        }
    }

    fn ipv6_present(&self) -> bool {
        match self.file("ipv6", OFlag::O_RDONLY | OFlag::O_DIRECTORY) {
            Ok(_) => true,
            Err(e) => e.kind() != io::ErrorKind::NotFound,
        }
    }

    /// The text of the setting at `path` (below /proc/sys/net).
    pub fn read(&self, path: &str) -> io::Result<String> {
        let mut value = String::new();
        self.file(path, OFlag::O_RDONLY)?
            .read_to_string(&mut value)?;
        Ok(value)
    }

    /// Sets the switch at `path` to 1 unless it already is.
    fn ensure(&self, path: &str) -> io::Result<()> {
        if self.read(path).is_ok_and(|v| v.trim() == "1") {
            return Ok(());
        }
        self.file(path, OFlag::O_WRONLY)?.write_all(b"1")
    }

    fn file(&self, path: &str, flags: OFlag) -> io::Result<File> {
        openat(&self.0, path, flags | OFlag::O_CLOEXEC, Mode::empty())
            .map(File::from)
            .map_err(io::Error::from)
    }
}
