//! Published ports (`io.ocinet.ports`, Docker's -p) through real runc containers and real
//! traffic: from an outside namespace, from the host's loopback, from another container.

use std::time::Duration;

use ocinet_tests::{in_netns, Host, Runtime};

const HTTPD: &[&str] = &["httpd", "-f", "-p", "80", "-h", "/www"];

fn wget(url: &str) -> String {
    format!("timeout 8 busybox wget -qO- {url}")
}

fn tcp_port_reachable_from_outside_localhost_and_another_container(runtime: Runtime) {
    let host = Host::new("tcp");
    let outside = host.outside();
    let bundle = host.bundle("bridge", "web", &[("io.ocinet.ports", "8080:80")], HTTPD);
    let web = host.run_bundle(runtime, "web", &bundle).unwrap();
    let client = host.start(runtime, "client", &[]);
    std::thread::sleep(Duration::from_millis(200));
    let from_outside = outside.sh(&wget("http://198.51.100.1:8080/"));
    assert_eq!(
        String::from_utf8_lossy(&from_outside.stdout).trim(),
        "hello from ocinet"
    );
    assert_eq!(
        host.sh_ok(&wget("http://127.0.0.1:8080/")).trim(),
        "hello from ocinet"
    );
    // Hairpin: another container through the host's addresses.
    assert_eq!(
        client.sh_ok(&wget("http://172.17.0.1:8080/")).trim(),
        "hello from ocinet"
    );
    assert_eq!(
        client.sh_ok(&wget("http://198.51.100.1:8080/")).trim(),
        "hello from ocinet"
    );
    // And the container itself through its own published port.
    assert_eq!(
        web.sh_ok(&wget("http://198.51.100.1:8080/")).trim(),
        "hello from ocinet"
    );
    client.delete().unwrap();
    web.delete().unwrap();
    assert_eq!(host.leftovers(), Vec::<String>::new());
    assert!(!outside
        .sh(&wget("http://198.51.100.1:8080/"))
        .status
        .success());
}

fn udp_port_echoes_through_nat(runtime: Runtime) {
    let host = Host::new("udp");
    let outside = host.outside();
    let c = host.start(runtime, "dns", &[("io.ocinet.ports", "5353:53/udp")]);
    // A UDP echo server on port 53 inside the container's own namespace.
    let server = in_netns(c.pid(), || std::net::UdpSocket::bind("0.0.0.0:53").unwrap());
    let echo = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        let (n, peer) = server.recv_from(&mut buf).unwrap();
        server.send_to(&buf[..n], peer).unwrap();
    });
    let client = outside.udp();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    client.send_to(b"ping-udp", "198.51.100.1:5353").unwrap();
    let mut buf = [0u8; 64];
    let (n, from) = client.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"ping-udp");
    assert_eq!(from.to_string(), "198.51.100.1:5353");
    echo.join().unwrap();
    c.delete().unwrap();
    assert_eq!(host.leftovers(), Vec::<String>::new());
}

fn ranges_and_picked_ports(runtime: Runtime) {
    let host = Host::new("ranges");
    let outside = host.outside();
    let script = "for p in $(seq 9000 9009); do httpd -p $p -h /www; done; httpd -f -p 80 -h /www";
    let bundle = host.bundle(
        "bridge",
        "r",
        &[("io.ocinet.ports", "9000-9009:9000-9009,80,7000-7010:80")],
        &["sh", "-c", script],
    );
    let r = host.run_bundle(runtime, "r", &bundle).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    for port in 9000..=9009 {
        let out = outside.sh(&wget(&format!("http://198.51.100.1:{port}/")));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "hello from ocinet",
            "port {port}"
        );
    }
    // The picked host ports are in the record.
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(host.state_root().join("containers/r.json")).unwrap(),
    )
    .unwrap();
    let ports = record["interfaces"][0]["ports"].as_array().unwrap();
    assert_eq!(ports.len(), 3);
    let picked = ports[1]["host"]["start"].as_u64().unwrap();
    let (lo, hi) = {
        let range = host.sh_ok("cat /proc/sys/net/ipv4/ip_local_port_range");
        let v: Vec<u64> = range
            .split_whitespace()
            .map(|p| p.parse().unwrap())
            .collect();
        (v[0], v[1])
    };
    assert!((lo..=hi).contains(&picked), "{picked} outside {lo}-{hi}");
    let from_range = ports[2]["host"]["start"].as_u64().unwrap();
    assert_eq!(from_range, 7000);
    for port in [picked, from_range] {
        let out = outside.sh(&wget(&format!("http://198.51.100.1:{port}/")));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "hello from ocinet",
            "port {port}"
        );
    }
    r.delete().unwrap();
    assert_eq!(host.leftovers(), Vec::<String>::new());
}

fn host_ip_bound_port_only_on_that_address(runtime: Runtime) {
    let host = Host::new("hostip");
    let outside = host.outside();
    let bundle = host.bundle(
        "bridge",
        "b",
        &[("io.ocinet.ports", "127.0.0.1:8081:80")],
        HTTPD,
    );
    let b = host.run_bundle(runtime, "b", &bundle).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        host.sh_ok(&wget("http://127.0.0.1:8081/")).trim(),
        "hello from ocinet"
    );
    assert!(!host.sh(&wget("http://198.51.100.1:8081/")).status.success());
    assert!(!outside
        .sh(&wget("http://198.51.100.1:8081/"))
        .status
        .success());
    b.delete().unwrap();
    assert_eq!(host.leftovers(), Vec::<String>::new());
}

