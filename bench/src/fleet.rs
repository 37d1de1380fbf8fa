//! The "containers": one `unshare --net sleep` process each, in its own network namespace.

use std::os::unix::fs::MetadataExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::exec::Result;

pub struct Container {
    child: Child,
}

impl Container {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn netns_path(&self) -> String {
        format!("/proc/{}/ns/net", self.pid())
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn netns_inode(path: &str) -> Result<u64> {
    std::fs::metadata(path)
        .map(|m| m.ino())
        .map_err(|e| format!("cannot stat {path}: {e}"))
}

/// Starts `n` sleepers and waits until each is in a network namespace of its own.
pub fn spawn(n: usize) -> Result<Vec<Container>> {
    let ours = netns_inode("/proc/self/ns/net")?;
    let mut all = Vec::with_capacity(n);
    for _ in 0..n {
        let child = Command::new("unshare")
            .args(["--net", "sleep", "infinity"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start unshare --net sleep: {e}"))?;
        all.push(Container { child });
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    for c in &all {
        // unshare execs sleep in the same pid once the namespace is made.
        while netns_inode(&c.netns_path())? == ours {
            if Instant::now() > deadline {
                return Err(format!("process {} never left our netns", c.pid()));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    Ok(all)
}

/// The bench refuses to run in its caller's network namespace: `run.sh` records that one's
/// inode in `OCINET_BENCH_OUTER_NETNS` and execs the bench through `unshare --net`.
pub fn check_private_host() -> Result<()> {
    let outer = match std::env::var("OCINET_BENCH_OUTER_NETNS") {
        Ok(v) => v
            .parse::<u64>()
            .map_err(|e| format!("OCINET_BENCH_OUTER_NETNS={v}: {e}"))?,
        Err(_) => netns_inode(&format!(
            "/proc/{}/ns/net",
            std::os::unix::process::parent_id()
        ))?,
    };
    if netns_inode("/proc/self/ns/net")? == outer {
        return Err(
            "refusing to run in the host's network namespace: use bench/run.sh (unshare --net --mount)"
                .to_string(),
        );
    }
    Ok(())
}
