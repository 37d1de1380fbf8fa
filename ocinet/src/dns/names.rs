//! Containers' DNS names per network: `io.ocinet.name` (default: the container id) and
//! `io.ocinet.aliases`, validated; who holds which name on which network, in the state root
//! (`<root>/names/<network>/<name>`: the holder's id), so that a name held by a live container
//! is refused to another. The resolver (`ocinet-resolver`) answers from the records, which list
//! the names each interface holds; these files only decide who may hold one.

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::host::store::{self, StateRoot};
use crate::validate;

pub(crate) const NAME_ANNOTATION: &str = "io.ocinet.name";
pub(crate) const ALIASES_ANNOTATION: &str = "io.ocinet.aliases";

/// The most aliases one container gives (Docker sets no limit; a long list is a mistake).
pub const MAX_ALIASES: usize = 32;
/// Ids longer than this are not names: the short id is (Docker's first 12 characters).
const SHORT_ID_LEN: usize = 12;

/// The names a container asks for, as the annotations give them (validated).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsNames {
    pub name: Option<String>,
    pub aliases: Vec<String>,
}

impl DnsNames {
    pub fn parse(name: Option<&str>, aliases: Option<&str>) -> Result<DnsNames> {
        let bad = |key: &'static str, value: &str, reason: String| Error::Annotation {
            key,
            value: value.to_string(),
            reason,
        };
        if let Some(n) = name {
            validate::dns_name(n).map_err(|r| bad(NAME_ANNOTATION, n, r))?;
        }
        let mut list = Vec::new();
        if let Some(value) = aliases {
            for alias in value.split(',').map(str::trim) {
                validate::dns_name(alias).map_err(|r| bad(ALIASES_ANNOTATION, value, r))?;
                list.push(alias.to_string());
            }
            if list.len() > MAX_ALIASES {
                return Err(bad(
                    ALIASES_ANNOTATION,
                    value,
                    format!("{} aliases, at most {MAX_ALIASES}", list.len()),
                ));
            }
        }
        Ok(DnsNames {
            name: name.map(str::to_string),
            aliases: list,
        })
    }

    /// Every name the container holds on a DNS network, lower case, each once, its name first.
    /// Without `io.ocinet.name`, the front end's default (the hook: the container id, or its
    /// first 12 characters when the id is no DNS name, as Docker's short ids).
    pub fn all(&self, default_id: Option<&str>) -> Vec<String> {
        let default = match (&self.name, default_id) {
            (Some(_), _) | (None, None) => None,
            (None, Some(id)) => [id, id.get(..SHORT_ID_LEN).unwrap_or(id)]
                .into_iter()
                .find(|n| validate::dns_name(n).is_ok())
                .map(str::to_string),
        };
        let mut names: Vec<String> = Vec::new();
        for n in self.name.iter().chain(default.iter()).chain(&self.aliases) {
            let n = n.to_ascii_lowercase();
            if !names.contains(&n) {
                names.push(n);
            }
        }
        names
    }
}

/// One network's names in the state root, locked while held.
pub(crate) struct NetworkNames {
    dir: PathBuf,
    _lock: std::fs::File,
}

impl NetworkNames {
    /// Locks the network's names (setups and teardowns of the network wait for each other
    /// only here, for a few file operations).
    pub fn lock(root: &StateRoot, network: &str) -> Result<NetworkNames> {
        let dir = root.subdir(&["names", network])?;
        let lock = store::lock(&dir.join(".lock"))?;
        Ok(NetworkNames { dir, _lock: lock })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The id holding `name`, if any (maybe a container that is gone).
    pub(crate) fn holder(&self, name: &str) -> Result<Option<String>> {
        Ok(store::read_file(&self.path(name))?
            .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_string()))
    }

    /// Refuses the first of `names` held by another container of this network that `holds`
    /// (holder, name) says still holds it (live, its record listing it); others lose it.
    pub(crate) fn check_free(
        &self,
        network: &str,
        id: &str,
        names: &[String],
        holds: &dyn Fn(&str, &str) -> bool,
    ) -> Result<()> {
        for name in names {
            let Some(holder) = self.holder(name)? else {
                continue;
            };
            if holder == id {
                continue;
            }
            if holds(&holder, name) {
                return Err(Error::NameTaken {
                    name: name.clone(),
                    network: network.to_string(),
                    holder,
                });
            }
        }
        Ok(())
    }

    /// Writes `id` as the holder of each of `names` (the record lists them already).
    pub(crate) fn take(&self, id: &str, names: &[String]) -> Result<()> {
        for name in names {
            store::write_atomic(&self.path(name), id.as_bytes())?;
        }
        Ok(())
    }

    /// Removes those of `names` that `id` holds (idempotent; another holder keeps its own).
    pub(crate) fn release(&self, id: &str, names: &[String]) -> Result<()> {
        for name in names {
            if self.holder(name)?.as_deref() == Some(id) {
                store::remove_file(&self.path(name))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases() {
        let n = DnsNames::parse(Some("Web"), Some("www, site.local,web")).unwrap();
        assert_eq!(n.all(Some("c1")), ["web", "www", "site.local"]);
        let n = DnsNames::parse(None, None).unwrap();
        assert_eq!(n.all(Some("Db1")), ["db1"]);
        assert!(n.all(None).is_empty());
        let long = "a".repeat(64);
        assert_eq!(n.all(Some(&long)), ["aaaaaaaaaaaa"]);
        assert!(n.all(Some("+x")).is_empty());
        for (name, aliases) in [
            (Some("-web"), None),
            (Some("web-"), None),
            (Some("we b"), None),
            (Some(""), None),
            (Some("a..b"), None),
            (Some("10.0.0.1"), None),
            (Some("../x"), None),
            (None, Some("ok,bad/alias")),
            (None, Some("ok,")),
        ] {
            let err = DnsNames::parse(name, aliases).unwrap_err().to_string();
            assert!(err.contains("not a DNS name"), "{err}");
            assert_eq!(err.lines().count(), 1);
        }
        let many = (0..=MAX_ALIASES)
            .map(|i| format!("a{i}"))
            .collect::<Vec<_>>();
        assert!(DnsNames::parse(None, Some(&many.join(","))).is_err());
        let label = "a".repeat(63);
        assert!(DnsNames::parse(Some(&label), None).is_ok());
        assert!(DnsNames::parse(Some(&format!("{label}a")), None).is_err());
    }
}
