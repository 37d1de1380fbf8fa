//! Routed networks (`"driver": "routed"`) through real runc containers: no bridge, a /32 per
//! container routed by the host, which answers for the gateway. Traffic between containers, to
//! the host and outside, published ports, crashes, and nothing left after delete.

use std::time::Duration;

use ocinet::host::fault::ROUTED_SETUP_POINTS;
use ocinet_tests::{Host, Runtime};

const ROUTED: &str = r#"{"driver": "routed", "subnets": [{"subnet": "10.91.0.0/24"}]}"#;
const ON_ROUTED: (&str, &str) = ("io.ocinet.network", "r");

fn wget(url: &str) -> String {
    format!("timeout 8 busybox wget -qO- {url}")
}

#[test]
fn runc_routed_containers_reach_each_other_the_host_and_the_outside() {
    let host = Host::new("routed");
    host.define_network("r", ROUTED);
    let outside = host.outside();
    let received = outside.receive_one(8000);
    let a = host.start(Runtime::Runc, "a", &[ON_ROUTED]);
    let b = host.start(Runtime::Runc, "b", &[ON_ROUTED]);
    let (ip_a, ip_b) = (a.address(), b.address());
    assert_eq!(
        (ip_a.to_string(), ip_b.to_string()),
        ("10.91.0.2".into(), "10.91.0.3".into())
    );
    // The container's side: a /32, the gateway a permanent neighbour, an on-link default route.
    assert!(a
        .sh_ok("ip -o -4 addr show dev eth0")
        .contains("10.91.0.2/32"));
    assert!(a
        .sh_ok("ip route")
        .contains("default via 10.91.0.1 dev eth0 onlink"));
    assert!(a.sh_ok("ip neigh show 10.91.0.1").contains("PERMANENT"));
    a.sh_ok(&format!("ping -c1 -W3 {ip_b}"));
    b.sh_ok(&format!("ping -c1 -W3 {ip_a}"));
    // The host, at the gateway (on its lo) and at its other addresses.
    a.sh_ok("ping -c1 -W3 10.91.0.1");
    a.sh_ok("ping -c1 -W3 198.51.100.1");
    host.sh_ok(&format!("busybox ping -c1 -W3 {ip_a}"));
    // No broadcast domain: a never asked for b, nor b for anything.
    assert!(!a.sh_ok("ip neigh").contains(&ip_b.to_string()));
    assert!(!b.sh_ok("ip neigh").contains("REACHABLE"));
    // The host's side: no bridge, a /32 route from the gateway's address and a permanent
    // neighbour per container, the gateway on lo, the rest of the subnet unreachable.
    let veth = host.sh_ok(&format!("ip -o route show {ip_a}"));
    assert!(
        veth.contains("dev ocv") && veth.contains("src 10.91.0.1"),
        "{veth}"
    );
    let dev = veth
        .split_whitespace()
        .nth(2)
        .unwrap_or_default()
        .to_string();
    assert!(!host
        .sh_ok(&format!("ip -d link show {dev}"))
        .contains("master"));
    assert!(host
        .sh_ok(&format!("ip neigh show dev {dev}"))
        .contains("PERMANENT"));
    assert!(host
        .sh_ok("ip -4 addr show dev lo")
        .contains("10.91.0.1/32"));
    assert!(host
        .sh_ok("ip route show 10.91.0.0/24")
        .contains("unreachable 10.91.0.0/24"));
    assert!(!a
        .exec(&["ping", "-c1", "-W1", "10.91.0.200"])
        .status
        .success());
    // Neither end has IPv6 addresses of its own, as on a bridge network.
    assert!(!a.sh_ok("ip addr show dev eth0").contains("inet6"));
    assert!(!host
        .sh_ok(&format!("ip addr show dev {dev}"))
        .contains("inet6"));
    // Outside, masqueraded: the outside sees the host's address.
    a.sh_ok("ping -c1 -W3 198.51.100.2");
    b.sh_ok("echo hello-outside | timeout 8 nc 198.51.100.2 8000");
    let (peer, line) = received.join().unwrap();
    assert_eq!(line.trim(), "hello-outside");
    assert_eq!(peer.ip().to_string(), "198.51.100.1");
    a.delete().unwrap();
    b.delete().unwrap();
    assert_eq!(host.leftovers(), Vec::<String>::new());
    assert_eq!(host.sh_ok("ip route show 10.91.0.2"), "");
}

