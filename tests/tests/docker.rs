//! Docker Engine 20.10 (Debian's docker.io) with the ocinet network plugin: dockerd and
//! `ocinet-docker` started inside a private host, an image imported from the busybox rootfs,
//! real containers and traffic.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ocinet_tests::{binary, rootfs, Host};

const DOCKER: &str = "/usr/bin/docker";
const DOCKERD: &str = "/usr/sbin/dockerd";
const IMAGE: &str = "ocinet-busybox";
/// Serves /www/index.html on port 80 (busybox httpd), in the foreground.
const WEB: &str =
    "mkdir -p /www && echo hello-from-$(hostname) > /www/index.html && exec httpd -f -p 80 -h /www";

/// dockerd and the plugin in one private host; both stopped on drop, containers removed first.
struct Docker<'h> {
    host: &'h Host,
    daemon: Option<Child>,
    plugin: Option<Child>,
    /// How the plugin is started (its command line).
    plugin_argv: Vec<String>,
    /// The plugin's socket as systemd's socket unit holds it, passed to each start; `None`:
    /// the plugin binds its own.
    activation: Option<UnixListener>,
    socket: String,
    /// dockerd's flags beyond the harness's own.
    daemon_flags: &'static [&'static str],
}

impl<'h> Docker<'h> {
    fn start(host: &'h Host) -> Docker<'h> {
        Docker::start_with_flags(host, &[])
    }

    /// With dockerd given `daemon_flags` as well.
    fn start_with_flags(host: &'h Host, daemon_flags: &'static [&'static str]) -> Docker<'h> {
        let argv = [
            binary("ocinet-docker"),
            "--root".into(),
            host.state_root(),
            "--config-dir".into(),
            host.config_dir(),
            "--docker-host".into(),
            format!("unix://{}", daemon_socket(host).display()).into(),
        ];
        Docker::start_with(
            host,
            argv.iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
            false,
            daemon_flags,
        )
    }

    fn start_with(
        host: &'h Host,
        plugin_argv: Vec<String>,
        activated: bool,
        daemon_flags: &'static [&'static str],
    ) -> Docker<'h> {
        // dockerd finds plugins here; a tmpfs of this host's mount namespace only.
        host.sh_ok(
            "mkdir -p /run/docker/plugins && mount -t tmpfs ocinet-test /run/docker/plugins",
        );
        // Bound from here into the host's mount namespace, as systemd binds a socket unit's.
        let activation = activated.then(|| {
            UnixListener::bind(format!(
                "/proc/{}/root/run/docker/plugins/ocinet.sock",
                host.pid()
            ))
            .unwrap()
        });
        let mut docker = Docker {
            host,
            daemon: None,
            plugin: None,
            plugin_argv,
            activation,
            socket: daemon_socket(host).to_string_lossy().into_owned(),
            daemon_flags,
        };
        docker.start_plugin();
        docker.start_daemon();
        let mut tar = Command::new("tar")
            .arg("-C")
            .arg(rootfs())
            .args(["-c", "."])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = docker
            .cli()
            .args(["import", "-", IMAGE])
            .stdin(tar.stdout.take().unwrap())
            .output()
            .unwrap();
        assert!(tar.wait().unwrap().success());
        assert!(out.status.success(), "docker import: {}", text(&out.stderr));
        docker
    }

    fn start_plugin(&mut self) {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.host.dir.join("plugin.log"))
            .unwrap();
        if let Some(listener) = &self.activation {
            // Calls wait in the socket's queue until the plugin takes them.
            self.plugin = Some(spawn_activated(self.host, listener, &self.plugin_argv, log));
            return;
        }
        let sock = "/run/docker/plugins/ocinet.sock";
        let _ = self.host.sh(&format!("rm -f {sock}"));
        let child = self
            .host
            .command(&self.plugin_argv[0])
            .args(&self.plugin_argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.plugin = Some(child);
        self.wait_for(&format!("test -S {sock}"), "the plugin's socket");
    }

    fn start_daemon(&mut self) {
        let dir = &self.host.dir;
        let log = File::options()
            .create(true)
            .append(true)
            .open(dir.join("dockerd.log"))
            .unwrap();
        let child = self
            .host
            .command(DOCKERD)
            .arg("-H")
            .arg(format!("unix://{}", self.socket))
            .arg("--data-root")
            .arg(dir.join("docker-data"))
            .args(["--exec-root", "/run/ocinet-test/docker"])
            .arg("--pidfile")
            .arg(dir.join("dockerd.pid"))
            .args([
                "--storage-driver",
                "vfs",
                "--bridge=none",
                "--iptables=false",
                "--ip-forward=false",
                "--exec-opt",
                "native.cgroupdriver=cgroupfs",
            ])
            .args(self.daemon_flags)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.daemon = Some(child);
        let probe = format!("{DOCKER} -H unix://{} version", self.socket);
        self.wait_for(&probe, "dockerd");
    }

    fn wait_for(&self, script: &str, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.host.sh(script).status.success() {
            assert!(
                Instant::now() < deadline,
                "waited 20 s for {what} in vain: see {}",
                self.host.dir.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops dockerd as systemd would (SIGTERM: running containers are stopped and their
    /// endpoints deleted) and waits for it.
    fn stop_daemon(&mut self) {
        if let Some(mut child) = self.daemon.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = child.wait();
        }
    }

    /// dockerd killed (SIGKILL: no chance to stop its containers or delete their endpoints).
    /// Its containerd dies with it; the next dockerd waits for a containerd whose pid is still
    /// there (not yet reaped), so this waits until it is gone.
    fn kill_daemon(&mut self) {
        let containerd = self
            .host
            .sh("cat /run/ocinet-test/docker/containerd/containerd.pid");
        if let Some(mut child) = self.daemon.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let pid = text(&containerd.stdout).trim().to_string();
        if !pid.is_empty() {
            self.wait_for(&format!("! test -e /proc/{pid}"), "containerd's end");
        }
    }

    /// The plugin killed (a crash: no chance to tidy anything).
    fn kill_plugin(&mut self) {
        if let Some(mut child) = self.plugin.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn cli(&self) -> Command {
        let mut cmd = self.host.command(DOCKER);
        cmd.args(["-H", &format!("unix://{}", self.socket)]);
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cli().args(args).stdin(Stdio::null()).output().unwrap()
    }

    /// `docker ARGS`, its stdout; panics with stderr on failure.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "docker {}: {}",
            args.join(" "),
            text(&out.stderr)
        );
        text(&out.stdout).trim().to_string()
    }

    /// A container's address on a network.
    fn address(&self, name: &str) -> String {
        self.ok(&[
            "inspect",
            "-f",
            "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
            name,
        ])
    }

    fn exec(&self, name: &str, script: &str) -> Output {
        self.run(&["exec", name, "sh", "-c", script])
    }
}

impl Drop for Docker<'_> {
    fn drop(&mut self) {
        if self.daemon.is_some() {
            let ids = self.run(&["ps", "-aq"]);
            for id in text(&ids.stdout).split_whitespace() {
                let _ = self.run(&["rm", "-f", id]);
            }
        }
        self.stop_daemon();
        self.kill_plugin();
    }
}

/// Where the test's dockerd serves its API (the plugin is told, with `--docker-host`).
fn daemon_socket(host: &Host) -> PathBuf {
    host.dir.join("docker.sock")
}

/// Starts `argv` in `host` as systemd starts a socket-activated service: `listener` as fd 3,
/// `LISTEN_PID` its own pid and `LISTEN_FDS=1`.
fn spawn_activated(host: &Host, listener: &UnixListener, argv: &[String], stderr: File) -> Child {
    let fd = listener.as_raw_fd();
    let mut cmd = host.command("sh");
    // sh's pid is the plugin's: sh, like nsenter before it, execs the next.
    cmd.args(["-c", "LISTEN_PID=$$ LISTEN_FDS=1 exec \"$@\"", "sh"])
        .args(argv)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if nix::libc::dup2(fd, 3) < 0 || nix::libc::fcntl(3, nix::libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// What ocinet's records, links and nftables sets still hold of Docker's networks, beside
/// the harness's leftovers.
fn docker_leftovers(host: &Host) -> Vec<String> {
    let mut left = host.leftovers();
    left.extend(
        host.sh_ok("ip -o link show")
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .filter(|n| n.starts_with("ocd") || n.starts_with("oc-"))
            .map(|n| format!("link {n}")),
    );
    for set in ["masq_subnets", "masq_subnets6", "bridges"] {
        let out = host.sh(&format!("nft list set inet ocinet {set}"));
        let listed = text(&out.stdout);
        if let Some(at) = listed.find("elements = ") {
            left.push(format!("nft {set} {}", listed[at..].trim()));
        }
    }
    let endpoints = host.state_root().join("docker/endpoints");
    if let Ok(files) = std::fs::read_dir(&endpoints) {
        left.extend(
            files
                .flatten()
                .map(|f| format!("endpoint {}", f.file_name().to_string_lossy())),
        );
    }
    left
}

/// What the state root holds of networks (their directories of leases, names or an overlay's
/// files), as `<kind>/<network>`.
fn network_state(host: &Host) -> Vec<String> {
    let mut left = Vec::new();
    for kind in ["networks", "names", "overlay"] {
        if let Ok(entries) = std::fs::read_dir(host.state_root().join(kind)) {
            left.extend(
                entries
                    .flatten()
                    .map(|e| format!("{kind}/{}", e.file_name().to_string_lossy())),
            );
        }
    }
    left
}

fn network_files(host: &Host) -> Vec<PathBuf> {
    std::fs::read_dir(host.config_dir().join("networks"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect()
}

#[test]
fn docker_network_names_ports_internal_and_cleanup() {
    let host = Host::new("docker");
    let outside = host.outside();
    let docker = Docker::start(&host);

    docker.ok(&[
        "network",
        "create",
        "-d",
        "ocinet",
        "--subnet",
        "10.77.0.0/24",
        "-o",
        "mtu=1400",
        "n1",
    ]);
    let inspected = docker.ok(&[
        "network",
        "inspect",
        "-f",
        "{{.Driver}} {{range .IPAM.Config}}{{.Subnet}}{{end}}",
        "n1",
    ]);
    assert_eq!(inspected, "ocinet 10.77.0.0/24");

    docker.ok(&[
        "run",
        "-d",
        "--name",
        "ca",
        "--network",
        "n1",
        IMAGE,
        "sleep",
        "600",
    ]);
    docker.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "n1",
        "-p",
        "8080:80",
        IMAGE,
        "sh",
        "-c",
        WEB,
    ]);
    let web = docker.address("web");
    assert!(web.starts_with("10.77.0."), "{web}");
    // Docker moved ocinet's veth in and named it eth0, with the options' MTU.
    let link = text(&docker.exec("ca", "ip -o link show eth0").stdout);
    assert!(link.contains("mtu 1400"), "{link}");

    // Each other by address and by name (Docker's embedded DNS).
    for dest in [web.as_str(), "web"] {
        let ping = docker.exec("ca", &format!("ping -c1 -W2 {dest}"));
        assert!(ping.status.success(), "ping {dest}: {}", text(&ping.stdout));
    }
    let by_name = docker.exec("ca", "timeout 8 wget -qO- http://web/");
    assert_eq!(
        text(&by_name.stdout).trim(),
        format!(
            "hello-from-{}",
            docker.ok(&["inspect", "-f", "{{.Config.Hostname}}", "web"])
        )
    );

    // The published port from outside, and from the host (its own address and loopback).
    let from_outside = outside.sh("timeout 8 busybox wget -qO- http://198.51.100.1:8080/");
    assert!(
        text(&from_outside.stdout).starts_with("hello-from-"),
        "outside: {}",
        text(&from_outside.stderr)
    );
    for addr in ["198.51.100.1", "127.0.0.1", "10.77.0.1"] {
        let got = host.sh(&format!("timeout 8 busybox wget -qO- http://{addr}:8080/"));
        assert!(
            text(&got.stdout).starts_with("hello-from-"),
            "host via {addr}: {}",
            text(&got.stderr)
        );
    }
    // Egress is masqueraded: the outside sees the host's address.
    let seen = outside.receive_one(9000);
    docker.exec("ca", "echo hi | timeout 8 nc 198.51.100.2 9000");
    let (peer, said) = seen.join().unwrap();
    assert_eq!(
        (peer.ip().to_string().as_str(), said.trim()),
        ("198.51.100.1", "hi")
    );

    // A restart is a new endpoint (ports revoked, endpoint deleted, made again, published).
    docker.ok(&["restart", "-t", "0", "web"]);
    let again = host.sh("timeout 8 busybox wget -qO- http://127.0.0.1:8080/");
    assert!(
        text(&again.stdout).starts_with("hello-from-"),
        "after restart: {}",
        text(&again.stderr)
    );

    // The records are ocinet's like any other: the shim lists them, front end docker.
    let listed = host.shim(&["ls", "--format", "json"]).unwrap();
    assert_eq!(
        listed.matches("\"front_end\": \"docker\"").count(),
        2,
        "{listed}"
    );
    assert!(listed.contains(&web), "{listed}");
    let logs = host.shim(&["logs"]).unwrap();
    assert!(
        logs.contains("docker-join") && logs.contains("docker-publish"),
        "{logs}"
    );

    // A taken port fails docker run in one line naming who holds it, and leaves nothing.
    let refused = docker.run(&[
        "run",
        "-d",
        "--name",
        "dup",
        "--network",
        "n1",
        "-p",
        "8080:80",
        IMAGE,
        "sleep",
        "600",
    ]);
    assert!(!refused.status.success());
    let err = text(&refused.stderr);
    assert!(
        err.contains("host port 0.0.0.0:8080/tcp is already published by the Docker endpoint"),
        "{err}"
    );
    let web_endpoint = docker.ok(&[
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.EndpointID}}{{end}}",
        "web",
    ]);
    assert!(err.contains(&web_endpoint[..12]), "{err}");
    docker.ok(&["rm", "-f", "dup"]);

    // Internal: its containers reach each other, nothing outside.
    docker.ok(&[
        "network",
        "create",
        "-d",
        "ocinet",
        "--internal",
        "--subnet",
        "10.78.0.0/24",
        "n2",
    ]);
    docker.ok(&[
        "run",
        "-d",
        "--name",
        "in1",
        "--network",
        "n2",
        IMAGE,
        "sleep",
        "600",
    ]);
    docker.ok(&[
        "run",
        "-d",
        "--name",
        "in2",
        "--network",
        "n2",
        IMAGE,
        "sleep",
        "600",
    ]);
    assert!(docker.exec("in1", "ping -c1 -W2 in2").status.success());
    for dest in ["198.51.100.2", "198.51.100.1", &web] {
        let out = docker.exec("in1", &format!("ping -c1 -W1 {dest}"));
        assert!(!out.status.success(), "internal reached {dest}");
    }
    let route = text(&docker.exec("in1", "ip route").stdout);
    assert!(!route.contains("default"), "{route}");

    for name in ["ca", "web", "in1", "in2"] {
        docker.ok(&["rm", "-f", name]);
    }
    docker.ok(&["network", "rm", "n1", "n2"]);
    assert_eq!(docker_leftovers(&host), Vec::<String>::new());
    assert_eq!(network_files(&host), Vec::<PathBuf>::new());
    assert_eq!(network_state(&host), Vec::<String>::new());
}

/// A container's IPv6 address on its network (Docker's IPAM chose it).
fn address6(docker: &Docker<'_>, name: &str) -> String {
    docker.ok(&[
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.GlobalIPv6Address}}{{end}}",
        name,
    ])
}

