//! ocinet-cni, called as CNI runtimes and the reference plugins' tests call it: a network
//! namespace made for the test (`ip netns add`, inside the test's private host), CNI's
//! environment, the configuration on stdin. Then podman's CNI backend, containerd's `ctr run
//! --cni`, and a CNI sandbox beside a hook-wired runc container on one network.

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use ocinet_tests::{binary, ok, rootfs, Host, Runtime, PODMAN_LIMITS};
use serde_json::{json, Value};

const SUBNET: &str = "10.98.0.0/24";
const GATEWAY: &str = "10.98.0.1";

/// What one plugin call printed and how it exited.
struct Called {
    code: i32,
    out: Value,
}

/// The network `n1` inline, with this host's state root and config dir, and `extra` keys.
fn conf(host: &Host, version: &str, extra: Value) -> Value {
    let mut conf = json!({
        "cniVersion": version, "name": "n1", "type": "ocinet",
        "subnets": [{"subnet": SUBNET}],
        "root": host.state_root(), "configDir": host.config_dir(),
    });
    if let (Some(c), Some(e)) = (conf.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    conf
}

/// One call of the plugin in the host: `env` over a clean environment, `stdin` as given.
fn call_raw(host: &Host, env: &[(&str, &str)], stdin: &[u8]) -> Called {
    call_program(host, &binary("ocinet-cni"), env, stdin)
}

/// `call_raw` of any plugin (a stock one chained after ocinet).
fn call_program(host: &Host, program: &Path, env: &[(&str, &str)], stdin: &[u8]) -> Called {
    let mut child = host
        .command(program)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("CNI_PATH", "/usr/lib/cni")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    Called {
        code: out.status.code().unwrap_or(-1),
        out: if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
        },
    }
}

/// `command` for container `id`'s interface `ifname` in the sandbox `netns` (by name).
fn call(host: &Host, command: &str, id: &str, ifname: &str, netns: &str, conf: &Value) -> Called {
    let path = if netns.is_empty() {
        String::new()
    } else {
        format!("/run/netns/{netns}")
    };
    call_raw(
        host,
        &[
            ("CNI_COMMAND", command),
            ("CNI_CONTAINERID", id),
            ("CNI_IFNAME", ifname),
            ("CNI_NETNS", &path),
        ],
        conf.to_string().as_bytes(),
    )
}

/// `call`, which must succeed; its output.
fn call_ok(host: &Host, command: &str, id: &str, ifname: &str, netns: &str, conf: &Value) -> Value {
    let c = call(host, command, id, ifname, netns, conf);
    assert_eq!(c.code, 0, "{command} {id} {ifname}: {}", c.out);
    c.out
}

/// A sandbox: a named network namespace in the host, as a CNI runtime makes one.
fn sandbox(host: &Host, name: &str) {
    host.sh_ok(&format!(
        "ip netns add {name} && ip -n {name} link set lo up"
    ));
}

fn in_sandbox(host: &Host, name: &str, script: &str) -> std::process::Output {
    host.sh(&format!("ip netns exec {name} sh -c '{script}'"))
}

fn ping(host: &Host, from: &str, to: &str) -> bool {
    in_sandbox(host, from, &format!("busybox ping -c 1 -W 2 {to}"))
        .status
        .success()
}

/// The address of the result's first IP.
fn address(result: &Value) -> String {
    let a = result["ips"][0]["address"].as_str().unwrap_or_default();
    a.split('/').next().unwrap_or_default().to_string()
}

/// busybox httpd on port 80 of a sandbox, serving "hello from ocinet"; killed on drop.
struct Httpd(Child);

impl Httpd {
    fn start(host: &Host, sandbox: &str) -> Httpd {
        let www = rootfs().join("www");
        let child = host
            .command("ip")
            .args([
                "netns", "exec", sandbox, "busybox", "httpd", "-f", "-p", "80", "-h",
            ])
            .arg(www)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        Httpd(child)
    }
}

impl Drop for Httpd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wget(url: &str) -> String {
    format!("timeout 8 busybox wget -qO- {url}")
}

#[test]
fn add_check_del_in_0_4_0_and_1_0_0_with_traffic() {
    let host = Host::new("cni-direct");
    let _outside = host.outside();
    for (version, family) in [("0.4.0", Some("4")), ("1.0.0", None)] {
        let conf = conf(&host, version, json!({}));
        sandbox(&host, "s1");
        sandbox(&host, "s2");
        let a = call_ok(&host, "ADD", "c1", "eth0", "s1", &conf);
        assert_eq!(a["cniVersion"], version);
        let ip = &a["ips"][0];
        assert_eq!(ip["gateway"], GATEWAY, "{a}");
        assert_eq!(ip.get("version").and_then(Value::as_str), family, "{a}");
        let inside = &a["interfaces"][ip["interface"].as_u64().unwrap() as usize];
        assert_eq!(inside["name"], "eth0");
        assert_eq!(inside["sandbox"], "/run/netns/s1");
        assert!(inside["mac"].as_str().unwrap().starts_with("02:42:"), "{a}");
        // The reference bridge plugin's order: the bridge, the host veth, the sandbox's.
        assert_eq!(ip["interface"], 2, "{a}");
        let bridge = a["interfaces"][0]["name"].as_str().unwrap();
        let veth = a["interfaces"][1]["name"].as_str().unwrap();
        assert!(veth.starts_with("ocv"), "{a}");
        for (link, entry) in [(bridge, &a["interfaces"][0]), (veth, &a["interfaces"][1])] {
            assert!(entry.get("sandbox").is_none(), "{a}");
            let shown = host.sh_ok(&format!("ip -j link show {link}"));
            let shown: Value = serde_json::from_str(&shown).unwrap();
            assert_eq!(entry["mac"], shown[0]["address"], "{link}: {a}");
        }
        let master = host.sh_ok(&format!("ip -j link show {veth}"));
        assert!(
            master.contains(&format!("\"master\":\"{bridge}\"")),
            "{master}"
        );
        // No names held: no resolver is named.
        assert!(a.get("dns").is_none(), "{a}");
        assert_eq!(a["routes"][0], json!({"dst": "0.0.0.0/0", "gw": GATEWAY}));
        let b = call_ok(&host, "ADD", "c2", "eth0", "s2", &conf);
        assert_ne!(address(&a), address(&b));

        assert!(ping(&host, "s1", GATEWAY), "{version}: gateway");
        assert!(ping(&host, "s1", &address(&b)), "{version}: s1 to s2");
        assert!(ping(&host, "s2", "198.51.100.2"), "{version}: outside");

        // CHECK with ADD's result; a second ADD of the same attachment is refused and the
        // first keeps working.
        let mut checked = conf.clone();
        checked["prevResult"] = a.clone();
        call_ok(&host, "CHECK", "c1", "eth0", "s1", &checked);
        let again = call(&host, "ADD", "c1", "eth0", "s1", &conf);
        assert_eq!(again.code, 1);
        assert_eq!(again.out["code"], 4, "{}", again.out);
        assert!(
            again.out["msg"]
                .as_str()
                .unwrap()
                .contains("already has interface eth0"),
            "{}",
            again.out
        );
        assert!(
            ping(&host, "s1", GATEWAY),
            "{version}: after the refused ADD"
        );
        // The same container on a second interface: another address, the same network.
        let eth1 = call_ok(&host, "ADD", "c1", "eth1", "s1", &conf);
        assert_eq!(eth1["interfaces"][2]["name"], "eth1");
        assert_ne!(address(&eth1), address(&a));
        // Something changed behind its back: CHECK says so.
        host.sh_ok("ip netns exec s1 ip addr flush dev eth1");
        let drifted = call(&host, "CHECK", "c1", "eth1", "s1", &conf);
        assert_ne!(drifted.code, 0);
        assert!(drifted.out["msg"]
            .as_str()
            .unwrap()
            .contains("lacks its address"));

        let ls = host.shim(&["ls"]).unwrap();
        assert!(
            ls.contains("cni-c1-eth0") && ls.contains("cni-c2-eth0"),
            "{ls}"
        );
        for (id, ifname, netns) in [
            ("c1", "eth1", "s1"),
            ("c1", "eth0", "s1"),
            ("c2", "eth0", "s2"),
        ] {
            call_ok(&host, "DEL", id, ifname, netns, &conf);
            call_ok(&host, "DEL", id, ifname, netns, &conf);
        }
        host.sh_ok("ip netns delete s1 && ip netns delete s2");
        assert_eq!(host.leftovers(), Vec::<String>::new(), "{version}");
    }
}

