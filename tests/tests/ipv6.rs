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

const HTTPD: &[&str] = &["httpd", "-f", "-p", "80", "-h", "/www"];

fn wget(url: &str) -> String {
    format!("timeout 8 busybox wget -qO- {url}")
}

fn published_ports_answer_on_ipv6(runtime: Runtime) {
    let host = Host::new(&format!("ipv6-ports-{}", runtime.binary()));
    let outside = host.outside_dual();
    // A second IPv6 address of the host on the outside link, for a port published on it alone.
    host.sh_ok("ip addr add 2001:db8:2::10/64 dev ocout nodad");
    host.define_network("d", DUAL);
    let bundle = host.bundle(
        "bridge",
        "web",
        &[
            ON_DUAL,
            ("io.ocinet.ports", "8080:80,[2001:db8:2::10]:8081:80"),
        ],
        HTTPD,
    );
    let web = host.run_bundle(runtime, "web", &bundle).unwrap();
    let client = host.start(runtime, "client", &[ON_DUAL]);
    std::thread::sleep(Duration::from_millis(200));
    let from_outside = |url: &str| {
        let out = outside.sh(&wget(url));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    // `8080:80`: the host's IPv4 and IPv6 addresses.
    assert_eq!(
        from_outside("http://198.51.100.1:8080/"),
        "hello from ocinet"
    );
    assert_eq!(
        from_outside("http://[2001:db8:2::1]:8080/"),
        "hello from ocinet"
    );
    assert_eq!(
        from_outside("http://[2001:db8:2::10]:8080/"),
        "hello from ocinet"
    );
    // `[2001:db8:2::10]:8081:80`: that address only.
    assert_eq!(
        from_outside("http://[2001:db8:2::10]:8081/"),
        "hello from ocinet"
    );
    assert_eq!(from_outside("http://[2001:db8:2::1]:8081/"), "");
    assert_eq!(from_outside("http://198.51.100.1:8081/"), "");
    // Hairpin: another container, and the container itself, through the host's IPv6 address.
    assert_eq!(
        client.sh_ok(&wget("http://[2001:db8:2::1]:8080/")).trim(),
        "hello from ocinet"
    );
    assert_eq!(
        web.sh_ok(&wget("http://[2001:db8:2::10]:8081/")).trim(),
        "hello from ocinet"
    );
    // From the host itself, by its IPv6 address.
    assert_eq!(
        host.sh_ok(&wget("http://[2001:db8:2::1]:8080/")).trim(),
        "hello from ocinet"
    );
    // From the host to [::1]: Linux sends no loopback source out (IPv6 has no
    // route_localnet), so it is not forwarded: refused at once, never a silent time-out.
    let started = Instant::now();
    let out = host.sh("timeout 5 busybox wget -qO- http://[::1]:8080/");
    assert!(!out.status.success());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "[::1]:8080 hangs: {out:?}"
    );
    // The elements are in the IPv6 maps, and go with the container.
    assert!(host
        .sh_ok("nft list map inet ocinet dnat6_any")
        .contains("fd00:92::2 . 80"));
    client.delete().unwrap();
    web.delete().unwrap();
    assert_eq!(host.leftovers(), Vec::<String>::new());
    assert_eq!(from_outside("http://[2001:db8:2::1]:8080/"), "");
}

#[test]
fn runc_published_ports_answer_on_ipv6() {
    published_ports_answer_on_ipv6(Runtime::Runc);
}

#[test]
fn crun_published_ports_answer_on_ipv6() {
    published_ports_answer_on_ipv6(Runtime::Crun);
}

/// A dual-stack setup killed at every point leaves nothing once poststop or gc has run, the
/// IPv6 lease and DNAT elements included (the harness publishes 8080 on every address).
#[test]
fn crash_at_every_setup_point_of_a_dual_stack_container() {
    let host = Host::new("ipv6-crash");
    host.define_network("d", DUAL);
    host.crash_at_every_setup_point(ocinet::host::fault::SETUP_POINTS, &[ON_DUAL]);
}

