//! Teardown: idempotent, from the record alone, after a failed setup, and leases that come back.

use ocinet_tests::{state_json, Host, Runtime};

#[test]
fn delete_frees_everything_300_cycles_on_a_24() {
    let host = Host::new("cycles");
    host.define_network("small", r#"{"subnets": [{"subnet": "10.91.0.0/24"}]}"#);
    let bundle = host.bundle(
        "bridge",
        "cyc",
        &[("io.ocinet.network", "bridge:small")],
        &[],
    );
    // 300 > 253 usable addresses: leases must come back for every cycle to succeed.
    for i in 0..300 {
        let c = host
            .run_bundle(Runtime::Runc, "cyc", &bundle)
            .unwrap_or_else(|e| panic!("cycle {i}: {e}"));
        assert_eq!(host.leases("small").len(), 1, "cycle {i}");
        c.delete()
            .unwrap_or_else(|e| panic!("cycle {i} delete: {e}"));
        assert_eq!(host.leftovers(), Vec::<String>::new(), "cycle {i}");
    }
}

#[test]
fn teardown_twice_and_without_pid_succeeds() {
    let host = Host::new("twice");
    let c = host.start(Runtime::Runc, "t", &[]);
    let bundle = host.dir.join("bundles/t");
    let pid = c.pid();
    // podman runs poststop itself with no pid; crun gives pid 0: the record is enough.
    let no_pid = format!(
        r#"{{"ociVersion":"1.0.0","id":"t","status":"stopped","bundle":"{}"}}"#,
        bundle.display()
    );
    for _ in 0..2 {
        let out = host.hook("poststop", &no_pid);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(host.leftovers(), Vec::<String>::new());
    // The runtime's own poststop, later, finds nothing to do and succeeds too.
    let out = host.hook("poststop", &state_json("t", pid, &bundle));
    assert!(out.status.success());
    c.delete().unwrap();
    assert_eq!(host.leftovers(), Vec::<String>::new());
}

#[test]
fn failed_setup_leaves_nothing_and_teardown_after_it_succeeds() {
    let host = Host::new("failed");
    host.define_network("tiny", r#"{"subnets": [{"subnet": "10.92.0.0/30"}]}"#);
    let first = host.start(
        Runtime::Runc,
        "first",
        &[("io.ocinet.network", "bridge:tiny")],
    );
    // A /30 has one address besides the gateway: the second container's setup fails.
    let bundle = host.bundle(
        "bridge",
        "second",
        &[("io.ocinet.network", "bridge:tiny")],
        &[],
    );
    let err = host
        .run_bundle(Runtime::Runc, "second", &bundle)
        .err()
        .expect("second must fail");
    assert!(
        err.contains("network tiny (10.92.0.0/30) has no free address"),
        "{err}"
    );
    assert_eq!(host.leases("tiny"), vec!["10.92.0.2".to_string()]);
    // Teardown for the container whose setup failed succeeds and touches nothing of the first.
    let out = host.hook("poststop", &state_json("second", 0, &bundle));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(host.leases("tiny"), vec!["10.92.0.2".to_string()]);
    first.sh_ok("ping -c1 -W3 10.92.0.1");
    first.delete().unwrap();
    assert_eq!(host.leftovers(), Vec::<String>::new());
}

#[test]
fn setup_again_for_the_same_id_keeps_the_address() {
    let host = Host::new("again");
    let p = host.netns_process();
    let bundle = host.bundle("bridge", "same", &[], &[]);
    let state = state_json("same", p.pid, &bundle);
    for _ in 0..2 {
        let out = host.hook("createRuntime", &state);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(host.leases("ocinet"), vec!["172.17.0.2".to_string()]);
    let out = host.hook("poststop", &state);
    assert!(out.status.success());
    assert_eq!(host.leftovers(), Vec::<String>::new());
}

/// A container started before an upgrade has a record of the previous release (version 1: no
/// `version`, one `bridge` attachment): the new hook tears it down completely.
#[test]
fn a_previous_release_record_of_a_live_container_tears_down_completely() {
    let host = Host::new("upgrade");
    let c = host.start(Runtime::Runc, "old", &[("io.ocinet.ports", "8089:80")]);
    let path = host.state_root().join("containers/old.json");
    let v2: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(v2["version"], 2);
    let eth0 = &v2["interfaces"][0];
    let address = &eth0["addresses"][0];
    let v1 = serde_json::json!({
        "id": v2["id"], "boot_id": v2["boot_id"], "mode": v2["mode"],
        "pid": v2["pid"], "pid_start": v2["pid_start"], "netns_name": v2["netns_name"],
        "bridge": {
            "network": eth0["network"], "bridge": eth0["bridge"],
            "host_veth": eth0["host_veth"], "container_interface": eth0["name"],
            "address": address["address"], "prefix_len": address["prefix_len"],
            "gateway": address["gateway"], "ports": eth0["ports"],
        },
    });
    std::fs::write(&path, serde_json::to_vec(&v1).unwrap()).unwrap();
    assert!(host.shim(&["ls"]).unwrap().contains("8089->80"));
    c.delete().unwrap();
    assert_eq!(host.leftovers(), Vec::<String>::new());
}
