//! `ocinet-resolver --root DIR [--resolv-conf PATH]`: the DNS server of containers' names, one
//! per state root. The first setup that registers names starts it (detached, fd 3 for its
//! `ok`, see `ocinet/src/dns/resolver.rs`); it reads every live record's names, listens on
//! UDP and TCP port 53 of each DNS network's gateway (nowhere else), answers names and PTR of
//! the networks the asking container shares, forwards other names to the host's resolvers, and
//! takes `add ID` / `del ID` from setups and teardowns on `<root>/resolver/control.sock`. It
//! exits when no live container holds a name, or within a second of its state root's removal.
//! Killed, its keeper (the same binary, `ocinet::host::supervision`) starts another at once,
//! which rebuilds the same table from the records; the keeper, killed, is started again by it.

mod answer;
mod batch;
mod fast;
mod links;
mod table;
mod upstream;

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::FromRawFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use ocinet::dns::resolver::{self, DIR, LISTENING, PID_FILE, SOCKET, START_LOCK};
use ocinet::host::store::{self, StateRoot};
use ocinet::host::supervision::{self, StateDirs, Supervised, Supervision};
use ocinet::state::record::RecordStore;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

use answer::Outcome;
use table::{Entry, Table};
use upstream::Upstream;

const READY_FD: i32 = 3;
const DNS_PORT: u16 = 53;
/// How often containers killed without a teardown are looked for (and the state root).
const SWEEP: Duration = Duration::from_millis(500);
/// How long it stays with no name to answer before it leaves (a container restarted at once
/// does not restart the resolver).
const LINGER: Duration = Duration::from_secs(1);
/// A TCP client that says nothing for this long is closed.
const TCP_IDLE: Duration = Duration::from_secs(10);
/// The runtime's threads (TCP, forwarding, the control socket). Each UDP socket has its own
/// thread besides (`serve_udp`).
const WORKERS: usize = 2;

const USAGE: &str = "ocinet-resolver --root DIR [--resolv-conf PATH]";

struct Shared {
    table: RwLock<Table>,
    upstream: Upstream,
    /// The addresses listened on (a gateway each), with their network.
    listening: Mutex<HashMap<IpAddr, String>>,
    ours: RwLock<Vec<IpAddr>>,
    records: RecordStore,
    boot_id: String,
    dir: PathBuf,
    /// The state root and `dir` as they were at the start: gone, the resolver leaves.
    dirs: StateDirs,
    supervision: Supervision,
}

fn main() -> ExitCode {
    let mut root = None;
    let mut resolv_conf = PathBuf::from("/etc/resolv.conf");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--root" => root = args.next().map(PathBuf::from),
            "--resolv-conf" => match args.next() {
                Some(p) => resolv_conf = PathBuf::from(p),
                None => return fail(None, &format!("--resolv-conf needs a value; {USAGE}")),
            },
            "-h" | "--help" => {
                let _ = ocinet::host::output::stdout(format!("{USAGE}\n"));
                return ExitCode::SUCCESS;
            }
            other => return fail(None, &format!("unexpected argument {other:?}; {USAGE}")),
        }
    }
    // The hook's pipe, if it started us (fd 3 open).
    // SAFETY: fd 3 is ours when fcntl says it is open; nothing else in the process uses it.
    let ready = (unsafe { nix::libc::fcntl(READY_FD, nix::libc::F_GETFD) } >= 0)
        .then(|| unsafe { File::from_raw_fd(READY_FD) });
    let Some(root) = root else {
        return fail(ready, &format!("--root is required; {USAGE}"));
    };
    // A keeper runs its loop in here and never returns.
    let supervision = supervision::enter(&resolver::supervised(&root));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(ready, &format!("cannot start its runtime: {e}")),
    };
    let mut ready = ready;
    match runtime.block_on(run(&root, resolv_conf, &mut ready, supervision)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => fail(ready, &why),
    }
}

