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
        &[("io.ocinet.network", "mac/vlan")],
        "invalid annotation io.ocinet.network=\"mac/vlan\"",
    ),
    case(
        "unknown network by name",
        &[("io.ocinet.network", "macvlan")],
        "unknown network \"macvlan\"",
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
        "ipv6 subnet larger than a /64",
        &[("io.ocinet.network", "big6")],
        "IPv6 subnet fd00:93::/56 must have a prefix between /64 and /120",
    ),
    case(
        "ipv6 gateway outside",
        &[("io.ocinet.network", "gw6")],
        "gateway fd00:94::1 is not a host address of fd00:93::/64",
    ),
    case(
        "two ipv6 subnets",
        &[("io.ocinet.network", "two6")],
        "are of one family",
    ),
    case(
        "link-local subnet",
        &[("io.ocinet.network", "ll6")],
        "is link-local",
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
        "ipv6 loopback host address",
        &[("io.ocinet.ports", "[::1]:8080:80")],
        "Linux cannot forward IPv6 loopback traffic to a container",
    ),
    case(
        "ipv6 host address on an ipv4-only network",
        &[("io.ocinet.ports", "[2001:db8::1]:8080:80")],
        "network ocinet gives the container no IPv6 address to publish on it",
    ),
    case(
        "static ipv6 address on an ipv4-only network",
        &[("io.ocinet.ip6", "fd00::5")],
        "it has no IPv6 subnet",
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

/// A case whose input is built at run time: huge values, special files.
struct Hostile {
    name: &'static str,
    annotations: Vec<(&'static str, String)>,
    /// Replaces the state JSON (`{pid}` and `{bundle}` are filled in).
    state: Option<String>,
    /// Changes the bundle after it is written (config.json as a FIFO, ...).
    bundle: Option<fn(&std::path::Path)>,
    expect: &'static str,
}

fn hostile(
    name: &'static str,
    annotations: Vec<(&'static str, String)>,
    expect: &'static str,
) -> Hostile {
    Hostile {
        name,
        annotations,
        state: None,
        bundle: None,
        expect,
    }
}

fn hostile_cases() -> Vec<Hostile> {
    let state = |s: &str| Some(s.to_string());
    vec![
        Hostile {
            state: Some(format!(
                r#"{{"id":"x","pid":{{pid}},"bundle":"{{bundle}}","pad":"{}"}}"#,
                "a".repeat(2 << 20)
            )),
            ..hostile("state over 1 MiB", vec![], "larger than 1048576 bytes")
        },
        Hostile {
            state: state(r#"{"id":"a\nb","pid":{pid},"bundle":"{bundle}"}"#),
            ..hostile("id with a newline", vec![], "container id")
        },
        Hostile {
            state: Some(format!(
                r#"{{"id":"{}","pid":{{pid}},"bundle":"{{bundle}}"}}"#,
                "i".repeat(300)
            )),
            ..hostile(
                "id of 300 characters",
                vec![],
                "container id must be 1 to 256 characters",
            )
        },
        Hostile {
            state: state(r#"{"id":".hidden","pid":{pid},"bundle":"{bundle}"}"#),
            ..hostile("id starting with a dot", vec![], "may not start with '.'")
        },
        Hostile {
            state: state(r#"{"id":"x","pid":{pid},"bundle":"relative/bundle"}"#),
            ..hostile("relative bundle path", vec![], "is not absolute")
        },
        Hostile {
            state: state(r#"{"id":"x","pid":-5,"bundle":"{bundle}"}"#),
            ..hostile("negative pid", vec![], "setup needs the container's pid")
        },
        Hostile {
            state: state(r#"{"id":"x","pid":999999999,"bundle":"{bundle}"}"#),
            ..hostile(
                "pid of no process",
                vec![],
                "cannot open the network namespace of process 999999999",
            )
        },
        Hostile {
            bundle: Some(|b| {
                std::fs::remove_file(b.join("config.json")).unwrap();
                nix::unistd::mkfifo(&b.join("config.json"), nix::sys::stat::Mode::S_IRWXU).unwrap();
            }),
            ..hostile("config.json is a FIFO", vec![], "not a regular file")
        },
        Hostile {
            bundle: Some(|b| {
                std::fs::remove_file(b.join("config.json")).unwrap();
                std::os::unix::fs::symlink("/dev/zero", b.join("config.json")).unwrap();
            }),
            ..hostile(
                "config.json links to /dev/zero",
                vec![],
                "not a regular file",
            )
        },
        Hostile {
            bundle: Some(|b| std::fs::write(b.join("config.json"), "{\"ociVersion\": 1").unwrap()),
            ..hostile(
                "config.json is not JSON",
                vec![],
                "cannot load bundle config",
            )
        },
        hostile(
            "port list of 1 MiB",
            vec![("io.ocinet.ports", "80,".repeat(350_000))],
            "more than the 16384 accepted",
        ),
        hostile(
            "nft syntax smuggled in a port spec",
            vec![("io.ocinet.ports", "8080:80/tcp; flush ruleset".to_string())],
            "invalid annotation io.ocinet.ports",
        ),
        hostile(
            "nft syntax smuggled in a host address",
            vec![(
                "io.ocinet.ports",
                "1.2.3.4 } ; flush ruleset ; {:8080:80".to_string(),
            )],
            "invalid annotation io.ocinet.ports",
        ),
        hostile(
            "non-ASCII network name",
            vec![("io.ocinet.network", "bridge:réseau".to_string())],
            "network name",
        ),
        hostile(
            "network name over 64 characters",
            vec![("io.ocinet.network", format!("bridge:{}", "n".repeat(65)))],
            "network name",
        ),
        hostile(
            "multicast mac",
            vec![("io.ocinet.mac", "01:00:5e:00:00:01".to_string())],
            "invalid annotation io.ocinet.mac",
        ),
        hostile(
            "broadcast address as static ip",
            vec![("io.ocinet.ip", "172.17.255.255".to_string())],
            "cannot be leased",
        ),
        hostile(
            "join itself",
            vec![("io.ocinet.network", "container:x".to_string())],
            "cannot join its own network",
        ),
        hostile(
            "host port 0",
            vec![("io.ocinet.ports", "0:80".to_string())],
            "port spec \"0:80\"",
        ),
        hostile(
            "ranges of different lengths",
            vec![("io.ocinet.ports", "1000-1001:2000-2005".to_string())],
            "port spec \"1000-1001:2000-2005\"",
        ),
        hostile(
            "unknown protocol",
            vec![("io.ocinet.ports", "53:53/icmp".to_string())],
            "port spec \"53:53/icmp\"",
        ),
    ]
}

#[test]
fn bad_input_fails_with_one_line_and_leaves_nothing() {
    let host = Host::new("badinput");
    host.define_network("broken", r#"{"subnets": [{"subnet": "10.93.0.0/33"}]}"#);
    host.define_network("tiny", r#"{"subnets": [{"subnet": "10.93.0.0/30"}]}"#);
    host.define_network("big6", r#"{"subnets": [{"subnet": "fd00:93::/56"}]}"#);
    host.define_network(
        "gw6",
        r#"{"subnets": [{"subnet": "fd00:93::/64", "gateway": "fd00:94::1"}]}"#,
    );
    host.define_network(
        "two6",
        r#"{"subnets": [{"subnet": "fd00:93::/64"}, {"subnet": "fd00:94::/64"}]}"#,
    );
    host.define_network("ll6", r#"{"subnets": [{"subnet": "fe80::/64"}]}"#);
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

    let mut all: Vec<Hostile> = CASES
        .iter()
        .map(|c| Hostile {
            name: c.name,
            annotations: c
                .annotations
                .iter()
                .map(|(k, v)| (*k, v.to_string()))
                .collect(),
            state: c.state.map(str::to_string),
            bundle: None,
            expect: c.expect,
        })
        .collect();
    let stages: Vec<&str> = CASES.iter().map(|c| c.stage).collect();
    all.extend(hostile_cases());
    assert!(all.len() >= 40, "{} cases", all.len());
    for (n, case) in all.iter().enumerate() {
        let p = host.netns_process();
        let annotations: Vec<(&str, &str)> = case
            .annotations
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect();
        let bundle = host.bundle("bridge", "x", &annotations, &[]);
        if let Some(change) = case.bundle {
            change(&bundle);
        }
        let state = match &case.state {
            Some(s) => s
                .replace("{pid}", &p.pid.to_string())
                .replace("{bundle}", &bundle.display().to_string()),
            None => state_json("x", p.pid, &bundle),
        };
        let out = host.hook(stages.get(n).copied().unwrap_or("createRuntime"), &state);
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
    // Its word says nsenter has entered the host's namespaces (before, the pid is still in the
    // test's own, which is not the host's: the hook would find a namespace of its own).
    let mut sleeper = host
        .command("sh")
        .args(["-c", "echo ready; exec sleep 100"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(sleeper.stdout.take().unwrap()),
        &mut ready,
    )
    .unwrap();
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

#[test]
fn symlinks_in_the_state_root_are_never_followed() {
    let host = Host::new("symlinks");
    let root = host.state_root();
    let victim = host.dir.join("victim");
    std::fs::write(&victim, "precious").unwrap();
    std::fs::create_dir_all(root.join("containers")).unwrap();
    std::os::unix::fs::symlink(&victim, root.join("containers/s.json")).unwrap();
    let bundle = host.bundle("bridge", "s", &[], &[]);
    // Teardown of a record that is a link: a clear error, nothing read or removed through it.
    let out = host.hook("poststop", &state_json("s", 0, &bundle));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("is a symlink"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    // Setup replaces the link itself with a real record; the file it pointed to is untouched.
    let p = host.netns_process();
    let out = host.hook("createRuntime", &state_json("s", p.pid, &bundle));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert!(std::fs::symlink_metadata(root.join("containers/s.json"))
        .unwrap()
        .is_file());
    assert!(host
        .hook("poststop", &state_json("s", 0, &bundle))
        .status
        .success());
    assert_eq!(host.leftovers(), Vec::<String>::new());

    // A state-root directory replaced by a link: refused, nothing written where it points.
    let elsewhere = host.dir.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::remove_dir_all(root.join("containers")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, root.join("containers")).unwrap();
    let out = host.hook("createRuntime", &state_json("s", p.pid, &bundle));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("symlinks are not followed"), "{stderr}");
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
}
