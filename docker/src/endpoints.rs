//! The plugin's own state: one file per Docker endpoint under `<root>/docker/endpoints/`,
//! written at CreateEndpoint and removed at DeleteEndpoint. What Join needs is in it (the
//! addresses and MAC Docker chose), and its existence is what makes the endpoint's record live
//! (`NetnsRef::Handover`): a plugin that restarts finds everything here and in the records.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use ocinet::context::Context;
use ocinet::host::store;
use serde::{Deserialize, Serialize};

use crate::error::Result;

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
        Ok(store::read_json(&self.path(endpoint_id))?)
    }

    pub fn save(&self, endpoint_id: &str, endpoint: &Endpoint) -> Result<()> {
        Ok(store::write_json(&self.path(endpoint_id), endpoint)?)
    }

    pub fn remove(&self, endpoint_id: &str) -> Result<()> {
        Ok(store::remove_file(&self.path(endpoint_id))?)
    }
}
