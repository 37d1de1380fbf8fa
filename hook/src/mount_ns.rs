//! A file bind-mounted over one in a container's root filesystem, from inside the container's
//! mount namespace before it pivots into it (at createRuntime/prestart runc has made its
//! mounts and not yet called pivot_root): `setns` into `/proc/PID/ns/mnt` (the hook is
//! single-threaded), the mount, `setns` back. Nothing in the image is followed out of it:
//! `etc` and the file are opened without following symbolic links, and mounted by descriptor.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{openat, OFlag};
use nix::mount::{mount, MsFlags};
use nix::sched::{setns, CloneFlags};
use nix::sys::stat::{fstat, Mode, SFlag};

use crate::error::{Error, Result};

/// Bind-mounts `source` over `<rootfs>/etc/<name>` in the mount namespace of `pid`. A missing
/// file gets an empty one as its mount point (as runc makes mount points); a `etc` or file that
/// is a symbolic link or not a regular file is refused.
pub fn bind_over_etc_file(pid: i32, rootfs: &Path, name: &str, source: &Path) -> Result<()> {
    let fail = |what: String| {
        Error::Namespace(format!(
            "cannot give container {pid} its /etc/{name}: {what}"
        ))
    };
    let ours =
        File::open("/proc/self/ns/mnt").map_err(|e| fail(format!("own mount namespace: {e}")))?;
    let theirs = File::open(format!("/proc/{pid}/ns/mnt"))
        .map_err(|e| fail(format!("its mount namespace: {e}")))?;
    setns(theirs.as_fd(), CloneFlags::CLONE_NEWNS).map_err(|e| fail(format!("setns: {e}")))?;
    // A bind mount's source must be of the caller's namespace: opened there (before
    // pivot_root the container's namespace still sees the host's paths).
    let result = nix::fcntl::open(source, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| format!("{}: {e}", source.display()))
        .and_then(|src| bind(&src, rootfs, name))
        .map_err(fail);
    // Back in any case: the rest of the hook works in its own namespace.
    let back = setns(ours.as_fd(), CloneFlags::CLONE_NEWNS);
    if let Err(e) = back {
        return Err(Error::Namespace(format!(
            "cannot return to the hook's mount namespace: {e}"
        )));
    }
    result
}

fn bind(src: &OwnedFd, rootfs: &Path, name: &str) -> std::result::Result<(), String> {
    let dir_flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let root = nix::fcntl::open(
        rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("{}: {e}", rootfs.display()))?;
    let etc = openat(&root, "etc", dir_flags, Mode::empty())
        .map_err(|e| format!("{}/etc: {e}", rootfs.display()))?;
    let file_flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let target = match openat(&etc, name, file_flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::ENOENT) => {
            let made = openat(
                &etc,
                name,
                OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_WRONLY
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o644),
            )
            .map_err(|e| format!("cannot make its mount point: {e}"))?;
            drop(made);
            openat(&etc, name, file_flags, Mode::empty()).map_err(|e| e.to_string())?
        }
        Err(e) => return Err(e.to_string()),
    };
    let stat = fstat(&target).map_err(|e| e.to_string())?;
    if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
        return Err("it is not a regular file (a symbolic link?): left alone".to_string());
    }
    let by_fd = |fd: &OwnedFd| {
        CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).map_err(|e| e.to_string())
    };
    mount(
        Some(by_fd(src)?.as_c_str()),
        by_fd(&target)?.as_c_str(),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| format!("mount: {e}"))
}
