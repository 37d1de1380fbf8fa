//! Names a running container's namespace for `ip netns` (`ocinet-<short id>` in /run/netns), so
//! users can inspect it as they would a Docker container's (`ip netns exec ocinet-web ip addr`).

use std::fs::{self, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::error::{Error, Result};
use crate::host::naming;

/// Where `ip netns` looks for named namespaces.
pub(crate) const NETNS_DIR: &str = "/run/netns";
/// Ids up to this length are used whole (`ocinet-web`).
const WHOLE_ID_LEN: usize = 32;
/// Longer ids are shortened as Docker shortens them, to 12 characters.
const SHORT_ID_LEN: usize = 12;

/// The `ip netns` name of a container: `ocinet-<id>` for a short id; `ocinet-<first 12>` for a
/// long hex id (podman's and containerd's); other long ids add a hash of the whole id, so two
/// ids with one prefix never share a name.
pub(crate) fn name_for(id: &str) -> String {
    if id.len() <= WHOLE_ID_LEN {
        return format!("ocinet-{id}");
    }
    let short: String = id.chars().take(SHORT_ID_LEN).collect();
    if id.bytes().all(|b| b.is_ascii_hexdigit()) {
        format!("ocinet-{short}")
    } else {
        format!(
            "ocinet-{short}-{:06x}",
            naming::stable_hash(id.as_bytes()) & 0xff_ffff
        )
    }
}

fn path_of(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

/// Bind-mounts the namespace file `source` at /run/netns/<name>. The name is the id's, so one already
/// there is a leftover of an earlier container with this id (the engine has refused a live one)
/// and is replaced.
pub(crate) fn bind(source: &Path, name: &str) -> Result<()> {
    let target = path_of(name);
    let fail = |what: &str, e: String| {
        Error::Namespace(format!(
            "cannot name the network namespace {} ({what}: {e})",
            target.display()
        ))
    };
    fs::create_dir_all(NETNS_DIR).map_err(|e| fail("mkdir", e.to_string()))?;
    let create = || {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o444)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&target)
    };
    match create() {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            unbind(name)?;
            create().map_err(|e| fail("create", e.to_string()))?;
        }
        Err(e) => return Err(fail("create", e.to_string())),
    }
    if let Err(e) = mount(
        Some(source),
        &target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    ) {
        let _ = fs::remove_file(&target);
        return Err(fail("mount", e.to_string()));
    }
    Ok(())
}

/// Removes the name; an absent one is fine (teardown is idempotent).
pub(crate) fn unbind(name: &str) -> Result<()> {
    let target = path_of(name);
    // EINVAL: not a mount point (already unmounted); ENOENT: already gone.
    match umount2(&target, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => {
            return Err(Error::Namespace(format!(
                "cannot unmount {}: {e}",
                target.display()
            )))
        }
    }
    match fs::remove_file(&target) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(format!("cannot remove {}", target.display()), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names() {
        assert_eq!(name_for("web"), "ocinet-web");
        let hex = "0123456789abcdef".repeat(4);
        assert_eq!(name_for(&hex), "ocinet-0123456789ab");
        // Long non-hex ids with one prefix get different names, short enough for a file name.
        let a = name_for(&format!("{}-a", "my-container-".repeat(3)));
        let b = name_for(&format!("{}-b", "my-container-".repeat(3)));
        assert_ne!(a, b);
        assert!(a.starts_with("ocinet-my-container"));
        assert!(name_for(&"x".repeat(256)).len() <= 26);
    }
}
