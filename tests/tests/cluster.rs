//! The overlay network's test bed: a lab with an underlay bridge, cluster hosts on it, a real
//! etcd inside the lab; all of it torn down by the test.

use std::time::{Duration, Instant};

use ocinet_tests::{Host, Ipv4Addr, Lab, Runtime};

/// etcdctl as an agent on a host would reach etcd: over the underlay.
fn etcdctl(endpoint: &str, args: &str) -> String {
    format!("ETCDCTL_API=3 etcdctl --endpoints={endpoint} {args}")
}

/// Alive = in /proc and not a zombie (the init here reaps orphans late).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat[stat.rfind(')').unwrap() + 1..]
                .split_whitespace()
                .next();
            !matches!(state, Some("Z" | "X"))
        }
        Err(_) => false,
    }
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn lab_hosts_talk_over_the_underlay_use_etcd_and_leave_nothing_running() {
    let lab = Lab::new("smoke");
    let mut etcd = lab.etcd();
    let endpoint = etcd.endpoint();
    assert_eq!(endpoint, "http://192.0.2.1:2379");
    let mut hosts: Vec<Host> = (1..=3).map(|i| lab.host(&format!("h{i}"))).collect();
    let addresses: Vec<Ipv4Addr> = hosts.iter().map(|h| h.underlay().unwrap()).collect();
    assert_eq!(
        addresses,
        [11, 12, 13].map(|n| Ipv4Addr::new(192, 0, 2, n)),
        "hosts are numbered in the order they are made"
    );

    for (i, host) in hosts.iter().enumerate() {
        assert!(host
            .sh_ok("ip route")
            .contains("default via 192.0.2.1 dev eth0"));
        for peer in addresses.iter().filter(|a| **a != addresses[i]) {
            // The machine may have no iputils: busybox-static is a dependency already.
            host.sh_ok(&format!("busybox ping -c1 -W2 {peer}"));
        }
        host.sh_ok(&etcdctl(
            &endpoint,
            &format!("put /ocinet/test/h{} {}", i + 1, addresses[i]),
        ));
    }
    let expected: Vec<String> = addresses.iter().map(Ipv4Addr::to_string).collect();
    for host in &hosts {
        let all = host.sh_ok(&etcdctl(
            &endpoint,
            "get --prefix --print-value-only /ocinet/test/",
        ));
        assert_eq!(all.lines().collect::<Vec<_>>(), expected);
    }

    // etcd down: a client fails (after its command timeout: etcdctl 3.4 does not wait for the
    // connection, so the dial timeout does not apply); back up on the same data.
    etcd.stop();
    let out = hosts[0].sh(&etcdctl(
        &endpoint,
        "--command-timeout=300ms get /ocinet/test/h1",
    ));
    assert!(!out.status.success(), "a get with etcd stopped succeeded");
    etcd.start_again();
    let value = hosts[1].sh_ok(&etcdctl(
        &endpoint,
        "get --print-value-only /ocinet/test/h1",
    ));
    assert_eq!(value.trim(), "192.0.2.11");
    let out = etcd.etcdctl(&["get", "--print-value-only", "/ocinet/test/h3"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "192.0.2.13");

    // A cluster host is a full host: a runc container on its default network.
    let c1 = hosts[0].start(Runtime::Runc, "c1", &[]);
    let routes = c1.sh_ok("ip route");
    let gateway = routes
        .lines()
        .find_map(|l| l.strip_prefix("default via "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no default route: {routes}"))
        .to_string();
    c1.sh_ok(&format!("ping -c1 -W2 {gateway}"));
    c1.delete().unwrap();
    assert_eq!(hosts[0].leftovers(), Vec::<String>::new());

    // A detached process in host 2 (as the overlay agent will be) lives until the host goes.
    let stray: u32 = hosts[1]
        .sh_ok("setsid -f nohup sh -c 'echo $$; exec sleep 1000 </dev/null >/dev/null 2>&1'")
        .trim()
        .parse()
        .unwrap();
    assert!(alive(stray));
    assert_eq!(
        std::fs::read_link(format!("/proc/{stray}/ns/net")).unwrap(),
        std::fs::read_link(format!("/proc/{}/ns/net", hosts[1].pid())).unwrap()
    );
    drop(hosts.remove(1));
    assert!(!alive(stray), "host 2's detached process outlived it");
    // Its namespace went with it, and its veth: the lab keeps the other two.
    wait_until("ul-2 outlived host 2", || {
        !lab.sh_ok("ip -o link show master ul0").contains("ul-2@")
    });
    let ports = lab.sh_ok("ip -o link show master ul0");
    assert!(
        ports.contains("ul-1@") && ports.contains("ul-3@"),
        "{ports}"
    );
}

#[test]
fn host_drop_kills_detached_processes_and_reaps_its_own() {
    let host = Host::new("strays");
    let detached: u32 = host
        .sh_ok("setsid -f nohup sh -c 'echo $$; exec sleep 1000 </dev/null >/dev/null 2>&1'")
        .trim()
        .parse()
        .unwrap();
    // A child of this test left unwaited: the sweep reaps it, no zombie stays behind.
    let child = host
        .command("sleep")
        .arg("1000")
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let own = child.id();
    drop(child);
    assert!(alive(detached) && alive(own));
    drop(host);
    assert!(!alive(detached), "the detached process outlived its host");
    assert!(
        !std::path::Path::new(&format!("/proc/{own}")).exists(),
        "this test's own child was not reaped"
    );
}
