//! IPv6 dual stack on bridge networks, through real runc and crun containers: both addresses
//! and both default routes on eth0, no tentative address when the hook returns (a container's
//! first command reaches the gateway and another container over IPv6), no router
//! advertisements accepted, and nothing left after delete.

use std::time::{Duration, Instant};

use ocinet_tests::{Container, Host, Runtime};

const DUAL: &str = r#"{"subnets": [{"subnet": "10.92.0.0/24"}, {"subnet": "fd00:92::/64", "gateway": "fd00:92::1"}]}"#;
const ON_DUAL: (&str, &str) = ("io.ocinet.network", "d");

/// The container's global IPv6 addresses on eth0, as `ip -o -6 addr` shows them (with flags).
fn ipv6_lines(c: &Container<'_>) -> String {
    c.sh_ok("ip -o -6 addr show dev eth0")
}

/// The container's global IPv6 address on eth0.
fn ipv6_of(c: &Container<'_>) -> String {
    let out = ipv6_lines(c);
    let cidr = out
        .split_whitespace()
        .skip_while(|w| *w != "inet6")
        .nth(1)
        .unwrap_or_else(|| panic!("no inet6 on {}: {out}", c.id));
    cidr.split('/').next().unwrap_or_default().to_string()
}

/// Starts `id` whose first command is `script` (its output and status kept in /tmp/first, then
/// it sleeps); returns the container and that output once the script has finished.
fn start_first<'h>(
    host: &'h Host,
    runtime: Runtime,
    id: &str,
    annotations: &[(&str, &str)],
    script: &str,
) -> (Container<'h>, String) {
    let wrapped =
        format!("({script}) >/tmp/first 2>&1; echo \"status $?\" >>/tmp/first; exec sleep 3600");
    let bundle = host.bundle("bridge", id, annotations, &["sh", "-c", &wrapped]);
    let c = host
        .run_bundle(runtime, id, &bundle)
        .unwrap_or_else(|e| panic!("{} run {id}: {e}", runtime.binary()));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = c.exec(&["cat", "/tmp/first"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.contains("status ") {
            return (c, text);
        }
        assert!(
            Instant::now() < deadline,
            "{id}'s first command hangs: {text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn dual_stack_containers_talk_from_their_first_command(runtime: Runtime) {
    let host = Host::new(&format!("ipv6-dual-{}", runtime.binary()));
    host.define_network("d", DUAL);
    let a = host.start(runtime, "a", &[ON_DUAL]);
    assert_eq!(a.address().to_string(), "10.92.0.2");
    let ip_a = ipv6_of(&a);
    assert_eq!(ip_a, "fd00:92::2");
    // Usable at once: no tentative (or dadfailed) flag, and no link-local address of its own.
    let lines = ipv6_lines(&a);
    assert!(lines.contains("fd00:92::2/64"), "{lines}");
    assert!(
        !lines.contains("tentative") && !lines.contains("fe80"),
        "{lines}"
    );
    // Both default routes.
    assert!(a
        .sh_ok("ip -4 route")
        .contains("default via 10.92.0.1 dev eth0"));
    assert!(a
        .sh_ok("ip -6 route")
        .contains("default via fd00:92::1 dev eth0"));
    // No router advertisements accepted by the container's side or by the bridge.
    assert_eq!(
        a.sh_ok("cat /proc/sys/net/ipv6/conf/eth0/accept_ra").trim(),
        "0"
    );
    assert_eq!(
        host.sh_ok("cat /proc/sys/net/ipv6/conf/oc-d/accept_ra")
            .trim(),
        "0"
    );
    // The gateway on the bridge is usable at once too (its link-local address may still be
    // tentative: nothing uses it).
    let bridge = host.sh_ok("ip -o -6 addr show dev oc-d scope global");
    assert!(
        bridge.contains("fd00:92::1/64") && !bridge.contains("tentative"),
        "{bridge}"
    );

    // The first command of the next container: the gateway, then a, over IPv6.
    let (b, first) = start_first(
        &host,
        runtime,
        "b",
        &[ON_DUAL],
        &format!("ping -6 -c1 -W3 fd00:92::1 && ping -6 -c1 -W3 {ip_a}"),
    );
    assert!(first.contains("status 0"), "{first}");
    let ip_b = ipv6_of(&b);
    assert_eq!(ip_b, "fd00:92::3");
    a.sh_ok(&format!("ping -6 -c1 -W3 {ip_b}"));
    // The host reaches both over IPv6 through the bridge.
    host.sh_ok(&format!("busybox ping -6 -c1 -W3 {ip_a}"));

    // The shim's views list both families.
    let ls = host.shim(&["ls"]).unwrap();
    assert!(ls.contains("10.92.0.2/24, fd00:92::2/64"), "{ls}");
    let inspect = host.shim(&["inspect", "b"]).unwrap();
    assert!(
        inspect.contains("fd00:92::3/64") && inspect.contains("fd00:92::1"),
        "{inspect}"
    );
    let mut leases = host.leases("d");
    leases.sort();
    assert_eq!(
        leases,
        ["10.92.0.2", "10.92.0.3", "fd00:92::2", "fd00:92::3"]
    );
    a.delete().unwrap();
    b.delete().unwrap();
    assert_eq!(host.leftovers(), Vec::<String>::new());
    assert!(host.leases("d").is_empty());
}

#[test]
fn runc_dual_stack_containers_talk_from_their_first_command() {
    dual_stack_containers_talk_from_their_first_command(Runtime::Runc);
}

#[test]
fn crun_dual_stack_containers_talk_from_their_first_command() {
    dual_stack_containers_talk_from_their_first_command(Runtime::Crun);
}

/// `OCINET_IPV6_STARTS` starts (10 by default; the benchmark's 50 with 50): every one's first
/// command reaches the gateway and a neighbour over IPv6.
#[test]
fn every_start_reaches_the_gateway_at_once() {
    let starts: usize = std::env::var("OCINET_IPV6_STARTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let host = Host::new("ipv6-starts");
    host.define_network("d", DUAL);
    let peer = host.start(Runtime::Runc, "peer", &[ON_DUAL]);
    let ip_peer = ipv6_of(&peer);
    for i in 0..starts {
        let runtime = if i % 2 == 0 {
            Runtime::Runc
        } else {
            Runtime::Crun
        };
        let id = format!("s{i}");
        let (c, first) = start_first(
            &host,
            runtime,
            &id,
            &[ON_DUAL],
            &format!("ping -6 -c1 -W2 fd00:92::1 && ping -6 -c1 -W2 {ip_peer}"),
        );
        assert!(first.contains("status 0"), "start {i}: {first}");
        c.delete().unwrap();
    }
    peer.delete().unwrap();
    assert_eq!(host.leftovers(), Vec::<String>::new());
}

#[test]
fn ipv6_only_network_and_static_addresses() {
    let host = Host::new("ipv6-only");
    host.define_network("six", r#"{"subnets": [{"subnet": "fd00:96::/120"}]}"#);
    host.define_network("d", DUAL);
    let a = host.start(
        Runtime::Runc,
        "a",
        &[
            ("io.ocinet.network", "six"),
            ("io.ocinet.ip6", "fd00:96::42"),
        ],
    );
    assert_eq!(ipv6_of(&a), "fd00:96::42");
    assert!(!a.sh_ok("ip -4 addr show dev eth0").contains("inet "));
    assert!(a
        .sh_ok("ip -6 route")
        .contains("default via fd00:96::1 dev eth0"));
    let (b, first) = start_first(
        &host,
        Runtime::Crun,
        "b",
        &[("io.ocinet.network", "six")],
        "ping -6 -c1 -W3 fd00:96::42",
    );
    assert!(first.contains("status 0"), "{first}");
    // Taken, outside, or on a network without IPv6: refused with one line, nothing left.
    for (id, network, ip6, says) in [
        ("c1", "six", "fd00:96::42", "already leased to container a"),
        ("c2", "six", "fd00:97::5", "cannot be leased on network six"),
        ("c3", "six", "fd00:96::1", "cannot be leased on network six"),
        ("c4", "ocinet", "fd00:96::5", "has no IPv6 subnet"),
    ] {
        let bundle = host.bundle(
            "bridge",
            id,
            &[("io.ocinet.network", network), ("io.ocinet.ip6", ip6)],
            &[],
        );
        let why = host.run_refused(Runtime::Runc, id, &bundle);
        assert!(why.contains(says), "{id}: {why}");
    }
    // The dual-stack network's IPv4 static address with a static IPv6 one.
    let c = host.start(
        Runtime::Runc,
        "c",
        &[
            ON_DUAL,
            ("io.ocinet.ip", "10.92.0.50"),
            ("io.ocinet.ip6", "fd00:92::50"),
        ],
    );
    assert_eq!(c.address().to_string(), "10.92.0.50");
    assert_eq!(ipv6_of(&c), "fd00:92::50");
    for c in [a, b, c] {
        c.delete().unwrap();
    }
    assert_eq!(host.leftovers(), Vec::<String>::new());
}

/// radvd in the outside namespace, advertising 2001:db8:1::/64 and itself as the default
/// router to the host; stopped on drop.
struct Radvd<'o> {
    outside: &'o ocinet_tests::Outside,
    pidfile: std::path::PathBuf,
}

impl<'o> Radvd<'o> {
    fn start(host: &Host, outside: &'o ocinet_tests::Outside) -> Radvd<'o> {
        let conf = host.dir.join("radvd.conf");
        std::fs::write(
            &conf,
            "interface eth0 {\n  AdvSendAdvert on;\n  MinRtrAdvInterval 3;\n  MaxRtrAdvInterval 4;\n  AdvDefaultLifetime 600;\n  prefix 2001:db8:1::/64 { AdvOnLink on; AdvAutonomous on; };\n};\n",
        )
        .unwrap();
        let pidfile = host.dir.join("radvd.pid");
        let out = outside.sh(&format!(
            "sysctl -qw net.ipv6.conf.all.forwarding=1 && ip addr add 2001:db8:1::1/64 dev eth0 && radvd -C {} -p {} -m logfile -l {} </dev/null >/dev/null 2>&1",
            conf.display(),
            pidfile.display(),
            host.dir.join("radvd.log").display()
        ));
        assert!(out.status.success(), "radvd: {out:?}");
        Radvd { outside, pidfile }
    }
}

impl Drop for Radvd<'_> {
    fn drop(&mut self) {
        let _ = self
            .outside
            .sh(&format!("kill $(cat {})", self.pidfile.display()));
    }
}

/// Waits (at most 10 s) until `script` in the host prints something containing `what`.
fn wait_for(host: &Host, script: &str, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = String::from_utf8_lossy(&host.sh(script).stdout).into_owned();
        if out.contains(what) {
            return out;
        }
        assert!(Instant::now() < deadline, "{script}: no {what:?} in {out}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The peer address of one TCP connection to `[2001:db8:1::1]:port` in the outside namespace,
/// made by `from` with busybox nc.
fn egress_source(outside: &ocinet_tests::Outside, from: &Container<'_>, port: u16) -> String {
    let listener = ocinet_tests::in_netns(outside.pid(), move || {
        std::net::TcpListener::bind(("2001:db8:1::1", port)).unwrap()
    });
    let accepted = std::thread::spawn(move || listener.accept().map(|(_, peer)| peer.ip()));
    from.sh_ok(&format!(
        "echo hi | timeout 8 busybox nc 2001:db8:1::1 {port}"
    ));
    accepted.join().unwrap().unwrap().to_string()
}

#[test]
fn forwarding_keeps_the_hosts_advertised_route_and_egress_leaves_masqueraded_or_routed() {
    let host = Host::new("ipv6-ra");
    let outside = host.outside();
    let _radvd = Radvd::start(&host, &outside);
    // The host learns its address and default route from the advertisements, as a host whose
    // uplink is configured by its router does.
    assert_eq!(
        host.sh_ok("cat /proc/sys/net/ipv6/conf/all/forwarding")
            .trim(),
        "0"
    );
    wait_for(&host, "ip -6 route show default", "proto ra");
    let slaac = wait_for(
        &host,
        "ip -o -6 addr show dev ocout scope global -tentative",
        "2001:db8:1:",
    );
    let host_ip = slaac
        .split_whitespace()
        .skip_while(|w| *w != "inet6")
        .nth(1)
        .and_then(|c| c.split('/').next())
        .unwrap()
        .to_string();

    host.define_network("d", DUAL);
    host.define_network(
        "r6",
        r#"{"subnets": [{"subnet": "fd00:95::/64"}], "masquerade": false}"#,
    );
    let a = host.start(Runtime::Runc, "a", &[ON_DUAL]);
    // Forwarding is on, and the host kept its advertised default route.
    assert_eq!(
        host.sh_ok("cat /proc/sys/net/ipv6/conf/all/forwarding")
            .trim(),
        "1"
    );
    assert_eq!(
        host.sh_ok("cat /proc/sys/net/ipv6/conf/ocout/accept_ra")
            .trim(),
        "2"
    );
    assert!(host.sh_ok("ip -6 route show default").contains("proto ra"));
    let log = host.shim(&["logs", "a"]).unwrap();
    assert!(log.contains("accept_ra set to 2 on ocout"), "{log}");
    // Still kept after the next advertisement (radvd sends one every 3-4 s).
    std::thread::sleep(Duration::from_secs(5));
    assert!(host.sh_ok("ip -6 route show default").contains("proto ra"));

    // Egress from a ULA subnet: masqueraded to the host's address.
    assert_eq!(egress_source(&outside, &a, 8001), host_ip);
    // `masquerade: false`: routed as it is (the router has a route back through the host).
    let b = host.start(Runtime::Crun, "b", &[("io.ocinet.network", "r6")]);
    outside.sh(&format!("ip -6 route add fd00:95::/64 via {host_ip}"));
    assert_eq!(egress_source(&outside, &b, 8002), ipv6_of(&b));
    a.delete().unwrap();
    b.delete().unwrap();
    assert_eq!(host.leftovers(), Vec::<String>::new());
}
