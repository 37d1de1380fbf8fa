//! Names that resolve (`io.ocinet.name`, `io.ocinet.aliases`, networks with `dns`): real runc
//! and crun containers asking `ocinet-resolver` with busybox `nslookup`, a real `dnsmasq` as
//! the host's resolver in an "outside" namespace, the host's /etc/resolv.conf a private file
//! bind-mounted in the test's mount namespace.

use std::time::{Duration, Instant};

use ocinet_tests::{Container, Host, Outside, Runtime};

/// Two dnsmasq in the outside namespace: 198.51.100.2 knows `outside.test` (203.0.113.7) and
/// `other.test`, and says NXDOMAIN in the search domain `example.test`; 198.51.100.3 knows nothing (REFUSED, having no upstream). The host's
/// /etc/resolv.conf (a private file bind-mounted over it in the host's mount namespace) lists
/// `servers`. Killed on drop.
struct Upstreams<'h> {
    outside: Outside,
    host: &'h Host,
}

impl<'h> Upstreams<'h> {
    fn start(host: &'h Host, servers: &[&str]) -> Upstreams<'h> {
        let outside = host.outside();
        let dir = host.dir.join("dns");
        std::fs::create_dir_all(&dir).unwrap();
        let out = outside.sh(&format!(
            "ip addr add 198.51.100.3/24 dev eth0 && \
             dnsmasq -C /dev/null -u root -k --no-resolv --no-hosts --bind-dynamic \
               --listen-address=198.51.100.2 -x {d}/a.pid --address=/outside.test/203.0.113.7 \
               --address=/other.test/203.0.113.8 --local=/example.test/ >{d}/a.log 2>&1 & \
             dnsmasq -C /dev/null -u root -k --no-resolv --no-hosts --bind-dynamic \
               --listen-address=198.51.100.3 -x {d}/b.pid >{d}/b.log 2>&1 & \
             for i in $(seq 50); do [ -s {d}/a.pid ] && [ -s {d}/b.pid ] && exit 0; sleep 0.1; done; exit 1",
            d = dir.display()
        ));
        let logs = |n: &str| std::fs::read_to_string(dir.join(n)).unwrap_or_default();
        assert!(
            out.status.success(),
            "dnsmasq: {} {} {}",
            String::from_utf8_lossy(&out.stderr),
            logs("a.log"),
            logs("b.log")
        );
        let conf: String = servers
            .iter()
            .map(|s| format!("nameserver {s}\n"))
            .collect();
        std::fs::write(
            dir.join("resolv.conf"),
            format!("search example.test\n{conf}"),
        )
        .unwrap();
        host.sh_ok(&format!(
            "mount --bind {d}/resolv.conf /etc/resolv.conf",
            d = dir.display()
        ));
        Upstreams { outside, host }
    }
}

impl Drop for Upstreams<'_> {
    fn drop(&mut self) {
        let dir = self.host.dir.join("dns");
        let _ = self.outside.sh(&format!(
            "kill $(cat {d}/a.pid) $(cat {d}/b.pid)",
            d = dir.display()
        ));
    }
}

/// `nslookup NAME [SERVER]` from the container: the addresses it got, or None (NXDOMAIN,
/// no answer).
fn lookup(c: &Container<'_>, name: &str, server: Option<&str>) -> Option<Vec<String>> {
    let mut args = vec!["timeout", "8", "nslookup", name];
    args.extend(server);
    let out = c.exec(&args);
    // Not the exit status: busybox asks A and AAAA, and fails if either fails (an upstream may
    // refuse AAAA).
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // busybox: "Server: ...\nAddress: ...:53\n\nName: web\nAddress: 10.91.0.2\n"
    let answers: Vec<String> = text
        .split("\n\n")
        .skip(1)
        .flat_map(|block| block.lines().map(str::to_string).collect::<Vec<_>>())
        .filter_map(|l| l.strip_prefix("Address:").map(|a| a.trim().to_string()))
        .collect();
    (!answers.is_empty()).then_some(answers)
}

