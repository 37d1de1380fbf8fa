//! Starting a helper process on demand (the overlay agent, the resolver): detached from the
//! runtime's stdio (own session, stdio to its log: a runtime waits for the hook's pipes to
//! close), with a pipe on fd 3 on which it says `ok` when ready or `error: ...`.

use std::fs::OpenOptions;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

/// The descriptor on which a helper says it is ready (`ok`) or why it cannot be (`error: ...`).
pub(crate) const READY_FD: i32 = 3;

/// How a start went wrong, in words for the caller's error.
#[derive(Debug)]
pub(crate) enum StartError {
    /// It could not be started at all.
    Spawn(String),
    /// It said `error: ...`.
    Refused(String),
    /// It said nothing usable (exited, timed out).
    Silent(String),
}

/// `name` beside the running binary (they are installed together), or the path in `env_var`.
pub(crate) fn binary(name: &str, env_var: &str) -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(env_var).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let me = std::env::current_exe().map_err(|e| format!("cannot find its own path: {e}"))?;
    let helper = me.with_file_name(name);
    if !helper.is_file() {
        return Err(format!(
            "{} is missing: install {name} beside {}",
            helper.display(),
            me.file_name().unwrap_or_default().to_string_lossy()
        ));
    }
    Ok(helper)
}

/// Starts `cmd` detached with its output appended to `log`, and waits up to `timeout` for
/// its word. The child lives on after the caller exits; it is not waited for.
pub(crate) fn start(mut cmd: Command, log: &Path, timeout: Duration) -> Result<(), StartError> {
    let io = |what: &str, e: std::io::Error| StartError::Spawn(format!("{what}: {e}"));
    let (ready_read, ready_write) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| io("cannot make a pipe", e.into()))?;
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(log)
        .map_err(|e| io("cannot open its log", e))?;
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| io("cannot open its log", e))?)
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
    let _child = cmd.spawn().map_err(|e| io("cannot start it", e))?;
    drop(ready_write);
    match read_word(ready_read, timeout) {
        Ok(word) if word == "ok" => Ok(()),
        Ok(word) => Err(StartError::Refused(
            word.strip_prefix("error: ").unwrap_or(&word).to_string(),
        )),
        Err(why) => Err(StartError::Silent(why)),
    }
}

/// One line from the helper, or why there was none within `timeout`.
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
