//! The hook's side of `ocinet-resolver`, the names' DNS server (one per state root): a setup
//! that registered names tells it before returning, and waits for its `ok`, so the names
//! resolve when the setup returns; a teardown tells it before returning. A unix stream socket
//! in the state root, one line each way: a connection and two small writes, tens of
//! microseconds. No resolver listening (none yet, killed, or exited when the last name went):
//! the setup starts one (`helper.rs`), under a lock so that two setups never start two; it
//! rebuilds every live container's names from the records. Once it serves, its keeper
//! (`host::supervision`, told what it needs by [`supervised`]) starts it again within
//! milliseconds if it is killed, with no setup needed.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::context::{Context, ResolverLink};
use crate::error::{Error, Result};
use crate::host::helper::{self, StartError};
use crate::host::process;
use crate::host::store::{self, StateRoot};
use crate::host::supervision::{StartGuard, Supervised};
use crate::state::record::{Record, RecordStore};

/// The state root's directory of the resolver: `control.sock`, `resolver.pid`, `start.lock`,
/// `resolver.log`.
pub const DIR: &str = "resolver";
pub const SOCKET: &str = "control.sock";
pub const PID_FILE: &str = "resolver.pid";
pub const START_LOCK: &str = "start.lock";
pub(crate) const LOG: &str = "resolver.log";
/// `listening/<address>`: one empty file per address the resolver listens on.
pub const LISTENING: &str = "listening";
/// The resolver's binary name.
pub(crate) const NAME: &str = "ocinet-resolver";
/// An answer takes microseconds; a resolver that takes this long is treated as gone.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);
/// Binding its sockets and reading the records.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// How one exchange went.
enum Reply {
    Ok,
    /// The resolver refused (its words).
    Refused(String),
    /// Nobody listens, or nobody answered.
    Unreachable,
}

fn exchange(socket: &Path, line: &str, timeout: Duration) -> Reply {
    let mut stream = match UnixStream::connect(socket) {
        Ok(s) => s,
        Err(_) => return Reply::Unreachable,
    };
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    if stream.write_all(format!("{line}\n").as_bytes()).is_err() {
        return Reply::Unreachable;
    }
    let mut got = Vec::with_capacity(64);
    let mut buf = [0u8; 256];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                if got.contains(&b'\n') || got.len() > 4096 {
                    break;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return Reply::Unreachable,
        }
    }
    let text = String::from_utf8_lossy(&got);
    match text.lines().next().map(str::trim) {
        Some("ok") => Reply::Ok,
        Some(word) if !word.is_empty() => {
            Reply::Refused(word.strip_prefix("error: ").unwrap_or(word).to_string())
        }
        _ => Reply::Unreachable,
    }
}

fn dir(ctx: &Context) -> Result<PathBuf> {
    ctx.root.subdir(&[DIR])
}

/// The `add` message of a record: the container's names, addresses and gateways per network,
/// so that the resolver need not read the record (it does when it starts):
/// `add ID PID START` then one `NETWORK GATEWAYS ADDRESSES NAMES` per interface with names
/// (lists comma-separated, `-` for none), all on one line separated by tabs.
pub fn add_message(record: &Record) -> String {
    let join = |items: Vec<String>| match items.is_empty() {
        true => "-".to_string(),
        false => items.join(","),
    };
    let mut line = format!(
        "add {} {} {}",
        record.id,
        record.pid.unwrap_or(0),
        record.pid_start.unwrap_or(0)
    );
    for iface in record.interfaces.iter().filter(|i| !i.names.is_empty()) {
        line.push_str(&format!(
            "\t{} {} {} {}",
            iface.network,
            join(
                iface
                    .addresses
                    .iter()
                    .filter_map(|a| a.gateway)
                    .map(|g| g.to_string())
                    .collect()
            ),
            join(
                iface
                    .addresses
                    .iter()
                    .map(|a| a.address.to_string())
                    .collect()
            ),
            iface.names.join(",")
        ));
    }
    line
}

/// Tells the resolver the record's names (starting it if needed); returns once they resolve.
///
/// When the resolver runs (its pid file) and listens on every gateway the record names (its
/// `listening/<address>` files), the line is only written, not waited for: the resolver answers
/// a name it does not know yet from the state root (the name's file, then its holder's record,
/// both written before this), so the name resolves when the setup returns without the setup
/// waiting for the resolver to be scheduled (on a loaded host, often the longest wait of a
/// setup). A resolver deciding to exit removes its pid file first, then reads the records once
/// more under the start lock: it sees this record (saved before its pid file was read here)
/// and stays, or this setup found no pid file and takes the waiting path.
pub(crate) fn register(ctx: &Context, record: &Record) -> Result<()> {
    let id = &record.id;
    if let ResolverLink::Recorded(calls) = &ctx.resolver {
        calls.borrow_mut().push(format!("add {id}"));
        return Ok(());
    }
    let dir = dir(ctx)?;
    let socket = dir.join(SOCKET);
    let line = add_message(record);
    if live_pid(&dir).is_some() && listens_on_all(&dir, record) && tell(&socket, &line) {
        return Ok(());
    }
    match exchange(&socket, &line, ANSWER_TIMEOUT) {
        Reply::Ok => return Ok(()),
        Reply::Refused(why) => return Err(refused(&dir, &why)),
        Reply::Unreachable => {}
    }
    // Gone, or going (it exits holding this lock when no name is left): one setup starts it.
    let _lock = store::lock(&dir.join(START_LOCK))?;
    if live_pid(&dir).is_none() {
        start(ctx, &dir)?;
    }
    match exchange(&socket, &line, ANSWER_TIMEOUT) {
        Reply::Ok => Ok(()),
        Reply::Refused(why) => Err(refused(&dir, &why)),
        Reply::Unreachable => Err(Error::Resolver(format!(
            "ocinet-resolver does not answer on {} (log: {})",
            socket.display(),
            dir.join(LOG).display()
        ))),
    }
}

