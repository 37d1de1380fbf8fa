//! Entering a network namespace for a while, on the calling thread only (`setns` moves one
//! thread): a command it spawns (the hook, `ip`, iperf3) or a socket it opens is then in that
//! namespace exactly as if started there, with no `nsenter` in the timed path.

use std::fs::File;

use nix::sched::{setns, CloneFlags};

use crate::exec::Result;

/// The network namespace of process `pid`, held open.
pub fn of_pid(pid: u32) -> Result<File> {
    let path = format!("/proc/{pid}/ns/net");
    File::open(&path).map_err(|e| format!("cannot open {path}: {e}"))
}

/// While it lives, the calling thread is in another network namespace; dropped, it is back.
pub struct Entered {
    home: File,
}

impl Drop for Entered {
    fn drop(&mut self) {
        // Staying in the wrong namespace would make every later number wrong: better stop.
        setns(&self.home, CloneFlags::CLONE_NEWNET)
            .expect("cannot return to the bench's own network namespace");
    }
}

/// Moves the calling thread into the namespace `ns` until the guard drops.
pub fn enter(ns: &File) -> Result<Entered> {
    let home = File::open("/proc/thread-self/ns/net")
        .map_err(|e| format!("cannot open this thread's network namespace: {e}"))?;
    setns(ns, CloneFlags::CLONE_NEWNET).map_err(|e| format!("cannot enter a namespace: {e}"))?;
    Ok(Entered { home })
}

/// Runs `f` with the calling thread in the namespace `ns`.
pub fn within<T>(ns: &File, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let _inside = enter(ns)?;
    f()
}