/// Says why on the ready pipe (the hook shows it), then in the log: the pipe first, which
/// needs no disk (the log may be on a full one).
fn fail(ready: Option<File>, why: &str) -> ExitCode {
    if let Some(mut pipe) = ready {
        let _ = writeln!(pipe, "error: {why}");
    }
    ocinet::stderr_line!("ocinet-resolver: {why}");
    ExitCode::FAILURE
}

async fn run(
    root: &Path,
    resolv_conf: PathBuf,
    ready: &mut Option<File>,
    supervision: Supervision,
) -> Result<(), String> {
    let state = StateRoot::open(root).map_err(|e| e.to_string())?;
    let dir = state.subdir(&[DIR]).map_err(|e| e.to_string())?;
    let shared = Arc::new(Shared {
        table: RwLock::new(Table::default()),
        upstream: Upstream::new(resolv_conf),
        listening: Mutex::new(HashMap::new()),
        ours: RwLock::new(Vec::new()),
        records: RecordStore::open(&state).map_err(|e| e.to_string())?,
        boot_id: ocinet::host::process::boot_id().map_err(|e| e.to_string())?,
        dir: dir.clone(),
        dirs: StateDirs::capture(&resolver::supervised(root).dirs()),
        supervision,
    });
    // The hook that started us holds the start lock: a socket file left by a killed resolver
    // is no one's.
    let socket_path = dir.join(SOCKET);
    let _ = std::fs::remove_file(&socket_path);
    // A killed resolver's word that it listened: not ours to give until we do.
    let _ = std::fs::remove_dir_all(dir.join(LISTENING));
    state.subdir(&[DIR, LISTENING]).map_err(|e| e.to_string())?;
    let control = UnixListener::bind(&socket_path)
        .map_err(|e| format!("cannot listen on {}: {e}", socket_path.display()))?;
    write_pid_file(&dir)?;
    rebuild(&shared);
    listen_on_gateways(&shared).await?;
    let count = shared.table.read().map(|t| t.len()).unwrap_or_default();
    ocinet::stderr_line!(
        "ocinet-resolver: pid {}, {count} containers with names, listening on {:?}",
        std::process::id(),
        shared.ours.read().map(|o| o.clone()).unwrap_or_default()
    );
    if let Some(mut pipe) = ready.take() {
        let _ = writeln!(pipe, "ok");
    }
    // The pipe is closed: the keeper started now does not hold it.
    shared.supervision.serving();
    tokio::spawn(sweep(shared.clone()));
    loop {
        match control.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(command(shared.clone(), stream));
            }
            Err(e) => {
                ocinet::stderr_line!("ocinet-resolver: control socket: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Every live record's names, afresh.
fn rebuild(shared: &Shared) {
    let (records, problems) = match shared.records.all() {
        Ok(all) => all,
        Err(e) => {
            ocinet::stderr_line!("ocinet-resolver: cannot read the records: {e}");
            return;
        }
    };
    for p in problems {
        ocinet::stderr_line!("ocinet-resolver: {p}");
    }
    let mut table = Table::default();
    for record in records.iter().filter(|r| !r.is_stale(&shared.boot_id)) {
        table.add(record);
    }
    if let Ok(mut t) = shared.table.write() {
        *t = table;
    }
}

/// Binds UDP and TCP port 53 on each gateway of the table not yet listened on.
async fn listen_on_gateways(shared: &Arc<Shared>) -> Result<(), String> {
    let gateways = shared
        .table
        .read()
        .map(|t| t.gateways())
        .unwrap_or_default();
    for (network, gateway) in gateways {
        let bound = shared
            .listening
            .lock()
            .map(|l| l.contains_key(&gateway))
            .unwrap_or(true);
        if bound {
            continue;
        }
        let at = SocketAddr::new(gateway, DNS_PORT);
        // Blocking: its thread waits in `recvmmsg` (see `serve_udp`).
        let udp = std::net::UdpSocket::bind(at)
            .map_err(|e| format!("cannot listen on {at}/udp (network {network}): {e}"))?;
        links::roomy(&udp);
        let tcp = TcpListener::bind(at)
            .await
            .map_err(|e| format!("cannot listen on {at}/tcp (network {network}): {e}"))?;
        // Setups that find this file need not wait for us (see `register`).
        let marker = shared.dir.join(LISTENING).join(gateway.to_string());
        store::write_atomic(&marker, b"").map_err(|e| e.to_string())?;
        if let Ok(mut l) = shared.listening.lock() {
            l.insert(gateway, network.clone());
            if let Ok(mut ours) = shared.ours.write() {
                *ours = l.keys().copied().collect();
            }
        }
        let udp = Arc::new(udp);
        let (s, net, runtime) = (
            shared.clone(),
            network.clone(),
            tokio::runtime::Handle::current(),
        );
        std::thread::Builder::new()
            .name(format!("udp {gateway}"))
            .spawn(move || serve_udp(&s, &net, &udp, &runtime))
            .map_err(|e| format!("cannot start a thread for {at}/udp: {e}"))?;
        tokio::spawn(serve_tcp(shared.clone(), network, tcp));
    }
    Ok(())
}

fn ours(shared: &Shared) -> Vec<IpAddr> {
    shared.ours.read().map(|o| o.clone()).unwrap_or_default()
}

/// One socket's questions, in batches (`batch.rs`) on a thread of its own: the common ones
/// (`fast.rs`) answered under one read of the table per batch, the others one by one as
/// before; forwarded ones go to the runtime and are answered from there when upstream
/// answers.
fn serve_udp(
    shared: &Arc<Shared>,
    network: &str,
    socket: &Arc<std::net::UdpSocket>,
    runtime: &tokio::runtime::Handle,
) {
    let mut inbox = batch::Inbox::new();
    let mut outbox = batch::Outbox::new();
    loop {
        let n = match inbox.receive(socket.as_ref()) {
            Ok(n) => n,
            Err(e) => {
                // Nothing a datagram can cause; do not spin on it.
                ocinet::stderr_line!("ocinet-resolver: receiving on {network}: {e}");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let mut slow = [false; batch::BATCH];
        if let Ok(table) = shared.table.read() {
            for (i, slow) in slow.iter_mut().enumerate().take(n) {
                let Some((query, peer)) = inbox.get(i) else {
                    continue;
                };
                let found = fast::question(query).and_then(|q| {
                    let addresses = table.found(network, peer.addr.ip(), q.name())?;
                    Some((q, addresses))
                });
                let Some((q, addresses)) = found else {
                    *slow = true;
                    continue;
                };
                // Always room: the box holds a whole batch.
                if let Some(out) = outbox.next(&peer) {
                    fast::answer_into(query, &q, addresses, answer::TTL, out);
                }
            }
        }
        // The others without the table held: a miss may add to it.
        for i in (0..n).filter(|&i| slow[i]) {
            let Some((query, peer)) = inbox.get(i) else {
                continue;
            };
            match ask(shared, network, peer.addr.ip(), query) {
                Outcome::Reply(bytes) => {
                    if let Some(out) = outbox.next(&peer) {
                        out.extend_from_slice(&bytes);
                    }
                }
                Outcome::Forward => {
                    let (shared, socket, query) = (shared.clone(), socket.clone(), query.to_vec());
                    runtime.spawn(async move {
                        let ours = ours(&shared);
                        if let Some(bytes) = shared.upstream.forward_udp(&query, &ours).await {
                            let _ = batch::send_now(socket.as_ref(), &bytes, &peer);
                        }
                    });
                }
                Outcome::Drop | Outcome::Miss { .. } => {}
            }
        }
        outbox.send(socket.as_ref());
    }
}

/// The answer to `query`, from the table; on a miss, from the state root (a setup that did
/// not wait for us has written the name's file and its record), then the table again.
fn ask(shared: &Shared, network: &str, source: IpAddr, query: &[u8]) -> Outcome {
    // The search domains only when a name is no container's as asked.
    let search = || shared.upstream.search();
    let outcome = match shared.table.read() {
        Ok(table) => answer::answer(&table, network, source, query, &search, true),
        Err(_) => return Outcome::Drop,
    };
    let Outcome::Miss { names, address } = outcome else {
        return outcome;
    };
    learn(shared, network, source, &names, address);
    match shared.table.read() {
        Ok(table) => answer::answer(&table, network, source, query, &search, false),
        Err(_) => Outcome::Drop,
    }
}

/// Adds the live containers the state root names for a question the table missed: the
/// holders of `names` on the networks with names, of `address`, and the asker at `source`.
fn learn(
    shared: &Shared,
    network: &str,
    source: IpAddr,
    names: &[String],
    address: Option<IpAddr>,
) {
    let (networks, asker_known) = match shared.table.read() {
        Ok(t) => (t.networks(), t.knows_address(network, source)),
        Err(_) => return,
    };
    let root = shared
        .dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let mut ids: Vec<String> = Vec::new();
    for net in &networks {
        for name in names
            .iter()
            .filter(|n| ocinet::validate::dns_name(n).is_ok())
        {
            if let Ok(id) = std::fs::read_to_string(root.join("names").join(net).join(name)) {
                ids.push(id.trim().to_string());
            }
        }
    }
    let lease_holder = |net: &str, ip: IpAddr| -> Option<String> {
        let text = std::fs::read_to_string(
            root.join("networks")
                .join(net)
                .join("leases")
                .join(ip.to_string()),
        )
        .ok()?;
        let lease: serde_json::Value = serde_json::from_str(&text).ok()?;
        lease.get("id")?.as_str().map(str::to_string)
    };
    if !asker_known {
        ids.extend(lease_holder(network, source));
    }
    if let Some(ip) = address {
        ids.extend(networks.iter().filter_map(|net| lease_holder(net, ip)));
    }
    for id in ids {
        if shared.table.read().map(|t| t.has(&id)).unwrap_or(true) {
            continue;
        }
        if ocinet::validate::container_id(&id).is_err() {
            continue;
        }
        if let Ok(Some(record)) = shared.records.load(&id) {
            if !record.is_stale(&shared.boot_id) {
                if let Ok(mut t) = shared.table.write() {
                    t.add(&record);
                }
            }
        }
    }
}

async fn serve_tcp(shared: Arc<Shared>, network: String, listener: TcpListener) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let (shared, network) = (shared.clone(), network.clone());
        tokio::spawn(async move {
            let _ = tokio::time::timeout(TCP_IDLE, tcp_client(shared, network, stream, peer.ip()))
                .await;
        });
    }
}

async fn tcp_client(
    shared: Arc<Shared>,
    network: String,
    mut stream: TcpStream,
    peer: IpAddr,
) -> std::io::Result<()> {
    loop {
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).await?;
        let mut query = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut query).await?;
        let outcome = ask(&shared, &network, peer, &query);
        let bytes = match outcome {
            Outcome::Reply(bytes) => bytes,
            Outcome::Forward => match shared.upstream.forward_tcp(&query, &ours(&shared)).await {
                Some(bytes) => bytes,
                None => return Ok(()),
            },
            Outcome::Drop | Outcome::Miss { .. } => return Ok(()),
        };
        let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
        let mut framed = Vec::with_capacity(bytes.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(&bytes[..usize::from(len)]);
        stream.write_all(&framed).await?;
    }
}

/// `add ID` (its record lists names: answer them, listening on its networks' gateways first),
/// `del ID` (forget them), `ping`; one line back: `ok` or `error: ...`.
async fn command(shared: Arc<Shared>, stream: UnixStream) {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(read.take(64 * 1024));
    if reader.read_line(&mut line).await.is_err() {
        return;
    }
    let answer = match line.trim().split_once(' ') {
        Some(("add", _)) => add(&shared, line.trim_end()).await,
        Some(("del", id)) => {
            if let Ok(mut t) = shared.table.write() {
                t.remove(id);
            }
            Ok(())
        }
        None if line.trim() == "ping" => Ok(()),
        _ => Err(format!("unknown command {:?}", line.trim())),
    };
    let reply = match answer {
        Ok(()) => "ok\n".to_string(),
        Err(why) => {
            ocinet::stderr_line!("ocinet-resolver: {why}");
            format!("error: {why}\n")
        }
    };
    let _ = write.write_all(reply.as_bytes()).await;
}

/// The hook's `add` carries the names, addresses and gateways (no record to read: setups
/// wait for this answer).
async fn add(shared: &Arc<Shared>, line: &str) -> Result<(), String> {
    let (id, entry) = Entry::parse(line)?;
    if let Ok(mut t) = shared.table.write() {
        t.insert(&id, entry);
    }
    listen_on_gateways(shared).await
}

/// Forgets containers gone without a teardown (killed, poststop skipped); leaves when no
/// name is left, for [`LINGER`], or when the state root is gone.
async fn sweep(shared: Arc<Shared>) {
    let mut empty_since: Option<Instant> = None;
    loop {
        tokio::time::sleep(SWEEP).await;
        if shared.dirs.gone() {
            leave(&shared, "its state root is gone");
        }
        let processes = shared
            .table
            .read()
            .map(|t| t.processes())
            .unwrap_or_default();
        for (id, process) in processes {
            let alive = match process {
                Some(p) => ocinet::host::process::is_same_process(p.pid, p.start),
                None => {
                    matches!(shared.records.load(&id), Ok(Some(r)) if !r.is_stale(&shared.boot_id))
                }
            };
            if !alive {
                if let Ok(mut t) = shared.table.write() {
                    t.remove(&id);
                }
            }
        }
        let empty = shared.table.read().map(|t| t.is_empty()).unwrap_or(false);
        if !empty {
            empty_since = None;
            continue;
        }
        let since = *empty_since.get_or_insert_with(Instant::now);
        if since.elapsed() >= LINGER {
            let s = shared.clone();
            let _ = tokio::task::spawn_blocking(move || leave_if_unneeded(&s)).await;
            empty_since = None;
        }
    }
}

fn write_pid_file(dir: &Path) -> Result<(), String> {
    let me = std::process::id() as i32;
    let start = ocinet::host::process::start_time(me).unwrap_or_default();
    store::write_atomic(&dir.join(PID_FILE), format!("{me} {start}\n").as_bytes())
        .map_err(|e| e.to_string())
}

/// Under the start lock (a setup that found no resolver waits on it, then starts one): the
/// pid file goes first (a setup reading it after this waits for our answer), then the
/// records once more: a setup that read the pid file before saved its record before, so it
/// is seen here and we stay (the pid file back); else the socket goes and the process exits.
fn leave_if_unneeded(shared: &Shared) {
    let Ok(_lock) = store::lock(&shared.dir.join(START_LOCK)) else {
        // The state root removed (the sweep sees it too), or a lock it cannot take now.
        if shared.dirs.gone() {
            leave(shared, "its state root is gone");
        }
        return;
    };
    let _ = std::fs::remove_file(shared.dir.join(PID_FILE));
    rebuild(shared);
    if !shared.table.read().map(|t| t.is_empty()).unwrap_or(false) {
        if let Err(e) = write_pid_file(&shared.dir) {
            ocinet::stderr_line!("ocinet-resolver: {e}");
        }
        return;
    }
    let _ = std::fs::remove_file(shared.dir.join(SOCKET));
    let _ = std::fs::remove_dir_all(shared.dir.join(LISTENING));
    leave(shared, "no container holds a name");
}

/// Exits on purpose: the keeper is told first, so it leaves too rather than restart it.
fn leave(shared: &Shared, why: &str) -> ! {
    shared.supervision.leaving();
    ocinet::stderr_line!("ocinet-resolver: {why}: exiting");
    std::process::exit(0);
}
