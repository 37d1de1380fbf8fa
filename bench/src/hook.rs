//! One `ocinet-hook` build with its own state root, config dir and bundles, driven exactly as a
//! runtime drives it: the state JSON on stdin, a bundle whose `config.json` carries the
//! annotations, an empty environment.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::exec::{self, Result, Usage};

pub struct Hook {
    path: PathBuf,
    root: PathBuf,
    config_dir: PathBuf,
    bundles: PathBuf,
    /// Peak RSS of any hook run, KiB.
    pub max_rss_kib: u64,
    /// Each setup's (createRuntime's) CPU time and context switches, in order.
    pub setup_usage: Vec<Usage>,
}

impl Hook {
    /// The hook at `path`, its state root, config dir and bundles under `dir`; no network yet.
    pub fn new(path: &Path, dir: &Path) -> Result<Hook> {
        let config_dir = dir.join("etc");
        let networks = config_dir.join("networks");
        std::fs::create_dir_all(&networks)
            .map_err(|e| format!("cannot create {networks:?}: {e}"))?;
        Ok(Hook {
            path: path.to_path_buf(),
            root: dir.join("state"),
            config_dir,
            bundles: dir.join("bundles"),
            max_rss_kib: 0,
            setup_usage: Vec::new(),
        })
    }

    /// Writes the network file `name` (its JSON definition) into the config dir.
    pub fn define(&self, name: &str, definition: &serde_json::Value) -> Result<()> {
        let path = self
            .config_dir
            .join("networks")
            .join(format!("{name}.json"));
        write(&path, definition)
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
    pub fn run(&mut self, stage: &str, id: &str, pid: u32, bundle: &Path) -> Result<Duration> {
        let status = if stage == "poststop" {
            "stopped"
        } else {
            "creating"
        };
        let state = json!({"ociVersion": "1.0.2", "id": id, "status": status, "pid": pid, "bundle": bundle});
        let mut cmd = Command::new(&self.path);
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
        if stage == "createRuntime" {
            self.setup_usage.push(run.usage);
        }
        Ok(run.elapsed)
    }

    /// The bundle directory of container `id` (made by [`Hook::bundle`]).
    pub fn bundle_dir(&self, id: &str) -> PathBuf {
        self.bundles.join(id)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits until this runner's hooks have finished: a poststop's teardown ends in a child of
    /// the hook after the timed run returned.
    pub fn settle(&self) {
        wait_for_hooks(&self.root);
        wait_for_record_locks(&self.root);
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

/// Waits (at most 10 s) until no process holds a record lock of state root `root`: a
/// teardown's child (the hook's or the CNI plugin's, which names no root in its arguments)
/// holds its container's until it is done.
pub fn wait_for_record_locks(root: &Path) {
    let locked = || {
        std::fs::read_dir(root.join("containers")).is_ok_and(|entries| {
            entries.flatten().any(|e| {
                e.file_name().to_string_lossy().starts_with(".lock-")
                    && std::fs::File::open(e.path()).is_ok_and(|f| {
                        matches!(f.try_lock(), Err(std::fs::TryLockError::WouldBlock))
                    })
            })
        })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while locked() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits (at most 10 s) until no process with `--root ROOT` in its arguments is alive: a hook
/// of this runner, whatever its file is called (the A/B mode runs copies under other names).
fn wait_for_hooks(root: &std::path::Path) {
    let mut marker = b"\0--root\0".to_vec();
    marker.extend_from_slice(root.as_os_str().as_encoded_bytes());
    marker.push(0);
    let running = || {
        std::fs::read_dir("/proc").is_ok_and(|entries| {
            entries.flatten().any(|e| {
                let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
                let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
                let zombie = stat
                    .rfind(')')
                    .and_then(|i| stat[i + 1..].split_whitespace().next())
                    .is_some_and(|state| state == "Z" || state == "X");
                cmdline.windows(marker.len()).any(|w| w == marker) && !zombie
            })
        })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while running() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}
