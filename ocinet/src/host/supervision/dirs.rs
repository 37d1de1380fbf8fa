//! The directories a helper lives in (the state root, its own directory), as they were when it
//! started. Removed or replaced (a user clearing the state root, a test or benchmark removing
//! its own), nothing of the helper's is left to serve: it and its keeper leave, releasing what
//! they hold (sockets, a network namespace kept alive, an overlay's lease).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Each directory, held open: a removed directory keeps its inode while held (its link count
/// 0), so a new one at the same path never has its inode number, and a removal is never
/// missed between two looks.
#[derive(Debug)]
pub struct StateDirs {
    dirs: Vec<(PathBuf, Option<File>)>,
}

fn open_dir(path: &Path) -> Option<File> {
    OpenOptions::new()
        .read(true)
        // Not followed: ocinet makes no link in its state root.
        .custom_flags(nix::libc::O_DIRECTORY | nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(path)
        .ok()
}

impl StateDirs {
    /// The directories as they are now; one that does not exist counts as gone already.
    pub fn capture(paths: &[PathBuf]) -> StateDirs {
        StateDirs {
            dirs: paths.iter().map(|p| (p.clone(), open_dir(p))).collect(),
        }
    }

    /// Whether one of them is removed, or another directory stands in its place.
    pub fn gone(&self) -> bool {
        self.dirs.iter().any(|(path, held)| {
            let Some(Ok(held)) = held.as_ref().map(File::metadata) else {
                return true;
            };
            let now = std::fs::symlink_metadata(path);
            held.nlink() == 0
                || !now.is_ok_and(|now| (now.dev(), now.ino()) == (held.dev(), held.ino()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_removed_or_replaced_directory_is_gone() {
        let root = std::env::temp_dir().join(format!("ocinet-dirs-{}", std::process::id()));
        let own = root.join("resolver");
        std::fs::create_dir_all(&own).unwrap();
        let dirs = StateDirs::capture(&[root.clone(), own.clone()]);
        assert!(!dirs.gone());
        std::fs::remove_dir(&own).unwrap();
        assert!(dirs.gone(), "removed");
        std::fs::create_dir(&own).unwrap();
        assert!(dirs.gone(), "made again: another directory");
        assert!(!StateDirs::capture(&[root.clone(), own]).gone());
        std::fs::remove_dir_all(&root).unwrap();
        assert!(StateDirs::capture(&[root]).gone(), "missing from the start");
    }
}
