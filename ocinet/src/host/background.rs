//! A child process that goes on after the hook returns: its own session, stdio on /dev/null
//! (a runtime waits until the hook's pipes close), nothing of the runtime's kept. Only for the
//! single-threaded hook: fork copies the calling thread alone.

use std::fs::OpenOptions;
use std::os::fd::AsRawFd;

use nix::unistd::{fork, setsid, ForkResult};

pub(crate) enum Side {
    Parent,
    Child,
}

/// Forks; in the child, leaves the parent's session and stdio. An error means no child.
pub(crate) fn fork_detached() -> std::io::Result<Side> {
    let null = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    // SAFETY: the hook is single-threaded (no_main, no threads are started), so the child is
    // a whole copy of the process.
    match unsafe { fork() }.map_err(std::io::Error::from)? {
        ForkResult::Parent { .. } => Ok(Side::Parent),
        ForkResult::Child => {
            let _ = setsid();
            for fd in 0..=2 {
                // SAFETY: dup2 onto the standard descriptors of this process only.
                unsafe { nix::libc::dup2(null.as_raw_fd(), fd) };
            }
            Ok(Side::Child)
        }
    }
}
