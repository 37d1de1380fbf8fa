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
