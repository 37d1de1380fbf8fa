//! `host`: the container shares the host's namespace. Nothing is created; plan only checks
//! that the namespace really is the host's (the shim arranges that in config.json).

use super::{Driver, Env, Plan, Target};
use crate::error::{Error, Result};
use crate::request::NetworkRequest;

pub struct HostDriver;

impl Driver for HostDriver {
    fn plan(
        &self,
        env: &mut Env<'_>,
        target: &Target,
        _request: &NetworkRequest,
        _preferred: &[std::net::IpAddr],
    ) -> Result<Plan> {
        if !env.kernel.is_host_netns(&target.netns)? {
            return Err(Error::Namespace(
                "network mode host needs the host's network namespace: run the container through ocinet-shim, or remove the network entry from linux.namespaces in config.json".to_string(),
            ));
        }
        Ok(Plan::default())
    }
}
