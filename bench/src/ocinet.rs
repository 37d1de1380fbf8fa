//! ocinet: `ocinet-hook` driven exactly as a runtime drives it: the state JSON on stdin, a
//! bundle whose `config.json` carries the annotations.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::backend::{bridge_ports, count_files, Backend, Leaks};
use crate::exec::{self, Result};
use crate::fleet::Container;

pub const NETWORK: &str = "bench";

/// Where one ocinet build works: its own bridge, subnet, host ports and directories, so two
/// builds can run side by side (the A/B mode).
pub struct Lane {
    pub name: &'static str,
    /// Empty for a routed network.
    pub bridge: &'static str,
    pub subnet: &'static str,
    pub port_base: u16,
    /// A routed network (`"driver": "routed"`) rather than a bridge.
    pub routed: bool,
}

/// The lane of the main benchmark.
pub const MAIN: Lane = Lane {
    name: "ocinet",
    bridge: "ocbench0",
    subnet: "10.90.0.0/16",
    port_base: 10001,
    routed: false,
};

/// ocinet on a routed network, beside the others in the main run.
pub const ROUTED: Lane = Lane {
    name: "ocinet-routed",
    bridge: "",
    subnet: "10.95.0.0/16",
    // Below the other backends' ports and the end-to-end run's range (50000-50999).
    port_base: 1001,
    routed: true,
};

/// The second build's lane in the A/B mode (CNI and netavark do not run then).
pub const SECOND: Lane = Lane {
    name: "ocinet-b",
    bridge: "ocbench1",
    subnet: "10.93.0.0/16",
    port_base: 40001,
    routed: false,
};

/// The main run's first phase, ocinet alone on the machine (torn down before the others run).
pub const ALONE: Lane = Lane {
    name: "ocinet-alone",
    ..SECOND
};

pub struct Ocinet {
    lane: &'static Lane,
    hook: PathBuf,
    root: PathBuf,
    config_dir: PathBuf,
    bundles: PathBuf,
    /// Peak RSS of any hook run, KiB.
    pub max_rss_kib: u64,
}

impl Ocinet {
    pub fn new(hook: &Path, work: &Path, lane: &'static Lane) -> Result<Ocinet> {
        let work = work.join(lane.name);
        let config_dir = work.join("etc");
        let networks = config_dir.join("networks");
        std::fs::create_dir_all(&networks)
            .map_err(|e| format!("cannot create {networks:?}: {e}"))?;
        let def = match lane.routed {
            true => {
                json!({"driver": "routed", "subnets": [{"subnet": lane.subnet}], "masquerade": true})
            }
            false => {
                json!({"bridge": lane.bridge, "subnets": [{"subnet": lane.subnet}], "masquerade": true})
            }
        };
        write(&networks.join(format!("{NETWORK}.json")), &def)?;
        Ok(Ocinet {
            lane,
            hook: hook.to_path_buf(),
            root: work.join("state"),
            config_dir,
            bundles: work.join("bundles"),
            max_rss_kib: 0,
        })
    }

    /// Container `i`'s id, unique across lanes.
    fn id(&self, i: usize) -> String {
        format!("{}-{i}", self.lane.name)
    }

    /// Writes the bundle of container `id` with the given annotations.
    pub fn bundle(&self, id: &str, annotations: serde_json::Value) -> Result<PathBuf> {
        let dir = self.bundles.join(id);
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {dir:?}: {e}"))?;
        let config =
            json!({"ociVersion": "1.0.2", "root": {"path": "rootfs"}, "annotations": annotations});
        write(&dir.join("config.json"), &config)?;
        Ok(dir)
    }

    /// Runs one hook stage for `id` (pid 0 at poststop, as runc reports it) and times it.
    pub fn hook(&mut self, stage: &str, id: &str, pid: u32, bundle: &Path) -> Result<Duration> {
        let status = if stage == "poststop" {
            "stopped"
        } else {
            "creating"
        };
        let state = json!({"ociVersion": "1.0.2", "id": id, "status": status, "pid": pid, "bundle": bundle});
        let mut cmd = Command::new(&self.hook);
        cmd.arg("--root")
            .arg(&self.root)
            .arg("--config-dir")
            .arg(&self.config_dir)
            .arg(stage)
            .env_clear();
        let run = exec::run(
            &format!("ocinet-hook {stage} {id}"),
            &mut cmd,
            state.to_string().as_bytes(),
        )?;
        self.max_rss_kib = self.max_rss_kib.max(run.max_rss_kib);
        Ok(run.elapsed)
    }

