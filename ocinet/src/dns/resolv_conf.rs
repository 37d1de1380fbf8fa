//! A container's /etc/resolv.conf on a DNS network: the resolver at its network's gateway as
//! the only nameserver, the host's `search` and `options` lines kept (as Docker does). The
//! file lives in the state root (`<root>/resolv/<id>.conf`) and is bind-mounted over the
//! container's (`mount_ns.rs`): the image's file on disk is not changed.

use std::net::IpAddr;
use std::path::PathBuf;

use crate::context::Context;
use crate::error::Result;
use crate::host::store;

/// The host's file, whose `search` and `options` lines containers keep.
pub(crate) const HOST_RESOLV_CONF: &str = "/etc/resolv.conf";

/// The file's text: `nameserver` first, then the host's `search` and `options` lines.
pub(crate) fn content(host: &str, nameserver: IpAddr) -> String {
    let mut text = format!("# ocinet: the names of this container's networks, then the host's resolvers\nnameserver {nameserver}\n");
    for line in host.lines().map(str::trim) {
        let word = line.split_whitespace().next().unwrap_or_default();
        if matches!(word, "search" | "domain" | "options") {
            text.push_str(line);
            text.push('\n');
        }
    }
    text
}

/// Writes `id`'s file (readable by anyone: the container's user reads it through the mount).
pub fn write(ctx: &Context, id: &str, nameserver: IpAddr) -> Result<PathBuf> {
    let host = std::fs::read_to_string(HOST_RESOLV_CONF).unwrap_or_default();
    let path = path(ctx, id)?;
    store::write_atomic_with_mode(&path, content(&host, nameserver).as_bytes(), 0o644)?;
    Ok(path)
}

pub fn path(ctx: &Context, id: &str) -> Result<PathBuf> {
    Ok(ctx.root.subdir(&["resolv"])?.join(format!("{id}.conf")))
}

/// Removes `id`'s file (idempotent).
pub(crate) fn remove(ctx: &Context, id: &str) -> Result<()> {
    store::remove_file(&path(ctx, id)?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_search_and_options() {
        let text = super::content(
            "# x\nnameserver 10.0.0.1\nsearch example.com\noptions ndots:2 timeout:1\nsortlist 1.2.3.4\n",
            "10.91.0.1".parse().unwrap(),
        );
        assert!(
            text.contains(
                "\nnameserver 10.91.0.1\nsearch example.com\noptions ndots:2 timeout:1\n"
            ),
            "{text}"
        );
        assert_eq!(text.matches("nameserver").count(), 1);
    }
}
