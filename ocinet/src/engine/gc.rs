//! Garbage collection: tears down what belongs to containers that are gone (killed without
//! poststop, deleted by a runtime that skipped it, or from an earlier boot). Safe at any time:
//! an id being set up or torn down holds its lock; gc waits for it (a few milliseconds), and
//! skips it only if it stays held (a hook that hangs).

use std::collections::HashSet;
use std::time::Duration;

use crate::context::Context;
use crate::engine::{teardown_record, teardown_with};
use crate::error::Result;
use crate::kernel::{Kernel, SystemKernel};
use crate::state::record::FrontEnd;

/// What one collection did.
#[derive(Debug, Default)]
pub struct Collected {
    /// Ids whose records were stale and are now torn down.
    pub removed: Vec<String>,
    /// Ids skipped because a setup or teardown held them for longer than gc waits.
    pub busy: Vec<String>,
    /// Problems that stopped one id's collection (the others went on), one line each.
    pub errors: Vec<String>,
}

/// How long gc waits for an id's lock. Locks are striped, so an unrelated container's setup
/// may hold it: waiting (not skipping at once) is what makes one gc run complete.
const LOCK_WAIT: Duration = Duration::from_secs(5);

pub fn collect(ctx: &Context) -> Result<Collected> {
    let mut out = Collected::default();
    for id in ctx.records.ids()? {
        let Some(_held) = ctx.records.lock_within(&id, LOCK_WAIT)? else {
            out.busy.push(id);
            continue;
        };
        match teardown_if_stale(ctx, &id) {
            Ok(true) => out.removed.push(id),
            Ok(false) => {}
            // A corrupt record (nothing in it can be trusted to undo), an unreadable one or an
            // incomplete teardown: report it, go on with the others.
            Err(e) => out.errors.push(format!("{id}: {e}")),
        }
    }
    Ok(out)
}

/// Tears down the records that `front_end` made on `network` whose ids are not in `keep`
/// (CNI's GC: the runtime lists the attachments still valid). Records of other front ends are
/// never the caller's to collect, live or not.
pub fn collect_unlisted(
    ctx: &Context,
    front_end: FrontEnd,
    network: &str,
    keep: &HashSet<String>,
) -> Result<Collected> {
    collect_unlisted_with(ctx, &mut SystemKernel::new(), front_end, network, keep)
}

pub(crate) fn collect_unlisted_with(
    ctx: &Context,
    kernel: &mut dyn Kernel,
    front_end: FrontEnd,
    network: &str,
    keep: &HashSet<String>,
) -> Result<Collected> {
    let mut out = Collected::default();
    for id in ctx
        .records
        .ids()?
        .into_iter()
        .filter(|id| !keep.contains(id))
    {
        let Some(_held) = ctx.records.lock_within(&id, LOCK_WAIT)? else {
            out.busy.push(id);
            continue;
        };
        let record = match ctx.records.load(&id) {
            Ok(Some(record)) => record,
            Ok(None) => continue,
            // Unreadable: whose it is cannot be told, so it is not this caller's.
            Err(_) => continue,
        };
        let mine =
            record.front_end == front_end && record.interfaces.iter().any(|i| i.network == network);
        if !mine {
            continue;
        }
        match teardown_with(ctx, kernel, &record) {
            Ok(()) => out.removed.push(id),
            Err(e) => out.errors.push(format!("{id}: {e}")),
        }
    }
    Ok(out)
}

/// Collects one id now (the shim after the runtime's `delete`): a container whose process is
/// gone but whose record is still there (killed, poststop skipped) is torn down; a live one
/// keeps everything. An id whose lock is held is being set up or torn down (a poststop's
/// teardown finishing in the background): left to that.
pub fn collect_one(ctx: &Context, id: &str) -> Result<bool> {
    let Some(_held) = ctx.records.try_lock(id)? else {
        return Ok(false);
    };
    teardown_if_stale(ctx, id)
}

/// The caller holds the id's lock. True when a stale record was torn down.
fn teardown_if_stale(ctx: &Context, id: &str) -> Result<bool> {
    match ctx.records.load(id)? {
        Some(record) if record.is_stale(&ctx.boot_id) => {
            teardown_record(ctx, &record)?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::tests::{
        attach_cni, attach_fake, cni_request, cni_target, request, Sandbox,
    };
    use crate::kernel::fake::RecordingKernel;

    #[test]
    fn cni_gc_collects_only_its_own_unlisted_attachments_of_the_network() {
        let sb = Sandbox::new("cni-gc");
        let n1 = cni_request("eth0", "n1", "10.98.0.0/24");
        for id in ["cni-keep-eth0", "cni-gone-eth0"] {
            let target = cni_target(&sb, id, id);
            attach_cni(&sb, &mut RecordingKernel::default(), &target, &n1).unwrap();
        }
        let other = cni_target(&sb, "cni-n2-eth0", "n2");
        let n2 = cni_request("eth0", "n2", "10.97.0.0/24");
        attach_cni(&sb, &mut RecordingKernel::default(), &other, &n2).unwrap();
        attach_fake(
            &sb,
            &mut RecordingKernel::default(),
            "hooked",
            &request(&[]),
        )
        .unwrap();
        let keep = ["cni-keep-eth0".to_string()].into_iter().collect();
        let mut kernel = RecordingKernel::default();
        let out = collect_unlisted_with(&sb.ctx, &mut kernel, FrontEnd::Cni, "n1", &keep).unwrap();
        assert_eq!(out.removed, ["cni-gone-eth0"]);
        assert_eq!(kernel.names(), ["delete_link"]);
        let mut left = sb.ctx.records.ids().unwrap();
        left.sort();
        assert_eq!(left, ["cni-keep-eth0", "cni-n2-eth0", "hooked"]);
    }
}
