//! Bad input: each case exits non-zero with one line that names the problem, and leaves no
//! veth, lease or record behind.

use ocinet_tests::{state_json, Host};

struct Case {
    name: &'static str,
    annotations: &'static [(&'static str, &'static str)],
    /// Replaces the state JSON (`{pid}` and `{bundle}` are filled in).
    state: Option<&'static str>,
    stage: &'static str,
    expect: &'static str,
}

const fn case(
    name: &'static str,
    annotations: &'static [(&'static str, &'static str)],
    expect: &'static str,
) -> Case {
    Case {
        name,
        annotations,
        state: None,
        stage: "createRuntime",
        expect,
    }
}

const CASES: &[Case] = &[
    Case {
        state: Some("not json at all"),
        ..case("malformed state", &[], "invalid container state on stdin")
    },
    Case {
        state: Some(r#"{"id":"x","pid":{pid}}"#),
        ..case("state without bundle", &[], "missing field `bundle`")
    },
    Case {
        state: Some(r#"{"id":"../etc","pid":{pid},"bundle":"{bundle}"}"#),
        ..case("id with a path", &[], "container id")
    },
    Case {
        state: Some(r#"{"id":"x","pid":{pid},"bundle":"/nonexistent/bundle"}"#),
        ..case(
            "missing bundle",
            &[],
            "cannot load bundle config /nonexistent/bundle/config.json",
        )
    },
    Case {
        state: Some(r#"{"id":"x","bundle":"{bundle}"}"#),
        ..case("setup without pid", &[], "setup needs the container's pid")
    },
    Case {
        stage: "created",
        ..case("unknown stage", &[], "unknown hook stage")
    },
    case(
        "unknown mode",
        &[("io.ocinet.network", "macvlan")],
        "invalid annotation io.ocinet.network=\"macvlan\"",
    ),
    case(
        "network name with a path",
        &[("io.ocinet.network", "bridge:../../etc")],
        "network name",
    ),
    case(
        "unknown network",
        &[("io.ocinet.network", "bridge:nosuch")],
        "unknown network \"nosuch\"",
    ),
    case(
        "malformed network file",
        &[("io.ocinet.network", "bridge:broken")],
        "invalid network definition",
    ),
    case(
        "static ip syntax",
        &[("io.ocinet.ip", "10.0.0.300")],
        "invalid annotation io.ocinet.ip",
    ),
    case(
        "static ip outside the subnet",
        &[("io.ocinet.ip", "10.200.0.5")],
        "address 10.200.0.5 cannot be leased on network ocinet (172.17.0.0/16)",
    ),
    case(
        "static ip is the gateway",
        &[("io.ocinet.ip", "172.17.0.1")],
        "cannot be leased",
    ),
    case(
        "static ip taken",
        &[("io.ocinet.ip", "172.17.0.2")],
        "already leased to container holder",
    ),
    case(
        "bad mac",
        &[("io.ocinet.mac", "01:02:03")],
        "invalid annotation io.ocinet.mac",
    ),
    case(
        "malformed port spec",
        &[("io.ocinet.ports", "8080:80,70000")],
        "port spec \"70000\"",
    ),
    case(
        "ports on a none container",
        &[
            ("io.ocinet.network", "none"),
            ("io.ocinet.ports", "8080:80"),
        ],
        "only bridge networks take it",
    ),
    case(
        "ipv6 host address",
        &[("io.ocinet.ports", "[::1]:8080:80")],
        "IPv6 host addresses are not supported yet",
    ),
    case(
        "host port taken",
        &[("io.ocinet.ports", "7000:80")],
        "host port 0.0.0.0:7000/tcp is already published by container holder",
    ),
    case(
        "host mode without the shim",
        &[("io.ocinet.network", "host")],
        "network mode host needs the host's network namespace",
    ),
    case(
        "join an unknown container",
        &[("io.ocinet.network", "container:ghost")],
        "container ghost is not running",
    ),
    case(
        "join with a path",
        &[("io.ocinet.network", "container:/proc/1/ns/net")],
        "invalid annotation io.ocinet.network",
    ),
    case(
        "exhausted subnet",
        &[("io.ocinet.network", "bridge:tiny")],
        "network tiny (10.93.0.0/30) has no free address",
    ),
];

#[test]
fn bad_input_fails_with_one_line_and_leaves_nothing() {
    let host = Host::new("badinput");
    host.define_network("broken", r#"{"subnets": [{"subnet": "10.93.0.0/33"}]}"#);
    host.define_network("tiny", r#"{"subnets": [{"subnet": "10.93.0.0/30"}]}"#);
    // Two containers already hold 172.17.0.2 (default network) and tiny's only address.
    let holder = host.netns_process();
    let holder_bundle = host.bundle("bridge", "holder", &[("io.ocinet.ports", "7000:80")], &[]);
    let taker = host.netns_process();
    let taker_bundle = host.bundle(
        "bridge",
        "taker",
        &[("io.ocinet.network", "bridge:tiny")],
        &[],
    );
    for (id, pid, bundle) in [
        ("holder", holder.pid, &holder_bundle),
        ("taker", taker.pid, &taker_bundle),
    ] {
        let out = host.hook("createRuntime", &state_json(id, pid, bundle));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let before = host.leftovers();
    let links_before = host.sh_ok("ip -o link show | wc -l");

    for case in CASES {
        let p = host.netns_process();
        let bundle = host.bundle("bridge", "x", case.annotations, &[]);
        let state = match case.state {
            Some(s) => s
                .replace("{pid}", &p.pid.to_string())
                .replace("{bundle}", &bundle.display().to_string()),
            None => state_json("x", p.pid, &bundle),
        };
        let out = host.hook(case.stage, &state);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{}: succeeded", case.name);
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "{}: not one line: {stderr}",
            case.name
        );
        assert!(
            stderr.starts_with("ocinet-hook: "),
            "{}: {stderr}",
            case.name
        );
        assert!(
            stderr.contains(case.expect),
            "{}: expected {:?} in {stderr}",
            case.name,
            case.expect
        );
        assert_eq!(
            host.leftovers(),
            before,
            "{}: left something behind",
            case.name
        );
        assert_eq!(
            host.sh_ok("ip -o link show | wc -l"),
            links_before,
            "{}: links changed",
            case.name
        );
        // Teardown after the failure succeeds.
        let out = host.hook("poststop", &state_json("x", 0, &bundle));
        assert!(
            out.status.success(),
            "{}: teardown: {}",
            case.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for (id, bundle) in [("holder", &holder_bundle), ("taker", &taker_bundle)] {
        assert!(host
            .hook("poststop", &state_json(id, 0, bundle))
            .status
            .success());
    }
    assert_eq!(host.leftovers(), Vec::<String>::new());
}

#[test]
fn none_mode_without_its_own_namespace_is_refused() {
    let host = Host::new("sharedns");
    // A process in the host's own namespace, like a container whose config has no network entry.
    let mut sleeper = host.command("sleep").arg("100").spawn().unwrap();
    let bundle = host.bundle("bridge", "shared", &[("io.ocinet.network", "none")], &[]);
    let out = host.hook(
        "createRuntime",
        &state_json("shared", sleeper.id() as i32, &bundle),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("needs the container's own network namespace"),
        "{stderr}"
    );
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    assert_eq!(host.leftovers(), Vec::<String>::new());
}
