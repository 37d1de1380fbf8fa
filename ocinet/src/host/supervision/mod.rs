//! Keeping the helpers that ocinet starts on demand (the resolver, an overlay network's agent,
//! any later one) running between setups. A helper and its keeper, a small process of the same
//! binary, are a pair joined by a link (`link.rs`): each sees at once when the other dies, and
//! starts it again, so a SIGKILL of either is repaired in milliseconds with no container
//! starting, and no single kill ends the supervision (both at once leave the helper to the next
//! setup, as before there was a keeper). A helper restarted soon after its start, again and
//! again, waits longer each time (`backoff.rs`).
//!
//! The keeper (`keeper.rs`) restarts the helper as a setup starts it: under the lock setups
//! hold for that, only when no other runs and something still needs it, waiting for its word.
//! The helper starts its keeper once it serves and restarts it whenever it dies (`watch.rs`).
//! Each leaves on purpose saying `bye` on the link, so the other does not restart it: the
//! helper when nothing needs it any more (its keeper then exits too: no process is left), the
//! keeper when the state root is gone (`dirs.rs`). Neither holds the runtime's stdio: the
//! keeper's are the helper's (its log, /dev/null).
//!
//! A helper's `main` calls [`enter`] with what its keeper needs to know of it (a
//! [`Supervised`]) once it has parsed its arguments (in a keeper, `enter` never returns), then
//! [`Supervision::serving`] once it serves and [`Supervision::leaving`] before it exits on
//! purpose.

mod backoff;
mod dirs;
mod keeper;
mod link;
mod watch;

use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use dirs::StateDirs;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::error::Result;
use crate::host::helper::{self, ROLE_ENV};
use crate::host::process;
use link::Link;

/// The roles of a process started by its partner (the value of `ROLE_ENV`); its link is on
/// [`LINK_FD`].
const KEEPER: &str = "keeper";
const KEPT: &str = "kept";
/// Where a process started by its partner finds its end of the link.
const LINK_FD: i32 = 4;
/// How often a waiting keeper or helper looks at the state root (and, in a keeper waiting to
/// restart the helper, whether anything still needs it).
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Held while a helper is started; released when dropped.
pub type StartGuard = Box<dyn std::any::Any>;

/// What a keeper needs to know of the helper it keeps.
pub trait Supervised {
    /// The helper's binary name (`ocinet-resolver`): its process title and its log's lines.
    fn name(&self) -> &str;
    /// The directories it lives in (the state root, its own): when one is removed, the helper
    /// and its keeper leave.
    fn dirs(&self) -> Vec<PathBuf>;
    /// The lock a setup holds while it starts the helper: held by the keeper while it restarts
    /// one, so that no setup starts a second meanwhile.
    fn start_lock(&self) -> Result<StartGuard>;
    /// Whether a live helper runs (one a setup started after this keeper's died).
    fn running(&self) -> bool;
    /// Whether anything still needs the helper (a live container): none is restarted otherwise.
    fn needed(&self) -> bool;
    /// How long a start may take before the helper says `ok`.
    fn start_timeout(&self) -> Duration;
}

/// The helper's side of its supervision; inert in a helper run by hand.
#[derive(Clone, Default)]
pub struct Supervision {
    shared: Option<Arc<Shared>>,
}

struct Shared {
    name: String,
    dirs: Vec<PathBuf>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    leaving: bool,
    /// The link to the keeper that started this helper, until the helper serves.
    inherited: Option<Link>,
    /// A handle on the current link, for `bye`.
    to_keeper: Option<Link>,
}

/// Sets the process's part in its supervision. In a keeper this runs the keeper and exits;
/// in a helper it returns the helper's side: started by a setup (its word on fd 3), it will
/// start a keeper; started by its keeper, it has one; run by hand, it is not supervised.
pub fn enter(helper: &dyn Supervised) -> Supervision {
    let role = std::env::var(ROLE_ENV).unwrap_or_default();
    let inherited = match role.as_str() {
        KEEPER | KEPT => match Link::inherited(LINK_FD) {
            Ok(link) => Some(link),
            Err(why) => {
                crate::stderr_line!("{}: {why}", title(helper.name(), &role));
                if role == KEEPER {
                    std::process::exit(1);
                }
                None
            }
        },
        _ => None,
    };
    if role == KEEPER {
        if let Some(link) = inherited {
            keeper::run(helper, link);
        }
    }
    // SAFETY: F_GETFD only asks whether the descriptor exists.
    let started = unsafe { nix::libc::fcntl(helper::READY_FD, nix::libc::F_GETFD) } >= 0;
    if inherited.is_none() && !started {
        return Supervision::default();
    }
    Supervision {
        shared: Some(Arc::new(Shared {
            name: helper.name().to_string(),
            dirs: helper.dirs(),
            state: Mutex::new(State {
                inherited,
                ..State::default()
            }),
        })),
    }
}

