//! Where user networks live (`<config-dir>/networks/`): listing and loading them, the
//! network a setup joins, and the checks across networks (an inline definition against its
//! file, overlapping subnets).

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;

use super::*;
use crate::error::{Error, Result};
use crate::host::store::StateRoot;
use crate::validate;

/// Network files are a few hundred bytes; anything far larger is a mistake or an attack.
const MAX_NETWORK_FILE_BYTES: u64 = 64 * 1024;

/// Where user networks live.
#[derive(Debug, Clone)]
pub struct NetworkDirectory {
    dir: PathBuf,
}

impl NetworkDirectory {
    pub fn new(config_dir: &Path) -> NetworkDirectory {
        NetworkDirectory {
            dir: config_dir.join("networks"),
        }
    }

    pub fn path_of(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    /// The names of every user network defined here (files with invalid names are skipped:
    /// they can never be loaded).
    pub fn names(&self) -> Result<Vec<String>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(format!("cannot list {}", self.dir.display()), e)),
        };
        let mut names: Vec<String> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_str()?.strip_suffix(".json")?.to_string();
                validate::network_name(&name).ok().map(|()| name)
            })
            .collect();
        names.sort();
        Ok(names)
    }

    /// Loads a user network; `Ok(None)` when no file defines it.
    pub fn load(&self, name: &str) -> Result<Option<Network>> {
        validate::network_name(name).map_err(|reason| Error::NetworkConfig {
            path: self.dir.clone(),
            reason,
        })?;
        let path = self.path_of(name);
        let text = match read_small(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(Error::NetworkConfig {
                    path,
                    reason: e.to_string(),
                })
            }
        };
        Network::parse(name, &path, &text).map(Some)
    }

    /// A network known by name without changing anything: a user file, else the default
    /// network once its subnet is chosen (for listing, reload and teardown's masquerade).
    pub fn known(&self, root: &StateRoot, name: &str) -> Result<Option<Network>> {
        match self.load(name)? {
            Some(network) => Ok(Some(network)),
            None if name == DEFAULT_NETWORK => chosen_default_network(root),
            None => Ok(None),
        }
    }

    /// Fails unless an inline definition (a CNI configuration's) can stand for its name here:
    /// not the built-in default (its subnet is chosen per boot), the same as a file of the same
    /// name (containers of both share its leases and bridge), and an overlay only with its file
    /// (its agent reads it there).
    pub fn check_inline(&self, network: &Network) -> Result<()> {
        let path = self.path_of(&network.name);
        let refuse = |reason: String| {
            Err(Error::NetworkConfig {
                path: path.clone(),
                reason,
            })
        };
        if network.name == DEFAULT_NETWORK {
            return refuse(format!(
                "{DEFAULT_NETWORK} is the built-in default network: give no fields for it, or another name"
            ));
        }
        match self.load(&network.name)? {
            Some(file) if file != *network => refuse(format!(
                "network {} is defined here differently from the inline definition: make them the same, or give one another name",
                network.name
            )),
            None if network.driver == DriverKind::Overlay => refuse(format!(
                "overlay network {} must be defined in this file (its agent reads it there)",
                network.name
            )),
            _ => Ok(()),
        }
    }

    /// Fails when a subnet of `network` overlaps one of another network defined here (or of
    /// the default network, once chosen): their containers' addresses would collide and their
    /// routes shadow each other.
    pub fn check_no_overlap(&self, root: &StateRoot, network: &Network) -> Result<()> {
        let mut others: Vec<Network> = Vec::new();
        for name in self.names()?.into_iter().filter(|n| *n != network.name) {
            // A broken file of another network is that network's problem, not this one's.
            if let Ok(Some(other)) = self.load(&name) {
                others.push(other);
            }
        }
        if network.name != DEFAULT_NETWORK && !others.iter().any(|o| o.name == DEFAULT_NETWORK) {
            others.extend(chosen_default_network(root)?);
        }
        for other in &others {
            for mine in &network.subnets {
                if let Some(theirs) = other
                    .subnets
                    .iter()
                    .find(|s| s.subnet.contains(&mine.subnet) || mine.subnet.contains(&s.subnet))
                {
                    return Err(Error::NetworkConfig {
                        path: self.path_of(&network.name),
                        reason: format!(
                            "subnet {} overlaps network {} ({}): give each network a subnet of its own",
                            mine.subnet, other.name, theirs.subnet
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    /// The network a setup joins: a user definition wins; the default network is built in,
    /// its subnet chosen at its first use from the host's routes (`host_routes`, asked only
    /// then); anything else is unknown.
    pub fn resolve(
        &self,
        root: &StateRoot,
        name: &str,
        host_routes: &mut dyn FnMut() -> Result<Vec<Ipv4Net>>,
    ) -> Result<Network> {
        if let Some(network) = self.known(root, name)? {
            return Ok(network);
        }
        if name != DEFAULT_NETWORK {
            return Err(Error::UnknownNetwork {
                name: name.to_string(),
                path: self.path_of(name),
            });
        }
        default::resolve_default(root, host_routes, &self.path_of(DEFAULT_NETWORK))
    }
}

fn read_small(path: &Path) -> std::io::Result<String> {
    let meta = fs::metadata(path)?;
    if meta.len() > MAX_NETWORK_FILE_BYTES {
        return Err(std::io::Error::other(format!(
            "larger than {MAX_NETWORK_FILE_BYTES} bytes"
        )));
    }
    fs::read_to_string(path)
}