    pub fn hook_path(&self) -> &Path {
        &self.hook
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn config_dir(&self) -> &Path {
        &self.config_dir
    }
}

fn write(path: &Path, value: &serde_json::Value) -> Result<()> {
    std::fs::write(path, value.to_string()).map_err(|e| format!("cannot write {path:?}: {e}"))
}

impl Backend for Ocinet {
    fn name(&self) -> &'static str {
        self.lane.name
    }

    fn setup(&mut self, i: usize, c: &Container) -> Result<Duration> {
        let port = self.lane.port_base as usize + i;
        let id = self.id(i);
        let bundle = self.bundle(
            &id,
            json!({"io.ocinet.network": format!("bridge:{NETWORK}"), "io.ocinet.ports": format!("{port}:80")}),
        )?;
        self.hook("createRuntime", &id, c.pid(), &bundle)
    }

    fn teardown(&mut self, i: usize, _c: &Container) -> Result<Duration> {
        let id = self.id(i);
        let bundle = self.bundles.join(&id);
        self.hook("poststop", &id, 0, &bundle)
    }

    fn leaks(&self) -> Result<Leaks> {
        // A poststop's teardown finishes in a child of the hook: counted once they are done.
        wait_for_hooks(&self.root);
        let leases = count_files(
            &self.root.join("networks").join(NETWORK).join("leases"),
            &|_| true,
        )
        // Records are `<id>.json`; the `.lock-NN` files are the fixed set of per-id lock stripes.
        + count_files(&self.root.join("containers"), &|n| n.ends_with(".json"))
            + count_files(&self.root.join("ports"), &|n| n != "lock");
        Ok(Leaks {
            // A routed container's veth is known by the host's route to it.
            links: match self.lane.routed {
                true => routes_through_links(self.lane.subnet)?,
                false => bridge_ports(self.lane.bridge)?,
            },
            rules: dnat_elements(self.lane.port_base)?,
            leases: Some(leases),
        })
    }
}

/// Waits (at most 10 s) until no `ocinet-hook` process with `root` in its arguments is alive.
fn wait_for_hooks(root: &std::path::Path) {
    let root = root.to_string_lossy().into_owned();
    let running = || {
        std::fs::read_dir("/proc").is_ok_and(|entries| {
            entries.flatten().any(|e| {
                let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
                let text = String::from_utf8_lossy(&cmdline);
                let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
                let zombie = stat
                    .rfind(')')
                    .and_then(|i| stat[i + 1..].split_whitespace().next())
                    .is_some_and(|state| state == "Z" || state == "X");
                text.contains("ocinet-hook") && text.contains(&root) && !zombie
            })
        })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while running() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Host routes into `subnet` through a link (a routed container's veth); the subnet's own
/// `unreachable` route has none.
fn routes_through_links(subnet: &str) -> Result<usize> {
    let out = exec::output(
        "ip route show root",
        Command::new("ip").args(["-4", "-o", "route", "show", "root", subnet]),
    )?;
    Ok(out.lines().filter(|l| l.contains(" dev ")).count())
}

/// Elements left in ocinet's DNAT maps for host ports from `port_base` on (0 when the table
/// does not exist).
pub fn dnat_elements(port_base: u16) -> Result<usize> {
    let out = Command::new("nft")
        .args(["-j", "list", "table", "inet", "ocinet"])
        .output()
        .map_err(|e| format!("cannot run nft: {e}"))?;
    if !out.status.success() {
        return Ok(0);
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("nft -j output: {e}"))?;
    let items = v["nftables"].as_array().cloned().unwrap_or_default();
    Ok(items
        .iter()
        .filter_map(|o| o.get("map"))
        .filter(|m| m["name"].as_str().is_some_and(|n| n.starts_with("dnat_")))
        .filter_map(|m| m["elem"].as_array())
        .flatten()
        .filter(|e| {
            host_port(e).is_some_and(|p| (port_base..port_base.saturating_add(9000)).contains(&p))
        })
        .count())
}

/// The host port of a DNAT map element in `nft -j` form: `[[key concat], value]`, the key's
/// last field the port or a range.
fn host_port(element: &serde_json::Value) -> Option<u16> {
    let key = &element.as_array()?.first()?["concat"];
    let port = key.as_array()?.last()?;
    let port = port.as_u64().or_else(|| port["range"][0].as_u64())?;
    u16::try_from(port).ok()
}
