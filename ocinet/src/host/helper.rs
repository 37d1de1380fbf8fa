//! Starting a helper process on demand (the overlay agent, the resolver): detached from the
//! runtime's stdio (own session, stdio to its log: a runtime waits for the hook's pipes to
//! close), with a pipe on fd 3 on which it says `ok` when ready or `error: ...`. Its keeper
//! (`supervision/`) restarts it the same way, with its own stdio (the same log) passed on.

use std::fs::OpenOptions;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

/// The descriptor on which a helper says it is ready (`ok`) or why it cannot be (`error: ...`).
pub(crate) const READY_FD: i32 = 3;

/// The role in its supervision of a process started by its partner (`supervision/`): unset in
/// a helper a setup starts.
pub(crate) const ROLE_ENV: &str = "OCINET_SUPERVISION";

/// Descriptors handed to a child are first copied at or above this, so that placing one at
/// its number (3, 4) never overwrites another still to be placed.
const ABOVE_PLACED: RawFd = 10;

/// How long a helper that closed its pipe without a word is given to be reaped, so that the
/// setup's line can say how it ended.
const EXIT_GRACE: Duration = Duration::from_millis(200);

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
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(log)
        .map_err(|e| io("cannot open its log", e))?;
    cmd.stdout(log.try_clone().map_err(|e| io("cannot open its log", e))?)
        .stderr(log)
        // A first start: the helper starts its keeper itself once it serves.
        .env_remove(ROLE_ENV);
    let (mut child, ready) = spawn_with_word(cmd, &[]).map_err(|e| io("cannot start it", e))?;
    await_word(&mut child, ready, timeout)
}