fn resolver_pid(host: &Host) -> Option<i32> {
    let text = std::fs::read_to_string(host.state_root().join("resolver/resolver.pid")).ok()?;
    let pid: i32 = text.split_whitespace().next()?.parse().ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let state = stat[stat.rfind(')')? + 1..].trim_start().chars().next()?;
    (state != 'Z' && state != 'X').then_some(pid)
}

#[test]
fn names_and_aliases_resolve_on_shared_networks_only() {
    let host = Host::new("names");
    host.define_network("n1", r#"{"subnets":[{"subnet":"10.91.0.0/24"}]}"#);
    host.define_network("n2", r#"{"subnets":[{"subnet":"10.92.0.0/24"}]}"#);
    let web = host.start(
        Runtime::Runc,
        "web",
        &[
            ("io.ocinet.network", "n1"),
            ("io.ocinet.aliases", "www,site.local"),
        ],
    );
    let db = host.start(
        Runtime::Crun,
        "c-db",
        &[("io.ocinet.network", "n2"), ("io.ocinet.name", "db")],
    );
    let client = host.start(Runtime::Runc, "client", &[("io.ocinet.network", "n1")]);
    let both = host.start(Runtime::Crun, "both", &[("io.ocinet.network", "n2,n1")]);
    let gw1 = Some("10.91.0.1");
    assert_eq!(
        lookup(&client, "web", gw1),
        Some(vec![web.address().to_string()])
    );
    assert_eq!(
        lookup(&client, "WWW", gw1),
        Some(vec!["10.91.0.2".to_string()])
    );
    assert_eq!(
        lookup(&client, "site.local", gw1),
        Some(vec!["10.91.0.2".to_string()])
    );
    // db shares no network with client.
    assert_eq!(lookup(&client, "db", gw1), None);
    // both sits on both: each name on its own network.
    assert_eq!(
        lookup(&both, "db", Some("10.92.0.1")),
        Some(vec![db.address().to_string()])
    );
    assert_eq!(
        lookup(&both, "web", Some("10.92.0.1")),
        Some(vec!["10.91.0.2".to_string()])
    );
    assert_eq!(
        lookup(&db, "both", Some("10.92.0.1")),
        Some(vec!["10.92.0.3".to_string()])
    );
    // PTR.
    let out = client.exec(&["nslookup", "10.91.0.2", "10.91.0.1"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("name = web"), "{text}");
    // Nothing on the host's other addresses.
    assert!(host
        .sh("ss -Hlnu 'sport = :53'")
        .stdout
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .all(|l| String::from_utf8_lossy(l).contains("10.9")));
    // inspect shows names, aliases and every network; networks, the options.
    let inspect = host.shim(&["inspect", "both"]).unwrap();
    assert!(
        inspect.contains("n2") && inspect.contains("n1"),
        "{inspect}"
    );
    let inspect = host.shim(&["inspect", "web"]).unwrap();
    assert!(inspect.contains("www, site.local"), "{inspect}");
    let networks = host.shim(&["networks"]).unwrap();
    assert!(
        networks.contains("dns=true,internal=false,isolate=true,icc=true"),
        "{networks}"
    );
    web.delete().unwrap();
    assert_eq!(lookup(&client, "web", gw1), None);
    drop((db, client, both));
}

#[test]
fn containers_get_the_resolver_in_resolv_conf_and_other_names_are_forwarded() {
    let host = Host::new("names-fwd");
    // The first server refuses: the next answers.
    let _up = Upstreams::start(&host, &["198.51.100.3", "198.51.100.2"]);
    host.define_network("n1", r#"{"subnets":[{"subnet":"10.91.0.0/24"}]}"#);
    let bundle_rootfs = host.dir.clone();
    let web = host.start(Runtime::Runc, "web", &[("io.ocinet.network", "n1")]);
    let client = host.start(Runtime::Crun, "client", &[("io.ocinet.network", "n1")]);
    for c in [&web, &client] {
        let conf = c.sh_ok("cat /etc/resolv.conf");
        assert!(
            conf.contains("nameserver 10.91.0.1\nsearch example.test\n"),
            "{conf}"
        );
        assert_eq!(conf.matches("nameserver").count(), 1, "{conf}");
    }
    // The image's file is not touched (the rootfs is shared by every bundle).
    assert!(
        !ocinet_tests::rootfs().join("etc/resolv.conf").exists()
            || std::fs::read_to_string(ocinet_tests::rootfs().join("etc/resolv.conf"))
                .unwrap()
                .is_empty()
    );
    let _ = bundle_rootfs;
    assert_eq!(
        lookup(&client, "web", None),
        Some(vec!["10.91.0.2".to_string()])
    );
    assert_eq!(
        lookup(&web, "client", None),
        Some(vec!["10.91.0.3".to_string()])
    );
    assert_eq!(
        lookup(&client, "outside.test.", None),
        Some(vec!["203.0.113.7".to_string()])
    );
    // Over TCP too (busybox has no TCP lookup: a raw query with nc is overkill; dig is absent),
    // and a name the upstreams do not know: NXDOMAIN-like failure.
    assert_eq!(lookup(&client, "nowhere.invalid.", None), None);
    // The host's file changes: read again.
    std::fs::write(
        host.dir.join("dns/resolv.conf"),
        "nameserver 198.51.100.9\nnameserver 198.51.100.2\n",
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    // The first does not answer (timeout), the second does.
    let started = Instant::now();
    assert_eq!(
        lookup(&client, "other.test.", None),
        Some(vec!["203.0.113.8".to_string()])
    );
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_taken_name_and_bad_labels_are_refused_with_one_line_and_leave_nothing() {
    let host = Host::new("names-bad");
    host.define_network("n1", r#"{"subnets":[{"subnet":"10.91.0.0/24"}]}"#);
    let web = host.start(
        Runtime::Runc,
        "web",
        &[("io.ocinet.network", "n1"), ("io.ocinet.aliases", "www")],
    );
    let before = host.leftovers();
    for (annotations, why) in [
        (
            vec![("io.ocinet.network", "n1"), ("io.ocinet.name", "WWW")],
            "name www is already held on network n1 by container web",
        ),
        (
            vec![("io.ocinet.network", "n1"), ("io.ocinet.name", "-bad")],
            "is not a DNS name",
        ),
        (
            vec![("io.ocinet.network", "n1"), ("io.ocinet.aliases", "ok,a b")],
            "is not a DNS name",
        ),
    ] {
        let bundle = host.bundle("bridge", "x", &annotations, &[]);
        let refused = host.run_refused(Runtime::Runc, "x", &bundle);
        assert!(refused.contains(why), "{annotations:?}: {refused}");
        assert_eq!(refused.trim_end().lines().count(), 1, "{refused}");
        assert_eq!(host.leftovers(), before, "{annotations:?}");
    }
    assert_eq!(
        lookup(&web, "www", Some("10.91.0.1")),
        Some(vec!["10.91.0.2".to_string()])
    );
    web.delete().unwrap();
    assert_eq!(host.leftovers(), Vec::<String>::new());
}

#[test]
fn a_killed_resolver_comes_back_with_every_name_and_the_last_container_stops_it() {
    let host = Host::new("names-kill");
    host.define_network("n1", r#"{"subnets":[{"subnet":"10.91.0.0/24"}]}"#);
    let web = host.start(Runtime::Runc, "web", &[("io.ocinet.network", "n1")]);
    let first = resolver_pid(&host).expect("a resolver runs");
    // Detached: its own session, not the runtime's.
    let stat = std::fs::read_to_string(format!("/proc/{first}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    assert_eq!(fields[3], first.to_string(), "session id: {stat}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while resolver_pid(&host) == Some(first) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    // Another one runs by now (its keeper restarted it, or the next setup starts one) and knows
    // web too.
    let db = host.start(Runtime::Crun, "db", &[("io.ocinet.network", "n1")]);
    let second = resolver_pid(&host).expect("a new resolver");
    assert_ne!(first, second);
    assert_eq!(
        lookup(&db, "web", None),
        Some(vec!["10.91.0.2".to_string()])
    );
    assert_eq!(
        lookup(&web, "db", None),
        Some(vec!["10.91.0.3".to_string()])
    );
    web.delete().unwrap();
    assert_eq!(lookup(&db, "web", None), None);
    assert_eq!(resolver_pid(&host), Some(second));
    db.delete().unwrap();
    // No name left: it leaves (after a second's grace).
    let deadline = Instant::now() + Duration::from_secs(5);
    while resolver_pid(&host).is_some() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(resolver_pid(&host), None);
    assert!(!host.state_root().join("resolver/control.sock").exists());
    assert_eq!(host.leftovers(), Vec::<String>::new());
}

/// How many containers to start and resolve at once (`OCINET_NAMES_AT_ONCE`; the benchmark
/// runs 100).
fn at_once() -> usize {
    std::env::var("OCINET_NAMES_AT_ONCE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30)
}

#[test]
fn a_name_resolves_as_soon_as_its_setup_returns() {
    let host = Host::new("names-now");
    host.define_network("n1", r#"{"subnets":[{"subnet":"10.91.0.0/24"}]}"#);
    let client = host.start(Runtime::Runc, "client", &[("io.ocinet.network", "n1")]);
    let n = at_once();
    let mut resolved = 0;
    for i in 0..n {
        let id = format!("s{i}");
        let c = host.start(Runtime::Runc, &id, &[("io.ocinet.network", "n1")]);
        // Asked the moment `runc run -d` returned: no retry, no wait.
        let got = lookup(&client, &id, Some("10.91.0.1"));
        if got == Some(vec![c.address().to_string()]) {
            resolved += 1;
        }
        c.delete().unwrap();
        // Gone when the teardown returned.
        assert_eq!(lookup(&client, &id, Some("10.91.0.1")), None, "{id}");
    }
    assert_eq!(resolved, n);
}

#[test]
fn dual_stack_names_answer_aaaa_and_an_ipv6_only_network_gets_an_ipv6_nameserver() {
    let host = Host::new("names-six");
    host.define_network(
        "d",
        r#"{"subnets":[{"subnet":"10.93.0.0/24"},{"subnet":"fd00:93::/64"}]}"#,
    );
    host.define_network("o", r#"{"subnets":[{"subnet":"fd00:94::/120"}]}"#);
    let web = host.start(Runtime::Runc, "web", &[("io.ocinet.network", "d")]);
    let client = host.start(Runtime::Crun, "client", &[("io.ocinet.network", "d")]);
    // busybox asks A and AAAA: both families' addresses, over either family's server.
    for server in ["10.93.0.1", "fd00:93::1"] {
        let mut got = lookup(&client, "web", Some(server)).unwrap_or_default();
        got.sort();
        assert_eq!(got, ["10.93.0.2", "fd00:93::2"], "asked {server}");
    }
    let out = client.exec(&["nslookup", "fd00:93::2", "10.93.0.1"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("name = web"), "{text}");
    // An IPv6-only network: the resolver at its IPv6 gateway is the nameserver.
    let a = host.start(Runtime::Runc, "a6", &[("io.ocinet.network", "o")]);
    let b = host.start(Runtime::Crun, "b6", &[("io.ocinet.network", "o")]);
    let conf = b.sh_ok("cat /etc/resolv.conf");
    assert!(conf.contains("nameserver fd00:94::1\n"), "{conf}");
    assert_eq!(lookup(&b, "a6", None), Some(vec!["fd00:94::2".to_string()]));
    // No name crosses networks in either family.
    assert_eq!(lookup(&b, "web", None), None);
    web.delete().unwrap();
    assert_eq!(lookup(&client, "web", Some("fd00:93::1")), None);
    drop((client, a, b));
}
