//! The hook's side of an overlay network's agent: the agent holds this host's block in etcd,
//! keeps the lease alive and programs the tunnels to the other hosts, none of which a hook can
//! do. The first setup on a host starts it (as netavark starts aardvark-dns); every setup
//! checks that it still runs and restarts a dead one, which rebuilds from the state root.

use std::fs::OpenOptions;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::context::Context;
use crate::error::{Error, Result};
use crate::network::Network;
use crate::overlay_state::{HostBlock, OverlayDir};

/// The descriptor on which the agent says it is ready (`ok`) or why it cannot be (`error: ...`).
pub const READY_FD: i32 = 3;
/// How long a setup waits for a new agent: reaching etcd and leasing a block.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// This host's block of `network`, from its running agent; starts the agent if it is not
/// running. The caller holds the network's lease lock, so two setups never start two agents.
pub fn host_block(ctx: &Context, network: &Network) -> Result<HostBlock> {
    let dir = OverlayDir::open(&ctx.root, &network.name)?;
    if dir.live_agent().is_some() {
        if let Some(block) = dir.block()? {
            return Ok(block);
        }
    }
    // Checked when the host joins (not on every setup): the other files do not change often.
    ctx.networks.check_no_overlap(&ctx.root, network)?;
    start(ctx, network, &dir)?;
    dir.block()?
        .ok_or_else(|| agent_failed(network, "it said it was ready but wrote no block", &dir))
}

fn agent_failed(network: &Network, why: &str, dir: &OverlayDir) -> Error {
    Error::Overlay(format!(
        "the overlay agent of network {} failed: {why} (log: {})",
        network.name,
        dir.log_path().display()
    ))
}

/// `ocinet-agent` beside the hook (they are installed together), or `OCINET_AGENT`.
fn agent_binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("OCINET_AGENT").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let me = std::env::current_exe()
        .map_err(|e| Error::Overlay(format!("cannot find the hook's own path: {e}")))?;
    let agent = me.with_file_name("ocinet-agent");
    if !agent.is_file() {
        return Err(Error::Overlay(format!(
            "{} is missing: install ocinet-agent beside ocinet-hook",
            agent.display()
        )));
    }
    Ok(agent)
}

/// Starts the agent detached (its own session, stdio to its log: a runtime waits for the
/// hook's pipes to close) and waits for its word.
fn start(ctx: &Context, network: &Network, dir: &OverlayDir) -> Result<()> {
    let io = |what: &str, e: std::io::Error| Error::Overlay(format!("{what}: {e}"));
    let (ready_read, ready_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)
        .map_err(|e| io("cannot make a pipe for the overlay agent", e.into()))?;
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(dir.log_path())
        .map_err(|e| io("cannot open the overlay agent's log", e))?;
    let mut cmd = Command::new(agent_binary()?);
    cmd.arg("--root")
        .arg(ctx.root.path())
        .arg("--config-dir")
        .arg(&ctx.config_dir)
        .arg("--network")
        .arg(&network.name)
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| io("cannot open the log", e))?)
        .stderr(log);
    let write_fd = ready_write.as_raw_fd();
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if nix::libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if write_fd == READY_FD {
                // Already in place: only its close-on-exec flag must go.
                if nix::libc::fcntl(READY_FD, nix::libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if nix::libc::dup2(write_fd, READY_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    // The child lives on after the hook exits; it is not waited for.
    let _child = cmd
        .spawn()
        .map_err(|e| io("cannot start the overlay agent", e))?;
    drop(ready_write);
    match read_word(ready_read, START_TIMEOUT) {
        Ok(word) if word == "ok" => Ok(()),
        Ok(word) => Err(Error::Overlay(
            word.strip_prefix("error: ").unwrap_or(&word).to_string(),
        )),
        Err(why) => Err(agent_failed(network, &why, dir)),
    }
}

/// One line from the agent, or why there was none within `timeout`.
fn read_word(pipe: OwnedFd, timeout: Duration) -> std::result::Result<String, String> {
    let deadline = Instant::now() + timeout;
    let mut file = std::fs::File::from(pipe);
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("no answer within {} s", timeout.as_secs()));
        }
        let millis = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(file.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(millis)) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(format!("cannot wait for it: {e}")),
        }
        let n = file
            .read(&mut buf)
            .map_err(|e| format!("cannot read its answer: {e}"))?;
        if n == 0 {
            return match got.is_empty() {
                true => Err("it exited without a word".to_string()),
                false => Ok(String::from_utf8_lossy(&got).trim().to_string()),
            };
        }
        got.extend_from_slice(&buf[..n]);
        if let Some(end) = got.iter().position(|b| *b == b'\n') {
            return Ok(String::from_utf8_lossy(&got[..end]).trim().to_string());
        }
        if got.len() > 4096 {
            return Err("its answer is too long".to_string());
        }
    }
}