#[test]
fn docker_dual_stack_network_over_ipv6_between_containers_and_from_outside() {
    let host = Host::new("docker-ipv6");
    let outside = host.outside_dual();
    let docker = Docker::start(&host);

    docker.ok(&[
        "network",
        "create",
        "-d",
        "ocinet",
        "--ipv6",
        "--subnet",
        "10.83.0.0/24",
        "--subnet",
        "fd00:83::/64",
        "n6",
    ]);
    // An IPv6 subnet ocinet does not take is refused in ocinet's one line; no file is left.
    let wide = docker.run(&[
        "network",
        "create",
        "-d",
        "ocinet",
        "--ipv6",
        "--subnet",
        "10.87.0.0/24",
        "--subnet",
        "fd00:87::/48",
        "wide",
    ]);
    assert!(!wide.status.success());
    let err = text(&wide.stderr);
    assert!(
        err.contains("IPv6 subnet fd00:87::/48 must have a prefix between /64 and /120"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert_eq!(network_files(&host).len(), 1);
    let inspected = docker.ok(&[
        "network",
        "inspect",
        "-f",
        "{{.EnableIPv6}} {{range .IPAM.Config}}{{.Subnet}} {{end}}",
        "n6",
    ]);
    assert_eq!(inspected, "true 10.83.0.0/24 fd00:83::/64");
    let files = network_files(&host);
    let file = std::fs::read_to_string(&files[0]).unwrap();
    assert!(
        file.contains("\"fd00:83::/64\"") && file.contains("\"fd00:83::1\""),
        "{file}"
    );

    docker.ok(&[
        "run",
        "-d",
        "--name",
        "ca",
        "--network",
        "n6",
        IMAGE,
        "sleep",
        "600",
    ]);
    docker.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "n6",
        "-p",
        "8080:80",
        IMAGE,
        "sh",
        "-c",
        WEB,
    ]);
    let web6 = address6(&docker, "web");
    assert!(web6.starts_with("fd00:83::"), "{web6}");
    // Docker's address is ocinet's lease: the record has both families.
    let listed = host.shim(&["ls"]).unwrap();
    assert!(listed.contains(&format!("{web6}/64")), "{listed}");
    // Docker added the address itself, `nodad` (flags 02): never tentative. (The kernel gives
    // the moved end a link-local address in its new namespace, tentative for a second: Docker's
    // own bridge driver's containers have one too; nothing of ours uses it.)
    let lines = text(
        &docker
            .exec("ca", "ip -o -6 addr show dev eth0 scope global")
            .stdout,
    );
    assert!(
        lines.contains("fd00:83::") && !lines.contains("tentative"),
        "{lines}"
    );
    let routes = text(&docker.exec("ca", "ip -6 route").stdout);
    assert!(
        routes.contains("default via fd00:83::1 dev eth0"),
        "{routes}"
    );

    // Each other over IPv6, by address and by name (Docker's DNS answers AAAA).
    for dest in [web6.as_str(), "web"] {
        let ping = docker.exec("ca", &format!("ping -6 -c1 -W2 {dest}"));
        assert!(
            ping.status.success(),
            "ping -6 {dest}: {}{}",
            text(&ping.stdout),
            text(&ping.stderr)
        );
    }
    let gateway = docker.exec("ca", "ping -6 -c1 -W2 fd00:83::1");
    assert!(gateway.status.success(), "{}", text(&gateway.stdout));

    // The published port answers on the host's IPv6 address from outside, and on its IPv4.
    for url in ["http://[2001:db8:2::1]:8080/", "http://198.51.100.1:8080/"] {
        let got = outside.sh(&format!("timeout 8 busybox wget -qO- {url}"));
        assert!(
            text(&got.stdout).starts_with("hello-from-"),
            "outside via {url}: {}",
            text(&got.stderr)
        );
    }

    // On one IPv6 host address: there only.
    docker.ok(&[
        "run",
        "-d",
        "--name",
        "web2",
        "--network",
        "n6",
        "-p",
        "[2001:db8:2::1]:8082:80",
        IMAGE,
        "sh",
        "-c",
        WEB,
    ]);
    let there = outside.sh("timeout 8 busybox wget -qO- http://[2001:db8:2::1]:8082/");
    assert!(
        text(&there.stdout).starts_with("hello-from-"),
        "{}",
        text(&there.stderr)
    );
    let not_v4 = outside.sh("timeout 3 busybox wget -qO- http://198.51.100.1:8082/");
    assert_eq!(text(&not_v4.stdout), "");

    // An IPv6 host address on an IPv4-only network is refused in one line, leaving nothing.
    docker.ok(&[
        "network",
        "create",
        "-d",
        "ocinet",
        "--subnet",
        "10.84.0.0/24",
        "n4",
    ]);
    let refused = docker.run(&[
        "run",
        "-d",
        "--name",
        "v6port",
        "--network",
        "n4",
        "-p",
        "[2001:db8:2::1]:8081:80",
        IMAGE,
        "sleep",
        "600",
    ]);
    assert!(!refused.status.success());
    let err = text(&refused.stderr);
    assert!(
        err.contains(
            "IPv6 host address 2001:db8:2::1 cannot be published (the network has no IPv6 subnet"
        ),
        "{err}"
    );

    for name in ["ca", "web", "web2", "v6port"] {
        docker.ok(&["rm", "-f", name]);
    }
    docker.ok(&["network", "rm", "n6", "n4"]);
    assert_eq!(docker_leftovers(&host), Vec::<String>::new());
    assert_eq!(network_files(&host), Vec::<PathBuf>::new());
    assert_eq!(network_state(&host), Vec::<String>::new());
}

