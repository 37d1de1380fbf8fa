//! ocinet-shim in front of runc and crun: host and container:<id> modes, cleanup without
//! poststop, gc, the admin commands and `ip netns` names. Bundles carry no hooks: the shim
//! injects them.

use std::time::Duration;

use ocinet_tests::{Host, Runtime};
use serde_json::Value;

const HTTPD: &[&str] = &["httpd", "-f", "-p", "80", "-h", "/www"];

fn wget(url: &str) -> String {
    format!("timeout 8 busybox wget -qO- {url}")
}

#[test]
fn host_mode_shares_the_hosts_namespace() {
    for runtime in [Runtime::ShimRunc, Runtime::ShimCrun] {
        let host = Host::new("shim-host");
        host.sh_ok("ip link add ocdummy0 type veth peer name ocdummy1");
        let bundle = host.shim_bundle(
            "bridge",
            "h",
            &[("io.ocinet.network", "host")],
            &["httpd", "-f", "-p", "127.0.0.1:8090", "-h", "/www"],
        );
        let c = host.run_bundle(runtime, "h", &bundle).unwrap();
        assert!(c.sh_ok("ip -o link").contains("ocdummy0"), "{runtime:?}");
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(
            host.sh_ok(&wget("http://127.0.0.1:8090/")).trim(),
            "hello from ocinet"
        );
        // Injected once, and the namespace entry is gone.
        let config: Value =
            serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
        assert_eq!(
            config["hooks"]["createRuntime"].as_array().unwrap().len(),
            1
        );
        assert!(!config["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["type"] == "network"));
        assert!(host.shim(&["ls"]).unwrap().contains("host"));
        c.delete().unwrap();
        assert_eq!(host.leftovers(), Vec::<String>::new());
    }
}

#[test]
fn host_mode_with_ports_is_refused_before_anything_runs() {
    let host = Host::new("shim-host-ports");
    let bundle = host.shim_bundle(
        "bridge",
        "hp",
        &[("io.ocinet.network", "host"), ("io.ocinet.ports", "80")],
        &[],
    );
    let err = host
        .run_bundle(Runtime::ShimRunc, "hp", &bundle)
        .err()
        .expect("must fail");
    assert!(
        err.starts_with("ocinet-shim: invalid annotation io.ocinet.ports"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert_eq!(host.leftovers(), Vec::<String>::new());
}

#[test]
fn container_mode_joins_a_live_container() {
    let host = Host::new("shim-join");
    let a_bundle = host.shim_bundle("bridge", "a", &[], HTTPD);
    let a = host.run_bundle(Runtime::ShimRunc, "a", &a_bundle).unwrap();
    let b_bundle = host.shim_bundle("bridge", "b", &[("io.ocinet.network", "container:a")], &[]);
    let b = host.run_bundle(Runtime::ShimCrun, "b", &b_bundle).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        b.sh_ok(&wget("http://127.0.0.1:80/")).trim(),
        "hello from ocinet"
    );
    let a_address = a.address();
    assert_eq!(b.address(), a_address);
    let inspect: Value =
        serde_json::from_str(&host.shim(&["inspect", "b", "--format", "json"]).unwrap()).unwrap();
    assert_eq!(inspect[0]["record"]["mode"], "container:a");
    b.delete().unwrap();
    // A keeps its network.
    assert_eq!(
        host.sh_ok(&wget(&format!("http://{a_address}/"))).trim(),
        "hello from ocinet"
    );
    a.delete().unwrap();
    assert_eq!(host.leftovers(), Vec::<String>::new());
}

#[test]
fn container_mode_refuses_anything_but_a_live_container() {
    let host = Host::new("shim-join-bad");
    let stopped = host.shim_bundle("bridge", "stopped", &[], &["true"]);
    host.run_bundle(Runtime::ShimRunc, "stopped", &stopped)
        .unwrap();
    // A record of a process that is gone: a live pid (the host's holder) with another start time.
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    let ghost = serde_json::json!({
        "id": "ghost", "boot_id": boot.trim(), "mode": "none",
        "pid": host.pid(), "pid_start": 1
    });
    std::fs::create_dir_all(host.state_root().join("containers")).unwrap();
    std::fs::write(
        host.state_root().join("containers/ghost.json"),
        ghost.to_string(),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    for (target, expected) in [
        ("nosuch", "container nosuch is not running"),
        ("ghost", "container ghost is not running"),
        ("../1", "invalid annotation io.ocinet.network"),
        ("/proc/1/ns/net", "invalid annotation io.ocinet.network"),
        ("", "invalid annotation io.ocinet.network"),
    ] {
        let mode = format!("container:{target}");
        let bundle = host.shim_bundle("bridge", "j", &[("io.ocinet.network", &mode)], &[]);
        let err = host
            .run_bundle(Runtime::ShimRunc, "j", &bundle)
            .err()
            .unwrap_or_else(|| panic!("{mode} must fail"));
        assert!(err.contains(expected), "{mode}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{mode}: {err}");
    }
    // The stopped container (its process exited): joining it fails at the shim.
    let bundle = host.shim_bundle(
        "bridge",
        "k",
        &[("io.ocinet.network", "container:stopped")],
        &[],
    );
    let err = host
        .run_bundle(Runtime::ShimRunc, "k", &bundle)
        .err()
        .expect("must fail");
    assert!(err.contains("container stopped is not running"), "{err}");
}

/// A bundle whose hooks set up but never tear down: as when poststop is skipped.
fn setup_only_bundle(host: &Host, id: &str, annotations: &[(&str, &str)]) -> std::path::PathBuf {
    let bundle = host.bundle("bridge", id, annotations, &[]);
    let path = bundle.join("config.json");
    let mut config: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    config["hooks"] = serde_json::json!({ "createRuntime": [host.hook_entry("createRuntime")] });
    std::fs::write(&path, serde_json::to_vec(&config).unwrap()).unwrap();
    bundle
}

#[test]
fn shim_delete_cleans_what_poststop_did_not() {
    let host = Host::new("shim-delete");
    let bundle = setup_only_bundle(&host, "k9", &[("io.ocinet.ports", "8080:80")]);
    host.run_bundle(Runtime::Runc, "k9", &bundle)
        .unwrap()
        .kill9();
    assert!(!host.leftovers().is_empty());
    // The shim deletes through runc (same runtime root), then tears down from the record.
    let out = host
        .command(ocinet_tests::binary("ocinet-shim"))
        .args(["--runtime-path", "runc", "--ocinet-root"])
        .arg(host.state_root())
        .arg("--root")
        .arg(host.dir.join("runc"))
        .args(["delete", "k9"])
        .output()
        .unwrap();
    ocinet_tests::ok(&out);
    assert_eq!(host.leftovers(), Vec::<String>::new());
}

#[test]
fn gc_reclaims_dead_containers_and_other_boots() {
    let host = Host::new("shim-gc");
    let live = host.start(Runtime::Runc, "live", &[("io.ocinet.ports", "8081:80")]);
    let bundle = setup_only_bundle(&host, "dead", &[("io.ocinet.ports", "8080:80")]);
    host.run_bundle(Runtime::Runc, "dead", &bundle)
        .unwrap()
        .kill9();
    host.runtime_command(Runtime::Runc)
        .args(["delete", "dead"])
        .status()
        .unwrap();
    // A record and lease stamped with another boot.
    let root = host.state_root();
    std::fs::write(
        root.join("containers/old.json"),
        r#"{"id":"old","boot_id":"another-boot","mode":"bridge:ocinet","pid":1,"pid_start":1,
            "bridge":{"network":"ocinet","bridge":"ocinet0","host_veth":"ocv000000000000",
            "container_interface":"eth0","address":"172.17.0.200","prefix_len":16,"gateway":"172.17.0.1"}}"#,
    )
    .unwrap();
    std::fs::write(
        root.join("networks/ocinet/leases/172.17.0.200"),
        r#"{"id":"old","boot_id":"another-boot"}"#,
    )
    .unwrap();
    let out = host.shim(&["gc"]).unwrap();
    assert!(out.contains("removed dead"), "{out}");
    assert!(out.contains("removed old"), "{out}");
    assert!(!out.contains("live"), "{out}");
    // Only the live container's resources are left; gc again finds nothing.
    assert_eq!(host.leases("ocinet").len(), 1);
    assert_eq!(host.shim(&["gc"]).unwrap(), "");
    let json: Value =
        serde_json::from_str(&host.shim(&["gc", "--format", "json"]).unwrap()).unwrap();
    assert_eq!(json["removed"].as_array().unwrap().len(), 0);
    live.delete().unwrap();
    assert_eq!(host.leftovers(), Vec::<String>::new());
}

#[test]
fn ls_inspect_networks_and_ip_netns() {
    let host = Host::new("shim-ls");
    host.define_network(
        "blue",
        r#"{"bridge": "oc-blue", "subnets": [{"subnet": "10.97.0.0/24"}]}"#,
    );
    let web_bundle = host.shim_bundle("bridge", "web", &[("io.ocinet.ports", "8080:80")], &[]);
    let web = host
        .run_bundle(Runtime::ShimRunc, "web", &web_bundle)
        .unwrap();
    let blue_bundle =
        host.shim_bundle("bridge", "b1", &[("io.ocinet.network", "bridge:blue")], &[]);
    let b1 = host
        .run_bundle(Runtime::ShimRunc, "b1", &blue_bundle)
        .unwrap();
    let web_address = web.address().to_string();

    let table = host.shim(&["ls"]).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[0].starts_with("ID"), "{table}");
    let b1_line: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        &b1_line[..4],
        &["b1", "bridge:blue", "blue", "10.97.0.2/24"],
        "{table}"
    );
    let web_line = lines[2];
    assert!(web_line.contains(&format!("{web_address}/16")), "{table}");
    assert!(web_line.contains("0.0.0.0:8080->80/tcp"), "{table}");

    let json: Value =
        serde_json::from_str(&host.shim(&["ls", "--format", "json"]).unwrap()).unwrap();
    assert_eq!(json[1]["id"], "web");
    assert_eq!(json[1]["network"], "ocinet");
    assert_eq!(json[1]["ports"][0], "0.0.0.0:8080->80/tcp");
    assert_eq!(json[1]["running"], true);

    let inspect = host.shim(&["inspect", "web"]).unwrap();
    assert!(
        inspect.contains(&format!("address    {web_address}/16")),
        "{inspect}"
    );
    assert!(inspect.contains("netns      ocinet-web"), "{inspect}");
    let json: Value =
        serde_json::from_str(&host.shim(&["inspect", "--format=json", "web"]).unwrap()).unwrap();
    assert_eq!(
        json[0]["record"]["interfaces"][0]["ports"][0]["host"]["start"],
        8080
    );
    assert!(host
        .shim(&["inspect", "nosuch"])
        .unwrap_err()
        .contains("no container nosuch"));

    let networks = host.shim(&["networks"]).unwrap();
    let blue: Vec<&str> = networks
        .lines()
        .find(|l| l.starts_with("blue"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        blue,
        [
            "blue",
            "bridge",
            "oc-blue",
            "10.97.0.0/24",
            "10.97.0.1",
            "dns=true,internal=false,isolate=true,icc=true",
            "1",
            "-",
            "-"
        ],
        "{networks}"
    );
    let json: Value =
        serde_json::from_str(&host.shim(&["networks", "--format", "json"]).unwrap()).unwrap();
    let default = json
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "ocinet")
        .unwrap();
    assert_eq!(default["containers"]["web"], format!("{web_address}/16"));
    assert_eq!(default["bridge"], "ocinet0");
    assert_eq!(
        (&default["isolate"], &default["internal"], &default["icc"]),
        (&Value::Bool(true), &Value::Bool(false), &Value::Bool(true))
    );

    // `ip netns` sees running containers by name, and their interfaces inside.
    let names = host.sh_ok("ip netns list");
    assert!(
        names.contains("ocinet-web") && names.contains("ocinet-b1"),
        "{names}"
    );
    assert!(host
        .sh_ok("ip netns exec ocinet-web ip -4 -o addr show eth0")
        .contains(&web_address));
    // A failed setup is in the log too, with the reason.
    let clash = host.shim_bundle("bridge", "clash", &[("io.ocinet.ports", "8080:80")], &[]);
    assert!(host.run_bundle(Runtime::ShimRunc, "clash", &clash).is_err());
    web.delete().unwrap();
    let names = host.sh_ok("ip netns list");
    assert!(
        !names.contains("ocinet-web") && names.contains("ocinet-b1"),
        "{names}"
    );
    b1.delete().unwrap();
    assert_eq!(host.leftovers(), Vec::<String>::new());

    let logs = host.shim(&["logs", "web"]).unwrap();
    let lines: Vec<&str> = logs.lines().collect();
    assert_eq!(lines.len(), 3, "{logs}");
    assert!(
        lines[2].contains("  web  teardown-finish  ") && lines[2].ends_with("ok"),
        "{logs}"
    );
    assert!(
        lines[0].contains("  web  setup  ") && lines[0].ends_with("ok"),
        "{logs}"
    );
    assert!(
        lines[1].contains("  web  teardown  ") && lines[1].ends_with("ok"),
        "{logs}"
    );
    let clash_log = host.shim(&["logs", "clash"]).unwrap();
    assert!(
        clash_log.contains("setup")
            && clash_log.contains(
                "error: host port 0.0.0.0:8080/tcp is already published by container web"
            ),
        "{clash_log}"
    );
    let all: Value =
        serde_json::from_str(&host.shim(&["logs", "--format", "json"]).unwrap()).unwrap();
    assert!(all.as_array().unwrap().len() >= 6, "{all}");
    assert!(all[0]["millis"].as_f64().unwrap() > 0.0);
}
