//! A small cluster for the overlay network: a [`Lab`] (a private machine holding the underlay
//! bridge `ul0`, 192.0.2.1/24), [`Host`]s plugged into it, and a real etcd inside the lab (one
//! member, or a cluster of three). Hosts may also sit on a second underlay subnet, the bridge
//! `ul1` (198.51.100.1/24), which the lab routes to and from the first.
//! Everything lives in namespaces the test made (192.0.2.0/24 is TEST-NET-1, 198.51.100.0/24
//! TEST-NET-2, never routed here), and everything is stopped on drop.

use std::ffi::OsStr;
use std::fs::{self, OpenOptions};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::{test_dir, Holder, Host, Ipv4Addr, HOST_FLAGS, HOST_INIT};

/// The n-th host of a lab is 192.0.2.(HOST_OFFSET + n).
const HOST_OFFSET: u8 = 10;

/// A private machine (its own network and mount namespaces, like [`Host::new`]) with the
/// underlay bridge `ul0` that its cluster hosts plug into.
pub struct Lab {
    machine: Host,
    hosts: AtomicU8,
    /// Whether `ul1`, the second underlay subnet, is made yet.
    far_subnet: std::sync::Once,
}

impl Lab {
    /// The lab's address on the underlay: the hosts' default gateway and etcd's address.
    pub const ADDRESS: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

    pub fn new(name: &str) -> Lab {
        let machine = Host::new(&format!("lab-{name}"));
        machine.sh_ok(&format!(
            // A fixed MAC: a bridge left to choose takes its ports' lowest and changes it as
            // hosts join and leave, under the hosts' neighbour entries for the lab (etcd).
            "ip link add ul0 address 02:00:c0:00:02:01 type bridge && ip addr add {}/24 dev ul0 && ip link set ul0 up",
            Lab::ADDRESS
        ));
        Lab {
            machine,
            hosts: AtomicU8::new(0),
            far_subnet: std::sync::Once::new(),
        }
    }

