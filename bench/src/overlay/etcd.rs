//! A real etcd (Debian's `etcd-server`, 3.4) in the lab: one member, clients on
//! http://192.0.2.1:2379 (the hosts reach it over the underlay), data on disk as a real cluster
//! keeps it (its write-ahead log is synced on every write, and a block lease is two writes).
//! Stopped, and its data removed, on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::lab::LAB_ADDRESS;
use crate::exec::{self, Result};

pub struct Etcd {
    child: Option<Child>,
    dir: PathBuf,
}

impl Etcd {
    /// The client URL the network file names.
    pub fn endpoint() -> String {
        format!("http://{LAB_ADDRESS}:2379")
    }

    /// Starts etcd with its data under `dir` (made here, removed on drop); waits until healthy.
    pub fn start(dir: PathBuf) -> Result<Etcd> {
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {dir:?}: {e}"))?;
        let log = std::fs::File::create(dir.join("etcd.log"))
            .map_err(|e| format!("cannot create etcd's log: {e}"))?;
        let peer = format!("http://{LAB_ADDRESS}:2380");
        let mut cmd = Command::new("etcd");
        // The environment configures etcd too (ETCD_<FLAG>): only the flags here count.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("ETCD") {
                cmd.env_remove(key);
            }
        }
        cmd.arg("--name=ocinet-bench")
            .arg("--data-dir")
            .arg(dir.join("data"))
            .arg(format!(
                "--listen-client-urls={},http://127.0.0.1:2379",
                Etcd::endpoint()
            ))
            .arg(format!("--advertise-client-urls={}", Etcd::endpoint()))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=ocinet-bench={peer}"))
            .args([
                "--initial-cluster-state=new",
                "--logger=zap",
                "--log-level=warn",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log);
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start etcd (Debian: etcd-server): {e}"))?;
        let mut etcd = Etcd {
            child: Some(child),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while etcd
            .ctl(&["--command-timeout=300ms", "endpoint", "health"])
            .is_err()
        {
            if let Some(Ok(Some(status))) = etcd.child.as_mut().map(Child::try_wait) {
                return Err(format!("etcd exited ({status}): see {:?}", etcd.log()));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "etcd is not healthy after 20 s: see {:?}",
                    etcd.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(etcd)
    }

    fn log(&self) -> PathBuf {
        self.dir.join("etcd.log")
    }

    /// `etcdctl` (API v3) against the lab's endpoint; its stdout.
    pub fn ctl(&self, args: &[&str]) -> Result<String> {
        let mut cmd = Command::new("etcdctl");
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("ETCDCTL") {
                cmd.env_remove(key);
            }
        }
        cmd.env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", Etcd::endpoint()))
            .args(args);
        exec::output("etcdctl", &mut cmd)
    }

    /// The keys under `prefix`.
    pub fn keys(&self, prefix: &str) -> Result<Vec<String>> {
        let out = self.ctl(&["get", "--prefix", "--keys-only", prefix])?;
        Ok(out
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect())
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
