//! The host's resolvers: the nameservers of its /etc/resolv.conf (up to three, as libc), read
//! again when the file changes; a question goes to the first, then the next on a timeout,
//! SERVFAIL or REFUSED.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::answer;
use crate::links::Links;

/// libc reads three.
const MAX_SERVERS: usize = 3;
/// How long one server gets (glibc's default is 5 s; containers retry on their own).
const SERVER_TIMEOUT: Duration = Duration::from_secs(2);
/// The file is looked at (its mtime) at most this often.
const RECHECK: Duration = Duration::from_secs(1);
const SERVFAIL: u8 = 2;
const REFUSED: u8 = 5;

pub struct Upstream {
    path: PathBuf,
    /// Our own listening addresses: never forwarded to (a loop).
    state: Mutex<State>,
    links: Links,
}

struct State {
    servers: Vec<SocketAddr>,
    search: Vec<String>,
    modified: Option<SystemTime>,
    checked: Option<Instant>,
}

impl Upstream {
    pub fn new(path: PathBuf) -> Upstream {
        Upstream {
            path,
            state: Mutex::new(State {
                servers: Vec::new(),
                search: Vec::new(),
                modified: None,
                checked: None,
            }),
            links: Links::new(),
        }
    }

    /// The search domains (lower case, no trailing dot).
    pub fn search(&self) -> Vec<String> {
        self.fresh().search.clone()
    }

    fn fresh(&self) -> std::sync::MutexGuard<'_, State> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let due = state.checked.is_none_or(|t| t.elapsed() >= RECHECK);
        if due {
            state.checked = Some(Instant::now());
            let modified = std::fs::metadata(&self.path)
                .and_then(|m| m.modified())
                .ok();
            if modified != state.modified || state.servers.is_empty() {
                state.modified = modified;
                let text = std::fs::read_to_string(&self.path).unwrap_or_default();
                state.servers = parse(&text);
                state.search = search_domains(&text);
            }
        }
        state
    }

    /// The servers, the file read again if it changed.
    pub fn servers(&self, ours: &[IpAddr]) -> Vec<SocketAddr> {
        let state = self.fresh();
        state
            .servers
            .iter()
            .filter(|s| !ours.contains(&s.ip()))
            .copied()
            .collect()
    }

    /// The first usable answer to `query` over UDP; SERVFAIL when none.
    pub async fn forward_udp(&self, query: &[u8], ours: &[IpAddr]) -> Option<Vec<u8>> {
        let mut last = None;
        for server in self.servers(ours) {
            match tokio::time::timeout(SERVER_TIMEOUT, self.links.ask(server, query)).await {
                Ok(Ok(got)) if !matches!(answer::rcode(&got), Some(SERVFAIL | REFUSED)) => {
                    return Some(got)
                }
                Ok(Ok(got)) => last = Some(got),
                _ => {}
            }
        }
        last.or_else(|| answer::server_failure(query))
    }

    /// As [`Upstream::forward_udp`], over TCP (a client that asked over TCP wants no
    /// truncated answer).
    pub async fn forward_tcp(&self, query: &[u8], ours: &[IpAddr]) -> Option<Vec<u8>> {
        let mut last = None;
        for server in self.servers(ours) {
            match tokio::time::timeout(SERVER_TIMEOUT, ask_tcp(server, query)).await {
                Ok(Ok(got)) if !matches!(answer::rcode(&got), Some(SERVFAIL | REFUSED)) => {
                    return Some(got)
                }
                Ok(Ok(got)) => last = Some(got),
                _ => {}
            }
        }
        last.or_else(|| answer::server_failure(query))
    }
}

async fn ask_tcp(server: SocketAddr, query: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(server).await?;
    let len = u16::try_from(query.len()).map_err(|_| std::io::Error::other("query too long"))?;
    let mut framed = Vec::with_capacity(query.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(query);
    stream.write_all(&framed).await?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut buf).await?;
    Ok(buf)
}

/// The domains of the last `search` or `domain` line (as libc: the last one wins).
pub fn search_domains(text: &str) -> Vec<String> {
    let mut domains = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if matches!(words.next(), Some("search" | "domain")) {
            domains = words
                .map(|d| d.trim_end_matches('.').to_ascii_lowercase())
                .filter(|d| !d.is_empty())
                .collect();
        }
    }
    domains
}

/// The `nameserver` lines of a resolv.conf, at most three, port 53.
pub fn parse(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next()? == "nameserver").then_some(())?;
            // A scoped IPv6 address (fe80::1%eth0) has no meaning here: skipped.
            words.next()?.parse::<IpAddr>().ok()
        })
        .take(MAX_SERVERS)
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn nameservers() {
        let got = super::parse(
            "# x\nsearch a.example\nnameserver 10.0.0.1\nnameserver ::1\nnameserver bad\noptions ndots:2\nnameserver 10.0.0.2\nnameserver 10.0.0.3\n",
        );
        let got: Vec<String> = got.iter().map(|s| s.to_string()).collect();
        assert_eq!(got, ["10.0.0.1:53", "[::1]:53", "10.0.0.2:53"]);
    }
}
