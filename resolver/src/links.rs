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

/// Questions waiting, by id. An answer takes the sender and leaves the id: only its question
/// frees it (when it returns), so no later question can take the id while an earlier one's
/// cleanup is still to run.
type Pending = Mutex<HashMap<u16, Option<oneshot::Sender<Vec<u8>>>>>;

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
            pending.insert(id, Some(tx));
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
pub fn roomy(socket: &impl std::os::fd::AsFd) {
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
        let waiter = pending
            .lock()
            .ok()
            .and_then(|mut p| p.get_mut(&id).and_then(Option::take));
        if let Some(tx) = waiter {
            let _ = tx.send(buf[..n].to_vec());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server that answers each question with itself, flagged as an answer.
    async fn echo_server() -> SocketAddr {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let at = socket.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            loop {
                let (n, peer) = socket.recv_from(&mut buf).await.unwrap();
                buf[2] |= 0x80;
                socket.send_to(&buf[..n], peer).await.unwrap();
            }
        });
        at
    }

    #[test]
    fn answers_go_to_their_questions_with_their_own_ids() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let server = echo_server().await;
            let links = Arc::new(Links::new());
            let mut asked: Vec<tokio::task::JoinHandle<()>> = Vec::new();
            // Rounds of 100 at once (a socket's buffer holds that many), each answered on one
            // of the sockets, ids taken and freed again and again.
            for i in 0..2000u16 {
                if i % 100 == 0 {
                    for a in asked.drain(..) {
                        a.await.unwrap();
                    }
                }
                let links = links.clone();
                asked.push(tokio::spawn(async move {
                    let mut q = vec![0u8; 12];
                    q[..2].copy_from_slice(&i.to_be_bytes());
                    q.extend_from_slice(&i.to_le_bytes());
                    let got = tokio::time::timeout(
                        std::time::Duration::from_secs(5),
                        links.ask(server, &q),
                    )
                    .await
                    .unwrap()
                    .unwrap();
                    assert_eq!(&got[..2], &i.to_be_bytes());
                    assert_eq!(&got[12..], &i.to_le_bytes());
                }));
            }
            for a in asked {
                a.await.unwrap();
            }
            // Every id is free again.
            let sockets = links.sockets(server).await.unwrap();
            assert!(sockets.iter().all(|l| l.pending.lock().unwrap().is_empty()));
        });
    }
}
