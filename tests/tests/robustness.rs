//! Crashes at every step, races, firewall reloads, reboots and corrupt state: whatever happens,
//! teardown or gc leaves nothing, and the next container works.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use ocinet::host::fault::{SETUP_POINTS, TEARDOWN_POINTS};
use ocinet_tests::{state_json, Host, Runtime};
use serde_json::Value;

fn assert_ok(out: &std::process::Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// After a crash at `point`: the runtime's poststop (or the shim's delete) runs again, or nobody
/// does and the container's process is gone, so gc finds the record stale; either leaves
/// nothing.
fn finish_after_crash(
    host: &Host,
    by_poststop: bool,
    id: &str,
    state: &str,
    process: ocinet_tests::NsProcess,
    point: &str,
) {
    if by_poststop {
        assert_ok(&host.hook("poststop", state), point);
    } else {
        drop(process);
        let removed = host.shim(&["gc"]).unwrap();
        assert!(
            removed.contains(&format!("removed {id}")),
            "{point}: {removed}"
        );
    }
    assert_eq!(
        host.leftovers(),
        Vec::<String>::new(),
        "after a crash at {point}"
    );
}

#[test]
fn crash_at_every_setup_point_then_teardown_or_gc() {
    let host = Host::new("crash-setup");
    host.crash_at_every_setup_point(SETUP_POINTS, &[]);
}

/// Teardown finishes in a child of the hook after poststop returns (the runtime waits for
/// poststop at every stop). A child killed at any point leaves the record, and the next
/// poststop, or gc, finishes the job.
#[test]
fn crash_at_every_teardown_point_then_teardown_again_or_gc() {
    let host = Host::new("crash-teardown");
    for (n, point) in TEARDOWN_POINTS.iter().enumerate() {
        let id = format!("t{n}");
        let bundle = host.bundle("bridge", &id, &[("io.ocinet.ports", "8080:80")], &[]);
        let process = host.netns_process();
        let state = state_json(&id, process.pid, &bundle);
        assert_ok(&host.hook("createRuntime", &state), point);
        let out = host.hook_with_env("poststop", &state, &[("OCINET_FAULT", point)]);
        assert_ok(&out, point);
        host.settle();
        let record = host.state_root().join(format!("containers/{id}.json"));
        assert!(record.exists(), "{point} was not reached in the background");
        finish_after_crash(&host, n % 2 == 0, &id, &state, process, point);
    }
}

/// A stopped container's host ports can be published again at once, as `docker run -p` right
/// after `docker stop` does, though its teardown goes on after poststop returns: here its child
/// is held at its first step (before it withdraws the ports), and the next container's setup
/// waits for it rather than refusing the ports. A container that still runs keeps its ports.
#[test]
fn published_ports_of_a_stopping_container_are_taken_over_at_once() {
    let host = Host::new("port-reuse");
    // A container (its namespace's process and its state) publishing the same 300 ports.
    let container = |id: &str| {
        let process = host.netns_process();
        let bundle = host.bundle(
            "bridge",
            id,
            &[("io.ocinet.ports", "8000-8299:8000-8299")],
            &[],
        );
        let state = state_json(id, process.pid, &bundle);
        (process, state)
    };
    let (_first_process, first) = container("p1");
    assert_ok(&host.hook("createRuntime", &first), "first setup");
    let pause = [("OCINET_PAUSE", "teardown:netns-name")];
    assert_ok(
        &host.hook_with_env("poststop", &first, &pause),
        "first poststop",
    );

    let (process, second) = container("p2");
    assert_ok(&host.hook("createRuntime", &second), "the same ports again");
    let listener = ocinet_tests::in_netns(process.pid, || {
        std::net::TcpListener::bind("0.0.0.0:8080").unwrap()
    });
    let accepted = std::thread::spawn(move || listener.accept().map(|_| ()));
    host.sh_ok("timeout 5 busybox nc -w 2 127.0.0.1 8080 </dev/null");
    accepted.join().unwrap().unwrap();

    let (_third_process, third) = container("p3");
    let refused = host.hook("createRuntime", &third);
    assert!(
        !refused.status.success()
            && String::from_utf8_lossy(&refused.stderr)
                .contains("already published by container p2"),
        "a running container's ports: {}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert_ok(&host.hook("poststop", &second), "second poststop");
    host.settle();
    assert_eq!(host.leftovers(), Vec::<String>::new());
}

#[test]
fn sixty_four_parallel_setups_then_teardown_and_gc_racing() {
    let host = Arc::new(Host::new("race"));
    let count = 64;
    let processes: Vec<_> = (0..count).map(|_| host.netns_process()).collect();
    let states: Vec<String> = (0..count)
        .map(|i| {
            let id = format!("r{i}");
            // Half pick a free host port, half take fixed ones: neither may collide.
            let ports = if i % 2 == 0 {
                "80".to_string()
            } else {
                format!("{}:80", 20000 + i)
            };
            let bundle = host.bundle("bridge", &id, &[("io.ocinet.ports", &ports)], &[]);
            state_json(&id, processes[i].pid, &bundle)
        })
        .collect();
    let run_all = |stage: &'static str, states: Vec<String>| {
        let threads: Vec<_> = states
            .into_iter()
            .map(|state| {
                let host = Arc::clone(&host);
                std::thread::spawn(move || host.hook(stage, &state))
            })
            .collect();
        for t in threads {
            assert_ok(&t.join().unwrap(), stage);
        }
    };
    run_all("createRuntime", states.clone());

    let mut addresses = HashSet::new();
    let mut host_ports = HashSet::new();
    for i in 0..count {
        let path = host.state_root().join(format!("containers/r{i}.json"));
        let record: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        assert!(addresses.insert(
            record["interfaces"][0]["addresses"][0]["address"]
                .as_str()
                .unwrap()
                .to_string()
        ));
        assert!(host_ports.insert(
            record["interfaces"][0]["ports"][0]["host"]["start"]
                .as_u64()
                .unwrap()
        ));
    }
    assert_eq!(host.leases("ocinet").len(), count);

    // 16 containers die without poststop while 32 others are torn down and gc runs 4 times
    // at once: gc takes exactly the dead ones, teardown the others, nothing is lost twice.
    let mut processes = processes;
    let dead: Vec<_> = processes.drain(..16).collect();
    drop(dead);
    let gcs: Vec<_> = (0..4)
        .map(|_| {
            let host = Arc::clone(&host);
            std::thread::spawn(move || host.shim(&["gc"]).unwrap())
        })
        .collect();
    run_all("poststop", states[16..48].to_vec());
    let removed: usize = gcs
        .into_iter()
        .map(|g| g.join().unwrap().lines().count())
        .sum();
    assert_eq!(removed, 16, "gc must remove exactly the 16 dead containers");
    let remaining = host.leases("ocinet");
    assert_eq!(remaining.len(), 16, "{remaining:?}");
    let ls: Value = serde_json::from_str(&host.shim(&["ls", "--format", "json"]).unwrap()).unwrap();
    let live: HashSet<String> = ls
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            c["address"]
                .as_str()
                .unwrap()
                .split('/')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(live, remaining.into_iter().collect::<HashSet<_>>());
    run_all("poststop", states[48..].to_vec());
    assert_eq!(host.leftovers(), Vec::<String>::new());
}

#[test]
fn reload_restores_rules_after_a_flush() {
    let host = Host::new("reload");
    let outside = host.outside();
    let httpd = ["httpd", "-f", "-p", "80", "-h", "/www"];
    let a_bundle = host.bundle("bridge", "a", &[("io.ocinet.ports", "8080:80")], &httpd);
    let a = host.run_bundle(Runtime::Runc, "a", &a_bundle).unwrap();
    let b_bundle = host.bundle("bridge", "b", &[("io.ocinet.ports", "8081:80")], &httpd);
    let b = host.run_bundle(Runtime::Runc, "b", &b_bundle).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let reachable = |port: u16| {
        let out = outside.sh(&format!(
            "timeout 3 busybox wget -qO- http://198.51.100.1:{port}/"
        ));
        String::from_utf8_lossy(&out.stdout).trim() == "hello from ocinet"
    };
    assert!(reachable(8080) && reachable(8081));
    host.sh_ok("nft flush ruleset");
    assert!(!reachable(8080));
    let out = host.shim(&["reload"]).unwrap();
    assert_eq!(
        out.trim(),
        "restored 2 containers: 1 masqueraded subnets, 2 port elements"
    );
    assert!(reachable(8080) && reachable(8081));
    assert!(host
        .sh_ok("nft list set inet ocinet masq_subnets")
        .contains("172.17.0.0/16"));
    // Reload twice changes nothing; a flush then a new container restores automatically.
    host.shim(&["reload"]).unwrap();
    host.sh_ok("nft flush ruleset");
    let c = host.start(Runtime::Runc, "c", &[]);
    assert!(reachable(8080) && reachable(8081));
    c.delete().unwrap();
    a.delete().unwrap();
    b.delete().unwrap();
    assert_eq!(host.leftovers(), Vec::<String>::new());
}

#[test]
fn leases_of_another_boot_never_block_and_gc_reclaims_them() {
    let host = Host::new("reboot");
    // One usable address: the gateway takes .1, so .2 is all there is.
    host.define_network("tiny", r#"{"subnets": [{"subnet": "10.96.0.0/30"}]}"#);
    let root = host.state_root();
    std::fs::create_dir_all(root.join("networks/tiny/leases")).unwrap();
    std::fs::create_dir_all(root.join("containers")).unwrap();
    std::fs::write(
        root.join("networks/tiny/leases/10.96.0.2"),
        r#"{"id":"old","boot_id":"an-earlier-boot"}"#,
    )
    .unwrap();
    std::fs::write(
        root.join("containers/old.json"),
        r#"{"id":"old","boot_id":"an-earlier-boot","mode":"bridge:tiny","pid":1,"pid_start":1,
            "bridge":{"network":"tiny","bridge":"oc-tiny","host_veth":"ocv000000000001",
            "container_interface":"eth0","address":"10.96.0.2","prefix_len":30,"gateway":"10.96.0.1"}}"#,
    )
    .unwrap();
    let c = host.start(
        Runtime::Runc,
        "new",
        &[("io.ocinet.network", "bridge:tiny")],
    );
    assert_eq!(c.address().to_string(), "10.96.0.2");
    assert_eq!(host.shim(&["gc"]).unwrap().trim(), "removed old");
    // The lease is the new container's and stays.
    let lease = std::fs::read_to_string(root.join("networks/tiny/leases/10.96.0.2")).unwrap();
    assert!(lease.contains("\"new\""), "{lease}");
    c.delete().unwrap();
    assert_eq!(host.leftovers(), Vec::<String>::new());
}

#[test]
fn corrupt_state_files_are_reported_and_harm_no_one_else() {
    let host = Host::new("corrupt");
    let root = host.state_root();
    let first = host.start(Runtime::Runc, "first", &[]);
    std::fs::write(root.join("containers/broken.json"), "{not json").unwrap();
    std::fs::write(root.join("networks/ocinet/leases/172.17.0.9"), "garbage").unwrap();
    // New containers still start, and skip the address whose lease they cannot read.
    let second = host.start(Runtime::Runc, "second", &[]);
    assert_ne!(second.address().to_string(), "172.17.0.9");
    let ls = host.shim(&["ls"]);
    let ls = ls.unwrap();
    assert!(ls.contains("first") && ls.contains("second"), "{ls}");
    let gc = host.shim(&["gc"]).unwrap_err();
    assert!(
        gc.contains("corrupt state file") && gc.contains("broken.json"),
        "{gc}"
    );
    first.delete().unwrap();
    second.delete().unwrap();
    std::fs::remove_file(root.join("containers/broken.json")).unwrap();
    std::fs::remove_file(root.join("networks/ocinet/leases/172.17.0.9")).unwrap();
    assert_eq!(host.leftovers(), Vec::<String>::new());
}

#[test]
fn a_table_missing_a_map_is_refused_with_the_way_out() {
    let host = Host::new("halftable");
    let a = host.start(Runtime::Runc, "a", &[("io.ocinet.ports", "8080:80")]);
    // Someone empties the chains and deletes a map: the table is there but not whole.
    host.sh_ok("nft flush chain inet ocinet prerouting; nft flush chain inet ocinet output; nft delete map inet ocinet dnat_any");
    let bundle = host.bundle(
        "bridge",
        "b",
        &[("io.ocinet.ports", "8081:80")],
        &["sleep", "60"],
    );
    let reason = host.run_refused(Runtime::Runc, "b", &bundle);
    assert!(
        reason.contains("nft delete table inet ocinet") && reason.contains("ocinet-shim reload"),
        "{reason}"
    );
    // Nothing of b is left; the way out the message names works.
    host.sh_ok("nft delete table inet ocinet");
    assert_eq!(
        host.shim(&["reload"]).unwrap().trim(),
        "restored 1 containers: 1 masqueraded subnets, 1 port elements"
    );
    let b = host.start(Runtime::Runc, "b", &[("io.ocinet.ports", "8081:80")]);
    b.delete().unwrap();
    a.delete().unwrap();
    assert_eq!(host.leftovers(), Vec::<String>::new());
}

#[test]
fn a_port_taken_by_a_foreign_map_element_is_refused_naming_it() {
    let host = Host::new("foreign");
    let a = host.start(Runtime::Runc, "a", &[]);
    // Someone maps 8090 by hand, behind ocinet's claims.
    host.sh_ok("nft add element inet ocinet dnat_any '{ tcp . 8090 : 10.99.0.1 . 80 }'");
    let bundle = host.bundle(
        "bridge",
        "b",
        &[("io.ocinet.ports", "8090:80")],
        &["sleep", "60"],
    );
    let reason = host.run_refused(Runtime::Runc, "b", &bundle);
    assert!(
        reason.contains("dnat_any { tcp . 8090 : 172.17.0.3 . 80 }")
            && reason.contains("not made by ocinet"),
        "{reason}"
    );
    host.sh_ok("nft delete element inet ocinet dnat_any '{ tcp . 8090 }'");
    a.delete().unwrap();
    // Nothing of b was left behind (no veth, lease, claim, record).
    assert_eq!(host.leftovers(), Vec::<String>::new());
}

#[test]
fn a_full_bridge_is_refused_with_the_way_out() {
    let host = Host::new("fullbridge");
    let a = host.start(Runtime::Runc, "a", &[]);
    // A Linux bridge numbers its ports in 10 bits, 0 reserved: fill the other 1022 with veths
    // (both ends in this host; dummy links need a module this kernel may lack).
    host.sh_ok(
        "seq 1022 | sed 's/.*/link add ocd& master ocinet0 type veth peer name ocp&/' | ip -batch -",
    );
    let bundle = host.bundle(
        "bridge",
        "b",
        &[("io.ocinet.ports", "8091:80")],
        &["sleep", "60"],
    );
    let reason = host.run_refused(Runtime::Runc, "b", &bundle);
    assert!(
        reason.contains("bridge ocinet0 of network ocinet is full")
            && reason.contains("another network"),
        "{reason}"
    );
    assert_eq!(host.leases("ocinet"), vec![a.address().to_string()]);
    // One port freed, the next container starts and the first reaches it.
    host.sh_ok("ip link del ocd1");
    let c = host.start(Runtime::Runc, "c", &[("io.ocinet.ports", "8091:80")]);
    a.sh_ok(&format!("ping -c1 -W3 {}", c.address()));
    c.delete().unwrap();
    a.delete().unwrap();
    assert_eq!(host.leftovers(), Vec::<String>::new());
}