#[test]
fn a_port_mapping_is_reachable_from_outside_and_from_the_host() {
    let host = Host::new("cni-ports");
    let outside = host.outside();
    sandbox(&host, "web");
    let mappings = json!({"runtimeConfig": {"portMappings": [
        {"hostPort": 8080, "containerPort": 80, "protocol": "tcp", "hostIP": ""},
        {"hostPort": 5353, "containerPort": 53, "protocol": "udp"},
        {"hostPort": 9132, "containerPort": 9132, "protocol": "sctp", "hostIP": "198.51.100.1"}]},
        "capabilities": {"portMappings": true}});
    let conf = conf(&host, "1.0.0", mappings);
    let added = call_ok(&host, "ADD", "web", "eth0", "web", &conf);
    // bandwidth chained after ocinet finds the host end in ocinet's result.
    let shaped = json!({"cniVersion": "1.0.0", "name": "n1", "type": "bandwidth",
        "ingressRate": 100_000_000, "ingressBurst": 1_000_000, "prevResult": added});
    let env = [
        ("CNI_CONTAINERID", "web"),
        ("CNI_IFNAME", "eth0"),
        ("CNI_NETNS", "/run/netns/web"),
    ];
    let bandwidth = Path::new("/usr/lib/cni/bandwidth");
    let stdin = shaped.to_string();
    for command in ["ADD", "CHECK"] {
        let mut env = env.to_vec();
        env.push(("CNI_COMMAND", command));
        let c = call_program(&host, bandwidth, &env, stdin.as_bytes());
        assert_eq!(c.code, 0, "bandwidth {command}: {}", c.out);
    }
    let veth = added["interfaces"][1]["name"].as_str().unwrap();
    let qdisc = host.sh_ok(&format!("tc qdisc show dev {veth}"));
    assert!(qdisc.contains("tbf"), "{qdisc}");
    let _httpd = Httpd::start(&host, "web");
    let got = outside.sh(&wget("http://198.51.100.1:8080/"));
    assert_eq!(
        String::from_utf8_lossy(&got.stdout).trim(),
        "hello from ocinet"
    );
    assert_eq!(
        host.sh_ok(&wget("http://127.0.0.1:8080/")).trim(),
        "hello from ocinet"
    );
    let ls = host.shim(&["ls"]).unwrap();
    for port in [
        "0.0.0.0:8080->80/tcp",
        "0.0.0.0:5353->53/udp",
        "198.51.100.1:9132->9132/sctp",
    ] {
        assert!(ls.contains(port), "{ls}");
    }
    // Another sandbox asking for the same host port is refused, with nothing left of it.
    sandbox(&host, "other");
    let taken = call(&host, "ADD", "other", "eth0", "other", &conf);
    assert_eq!(taken.out["code"], 11, "{}", taken.out);
    assert!(
        taken.out["msg"].as_str().unwrap().contains("8080"),
        "{}",
        taken.out
    );
    call_ok(&host, "DEL", "other", "eth0", "other", &conf);
    drop(_httpd);
    let mut del = env.to_vec();
    del.push(("CNI_COMMAND", "DEL"));
    assert_eq!(
        call_program(&host, bandwidth, &del, stdin.as_bytes()).code,
        0
    );
    call_ok(&host, "DEL", "web", "eth0", "web", &conf);
    host.sh_ok("ip netns delete web && ip netns delete other");
    assert_eq!(host.leftovers(), Vec::<String>::new());
}

