//! Runs one backend command the way a runtime does (spawn, JSON on stdin, wait) and times it
//! from spawn to reaped exit, with the child's peak RSS from `wait4`.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::libc;

pub type Result<T> = std::result::Result<T, String>;

/// What one run of a command gave.
pub struct Run {
    pub elapsed: Duration,
    pub stdout: Vec<u8>,
    /// Peak resident set of the child, KiB.
    pub max_rss_kib: u64,
    pub usage: Usage,
}

/// What the child spent of its time on a CPU, and how often it gave one up: waiting (a lock,
/// a grace period, I/O) or preempted. Wall time beyond `cpu` is time spent off a CPU.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub cpu: Duration,
    pub voluntary_switches: u64,
    pub involuntary_switches: u64,
}

/// Spawns `cmd`, feeds it `input`, waits; a non-zero exit is an error carrying its stderr.
pub fn run(what: &str, cmd: &mut Command, input: &[u8]) -> Result<Run> {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("{what}: cannot spawn: {e}"))?;
    let mut stdin = child.stdin.take().ok_or(format!("{what}: no stdin"))?;
    let mut stderr = child.stderr.take().ok_or(format!("{what}: no stderr"))?;
    let mut stdout = child.stdout.take().ok_or(format!("{what}: no stdout"))?;
    // Output is small, but a chatty stderr must not block the child while we read stdout.
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    // A child that exits without reading its input is its own business (EPIPE is fine).
    let _ = stdin.write_all(input);
    drop(stdin);
    let mut out = Vec::new();
    stdout
        .read_to_end(&mut out)
        .map_err(|e| format!("{what}: cannot read stdout: {e}"))?;
    let (status, rss, usage) =
        wait4(child.id() as libc::pid_t).map_err(|e| format!("{what}: {e}"))?;
    let elapsed = start.elapsed();
    let err = err_reader.join().unwrap_or_default();
    if status != 0 {
        return Err(format!(
            "{what}: exit status {status}: {}",
            String::from_utf8_lossy(&err).trim()
        ));
    }
    Ok(Run {
        elapsed,
        stdout: out,
        max_rss_kib: rss,
        usage,
    })
}

/// Reaps `pid`: (exit code or 128+signal, peak RSS KiB, its usage). `Child` is not used to
/// wait, since it cannot report resource usage.
fn wait4(pid: libc::pid_t) -> Result<(i32, u64, Usage)> {
    let mut status: libc::c_int = 0;
    // SAFETY: zeroed rusage is a valid value; both pointers are valid for the call.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: see above; pid is our own unreaped child.
        let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if rc == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(format!("wait4 {pid}: {err}"));
        }
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    let spent = Usage {
        cpu: time(usage.ru_utime) + time(usage.ru_stime),
        voluntary_switches: usage.ru_nvcsw as u64,
        involuntary_switches: usage.ru_nivcsw as u64,
    };
    Ok((code, usage.ru_maxrss as u64, spent))
}

/// Runs a helper command (not timed) and returns its stdout; failure is an error.
pub fn output(what: &str, cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: cannot spawn: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{what}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
