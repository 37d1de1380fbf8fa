//! Test harness: a private "host" (its own network and mount namespaces) per test, real runc and
//! crun containers from `bundles/`, wired by the real `ocinet-hook`, and leak checks.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

pub use std::net::{Ipv4Addr, SocketAddr, TcpListener};

mod cluster;
pub use cluster::{Etcd, Lab};

/// The workspace root (where `bundles/` lives).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A built binary of the workspace, next to the test executable's `deps/` folder.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap();
    // Tests run from `target/<profile>/deps`, examples from `target/<profile>/examples`.
    let dir = if dir.ends_with("deps") || dir.ends_with("examples") {
        dir.parent().unwrap()
    } else {
        dir
    };
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run cargo build --workspace",
        path.display()
    );
    path
}

/// The busybox rootfs, built once (under a lock, tests run in parallel).
pub fn rootfs() -> PathBuf {
    let dir = workspace().join("bundles");
    let rootfs = dir.join("rootfs");
    let lock = File::create(dir.join(".rootfs.lock")).unwrap();
    lock.lock().unwrap();
    if !rootfs.join("bin/busybox").exists() {
        let out = Command::new("sh")
            .arg(dir.join("build-rootfs.sh"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "build-rootfs.sh: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    rootfs
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    Runc,
    Crun,
    /// ocinet-shim in front of runc.
    ShimRunc,
    /// ocinet-shim in front of crun.
    ShimCrun,
}

impl Runtime {
    /// The real runtime underneath.
    pub fn binary(self) -> &'static str {
        match self {
            Runtime::Runc | Runtime::ShimRunc => "runc",
            Runtime::Crun | Runtime::ShimCrun => "crun",
        }
    }

    pub fn is_shim(self) -> bool {
        matches!(self, Runtime::ShimRunc | Runtime::ShimCrun)
    }

    fn name(self) -> String {
        let prefix = if self.is_shim() { "shim-" } else { "" };
        format!("{prefix}{}", self.binary())
    }
}

/// A process that holds a namespace open (`unshare ... sleep`), killed on drop.
struct Holder {
    child: Child,
}

impl Holder {
    fn spawn(unshare_flags: &[&str], init: &str) -> Holder {
        Holder::spawn_with(Command::new("unshare"), unshare_flags, init)
    }

    /// `spawn`, `unshare` run by a given command (nsenter into a lab): one that execs it, so that
    /// the child's pid is the holder's.
    fn spawn_with(mut unshare: Command, unshare_flags: &[&str], init: &str) -> Holder {
        let script = format!("{init}\necho ready\nexec sleep infinity");
        let mut child = unshare
            .args(unshare_flags)
            .args(["--", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("unshare");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "namespace holder did not start");
        Holder { child }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A fresh directory for one test host's files.
fn test_dir(name: &str) -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!(
        "ocinet-test-{name}-{}-{n}-{nanos}",
        std::process::id()
    ));
    fs::create_dir_all(dir.join("etc/networks")).unwrap();
    dir
}

const HOST_FLAGS: &[&str] = &["--net", "--mount", "--propagation", "private"];

/// The private host's mounts. crun cannot run with cgroup v1+v2 hybrid mounts; unmounting the
/// v2 part here only changes this test's private mount namespace. ocinet's default state root, `/run/ocinet`, is a tmpfs of its
/// own too: a binary that runs without the host's `--root` (podman's cleanup runs the runtime
/// without its `--runtime-flag`s: `ocinet-shim delete` then looks in the default root) stays
/// inside the test instead of touching the real host's state.
const HOST_INIT: &str = "ip link set lo up && sysctl -qw net.ipv4.ip_forward=1 && (umount /sys/fs/cgroup/unified 2>/dev/null; true) \
     && mkdir -p /run/netns /run/runc && mount -t tmpfs -o mode=755 ocinet-test /run/netns \
     && mount -t tmpfs ocinet-test /run/runc && mount -t tmpfs ocinet-test /dev/shm \
     && mkdir -p /run/ocinet-test && mount -t tmpfs ocinet-test /run/ocinet-test \
     && mkdir -p /run/ocinet && mount -t tmpfs -o mode=700 ocinet-test /run/ocinet";

/// A private host: fresh network and mount namespaces, its own ocinet state root, config dir and
/// runtime roots. Everything it made goes away on drop.
pub struct Host {
    holder: Holder,
    pub dir: PathBuf,
    containers: std::sync::Mutex<Vec<(Runtime, String)>>,
    outsides: std::sync::Mutex<Vec<Holder>>,
    podman_used: std::sync::atomic::AtomicBool,
    underlay: Option<Ipv4Addr>,
}

impl Host {
    pub fn new(name: &str) -> Host {
        let dir = test_dir(name);
        Host::with_holder(Holder::spawn(HOST_FLAGS, HOST_INIT), dir, None)
    }

    fn with_holder(holder: Holder, dir: PathBuf, underlay: Option<Ipv4Addr>) -> Host {
        Host {
            holder,
            dir,
            containers: Default::default(),
            outsides: Default::default(),
            podman_used: Default::default(),
            underlay,
        }
    }

    /// This host's address on its lab's underlay (`Lab::host`); None for a standalone host.
    pub fn underlay(&self) -> Option<Ipv4Addr> {
        self.underlay
    }

    /// A process in this host's namespaces (for `in_netns`).
    pub fn pid(&self) -> i32 {
        self.holder.pid() as i32
    }

    pub fn state_root(&self) -> PathBuf {
        self.dir.join("state")
    }

    pub fn config_dir(&self) -> PathBuf {
        self.dir.join("etc")
    }

    /// A command that runs inside this host's namespaces.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--target={}", self.holder.pid()))
            .args(["--net", "--mount", "--"])
            .arg(program);
        cmd
    }

    /// Runs a shell script inside the host; returns its output.
    pub fn sh(&self, script: &str) -> Output {
        self.command("sh")
            .args(["-c", script])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Runs a shell script inside the host and returns stdout, panicking on failure.
    pub fn sh_ok(&self, script: &str) -> String {
        let out = self.sh(script);
        assert!(
            out.status.success(),
            "{script}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Defines a user network in this host's config dir.
    pub fn define_network(&self, name: &str, json: &str) {
        fs::write(
            self.config_dir().join(format!("networks/{name}.json")),
            json,
        )
        .unwrap();
    }

    /// The hook invocation as a bundle lists it: with this host's state root and config dir.
    pub fn hook_entry(&self, stage: &str) -> Value {
        json!({
            "path": binary("ocinet-hook"),
            "args": ["ocinet-hook", "--root", self.state_root(), "--config-dir", self.config_dir(), stage],
        })
    }

    /// Writes a bundle for `id` from `bundles/<template>/config.json`, with the rootfs, the hook
    /// paths of this host, the given annotations and process args.
    pub fn bundle(
        &self,
        template: &str,
        id: &str,
        annotations: &[(&str, &str)],
        args: &[&str],
    ) -> PathBuf {
        self.write_bundle(template, id, annotations, args, true)
    }

    /// `bundle`, without ocinet's hooks: for the shim to inject them.
    pub fn shim_bundle(
        &self,
        template: &str,
        id: &str,
        annotations: &[(&str, &str)],
        args: &[&str],
    ) -> PathBuf {
        self.write_bundle(template, id, annotations, args, false)
    }

    fn write_bundle(
        &self,
        template: &str,
        id: &str,
        annotations: &[(&str, &str)],
        args: &[&str],
        with_hooks: bool,
    ) -> PathBuf {
        let text = fs::read_to_string(workspace().join(format!("bundles/{template}/config.json")))
            .unwrap();
        let mut config: Value = serde_json::from_str(&text).unwrap();
        config["root"]["path"] = json!(rootfs());
        // runc and crun name a container's cgroup for its id unless told: machine-wide, where
        // tests running at the same time reuse ids ("a", "b"), and a runtime then finds another
        // test's processes in "its" cgroup. This host's directory name makes it unique.
        config["linux"]["cgroupsPath"] = json!(format!(
            "/{}-{id}",
            self.dir.file_name().unwrap().to_string_lossy()
        ));
        if with_hooks {
            config["hooks"] = json!({
                "createRuntime": [self.hook_entry("createRuntime")],
                "poststop": [self.hook_entry("poststop")],
            });
        } else {
            config.as_object_mut().unwrap().remove("hooks");
        }
        let ann = config["annotations"]
            .as_object_mut()
            .map(std::mem::take)
            .unwrap_or_default();
        let mut ann: serde_json::Map<String, Value> = ann;
        for (k, v) in annotations {
            ann.insert(k.to_string(), json!(v));
        }
        config["annotations"] = Value::Object(ann);
        if !args.is_empty() {
            config["process"]["args"] = json!(args);
        }
        let bundle = self.dir.join("bundles").join(id);
        fs::create_dir_all(&bundle).unwrap();
        // A test may have left a FIFO or a link there: never write through it.
        let _ = fs::remove_file(bundle.join("config.json"));
        fs::write(
            bundle.join("config.json"),
            serde_json::to_vec_pretty(&config).unwrap(),
        )
        .unwrap();
        bundle
    }

    fn runtime_root(&self, runtime: Runtime) -> PathBuf {
        self.dir.join(runtime.name())
    }

    /// The runtime's command line up to the subcommand: `runc --root R`, or the shim with this
    /// host's ocinet state root and config dir in front of it.
    pub fn runtime_command(&self, runtime: Runtime) -> Command {
        let mut cmd = if runtime.is_shim() {
            let mut cmd = self.command(binary("ocinet-shim"));
            cmd.args(["--runtime-path", runtime.binary()])
                .arg("--ocinet-root")
                .arg(self.state_root())
                .arg("--ocinet-config-dir")
                .arg(self.config_dir());
            cmd
        } else {
            self.command(runtime.binary())
        };
        cmd.arg("--root").arg(self.runtime_root(runtime));
        cmd
    }

    /// Podman with this host's private storage, run and tmp dirs (its lock in /dev/shm and the
    /// runc root /run/runc are this host's tmpfs mounts), then `global` flags (`--runtime`,
    /// `--hooks-dir`, ...).
    pub fn podman(&self, global: &[&std::ffi::OsStr]) -> Command {
        self.podman_used.store(true, Ordering::SeqCst);
        let mut cmd = self.command("podman");
        // Podman wants a runroot of at most 50 characters: this host's own tmpfs.
        cmd.arg("--root")
            .arg(self.dir.join("podman"))
            .args(["--runroot", "/run/ocinet-test/podman-run"])
            .args(["--tmpdir", "/run/ocinet-test/podman-tmp"])
            .args(["--cgroup-manager", "cgroupfs", "--events-backend", "file"])
            .args(global);
        cmd
    }

    /// `podman run -d` of the busybox rootfs with ocinet annotations and podman's `--network
    /// none` (podman makes the namespace); the container id, or Err(stderr).
    pub fn podman_run(
        &self,
        global: &[&std::ffi::OsStr],
        name: &str,
        annotations: &[(&str, &str)],
        args: &[&str],
    ) -> Result<String, String> {
        let mut cmd = self.podman(global);
        cmd.args(["run", "-d", "--name", name, "--network", "none"])
            // This sandbox's limits are lower than podman's defaults.
            .args([
                "--ulimit",
                "nofile=1024:1024",
                "--ulimit",
                "nproc=1024:1024",
            ]);
        for (k, v) in annotations {
            cmd.arg("--annotation").arg(format!("{k}={v}"));
        }
        let out = cmd
            .arg("--rootfs")
            .arg(rootfs())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// The shim's own commands (`ls`, `gc`, ...) on this host's state; stdout, or Err(stderr).
    pub fn shim(&self, args: &[&str]) -> Result<String, String> {
        let out = self
            .command(binary("ocinet-shim"))
            .arg("--ocinet-root")
            .arg(self.state_root())
            .arg("--ocinet-config-dir")
            .arg(self.config_dir())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// `<runtime> run -d` of a bundle; `Err(stderr)` when the runtime fails.
    pub fn run_bundle(
        &self,
        runtime: Runtime,
        id: &str,
        bundle: &Path,
    ) -> Result<Container<'_>, String> {
        self.containers
            .lock()
            .unwrap()
            .push((runtime, id.to_string()));
        // The detached container inherits runc's stdio: a file, not a pipe, so nothing waits on it.
        let err_path = self.dir.join(format!("{id}.stderr"));
        let err = File::create(&err_path).unwrap();
        let status = self
            .runtime_command(runtime)
            .args(["run", "-d", "--bundle"])
            .arg(bundle)
            .arg(id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .status()
            .unwrap();
        let stderr = fs::read_to_string(&err_path).unwrap_or_default();
        if status.success() {
            Ok(Container {
                host: self,
                runtime,
                id: id.to_string(),
            })
        } else {
            Err(stderr)
        }
    }

    /// Why `id`'s hook failed, as the user sees it: runc puts the hook's stderr in its own
    /// error; crun drops it (unless the bundle sets `run.oci.hooks.stderr`), so the user reads
    /// ocinet's activity log (`ocinet-shim logs ID`) instead.
    pub fn failure_reason(&self, runtime: Runtime, id: &str, runtime_error: &str) -> String {
        match runtime.binary() {
            "crun" => {
                assert!(
                    runtime_error.contains("error executing hook"),
                    "{runtime_error}"
                );
                self.shim(&["logs", id])
                    .unwrap()
                    .lines()
                    .last()
                    .unwrap_or_default()
                    .to_string()
            }
            _ => runtime_error.to_string(),
        }
    }

    /// Runs a bundle that must be refused; returns why, as the user sees it.
    pub fn run_refused(&self, runtime: Runtime, id: &str, bundle: &Path) -> String {
        match self.run_bundle(runtime, id, bundle) {
            Ok(_) => panic!("{id} must be refused"),
            Err(e) => self.failure_reason(runtime, id, &e),
        }
    }

    /// Starts a container from a template with annotations, running `sleep`.
    pub fn start(&self, runtime: Runtime, id: &str, annotations: &[(&str, &str)]) -> Container<'_> {
        let bundle = self.bundle("bridge", id, annotations, &[]);
        self.run_bundle(runtime, id, &bundle)
            .unwrap_or_else(|e| panic!("{} run {id} failed: {e}", runtime.binary()))
    }

    /// Runs the hook binary directly in this host, as a runtime would.
    pub fn hook(&self, stage: &str, state: &str) -> Output {
        self.hook_with_env(stage, state, &[])
    }

    /// `hook` with extra environment (`OCINET_FAULT` for the crash tests).
    pub fn hook_with_env(&self, stage: &str, state: &str, env: &[(&str, &str)]) -> Output {
        let mut child = self
            .command(binary("ocinet-hook"))
            .envs(env.iter().copied())
            .arg("--root")
            .arg(self.state_root())
            .arg("--config-dir")
            .arg(self.config_dir())
            .arg(stage)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The hook stops reading an oversized state: a broken pipe here is its answer.
        let _ = child.stdin.take().unwrap().write_all(state.as_bytes());
        child.wait_with_output().unwrap()
    }

    /// A process with a private network namespace inside this host, as a container's init has.
    pub fn netns_process(&self) -> NsProcess {
        let mut child = self
            .command("unshare")
            .args(["--net", "--", "sh", "-c", "echo ready; exec sleep infinity"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        // nsenter, unshare and sh each exec the next: the child's pid is the sleeping process.
        let pid = child.id() as i32;
        NsProcess { child, pid }
    }

    /// An "outside world": another namespace joined to this host by a veth, the host at
    /// 198.51.100.1 and the outside at 198.51.100.2 (TEST-NET-2, only ever inside namespaces).
    pub fn outside(&self) -> Outside {
        let holder = Holder::spawn(&["--net"], "ip link set lo up");
        let pid = holder.pid();
        self.sh_ok(&format!(
            "ip link add ocout type veth peer name eth0 netns {pid} && ip addr add 198.51.100.1/24 dev ocout && ip link set ocout up"
        ));
        let out = Command::new("nsenter")
            .args([&format!("--target={pid}"), "--net", "--", "sh", "-c"])
            .arg("ip addr add 198.51.100.2/24 dev eth0 && ip link set eth0 up")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.outsides.lock().unwrap().push(holder);
        Outside { pid }
    }

    /// [`Host::outside`] with IPv6 on the link as well: the host at 2001:db8:2::1 and the
    /// outside at 2001:db8:2::2 (documentation prefix, only ever inside namespaces).
    pub fn outside_dual(&self) -> Outside {
        let outside = self.outside();
        self.sh_ok("ip addr add 2001:db8:2::1/64 dev ocout nodad");
        let added = outside.sh("ip addr add 2001:db8:2::2/64 dev eth0 nodad");
        assert!(
            added.status.success(),
            "{}",
            String::from_utf8_lossy(&added.stderr)
        );
        outside
    }

    /// Waits (at most 5 s) until no hook of this host runs: a poststop's teardown finishes in
    /// a child of the hook after the runtime's stop has returned.
    pub fn settle(&self) {
        let root = self.state_root().to_string_lossy().into_owned();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        // A hook's child names the root in its arguments; the CNI plugin's does not, but it
        // holds its container's record lock until it is done.
        while (hook_running(&root) || record_locked(&self.state_root()))
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// What ocinet left behind in this host: host veths and the routes and neighbours through
    /// them, records, claims, DNAT elements, namespace names, leases.
    pub fn leftovers(&self) -> Vec<String> {
        self.settle();
        let mut left: Vec<String> = self
            .sh_ok("ip -o link show")
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_string())
            .filter(|n| n.starts_with("ocv"))
            .map(|n| format!("veth {n}"))
            .collect();
        // A routed container's /32 route and neighbour entry are the host's through its veth.
        for (what, command) in [
            ("route", "ip -4 route show table all"),
            ("neighbour", "ip -4 neigh show"),
            ("route", "ip -6 route show table all"),
            ("neighbour", "ip -6 neigh show"),
        ] {
            left.extend(
                self.sh_ok(command)
                    .lines()
                    .filter(|l| l.contains(" dev ocv"))
                    .map(|l| format!("{what} {}", l.trim())),
            );
        }
        let root = self.state_root();
        left.extend(
            list_files(&root.join("containers"))
                .into_iter()
                .map(|f| format!("record {f}")),
        );
        for proto in ["tcp", "udp", "sctp"] {
            left.extend(
                list_files(&root.join("ports").join(proto))
                    .into_iter()
                    .filter(|f| f != "lock")
                    .map(|f| format!("claim {proto}/{f}")),
            );
        }
        for map in [
            "dnat_port",
            "dnat_addr",
            "dnat_any",
            "dnat6_port",
            "dnat6_addr",
            "dnat6_any",
        ] {
            let out = self.sh(&format!("nft list map inet ocinet {map}"));
            let text = String::from_utf8_lossy(&out.stdout);
            if let Some(at) = text.find("elements = ") {
                left.push(format!("nft {map} {}", text[at..].trim()));
            }
        }
        left.extend(
            self.sh_ok("ip netns list")
                .lines()
                .filter_map(|l| l.split_whitespace().next())
                .map(|n| format!("netns {n}")),
        );
        if let Ok(nets) = fs::read_dir(root.join("networks")) {
            for net in nets.flatten() {
                left.extend(
                    list_files(&net.path().join("leases"))
                        .into_iter()
                        .map(|f| format!("lease {f}")),
                );
            }
        }
        left
    }

    /// Kills the hook (SIGKILL, `OCINET_FAULT`) at each of `points` in turn, in the setup of a
    /// container with `annotations` publishing 8080; then the runtime's poststop (every other
    /// time) or gc (the container gone) must leave nothing, and the same id start cleanly.
    pub fn crash_at_every_setup_point(&self, points: &[&str], annotations: &[(&str, &str)]) {
        let mut annotations = annotations.to_vec();
        annotations.push(("io.ocinet.ports", "8080:80"));
        for (n, point) in points.iter().enumerate() {
            let id = format!("c{n}");
            let bundle = self.bundle("bridge", &id, &annotations, &[]);
            let process = self.netns_process();
            let state = state_json(&id, process.pid, &bundle);
            let out = self.hook_with_env("createRuntime", &state, &[("OCINET_FAULT", point)]);
            assert_eq!(
                std::os::unix::process::ExitStatusExt::signal(&out.status),
                Some(9),
                "{point} was not reached: {out:?}"
            );
            if n % 2 == 0 {
                // The runtime's poststop (or the shim's delete) after a failed create.
                ok(&self.hook("poststop", &state));
            } else {
                // Nobody ran poststop: the container is gone, gc finds its record stale.
                drop(process);
                let removed = self.shim(&["gc"]).unwrap();
                assert!(
                    removed.contains(&format!("removed {id}")),
                    "{point}: {removed}"
                );
            }
            assert_eq!(
                self.leftovers(),
                Vec::<String>::new(),
                "after a crash at {point}"
            );
            let process = self.netns_process();
            let state = state_json(&id, process.pid, &bundle);
            ok(&self.hook("createRuntime", &state));
            ok(&self.hook("poststop", &state));
            assert_eq!(
                self.leftovers(),
                Vec::<String>::new(),
                "{point}, second run"
            );
        }
    }

    /// Leases currently held on `network`, as address strings.
    pub fn leases(&self, network: &str) -> Vec<String> {
        self.settle();
        list_files(
            &self
                .state_root()
                .join("networks")
                .join(network)
                .join("leases"),
        )
    }
}

fn list_files(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    out.retain(|f| !f.starts_with('.'));
    out.sort();
    out
}

impl Drop for Host {
    fn drop(&mut self) {
        for (runtime, id) in self.containers.lock().unwrap().drain(..) {
            let _ = self
                .command(runtime.binary())
                .arg("--root")
                .arg(self.runtime_root(runtime))
                .args(["delete", "-f", &id])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        if self.podman_used.load(Ordering::SeqCst) {
            let _ = self
                .podman(&[])
                .args(["rm", "-af", "-t", "0"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        // Then whatever else runs in this host (helpers started detached), before the holder.
        cluster::kill_netns_processes(self.holder.pid());
        self.outsides.lock().unwrap().clear();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A process in its own network namespace (a stand-in for a container's init).
pub struct NsProcess {
    child: Child,
    pub pid: i32,
}

impl Drop for NsProcess {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The outside namespace.
pub struct Outside {
    pid: u32,
}

impl Outside {
    /// A process in the outside namespace (for `in_netns`).
    pub fn pid(&self) -> i32 {
        self.pid as i32
    }

    /// Runs a shell script in the outside namespace (with the real host's files).
    pub fn sh(&self, script: &str) -> Output {
        Command::new("nsenter")
            .args([
                &format!("--target={}", self.pid),
                "--net",
                "--",
                "sh",
                "-c",
                script,
            ])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// A UDP socket bound inside the outside namespace.
    pub fn udp(&self) -> std::net::UdpSocket {
        in_netns(self.pid as i32, || {
            std::net::UdpSocket::bind("198.51.100.2:0").unwrap()
        })
    }

    /// Listens on `port` and, on a thread, takes one connection: its peer and all it sent.
    pub fn receive_one(&self, port: u16) -> std::thread::JoinHandle<(SocketAddr, String)> {
        let listener = self.listen(port);
        std::thread::spawn(move || {
            let (mut conn, peer) = listener.accept().unwrap();
            let mut text = String::new();
            std::io::Read::read_to_string(&mut conn, &mut text).unwrap();
            (peer, text)
        })
    }

    /// A TCP listener bound inside the outside namespace (the socket stays there).
    pub fn listen(&self, port: u16) -> TcpListener {
        in_netns(self.pid as i32, move || {
            TcpListener::bind(("198.51.100.2", port)).unwrap()
        })
    }
}

/// Runs `f` on a thread that has entered the network namespace of `pid`; sockets it makes stay
/// in that namespace.
pub fn in_netns<T: Send + 'static>(pid: i32, f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        let ns = File::open(format!("/proc/{pid}/ns/net")).unwrap();
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        f()
    })
    .join()
    .unwrap()
}

/// A container started by a runtime in a [`Host`].
pub struct Container<'h> {
    host: &'h Host,
    pub runtime: Runtime,
    pub id: String,
}

impl Container<'_> {
    fn runtime_command(&self) -> Command {
        self.host.runtime_command(self.runtime)
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn exec(&self, args: &[&str]) -> Output {
        self.runtime_command()
            .arg("exec")
            .arg(&self.id)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Runs a shell command in the container; returns stdout, panicking on failure.
    pub fn sh_ok(&self, script: &str) -> String {
        let out = self.exec(&["sh", "-c", script]);
        assert!(
            out.status.success(),
            "{} in {}: {}{}",
            script,
            self.id,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The container's eth0 IPv4 address.
    pub fn address(&self) -> Ipv4Addr {
        let out = self.sh_ok("ip -o -4 addr show dev eth0");
        let cidr = out
            .split_whitespace()
            .skip_while(|w| *w != "inet")
            .nth(1)
            .expect("no inet");
        cidr.split('/').next().unwrap().parse().unwrap()
    }

    pub fn pid(&self) -> i32 {
        let out = self
            .runtime_command()
            .args(["state", &self.id])
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["pid"].as_i64().unwrap() as i32
    }

    /// `<runtime> kill KILL`, then waits until the runtime reports it stopped: a SIGKILLed
    /// container whose poststop has not run (it runs at delete, if at all).
    pub fn kill9(&self) {
        self.runtime_command()
            .args(["kill", &self.id, "KILL"])
            .output()
            .unwrap();
        for _ in 0..100 {
            let out = self
                .runtime_command()
                .args(["state", &self.id])
                .output()
                .unwrap();
            if String::from_utf8_lossy(&out.stdout).contains("\"stopped\"") {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("{} did not stop", self.id);
    }

    /// `<runtime> delete` (no force: for a stopped container); `Err(stderr)` when it fails.
    pub fn delete_stopped(self) -> Result<(), String> {
        let out = self
            .runtime_command()
            .args(["delete", &self.id])
            .output()
            .unwrap();
        // The teardown's end runs after poststop returns: wait for it, as users of a deleted
        // container do not (its resources are theirs again only then, for the checks here).
        self.host.settle();
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// `<runtime> delete -f`; `Err(stderr)` when it fails.
    pub fn delete(self) -> Result<(), String> {
        let out = self
            .runtime_command()
            .args(["delete", "-f", &self.id])
            .output()
            .unwrap();
        self.host.settle();
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}

/// Podman's default ulimits exceed this sandbox's: every podman run here lowers them.
pub const PODMAN_LIMITS: &[&str] = &[
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=1024:1024",
];

/// Asserts that a command succeeded (showing its stderr if not); returns its stdout.
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `scripts/install.sh --prefix PREFIX --cni-dir CNI_DIR` with the built binaries (not the
/// machine's own directories), and with `host`'s state root and config dir baked in when given.
pub fn install(prefix: &Path, cni_dir: &Path, host: Option<&Host>) {
    let bin_dir = binary("ocinet-hook").parent().unwrap().to_path_buf();
    let mut cmd = Command::new("bash");
    cmd.arg(workspace().join("scripts/install.sh"))
        .arg("--prefix")
        .arg(prefix)
        .arg("--cni-dir")
        .arg(cni_dir)
        .env("OCINET_BIN_DIR", bin_dir);
    if let Some(host) = host {
        cmd.arg("--state-root")
            .arg(host.state_root())
            .arg("--config-dir")
            .arg(host.config_dir());
    }
    ok(&cmd.output().unwrap());
}

/// A state JSON as a runtime passes it on the hook's stdin.
pub fn state_json(id: &str, pid: i32, bundle: &Path) -> String {
    json!({"ociVersion": "1.0.2", "id": id, "status": "creating", "pid": pid, "bundle": bundle})
        .to_string()
}

/// A containerd daemon inside a host, with its own root, state and socket, and ocinet's state
/// root and config dir in its environment (its runc shim passes them to the runtime it runs).
pub struct Containerd<'h> {
    host: &'h Host,
    daemon: Child,
    socket: String,
}

impl Host {
    pub fn containerd(&self) -> Containerd<'_> {
        let config = self.dir.join("containerd.toml");
        // The CRI plugin is not needed and slow to start.
        fs::write(
            &config,
            "version = 2\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n",
        )
        .unwrap();
        let socket = "/run/ocinet-test/containerd.sock".to_string();
        let daemon = self
            .command("containerd")
            .arg("--config")
            .arg(&config)
            .arg("--root")
            .arg(self.dir.join("containerd"))
            .args([
                "--state",
                "/run/ocinet-test/containerd",
                "--address",
                &socket,
            ])
            .env("OCINET_ROOT", self.state_root())
            .env("OCINET_CONFIG_DIR", self.config_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(self.dir.join("containerd.log")).unwrap())
            .spawn()
            .unwrap();
        let ctd = Containerd {
            host: self,
            daemon,
            socket,
        };
        for _ in 0..100 {
            if ctd.ctr(&["version"]).status.success() {
                return ctd;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!(
            "containerd did not start: see {}",
            self.dir.join("containerd.log").display()
        );
    }
}

impl Containerd<'_> {
    /// `ctr` against this daemon.
    pub fn ctr(&self, args: &[&str]) -> Output {
        self.host
            .command("ctr")
            .args(["--address", &self.socket])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Kills and deletes a task and its container.
    pub fn remove(&self, id: &str) {
        self.ctr(&["task", "kill", "-s", "KILL", id]);
        for _ in 0..50 {
            if self.ctr(&["task", "delete", id]).status.success() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        self.ctr(&["container", "delete", id]);
    }
}

impl Drop for Containerd<'_> {
    fn drop(&mut self) {
        let out = self.ctr(&["container", "list", "-q"]);
        for id in String::from_utf8_lossy(&out.stdout).lines() {
            self.remove(id.trim());
        }
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

/// Some process holds one of the record locks of state root `root`.
fn record_locked(root: &Path) -> bool {
    let Ok(entries) = fs::read_dir(root.join("containers")) else {
        return false;
    };
    entries.flatten().any(|e| {
        e.file_name().to_string_lossy().starts_with(".lock-")
            && File::open(e.path())
                .is_ok_and(|f| matches!(f.try_lock(), Err(std::fs::TryLockError::WouldBlock)))
    })
}

/// Whether an `ocinet-hook` process with `root` in its arguments is alive (not a zombie).
fn hook_running(root: &str) -> bool {
    let Ok(entries) = fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|e| {
        let path = e.path();
        let Ok(cmdline) = fs::read(path.join("cmdline")) else {
            return false;
        };
        let text = String::from_utf8_lossy(&cmdline);
        if !(text.contains("ocinet-hook") && text.contains(root)) {
            return false;
        }
        fs::read_to_string(path.join("stat")).is_ok_and(|stat| {
            let state = stat
                .rfind(')')
                .and_then(|i| stat[i + 1..].split_whitespace().next());
            !matches!(state, Some("Z" | "X"))
        })
    })
}
