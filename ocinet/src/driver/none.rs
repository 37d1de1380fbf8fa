//! `none`: the container keeps its own namespace with only `lo`, up.

use super::{require_own_namespace, Driver, DriverInfo, Plan, Ready, Recorded};
use crate::error::Result;

pub(crate) struct NoneDriver;

impl Driver for NoneDriver {
    fn own_namespace(&self) -> bool {
        true
    }

    fn plan(&self, info: &mut DriverInfo<'_>, _ready: Ready) -> Result<Plan> {
        require_own_namespace(info, "none")?;
        Ok(Plan::default())
    }

    fn apply(&self, info: &mut DriverInfo<'_>, _plan: Plan, _iface: Recorded<'_>) -> Result<()> {
        info.env
            .kernel
            .configure_container(&info.target.netns, None)
    }
}
