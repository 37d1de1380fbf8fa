//! `host`: the container shares the host's namespace. Nothing is created; plan only checks
//! that the namespace really is the host's (the shim arranges that in config.json).

use super::{Driver, DriverInfo, Plan, Ready};
use crate::error::{Error, Result};

pub(crate) struct HostDriver;

impl Driver for HostDriver {
    fn plan(&self, info: &mut DriverInfo<'_>, _ready: Ready) -> Result<Plan> {
        if !info.env.kernel.is_host_netns(&info.target.netns)? {
            return Err(Error::Namespace(
                "network mode host needs the host's network namespace: run the container through ocinet-shim, or remove the network entry from linux.namespaces in config.json".to_string(),
            ));
        }
        Ok(Plan::default())
    }
}