/// `nft flush ruleset` takes the IPv6 masquerade and DNAT elements too; `ocinet-shim reload`
/// puts them back.
#[test]
fn reload_restores_the_ipv6_rules_after_a_flush() {
    let host = Host::new("ipv6-reload");
    let outside = host.outside_dual();
    host.define_network("d", DUAL);
    let bundle = host.bundle(
        "bridge",
        "web",
        &[ON_DUAL, ("io.ocinet.ports", "8080:80")],
        HTTPD,
    );
    let web = host.run_bundle(Runtime::Runc, "web", &bundle).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let reachable = || {
        let out = outside.sh("timeout 3 busybox wget -qO- http://[2001:db8:2::1]:8080/");
        String::from_utf8_lossy(&out.stdout).contains("hello from ocinet")
    };
    assert!(reachable());
    host.sh_ok("nft flush ruleset");
    assert!(!reachable());
    host.shim(&["reload"]).unwrap();
    assert!(reachable());
    assert!(host
        .sh_ok("nft list set inet ocinet masq_subnets6")
        .contains("fd00:92::/64"));
    web.delete().unwrap();
    assert_eq!(host.leftovers(), Vec::<String>::new());
}

/// Isolation between networks, `internal` and `icc: false` hold for IPv6 as for IPv4 (the
/// forward chain names bridges, whatever the family; port isolation is the bridge's).
#[test]
fn isolation_internal_and_icc_hold_for_ipv6() {
    let host = Host::new("ipv6-isolation");
    host.define_network("d", DUAL);
    host.define_network(
        "e",
        r#"{"subnets": [{"subnet": "10.97.0.0/24"}, {"subnet": "fd00:97::/64"}]}"#,
    );
    host.define_network(
        "in",
        r#"{"subnets": [{"subnet": "fd00:98::/64"}], "internal": true}"#,
    );
    host.define_network(
        "noicc",
        r#"{"subnets": [{"subnet": "fd00:99::/64"}], "icc": false}"#,
    );
    let a = host.start(Runtime::Runc, "a", &[ON_DUAL]);
    let b = host.start(Runtime::Crun, "b", &[("io.ocinet.network", "e")]);
    let i = host.start(Runtime::Runc, "i", &[("io.ocinet.network", "in")]);
    let n1 = host.start(Runtime::Runc, "n1", &[("io.ocinet.network", "noicc")]);
    let n2 = host.start(Runtime::Crun, "n2", &[("io.ocinet.network", "noicc")]);
    let (ip_a, ip_b, ip_n2) = (ipv6_of(&a), ipv6_of(&b), ipv6_of(&n2));
    let pings = |from: &Container<'_>, to: &str| {
        from.exec(&["ping", "-6", "-c1", "-W1", to])
            .status
            .success()
    };
    // The host routes between the networks, so only the forward chain keeps them apart.
    assert!(pings(&a, "fd00:97::1"), "a reaches the host's address on e");
    assert!(!pings(&a, &ip_b), "a (d) reached b (e) over IPv6");
    assert!(!pings(&b, &ip_a), "b (e) reached a (d) over IPv6");
    // Internal: no default route, and nothing leaves the bridge for another network.
    assert!(!i.sh_ok("ip -6 route").contains("default"));
    assert!(pings(&i, "fd00:98::1"));
    // Even with a default route added from outside (the container cannot add one itself).
    host.sh_ok(&format!(
        "nsenter --target {} --net ip -6 route add default via fd00:98::1",
        i.pid()
    ));
    assert!(
        !pings(&i, &ip_a),
        "an internal container reached another network"
    );
    // icc false: the ports of the bridge do not reach each other (neighbour discovery
    // included), the gateway stays reachable.
    assert!(pings(&n1, "fd00:99::1"));
    assert!(!pings(&n1, &ip_n2), "icc: false, yet n1 reached n2");
    // What kept d and e apart was ocinet's forward chain: without its rules they meet.
    host.sh_ok("nft flush chain inet ocinet forward");
    assert!(
        pings(&a, &ip_b),
        "a (d) cannot reach b (e) even without the forward chain"
    );
    for c in [a, b, i, n1, n2] {
        c.delete().unwrap();
    }
    assert_eq!(host.leftovers(), Vec::<String>::new());
}