fn conflicting_port_fails_cleanly_then_frees(runtime: Runtime) {
    let host = Host::new("conflict");
    let first = host.start(runtime, "first", &[("io.ocinet.ports", "8080:80")]);
    let bundle = host.bundle("bridge", "second", &[("io.ocinet.ports", "8080:80")], &[]);
    let err = host.run_refused(runtime, "second", &bundle);
    assert!(
        err.contains("host port 0.0.0.0:8080/tcp is already published by container first"),
        "{err}"
    );
    // The refused container left no lease, veth, claim or element of its own.
    assert_eq!(host.leases("ocinet").len(), 1);
    assert_eq!(host.sh_ok("ip -o link show | grep -c ocv").trim(), "1");
    first.delete().unwrap();
    assert_eq!(host.leftovers(), Vec::<String>::new());
    let second = host.run_bundle(runtime, "second2", &bundle).unwrap();
    second.delete().unwrap();
    assert_eq!(host.leftovers(), Vec::<String>::new());
}

/// True when this kernel can open SCTP sockets (the module may be absent or not loadable).
fn kernel_has_sctp() -> bool {
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockProtocol, SockType};
    socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::Sctp,
    )
    .is_ok()
}

fn sctp_port_published_beside_tcp_on_the_same_number(runtime: Runtime) {
    let host = Host::new("sctp");
    let c = host.start(
        runtime,
        "s",
        &[("io.ocinet.ports", "9100:9100/sctp,9100:80/tcp")],
    );
    // Same host port, two protocols: two claims, two DNAT elements, no conflict.
    let root = host.state_root().join("ports");
    assert!(root.join("sctp/9100").exists());
    assert!(root.join("tcp/9100").exists());
    // One port on every address: the exact-match map, keyed by protocol and port.
    let address = c.address().to_string();
    let any = host.sh_ok("nft list map inet ocinet dnat_any");
    assert!(
        any.contains(&format!("sctp . 9100 : {address} . 9100"))
            && any.contains(&format!("tcp . 9100 : {address} . 80")),
        "{any}"
    );
    // A second container may not take the SCTP port, and leaves nothing.
    let bundle = host.bundle("bridge", "t", &[("io.ocinet.ports", "9100/sctp")], &[]);
    let bundle_conflict = host.bundle("bridge", "u", &[("io.ocinet.ports", "9100:9100/sctp")], &[]);
    let err = host.run_refused(runtime, "u", &bundle_conflict);
    assert!(
        err.contains("9100/sctp is already published by container s"),
        "{err}"
    );
    // A picked SCTP port works beside it.
    let t = host.run_bundle(runtime, "t", &bundle).unwrap();
    if kernel_has_sctp() {
        sctp_round_trip(&host, &c);
    } else {
        eprintln!("this kernel has no SCTP sockets: traffic part skipped, rules checked above");
    }
    t.delete().unwrap();
    c.delete().unwrap();
    assert_eq!(host.leftovers(), Vec::<String>::new());
}

/// An SCTP stream server in the container, reached from the host through the published port.
fn sctp_round_trip(host: &Host, c: &ocinet_tests::Container<'_>) {
    use nix::sys::socket::{
        accept, bind, connect, listen, recv, send, socket, AddressFamily, Backlog, MsgFlags,
        SockFlag, SockProtocol, SockType, SockaddrIn,
    };
    use std::os::fd::AsRawFd;
    let server = in_netns(c.pid(), || {
        let fd = socket(
            AddressFamily::Inet,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::Sctp,
        )
        .unwrap();
        bind(fd.as_raw_fd(), &SockaddrIn::new(0, 0, 0, 0, 9100)).unwrap();
        listen(&fd, Backlog::new(4).unwrap()).unwrap();
        fd
    });
    let echo = std::thread::spawn(move || {
        let conn = accept(&server).unwrap();
        let mut buf = [0u8; 64];
        let n = recv(conn.as_raw_fd(), &mut buf, MsgFlags::empty()).unwrap();
        send(conn.as_raw_fd(), &buf[..n], MsgFlags::empty()).unwrap();
    });
    let reply = in_netns(host.pid(), || {
        let fd = socket(
            AddressFamily::Inet,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::Sctp,
        )
        .unwrap();
        connect(fd.as_raw_fd(), &SockaddrIn::new(198, 51, 100, 1, 9100)).unwrap();
        send(fd.as_raw_fd(), b"ping-sctp", MsgFlags::empty()).unwrap();
        let mut buf = [0u8; 64];
        let n = recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty()).unwrap();
        buf[..n].to_vec()
    });
    assert_eq!(reply, b"ping-sctp");
    echo.join().unwrap();
}

/// Every test above, with runc and with crun.
macro_rules! with_each_runtime {
    ($($name:ident),* $(,)?) => {
        mod runc {
            $(#[test] fn $name() { super::$name(super::Runtime::Runc) })*
        }
        mod crun {
            $(#[test] fn $name() { super::$name(super::Runtime::Crun) })*
        }
    };
}

with_each_runtime!(
    tcp_port_reachable_from_outside_localhost_and_another_container,
    udp_port_echoes_through_nat,
    ranges_and_picked_ports,
    host_ip_bound_port_only_on_that_address,
    conflicting_port_fails_cleanly_then_frees,
    sctp_port_published_beside_tcp_on_the_same_number,
);