    /// The lab's address on the second underlay subnet: its hosts' default gateway.
    pub const FAR_ADDRESS: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);

    /// A process in the lab's namespaces.
    pub fn pid(&self) -> i32 {
        self.machine.pid()
    }

    /// The lab's own files (etcd's data and log).
    pub fn dir(&self) -> &Path {
        &self.machine.dir
    }

    /// A command that runs inside the lab's namespaces.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        self.machine.command(program)
    }

    /// Runs a shell script inside the lab; returns its output.
    pub fn sh(&self, script: &str) -> Output {
        self.machine.sh(script)
    }

    /// Runs a shell script inside the lab and returns stdout, panicking on failure.
    pub fn sh_ok(&self, script: &str) -> String {
        self.machine.sh_ok(script)
    }

    /// A cluster host: its own network and mount namespaces made from inside the lab's, `eth0`
    /// at 192.0.2.(10+n)/24 for the n-th host, its lab end `ul-<n>` on `ul0`, and a default
    /// route via the lab. A full [`Host`]: containers, hooks, the shim work as on any other.
    pub fn host(&self, name: &str) -> Host {
        self.host_on("ul0", [192, 0, 2], Lab::ADDRESS, name)
    }

    /// A cluster host like [`Lab::host`] but on the second underlay subnet: `eth0` at
    /// 198.51.100.(10+n)/24 on `ul1`, its default route via the lab, which routes between the
    /// two subnets (no NAT). Its n counts with the first subnet's hosts.
    pub fn far_host(&self, name: &str) -> Host {
        self.far_subnet.call_once(|| {
            self.sh_ok(&format!(
                "ip link add ul1 address 02:00:c6:33:64:01 type bridge && ip addr add {}/24 dev ul1 && ip link set ul1 up && sysctl -qw net.ipv4.ip_forward=1",
                Lab::FAR_ADDRESS
            ));
        });
        self.host_on("ul1", [198, 51, 100], Lab::FAR_ADDRESS, name)
    }

    fn host_on(&self, bridge: &str, subnet: [u8; 3], gateway: Ipv4Addr, name: &str) -> Host {
        let n = self.hosts.fetch_add(1, Ordering::SeqCst) + 1;
        assert!(n <= 200, "a lab has room for 200 hosts");
        let dir = test_dir(name);
        let holder = Holder::spawn_with(self.command("unshare"), HOST_FLAGS, HOST_INIT);
        let pid = holder.pid();
        let [a, b, c] = subnet;
        let address = Ipv4Addr::new(a, b, c, HOST_OFFSET + n);
        // The host first, so that a failure below still kills its holder.
        let host = Host::with_holder(holder, dir, Some(address));
        self.sh_ok(&format!(
            "ip link add ul-{n} type veth peer name eth0 netns {pid} && ip link set ul-{n} master {bridge} up"
        ));
        host.sh_ok(&format!(
            "ip addr add {address}/24 dev eth0 && ip link set eth0 up && ip route add default via {gateway}"
        ));
        host
    }

    /// Sets the MTU of `host`'s link to the lab, both ends (its `eth0` and the lab's `ul-<n>`).
    pub fn set_mtu(&self, host: &Host, mtu: u32) {
        let n = host.underlay().expect("a host of this lab").octets()[3] - HOST_OFFSET;
        self.sh_ok(&format!("ip link set ul-{n} mtu {mtu}"));
        host.sh_ok(&format!("ip link set eth0 mtu {mtu}"));
    }

    /// Starts etcd in the lab (one per lab: its ports are fixed) and waits until it is healthy.
    pub fn etcd(&self) -> Etcd<'_> {
        self.etcd_cluster(1).pop().unwrap()
    }

    /// `n` etcd members (at most 3) forming one cluster in the lab, member `i` on
    /// 192.0.2.`i` (the lab's underlay bridge gets the addresses), each with its own data dir;
    /// returns once the cluster is healthy.
    pub fn etcd_cluster(&self, n: u8) -> Vec<Etcd<'_>> {
        assert!(
            (1..=3).contains(&n),
            "1 to 3 members: hosts start at 192.0.2.11"
        );
        let lab_name = self.dir().file_name().unwrap().to_string_lossy();
        // Unique per lab, so that two labs' members can never be taken for one cluster.
        let token = lab_name.trim_start_matches("ocinet-test-").to_string();
        let addresses: Vec<Ipv4Addr> = (1..=n).map(|i| Ipv4Addr::new(192, 0, 2, i)).collect();
        let names: Vec<String> = (1..=n)
            .map(|i| match n {
                1 => token.clone(),
                _ => format!("{token}-{i}"),
            })
            .collect();
        let initial_cluster = names
            .iter()
            .zip(&addresses)
            .map(|(name, a)| format!("{name}=http://{a}:2380"))
            .collect::<Vec<_>>()
            .join(",");
        for address in &addresses[1..] {
            self.sh_ok(&format!("ip addr add {address}/24 dev ul0"));
        }
        let mut members: Vec<Etcd<'_>> = names
            .into_iter()
            .zip(addresses)
            .map(|(name, address)| {
                let (data_dir, log) = match n {
                    1 => (self.dir().join("etcd"), self.dir().join("etcd.log")),
                    _ => (
                        self.dir().join(format!("etcd-{name}")),
                        self.dir().join(format!("etcd-{name}.log")),
                    ),
                };
                Etcd {
                    lab: self,
                    child: None,
                    name,
                    token: token.clone(),
                    address,
                    initial_cluster: initial_cluster.clone(),
                    data_dir,
                    log,
                }
            })
            .collect();
        // Every member first: one alone has no quorum and never becomes healthy.
        for member in &mut members {
            member.spawn();
        }
        for member in &mut members {
            member.wait_healthy();
        }
        members
    }
}

/// etcd 3.4 as a member, started in a [`Lab`]: clients on http://192.0.2.N:2379 (and, for the
/// first, 127.0.0.1:2379 inside the lab), peers on 192.0.2.N:2380, data under the lab's dir.
/// Stopped on drop.
pub struct Etcd<'l> {
    lab: &'l Lab,
    child: Option<Child>,
    name: String,
    token: String,
    address: Ipv4Addr,
    initial_cluster: String,
    data_dir: PathBuf,
    log: PathBuf,
}