/// A dual-stack routed network: a /128 per container routed by the host, the gateway on the
/// host's `lo` and a permanent neighbour on both sides, as for IPv4; traffic from the first
/// command, a published port over IPv6, nothing left.
#[test]
fn routed_dual_stack_containers() {
    let host = Host::new("ipv6-routed");
    let outside = host.outside_dual();
    host.define_network(
        "r",
        r#"{"driver": "routed", "subnets": [{"subnet": "10.91.0.0/24"}, {"subnet": "fd00:91::/64"}]}"#,
    );
    let on_r = ("io.ocinet.network", "r");
    let bundle = host.bundle(
        "bridge",
        "a",
        &[on_r, ("io.ocinet.ports", "8080:80")],
        HTTPD,
    );
    let a = host.run_bundle(Runtime::Runc, "a", &bundle).unwrap();
    assert_eq!(ipv6_of(&a), "fd00:91::2");
    let lines = ipv6_lines(&a);
    assert!(
        lines.contains("fd00:91::2/128") && !lines.contains("tentative"),
        "{lines}"
    );
    assert!(a
        .sh_ok("ip -6 route")
        .contains("default via fd00:91::1 dev eth0"));
    assert!(a.sh_ok("ip -6 neigh show fd00:91::1").contains("PERMANENT"));
    let (b, first) = start_first(
        &host,
        Runtime::Crun,
        "b",
        &[on_r],
        "ping -6 -c1 -W3 fd00:91::1 && ping -6 -c1 -W3 fd00:91::2",
    );
    assert!(first.contains("status 0"), "{first}");
    // The host's side: the gateway on lo, a /128 route and a permanent neighbour per container.
    assert!(host
        .sh_ok("ip -6 addr show dev lo")
        .contains("fd00:91::1/128"));
    assert!(host
        .sh_ok("ip -6 route show fd00:91::/64")
        .contains("unreachable fd00:91::/64"));
    let route = host.sh_ok("ip -6 route show fd00:91::2");
    assert!(
        route.contains("dev ocv") && route.contains("src fd00:91::1"),
        "{route}"
    );
    std::thread::sleep(Duration::from_millis(200));
    let out = outside.sh(&wget("http://[2001:db8:2::1]:8080/"));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "hello from ocinet"
    );
    a.delete().unwrap();
    b.delete().unwrap();
    assert_eq!(host.leftovers(), Vec::<String>::new());
}

/// The hook's second stage of the same container re-wires it: it keeps its address of each
/// family (both were free again), not only the IPv4 one.
#[test]
fn a_rewired_container_keeps_both_addresses() {
    let host = Host::new("ipv6-rewire");
    host.define_network("d", DUAL);
    let bundle = host.bundle(
        "bridge",
        "r",
        &[ON_DUAL, ("io.ocinet.ip6", "fd00:92::99")],
        &[],
    );
    let process = host.netns_process();
    let state = ocinet_tests::state_json("r", process.pid, &bundle);
    ocinet_tests::ok(&host.hook("createRuntime", &state));
    // Another container takes the cursors' next addresses meanwhile.
    let other = host.start(Runtime::Runc, "other", &[ON_DUAL]);
    // Without a static address the rewire must keep what the first stage leased.
    let bundle = host.bundle("bridge", "r", &[ON_DUAL], &[]);
    let state = ocinet_tests::state_json("r", process.pid, &bundle);
    ocinet_tests::ok(&host.hook("prestart", &state));
    let mut leases = host.leases("d");
    leases.sort();
    assert_eq!(
        leases,
        // r kept ::99; other took the next after the cursor (::9a), and r would have taken
        // ::9b had it not been kept.
        ["10.92.0.2", "10.92.0.3", "fd00:92::99", "fd00:92::9a"],
        "{leases:?}"
    );
    ocinet_tests::ok(&host.hook("poststop", &state));
    other.delete().unwrap();
    drop(process);
    assert_eq!(host.leftovers(), Vec::<String>::new());
}
