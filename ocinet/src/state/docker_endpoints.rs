//! The Docker plugin's endpoint files, one per Docker endpoint under
//! `<root>/docker/endpoints/<endpoint id>`: written at CreateEndpoint, removed at DeleteEndpoint,
//! or when dockerd no longer lists the endpoint (`engine::gc`), or with its network. What Join
//! needs is in it (the addresses and MAC Docker chose), and its existence is what makes the
//! endpoint's record live (`NetnsRef::Handover`): a plugin that restarts finds everything here
//! and in the records. In the library because gc reads them too.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::context::Context;
use crate::error::{Error, Result};
use crate::host::store;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub network_id: String,
    pub address: Ipv4Addr,
    pub prefix_len: u8,
    pub mac: String,
    /// Docker's IPv6 address on a dual-stack network (files written before had none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address6: Option<Ipv6Addr>,
}

pub struct Endpoints {
    dir: PathBuf,
}

impl Endpoints {
    pub fn open(ctx: &Context) -> Result<Endpoints> {
        Ok(Endpoints {
            dir: ctx.root.subdir(&["docker", "endpoints"])?,
        })
    }

    /// The endpoint's file (the caller checked the id: hex digits only).
    pub fn path(&self, endpoint_id: &str) -> PathBuf {
        self.dir.join(endpoint_id)
    }

    pub fn load(&self, endpoint_id: &str) -> Result<Option<Endpoint>> {
        store::read_json(&self.path(endpoint_id))
    }

    pub fn save(&self, endpoint_id: &str, endpoint: &Endpoint) -> Result<()> {
        store::write_json(&self.path(endpoint_id), endpoint)
    }

    pub fn remove(&self, endpoint_id: &str) -> Result<()> {
        store::remove_file(&self.path(endpoint_id))
    }

    /// The ids of the endpoints on Docker's network `network_id`. A file that cannot be read
    /// names no network: it is left alone.
    pub fn on_network(&self, network_id: &str) -> Result<Vec<String>> {
        let entries = std::fs::read_dir(&self.dir)
            .map_err(|e| Error::io(format!("cannot list {}", self.dir.display()), e))?;
        let mut ids: Vec<String> = entries
            .flatten()
            .filter_map(|entry| entry.file_name().to_str().map(str::to_string))
            .filter(|id| !id.starts_with('.'))
            .filter(|id| {
                matches!(self.load(id), Ok(Some(endpoint)) if endpoint.network_id == network_id)
            })
            .collect();
        ids.sort();
        Ok(ids)
    }
}
