//! The helpers ocinet starts on demand (the resolver, an overlay network's agent) and their
//! keepers: killed with SIGKILL, either is back within a second with no container starting or
//! stopping (names answer, the agent's peers are programmed again); one that dies in a loop
//! backs off; both leave with the last container that needs them, or within two seconds of
//! their state root's removal; one that cannot write its state says why in the setup's line.
//! Real runc and crun containers, a real etcd, each host a private namespace.

use std::net::{Ipv4Addr, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use ocinet_tests::{in_netns, Container, Etcd, Host, Lab, Runtime};
use serde_json::json;

const RESOLVER: &str = "ocinet-resolver";
const AGENT: &str = "ocinet-agent";
/// The network with names of the resolver's tests, and its gateway (where the resolver listens).
const N1: &[(&str, &str)] = &[("io.ocinet.network", "n1")];
const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 95, 0, 1);
/// A helper that ran this long is restarted at once when it dies (a shorter run counts toward
/// a crash loop, which backs off).
const STABLE: Duration = Duration::from_millis(2200);
/// How many kills each measurement makes.
const TRIES: usize = 10;
const OV: &[(&str, &str)] = &[("io.ocinet.network", "ov")];
const VNI: u32 = 4300;

fn n1_host(name: &str) -> Host {
    let host = Host::new(name);
    host.define_network("n1", r#"{"subnets":[{"subnet":"10.95.0.0/24"}]}"#);
    host
}

/// A live process (not a zombie) in `host`'s network namespace whose program name (`argv[0]`'s
/// last part) is `title`, e.g. `ocinet-resolver` or `ocinet-resolver-keeper`.
fn processes(host: &Host, title: &str) -> Vec<i32> {
    let netns = |pid: i32| std::fs::read_link(format!("/proc/{pid}/ns/net")).ok();
    let Some(ours) = netns(host.pid()) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
        let name = Path::new(std::str::from_utf8(argv0).unwrap_or_default())
            .file_name()
            .map(|n| n.to_string_lossy().into_owned());
        if name.as_deref() == Some(title) && netns(pid) == Some(ours.clone()) && alive(pid) {
            found.push(pid);
        }
    }
    found
}

/// In /proc and not a zombie (the init here reaps orphans late: never `kill -0`).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat[stat.rfind(')').unwrap_or(0) + 1..]
            .split_whitespace()
            .next();
        !matches!(state, Some("Z" | "X"))
    })
}

fn keeper_title(helper: &str) -> String {
    format!("{helper}-keeper")
}