/// Spawns `cmd` detached ([`spawn_detached`], stdin on /dev/null, stdout and stderr as `cmd`
/// says) with the write end of a pipe on [`READY_FD`] besides `fds`; the read end is for
/// [`await_word`].
pub(crate) fn spawn_with_word(
    mut cmd: Command,
    fds: &[(BorrowedFd<'_>, RawFd)],
) -> std::io::Result<(Child, OwnedFd)> {
    let (ready_read, ready_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let mut placed = vec![(ready_write.as_fd(), READY_FD)];
    placed.extend_from_slice(fds);
    cmd.stdin(Stdio::null());
    let child = spawn_detached(cmd, &placed)?;
    // Ours closed: the pipe ends when the helper exits without a word.
    drop(ready_write);
    Ok((child, ready_read))
}

/// Spawns `cmd` in a session of its own with each of `fds` at the number beside it. Every other
/// descriptor of this process is close-on-exec (std's and ocinet's all are), so the child holds
/// nothing of the caller but its stdio as `cmd` sets it.
pub(crate) fn spawn_detached(
    mut cmd: Command,
    fds: &[(BorrowedFd<'_>, RawFd)],
) -> std::io::Result<Child> {
    let mut high = Vec::with_capacity(fds.len());
    for (fd, target) in fds {
        let copy = fcntl(fd, FcntlArg::F_DUPFD_CLOEXEC(ABOVE_PLACED))?;
        // SAFETY: fcntl just made this descriptor, and nothing else owns it.
        high.push((unsafe { OwnedFd::from_raw_fd(copy) }, *target));
    }
    let moves: Vec<(RawFd, RawFd)> = high
        .iter()
        .map(|(fd, target)| (fd.as_raw_fd(), *target))
        .collect();
    // SAFETY: only async-signal-safe calls between fork and exec; `moves` was made before.
    unsafe {
        cmd.pre_exec(move || {
            if nix::libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            for (from, to) in &moves {
                // dup2 leaves the copy at `to` without close-on-exec.
                if nix::libc::dup2(*from, *to) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = cmd.spawn();
    drop(high);
    child
}

/// Waits up to `timeout` for the word of `child` on `ready`: `ok`, or why not. A helper that
/// exits without a word (it could not even write to its log) is described by how it ended.
pub(crate) fn await_word(
    child: &mut Child,
    ready: OwnedFd,
    timeout: Duration,
) -> Result<(), StartError> {
    match read_word(ready, timeout) {
        Ok(word) if word == "ok" => Ok(()),
        Ok(word) => Err(StartError::Refused(
            word.strip_prefix("error: ").unwrap_or(&word).to_string(),
        )),
        Err(Unsaid::Closed) => Err(StartError::Silent(match exit_of(child, EXIT_GRACE) {
            Some(status) => format!("it {} without a word", ended(status)),
            None => "it closed its pipe without a word".to_string(),
        })),
        Err(Unsaid::Other(why)) => Err(StartError::Silent(why)),
    }
}

/// How `child` ended, if it does within `grace`.
fn exit_of(child: &mut Child, grace: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + grace;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => return None,
        }
    }
}

/// "exited with status 1", "was killed by signal 9 (SIGKILL)".
pub(crate) fn ended(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => match nix::sys::signal::Signal::try_from(signal) {
            Ok(name) => format!("was killed by signal {signal} ({name})"),
            Err(_) => format!("was killed by signal {signal}"),
        },
        (None, None) => format!("ended ({status})"),
    }
}

/// Why there was no line.
enum Unsaid {
    /// The pipe closed first: the helper exited (or closed it) without a word.
    Closed,
    Other(String),
}

/// One line from the helper, or why there was none within `timeout`.
fn read_word(pipe: OwnedFd, timeout: Duration) -> Result<String, Unsaid> {
    let deadline = Instant::now() + timeout;
    let mut file = std::fs::File::from(pipe);
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Unsaid::Other(format!(
                "no answer within {} s",
                timeout.as_secs()
            )));
        }
        let millis = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(file.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(millis)) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(Unsaid::Other(format!("cannot wait for it: {e}"))),
        }
        let n = file
            .read(&mut buf)
            .map_err(|e| Unsaid::Other(format!("cannot read its answer: {e}")))?;
        if n == 0 {
            return match got.is_empty() {
                true => Err(Unsaid::Closed),
                false => Ok(String::from_utf8_lossy(&got).trim().to_string()),
            };
        }
        got.extend_from_slice(&buf[..n]);
        if let Some(end) = got.iter().position(|b| *b == b'\n') {
            return Ok(String::from_utf8_lossy(&got[..end]).trim().to_string());
        }
        if got.len() > 4096 {
            return Err(Unsaid::Other("its answer is too long".to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]);
        cmd
    }

    #[test]
    fn the_word_on_fd_3_is_read_and_a_silent_exit_is_described() {
        let start = |script: &str| {
            let mut cmd = sh(script);
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
            let (mut child, ready) = spawn_with_word(cmd, &[]).unwrap();
            let word = await_word(&mut child, ready, Duration::from_secs(5));
            let _ = child.wait();
            word
        };
        assert!(matches!(start("echo ok >&3"), Ok(())));
        assert!(matches!(
            start("echo 'error: no space' >&3; exit 1"),
            Err(StartError::Refused(why)) if why == "no space"
        ));
        assert!(matches!(
            start("exit 7"),
            Err(StartError::Silent(why)) if why == "it exited with status 7 without a word"
        ));
        assert!(matches!(
            start("kill -9 $$"),
            Err(StartError::Silent(why)) if why.contains("killed by signal 9 (SIGKILL)")
        ));
    }

    #[test]
    fn descriptors_are_placed_at_their_numbers_in_a_session_of_its_own() {
        // The source descriptors may sit where the others go: 3 and 4 swapped.
        let (a_read, a_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
        let (b_read, b_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
        // Field 6 of /proc/PID/stat is the session (sh's name holds no space).
        let mut cmd = sh("echo a >&3; echo b >&4; [ \"$(cut -d' ' -f6 /proc/$$/stat)\" = $$ ] && echo leader >&4");
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        let mut child = spawn_detached(cmd, &[(a_write.as_fd(), 3), (b_write.as_fd(), 4)]).unwrap();
        drop((a_write, b_write));
        let text = |fd: OwnedFd| {
            let mut s = String::new();
            std::fs::File::from(fd).read_to_string(&mut s).unwrap();
            s
        };
        assert_eq!(text(a_read), "a\n");
        assert_eq!(text(b_read), "b\nleader\n");
        assert!(child.wait().unwrap().success());
    }
}
