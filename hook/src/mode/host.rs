//! `host`: the container shares the host's namespace. The hook creates nothing; it only checks
//! that the namespace really is the host's (the shim arranges that in config.json).

use crate::engine::Context;
use crate::error::{Error, Result};
use crate::netns::Netns;
use crate::record::Record;

pub fn setup(ctx: &Context, record: &mut Record) -> Result<()> {
    let pid = record.pid.unwrap_or_default();
    if Netns::of_pid(pid)?.id()? != Netns::current()?.id()? {
        return Err(Error::Namespace(
            "network mode host needs the host's network namespace: run the container through ocinet-shim, or remove the network entry from linux.namespaces in config.json".to_string(),
        ));
    }
    ctx.records.save(record)
}