/// The one live process of `title` in `host`, waiting up to `within` for it (and for it not
/// to be `not`).
fn the_one(host: &Host, title: &str, not: Option<i32>, within: Duration) -> i32 {
    let deadline = Instant::now() + within;
    loop {
        let found = processes(host, title);
        if let [pid] = found[..] {
            if Some(pid) != not {
                return pid;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no single {title} (other than {not:?}) within {within:?}: {found:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits until neither `helper` nor its keeper runs in `host`; how long that took.
fn wait_none_left(host: &Host, helper: &str, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let left: Vec<i32> = [helper.to_string(), keeper_title(helper)]
            .iter()
            .flat_map(|t| processes(host, t))
            .collect();
        if left.is_empty() {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "{helper} or its keeper still runs after {within:?}: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn sigkill(pid: i32) {
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
}

/// A DNS question for the A record of `name`.
fn question(name: &str, id: u16) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend([1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend(label.as_bytes());
    }
    q.extend([0, 0, 1, 0, 1]);
    q
}

/// The address of the answer's last record when it is an A record of a NOERROR answer.
fn answered_address(reply: &[u8]) -> Option<Ipv4Addr> {
    let n = reply.len();
    let answers = u16::from_be_bytes([*reply.get(6)?, *reply.get(7)?]);
    if n < 16 || reply[3] & 0x0f != 0 || answers == 0 || reply[n - 6..n - 4] != [0, 4] {
        return None;
    }
    Some(Ipv4Addr::new(
        reply[n - 4],
        reply[n - 3],
        reply[n - 2],
        reply[n - 1],
    ))
}

/// Asks the resolver at [`GATEWAY`] for `name` from the network namespace of `pid` (a
/// container), every few milliseconds, until it answers `expect`; the time from `since` to that
/// answer, or None after `within`.
fn answered_after(
    pid: i32,
    name: &str,
    expect: Ipv4Addr,
    since: Instant,
    within: Duration,
) -> Option<Duration> {
    let name = name.to_string();
    in_netns(pid, move || {
        let socket = UdpSocket::bind("0.0.0.0:0").unwrap();
        socket.connect((GATEWAY, 53)).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let mut id = 0u16;
        let mut buf = [0u8; 512];
        while since.elapsed() < within {
            id = id.wrapping_add(1);
            // Refused (nobody listens: an ICMP error) or lost: asked again.
            if socket.send(&question(&name, id)).is_err() {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            match socket.recv(&mut buf) {
                Ok(n) if answered_address(&buf[..n]) == Some(expect) => {
                    return Some(since.elapsed())
                }
                Ok(_) => {}
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        None
    })
}

/// busybox nslookup in the container, as a user asks: the addresses it got.
fn nslookup(c: &Container<'_>, name: &str) -> String {
    let out = c.exec(&["timeout", "8", "nslookup", name]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split("\n\n")
        .skip(1)
        .flat_map(|b| b.lines().map(str::to_string).collect::<Vec<_>>())
        .filter_map(|l| l.strip_prefix("Address:").map(|a| a.trim().to_string()))
        .collect::<Vec<_>>()
        .join(",")
}

/// The keeper holds nothing of the runtime's, nor of its helper's: stdin on /dev/null, stdout
/// and stderr on the helper's log, one socket (its link to the helper), and else only the
/// directories under `root` whose removal it watches and a pidfd of a helper it did not
/// start; a session of its own. Looked at once it waits (a keeper just started may still be
/// loading its libraries).
fn assert_detached(pid: i32, log: &Path, root: &Path) {
    let fd = |n: &str| std::fs::read_link(format!("/proc/{pid}/fd/{n}")).unwrap_or_default();
    let others = || -> Vec<String> {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !["0", "1", "2"].contains(&n.as_str()))
            .map(|n| fd(&n).to_string_lossy().into_owned())
            .collect()
    };
    let expected = |others: &[String]| {
        let count = |what: &dyn Fn(&String) -> bool| others.iter().filter(|o| what(o)).count();
        let sockets = count(&|o| o.starts_with("socket:"));
        let pidfds = count(&|o| o == "anon_inode:[pidfd]");
        let watched = count(&|o| Path::new(o).starts_with(root));
        sockets == 1 && pidfds <= 1 && watched + sockets + pidfds == others.len()
    };
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut seen = others();
    while !expected(&seen) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
        seen = others();
    }
    assert!(expected(&seen), "descriptors of {pid}: {seen:?}");
    assert_eq!(fd("0"), Path::new("/dev/null"));
    assert_eq!(fd("1"), log, "stdout of {pid}");
    assert_eq!(fd("2"), log, "stderr of {pid}");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .unwrap_or("");
    eprintln!(
        "keeper {pid}: {}",
        rss.split_whitespace().collect::<Vec<_>>().join(" ")
    );
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    assert_eq!(fields[3], pid.to_string(), "session of {pid}: {stat}");
}

/// Sorted kill-to-serving times, for the log.
fn summary(times: &[Duration]) -> String {
    let mut ms: Vec<u128> = times.iter().map(Duration::as_millis).collect();
    ms.sort_unstable();
    format!(
        "ms: {ms:?} (median {}, max {})",
        ms[ms.len() / 2],
        ms[ms.len() - 1]
    )
}

#[test]
fn a_killed_resolver_or_keeper_is_back_within_a_second_with_no_container_starting() {
    let host = n1_host("helpers-resolver");
    let web = host.start(Runtime::Runc, "web", N1);
    let client = host.start(Runtime::Crun, "client", N1);
    let (web_ip, client_pid) = (web.address(), client.pid());
    let log = host.state_root().join("resolver/resolver.log");
    let keeper = the_one(&host, &keeper_title(RESOLVER), None, Duration::from_secs(2));
    assert_detached(keeper, &log, &host.state_root());

    let mut times = Vec::new();
    for _ in 0..TRIES {
        let old = the_one(&host, RESOLVER, None, Duration::from_secs(1));
        sigkill(old);
        let killed = Instant::now();
        let took = answered_after(client_pid, "web", web_ip, killed, Duration::from_secs(5))
            .unwrap_or_else(|| {
                panic!(
                    "web does not answer again: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            });
        times.push(took);
        assert_ne!(the_one(&host, RESOLVER, None, Duration::from_secs(1)), old);
        std::thread::sleep(STABLE.saturating_sub(killed.elapsed()));
    }
    eprintln!("resolver, SIGKILL to names answering: {}", summary(&times));
    assert!(
        times.iter().all(|t| *t < Duration::from_secs(1)),
        "{}",
        summary(&times)
    );
    assert_eq!(nslookup(&client, "web"), web_ip.to_string());
    assert_eq!(
        the_one(&host, &keeper_title(RESOLVER), None, Duration::ZERO),
        keeper,
        "one keeper throughout"
    );

    // The keeper killed: the resolver starts another, which restarts the resolver in turn.
    sigkill(keeper);
    let killed = Instant::now();
    let second = the_one(
        &host,
        &keeper_title(RESOLVER),
        Some(keeper),
        Duration::from_secs(1),
    );
    eprintln!("a new keeper after {:?}", killed.elapsed());
    assert_detached(second, &log, &host.state_root());
    std::thread::sleep(STABLE);
    let old = the_one(&host, RESOLVER, None, Duration::ZERO);
    sigkill(old);
    let took = answered_after(
        client_pid,
        "web",
        web_ip,
        Instant::now(),
        Duration::from_secs(1),
    );
    assert!(
        took.is_some(),
        "the second keeper restarts the resolver: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );

    // No setup ran meanwhile; the last container gone, neither the resolver nor its keeper
    // is left.
    assert_eq!(host.leases("n1").len(), 2);
    web.delete().unwrap();
    client.delete().unwrap();
    let took = wait_none_left(&host, RESOLVER, Duration::from_secs(5));
    eprintln!("the resolver and its keeper left {took:?} after the last container");
    assert_eq!(host.leftovers(), Vec::<String>::new());
}

/// The keeper's lines in the resolver's log saying a start failed.
fn failed_starts(log: &Path) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("ocinet-resolver-keeper: cannot start ocinet-resolver:"))
        .count()
}

/// Kills the resolver while its keeper is stopped, and takes the resolver's UDP port on
/// [`GATEWAY`] meanwhile: every start the keeper makes then fails. The socket is the port.
fn crash_loop(host: &Host) -> UdpSocket {
    let keeper = the_one(host, &keeper_title(RESOLVER), None, Duration::from_secs(2));
    let resolver = the_one(host, RESOLVER, None, Duration::ZERO);
    kill(Pid::from_raw(keeper), Signal::SIGSTOP).unwrap();
    sigkill(resolver);
    while alive(resolver) {
        std::thread::sleep(Duration::from_millis(5));
    }
    // Free once the last thread of the resolver has exited, which may follow its main one.
    let port = in_netns(host.pid(), || {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            match UdpSocket::bind((GATEWAY, 53)) {
                Ok(socket) => return socket,
                Err(e) if Instant::now() > deadline => panic!("port 53 is still taken: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    kill(Pid::from_raw(keeper), Signal::SIGCONT).unwrap();
    port
}

#[test]
fn a_resolver_dying_in_a_loop_is_restarted_less_and_less_often_and_its_keeper_leaves_with_the_last_container(
) {
    let host = n1_host("helpers-loop");
    let web = host.start(Runtime::Runc, "web", N1);
    let client = host.start(Runtime::Crun, "client", N1);
    let (web_ip, client_pid) = (web.address(), client.pid());
    let log = host.state_root().join("resolver/resolver.log");

    // Started at once, again at once, then after 0.5, 1 and 2 s: five starts in the first
    // 6 s (the next is 4 s later), where one without a pause would make thousands.
    let port = crash_loop(&host);
    let looping = Instant::now();
    std::thread::sleep(Duration::from_secs(6));
    let starts = failed_starts(&log);
    assert!((3..=6).contains(&starts), "{starts} failed starts in 6 s");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("cannot listen on 10.95.0.1:53/udp")
            && text.contains("starting it again in 2 s"),
        "{text}"
    );
    // The cause gone, the next start serves: no setup needed.
    drop(port);
    let took = answered_after(client_pid, "web", web_ip, looping, Duration::from_secs(40));
    eprintln!("names answered again {took:?} after the loop began ({starts} failed starts)");
    assert!(took.is_some(), "names answer once the port is free");

    // Looping again when the last container goes: the keeper does not wait out its pause.
    std::thread::sleep(STABLE);
    let _port = crash_loop(&host);
    std::thread::sleep(Duration::from_millis(1500));
    web.delete().unwrap();
    client.delete().unwrap();
    let took = wait_none_left(&host, RESOLVER, Duration::from_secs(3));
    eprintln!("the keeper left {took:?} after the last container");
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("nothing needs it any more: exiting"),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
}

#[test]
fn a_resolver_whose_state_root_is_removed_exits_within_two_seconds_with_its_keeper() {
    let host = n1_host("helpers-rmroot");
    let _web = host.start(Runtime::Runc, "web", N1);
    the_one(&host, &keeper_title(RESOLVER), None, Duration::from_secs(2));
    let bound = || host.sh_ok("ss -Hlnu 'sport = :53'");
    assert!(bound().contains("10.95.0.1:53"), "{}", bound());
    std::fs::remove_dir_all(host.state_root()).unwrap();
    let took = wait_none_left(&host, RESOLVER, Duration::from_secs(2));
    eprintln!("the resolver and its keeper left {took:?} after the state root");
    // Its sockets went with it.
    assert_eq!(bound(), "");
}

/// A tiny tmpfs at `dir` of `host`, filled up.
fn full_tmpfs(host: &Host, dir: &Path) {
    host.sh_ok(&format!(
        "mkdir -p {d} && mount -t tmpfs -o size=16k,mode=700 ocinet-full {d} && \
         (dd if=/dev/zero of={d}/filler bs=4k 2>/dev/null; true) && \
         ! sh -c 'echo x > {d}/probe' 2>/dev/null",
        d = dir.display()
    ));
}

/// The hook's one line in runc's error.
fn one_hook_line(runtime_error: &str) -> String {
    let line = runtime_error.trim_end();
    assert!(!line.contains('\n'), "not one line: {runtime_error}");
    line.to_string()
}

#[test]
fn a_resolver_that_cannot_write_its_files_says_why_in_the_setups_one_line() {
    let host = n1_host("helpers-full");
    // The resolver's directory, its log in it, on a full filesystem; the setup's own files
    // elsewhere in the state root.
    full_tmpfs(&host, &host.state_root().join("resolver"));
    let bundle = host.bundle("bridge", "web", N1, &[]);
    let line = one_hook_line(&host.run_refused(Runtime::Runc, "web", &bundle));
    eprintln!("{line}");
    assert!(
        line.contains("ocinet-resolver: ") && line.contains("No space left on device"),
        "{line}"
    );
    assert_eq!(host.leftovers(), Vec::<String>::new());
    wait_none_left(&host, RESOLVER, Duration::from_secs(2));
}

/// etcd's blocks of `network`, as keys.
fn blocks_in_etcd(etcd: &Etcd, network: &str) -> Vec<String> {
    let prefix = format!("/ocinet/overlay/{network}/blocks/");
    let out = etcd.etcdctl(&["get", "--prefix", "--keys-only", &prefix]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Two lab hosts with the overlay `ov`, a container on each ("a" on the first, "b" on the
/// second) reaching the other.
fn overlay_pair(lab: &Lab) -> Vec<Host> {
    let file = json!({
        "driver": "overlay", "subnets": [{"subnet": "10.230.0.0/16"}],
        "etcd": {"endpoints": ["http://192.0.2.1:2379"]}, "vni": VNI, "ttl": 5,
    })
    .to_string();
    let hosts: Vec<Host> = (1..=2).map(|i| lab.host(&format!("h{i}"))).collect();
    for h in &hosts {
        h.define_network("ov", &file);
    }
    hosts
}

fn pings(from: &Container<'_>, to: Ipv4Addr) -> bool {
    from.exec(&["ping", "-c1", "-W1", &to.to_string()])
        .status
        .success()
}

fn wait_pings(from: &Container<'_>, to: Ipv4Addr) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !pings(from, to) {
        assert!(Instant::now() < deadline, "{} does not reach {to}", from.id);
    }
}

/// The overlay routes the agent programmed in the network namespace of `pid`, polled every
/// few milliseconds until one goes to `block`; the time from `since`, or None after `within`.
fn routed_after(pid: i32, block: String, since: Instant, within: Duration) -> Option<Duration> {
    in_netns(pid, move || {
        while since.elapsed() < within {
            // Run from this thread: the child starts in its network namespace.
            let out = std::process::Command::new("ip")
                .args(["route", "show", "proto", "111"])
                .output()
                .unwrap();
            if String::from_utf8_lossy(&out.stdout).contains(&block) {
                return Some(since.elapsed());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        None
    })
}

/// The block of the container at `ip` (a /24 by the overlay's default block size).
fn block_of(ip: Ipv4Addr) -> String {
    let [a, b, c, _] = ip.octets();
    format!("{a}.{b}.{c}.0/24")
}

#[test]
fn a_killed_agent_or_keeper_is_back_within_a_second_and_programs_its_peers_again() {
    let lab = Lab::new("helpers-agent");
    let _etcd = lab.etcd();
    let hosts = overlay_pair(&lab);
    let (h1, h2) = (&hosts[0], &hosts[1]);
    let a = h1.start(Runtime::Runc, "a", OV);
    let b = h2.start(Runtime::Runc, "b", OV);
    let b_block = block_of(b.address());
    wait_pings(&a, b.address());
    let log = h1.state_root().join("overlay/ov/agent.log");
    let keeper = the_one(h1, &keeper_title(AGENT), None, Duration::from_secs(2));
    assert_detached(keeper, &log, &h1.state_root());

    let mut times = Vec::new();
    for _ in 0..TRIES {
        let old = the_one(h1, AGENT, None, Duration::from_secs(1));
        // Stopped, its routes removed, then killed: only a new agent can put them back.
        kill(Pid::from_raw(old), Signal::SIGSTOP).unwrap();
        h1.sh_ok("ip route flush proto 111");
        sigkill(old);
        let killed = Instant::now();
        let took = routed_after(h1.pid(), b_block.clone(), killed, Duration::from_secs(5))
            .unwrap_or_else(|| {
                panic!(
                    "the route to b's block is not back: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            });
        times.push(took);
        assert_ne!(the_one(h1, AGENT, None, Duration::from_secs(1)), old);
        std::thread::sleep(STABLE.saturating_sub(killed.elapsed()));
    }
    eprintln!(
        "agent, SIGKILL to its peers programmed: {}",
        summary(&times)
    );
    assert!(
        times.iter().all(|t| *t < Duration::from_secs(1)),
        "{}",
        summary(&times)
    );
    assert!(pings(&a, b.address()) && pings(&b, a.address()));

    // The keeper killed: the agent starts another, which restarts the agent in turn.
    sigkill(keeper);
    let second = the_one(
        h1,
        &keeper_title(AGENT),
        Some(keeper),
        Duration::from_secs(1),
    );
    assert_detached(second, &log, &h1.state_root());
    std::thread::sleep(STABLE);
    let old = the_one(h1, AGENT, None, Duration::ZERO);
    kill(Pid::from_raw(old), Signal::SIGSTOP).unwrap();
    h1.sh_ok("ip route flush proto 111");
    sigkill(old);
    let took = routed_after(h1.pid(), b_block, Instant::now(), Duration::from_secs(1));
    assert!(
        took.is_some(),
        "the second keeper restarts the agent: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert!(pings(&a, b.address()));

    // The last container gone: the agent leaves the overlay, its keeper with it.
    a.delete().unwrap();
    let took = wait_none_left(h1, AGENT, Duration::from_secs(4));
    eprintln!("the agent and its keeper left {took:?} after the last container");
    assert_eq!(h1.leftovers(), Vec::<String>::new());
}

#[test]
fn an_agent_whose_state_root_is_removed_leaves_within_two_seconds_and_releases_its_block() {
    let lab = Lab::new("helpers-agent-rm");
    let etcd = lab.etcd();
    let hosts = overlay_pair(&lab);
    let (h1, h2) = (&hosts[0], &hosts[1]);
    let a = h1.start(Runtime::Runc, "a", OV);
    let _b = h2.start(Runtime::Runc, "b", OV);
    the_one(h1, &keeper_title(AGENT), None, Duration::from_secs(2));
    assert_eq!(blocks_in_etcd(&etcd, "ov").len(), 2);
    let a_block = block_of(a.address()).replace('/', "-");
    std::fs::remove_dir_all(h1.state_root()).unwrap();
    let took = wait_none_left(h1, AGENT, Duration::from_secs(2));
    eprintln!("the agent and its keeper left {took:?} after the state root");
    // Its block given back at once (not at the lease's end), its devices gone.
    let blocks = blocks_in_etcd(&etcd, "ov");
    assert!(
        blocks.len() == 1 && !blocks[0].ends_with(&a_block),
        "{blocks:?}"
    );
    assert!(h1.sh(&format!("ip link show ocx{VNI}")).stdout.is_empty());
}

#[test]
fn an_agent_that_cannot_write_its_files_says_why_in_the_setups_one_line() {
    let lab = Lab::new("helpers-agent-full");
    let _etcd = lab.etcd();
    let hosts = overlay_pair(&lab);
    let h1 = &hosts[0];
    full_tmpfs(h1, &h1.state_root().join("overlay/ov"));
    let bundle = h1.bundle("bridge", "a", OV, &[]);
    let line = one_hook_line(&h1.run_refused(Runtime::Runc, "a", &bundle));
    assert!(line.contains("No space left on device"), "{line}");
    assert_eq!(h1.leftovers(), Vec::<String>::new());
    wait_none_left(h1, AGENT, Duration::from_secs(2));
}
