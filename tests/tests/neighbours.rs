//! The host-wide IPv4 neighbour table against many containers. A test host is not the initial
//! network namespace, the only one that may raise the table's limits: there, a setup that finds
//! the containers near them logs a warning naming the setting, and wires the container anyway.

use ocinet::driver::neighbours;
use ocinet_tests::{Host, Runtime};

#[test]
fn a_host_that_may_not_raise_the_neighbour_limits_gets_a_warning_naming_the_setting() {
    let host = Host::new("neighbours");
    // The records of 200 containers: only their number counts.
    let records = host.state_root().join("containers");
    std::fs::create_dir_all(&records).unwrap();
    for i in 0..200 {
        std::fs::write(records.join(format!("other-{i}.json")), "{}").unwrap();
    }
    let id = (0..)
        .map(|i| format!("n{i}"))
        .find(|id| neighbours::due(id))
        .unwrap();
    let c = host.start(Runtime::Runc, &id, &[]);
    c.sh_ok("ping -c1 -W3 172.17.0.1");
    let logs = host.shim(&["logs", &id]).unwrap();
    let warning = logs
        .lines()
        .find(|l| l.contains("neighbour-limits"))
        .unwrap_or_else(|| panic!("no warning in {logs}"));
    assert!(
        warning.contains("warning: 201 containers")
            && warning.contains(
                "sysctl -w net.ipv4.neigh.default.gc_thresh2=2048 net.ipv4.neigh.default.gc_thresh3=4096"
            ),
        "{warning}"
    );
    // The next container, on a setup not due, is not told again.
    let quiet = (0..)
        .map(|i| format!("q{i}"))
        .find(|id| !neighbours::due(id))
        .unwrap();
    let d = host.start(Runtime::Runc, &quiet, &[]);
    assert!(!host
        .shim(&["logs", &quiet])
        .unwrap()
        .contains("neighbour-limits"));
    c.delete().unwrap();
    d.delete().unwrap();
    std::fs::remove_dir_all(&records).unwrap();
    assert_eq!(host.leftovers(), Vec::<String>::new());
}

/// A dual-stack container counts against the IPv6 neighbour table as well: the warning names
/// both tables' settings (the IPv6 one's read from the kernel as the IPv4 one's).
#[test]
fn a_dual_stack_container_near_the_limits_gets_a_warning_for_each_table() {
    let host = Host::new("neighbours-dual");
    host.define_network(
        "d",
        r#"{"subnets": [{"subnet": "10.92.0.0/24"}, {"subnet": "fd00:92::/64"}]}"#,
    );
    let records = host.state_root().join("containers");
    std::fs::create_dir_all(&records).unwrap();
    for i in 0..200 {
        std::fs::write(records.join(format!("other-{i}.json")), "{}").unwrap();
    }
    let id = (0..)
        .map(|i| format!("n{i}"))
        .find(|id| neighbours::due(id))
        .unwrap();
    let c = host.start(Runtime::Crun, &id, &[("io.ocinet.network", "d")]);
    let logs = host.shim(&["logs", &id]).unwrap();
    let warnings: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("neighbour-limits"))
        .collect();
    assert_eq!(warnings.len(), 2, "{logs}");
    assert!(
        warnings[1].contains("host's IPv6 neighbour table")
            && warnings[1].contains(
                "sysctl -w net.ipv6.neigh.default.gc_thresh2=2048 net.ipv6.neigh.default.gc_thresh3=4096"
            ),
        "{}",
        warnings[1]
    );
    c.delete().unwrap();
    std::fs::remove_dir_all(&records).unwrap();
    assert_eq!(host.leftovers(), Vec::<String>::new());
}