impl Etcd<'_> {
    /// The client URL, as hosts reach it over the underlay.
    pub fn endpoint(&self) -> String {
        format!("http://{}:2379", self.address)
    }

    /// The member's name in the cluster (`etcdctl member list`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The etcd process while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn log(&self) -> &Path {
        &self.log
    }

    /// `etcdctl` (API v3) inside the lab, against [`Etcd::endpoint`] unless `args` name
    /// `--endpoints`. With etcd down, a request fails after `--command-timeout` (5 s unless
    /// `args` set it): etcdctl 3.4 does not wait for the connection, `--dial-timeout` is moot.
    pub fn etcdctl(&self, args: &[&str]) -> Output {
        let mut cmd = self.lab.command("etcdctl");
        clean_env(&mut cmd, "ETCDCTL_");
        cmd.env("ETCDCTL_API", "3");
        // Repeated --endpoints add up (a list): only when the caller names none.
        if !args.iter().any(|a| a.starts_with("--endpoints")) {
            cmd.arg(format!("--endpoints={}", self.endpoint()));
        }
        cmd.args(args).stdin(Stdio::null()).output().unwrap()
    }

    /// Starts etcd again on the same data dir and URLs (after `stop` or `kill`); waits until
    /// healthy (the other members of a cluster must be running).
    pub fn start_again(&mut self) {
        self.spawn();
        self.wait_healthy();
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "etcd is running");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let client = self.endpoint();
        let peer = format!("http://{}:2380", self.address);
        let mut cmd = self.lab.command("etcd");
        // The environment configures etcd too (ETCD_<FLAG>): only the flags here count.
        clean_env(&mut cmd, "ETCD_");
        if let Some(arch) = unsupported_arch() {
            cmd.env("ETCD_UNSUPPORTED_ARCH", arch);
        }
        // The first member also answers on the lab's loopback (its metrics, etcdctl there).
        let clients = match self.address == Lab::ADDRESS {
            true => format!("{client},http://127.0.0.1:2379"),
            false => client.clone(),
        };
        cmd.arg(format!("--name={}", self.name))
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg(format!("--listen-client-urls={clients}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster={}", self.initial_cluster))
            .arg(format!("--initial-cluster-token={}", self.token))
            // Ignored once the data dir holds a member: a restart rejoins as itself.
            .arg("--initial-cluster-state=new")
            // A restarted member (or a new leader) waits an election timeout before it serves
            // (1 s by default).
            .args(["--heartbeat-interval=10", "--election-timeout=100"])
            .args(["--logger=zap", "--log-level=warn"])
            .arg(format!("--log-outputs={}", self.log.display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        // nsenter execs etcd: the child is etcd itself.
        self.child = Some(cmd.spawn().expect("etcd (Debian: etcd-server)"));
    }

    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        let endpoint = format!("--endpoints={}", self.endpoint());
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                panic!("etcd exited ({status}): {}", self.log_tail());
            }
            let out = self.etcdctl(&[&endpoint, "--command-timeout=300ms", "endpoint", "health"]);
            if out.status.success() {
                return;
            }
            if Instant::now() > deadline {
                self.kill();
                panic!("etcd did not become healthy: {}", self.log_tail());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Graceful stop: SIGTERM, then waits (SIGKILL after 10 s).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// A crash: SIGKILL, then waits.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Etcd<'_> {
    fn drop(&mut self) {
        self.stop();
    }
}

fn clean_env(cmd: &mut Command, prefix: &str) {
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with(prefix) {
            cmd.env_remove(key);
        }
    }
}

/// etcd 3.4 refuses to start on architectures other than amd64 and ppc64le unless told the
/// (Go) name of the one it runs on.
fn unsupported_arch() -> Option<&'static str> {
    match std::env::consts::ARCH {
        "x86_64" => None,
        "powerpc64" if cfg!(target_endian = "little") => None,
        "aarch64" => Some("arm64"),
        "x86" => Some("386"),
        other => Some(other),
    }
}

/// The identity of a process's network namespace; None once it has exited (a zombie has none).
fn netns(pid: u32) -> Option<(u64, u64)> {
    let meta = fs::metadata(format!("/proc/{pid}/ns/net")).ok()?;
    Some((meta.dev(), meta.ino()))
}

/// State letter and parent of a process, from `/proc/PID/stat`.
fn stat(pid: u32) -> Option<(char, u32)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: the fields follow its last ')'.
    let mut fields = text[text.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// SIGKILLs every process in the network namespace of `holder` but the holder itself, and waits
/// until none is left alive. Helpers started detached in a host (the overlay agent, a leaked
/// `setsid` child) are nobody's child here: nothing else would stop them. The ones that are this
/// process's children are reaped; orphans are the init's to reap (late, on these machines), so
/// "dead" is state Z or gone, never `kill -0`.
pub(crate) fn kill_netns_processes(holder: u32) {
    let Some(target) = netns(holder) else {
        return;
    };
    let me = std::process::id();
    // Never sweep the namespace this test itself runs in (the real host's, normally).
    if netns(me) == Some(target) {
        return;
    }
    let mut ours = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut alive = 0;
        for entry in fs::read_dir("/proc").unwrap().flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            if pid == holder || pid == me || netns(pid) != Some(target) {
                continue;
            }
            let Some((state, ppid)) = stat(pid) else {
                continue;
            };
            if matches!(state, 'Z' | 'X') {
                continue;
            }
            alive += 1;
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            if ppid == me && !ours.contains(&pid) {
                ours.push(pid);
            }
        }
        if alive == 0 {
            break;
        }
        if Instant::now() > deadline {
            // Drop runs this, maybe while unwinding: a panic here would abort the whole test.
            eprintln!("{alive} processes in the network namespace of {holder} survive SIGKILL");
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // Out of the namespace means exiting; becoming a zombie follows shortly.
    for pid in ours {
        let pid = Pid::from_raw(pid as i32);
        for _ in 0..200 {
            match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => std::thread::sleep(Duration::from_millis(5)),
                // Reaped now, or by its owner already (ECHILD).
                _ => break,
            }
        }
    }
}
