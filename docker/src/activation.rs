//! systemd's socket activation (`sd_listen_fds`): `ocinet-docker.socket` holds
//! /run/docker/plugins/ocinet.sock, so dockerd always finds the plugin, and systemd starts the
//! service at the first connection, passing the listening socket as fd 3 with `LISTEN_PID` and
//! `LISTEN_FDS` set. Connections that arrive while the plugin is not running wait in the
//! socket's queue.

use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;

/// The first fd systemd passes.
const LISTEN_FDS_START: i32 = 3;

/// The socket systemd passed to this process, if it did.
pub fn listener() -> Result<Option<UnixListener>, String> {
    let ours = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        .is_some_and(|p| p == std::process::id());
    if !ours {
        return Ok(None);
    }
    let count: i32 = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    match count {
        0 => return Ok(None),
        1 => {}
        n => {
            return Err(format!(
                "systemd passed {n} sockets: ocinet-docker.socket must listen on exactly one"
            ))
        }
    }
    // Not for the processes this one might start.
    std::env::remove_var("LISTEN_PID");
    std::env::remove_var("LISTEN_FDS");
    std::env::remove_var("LISTEN_FDNAMES");
    // SAFETY: by the protocol, fd 3 is open, this process's, and owned by nobody else here.
    let fd = unsafe { OwnedFd::from_raw_fd(LISTEN_FDS_START) };
    let listener = UnixListener::from(fd);
    listener.local_addr().map_err(|e| {
        format!("the socket systemd passed is not a listening unix socket ({e}): check ocinet-docker.socket")
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("cannot use the socket systemd passed: {e}"))?;
    Ok(Some(listener))
}