impl Supervision {
    /// The helper serves (it has said `ok`, its ready pipe is closed): from now on its keeper
    /// restarts it if it dies, and it restarts its keeper.
    pub fn serving(&self) {
        let Some(shared) = &self.shared else { return };
        let inherited = match shared.state.lock() {
            Ok(mut state) => {
                let inherited = state.inherited.take();
                state.to_keeper = inherited.as_ref().and_then(|l| l.try_clone().ok());
                inherited
            }
            Err(_) => return,
        };
        let shared = shared.clone();
        let started = std::thread::Builder::new()
            .name("keeper".to_string())
            .spawn(move || watch::run(&shared, inherited));
        if let Err(e) = started {
            crate::stderr_line!("cannot watch its keeper: {e}");
        }
    }

    /// The helper exits on purpose (nothing needs it, or it was asked to): its keeper exits
    /// too rather than restart it. Said before the exit.
    pub fn leaving(&self) {
        let Some(shared) = &self.shared else { return };
        if let Ok(mut state) = shared.state.lock() {
            state.leaving = true;
            if let Some(link) = state.to_keeper.as_ref().or(state.inherited.as_ref()) {
                link.bye();
            }
        }
    }
}

/// The process title of a helper's keeper, or the helper's own name.
fn title(name: &str, role: &str) -> String {
    match role {
        KEEPER => format!("{name}-keeper"),
        _ => name.to_string(),
    }
}

/// The other process of a pair, as one of them sees it.
struct Partner {
    link: Link,
    /// Present when this process started it (it is reaped here).
    child: Option<Child>,
    pid: Option<i32>,
    /// For one this process did not start: a pidfd, readable once every thread of it has
    /// exited, or where there is none its start time, to see its death in /proc.
    pidfd: Option<OwnedFd>,
    start: Option<u64>,
    /// When this process started it.
    since: Option<Instant>,
}

/// How long a partner whose end of the link closed may take to be dead in /proc too.
const EXIT_WAIT: Duration = Duration::from_secs(5);

impl Partner {
    /// The process that made `link` and started this one.
    fn adopted(link: Link) -> Partner {
        let pid = link.maker_pid();
        Partner {
            pidfd: pid.and_then(pidfd),
            start: pid.and_then(process::start_time),
            pid,
            link,
            child: None,
            since: None,
        }
    }

    /// `child`, started by this process at `since`.
    fn started(link: Link, child: Child, since: Instant) -> Partner {
        Partner {
            link,
            pid: i32::try_from(child.id()).ok(),
            child: Some(child),
            pidfd: None,
            start: None,
            since: Some(since),
        }
    }

    /// How long it ran; unknown (a helper a setup started) counts as long.
    fn ran(&self) -> Duration {
        self.since.map_or(Duration::MAX, |s| s.elapsed())
    }

    /// Once its end of the link has closed: waits until it is dead, every thread of it (its
    /// descriptors close before it is marked dead, and its other threads, holding its sockets,
    /// may outlive the main one: a keeper must neither take it for a helper that still runs
    /// nor start one that finds its port taken), and says how it ended, "ocinet-resolver
    /// (pid 12) was killed by signal 9 (SIGKILL)".
    fn obituary(&mut self, who: &str) -> String {
        let pid = self.pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
        // Ours: reaped, which the kernel allows once its last thread has exited.
        let how = match self.child.as_mut().map(Child::wait) {
            Some(Ok(status)) => helper::ended(status),
            _ => {
                self.wait_exit();
                "died".to_string()
            }
        };
        format!("{who}{pid} {how}")
    }

    /// Waits up to [`EXIT_WAIT`] for a partner that is not this process's child to be dead.
    fn wait_exit(&self) {
        if let Some(fd) = &self.pidfd {
            let millis = u16::try_from(EXIT_WAIT.as_millis()).unwrap_or(u16::MAX);
            let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
            while let Err(nix::errno::Errno::EINTR) = poll(&mut fds, PollTimeout::from(millis)) {}
            return;
        }
        if let (Some(pid), Some(start)) = (self.pid, self.start) {
            let deadline = Instant::now() + EXIT_WAIT;
            while process::is_same_process(pid, start) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

/// A pidfd of `pid` (close-on-exec), if the kernel has them (Linux 5.3).
fn pidfd(pid: i32) -> Option<OwnedFd> {
    // SAFETY: a plain system call; the descriptor it returns, if any, is this process's alone.
    let fd = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, pid, 0) };
    let fd = i32::try_from(fd).ok().filter(|fd| *fd >= 0)?;
    // SAFETY: just opened, owned by nothing else.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// This binary, with this process's arguments, in `role`, titled for it. The binary by its
/// path, unless that was replaced meanwhile (then the one running).
fn partner_command(name: &str, role: &str) -> Command {
    let binary = std::env::current_exe()
        .ok()
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("/proc/self/exe"));
    let mut cmd = Command::new(binary);
    cmd.arg0(title(name, role))
        .args(std::env::args_os().skip(1))
        .env(ROLE_ENV, role)
        .stdin(Stdio::null());
    cmd
}

/// Sleeps `total` in steps of at most [`CHECK_EVERY`], as long as `go_on` holds; whether it
/// still holds at the end.
fn pause(total: Duration, mut go_on: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + total;
    loop {
        if !go_on() {
            return false;
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(CHECK_EVERY));
    }
}

/// "0.5 s" for a log line.
fn seconds(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}
