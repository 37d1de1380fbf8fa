//! `container:<id>`: the container joins another container's namespace. Nothing is created;
//! plan checks that the namespace it is in belongs to that live container.

use super::{Driver, DriverInfo, Plan, Ready};
use crate::error::{Error, Result};
use crate::host::netns::NetnsRef;
use crate::request::NetworkMode;

pub(crate) struct ContainerDriver;

impl Driver for ContainerDriver {
    fn plan(&self, info: &mut DriverInfo<'_>, _ready: Ready) -> Result<Plan> {
        let DriverInfo {
            env,
            target,
            request,
            ..
        } = info;
        let NetworkMode::Container { id: joined } = &request.mode else {
            return Err(Error::Namespace(format!(
                "the container driver cannot wire mode {}",
                request.mode
            )));
        };
        let own = || Error::Namespace(format!("container {joined} cannot join its own network"));
        if *joined == target.id {
            return Err(own());
        }
        let joined_record = env.ctx.records.find_running(joined, &env.ctx.boot_id)?;
        if joined_record.id == target.id {
            return Err(own());
        }
        let theirs = match (joined_record.pid, &joined_record.netns_path) {
            (Some(pid), _) => NetnsRef::Pid(pid),
            (None, Some(path)) => NetnsRef::Path(path.clone()),
            (None, None) => return Err(Error::NotRunning(joined.clone())),
        };
        if !env.kernel.same_netns(&target.netns, &theirs)? {
            return Err(Error::Namespace(format!(
                "network mode container:{joined} needs the container to be in {joined}'s network namespace: run it through ocinet-shim, or set that namespace's path in config.json"
            )));
        }
        Ok(Plan::default())
    }
}
