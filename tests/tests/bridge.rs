//! Bridge mode through real runc and crun: addresses, traffic between containers, egress NAT.

use ocinet_tests::{state_json, Host, Runtime};

fn two_containers_talk(runtime: Runtime) {
    let host = Host::new("talk");
    let a = host.start(runtime, "a", &[]);
    let b = host.start(runtime, "b", &[("io.ocinet.network", "bridge")]);
    let (ip_a, ip_b) = (a.address(), b.address());
    assert_ne!(ip_a, ip_b);
    let subnet: ipnet_like::Net = "172.17.0.0/16".parse().unwrap();
    assert!(
        subnet.contains(ip_a) && subnet.contains(ip_b),
        "{ip_a} {ip_b}"
    );
    a.sh_ok(&format!("ping -c1 -W3 {ip_b}"));
    b.sh_ok(&format!("ping -c1 -W3 {ip_a}"));
    a.sh_ok("ping -c1 -W3 172.17.0.1");
    // lo is up, eth0 is up, the default route goes via the gateway.
    assert!(a
        .sh_ok("ip route")
        .contains("default via 172.17.0.1 dev eth0"));
    a.sh_ok("ping -c1 -W3 127.0.0.1");
    // An IPv4-only network: neither end of a veth gets IPv6 addresses (no link-local address,
    // so no DAD, router solicitations or MLD reports flooded to every container).
    assert!(!a.sh_ok("ip addr show dev eth0").contains("inet6"));
    assert!(!host.sh_ok("ip addr show master ocinet0").contains("inet6"));
    let ports = host.sh_ok("ip -d link show master ocinet0");
    assert_eq!(ports.matches("addrgenmode none").count(), 2, "{ports}");
    // The host ends' only IPv6 routes are the multicast route every link with IPv6 on has:
    // no link-local ones.
    let routes = host.sh_ok("ip -6 route show table all");
    let ours: Vec<&str> = routes.lines().filter(|l| l.contains(" ocv")).collect();
    assert!(
        ours.iter().all(|l| l.starts_with("multicast ff00::/8")),
        "{routes}"
    );
    // The bridge keeps the MAC it was made with (02:42 and the gateway), whoever joins.
    assert!(host
        .sh_ok("ip link show ocinet0")
        .contains("link/ether 02:42:ac:11:00:01"));
    assert!(host
        .sh_ok("ip -d link show ocinet0")
        .contains("mcast_snooping 0"));
    // One queue each way per veth end, whatever the number of CPUs.
    let ports = host.sh_ok("ip -d link show master ocinet0");
    assert_eq!(
        ports.matches("numtxqueues 1 numrxqueues 1").count(),
        2,
        "{ports}"
    );
    a.delete().unwrap();
    b.delete().unwrap();
    assert_eq!(host.leftovers(), Vec::<String>::new());
}

#[test]
fn runc_bridge_containers_ping_each_other_and_the_gateway() {
    two_containers_talk(Runtime::Runc);
}

#[test]
fn crun_bridge_containers_ping_each_other_and_the_gateway() {
    two_containers_talk(Runtime::Crun);
}

#[test]
fn egress_reaches_outside_from_the_host_address() {
    let host = Host::new("egress");
    let outside = host.outside();
    let received = outside.receive_one(8000);
    let c = host.start(Runtime::Runc, "c", &[]);
    c.sh_ok("echo hello-outside | timeout 8 nc 198.51.100.2 8000");
    let (peer, line) = received.join().unwrap();
    assert_eq!(line.trim(), "hello-outside");
    // Masquerade: the outside sees the host's address, not the container's.
    assert_eq!(peer.ip().to_string(), "198.51.100.1");
    c.delete().unwrap();
    assert_eq!(host.leftovers(), Vec::<String>::new());
}

#[test]
fn user_network_with_static_address_and_mac() {
    let host = Host::new("usernet");
    host.define_network(
        "web",
        r#"{"bridge": "ocweb0", "subnets": [{"subnet": "10.90.0.0/24", "gateway": "10.90.0.1"}], "mtu": 1400}"#,
    );
    let c = host.start(
        Runtime::Runc,
        "c",
        &[
            ("io.ocinet.network", "bridge:web"),
            ("io.ocinet.ip", "10.90.0.10"),
            ("io.ocinet.mac", "02:42:0a:5a:00:0a"),
        ],
    );
    assert_eq!(c.address().to_string(), "10.90.0.10");
    let link = c.sh_ok("ip link show eth0");
    assert!(link.contains("02:42:0a:5a:00:0a"), "{link}");
    assert!(link.contains("mtu 1400"), "{link}");
    c.sh_ok("ping -c1 -W3 10.90.0.1");
    assert!(host
        .sh_ok("ip -br addr show ocweb0")
        .contains("10.90.0.1/24"));
    assert_eq!(host.leases("web"), vec!["10.90.0.10".to_string()]);
    c.delete().unwrap();
    assert_eq!(host.leftovers(), Vec::<String>::new());
}

/// A tiny IPv4 CIDR check, so the test crate needs no extra dependency.
mod ipnet_like {
    use std::net::Ipv4Addr;

    pub struct Net(u32, u32);

    impl std::str::FromStr for Net {
        type Err = ();
        fn from_str(s: &str) -> Result<Net, ()> {
            let (ip, len) = s.split_once('/').ok_or(())?;
            let ip: Ipv4Addr = ip.parse().map_err(|_| ())?;
            let len: u32 = len.parse().map_err(|_| ())?;
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            Ok(Net(u32::from(ip) & mask, mask))
        }
    }

    impl Net {
        pub fn contains(&self, ip: Ipv4Addr) -> bool {
            u32::from(ip) & self.1 == self.0
        }
    }
}

/// Wires one bridge container by calling the hook as a runtime would, runs `check` while it is
/// wired, then unwires it and checks that nothing is left.
fn wired_with_the_hook(host: &Host, id: &str, check: impl FnOnce(&Host)) {
    let c = host.netns_process();
    let bundle = host.bundle("bridge", id, &[], &[]);
    let out = host.hook("createRuntime", &state_json(id, c.pid, &bundle));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    check(host);
    let out = host.hook("poststop", &state_json(id, 0, &bundle));
    assert!(out.status.success());
    assert_eq!(host.leftovers(), Vec::<String>::new());
}

#[test]
fn a_read_only_proc_sys_still_wires_the_container() {
    let host = Host::new("rosys");
    // As when the hook runs inside a container: /proc/sys read-only, forwarding already on.
    host.sh_ok("mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys");
    wired_with_the_hook(&host, "ro", |host| {
        // What the setup reads it asks over netlink; with forwarding on it writes nothing there.
        assert!(!host.sh_ok("ip addr show master ocinet0").contains("inet6"));
        host.sh_ok("busybox ping -c1 -W3 172.17.0.2");
    });
}

#[test]
fn forwarding_off_is_turned_on_by_the_first_bridge_container() {
    let host = Host::new("fwd");
    host.sh_ok("sysctl -qw net.ipv4.ip_forward=0");
    wired_with_the_hook(&host, "fwd", |host| {
        assert_eq!(host.sh_ok("cat /proc/sys/net/ipv4/ip_forward").trim(), "1");
    });
}
