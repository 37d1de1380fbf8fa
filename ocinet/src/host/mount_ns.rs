//! A file bind-mounted over one in a container's root filesystem, from inside the container's
//! mount namespace before it pivots into it (at createRuntime/prestart runc has made its
//! mounts and not yet called pivot_root): `setns` into `/proc/PID/ns/mnt` (the hook is
//! single-threaded), the mount, `setns` back. Nothing in the image is followed out of it:
//! `etc` and the file are opened without following symbolic links, and the mount is made by
//! descriptors (`open_tree` a detached copy of the source, `move_mount` it onto the opened
//! target: no path is resolved again, and no /proc is needed, which a namespace may lack).

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::fcntl::{openat, OFlag};
use nix::libc;
use nix::sched::{setns, CloneFlags};
use nix::sys::stat::{fstat, Mode, SFlag};

use crate::error::{Error, Result};

const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;

/// What happened.
#[derive(Debug, PartialEq, Eq)]
pub enum Bound {
    Mounted,
    /// The process shares the hook's mount namespace (not a container's own): nothing done,
    /// the host's files are not the container's to cover.
    SharedNamespace,
}

/// Bind-mounts `source` over `<rootfs>/etc/<name>` in the mount namespace of `pid`. A missing
/// file gets an empty one as its mount point (as runc makes mount points); a `etc` or file that
/// is a symbolic link or not a regular file is refused.
pub fn bind_over_etc_file(pid: i32, rootfs: &Path, name: &str, source: &Path) -> Result<Bound> {
    let fail = |what: String| {
        Error::Namespace(format!(
            "cannot give container {pid} its /etc/{name}: {what}"
        ))
    };
    let ours =
        File::open("/proc/self/ns/mnt").map_err(|e| fail(format!("own mount namespace: {e}")))?;
    let theirs = File::open(format!("/proc/{pid}/ns/mnt"))
        .map_err(|e| fail(format!("its mount namespace: {e}")))?;
    let same = |a: &File, b: &File| match (a.metadata(), b.metadata()) {
        (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
        _ => false,
    };
    if same(&ours, &theirs) {
        return Ok(Bound::SharedNamespace);
    }
    // A detached copy of the source, made here: it can be attached in another namespace.
    let tree = open_tree(source).map_err(|e| fail(format!("{}: {e}", source.display())))?;
    setns(theirs.as_fd(), CloneFlags::CLONE_NEWNS).map_err(|e| fail(format!("setns: {e}")))?;
    let result = attach(&tree, rootfs, name).map_err(fail);
    // Back in any case: the rest of the hook works in its own namespace.
    let back = setns(ours.as_fd(), CloneFlags::CLONE_NEWNS);
    if let Err(e) = back {
        return Err(Error::Namespace(format!(
            "cannot return to the hook's mount namespace: {e}"
        )));
    }
    result.map(|()| Bound::Mounted)
}

fn open_tree(path: &Path) -> std::io::Result<OwnedFd> {
    let path = CString::new(path.as_os_str().as_encoded_bytes()).map_err(std::io::Error::other)?;
    // SAFETY: a plain system call on a valid C string; the descriptor returned is ours.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            path.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just gave us this descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn move_mount(tree: &OwnedFd, target: &OwnedFd) -> std::io::Result<()> {
    let empty = c"";
    // SAFETY: a plain system call on two descriptors we own and empty paths.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            empty.as_ptr(),
            target.as_raw_fd(),
            empty.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn attach(tree: &OwnedFd, rootfs: &Path, name: &str) -> std::result::Result<(), String> {
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
    move_mount(tree, &target).map_err(|e| format!("mount: {e}"))
}
