//! The state root on disk: directories 0700, files 0600, writes atomic, no symlink followed.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};

/// Files in the state root are small; a huge one is corrupt, not something to read.
const MAX_STATE_FILE_BYTES: u64 = 1 << 20;

/// The root of ocinet's on-disk state (`--root`).
#[derive(Debug, Clone)]
pub struct StateRoot {
    path: PathBuf,
}

impl StateRoot {
    /// Opens the state root, creating it 0700 if needed. It must be a real directory, not a link.
    pub fn open(path: &Path) -> Result<StateRoot> {
        if !path.is_absolute() {
            return Err(Error::Usage(format!(
                "state root {path:?} must be an absolute path"
            )));
        }
        ensure_dir(path)?;
        Ok(StateRoot {
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A subdirectory of the root, created 0700 (and checked to be no symlink) on first use.
    pub fn subdir(&self, parts: &[&str]) -> Result<PathBuf> {
        let mut dir = self.path.clone();
        for part in parts {
            dir.push(part);
            ensure_dir(&dir)?;
        }
        Ok(dir)
    }
}

/// `parent/name`, created 0700 (and checked to be no symlink) if needed; `parent` is a
/// directory made by [`StateRoot::subdir`] or this.
pub(crate) fn subdir_of(parent: &Path, name: &str) -> Result<PathBuf> {
    let dir = parent.join(name);
    ensure_dir(&dir)?;
    Ok(dir)
}

/// Every setup walks these directories: look first (one syscall when they exist, as they
/// almost always do), create only when missing.
fn ensure_dir(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) => return expect_dir(path, &meta),
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(format!("cannot stat {}", path.display()), e)),
    }
    match DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => Ok(()),
        // Another hook made it meanwhile.
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            let meta =
                fs::symlink_metadata(path).context(|| format!("cannot stat {}", path.display()))?;
            expect_dir(path, &meta)
        }
        Err(e) if e.kind() == ErrorKind::NotFound => DirBuilder::new()
            .mode(0o700)
            .recursive(true)
            .create(path)
            .context(|| format!("cannot create state directory {}", path.display())),
        Err(e) => Err(Error::io(format!("cannot create {}", path.display()), e)),
    }
}

fn expect_dir(path: &Path, meta: &fs::Metadata) -> Result<()> {
    if !meta.is_dir() {
        return Err(Error::Corrupt {
            path: path.to_path_buf(),
            reason: "expected a directory (symlinks are not followed)".to_string(),
        });
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically: a private temp file beside it, then rename. Readers
/// (and a hook killed halfway) see the old file or the new one, never a part.
///
/// No fsync: every record, lease and claim carries the boot id, and one written before a power
/// loss or kernel crash is stale after the reboot whatever its content (teardown of a previous
/// boot's record finds nothing to undo; its lease and claims are free again). Durability across
/// a crash of the machine therefore buys nothing, and fsync was the largest single cost of a
/// setup (three files per setup; figures in bench/README.md).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with_mode(path, bytes, STATE_FILE_MODE)
}

/// The mode of state files: the state root is root's alone.
const STATE_FILE_MODE: u32 = 0o600;

/// As [`write_atomic`], the file getting `mode` whatever the umask (the shim keeps a
/// rewritten config.json's).
pub fn write_atomic_with_mode(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let tmp = temp_path(path);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc_o_nofollow())
            .open(&tmp)?;
        file.write_all(bytes)?;
        // A umask only takes bits away; state files need none of those it commonly takes.
        if mode != STATE_FILE_MODE {
            file.set_permissions(fs::Permissions::from_mode(mode))?;
        }
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.context(|| format!("cannot write {}", path.display()))
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp.{}", std::process::id()))
}

