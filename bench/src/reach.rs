//! Is every container reachable once all are set up? From the host, from another container,
//! and through its published port, each by a TCP connection to a listener the bench opens on
//! port 80 inside the container's namespace (the kernel completes the handshake; nothing needs
//! to accept). A failure is retried once after a second, as a user would.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::time::Duration;

use nix::sched::{setns, CloneFlags};
use serde::Serialize;

use crate::exec::Result;
use crate::fleet::Container;

/// Where a container answers: its address, and the host address and port published to it.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub address: Ipv4Addr,
    pub published: SocketAddrV4,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Reach {
    pub containers: usize,
    /// Containers that did not answer, after the retry.
    pub unreachable_from_host: usize,
    pub unreachable_from_peer: usize,
    pub unreachable_published: usize,
    /// Connections that needed the retry.
    pub retried: usize,
}

const TIMEOUT: Duration = Duration::from_secs(1);

/// Runs `f` on a thread inside the network namespace of `c` (a thread's namespace is its own).
fn in_netns<T: Send + 'static>(
    c: &Container,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T> {
    let path = c.netns_path();
    std::thread::spawn(move || {
        let ns = std::fs::File::open(&path).map_err(|e| format!("cannot open {path}: {e}"))?;
        setns(ns.as_fd(), CloneFlags::CLONE_NEWNET)
            .map_err(|e| format!("cannot enter {path}: {e}"))?;
        f().map_err(|e| format!("in {path}: {e}"))
    })
    .join()
    .map_err(|_| "a reachability thread panicked".to_string())?
}

fn connects(to: SocketAddr) -> bool {
    TcpStream::connect_timeout(&to, TIMEOUT).is_ok()
}

#[derive(Clone, Copy)]
enum Way {
    /// The host to the container's address.
    Host,
    /// Another container (the next one) to the container's address.
    Peer,
    /// The host to the published port on one of its own addresses.
    Published,
}

impl Way {
    fn connects(self, target: &Target, peer: &Container) -> Result<bool> {
        let direct = SocketAddr::from((target.address, 80));
        match self {
            Way::Host => Ok(connects(direct)),
            Way::Peer => in_netns(peer, move || Ok(connects(direct))),
            Way::Published => Ok(connects(SocketAddr::V4(target.published))),
        }
    }
}

/// Checks every container in `targets` (each with its container). The listeners live until
/// the check returns.
pub fn check(targets: &[(Target, &Container)]) -> Result<Reach> {
    let mut listeners: Vec<TcpListener> = Vec::with_capacity(targets.len());
    for (_, c) in targets {
        listeners.push(in_netns(c, || TcpListener::bind("0.0.0.0:80"))?);
    }
    let mut reach = Reach {
        containers: targets.len(),
        ..Reach::default()
    };
    let n = targets.len();
    for (i, (target, _)) in targets.iter().enumerate() {
        let peer = targets[(i + 1) % n].1;
        for way in [Way::Host, Way::Peer, Way::Published] {
            if way.connects(target, peer)? {
                continue;
            }
            reach.retried += 1;
            std::thread::sleep(Duration::from_secs(1));
            if !way.connects(target, peer)? {
                *match way {
                    Way::Host => &mut reach.unreachable_from_host,
                    Way::Peer => &mut reach.unreachable_from_peer,
                    Way::Published => &mut reach.unreachable_published,
                } += 1;
            }
        }
    }
    drop(listeners);
    Ok(reach)
}
