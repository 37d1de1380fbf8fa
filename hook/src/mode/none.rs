//! `none`: the container keeps its own namespace with only `lo`, up.

use crate::engine::{private_netns, Context};
use crate::error::Result;
use crate::link::{self, Inside};
use crate::record::Record;

pub fn setup(ctx: &Context, record: &mut Record) -> Result<()> {
    let pid = record.pid.unwrap_or_default();
    let ns = private_netns(pid, "none")?;
    ctx.records.save(record)?;
    link::configure_container(&Inside::open(&ns)?, None)
}