/// Reads a small state file without following a symlink; `Ok(None)` if it does not exist.
pub(crate) fn read_file(path: &Path) -> Result<Option<Vec<u8>>> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc_o_nofollow())
        .open(path);
    let file = match file {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => {
            return Err(Error::Corrupt {
                path: path.to_path_buf(),
                reason: "is a symlink, which ocinet never follows in its state root".to_string(),
            })
        }
        Err(e) => return Err(Error::io(format!("cannot open {}", path.display()), e)),
    };
    let mut buf = Vec::new();
    file.take(MAX_STATE_FILE_BYTES + 1)
        .read_to_end(&mut buf)
        .context(|| format!("cannot read {}", path.display()))?;
    if buf.len() as u64 > MAX_STATE_FILE_BYTES {
        return Err(Error::Corrupt {
            path: path.to_path_buf(),
            reason: format!("larger than {MAX_STATE_FILE_BYTES} bytes"),
        });
    }
    Ok(Some(buf))
}

/// Reads a state file of any size (the activity log) without following a symlink.
pub(crate) fn read_file_unbounded(path: &Path) -> Result<Option<Vec<u8>>> {
    match OpenOptions::new()
        .read(true)
        .custom_flags(libc_o_nofollow())
        .open(path)
    {
        Ok(mut file) => {
            let mut buf = Vec::new();
            file.read_to_end(&mut buf)
                .context(|| format!("cannot read {}", path.display()))?;
            Ok(Some(buf))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("cannot open {}", path.display()), e)),
    }
}

/// Reads a JSON state file; `Ok(None)` if it does not exist, `Error::Corrupt` if it does not parse.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    let Some(bytes) = read_file(path)? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Error::Corrupt {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
}

/// Writes a JSON state file atomically (see [`write_atomic`]).
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let bytes = serde_json::to_vec(value).map_err(|e| Error::Corrupt {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    write_atomic(path, &bytes)
}

/// Removes a file; a missing one is fine (teardown is idempotent).
pub fn remove_file(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(format!("cannot remove {}", path.display()), e)),
    }
}

/// Removes a directory and everything in it; a missing one is fine (idempotent). A link in its
/// place is refused, not followed.
pub(crate) fn remove_tree(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(Error::Corrupt {
                path: path.to_path_buf(),
                reason: "expected a directory (symlinks are not followed)".to_string(),
            })
        }
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(format!("cannot stat {}", path.display()), e)),
    }
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(format!("cannot remove {}", path.display()), e)),
    }
}

/// An exclusive lock on `path` (created 0600), held until the returned file is dropped.
pub fn lock(path: &Path) -> Result<File> {
    let file = open_lock_file(path)?;
    file.lock()
        .context(|| format!("cannot lock {}", path.display()))?;
    Ok(file)
}

/// As [`lock`], but `None` at once when another process holds the lock.
pub(crate) fn try_lock(path: &Path) -> Result<Option<File>> {
    let file = open_lock_file(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(fs::TryLockError::WouldBlock) => Ok(None),
        Err(fs::TryLockError::Error(e)) => {
            Err(Error::io(format!("cannot lock {}", path.display()), e))
        }
    }
}

fn open_lock_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc_o_nofollow())
        .open(path)
        .context(|| format!("cannot open lock {}", path.display()))
}

fn libc_o_nofollow() -> i32 {
    nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn temp_root(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ocinet-store-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn root_and_files_are_private() {
        let dir = temp_root("private");
        let root = StateRoot::open(&dir.join("nested")).unwrap();
        let sub = root.subdir(&["a", "b"]).unwrap();
        let file = sub.join("f.json");
        write_atomic(&file, b"{}").unwrap();
        assert_eq!(read_file(&file).unwrap().unwrap(), b"{}");
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(root.path()), 0o700);
        assert_eq!(mode(&sub), 0o700);
        assert_eq!(mode(&file), 0o600);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn symlinks_are_not_followed() {
        let dir = temp_root("links");
        let root = StateRoot::open(&dir).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", dir.join("link")).unwrap();
        assert!(read_file(&dir.join("link")).is_err());
        std::os::unix::fs::symlink("/tmp", dir.join("sub")).unwrap();
        assert!(root.subdir(&["sub"]).is_err());
        assert!(read_file(&dir.join("missing")).unwrap().is_none());
        fs::remove_dir_all(&dir).unwrap();
    }
}
