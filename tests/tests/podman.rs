//! Podman from Debian, as users run it: with ocinet's hooks.d file (installed by
//! scripts/install.sh into a temporary prefix) and with `--runtime ocinet-shim`.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ocinet_tests::{binary, ok, workspace, Host, PODMAN_LIMITS};

const HTTPD: &[&str] = &["httpd", "-f", "-p", "80", "-h", "/www"];

fn wget(url: &str) -> String {
    format!("timeout 8 busybox wget -qO- {url}")
}

/// scripts/install.sh into `prefix`, with the host's state root and config dir baked in.
fn install(host: &Host, prefix: &Path) {
    ocinet_tests::install(prefix, &prefix.join("lib/cni"), Some(host));
}

fn uninstall(prefix: &Path) {
    let out = Command::new("bash")
        .arg(workspace().join("scripts/install.sh"))
        .args([
            OsStr::new("--uninstall"),
            OsStr::new("--prefix"),
            prefix.as_os_str(),
        ])
        .output()
        .unwrap();
    ok(&out);
}

/// `podman run --rm --network none` (lowered limits) of the busybox rootfs; its stdout.
fn podman_run_rm(host: &Host, global: &[&OsStr], options: &[&str], args: &[&str]) -> String {
    let mut all = vec!["run", "--rm", "--network", "none"];
    all.extend(PODMAN_LIMITS);
    all.extend(options);
    all.extend(["--rootfs", rootfs_str()]);
    all.extend(args);
    ok(&host.podman(global).args(&all).output().unwrap())
}

fn podman_ok(host: &Host, global: &[&OsStr], args: &[&str]) -> String {
    ok(&host.podman(global).args(args).output().unwrap())
}

#[test]
fn hooks_d_bridge_with_published_port() {
    let host = Host::new("podman-hooks");
    let outside = host.outside();
    let prefix: PathBuf = host.dir.join("prefix");
    install(&host, &prefix);
    let hooks_dir = prefix.join("share/containers/oci/hooks.d");
    let global = [
        OsStr::new("--runtime"),
        OsStr::new("runc"),
        OsStr::new("--hooks-dir"),
        hooks_dir.as_os_str(),
    ];
    let id = host
        .podman_run(
            &global,
            "web",
            &[
                ("io.ocinet.network", "bridge"),
                ("io.ocinet.ports", "8080:80"),
            ],
            HTTPD,
        )
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let got = outside.sh(&wget("http://198.51.100.1:8080/"));
    assert_eq!(
        String::from_utf8_lossy(&got.stdout).trim(),
        "hello from ocinet"
    );
    assert!(host.shim(&["ls"]).unwrap().contains(&id));
    // A container without ocinet's annotation is left to podman.
    podman_run_rm(&host, &global, &[], &["true"]);
    podman_ok(&host, &global, &["rm", "-f", "-t", "0", "web"]);
    assert_eq!(host.leftovers(), Vec::<String>::new());
    // Setup, teardown, and the teardown's end in the background: one container's.
    let logs = host.shim(&["logs"]).unwrap();
    let stages: Vec<&str> = logs
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    assert_eq!(stages, ["setup", "teardown", "teardown-finish"], "{logs}");
    uninstall(&prefix);
    assert!(
        !prefix.exists(),
        "uninstall left files in {}",
        prefix.display()
    );
}

fn rootfs_str() -> &'static str {
    static ROOTFS: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ROOTFS.get_or_init(|| ocinet_tests::rootfs().to_string_lossy().into_owned())
}

#[test]
fn shim_as_podman_runtime_gives_host_and_container_modes() {
    let host = Host::new("podman-shim");
    let shim = binary("ocinet-shim");
    let root_flag = format!("ocinet-root={}", host.state_root().display());
    let config_flag = format!("ocinet-config-dir={}", host.config_dir().display());
    let global = [
        OsStr::new("--runtime"),
        shim.as_os_str(),
        OsStr::new("--runtime-flag"),
        OsStr::new(&root_flag),
        OsStr::new("--runtime-flag"),
        OsStr::new(&config_flag),
    ];
    host.podman_run(
        &global,
        "h",
        &[("io.ocinet.network", "host")],
        &["httpd", "-f", "-p", "127.0.0.1:8090", "-h", "/www"],
    )
    .unwrap();
    let a = host
        .podman_run(&global, "a", &[("io.ocinet.network", "bridge")], HTTPD)
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        host.sh_ok(&wget("http://127.0.0.1:8090/")).trim(),
        "hello from ocinet"
    );
    // B joins A by its short id, as `podman ps` shows it.
    let join = format!("io.ocinet.network=container:{}", &a[..12]);
    let out = podman_run_rm(
        &host,
        &global,
        &["--annotation", &join],
        &[
            "sh",
            "-c",
            "ip -4 -o addr show eth0; timeout 5 wget -qO- http://127.0.0.1/",
        ],
    );
    assert!(out.contains("hello from ocinet"), "{out}");
    assert!(out.contains("inet 172.17.0.2/16"), "{out}");
    podman_ok(&host, &global, &["rm", "-f", "-t", "0", "h", "a"]);
    assert_eq!(host.leftovers(), Vec::<String>::new());
}

#[test]
fn names_resolve_between_podman_containers_on_a_dns_network() {
    let host = Host::new("podman-names");
    let prefix: PathBuf = host.dir.join("prefix");
    install(&host, &prefix);
    host.define_network("n1", r#"{"subnets":[{"subnet":"10.91.0.0/24"}]}"#);
    let hooks_dir = prefix.join("share/containers/oci/hooks.d");
    let global = [
        OsStr::new("--runtime"),
        OsStr::new("runc"),
        OsStr::new("--hooks-dir"),
        hooks_dir.as_os_str(),
    ];
    let names = |name: &'static str| {
        [
            ("io.ocinet.network", "n1"),
            ("io.ocinet.name", name),
            (
                "io.ocinet.aliases",
                if name == "db" { "database" } else { "site" },
            ),
        ]
    };
    host.podman_run(&global, "db", &names("db"), &["sleep", "600"])
        .unwrap();
    host.podman_run(&global, "web", &names("web"), &["sleep", "600"])
        .unwrap();
    // podman bind-mounts its own resolv.conf: ocinet's goes over it.
    let conf = podman_ok(&host, &global, &["exec", "web", "cat", "/etc/resolv.conf"]);
    assert!(conf.contains("nameserver 10.91.0.1"), "{conf}");
    assert_eq!(conf.matches("nameserver").count(), 1, "{conf}");
    let got = podman_ok(&host, &global, &["exec", "web", "nslookup", "database"]);
    assert!(got.contains("Address: 10.91.0.2"), "{got}");
    let got = podman_ok(&host, &global, &["exec", "db", "nslookup", "web"]);
    assert!(got.contains("Address: 10.91.0.3"), "{got}");
    podman_ok(&host, &global, &["rm", "-f", "-t", "0", "web", "db"]);
    assert_eq!(host.leftovers(), Vec::<String>::new());
    uninstall(&prefix);
}
