//! Several networks per container (`io.ocinet.network=<a>,<b>`) through real runc containers:
//! eth0 on the first, eth1 on the second, the default route via the first; both undone.

use std::time::Duration;

use ocinet_tests::{Container, Host, Runtime};

fn pings(from: &Container<'_>, ip: &str) -> bool {
    from.exec(&["ping", "-c1", "-W2", ip]).status.success()
}

#[test]
fn a_container_on_two_networks_reaches_both_and_leaves_nothing() {
    let host = Host::new("several");
    let _outside = host.outside();
    host.define_network("n1", r#"{"subnets":[{"subnet":"10.91.0.0/24"}]}"#);
    host.define_network("n2", r#"{"subnets":[{"subnet":"10.92.0.0/24"}]}"#);
    let a = host.start(Runtime::Runc, "a", &[("io.ocinet.network", "n1")]);
    let b = host.start(Runtime::Runc, "b", &[("io.ocinet.network", "n2")]);
    let both = host.start(Runtime::Runc, "both", &[("io.ocinet.network", "n1,n2")]);
    std::thread::sleep(Duration::from_millis(100));
    assert!(both
        .sh_ok("ip -o -4 addr show dev eth0")
        .contains("inet 10.91.0.3/24"));
    assert!(both
        .sh_ok("ip -o -4 addr show dev eth1")
        .contains("inet 10.92.0.3/24"));
    let routes = both.sh_ok("ip route");
    assert!(
        routes.contains("default via 10.91.0.1 dev eth0"),
        "{routes}"
    );
    assert_eq!(routes.matches("default").count(), 1, "{routes}");
    // Both networks' containers, each through its own network; the outside through the first.
    assert!(pings(&both, &a.address().to_string()));
    assert!(pings(&both, &b.address().to_string()));
    assert!(pings(&a, "10.91.0.3"));
    assert!(pings(&b, "10.92.0.3"));
    assert!(pings(&both, "198.51.100.2"));
    // a and b stay apart (isolation), whoever sits on both.
    assert!(!pings(&a, &b.address().to_string()));
    let inspect = host.shim(&["inspect", "both"]).unwrap();
    assert!(
        inspect.contains("eth1") && inspect.contains("10.92.0.3"),
        "{inspect}"
    );
    both.delete().unwrap();
    assert_eq!(host.leases("n2"), vec![b.address().to_string()]);
    a.delete().unwrap();
    b.delete().unwrap();
    assert_eq!(host.leftovers(), Vec::<String>::new());
}

#[test]
fn bad_network_lists_are_refused_with_one_line_and_leave_nothing() {
    let host = Host::new("badlist");
    host.define_network("n1", r#"{"subnets":[{"subnet":"10.91.0.0/24"}]}"#);
    host.define_network("n2", r#"{"subnets":[{"subnet":"10.92.0.0/24"}]}"#);
    let before = host.leftovers();
    for (list, why) in [
        ("n1,nope", "unknown network"),
        ("n1,n2,n1", "network n1 is listed twice"),
        ("n1,none", "none cannot be one of several networks"),
        ("host,n1", "host cannot be one of several networks"),
        (
            "n1,n2,c,d,e,f,g,h,i",
            "9 networks listed, at most 8 are joined",
        ),
    ] {
        let bundle = host.bundle("bridge", "x", &[("io.ocinet.network", list)], &[]);
        let refused = host.run_refused(Runtime::Runc, "x", &bundle);
        assert!(refused.contains(why), "{list}: {refused}");
        // runc quotes the hook's stderr: one line, once.
        assert_eq!(refused.trim_end().lines().count(), 1, "{list}: {refused}");
        assert_eq!(
            refused.matches("ocinet-hook: ").count(),
            1,
            "{list}: {refused}"
        );
        assert_eq!(host.leftovers(), before, "{list}");
        assert_eq!(host.leases("n1"), Vec::<String>::new(), "{list}");
    }
}
