//! What every backend offers the driver, and the leak checks they share.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde::Serialize;

use crate::exec::{self, Result, Usage};
use crate::fleet::Container;
use crate::reach::Target;

pub trait Backend {
    fn name(&self) -> &'static str;
    /// Wires container `i` (0-based) with one published TCP port.
    fn setup(&mut self, i: usize, c: &Container) -> Result<Duration>;
    fn teardown(&mut self, i: usize, c: &Container) -> Result<Duration>;
    /// What is left after every container was torn down (all must be 0).
    fn leaks(&self) -> Result<Leaks>;
    /// Where container `i` answers, for the reachability check; `None`: not checked.
    fn target(&self, _i: usize) -> Result<Option<Target>> {
        Ok(None)
    }
    /// Its containers hold no neighbour entries that the host-wide limits count (a routed
    /// network's are permanent).
    fn routed(&self) -> bool {
        false
    }
    /// Each setup's CPU time and context switches, when the backend is one process per call
    /// that the bench reaps itself (ocinet's hook; CNI's and netavark's spawn children).
    fn setup_usage(&self) -> Option<&[Usage]> {
        None
    }
}

/// Per-container leftovers. `leases` is `None` when the backend does no IPAM of its own.
#[derive(Debug, Clone, Serialize)]
pub struct Leaks {
    /// Ports left on the backend's bridge (veths).
    pub links: usize,
    /// Firewall rules or map elements naming a container (its address or its host port).
    pub rules: usize,
    pub leases: Option<usize>,
}

/// Host-side interfaces enslaved to `bridge` (asked over netlink with `ip`: the bench's /sys
/// still shows the real host's interfaces); 0 when the bridge does not exist.
pub fn bridge_ports(bridge: &str) -> Result<usize> {
    if !link_exists(bridge)? {
        return Ok(0);
    }
    let out = exec::output(
        "ip link show master",
        Command::new("ip").args(["-o", "link", "show", "master", bridge]),
    )?;
    Ok(out.lines().filter(|l| !l.trim().is_empty()).count())
}

fn link_exists(name: &str) -> Result<bool> {
    let out = exec::output(
        "ip link show",
        Command::new("ip").args(["-o", "link", "show"]),
    )?;
    Ok(out
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .any(|n| n.trim().split('@').next() == Some(name)))
}

/// Regular files under `dir` (recursively) whose name passes `keep`.
pub fn count_files(dir: &Path, keep: &dyn Fn(&str) -> bool) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            let path = e.path();
            if path.is_dir() {
                count_files(&path, keep)
            } else {
                usize::from(keep(&e.file_name().to_string_lossy()))
            }
        })
        .sum()
}

/// iptables rules that name one of the containers: a `/32` address of `subnet` (other than the
/// gateway), a host port in `ports`, or (CNI's per-container masquerade chains, which name
/// only the subnet) `marker` in a comment.
pub fn iptables_container_rules(
    subnet_prefix: &str,
    ports: (u16, u16),
    marker: Option<&str>,
) -> Result<usize> {
    let save = exec::output("iptables-save", &mut Command::new("iptables-save"))?;
    Ok(save
        .lines()
        .filter(|l| l.starts_with("-A "))
        .filter(|l| {
            let names_address = l.split_whitespace().any(|w| {
                w.strip_suffix("/32")
                    .unwrap_or(w)
                    .strip_prefix(subnet_prefix)
                    .is_some_and(|rest| !rest.is_empty() && !rest.contains('/') && rest != "0.1")
            });
            let names_port = l
                .split_whitespace()
                .filter_map(|w| w.parse::<u16>().ok())
                .any(|p| (ports.0..=ports.1).contains(&p));
            names_address || names_port || marker.is_some_and(|m| l.contains(m))
        })
        .count())
}

/// Container `i`'s address in a /16 whose gateway is `.0.1`: `.0.2` onwards.
pub fn address(base: Ipv4Addr, i: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(base) + 2 + i as u32)
}