/// scripts/install.sh into `prefix` with this host's state root and config dir; the plugin's
/// command line as the installed systemd unit starts it.
fn install_unit(host: &Host, prefix: &Path) -> Vec<String> {
    // `none`: no CNI plugin installed, it is not part of this test.
    ocinet_tests::install(prefix, Path::new("none"), Some(host));
    let units = prefix.join("lib/systemd/system");
    let unit = std::fs::read_to_string(units.join("ocinet-docker.service")).unwrap();
    assert!(unit.contains("Before=docker.service"), "{unit}");
    let socket = std::fs::read_to_string(units.join("ocinet-docker.socket")).unwrap();
    assert!(
        socket.contains("ListenStream=/run/docker/plugins/ocinet.sock"),
        "{socket}"
    );
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap();
    exec.split_whitespace().map(str::to_string).collect()
}

#[test]
fn docker_plugin_and_daemon_restarts_lose_nothing() {
    let host = Host::new("docker-restart");
    // The plugin as its systemd unit starts it, from an install.
    let mut argv = install_unit(&host, &host.dir.join("prefix"));
    assert_eq!(
        argv[0],
        host.dir.join("prefix/bin/ocinet-docker").to_string_lossy()
    );
    // This host's dockerd is not at Docker's default socket.
    argv.push(format!(
        "--docker-host=unix://{}",
        daemon_socket(&host).display()
    ));
    let mut docker = Docker::start_with(&host, argv, true, &[]);
    docker.ok(&[
        "network",
        "create",
        "-d",
        "ocinet",
        "--subnet",
        "10.79.0.0/24",
        "n1",
    ]);
    docker.ok(&[
        "run",
        "-d",
        "--name",
        "first",
        "--network",
        "n1",
        "-p",
        "8081:80",
        IMAGE,
        "sh",
        "-c",
        WEB,
    ]);

    // A crash between two runs (the socket stays with systemd): the restarted plugin finds
    // everything in the state root.
    docker.kill_plugin();
    docker.start_plugin();
    docker.ok(&[
        "run",
        "-d",
        "--name",
        "second",
        "--stop-timeout",
        "1",
        "--network",
        "n1",
        IMAGE,
        "sleep",
        "600",
    ]);
    assert!(docker.exec("second", "ping -c1 -W2 first").status.success());
    assert!(docker.exec("first", "ping -c1 -W2 second").status.success());
    let got = host.sh("timeout 8 busybox wget -qO- http://127.0.0.1:8081/");
    assert!(
        text(&got.stdout).starts_with("hello-from-"),
        "{}",
        text(&got.stderr)
    );
    // gc sees Docker's records as live (dockerd lists their endpoints): it takes nothing.
    assert_eq!(host.shim(&["gc"]).unwrap(), "");
    assert!(docker.exec("second", "ping -c1 -W2 first").status.success());
    docker.ok(&["rm", "-f", "first"]);

    // dockerd stopped with a container running: its endpoint is deleted through the plugin.
    docker.stop_daemon();
    let left: Vec<String> = docker_leftovers(&host)
        .into_iter()
        .filter(|l| !l.starts_with("link oc-") && !l.starts_with("nft "))
        .collect();
    assert_eq!(left, Vec::<String>::new());
    // Started again: the network is Docker's still, and works.
    docker.start_daemon();
    docker.ok(&["start", "second"]);
    docker.ok(&[
        "run",
        "-d",
        "--name",
        "third",
        "--network",
        "n1",
        IMAGE,
        "sleep",
        "600",
    ]);
    assert!(docker.exec("third", "ping -c1 -W2 second").status.success());

    docker.ok(&["rm", "-f", "second", "third"]);
    docker.ok(&["network", "rm", "n1"]);
    assert_eq!(docker_leftovers(&host), Vec::<String>::new());
    assert_eq!(network_state(&host), Vec::<String>::new());
}