#[test]
fn a_published_port_on_a_routed_network_is_reachable_from_outside_the_host_and_containers() {
    let host = Host::new("routed-ports");
    host.define_network("r", ROUTED);
    let outside = host.outside();
    let httpd = &["httpd", "-f", "-p", "80", "-h", "/www"];
    let annotations = [ON_ROUTED, ("io.ocinet.ports", "8080:80")];
    let bundle = host.bundle("bridge", "web", &annotations, httpd);
    let web = host.run_bundle(Runtime::Runc, "web", &bundle).unwrap();
    let client = host.start(Runtime::Runc, "client", &[ON_ROUTED]);
    std::thread::sleep(Duration::from_millis(200));
    let hello = "hello from ocinet";
    let from_outside = outside.sh(&wget("http://198.51.100.1:8080/"));
    assert_eq!(String::from_utf8_lossy(&from_outside.stdout).trim(), hello);
    assert_eq!(host.sh_ok(&wget("http://127.0.0.1:8080/")).trim(), hello);
    // Hairpin, through the host's routes: another container, and the container itself.
    for url in ["http://10.91.0.1:8080/", "http://198.51.100.1:8080/"] {
        assert_eq!(client.sh_ok(&wget(url)).trim(), hello, "{url}");
    }
    assert_eq!(web.sh_ok(&wget("http://198.51.100.1:8080/")).trim(), hello);
    client.delete().unwrap();
    web.delete().unwrap();
    assert_eq!(host.leftovers(), Vec::<String>::new());
    assert!(!outside
        .sh(&wget("http://198.51.100.1:8080/"))
        .status
        .success());
}

#[test]
fn routed_and_bridge_containers_reach_each_other_through_the_host() {
    let host = Host::new("routed-bridge");
    // Networks isolate by default (tests/tests/isolation.rs): this one lets traffic through.
    host.define_network(
        "r",
        r#"{"driver": "routed", "subnets": [{"subnet": "10.91.0.0/24"}], "isolate": false}"#,
    );
    host.define_network(
        "b",
        r#"{"subnets": [{"subnet": "10.92.0.0/24"}], "isolate": false}"#,
    );
    let routed = host.start(Runtime::Runc, "routed", &[ON_ROUTED]);
    let bridged = host.start(Runtime::Runc, "bridged", &[("io.ocinet.network", "b")]);
    bridged.sh_ok(&format!("ping -c1 -W3 {}", routed.address()));
    routed.sh_ok(&format!("ping -c1 -W3 {}", bridged.address()));
    let listing = host.shim(&["ls"]).unwrap();
    assert!(listing.contains("routed:r"), "{listing}");
    routed.delete().unwrap();
    bridged.delete().unwrap();
    assert_eq!(host.leftovers(), Vec::<String>::new());
}

#[test]
fn crash_at_every_routed_setup_point_then_teardown_or_gc() {
    let host = Host::new("routed-crash");
    host.define_network("r", ROUTED);
    host.crash_at_every_setup_point(ROUTED_SETUP_POINTS, &[ON_ROUTED]);
    // The network works afterwards.
    let c = host.start(Runtime::Runc, "after", &[ON_ROUTED]);
    c.sh_ok("ping -c1 -W3 10.91.0.1");
    c.delete().unwrap();
    assert_eq!(host.leftovers(), Vec::<String>::new());
}
