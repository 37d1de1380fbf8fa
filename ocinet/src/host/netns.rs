//! Network namespaces: open one, tell two apart, and run code inside one on this thread.
//! `setns` moves only the calling thread, which is why the engine is single-threaded.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::sched::{setns, CloneFlags};

use crate::error::{Error, IoContext, Result};

/// A container's network namespace as a front end names it: the OCI hook by the container's
/// process, CNI and Docker by a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetnsRef {
    Pid(i32),
    Path(PathBuf),
    /// The container's end of a veth stays in the engine's own namespace, under the
    /// interface's name and unconfigured, for the runtime to move into the container and
    /// address (Docker's network plugins: the container's namespace may not exist yet at Join).
    /// The path is a file that exists exactly while the runtime holds the attachment (the
    /// Docker plugin's endpoint file); the record keeps it as its `netns_path`, so the record
    /// is stale once it is gone, as a CNI record whose namespace is gone.
    Handover(PathBuf),
}

impl NetnsRef {
    /// The namespace file.
    pub fn path(&self) -> PathBuf {
        match self {
            NetnsRef::Pid(pid) => PathBuf::from(format!("/proc/{pid}/ns/net")),
            NetnsRef::Path(path) | NetnsRef::Handover(path) => path.clone(),
        }
    }

    pub(crate) fn open(&self) -> Result<Netns> {
        match self {
            NetnsRef::Pid(pid) => Netns::of_pid(*pid),
            NetnsRef::Path(path) => Netns::open(path),
            // Where the container's end is made.
            NetnsRef::Handover(_) => Netns::current(),
        }
    }

    /// True when the runtime moves and configures the container's end itself.
    pub(crate) fn is_handover(&self) -> bool {
        matches!(self, NetnsRef::Handover(_))
    }
}

#[derive(Debug)]
pub(crate) struct Netns {
    file: File,
}

/// (device, inode) of a namespace file: equal ids mean the same namespace.
pub(crate) type NetnsId = (u64, u64);

impl Netns {
    pub fn open(path: &Path) -> Result<Netns> {
        let file = File::open(path)
            .context(|| format!("cannot open network namespace {}", path.display()))?;
        Ok(Netns { file })
    }

    pub(crate) fn of_pid(pid: i32) -> Result<Netns> {
        let path = format!("/proc/{pid}/ns/net");
        File::open(&path)
            .map(|file| Netns { file })
            .map_err(|e| {
                Error::Namespace(format!(
                    "cannot open the network namespace of process {pid} ({e}): is the container running?"
                ))
            })
    }

    /// The namespace this thread is in now.
    pub(crate) fn current() -> Result<Netns> {
        Netns::open(Path::new("/proc/thread-self/ns/net"))
    }

    pub(crate) fn id(&self) -> Result<NetnsId> {
        let meta = self
            .file
            .metadata()
            .context(|| "cannot stat a network namespace".to_string())?;
        Ok((meta.dev(), meta.ino()))
    }

    pub(crate) fn raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// Runs `f` with this thread inside the namespace, then returns to where it was.
    pub(crate) fn run_inside<T>(&self, f: impl FnOnce() -> T) -> Result<T> {
        let home = Netns::current()?;
        setns(self.file.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|e| {
            Error::Namespace(format!(
                "cannot enter the container's network namespace: {e}"
            ))
        })?;
        let out = f();
        if let Err(e) = setns(home.file.as_fd(), CloneFlags::CLONE_NEWNET) {
            // Going on in the wrong namespace could change the container instead of the host.
            crate::stderr_line!("ocinet: cannot return to the host network namespace: {e}");
            std::process::abort();
        }
        Ok(out)
    }
}
