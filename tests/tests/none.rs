//! `none`: the container's own namespace with only `lo`, up.

use ocinet_tests::{Host, Runtime};

fn only_loopback(runtime: Runtime) {
    let host = Host::new("none");
    let c = host.start(runtime, "n", &[("io.ocinet.network", "none")]);
    let links = c.sh_ok("ip -o link show");
    let names: Vec<&str> = links.lines().filter_map(|l| l.split(": ").nth(1)).collect();
    assert_eq!(names, vec!["lo"], "{links}");
    assert!(links.contains("LOOPBACK,UP"), "{links}");
    c.sh_ok("ping -c1 -W3 127.0.0.1");
    assert!(c.exec(&["ping", "-c1", "-W1", "172.17.0.1"]).status.code() != Some(0));
    // Nothing on the host side either: no bridge, no veth, no lease.
    assert!(!host.sh_ok("ip -o link show").contains("ocinet0"));
    c.delete().unwrap();
    assert_eq!(host.leftovers(), Vec::<String>::new());
}

#[test]
fn runc_none_container_has_only_loopback_up() {
    only_loopback(Runtime::Runc);
}

#[test]
fn crun_none_container_has_only_loopback_up() {
    only_loopback(Runtime::Crun);
}
