//! Overlay networks across hosts: cluster hosts (network namespaces on a lab's underlay bridge),
//! a real etcd, real runc containers, real traffic through VXLAN.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::time::{Duration, Instant};

use ocinet_tests::{in_netns, Host, Lab, Runtime, TcpListener};

const VNI: u32 = 4200;

/// The same overlay network file on every host; `extra` adds fields.
fn define_overlay(hosts: &[&Host], name: &str, subnet: &str, extra: &str) {
    for host in hosts {
        host.define_network(
            name,
            &format!(
                r#"{{"driver": "overlay", "subnets": [{{"subnet": "{subnet}"}}],
                 "etcd": {{"endpoints": ["http://192.0.2.1:2379"]}}, "vni": {VNI}, "ttl": 5{extra}}}"#
            ),
        );
    }
}

fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < within, "{what} within {within:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    start.elapsed()
}

/// Counts the VXLAN datagrams crossing the lab's underlay bridge.
fn count_vxlan_on_the_underlay(lab: &Lab) {
    lab.sh_ok(
        "nft add table bridge underlay && \
         nft add chain bridge underlay counting '{ type filter hook forward priority 0; }' && \
         nft add rule bridge underlay counting udp dport 4789 counter",
    );
}

fn vxlan_packets(lab: &Lab) -> u64 {
    let listing = lab.sh_ok("nft list chain bridge underlay counting");
    listing
        .split_whitespace()
        .skip_while(|w| *w != "packets")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The routes the overlay agent programmed on `host`.
fn peer_routes(host: &Host) -> String {
    host.sh_ok("ip route show proto 111")
}

fn agent_running(host: &Host) -> bool {
    let out = host.sh("ps -eo args");
    let root = host.state_root();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.contains("ocinet-agent") && l.contains(&*root.to_string_lossy()))
}

#[test]
fn containers_on_two_hosts_talk_directly_through_vxlan_and_leave_nothing() {
    let lab = Lab::new("ov-talk");
    let _etcd = lab.etcd();
    count_vxlan_on_the_underlay(&lab);
    let h1 = lab.host("h1");
    let h2 = lab.host("h2");
    define_overlay(&[&h1, &h2], "ov", "10.200.0.0/16", "");
    let a = h1.start(Runtime::Runc, "a", &[("io.ocinet.network", "ov")]);
    let b = h2.start(Runtime::Runc, "b", &[("io.ocinet.network", "ov")]);
    let (a_ip, b_ip) = (a.address(), b.address());
    assert_ne!(
        a_ip.octets()[..3],
        b_ip.octets()[..3],
        "each host has a block of its own"
    );

    // Ping both ways (the second host's agent may need its first second to see the first).
    wait_until("a pings b", Duration::from_secs(3), || {
        a.exec(&["ping", "-c1", "-W1", &b_ip.to_string()])
            .status
            .success()
    });
    b.sh_ok(&format!("ping -c1 -W2 {a_ip}"));

    // TCP from a to a server in b's namespace: it sees a's own address (no NAT).
    let listener = in_netns(b.pid(), || TcpListener::bind("0.0.0.0:9000").unwrap());
    let server = std::thread::spawn(move || {
        let (mut conn, peer) = listener.accept().unwrap();
        conn.write_all(b"hello").unwrap();
        peer
    });
    let got = in_netns(a.pid(), move || {
        let mut conn = TcpStream::connect((b_ip, 9000)).unwrap();
        let mut text = String::new();
        conn.read_to_string(&mut text).unwrap();
        text
    });
    assert_eq!(got, "hello");
    assert_eq!(server.join().unwrap().ip(), std::net::IpAddr::V4(a_ip));
    assert!(
        vxlan_packets(&lab) > 0,
        "no VXLAN datagram crossed the underlay"
    );

    // Links: the underlay's 1500 less VXLAN's 50.
    for c in [&a, &b] {
        assert!(c.sh_ok("ip -o link show eth0").contains("mtu 1450"));
    }
    assert!(h1
        .sh_ok(&format!("ip -o link show ocx{VNI}"))
        .contains("mtu 1450"));
    assert!(peer_routes(&h1).contains(&format!("{}.0/24", octets3(b_ip))));
    let networks = h1.shim(&["networks"]).unwrap();
    assert!(
        networks.contains("overlay") && networks.contains("192.0.2.12"),
        "{networks}"
    );

    // Two megabytes over HTTP, from a server in b's namespace to busybox wget in a.
    let listener = in_netns(b.pid(), || TcpListener::bind("0.0.0.0:8080").unwrap());
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut request = [0u8; 1024];
        let _ = conn.read(&mut request).unwrap();
        let body = vec![b'x'; 2 * 1024 * 1024];
        write!(
            conn,
            "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .unwrap();
        conn.write_all(&body).unwrap();
    });
    let size = a.sh_ok(&format!("timeout 20 wget -qO- http://{b_ip}:8080/ | wc -c"));
    server.join().unwrap();
    assert_eq!(size.trim(), "2097152");

    // The last container of each host goes: its agent leaves, the other host drops it.
    a.delete().unwrap();
    wait_until("h1's agent leaves", Duration::from_secs(3), || {
        !agent_running(&h1)
    });
    wait_until("h2 drops h1's block", Duration::from_secs(3), || {
        peer_routes(&h2).trim().is_empty()
    });
    b.delete().unwrap();
    wait_until("h2's agent leaves", Duration::from_secs(3), || {
        !agent_running(&h2)
    });
    for h in [&h1, &h2] {
        assert_eq!(h.leftovers(), Vec::<String>::new());
        assert!(h.sh("ip link show ocx4200").stdout.is_empty());
    }
}

fn octets3(ip: Ipv4Addr) -> String {
    let [a, b, c, _] = ip.octets();
    format!("{a}.{b}.{c}")
}

#[test]
fn a_third_host_joins_later_and_is_reached_within_seconds() {
    let lab = Lab::new("ov-join");
    let _etcd = lab.etcd();
    let hosts: Vec<Host> = (1..=3).map(|i| lab.host(&format!("h{i}"))).collect();
    define_overlay(&hosts.iter().collect::<Vec<_>>(), "ov", "10.201.0.0/16", "");
    let a = hosts[0].start(Runtime::Runc, "a", &[("io.ocinet.network", "ov")]);
    let b = hosts[1].start(Runtime::Runc, "b", &[("io.ocinet.network", "ov")]);
    let c = hosts[2].start(Runtime::Runc, "c", &[("io.ocinet.network", "ov")]);
    let c_ip = c.address().to_string();
    let took = wait_until("a and b reach c", Duration::from_secs(3), || {
        [&a, &b]
            .iter()
            .all(|x| x.exec(&["ping", "-c1", "-W1", &c_ip]).status.success())
    });
    eprintln!("the third host was reachable after {took:?}");
    c.sh_ok(&format!("ping -c1 -W2 {}", a.address()));
    c.sh_ok(&format!("ping -c1 -W2 {}", b.address()));
}