/// Tells a running resolver that `id`'s names are gone. None running: nothing to tell (it
/// reads the records when it starts).
pub(crate) fn forget(ctx: &Context, id: &str) -> Result<()> {
    if let ResolverLink::Recorded(calls) = &ctx.resolver {
        calls.borrow_mut().push(format!("del {id}"));
        return Ok(());
    }
    let dir = dir(ctx)?;
    match exchange(&dir.join(SOCKET), &format!("del {id}"), ANSWER_TIMEOUT) {
        Reply::Refused(why) => Err(refused(&dir, &why)),
        Reply::Ok | Reply::Unreachable => Ok(()),
    }
}

/// Whether the resolver said it listens on every gateway of the record's DNS interfaces.
fn listens_on_all(dir: &Path, record: &Record) -> bool {
    record
        .interfaces
        .iter()
        .filter(|i| !i.names.is_empty())
        .flat_map(|i| i.addresses.iter().filter_map(|a| a.gateway))
        .all(|g| dir.join(LISTENING).join(g.to_string()).exists())
}

/// Writes one line without waiting for an answer; false when nobody listens.
fn tell(socket: &Path, line: &str) -> bool {
    UnixStream::connect(socket)
        .and_then(|mut s| s.write_all(format!("{line}\n").as_bytes()))
        .is_ok()
}

fn refused(dir: &Path, why: &str) -> Error {
    Error::Resolver(format!(
        "ocinet-resolver: {why} (log: {})",
        dir.join(LOG).display()
    ))
}

/// The pid of the running resolver, from its pid file (pid and start time: a pid is reused, a
/// killed process may stay a zombie).
pub fn live_pid(dir: &Path) -> Option<i32> {
    let bytes = store::read_file(&dir.join(PID_FILE)).ok()??;
    let text = String::from_utf8_lossy(&bytes);
    let mut words = text.split_whitespace();
    let pid: i32 = words.next()?.parse().ok()?;
    let start: u64 = words.next()?.parse().ok()?;
    process::is_same_process(pid, start).then_some(pid)
}

fn start(ctx: &Context, dir: &Path) -> Result<()> {
    let binary = helper::binary(NAME, "OCINET_RESOLVER").map_err(Error::Resolver)?;
    let mut cmd = Command::new(binary);
    cmd.arg("--root").arg(ctx.root.path());
    match helper::start(cmd, &dir.join(LOG), START_TIMEOUT) {
        Ok(()) => Ok(()),
        Err(StartError::Spawn(why) | StartError::Refused(why) | StartError::Silent(why)) => {
            Err(refused(dir, &why))
        }
    }
}

/// What the keeper of the resolver of the state root `root` needs to know of it.
pub fn supervised(root: &Path) -> ResolverSupervision {
    ResolverSupervision {
        root: root.to_path_buf(),
        dir: root.join(DIR),
    }
}

/// See [`supervised`].
pub struct ResolverSupervision {
    root: PathBuf,
    dir: PathBuf,
}

impl Supervised for ResolverSupervision {
    fn name(&self) -> &str {
        NAME
    }

    fn dirs(&self) -> Vec<PathBuf> {
        vec![self.root.clone(), self.dir.clone()]
    }

    /// As `register` takes it before it starts a resolver.
    fn start_lock(&self) -> Result<StartGuard> {
        Ok(Box::new(store::lock(&self.dir.join(START_LOCK))?))
    }

    fn running(&self) -> bool {
        live_pid(&self.dir).is_some()
    }

    /// A live container holds a name: what the resolver waits for before it leaves.
    fn needed(&self) -> bool {
        // Never made again here: a removed root ends the keeper instead.
        if !self.root.is_dir() {
            return false;
        }
        let Ok(root) = StateRoot::open(&self.root) else {
            return false;
        };
        let (Ok(records), Ok(boot_id)) = (RecordStore::open(&root), process::boot_id()) else {
            // Unreadable now: kept, as the resolver itself keeps its table.
            return true;
        };
        match records.all() {
            Ok((all, _)) => all
                .iter()
                .any(|r| r.interfaces.iter().any(|i| !i.names.is_empty()) && !r.is_stale(&boot_id)),
            Err(_) => true,
        }
    }

    fn start_timeout(&self) -> Duration {
        START_TIMEOUT
    }
}
