//! Names that resolve (`io.ocinet.name`, `io.ocinet.aliases`, networks with `dns`): real runc
//! and crun containers asking `ocinet-resolver` with busybox `nslookup`, a real `dnsmasq` as
//! the host's resolver in an "outside" namespace, the host's /etc/resolv.conf a private file
//! bind-mounted in the test's mount namespace.

use std::time::{Duration, Instant};

use ocinet_tests::{Container, Host, Runtime};

/// `nslookup NAME [SERVER]` from the container: the addresses it got, or None (NXDOMAIN,
/// no answer).
fn lookup(c: &Container<'_>, name: &str, server: Option<&str>) -> Option<Vec<String>> {
    let mut args = vec!["timeout", "8", "nslookup", name];
    args.extend(server);
    let out = c.exec(&args);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return None;
    }
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
