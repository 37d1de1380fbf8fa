//! Networks only CNI configurations define (inline, no network file): each ADD leaves the
//! definition it was given in the network's state directory (`<root>/networks/<name>/cni.json`,
//! beside its leases), so that `ocinet-shim networks` lists the network as seen at its last ADD
//! and `ocinet-shim gc` retires it (bridge, firewall elements, state directories) once no record
//! uses it and no CNI configuration of the runtime names it. Retiring only then is what makes it
//! safe: a runtime starts attachments only from a configuration, so none can be on its way; and
//! a configuration put back later makes everything again at its next ADD.

use std::collections::HashSet;
use std::fs;
use std::io::ErrorKind;
use std::path::PathBuf;

use serde_json::Value;

use crate::context::Context;
use crate::engine::retire::retire_network;
use crate::error::{Error, Result};
use crate::host::store;
use crate::network::Network;
use crate::validate;

const FILE: &str = "cni.json";

fn networks_dir(ctx: &Context) -> PathBuf {
    ctx.root.path().join("networks")
}

/// Keeps `fields` (the network's fields as a CNI configuration gave them) as the network's
/// definition at its last ADD.
pub fn remember(ctx: &Context, name: &str, fields: &Value) -> Result<()> {
    let dir = ctx.root.subdir(&["networks", name])?;
    store::write_atomic(&dir.join(FILE), fields.to_string().as_bytes())
}

/// Every network a CNI ADD defined inline and no network file defines, by name.
pub fn all(ctx: &Context) -> Result<Vec<Network>> {
    let dir = networks_dir(ctx);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format!("cannot list {}", dir.display()), e)),
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|name| validate::network_name(name).is_ok())
        .collect();
    names.sort();
    let mut out = Vec::new();
    for name in names {
        if ctx.networks.load(&name)?.is_some() {
            continue;
        }
        let path = dir.join(&name).join(FILE);
        let Some(bytes) = store::read_file(&path)? else {
            continue;
        };
        let fields: Value = serde_json::from_slice(&bytes).map_err(|e| Error::NetworkConfig {
            path: path.clone(),
            reason: format!("not the JSON a CNI ADD wrote: {e}"),
        })?;
        out.push(Network::from_json(&name, &path, fields)?);
    }
    Ok(out)
}

/// Retires each network of [`all`] that `configured` (the network names of the runtime's CNI
/// configurations) does not name and no live record uses (stale ones are torn down first);
/// returns the names retired.
pub fn retire_unconfigured(ctx: &Context, configured: &HashSet<String>) -> Result<Vec<String>> {
    let (records, unreadable) = ctx.records.all()?;
    if !unreadable.is_empty() {
        // One of them may use a network: better none retired than one under a container.
        return Ok(Vec::new());
    }
    let mut retired = Vec::new();
    for network in all(ctx)? {
        let used = records
            .iter()
            .filter(|r| !r.is_stale(&ctx.boot_id))
            .any(|r| r.interfaces.iter().any(|i| i.network == network.name));
        if used || configured.contains(&network.name) {
            continue;
        }
        // Its state directories too (`cni.json` is in its `networks/<name>/`).
        retire_network(ctx, &network)?;
        retired.push(network.name);
    }
    Ok(retired)
}

/// The network names of the CNI configurations (`*.conf`, `*.conflist`, `*.json`: libcni's
/// extensions) in `dirs`; a directory that does not exist names none. A file that is not a
/// configuration with a name is an error: it might name a network, which must not be retired.
pub fn configured_names(dirs: &[PathBuf]) -> Result<HashSet<String>> {
    let mut names = HashSet::new();
    for dir in dirs {
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(format!("cannot list {}", dir.display()), e)),
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let is_config = path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| ["conf", "conflist", "json"].contains(&e));
            if !is_config || !path.is_file() {
                continue;
            }
            let bytes = store::read_file(&path)?.unwrap_or_default();
            let name = serde_json::from_slice::<Value>(&bytes)
                .ok()
                .and_then(|v| v.get("name").and_then(Value::as_str).map(str::to_string))
                .ok_or_else(|| Error::NetworkConfig {
                    path: path.clone(),
                    reason: "not a CNI configuration with a \"name\": fix or remove it".into(),
                })?;
            names.insert(name);
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::context::{options_from, Context};

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("ocinet-cni-networks-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn configurations_name_their_networks_and_a_broken_one_stops_retirement() {
        let dir = scratch("configured");
        fs::write(
            dir.join("87-podman.conflist"),
            json!({"name": "podman", "plugins": []}).to_string(),
        )
        .unwrap();
        fs::write(dir.join("n2.conf"), json!({"name": "n2"}).to_string()).unwrap();
        fs::write(dir.join("notes.txt"), "not a configuration").unwrap();
        let names = configured_names(&[dir.clone(), dir.join("none-such")]).unwrap();
        assert_eq!(
            names,
            HashSet::from(["podman".to_string(), "n2".to_string()])
        );
        fs::write(dir.join("broken.json"), "{").unwrap();
        let e = configured_names(std::slice::from_ref(&dir)).unwrap_err();
        assert!(e.to_string().contains("broken.json"), "{e}");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_inline_network_is_listed_as_last_added_unless_a_file_defines_it() {
        let dir = scratch("listed");
        let ctx = Context::open(&options_from(
            Some(dir.join("root")),
            Some(dir.join("config")),
        ))
        .unwrap();
        assert!(all(&ctx).unwrap().is_empty());
        let fields = json!({"bridge": "ocn7", "subnets": [{"subnet": "10.97.0.0/24"}]});
        remember(&ctx, "n7", &fields).unwrap();
        let listed = all(&ctx).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(
            (listed[0].name.as_str(), listed[0].bridge.as_str()),
            ("n7", "ocn7")
        );
        // A network file of the same name is the network: not one CNI alone defines.
        fs::create_dir_all(dir.join("config/networks")).unwrap();
        fs::write(dir.join("config/networks/n7.json"), fields.to_string()).unwrap();
        assert!(all(&ctx).unwrap().is_empty());
        let _ = fs::remove_dir_all(&dir);
    }
}
