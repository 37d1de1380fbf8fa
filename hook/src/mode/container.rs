//! `container:<id>`: the container joins another container's namespace. The hook creates
//! nothing; it checks that the namespace it is in belongs to that live container.

use crate::engine::Context;
use crate::error::{Error, Result};
use crate::netns::Netns;
use crate::record::Record;

pub fn setup(ctx: &Context, record: &mut Record, target: &str) -> Result<()> {
    let not_running = || {
        Error::Namespace(format!(
            "container {target} is not running: start it before joining its network"
        ))
    };
    if target == record.id {
        return Err(Error::Namespace(format!(
            "container {target} cannot join its own network"
        )));
    }
    let target_record = ctx.records.find(target)?.ok_or_else(not_running)?;
    if target_record.id == record.id {
        return Err(Error::Namespace(format!(
            "container {target} cannot join its own network"
        )));
    }
    if target_record.is_stale(&ctx.boot_id) {
        return Err(not_running());
    }
    let pid = target_record.pid.unwrap_or_default();
    let mine = Netns::of_pid(record.pid.unwrap_or_default())?.id()?;
    if Netns::of_pid(pid)?.id()? != mine {
        return Err(Error::Namespace(format!(
            "network mode container:{target} needs the container to be in {target}'s network namespace: run it through ocinet-shim, or set that namespace's path in config.json"
        )));
    }
    ctx.records.save(record)
}
