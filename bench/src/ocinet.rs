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
pub const BRIDGE: &str = "ocbench0";
pub const SUBNET: &str = "10.90.0.0/16";
pub const PORT_BASE: u16 = 10001;

pub struct Ocinet {
    hook: PathBuf,
    root: PathBuf,
    config_dir: PathBuf,
    bundles: PathBuf,
    /// Peak RSS of any hook run, KiB.
    pub max_rss_kib: u64,
}

impl Ocinet {
    pub fn new(hook: &Path, work: &Path) -> Result<Ocinet> {
        let config_dir = work.join("ocinet-etc");
        let networks = config_dir.join("networks");
        std::fs::create_dir_all(&networks)
            .map_err(|e| format!("cannot create {networks:?}: {e}"))?;
        let def = json!({"bridge": BRIDGE, "subnets": [{"subnet": SUBNET}], "masquerade": true});
        write(&networks.join(format!("{NETWORK}.json")), &def)?;
        Ok(Ocinet {
            hook: hook.to_path_buf(),
            root: work.join("ocinet-state"),
            config_dir,
            bundles: work.join("ocinet-bundles"),
            max_rss_kib: 0,
        })
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

fn id(i: usize) -> String {
    format!("oc{i}")
}

impl Backend for Ocinet {
    fn name(&self) -> &'static str {
        "ocinet"
    }

    fn setup(&mut self, i: usize, c: &Container) -> Result<Duration> {
        let port = PORT_BASE as usize + i;
        let bundle = self.bundle(
            &id(i),
            json!({"io.ocinet.network": format!("bridge:{NETWORK}"), "io.ocinet.ports": format!("{port}:80")}),
        )?;
        self.hook("createRuntime", &id(i), c.pid(), &bundle)
    }

    fn teardown(&mut self, i: usize, _c: &Container) -> Result<Duration> {
        let bundle = self.bundles.join(id(i));
        self.hook("poststop", &id(i), 0, &bundle)
    }

    fn leaks(&self) -> Result<Leaks> {
        let leases = count_files(
            &self.root.join("networks").join(NETWORK).join("leases"),
            &|_| true,
        )
        // Records are `<id>.json`; the `.lock-NN` files are the fixed set of per-id lock stripes.
        + count_files(&self.root.join("containers"), &|n| n.ends_with(".json"))
            + count_files(&self.root.join("ports"), &|n| n != "lock");
        Ok(Leaks {
            links: bridge_ports(BRIDGE)?,
            rules: dnat_elements()?,
            leases: Some(leases),
        })
    }
}

/// Elements left in ocinet's DNAT maps (0 when the table does not exist).
pub fn dnat_elements() -> Result<usize> {
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
        .filter(|m| matches!(m["name"].as_str(), Some("dnat_port" | "dnat_addr")))
        .map(|m| m["elem"].as_array().map_or(0, Vec::len))
        .sum())
}
