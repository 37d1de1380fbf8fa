//! The lab, built as the integration tests build theirs (tests/src/cluster.rs) but inside the
//! bench's own private namespaces (bench/in-private-host.sh): the bench's network namespace
//! holds the underlay bridge `ul0` (192.0.2.1/24, TEST-NET-1) and etcd; each cluster host is a
//! network namespace of its own (a holder process) plugged into `ul0` by a veth, `eth0` at
//! 192.0.2.(10+n)/24 with a default route via the lab. The hosts share the bench's mount
//! namespace: container ids are unique across hosts, and each host has its own state root and
//! config dir.

use std::fs::File;
use std::net::Ipv4Addr;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::exec::{self, Result};
use crate::fleet::{self, Container};
use crate::hook::Hook;
use crate::netns;

/// The lab's address on the underlay: the hosts' gateway and etcd's address.
pub const LAB_ADDRESS: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

/// Runs a shell script in the calling thread's network namespace; its stdout.
pub fn sh(script: &str) -> Result<String> {
    exec::output(script, Command::new("sh").args(["-c", script]))
}

/// The underlay bridge, while it lives.
pub struct Lab;

impl Lab {
    /// The bridge's MAC is fixed, as a router's on a real underlay: a Linux bridge otherwise
    /// takes the lowest MAC of its ports, so a host joining or leaving can change it, and a host
    /// whose neighbour entry still names the old one loses etcd (an agent's connection timed
    /// out for 10 s and more that way, until the entry went stale).
    pub fn new() -> Result<Lab> {
        sh(&format!(
            "ip link add ul0 address 02:00:c0:00:02:01 type bridge && ip addr add {LAB_ADDRESS}/24 dev ul0 && ip link set ul0 up"
        ))?;
        Ok(Lab)
    }

    /// Cluster host `n` (1..=200): its namespace, its underlay link and address, and a hook
    /// with its own state root and config dir under `work/h<n>`.
    pub fn host(&self, n: u8, hook: &Path, work: &Path) -> Result<Host> {
        let holder = fleet::spawn(1)?.pop().ok_or("no holder process")?;
        let ns = netns::of_pid(holder.pid())?;
        let address = Ipv4Addr::new(192, 0, 2, 10 + n);
        let host = Host {
            name: format!("h{n}"),
            address,
            hook: Hook::new(hook, &work.join(format!("h{n}")))?,
            ns,
            holder,
        };
        sh(&format!(
            "ip link add ul-{n} type veth peer name eth0 netns {} && ip link set ul-{n} master ul0 up",
            host.holder.pid()
        ))?;
        host.sh(&format!(
            "ip link set lo up && ip addr add {address}/24 dev eth0 && ip link set eth0 up && ip route add default via {LAB_ADDRESS}"
        ))?;
        Ok(host)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = sh("ip link del ul0");
    }
}

/// One cluster host. Dropped, every process left in its namespace (an agent that did not
/// leave) is killed, then the holder: the namespace and its links go with them.
pub struct Host {
    pub name: String,
    pub address: Ipv4Addr,
    pub hook: Hook,
    ns: File,
    holder: Container,
}

impl Host {
    pub fn ns(&self) -> &File {
        &self.ns
    }

    /// Runs one hook stage inside the host, timed as [`Hook::run`] times it (entering the
    /// namespace is not timed: a runtime's hook starts in the host's namespace).
    pub fn run_hook(&mut self, stage: &str, id: &str, pid: u32, bundle: &Path) -> Result<Duration> {
        let _inside = netns::enter(&self.ns)?;
        self.hook.run(stage, id, pid, bundle)
    }

    /// Runs a shell script inside the host; its stdout.
    pub fn sh(&self, script: &str) -> Result<String> {
        netns::within(&self.ns, || sh(script))
    }

    /// The host's own processes (`comm` and pid), its holder aside: the overlay agent while it
    /// runs, iperf3 while it serves.
    pub fn processes(&self) -> Vec<(String, i32)> {
        let Ok(ours) = self.ns.metadata().map(|m| (m.dev(), m.ino())) else {
            return Vec::new();
        };
        let holder = self.holder.pid() as i32;
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| *pid != holder && *pid != std::process::id() as i32)
            .filter(|pid| {
                std::fs::metadata(format!("/proc/{pid}/ns/net"))
                    .is_ok_and(|m| (m.dev(), m.ino()) == ours)
            })
            .filter_map(|pid| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
                // A zombie has left every namespace already: it is not the host's any more.
                let state = stat[stat.rfind(')')? + 1..].trim_start().chars().next()?;
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
                (!matches!(state, 'Z' | 'X')).then(|| (comm.trim().to_string(), pid))
            })
            .collect()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left = self.processes();
            if left.is_empty() || Instant::now() > deadline {
                break;
            }
            for (_, pid) in left {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