#[test]
fn del_is_idempotent_and_errors_follow_the_spec() {
    let host = Host::new("cni-errors");
    let conf = conf(&host, "1.0.0", json!({}));
    // DEL after the namespace is gone: the veth went with it, the rest goes now.
    sandbox(&host, "gone");
    call_ok(&host, "ADD", "c1", "eth0", "gone", &conf);
    host.sh_ok("ip netns delete gone");
    call_ok(&host, "DEL", "c1", "eth0", "", &conf);
    call_ok(&host, "DEL", "c1", "eth0", "gone", &conf);
    // DEL of what was never added.
    call_ok(&host, "DEL", "never", "eth0", "", &conf);
    assert_eq!(host.leftovers(), Vec::<String>::new());

    sandbox(&host, "s");
    let bad = |mut c: Value, patch: Value| {
        if let (Some(c), Some(p)) = (c.as_object_mut(), patch.as_object()) {
            c.extend(p.clone());
        }
        c
    };
    for (bad_conf, code, says) in [
        (
            bad(
                conf.clone(),
                json!({"subnets": [{"subnet": "10.98.0.1/24"}]}),
            ),
            7,
            "host bits",
        ),
        (
            bad(conf.clone(), json!({"subnet": "10.98.0.0/24"})),
            2,
            "\"subnet\"",
        ),
        (
            bad(
                conf.clone(),
                json!({"isGateway": true, "ipam": {"type": "dhcp"}}),
            ),
            2,
            "\"ipam\" of type \"dhcp\"",
        ),
        (
            bad(conf.clone(), json!({"cniVersion": "0.2.0"})),
            1,
            "0.2.0",
        ),
        (
            bad(
                conf.clone(),
                json!({"runtimeConfig": {"portMappings": [{"hostPort": 0, "containerPort": 80}]}}),
            ),
            7,
            "hostPort",
        ),
        (
            bad(
                conf.clone(),
                json!({"name": "other", "subnets": [{"subnet": "10.98.0.0/24"}]}),
            ),
            0,
            "",
        ),
    ] {
        let c = call(&host, "ADD", "c2", "eth0", "s", &bad_conf);
        if code == 0 {
            // The control: a good configuration goes through, and DEL undoes it.
            assert_eq!(c.code, 0, "{}", c.out);
            call_ok(&host, "DEL", "c2", "eth0", "s", &bad_conf);
            continue;
        }
        assert_eq!(
            (c.code, c.out["code"].as_u64()),
            (1, Some(code)),
            "{}",
            c.out
        );
        let msg = c.out["msg"].as_str().unwrap();
        assert!(msg.contains(says) && !msg.contains('\n'), "{msg}");
        // What a runtime does after a failed ADD, with the same configuration (but a version
        // it cannot speak).
        let del_conf = if code == 1 { &conf } else { &bad_conf };
        call_ok(&host, "DEL", "c2", "eth0", "s", del_conf);
        assert_eq!(host.leftovers(), vec!["netns s".to_string()], "{msg}");
    }
    let not_json = call_raw(
        &host,
        &[
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", "c"),
            ("CNI_IFNAME", "eth0"),
            ("CNI_NETNS", "/run/netns/s"),
        ],
        b"{not json",
    );
    assert_eq!(not_json.out["code"], 6);
    let no_netns = call_raw(
        &host,
        &[
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", "c"),
            ("CNI_IFNAME", "eth0"),
        ],
        conf.to_string().as_bytes(),
    );
    assert_eq!(no_netns.out["code"], 4);
    assert!(no_netns.out["msg"].as_str().unwrap().contains("CNI_NETNS"));

    let version = call_raw(
        &host,
        &[("CNI_COMMAND", "VERSION")],
        br#"{"cniVersion":"1.0.0"}"#,
    );
    assert_eq!(
        version.out["supportedVersions"],
        json!(["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
    );
    let v11 = bad(conf.clone(), json!({"cniVersion": "1.1.0"}));
    let status = call_raw(
        &host,
        &[("CNI_COMMAND", "STATUS")],
        v11.to_string().as_bytes(),
    );
    assert_eq!(status.code, 0, "{}", status.out);
    host.sh_ok("ip netns delete s");
    assert_eq!(host.leftovers(), Vec::<String>::new());
}

/// The real binary given fields of the wrong type (issue 34): exit 1, the specification's
/// decoding failure (code 6) on stdout naming the field and the type it must be, nothing
/// made; a DEL after it goes through unless the field is one every command reads.
#[test]
fn a_field_of_the_wrong_type_is_refused_with_code_6() {
    let host = Host::new("cni-types");
    let conf = conf(&host, "1.0.0", json!({}));
    sandbox(&host, "s");
    let with = |patch: Value| {
        let mut c = conf.clone();
        if let (Some(c), Some(p)) = (c.as_object_mut(), patch.as_object()) {
            c.extend(p.clone());
        }
        c
    };
    for (patch, says, del_goes_through) in [
        (json!({"type": 3}), "\"type\" must be a string, not the number 3", true),
        (json!({"capabilities": 5}), "\"capabilities\" must be an object", true),
        (json!({"runtimeConfig": []}), "\"runtimeConfig\" must be an object, not a list", true),
        (
            json!({"runtimeConfig": {"portMappings": [{"hostPort": "8080", "containerPort": 80}]}}),
            "\"runtimeConfig.portMappings[0].hostPort\" must be a whole number, not the string \"8080\"",
            true,
        ),
        (json!({"prevResult": 7}), "\"prevResult\" must be an object, not the number 7", true),
        (json!({"mtu": "1500"}), "\"mtu\" must be a whole number from 0 to 4294967295", true),
        (
            json!({"cniVersion": 1}),
            "\"cniVersion\" must be a string such as \"1.0.0\", not the number 1",
            false,
        ),
        (json!({"name": 2}), "\"name\" must be a string, not the number 2", false),
    ] {
        let bad = with(patch.clone());
        let c = call(&host, "ADD", "c1", "eth0", "s", &bad);
        assert_eq!(
            (c.code, c.out["code"].as_u64()),
            (1, Some(6)),
            "{patch}: {}",
            c.out
        );
        let msg = c.out["msg"].as_str().unwrap_or_default();
        assert!(msg.contains(says) && !msg.contains('\n'), "{patch}: {msg}");
        // The error speaks the configuration's version, or the newest when that is no string.
        let version = if patch.get("cniVersion").is_some() { "1.1.0" } else { "1.0.0" };
        assert_eq!(c.out["cniVersion"], version, "{patch}");
        let del = call(&host, "DEL", "c1", "eth0", "s", &bad);
        assert_eq!(del.code == 0, del_goes_through, "{patch}: {}", del.out);
        assert_eq!(host.leftovers(), vec!["netns s".to_string()], "{patch}");
    }
    // The same configuration with the right types goes through, and DEL undoes it.
    let good = with(
        json!({"type": "ocinet", "capabilities": {"portMappings": true},
        "runtimeConfig": {"portMappings": [{"hostPort": 8080, "containerPort": 80}]},
        "mtu": 1500}),
    );
    call_ok(&host, "ADD", "c1", "eth0", "s", &good);
    call_ok(&host, "DEL", "c1", "eth0", "s", &good);
    host.sh_ok("ip netns delete s");
    assert_eq!(host.leftovers(), Vec::<String>::new());
}

#[test]
fn gc_collects_unlisted_cni_attachments_and_shim_gc_those_whose_namespace_is_gone() {
    let host = Host::new("cni-gc");
    let conf = conf(&host, "1.1.0", json!({}));
    for name in ["keep", "drop", "vanish"] {
        sandbox(&host, name);
        call_ok(&host, "ADD", name, "eth0", name, &conf);
    }
    // A hook-wired container on the same network is never CNI's to collect.
    host.define_network("n1", &format!(r#"{{"subnets":[{{"subnet":"{SUBNET}"}}]}}"#));
    let hooked = host.start(Runtime::Runc, "hooked", &[("io.ocinet.network", "n1")]);
    let mut gc = conf.clone();
    gc["cni.dev/valid-attachments"] = json!([{"containerID": "keep", "ifname": "eth0"}, {"containerID": "vanish", "ifname": "eth0"}]);
    let c = call_raw(&host, &[("CNI_COMMAND", "GC")], gc.to_string().as_bytes());
    assert_eq!(c.code, 0, "{}", c.out);
    let ls = host.shim(&["ls"]).unwrap();
    assert!(
        ls.contains("cni-keep-eth0") && ls.contains("hooked"),
        "{ls}"
    );
    assert!(!ls.contains("cni-drop-eth0"), "{ls}");
    // A sandbox whose namespace is gone without a DEL: ocinet-shim gc collects it.
    host.sh_ok("ip netns delete vanish");
    let collected = host.shim(&["gc"]).unwrap();
    assert!(collected.contains("cni-vanish-eth0"), "{collected}");
    let ls = host.shim(&["ls"]).unwrap();
    assert!(
        ls.contains("cni-keep-eth0") && !ls.contains("vanish"),
        "{ls}"
    );
    hooked.delete().unwrap();
    call_ok(&host, "DEL", "keep", "eth0", "keep", &conf);
    host.sh_ok("ip netns delete keep && ip netns delete drop");
    assert_eq!(host.leftovers(), Vec::<String>::new());
}

#[test]
fn a_cni_sandbox_and_a_hook_container_share_a_network() {
    let host = Host::new("cni-mixed");
    host.define_network("n1", &format!(r#"{{"subnets":[{{"subnet":"{SUBNET}"}}]}}"#));
    let runc = host.start(Runtime::Runc, "runc1", &[("io.ocinet.network", "n1")]);
    sandbox(&host, "s1");
    // By name: the network file defines it.
    let by_name = json!({"cniVersion": "1.0.0", "name": "n1", "type": "ocinet",
        "root": host.state_root(), "configDir": host.config_dir()});
    let a = call_ok(&host, "ADD", "cni1", "eth0", "s1", &by_name);
    assert_ne!(address(&a), runc.address().to_string());
    assert!(ping(&host, "s1", &runc.address().to_string()));
    runc.sh_ok(&format!("ping -c 1 -W 2 {}", address(&a)));
    // Inline, it must say what the file says.
    sandbox(&host, "s2");
    let differs = conf(
        &host,
        "1.0.0",
        json!({"subnets": [{"subnet": "10.97.0.0/24"}]}),
    );
    let c = call(&host, "ADD", "cni2", "eth0", "s2", &differs);
    assert_eq!(c.out["code"], 7, "{}", c.out);
    let same = conf(&host, "1.0.0", json!({}));
    let b = call_ok(&host, "ADD", "cni2", "eth0", "s2", &same);
    let mut addresses = vec![address(&a), address(&b), runc.address().to_string()];
    addresses.sort();
    addresses.dedup();
    assert_eq!(addresses.len(), 3);
    call_ok(&host, "DEL", "cni1", "eth0", "s1", &by_name);
    call_ok(&host, "DEL", "cni2", "eth0", "s2", &same);
    runc.delete().unwrap();
    host.sh_ok("ip netns delete s1 && ip netns delete s2");
    assert_eq!(host.leftovers(), Vec::<String>::new());
}

/// scripts/install.sh into `prefix`, with the CNI plugin into `prefix/lib/cni` (not the
/// machine's own directories).
fn install(prefix: &Path) -> PathBuf {
    let cni_dir = prefix.join("lib/cni");
    ocinet_tests::install(prefix, &cni_dir, None);
    cni_dir
}

/// podman 4.3 on its CNI backend in `host`, with ocinet installed in a plugin directory of
/// its own and `conflists` in a network config dir of the test's.
struct PodmanCni<'a> {
    host: &'a Host,
    containers_conf: PathBuf,
    net_dir: PathBuf,
}

impl<'a> PodmanCni<'a> {
    fn new(host: &'a Host, conflists: &[&Value]) -> PodmanCni<'a> {
        let cni_dir = install(&host.dir.join("prefix"));
        // Podman 4.3 has no flag for the plugin directories: containers.conf does. Stock
        // plugins chained after ocinet (tuning here) come from Debian's /usr/lib/cni.
        let containers_conf = host.dir.join("containers.conf");
        std::fs::write(
            &containers_conf,
            format!(
                "[network]\ncni_plugin_dirs = [\"{}\", \"/usr/lib/cni\"]\n",
                cni_dir.display()
            ),
        )
        .unwrap();
        let net_dir = host.dir.join("cni-net");
        std::fs::create_dir_all(&net_dir).unwrap();
        for conflist in conflists {
            let name = conflist["name"].as_str().unwrap();
            std::fs::write(
                net_dir.join(format!("{name}.conflist")),
                conflist.to_string(),
            )
            .unwrap();
        }
        PodmanCni {
            host,
            containers_conf,
            net_dir,
        }
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        let global = [
            OsStr::new("--runtime"),
            OsStr::new("runc"),
            OsStr::new("--network-backend"),
            OsStr::new("cni"),
            OsStr::new("--network-config-dir"),
            self.net_dir.as_os_str(),
        ];
        self.host
            .podman(&global)
            .env("CONTAINERS_CONF", &self.containers_conf)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// `run`, which must succeed: its stdout.
    fn ok(&self, args: &[&str]) -> String {
        ok(&self.run(args))
    }

    /// `podman run` of the test's rootfs with `args` (options, then the command).
    fn run_rootfs(&self, options: &[&str], command: &[&str]) -> std::process::Output {
        let rootfs = rootfs().to_string_lossy().into_owned();
        let mut run = vec!["run"];
        run.extend(options);
        run.extend(PODMAN_LIMITS);
        run.extend(["--rootfs", &rootfs]);
        run.extend(command);
        self.run(&run)
    }
}

#[test]
fn podman_cni_backend_with_a_conflist() {
    let host = Host::new("cni-podman");
    let outside = host.outside();
    let conflist = json!({"cniVersion": "1.0.0", "name": "n1", "plugins": [
        {"type": "ocinet", "subnets": [{"subnet": SUBNET}],
         "root": host.state_root(), "configDir": host.config_dir(),
         "capabilities": {"portMappings": true, "ips": true, "mac": true}},
        {"type": "tuning", "sysctl": {"net.ipv4.conf.eth0.rp_filter": "2"}}]});
    let cni = PodmanCni::new(&host, &[&conflist]);
    let podman = |args: &[&str]| cni.ok(args);
    let networks = podman(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(networks.lines().any(|l| l.trim() == "n1"), "{networks}");
    let rootfs = rootfs().to_string_lossy().into_owned();
    let mut run = vec![
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "n1",
        "-p",
        "8080:80",
    ];
    run.extend(PODMAN_LIMITS);
    run.extend(["--rootfs", &rootfs, "httpd", "-f", "-p", "80", "-h", "/www"]);
    podman(&run);
    std::thread::sleep(Duration::from_millis(300));
    let got = outside.sh(&wget("http://198.51.100.1:8080/"));
    assert_eq!(
        String::from_utf8_lossy(&got.stdout).trim(),
        "hello from ocinet",
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    let inspect = podman(&[
        "inspect",
        "web",
        "--format",
        "{{.NetworkSettings.Networks.n1.IPAddress}}",
    ]);
    assert!(inspect.trim().starts_with("10.98.0."), "{inspect}");
    // tuning ran after ocinet, on the interface ocinet's result named.
    let rp = podman(&[
        "exec",
        "web",
        "cat",
        "/proc/sys/net/ipv4/conf/eth0/rp_filter",
    ]);
    assert_eq!(rp.trim(), "2");
    let ls = host.shim(&["ls"]).unwrap();
    assert!(ls.contains("0.0.0.0:8080->80/tcp"), "{ls}");
    podman(&["rm", "-f", "-t", "0", "web"]);
    assert_eq!(host.leftovers(), Vec::<String>::new());
}

/// podman 4.3 passes the container's name in CNI_ARGS (`K8S_POD_NAME`) and its network
/// aliases through the `aliases` capability: ocinet's resolver on the gateway answers them to
/// the network's other containers, and stops answering once the container is gone.
#[test]
fn podman_names_resolve_through_ocinets_resolver() {
    let host = Host::new("cni-podman-names");
    let conflist = json!({"cniVersion": "1.0.0", "name": "n1", "plugins": [
        {"type": "ocinet", "subnets": [{"subnet": SUBNET}],
         "root": host.state_root(), "configDir": host.config_dir(),
         "capabilities": {"portMappings": true, "aliases": true}}]});
    let cni = PodmanCni::new(&host, &[&conflist]);
    let started = cni.run_rootfs(
        &[
            "-d",
            "--name",
            "web",
            "--network",
            "n1",
            "--network-alias",
            "www",
        ],
        &["httpd", "-f", "-p", "80", "-h", "/www"],
    );
    ok(&started);
    let web_ip = cni.ok(&[
        "inspect",
        "web",
        "--format",
        "{{.NetworkSettings.Networks.n1.IPAddress}}",
    ]);
    let web_ip = web_ip.trim();
    assert!(web_ip.starts_with("10.98.0."), "{web_ip}");
    let ask = |name: &str| {
        let out = cni.run_rootfs(
            &["--rm", "--network", "n1"],
            &["timeout", "8", "nslookup", name, GATEWAY],
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    for name in ["web", "www"] {
        let answer = ask(name);
        // busybox: "Server: ...\nAddress: ...:53\n\nName: web\nAddress: 10.98.0.2\n"
        let answered = answer.split("\n\n").skip(1).any(|block| {
            block
                .lines()
                .any(|l| l.trim() == format!("Address: {web_ip}"))
        });
        assert!(answered, "{name}: {answer}");
    }
    cni.ok(&["rm", "-f", "-t", "0", "web"]);
    let answer = ask("web");
    assert!(!answer.contains(web_ip), "{answer}");
    assert_eq!(host.leftovers(), Vec::<String>::new());
}

/// podman 4.3's default network as it generates it (`podman`, cni-podman0, 10.88.0.0/16:
/// the bridge plugin, portmap, firewall, tuning) with `type` changed to ocinet, and `patch`
/// over the first plugin. Besides, as in every test, the host's state root and config dir
/// (`with_roots`).
fn podman_default(host: &Host, patch: Value) -> Value {
    let mut first = json!({"type": "ocinet", "bridge": "cni-podman0", "isGateway": true,
        "ipMasq": true, "hairpinMode": true,
        "ipam": {"type": "host-local", "routes": [{"dst": "0.0.0.0/0"}],
            "ranges": [[{"subnet": "10.88.0.0/16", "gateway": "10.88.0.1"}]]},
        "capabilities": {"ips": true}});
    if let (Some(f), Some(p)) = (first.as_object_mut(), patch.as_object()) {
        f.extend(p.clone());
    }
    with_roots(host, &mut first);
    json!({"cniVersion": "0.4.0", "name": "podman", "plugins": [first,
        {"type": "portmap", "capabilities": {"portMappings": true}},
        {"type": "firewall", "backend": ""},
        {"type": "tuning"}]})
}

/// The host's state root and config dir in an ocinet plugin's configuration: not the
/// environment, which podman's cleanup process (`podman run --rm`, conmon's exit command)
/// does not pass on, so its DEL would look in the real host's /run/ocinet.
fn with_roots(host: &Host, plugin: &mut Value) {
    plugin["root"] = json!(host.state_root());
    plugin["configDir"] = json!(host.config_dir());
}

/// What podman writes, with only `"type": "bridge"` changed to `"type": "ocinet"`: its
/// default network and one `podman network create` made. Containers reach each other, the
/// outside, and their published ports (portmap after ocinet), a container its own through
/// the host (hairpinMode); names answer at the gateway.
#[test]
fn podmans_own_conflists_with_only_the_type_changed() {
    let host = Host::new("cni-podman-default");
    let outside = host.outside();
    let cni = PodmanCni::new(&host, &[&podman_default(&host, json!({}))]);
    cni.ok(&["network", "create", "--subnet", "10.99.0.0/24", "n2"]);
    let created = cni.net_dir.join("n2.conflist");
    let text = std::fs::read_to_string(&created).unwrap();
    assert!(text.contains("\"type\": \"bridge\""), "{text}");
    let mut n2: Value =
        serde_json::from_str(&text.replace("\"type\": \"bridge\"", "\"type\": \"ocinet\""))
            .unwrap();
    with_roots(&host, &mut n2["plugins"][0]);
    std::fs::write(&created, n2.to_string()).unwrap();
    // podman 4.3 reads a conflist's subnets only when its first plugin is one of its own
    // types: it lists the network and its bridge, not its subnet (the README says so).
    let inspect = cni.run(&["network", "inspect", "n2", "--format", "{{.Subnets}}"]);
    assert_eq!(
        String::from_utf8_lossy(&inspect.stdout).trim(),
        "[]",
        "{}",
        String::from_utf8_lossy(&inspect.stderr)
    );
    let httpd = ["httpd", "-f", "-p", "80", "-h", "/www"];
    // The default network: no --network.
    ok(&cni.run_rootfs(&["-d", "--name", "web", "-p", "8080:80"], &httpd));
    ok(&cni.run_rootfs(&["-d", "--name", "other", "--network", "n2"], &httpd));
    let ip_of = |name: &str, network: &str| {
        let format = format!("{{{{.NetworkSettings.Networks.{network}.IPAddress}}}}");
        cni.ok(&["inspect", name, "--format", &format])
            .trim()
            .to_string()
    };
    let web_ip = ip_of("web", "podman");
    assert!(web_ip.starts_with("10.88.0."), "{web_ip}");
    assert!(ip_of("other", "n2").starts_with("10.99.0."));
    std::thread::sleep(Duration::from_millis(300));
    let client = |network: &str, script: &str| {
        let out = cni.run_rootfs(&["--rm", "--network", network], &["sh", "-c", script]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(
        client("podman", &wget(&format!("http://{web_ip}/"))),
        "hello from ocinet"
    );
    assert_eq!(
        client(
            "n2",
            "timeout 8 ping -c 1 -W 2 198.51.100.2 >/dev/null && echo out"
        ),
        "out"
    );
    let named = client("podman", "timeout 8 nslookup web 10.88.0.1");
    assert!(named.contains(&format!("Address: {web_ip}")), "{named}");
    // With the gateway as its resolv.conf's nameserver (podman 4.3 writes it there only for
    // dnsname), a container asks by name alone.
    let out = cni.run_rootfs(
        &["--rm", "--dns", "10.88.0.1"],
        &["sh", "-c", "timeout 8 nslookup web"],
    );
    let named = String::from_utf8_lossy(&out.stdout);
    assert!(named.contains(&format!("Address: {web_ip}")), "{named}");
    // Published by portmap: from outside, and from the container itself through the host.
    let got = outside.sh(&wget("http://198.51.100.1:8080/"));
    assert_eq!(
        String::from_utf8_lossy(&got.stdout).trim(),
        "hello from ocinet"
    );
    let itself = cni.run(&[
        "exec",
        "web",
        "sh",
        "-c",
        &wget("http://198.51.100.1:8080/"),
    ]);
    assert_eq!(
        String::from_utf8_lossy(&itself.stdout).trim(),
        "hello from ocinet",
        "hairpin: {}",
        String::from_utf8_lossy(&itself.stderr)
    );
    // Networks only CNI configurations define, as seen at their last ADD.
    let listed = host.shim(&["networks", "--format", "json"]).unwrap();
    let listed: Value = serde_json::from_str(&listed).unwrap();
    let cni_only = |name: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == name)
            .map(|n| (n["cni"].clone(), n["subnet"].clone(), n["bridge"].clone()))
    };
    assert_eq!(
        cni_only("n2"),
        Some((json!(true), json!("10.99.0.0/24"), json!("cni-podman1"))),
        "{listed}"
    );
    assert_eq!(
        cni_only("podman"),
        Some((json!(true), json!("10.88.0.0/16"), json!("cni-podman0")))
    );
    let bridges = host.sh_ok("nft list set inet ocinet bridges");
    assert!(bridges.contains("cni-podman1"), "{bridges}");
    let masquerade = host.sh_ok("nft list ruleset");
    assert!(masquerade.contains("10.99.0.0/24"), "{masquerade}");
    cni.ok(&["rm", "-a", "-f", "-t", "0"]);
    cni.ok(&["network", "rm", "n2"]);
    assert_eq!(host.leftovers(), Vec::<String>::new());
    // gc retires n2 (no attachment, no configuration names it), not podman (configured).
    let net_dir = cni.net_dir.to_string_lossy().into_owned();
    let gc = host.shim(&["gc", "--cni-config-dir", &net_dir]).unwrap();
    assert_eq!(gc.trim(), "retired network n2");
    assert!(!host.sh("ip link show cni-podman1").status.success());
    assert!(host.sh("ip link show cni-podman0").status.success());
    let bridges = host.sh_ok("nft list set inet ocinet bridges");
    assert!(!bridges.contains("cni-podman1"), "{bridges}");
    let masquerade = host.sh_ok("nft list ruleset");
    assert!(!masquerade.contains("10.99.0.0/24"), "{masquerade}");
    for dir in ["networks/n2", "names/n2"] {
        assert!(!host.state_root().join(dir).exists(), "{dir}");
    }
    let again = host.shim(&["gc", "--cni-config-dir", &net_dir]).unwrap();
    assert_eq!(again.trim(), "");
    let listed = host.shim(&["networks"]).unwrap();
    assert!(
        !listed.contains("n2") && listed.contains("cni-podman0"),
        "{listed}"
    );
}

/// The bridge plugin's fields under real podman: `hairpinMode` false leaves a container unable
/// to reach itself at its published port (others still can), as with the bridge plugin; what
/// ocinet cannot do (`isGateway` false, a range's start) fails `podman run` with one line
/// naming the field, and leaves nothing.
#[test]
fn bridge_plugin_fields_are_honoured_or_refused_under_podman() {
    let host = Host::new("cni-podman-fields");
    let outside = host.outside();
    let network = |name: &str, bridge: &str, subnet: &str, patch: Value| {
        let mut conf = podman_default(&host, patch);
        conf["name"] = json!(name);
        conf["plugins"][0]["bridge"] = json!(bridge);
        conf["plugins"][0]["ipam"]["ranges"][0][0] = json!({"subnet": subnet});
        conf
    };
    let nohairpin = network(
        "nohairpin",
        "ocnhp0",
        "10.90.0.0/24",
        json!({"hairpinMode": false}),
    );
    let nogateway = network(
        "nogateway",
        "ocngw0",
        "10.91.0.0/24",
        json!({"isGateway": false}),
    );
    let mut ranged = network("ranged", "ocnrg0", "10.92.0.0/24", json!({}));
    ranged["plugins"][0]["ipam"]["ranges"][0][0]["rangeStart"] = json!("10.92.0.100");
    let cni = PodmanCni::new(&host, &[&nohairpin, &nogateway, &ranged]);
    let httpd = ["httpd", "-f", "-p", "80", "-h", "/www"];
    ok(&cni.run_rootfs(
        &[
            "-d",
            "--name",
            "web",
            "--network",
            "nohairpin",
            "-p",
            "8080:80",
        ],
        &httpd,
    ));
    std::thread::sleep(Duration::from_millis(300));
    let got = outside.sh(&wget("http://198.51.100.1:8080/"));
    assert_eq!(
        String::from_utf8_lossy(&got.stdout).trim(),
        "hello from ocinet"
    );
    let itself = cni.run(&[
        "exec",
        "web",
        "sh",
        "-c",
        "timeout 3 wget -qO- http://198.51.100.1:8080/",
    ]);
    assert_ne!(
        String::from_utf8_lossy(&itself.stdout).trim(),
        "hello from ocinet",
        "no hairpin, yet the container reached itself"
    );
    for (name, says) in [
        ("nogateway", "\"isGateway\": false is not supported"),
        ("ranged", "rangeStart\" is not supported"),
    ] {
        let refused = cni.run_rootfs(&["--rm", "--network", name], &["true"]);
        assert!(!refused.status.success(), "{name}");
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(stderr.contains(says), "{name}: {stderr}");
    }
    cni.ok(&["rm", "-a", "-f", "-t", "0"]);
    assert_eq!(host.leftovers(), Vec::<String>::new());
}

#[test]
fn containerd_ctr_run_with_cni() {
    let host = Host::new("cni-ctr");
    let _outside = host.outside();
    // ctr's --cni reads /etc/cni/net.d and runs plugins from /opt/cni/bin: this host's own,
    // mounted over the machine's in its private mount namespace.
    let conflist = json!({"cniVersion": "1.0.0", "name": "n1", "plugins": [
        {"type": "ocinet", "subnets": [{"subnet": SUBNET}],
         "root": host.state_root(), "configDir": host.config_dir()}]});
    std::fs::write(host.dir.join("n1.conflist"), conflist.to_string()).unwrap();
    host.sh_ok(&format!(
        "mount -t tmpfs ocinet-test /etc/cni && mkdir -p /etc/cni/net.d && cp {} /etc/cni/net.d/ \
         && mount -t tmpfs ocinet-test /opt && mkdir -p /opt/cni/bin && cp {} /opt/cni/bin/ocinet",
        host.dir.join("n1.conflist").display(),
        binary("ocinet-cni").display()
    ));
    let ctd = host.containerd();
    let rootfs = rootfs().to_string_lossy().into_owned();
    let out = ctd.ctr(&[
        "run",
        "-d",
        "--cni",
        "--rootfs",
        &rootfs,
        "web",
        "/bin/httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/www",
    ]);
    assert!(
        out.status.success(),
        "ctr run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::thread::sleep(Duration::from_millis(300));
    let ls = host.shim(&["ls"]).unwrap();
    let address = ls
        .lines()
        .find(|l| l.contains("web"))
        .and_then(|l| l.split_whitespace().find(|w| w.starts_with("10.98.0.")))
        .unwrap_or_else(|| panic!("{ls}"))
        .split('/')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(
        host.sh_ok(&wget(&format!("http://{address}/"))).trim(),
        "hello from ocinet"
    );
    let egress = ctd.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "p",
        "web",
        "/bin/ping",
        "-c",
        "1",
        "-W",
        "2",
        "198.51.100.2",
    ]);
    assert!(
        egress.status.success(),
        "{}",
        String::from_utf8_lossy(&egress.stdout)
    );
    // ctr tears no CNI network down: with the task gone, its namespace path is gone, and
    // ocinet-shim gc collects the attachment.
    ctd.remove("web");
    let collected = host.shim(&["gc"]).unwrap();
    assert!(collected.contains("web"), "{collected}");
    assert_eq!(host.leftovers(), Vec::<String>::new());
}

/// A dual-stack network inline: both addresses and default routes in the result, IPv6 usable
/// the moment ADD returns, a static IPv6 address from `runtimeConfig.ips`, CHECK, DEL.
#[test]
fn dual_stack_add_check_del() {
    let host = Host::new("cni-dual");
    let conf = conf(
        &host,
        "1.0.0",
        json!({"subnets": [{"subnet": SUBNET}, {"subnet": "fd00:98::/64"}]}),
    );
    sandbox(&host, "s1");
    sandbox(&host, "s2");
    let a = call_ok(&host, "ADD", "c1", "eth0", "s1", &conf);
    assert_eq!(a["ips"][1]["address"], "fd00:98::2/64", "{a}");
    assert_eq!(a["ips"][1]["gateway"], "fd00:98::1", "{a}");
    assert_eq!(a["routes"][1], json!({"dst": "::/0", "gw": "fd00:98::1"}));
    let mut static6 = conf.clone();
    static6["runtimeConfig"] = json!({"ips": ["fd00:98::77/64"]});
    let b = call_ok(&host, "ADD", "c2", "eth0", "s2", &static6);
    assert_eq!(b["ips"][1]["address"], "fd00:98::77/64", "{b}");
    // Right after ADD: no tentative address to wait for.
    assert!(
        in_sandbox(&host, "s1", "busybox ping -6 -c 1 -W 2 fd00:98::77")
            .status
            .success(),
        "s1 to s2 over IPv6"
    );
    let mut checked = conf.clone();
    checked["prevResult"] = a.clone();
    call_ok(&host, "CHECK", "c1", "eth0", "s1", &checked);
    for (id, netns) in [("c1", "s1"), ("c2", "s2")] {
        call_ok(&host, "DEL", id, "eth0", netns, &conf);
        call_ok(&host, "DEL", id, "eth0", netns, &conf);
    }
    host.sh_ok("ip netns delete s1 && ip netns delete s2");
    assert_eq!(host.leftovers(), Vec::<String>::new());
}

/// `busybox nslookup NAME SERVER` in a sandbox: the addresses answered, or None.
fn lookup(host: &Host, from: &str, name: &str, server: &str) -> Option<Vec<String>> {
    let out = in_sandbox(
        host,
        from,
        &format!("timeout 8 busybox nslookup {name} {server}"),
    );
    // busybox: "Server: ...\nAddress: ...:53\n\nName: web\nAddress: 10.98.0.2\n"; not the
    // exit status (busybox asks A and AAAA and fails if either does).
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let answers: Vec<String> = text
        .split("\n\n")
        .skip(1)
        .flat_map(|block| block.lines().map(str::to_string).collect::<Vec<_>>())
        .filter_map(|l| l.strip_prefix("Address:").map(|a| a.trim().to_string()))
        .collect();
    (!answers.is_empty()).then_some(answers)
}

/// podman's names over CNI (`K8S_POD_NAME` in CNI_ARGS, the `aliases` capability) are held on
/// the network as the hook's `io.ocinet.name`/`aliases`: ocinet's resolver on the gateway
/// answers them to the network's sandboxes, the result names it, DEL releases them; a network
/// with `"dns": false` takes none.
#[test]
fn cni_names_resolve_through_ocinets_resolver() {
    let host = Host::new("cni-names");
    let conf = conf(
        &host,
        "1.0.0",
        json!({"capabilities": {"aliases": true},
            "runtimeConfig": {"aliases": {"n1": ["www", "a1b2c3d4e5f6"], "other": ["nope"]}}}),
    );
    sandbox(&host, "web");
    sandbox(&host, "client");
    let add = |id: &str, netns: &str, pod: &str, conf: &Value| {
        let args = format!("IgnoreUnknown=1;K8S_POD_NAME={pod}");
        let c = call_raw(
            &host,
            &[
                ("CNI_COMMAND", "ADD"),
                ("CNI_CONTAINERID", id),
                ("CNI_IFNAME", "eth0"),
                ("CNI_NETNS", &format!("/run/netns/{netns}")),
                ("CNI_ARGS", &args),
            ],
            conf.to_string().as_bytes(),
        );
        assert_eq!(c.code, 0, "ADD {id}: {}", c.out);
        c.out
    };
    let web = add("web1", "web", "web", &conf);
    assert_eq!(web["dns"], json!({"nameservers": [GATEWAY]}), "{web}");
    let mut plain = conf.clone();
    plain["runtimeConfig"] = json!({});
    let client = add("client1", "client", "client", &plain);
    let web_ip = address(&web);
    for name in ["web", "www", "a1b2c3d4e5f6", "WEB"] {
        assert_eq!(
            lookup(&host, "client", name, GATEWAY),
            Some(vec![web_ip.clone()]),
            "{name}"
        );
    }
    assert_eq!(
        lookup(&host, "web", "client", GATEWAY),
        Some(vec![address(&client)])
    );
    // Another network's alias is not this one's.
    assert_eq!(lookup(&host, "client", "nope", GATEWAY), None);
    let names = |id: &str| {
        let text = host.shim(&["inspect", "--format=json", id]).unwrap();
        let json: Value = serde_json::from_str(&text).unwrap();
        json[0]["record"]["interfaces"][0]["names"].clone()
    };
    assert_eq!(
        names("cni-web1-eth0"),
        json!(["web", "www", "a1b2c3d4e5f6"])
    );
    // A second holder of a name held is refused, and the first keeps it.
    sandbox(&host, "twin");
    let twin = call_raw(
        &host,
        &[
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", "twin1"),
            ("CNI_IFNAME", "eth0"),
            ("CNI_NETNS", "/run/netns/twin"),
            ("CNI_ARGS", "K8S_POD_NAME=web"),
        ],
        plain.to_string().as_bytes(),
    );
    assert_ne!(twin.code, 0, "{}", twin.out);
    assert!(
        twin.out["msg"].as_str().unwrap_or_default().contains("web"),
        "{}",
        twin.out
    );
    // DEL releases the names.
    call_ok(&host, "DEL", "web1", "eth0", "web", &conf);
    assert_eq!(lookup(&host, "client", "web", GATEWAY), None);
    call_ok(&host, "DEL", "client1", "eth0", "client", &plain);
    // No name service on the network: nothing is held, no resolver is named.
    let mut quiet = conf.clone();
    quiet["dns"] = json!(false);
    let got = add("web2", "web", "web", &quiet);
    assert!(got.get("dns").is_none(), "{got}");
    assert_eq!(names("cni-web2-eth0"), Value::Null);
    call_ok(&host, "DEL", "web2", "eth0", "web", &quiet);
    host.sh_ok("ip netns delete web && ip netns delete client && ip netns delete twin");
    assert_eq!(host.leftovers(), Vec::<String>::new());
}

/// `ocinet-shim gc` retires a network only CNI configurations define once no attachment uses
/// it and no configuration names it: not while a sandbox is on it, nor while named.
#[test]
fn gc_retires_a_cni_network_once_unused_and_unconfigured() {
    let host = Host::new("cni-retire");
    let conf = conf(&host, "1.0.0", json!({}));
    sandbox(&host, "s1");
    let added = call_ok(&host, "ADD", "c1", "eth0", "s1", &conf);
    let bridge = added["interfaces"][0]["name"].as_str().unwrap().to_string();
    let configs = host.dir.join("cni-configs");
    std::fs::create_dir_all(&configs).unwrap();
    let dir = configs.to_string_lossy().into_owned();
    let gc = || host.shim(&["gc", "--cni-config-dir", &dir]).unwrap();
    // In use: stays.
    assert_eq!(gc().trim(), "");
    assert!(host.sh(&format!("ip link show {bridge}")).status.success());
    call_ok(&host, "DEL", "c1", "eth0", "s1", &conf);
    // Named by a configuration: stays.
    let conflist = json!({"cniVersion": "1.0.0", "name": "n1", "plugins": [conf.clone()]});
    std::fs::write(configs.join("n1.conflist"), conflist.to_string()).unwrap();
    assert_eq!(gc().trim(), "");
    assert!(host.state_root().join("networks/n1").exists());
    // Neither: retired, and a configuration put back makes it again at its next ADD.
    std::fs::remove_file(configs.join("n1.conflist")).unwrap();
    assert_eq!(gc().trim(), "retired network n1");
    assert!(!host.sh(&format!("ip link show {bridge}")).status.success());
    assert!(!host.state_root().join("networks/n1").exists());
    call_ok(&host, "ADD", "c2", "eth0", "s1", &conf);
    assert!(ping(&host, "s1", GATEWAY));
    call_ok(&host, "DEL", "c2", "eth0", "s1", &conf);
    host.sh_ok("ip netns delete s1");
    assert_eq!(host.leftovers(), Vec::<String>::new());
}