/// POSTs `{}` to `path` on the plugin's socket; the whole answer.
fn call(socket: &Path, path: &str) -> String {
    let mut stream = UnixStream::connect(socket).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: plugin\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn socket_activation_answers_calls_queued_before_the_start_and_exits_when_idle() {
    let host = Host::new("docker-activation");
    let socket = host.dir.join("plugin.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let log = || File::create(host.dir.join("plugin.log")).unwrap();
    let argv: Vec<String> = [
        binary("ocinet-docker"),
        "--root".into(),
        host.state_root(),
        "--config-dir".into(),
        host.config_dir(),
        "--exit-idle".into(),
        "1".into(),
    ]
    .iter()
    .map(|a| a.to_string_lossy().into_owned())
    .collect();

    for _ in 0..2 {
        // A call made while no plugin runs waits in the queue; the start answers it.
        let caller = {
            let socket = socket.clone();
            std::thread::spawn(move || call(&socket, "/Plugin.Activate"))
        };
        std::thread::sleep(Duration::from_millis(100));
        let started = Instant::now();
        let mut plugin = spawn_activated(&host, &listener, &argv, log());
        let answer = caller.join().unwrap();
        assert!(
            answer.contains(r#"{"Implements":["NetworkDriver"]}"#),
            "{answer}"
        );
        // Idle for a second: it exits, cleanly, and the socket is still there for the next.
        let status = plugin.wait().unwrap();
        assert!(status.success(), "{status}");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(socket.exists());
    }

    // Exiting when idle without systemd's socket would leave dockerd with no plugin.
    let out = host
        .command(binary("ocinet-docker"))
        .args(["--socket", "/run/ocinet-test/p.sock", "--exit-idle", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("--exit-idle needs the socket from systemd"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");

    // dockerd's API must be its local unix socket; nothing is made otherwise.
    let root = host.dir.join("refused-root");
    let out = host
        .command(binary("ocinet-docker"))
        .args([
            "--socket",
            "/run/ocinet-test/p.sock",
            "--docker-host",
            "tcp://127.0.0.1:2375",
        ])
        .arg("--root")
        .arg(&root)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains(r#"docker host "tcp://127.0.0.1:2375" is not a unix socket"#),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!root.exists());
}

/// The endpoint of container `name` on its one network.
fn endpoint_id(docker: &Docker<'_>, name: &str) -> String {
    docker.ok(&[
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.EndpointID}}{{end}}",
        name,
    ])
}

/// The ids of ocinet's records, sorted.
fn records(host: &Host) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(host.state_root().join("containers"))
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".json").map(str::to_string)
        })
        .filter(|id| !id.starts_with('.'))
        .collect();
    ids.sort();
    ids
}

/// Who answers on the host's port: `hello-from-<hostname>`.
fn served(host: &Host, port: u16) -> String {
    // `docker run -d` returns before the container's httpd listens: on a loaded machine the
    // first request can come too early. Asked again until something answers, for 8 s.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(8);
    loop {
        let got = host.sh(&format!(
            "timeout 2 busybox wget -qO- http://127.0.0.1:{port}/"
        ));
        let answer = text(&got.stdout).trim().to_string();
        if !answer.is_empty() || std::time::Instant::now() > deadline {
            return answer;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Serves its hostname (`hello-from-<hostname>`, returned) in `name` on `network`; httpd
/// ignores SIGTERM: dockerd kills it after a second when it stops it.
fn web(docker: &Docker<'_>, name: &str, network: &str, more: &[&str]) -> String {
    let mut args = vec![
        "run",
        "-d",
        "--stop-timeout",
        "1",
        "--name",
        name,
        "--network",
        network,
    ];
    args.extend_from_slice(more);
    args.extend_from_slice(&[IMAGE, "sh", "-c", WEB]);
    docker.ok(&args);
    format!(
        "hello-from-{}",
        docker.ok(&["inspect", "-f", "{{.Config.Hostname}}", name])
    )
}

#[test]
fn docker_killed_and_started_again_frees_what_it_dropped_at_once() {
    let host = Host::new("docker-kill");
    let mut docker = Docker::start(&host);
    for (name, subnet) in [("n1", "10.85.0.0/24"), ("n2", "10.86.0.0/24")] {
        docker.ok(&[
            "network", "create", "-d", "ocinet", "--subnet", subnet, name,
        ]);
    }
    let restart = |docker: &mut Docker<'_>| {
        docker.kill_daemon();
        docker.start_daemon();
    };

    // Killed with two containers publishing ports; started again, dockerd kills them and
    // removes their sandboxes by force: their endpoints go without a DeleteEndpoint.
    let ca = web(&docker, "ca", "n1", &["-p", "8081:80"]);
    web(&docker, "cb", "n1", &["-p", "8082:80"]);
    assert_eq!(served(&host, 8081), ca);
    let dropped = [endpoint_id(&docker, "ca"), endpoint_id(&docker, "cb")];
    restart(&mut docker);
    let mut before: Vec<String> = dropped.iter().map(|e| format!("docker-{e}")).collect();
    before.sort();
    assert_eq!(
        records(&host),
        before,
        "dockerd called DeleteEndpoint after all"
    );
    // Its port, at once, by a container on the other network: the plugin asks dockerd, finds
    // both endpoints dropped and frees what they held.
    let cc = web(&docker, "cc", "n2", &["-p", "8081:80"]);
    assert_eq!(served(&host, 8081), cc);
    assert_eq!(
        records(&host),
        [format!("docker-{}", endpoint_id(&docker, "cc"))]
    );
    let ports: Vec<String> = std::fs::read_dir(host.state_root().join("ports/tcp"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|f| f != "lock")
        .collect();
    assert_eq!(ports, ["8081"]);

    // Docker's IPAM hands a dropped endpoint's address out again: taken at once too.
    let address = docker.address("cc");
    web(&docker, "cd", "n2", &["-p", "8082:80"]);
    restart(&mut docker);
    let ce = web(&docker, "ce", "n2", &["--ip", &address, "-p", "8082:80"]);
    assert_eq!(docker.address("ce"), address);
    assert_eq!(served(&host, 8082), ce);
    assert_eq!(
        records(&host),
        [format!("docker-{}", endpoint_id(&docker, "ce"))]
    );

    // With no call to the plugin at all (dockerd makes none when it starts), gc asks dockerd
    // and collects the dropped endpoint's record.
    let ce_endpoint = endpoint_id(&docker, "ce");
    restart(&mut docker);
    let collected = host.shim(&["gc"]).unwrap();
    assert_eq!(collected.trim(), format!("removed docker-{ce_endpoint}"));
    let left: Vec<String> = docker_leftovers(&host)
        .into_iter()
        .filter(|l| !l.starts_with("link oc-") && !l.starts_with("nft "))
        .collect();
    assert_eq!(left, Vec::<String>::new());

    for name in ["ca", "cb", "cc", "cd", "ce"] {
        docker.ok(&["rm", "-f", name]);
    }
    docker.ok(&["network", "rm", "n1", "n2"]);
    assert_eq!(docker_leftovers(&host), Vec::<String>::new());
    assert_eq!(network_files(&host), Vec::<PathBuf>::new());
    assert_eq!(network_state(&host), Vec::<String>::new());
}

#[test]
fn docker_network_rm_after_a_kill_takes_what_dockerd_dropped() {
    let host = Host::new("docker-kill-rm");
    let mut docker = Docker::start(&host);
    docker.ok(&[
        "network",
        "create",
        "-d",
        "ocinet",
        "--subnet",
        "10.87.0.0/24",
        "n1",
    ]);
    for (name, port) in [("ca", "8081:80"), ("cb", "8082:80")] {
        docker.ok(&[
            "run",
            "-d",
            "--stop-timeout",
            "1",
            "--name",
            name,
            "--network",
            "n1",
            "-p",
            port,
            IMAGE,
            "sh",
            "-c",
            WEB,
        ]);
    }
    docker.kill_daemon();
    docker.start_daemon();
    // No other call: rm -f and network rm alone (DeleteNetwork: dockerd has no endpoint left
    // on the network, so every record on it is stale).
    docker.ok(&["rm", "-f", "ca", "cb"]);
    docker.ok(&["network", "rm", "n1"]);
    assert_eq!(docker_leftovers(&host), Vec::<String>::new());
    assert_eq!(network_files(&host), Vec::<PathBuf>::new());
    assert_eq!(network_state(&host), Vec::<String>::new());
}

#[test]
fn docker_killed_with_live_restore_keeps_the_endpoints_it_restores() {
    let host = Host::new("docker-live-restore");
    let mut docker = Docker::start_with_flags(&host, &["--live-restore"]);
    docker.ok(&[
        "network",
        "create",
        "-d",
        "ocinet",
        "--subnet",
        "10.88.0.0/24",
        "n1",
    ]);
    let ca = web(&docker, "ca", "n1", &["-p", "8081:80"]);
    docker.kill_daemon();
    docker.start_daemon();
    // The container ran on, and dockerd kept its endpoint: gc asks it and takes nothing.
    assert_eq!(host.shim(&["gc"]).unwrap(), "");
    assert_eq!(served(&host, 8081), ca);
    // Its port is refused to another container, after the plugin asked dockerd too.
    let refused = docker.run(&[
        "run",
        "-d",
        "--name",
        "cb",
        "--network",
        "n1",
        "-p",
        "8081:80",
        IMAGE,
        "sleep",
        "600",
    ]);
    assert!(!refused.status.success());
    let err = text(&refused.stderr);
    assert!(
        err.contains("host port 0.0.0.0:8081/tcp is already published by the Docker endpoint"),
        "{err}"
    );
    assert_eq!(served(&host, 8081), ca);
    docker.ok(&["rm", "-f", "ca", "cb"]);
    docker.ok(&["network", "rm", "n1"]);
    assert_eq!(docker_leftovers(&host), Vec::<String>::new());
    assert_eq!(network_state(&host), Vec::<String>::new());
}

/// Writes `head`, then `body` a byte a second, until the plugin closes the connection; how long
/// it took (a minute at most).
fn dribble(socket: &Path, head: &str, body: &[u8]) -> Duration {
    let started = Instant::now();
    let mut stream = UnixStream::connect(socket).unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    for byte in body.iter().cycle() {
        if stream.write_all(&[*byte]).is_err() {
            break;
        }
        if started.elapsed() > Duration::from_secs(60) {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    started.elapsed()
}

/// The peak of a process's resident memory, in KiB (`VmHWM`).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn plugin_socket_answers_under_a_flood_within_its_bounds() {
    let host = Host::new("docker-flood");
    let socket = host.dir.join("plugin.sock");
    let mut plugin = host
        .command(binary("ocinet-docker"))
        .arg("--socket")
        .arg(&socket)
        .arg("--root")
        .arg(host.state_root())
        .arg("--config-dir")
        .arg(host.config_dir())
        .args(["--docker-host", "unix:///run/ocinet-test/no-docker.sock"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(host.dir.join("plugin.log")).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while UnixStream::connect(&socket).is_err() {
        assert!(Instant::now() < deadline, "the plugin did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }

    // One client dribbles its head, another its body: each is cut off after the time limit.
    let slow = [
        (
            "POST /Plugin.Activate HTTP/1.1\r\n".to_string(),
            "Host: x\r\n",
        ),
        (
            "POST /Plugin.Activate HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n".to_string(),
            "{}",
        ),
    ]
    .map(|(head, body)| {
        let socket = socket.clone();
        std::thread::spawn(move || dribble(&socket, &head, body.as_bytes()))
    });
    std::thread::sleep(Duration::from_millis(300));

    // 200 clients at once, each with a 1 MiB body: all connected, then all writing.
    const FLOOD: usize = 200;
    let body = std::sync::Arc::new(vec![b'x'; 1 << 20]);
    let ready = std::sync::Arc::new(std::sync::Barrier::new(FLOOD + 1));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let flood: Vec<_> = (0..FLOOD)
        .map(|_| {
            let (socket, body) = (socket.clone(), body.clone());
            let (ready, done) = (ready.clone(), done.clone());
            std::thread::spawn(move || {
                let mut stream = UnixStream::connect(&socket).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(120)))
                    .unwrap();
                ready.wait();
                let head = format!(
                    "POST /NetworkDriver.Join HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body);
                let mut answer = Vec::new();
                let _ = stream.read_to_end(&mut answer);
                done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                String::from_utf8_lossy(&answer).into_owned()
            })
        })
        .collect();
    ready.wait();

    // A normal call meanwhile (queued behind the flood's connections): answered promptly.
    let started = Instant::now();
    let answer = call(&socket, "/Plugin.Activate");
    let took = started.elapsed();
    let flood_done = done.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        answer.contains(r#"{"Implements":["NetworkDriver"]}"#),
        "{answer}"
    );
    let answered: Vec<String> = flood.into_iter().map(|c| c.join().unwrap()).collect();
    let peak = peak_rss_kib(plugin.id());
    let [cut_head, cut_body] = slow.map(|c| c.join().unwrap());
    let _ = plugin.kill();
    let _ = plugin.wait();
    eprintln!(
        "Activate answered in {took:?} with {flood_done} of the flood answered; plugin peak RSS {peak} KiB; slow head cut after {cut_head:?}, slow body after {cut_body:?}"
    );
    assert!(took < Duration::from_secs(5), "Activate took {took:?}");
    // Every client of the flood was answered (its body is no request Docker sends).
    let refused = answered
        .iter()
        .filter(|a| a.contains("cannot read Docker's request"))
        .count();
    assert_eq!(
        refused,
        FLOOD,
        "{:?}",
        answered.iter().find(|a| !a.contains("cannot read"))
    );
    assert!(peak <= 64 * 1024, "peak RSS {peak} KiB");
    for cut in [cut_head, cut_body] {
        assert!(
            cut >= Duration::from_secs(4) && cut <= Duration::from_secs(9),
            "a dribbling client was cut off after {cut:?}"
        );
    }
}
