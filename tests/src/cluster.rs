//! What runs in a test host besides its containers: stopped with the host.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// The identity of a process's network namespace; None once it has exited (a zombie has none).
fn netns(pid: u32) -> Option<(u64, u64)> {
    let meta = fs::metadata(format!("/proc/{pid}/ns/net")).ok()?;
    Some((meta.dev(), meta.ino()))
}

/// State letter and parent of a process, from `/proc/PID/stat`.
fn stat(pid: u32) -> Option<(char, u32)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: the fields follow its last ')'.
    let mut fields = text[text.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// SIGKILLs every process in the network namespace of `holder` but the holder itself, and waits
/// until none is left alive. Helpers started detached in a host (the overlay agent, a leaked
/// `setsid` child) are nobody's child here: nothing else would stop them. The ones that are this
/// process's children are reaped; orphans are the init's to reap (late, on these machines), so
/// "dead" is state Z or gone, never `kill -0`.
pub(crate) fn kill_netns_processes(holder: u32) {
    let Some(target) = netns(holder) else {
        return;
    };
    let me = std::process::id();
    // Never sweep the namespace this test itself runs in (the real host's, normally).
    if netns(me) == Some(target) {
        return;
    }
    let mut ours = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut alive = 0;
        for entry in fs::read_dir("/proc").unwrap().flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            if pid == holder || pid == me || netns(pid) != Some(target) {
                continue;
            }
            let Some((state, ppid)) = stat(pid) else {
                continue;
            };
            if matches!(state, 'Z' | 'X') {
                continue;
            }
            alive += 1;
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            if ppid == me && !ours.contains(&pid) {
                ours.push(pid);
            }
        }
        if alive == 0 {
            break;
        }
        if Instant::now() > deadline {
            // Drop runs this, maybe while unwinding: a panic here would abort the whole test.
            eprintln!("{alive} processes in the network namespace of {holder} survive SIGKILL");
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // Out of the namespace means exiting; becoming a zombie follows shortly.
    for pid in ours {
        let pid = Pid::from_raw(pid as i32);
        for _ in 0..200 {
            match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => std::thread::sleep(Duration::from_millis(5)),
                // Reaped now, or by its owner already (ECHILD).
                _ => break,
            }
        }
    }
}
