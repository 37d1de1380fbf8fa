//! `none`: the container keeps its own namespace with only `lo`, up.

use super::{require_own_namespace, Driver, Env, Plan, Target};
use crate::error::Result;
use crate::request::NetworkRequest;
use crate::state::record::InterfaceRecord;

pub struct NoneDriver;

impl Driver for NoneDriver {
    fn own_namespace(&self) -> bool {
        true
    }

    fn plan(
        &self,
        env: &mut Env<'_>,
        target: &Target,
        _request: &NetworkRequest,
        _preferred: &[std::net::IpAddr],
    ) -> Result<Plan> {
        require_own_namespace(env, target, "none")?;
        Ok(Plan::default())
    }

    fn apply(
        &self,
        env: &mut Env<'_>,
        target: &Target,
        _request: &NetworkRequest,
        _plan: Plan,
        _iface: Option<&mut InterfaceRecord>,
    ) -> Result<()> {
        env.kernel.configure_container(&target.netns, None)
    }
}
