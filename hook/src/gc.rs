//! Garbage collection: tears down what belongs to containers that are gone (killed without
//! poststop, deleted by a runtime that skipped it, or from an earlier boot). Safe at any time:
//! an id being set up or torn down holds its lock and is skipped.

use crate::engine::{teardown_record, Context};
use crate::error::{Error, Result};

/// What one collection did.
#[derive(Debug, Default)]
pub struct Collected {
    /// Ids whose records were stale and are now torn down.
    pub removed: Vec<String>,
    /// Ids skipped because a setup or teardown holds them right now.
    pub busy: Vec<String>,
    /// Problems that stopped one id's collection (the others went on), one line each.
    pub errors: Vec<String>,
}

pub fn collect(ctx: &Context) -> Result<Collected> {
    let mut out = Collected::default();
    for id in ctx.records.ids()? {
        let Some(_held) = ctx.records.try_lock(&id)? else {
            out.busy.push(id);
            continue;
        };
        match ctx.records.load(&id) {
            Ok(Some(record)) if record.is_stale(&ctx.boot_id) => {
                match teardown_record(ctx, &record) {
                    Ok(()) => out.removed.push(id),
                    Err(e) => out.errors.push(format!("{id}: {e}")),
                }
            }
            Ok(_) => {}
            // Nothing in a corrupt record can be trusted to undo: report it, go on.
            Err(e @ Error::Corrupt { .. }) => out.errors.push(format!("{id}: {e}")),
            Err(e) => out.errors.push(format!("{id}: {e}")),
        }
    }
    Ok(out)
}
