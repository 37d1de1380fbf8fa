//! Network options through real runc containers: networks isolated from each other (`isolate`),
//! internal networks (`internal`) and `icc: false`, all in ocinet's own nftables table and its
//! bridges' ports.

use std::time::Duration;

use ocinet_tests::{Container, Host, Runtime};

const HTTPD: &[&str] = &["httpd", "-f", "-p", "80", "-h", "/www"];

fn wget(url: &str) -> String {
    format!("timeout 5 busybox wget -qO- {url}")
}

/// True when `from` gets an answer to one ping of `ip`.
fn pings(from: &Container<'_>, ip: &str) -> bool {
    from.exec(&["ping", "-c1", "-W2", ip]).status.success()
}

/// True when `from` gets the page of an httpd at `url`.
fn fetches(from: &Container<'_>, url: &str) -> bool {
    let out = from.exec(&["sh", "-c", &wget(url)]);
    String::from_utf8_lossy(&out.stdout).contains("hello from ocinet")
}

fn web<'h>(host: &'h Host, id: &str, annotations: &[(&str, &str)]) -> Container<'h> {
    let bundle = host.bundle("bridge", id, annotations, HTTPD);
    host.run_bundle(Runtime::Runc, id, &bundle).unwrap()
}

#[test]
fn networks_are_isolated_both_ways_but_published_ports_cross_through_the_host() {
    let host = Host::new("isolate");
    let outside = host.outside();
    host.define_network("n1", r#"{"subnets":[{"subnet":"10.91.0.0/24"}]}"#);
    host.define_network("n2", r#"{"subnets":[{"subnet":"10.92.0.0/24"}]}"#);
    let a = web(&host, "a", &[("io.ocinet.network", "n1")]);
    let b = web(
        &host,
        "b",
        &[("io.ocinet.network", "n2"), ("io.ocinet.ports", "8080:80")],
    );
    let (ip_a, ip_b) = (a.address().to_string(), b.address().to_string());
    std::thread::sleep(Duration::from_millis(200));
    // Nothing crosses directly: ping (ICMP), TCP, either way.
    assert!(!pings(&a, &ip_b));
    assert!(!pings(&b, &ip_a));
    assert!(!fetches(&a, &format!("http://{ip_b}/")));
    assert!(!fetches(&b, &format!("http://{ip_a}/")));
    let udp = a.exec(&[
        "sh",
        "-c",
        &format!("echo x | timeout 3 nc -u -w1 {ip_b} 53; echo sent"),
    ]);
    assert!(udp.status.success());
    // Each still reaches its gateway, the outside and the other's published port through the
    // host's addresses.
    assert!(pings(&a, "10.91.0.1"));
    assert!(pings(&a, "198.51.100.2"));
    assert!(pings(&b, "198.51.100.2"));
    assert!(fetches(&a, "http://10.91.0.1:8080/"));
    assert!(fetches(&a, "http://198.51.100.1:8080/"));
    let from_outside = outside.sh(&wget("http://198.51.100.1:8080/"));
    assert!(String::from_utf8_lossy(&from_outside.stdout).contains("hello from ocinet"));
    let table = host.sh_ok("nft list table inet ocinet");
    assert!(table.contains(r#""oc-n1" . "oc-n1""#), "{table}");

    // Two networks that do not isolate talk; one that does still keeps itself apart from them.
    host.define_network(
        "open1",
        r#"{"subnets":[{"subnet":"10.93.0.0/24"}],"isolate":false}"#,
    );
    host.define_network(
        "open2",
        r#"{"subnets":[{"subnet":"10.94.0.0/24"}],"isolate":false}"#,
    );
    let c = web(&host, "c", &[("io.ocinet.network", "open1")]);
    let d = web(&host, "d", &[("io.ocinet.network", "open2")]);
    let (ip_c, ip_d) = (c.address().to_string(), d.address().to_string());
    std::thread::sleep(Duration::from_millis(200));
    assert!(pings(&c, &ip_d));
    assert!(fetches(&d, &format!("http://{ip_c}/")));
    assert!(!pings(&c, &ip_a));
    assert!(!pings(&a, &ip_c));
    for x in [a, b, c, d] {
        x.delete().unwrap();
    }
    assert_eq!(host.leftovers(), Vec::<String>::new());
}

#[test]
fn an_internal_network_reaches_itself_and_the_host_not_the_outside() {
    let host = Host::new("internal");
    let _outside = host.outside();
    host.define_network(
        "inner",
        r#"{"subnets":[{"subnet":"10.95.0.0/24"}],"internal":true}"#,
    );
    let a = web(&host, "a", &[("io.ocinet.network", "inner")]);
    let b = host.start(Runtime::Runc, "b", &[("io.ocinet.network", "inner")]);
    std::thread::sleep(Duration::from_millis(200));
    assert!(fetches(&b, &format!("http://{}/", a.address())));
    assert!(pings(&a, &b.address().to_string()));
    assert!(pings(&a, "10.95.0.1"));
    host.sh_ok(&format!("busybox ping -c1 -W2 {}", a.address()));
    // No route out, and a route added by hand finds the forward chain.
    assert!(!a.sh_ok("ip route").contains("default"));
    assert!(!pings(&a, "198.51.100.2"));
    host.sh_ok(&format!(
        "nsenter --target {} --net ip route add default via 10.95.0.1",
        a.pid()
    ));
    assert!(!pings(&a, "198.51.100.2"));
    // Publishing a port on it is refused with one line, leaving nothing.
    let before = host.leftovers();
    let bundle = host.bundle(
        "bridge",
        "pub",
        &[
            ("io.ocinet.network", "inner"),
            ("io.ocinet.ports", "8081:80"),
        ],
        &[],
    );
    let why = host.run_refused(Runtime::Runc, "pub", &bundle);
    assert!(
        why.contains("network inner is internal: it publishes no ports"),
        "{why}"
    );
    assert_eq!(host.leftovers(), before);
    a.delete().unwrap();
    b.delete().unwrap();
    assert_eq!(host.leftovers(), Vec::<String>::new());
}

#[test]
fn without_icc_containers_of_a_network_cannot_reach_each_other_but_the_host_can() {
    let host = Host::new("icc");
    let _outside = host.outside();
    host.define_network(
        "apart",
        r#"{"subnets":[{"subnet":"10.96.0.0/24"}],"icc":false}"#,
    );
    let a = web(
        &host,
        "a",
        &[
            ("io.ocinet.network", "apart"),
            ("io.ocinet.ports", "8082:80"),
        ],
    );
    let b = web(&host, "b", &[("io.ocinet.network", "apart")]);
    let (ip_a, ip_b) = (a.address().to_string(), b.address().to_string());
    std::thread::sleep(Duration::from_millis(200));
    assert!(!pings(&a, &ip_b));
    assert!(!pings(&b, &ip_a));
    assert!(!fetches(&b, &format!("http://{ip_a}/")));
    // The host reaches both; each reaches the gateway, the outside and published ports.
    host.sh_ok(&format!(
        "busybox ping -c1 -W2 {ip_a} && busybox ping -c1 -W2 {ip_b}"
    ));
    assert!(pings(&a, "10.96.0.1"));
    assert!(pings(&b, "198.51.100.2"));
    // Published ports stay reachable from outside the network. (From b through the gateway
    // they are not when br_netfilter is loaded: it bridges the DNATed packet from b's
    // isolated port to a's, see README.)
    let page = host.sh_ok("timeout 5 busybox wget -qO- http://127.0.0.1:8082/");
    assert!(page.contains("hello from ocinet"), "{page}");
    assert!(host
        .sh_ok("ip -d link show master oc-apart")
        .contains("isolated on"));
    a.delete().unwrap();
    b.delete().unwrap();
    assert_eq!(host.leftovers(), Vec::<String>::new());
}

#[test]
fn routed_networks_are_isolated_internal_and_without_icc_as_bridges_are() {
    let host = Host::new("isolate-routed");
    let _outside = host.outside();
    let routed = |subnet: &str, extra: &str| {
        format!(r#"{{"driver":"routed","subnets":[{{"subnet":"{subnet}"}}]{extra}}}"#)
    };
    host.define_network("r1", &routed("10.97.0.0/24", ""));
    host.define_network("r2", &routed("10.98.0.0/24", ""));
    host.define_network("inner", &routed("10.99.0.0/24", r#","internal":true"#));
    host.define_network("apart", &routed("10.100.0.0/24", r#","icc":false"#));
    host.define_network("n1", r#"{"subnets":[{"subnet":"10.91.0.0/24"}]}"#);
    let a = web(&host, "a", &[("io.ocinet.network", "r1")]);
    let a2 = host.start(Runtime::Runc, "a2", &[("io.ocinet.network", "r1")]);
    let b = web(&host, "b", &[("io.ocinet.network", "r2")]);
    let c = web(
        &host,
        "c",
        &[("io.ocinet.network", "n1"), ("io.ocinet.ports", "8083:80")],
    );
    let (ip_a, ip_b, ip_c) = (
        a.address().to_string(),
        b.address().to_string(),
        c.address().to_string(),
    );
    std::thread::sleep(Duration::from_millis(200));
    // Inside one routed network: through the host, as before.
    assert!(pings(&a2, &ip_a));
    assert!(fetches(&a2, &format!("http://{ip_a}/")));
    // Routed to routed, and routed to bridge, neither way.
    assert!(!pings(&a, &ip_b));
    assert!(!pings(&b, &ip_a));
    assert!(!fetches(&b, &format!("http://{ip_a}/")));
    assert!(!pings(&a, &ip_c));
    assert!(!pings(&c, &ip_a));
    assert!(!fetches(&c, &format!("http://{ip_a}/")));
    assert!(!fetches(&a, &format!("http://{ip_c}/")));
    // The outside, and a published port through the host's address, still are.
    assert!(pings(&a, "198.51.100.2"));
    assert!(fetches(&a, "http://198.51.100.1:8083/"));

    // Internal: the host and its own network, not the outside.
    let d = web(&host, "d", &[("io.ocinet.network", "inner")]);
    let d2 = host.start(Runtime::Runc, "d2", &[("io.ocinet.network", "inner")]);
    std::thread::sleep(Duration::from_millis(200));
    assert!(fetches(&d2, &format!("http://{}/", d.address())));
    assert!(pings(&d, "10.99.0.1"));
    assert!(!pings(&d, "198.51.100.2"));

    // icc false: not each other, but the outside and the host.
    let e = web(&host, "e", &[("io.ocinet.network", "apart")]);
    let e2 = host.start(Runtime::Runc, "e2", &[("io.ocinet.network", "apart")]);
    std::thread::sleep(Duration::from_millis(200));
    assert!(!pings(&e2, &e.address().to_string()));
    assert!(!fetches(&e2, &format!("http://{}/", e.address())));
    assert!(pings(&e2, "198.51.100.2"));
    host.sh_ok(&format!("busybox ping -c1 -W2 {}", e.address()));

    // A reload (after a flush) puts the groups back.
    host.sh_ok("nft flush ruleset");
    host.shim(&["reload"]).unwrap();
    assert!(!pings(&a, &ip_b));
    assert!(pings(&a2, &ip_a));
    for x in [a, a2, b, c, d, d2, e, e2] {
        x.delete().unwrap();
    }
    assert_eq!(host.leftovers(), Vec::<String>::new());
}
