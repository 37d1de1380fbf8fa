//! `host`: the container shares the host's namespace. Nothing is created; plan only checks
//! that the namespace really is the host's (the shim arranges that in config.json).

use super::{Driver, Env, Plan, Target};
use crate::error::{Error, Result};
use crate::record::InterfaceRecord;
use crate::request::NetworkRequest;

pub struct HostDriver;

impl Driver for HostDriver {
    fn own_namespace(&self) -> bool {
        false
    }

    fn plan(
        &self,
        env: &mut Env<'_>,
        target: &Target,
        _request: &NetworkRequest,
        _preferred: Option<std::net::IpAddr>,
    ) -> Result<Plan> {
        if !env.kernel.is_host_netns(&target.netns)? {
            return Err(Error::Namespace(
                "network mode host needs the host's network namespace: run the container through ocinet-shim, or remove the network entry from linux.namespaces in config.json".to_string(),
            ));
        }
        Ok(Plan::default())
    }

    fn apply(
        &self,
        _env: &mut Env<'_>,
        _target: &Target,
        _request: &NetworkRequest,
        _plan: Plan,
        _iface: Option<&mut InterfaceRecord>,
    ) -> Result<()> {
        Ok(())
    }

    fn undo(&self, _env: &mut Env<'_>, _id: &str, _iface: &InterfaceRecord) -> Vec<Error> {
        Vec::new()
    }
}
