//! UDP to the host's resolvers over a few long-lived sockets per server, answers matched to
//! questions by a query id of ours (random, rewritten on the way out and back): a socket per
//! question costs five system calls and an epoll registration more than a send and a receive.
//! Several sockets (each its own random ephemeral port), picked at random per question, keep
//! a forged answer as hard to guess as a port and an id.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::UdpSocket;
use tokio::sync::oneshot;

/// Sockets per server.
const SOCKETS: usize = 4;

type Pending = Mutex<HashMap<u16, oneshot::Sender<Vec<u8>>>>;

struct Link {
    socket: Arc<UdpSocket>,
    pending: Arc<Pending>,
}

pub struct Links {
    links: Mutex<HashMap<SocketAddr, Arc<Vec<Link>>>>,
    random: AtomicU64,
}

impl Links {
    pub fn new() -> Links {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
            ^ (u64::from(std::process::id()) << 32);
        Links {
            links: Mutex::new(HashMap::new()),
            random: AtomicU64::new(seed | 1),
        }
    }

    /// xorshift64: not for secrets, for ids and socket choice no outsider sees in advance.
    fn next(&self) -> u64 {
        let mut x = self.random.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.random.store(x, Ordering::Relaxed);
        x
    }

    async fn sockets(&self, server: SocketAddr) -> std::io::Result<Arc<Vec<Link>>> {
        if let Some(links) = self.links.lock().ok().and_then(|l| l.get(&server).cloned()) {
            return Ok(links);
        }
        let mut made = Vec::with_capacity(SOCKETS);
        for _ in 0..SOCKETS {
            let local: SocketAddr = match server {
                SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
                SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
            };
            let socket = UdpSocket::bind(local).await?;
            roomy(&socket);
            let socket = Arc::new(socket);
            socket.connect(server).await?;
            let pending: Arc<Pending> = Arc::default();
            tokio::spawn(receive(socket.clone(), pending.clone()));
            made.push(Link { socket, pending });
        }
        let made = Arc::new(made);
        if let Ok(mut links) = self.links.lock() {
            // Two questions raced to make them: the first set stays, this one is dropped.
            return Ok(links.entry(server).or_insert(made).clone());
        }
        Ok(made)
    }

    /// Sends `query` to `server` and waits for its answer (the caller bounds the wait).
    pub async fn ask(&self, server: SocketAddr, query: &[u8]) -> std::io::Result<Vec<u8>> {
        if query.len() < 12 {
            return Err(std::io::Error::other("not a DNS message"));
        }
        let links = self.sockets(server).await?;
        let link = &links[(self.next() % SOCKETS as u64) as usize];
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut pending = link
                .pending
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?;
            let mut id = self.next() as u16;
            while pending.contains_key(&id) {
                id = self.next() as u16;
            }
            pending.insert(id, tx);
            id
        };
        // Removed when this returns or is dropped (a timeout): no id is kept for nothing.
        let _forget = Forget {
            pending: link.pending.clone(),
            id,
        };
        let mut out = query.to_vec();
        out[..2].copy_from_slice(&id.to_be_bytes());
        link.socket.send(&out).await?;
        let mut answer = rx.await.map_err(|_| std::io::Error::other("no answer"))?;
        answer[..2].copy_from_slice(&query[..2]);
        Ok(answer)
    }
}

struct Forget {
    pending: Arc<Pending>,
    id: u16,
}

impl Drop for Forget {
    fn drop(&mut self) {
        if let Ok(mut p) = self.pending.lock() {
            p.remove(&self.id);
        }
    }
}

/// Room for a burst of answers (the default, ~200 kB, drops some under dnsperf's 100
/// outstanding questions, each then a 2 s timeout). The kernel caps it at `rmem_max`.
pub fn roomy(socket: &UdpSocket) {
    let _ = nix::sys::socket::setsockopt(socket, nix::sys::socket::sockopt::RcvBuf, &(4 << 20));
}

/// Hands each answer to the question of its id; anything else is dropped.
async fn receive(socket: Arc<UdpSocket>, pending: Arc<Pending>) {
    let mut buf = vec![0u8; 4096];
    loop {
        let n = match socket.recv(&mut buf).await {
            Ok(n) => n,
            // A connected UDP socket reports the server's ICMP errors here: keep going.
            Err(_) => continue,
        };
        if n < 12 {
            continue;
        }
        let id = u16::from_be_bytes([buf[0], buf[1]]);
        let waiter = pending.lock().ok().and_then(|mut p| p.remove(&id));
        if let Some(tx) = waiter {
            let _ = tx.send(buf[..n].to_vec());
        }
    }
}
