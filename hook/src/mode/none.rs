//! `none`: the container keeps its own namespace with only `lo`, up.

use crate::engine::{private_netns, Context};
use crate::error::Result;
use crate::link::{self, Rtnl};
use crate::record::Record;

pub fn setup(ctx: &Context, record: &mut Record) -> Result<()> {
    let pid = record.pid.unwrap_or_default();
    let ns = private_netns(pid, "none")?;
    ctx.records.save(record)?;
    link::configure_container(&Rtnl::open_in(&ns)?, None)
}
