//! Garbage collection: tears down what belongs to containers that are gone (killed without
//! poststop, deleted by a runtime that skipped it, or from an earlier boot). Safe at any time:
//! an id being set up or torn down holds its lock; gc waits for it (a few milliseconds), and
//! skips it only if it stays held (a hook that hangs).
//!
//! A Docker endpoint's record is live while the plugin's endpoint file exists; dockerd may drop
//! the endpoint without telling the plugin (its cleanup after it was killed), so gc first asks
//! dockerd which endpoints it still has and removes the files of those it dropped.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use crate::context::Context;
use crate::engine::{teardown_record, teardown_with};
use crate::error::Result;
use crate::kernel::{Kernel, SystemKernel};
use crate::state::docker_endpoints::Endpoints;
use crate::state::dockerd::{Dockerd, Listing};
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

/// Collects every stale record (`ocinet-shim gc`).
pub fn collect(ctx: &Context) -> Result<Collected> {
    collect_of(ctx, &mut SystemKernel::new(), None)
}

/// Collects the stale records of `front_end` only: the Docker plugin's own, when a port or
/// address it needs is held by an endpoint dockerd may have dropped.
pub fn collect_front_end(ctx: &Context, front_end: FrontEnd) -> Result<Collected> {
    collect_of(ctx, &mut SystemKernel::new(), Some(front_end))
}

fn collect_of(
    ctx: &Context,
    kernel: &mut dyn Kernel,
    front_end: Option<FrontEnd>,
) -> Result<Collected> {
    let mut out = Collected::default();
    if front_end.is_none_or(|f| f == FrontEnd::Docker) {
        forget_dropped_endpoints(ctx, &mut out)?;
    }
    for id in ctx.records.ids()? {
        // Another front end's record is not waited for (read again under the lock below).
        if front_end
            .is_some_and(|f| !matches!(ctx.records.load(&id), Ok(Some(r)) if r.front_end == f))
        {
            continue;
        }
        let Some(_held) = ctx.records.lock_within(&id, LOCK_WAIT)? else {
            out.busy.push(id);
            continue;
        };
        match teardown_if_stale(ctx, kernel, &id, front_end) {
            Ok(true) => out.removed.push(id),
            Ok(false) => {}
            // A corrupt record (nothing in it can be trusted to undo), an unreadable one or an
            // incomplete teardown: report it, go on with the others.
            Err(e) => out.errors.push(format!("{id}: {e}")),
        }
    }
    Ok(out)
}

/// Removes the endpoint files of Docker records whose endpoint dockerd (the one the plugin
/// serves) no longer lists on a network it still has: their records are then stale. The
/// records are read before dockerd is asked: a record exists only after Join, which dockerd
/// sends once the endpoint is in its store, so an endpoint of such a record missing from the
/// listing was deleted by dockerd (a deletion through the plugin meets this under the id's
/// lock, and either order ends the same). dockerd not running, or not knowing the network:
/// nothing is concluded.
fn forget_dropped_endpoints(ctx: &Context, out: &mut Collected) -> Result<()> {
    let Some(dockerd) = Dockerd::remembered(ctx)? else {
        return Ok(());
    };
    let endpoints = Endpoints::open(ctx)?;
    let (records, _unreadable) = ctx.records.all()?;
    // Docker's network id -> its records' (record id, endpoint id).
    let mut by_network: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for record in records
        .iter()
        .filter(|r| r.front_end == FrontEnd::Docker && !r.is_stale(&ctx.boot_id))
    {
        let Some(endpoint_id) = record.id.strip_prefix("docker-") else {
            continue;
        };
        if let Ok(Some(endpoint)) = endpoints.load(endpoint_id) {
            by_network
                .entry(endpoint.network_id)
                .or_default()
                .push((record.id.clone(), endpoint_id.to_string()));
        }
    }
    for (network_id, members) in by_network {
        let listed = match dockerd.endpoints(&network_id) {
            Ok(Listing::Endpoints(listed)) => listed,
            Ok(Listing::UnknownNetwork | Listing::NotRunning) => continue,
            Err(e) => {
                out.errors.push(format!(
                    "cannot tell which endpoints of Docker's network {network_id} dockerd still has ({e}): their records are kept"
                ));
                continue;
            }
        };
        for (id, endpoint_id) in members.into_iter().filter(|(_, e)| !listed.contains(e)) {
            let Some(_held) = ctx.records.lock_within(&id, LOCK_WAIT)? else {
                out.busy.push(id);
                continue;
            };
            if let Err(e) = endpoints.remove(&endpoint_id) {
                out.errors.push(format!("{id}: {e}"));
            }
        }
    }
    Ok(())
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
    match ctx.records.load(id)? {
        Some(record) if record.is_stale(&ctx.boot_id) => {
            teardown_record(ctx, &record)?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// The caller holds the id's lock. True when a stale record (of `front_end`, if given) was
/// torn down.
fn teardown_if_stale(
    ctx: &Context,
    kernel: &mut dyn Kernel,
    id: &str,
    front_end: Option<FrontEnd>,
) -> Result<bool> {
    match ctx.records.load(id)? {
        Some(record)
            if record.is_stale(&ctx.boot_id) && front_end.is_none_or(|f| f == record.front_end) =>
        {
            teardown_with(ctx, kernel, &record)?;
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
    use crate::engine::{attach_with, NetnsRef, Target};
    use crate::kernel::fake::RecordingKernel;
    use crate::state::docker_endpoints::Endpoint;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixListener;
    use std::path::PathBuf;

    /// A dockerd stand-in on a socket in the sandbox: each GET is answered from `answers`
    /// (path, status, body), anything else with 404.
    fn fake_dockerd(sb: &Sandbox, answers: Vec<(String, u16, String)>) -> PathBuf {
        let socket = sb.dir.join("docker.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let mut conn = conn.unwrap();
                let mut line = String::new();
                let mut byte = [0u8; 1];
                while !line.ends_with("\r\n\r\n") && conn.read(&mut byte).unwrap() == 1 {
                    line.push(char::from(byte[0]));
                }
                let (status, body) = answers
                    .iter()
                    .find(|(path, _, _)| line.starts_with(&format!("GET {path} ")))
                    .map(|(_, status, body)| (*status, body.clone()))
                    .unwrap_or((404, "{}".to_string()));
                let _ = write!(conn, "HTTP/1.0 {status} X\r\n\r\n{body}");
            }
        });
        socket
    }

    /// A Docker endpoint joined as the plugin joins it: its file, then its record.
    fn docker_endpoint(sb: &Sandbox, endpoint_id: &str, network_id: &str, ip: &str) {
        let endpoints = Endpoints::open(&sb.ctx).unwrap();
        let endpoint = Endpoint {
            network_id: network_id.to_string(),
            address: ip.parse().unwrap(),
            prefix_len: 24,
            mac: "02:42:0a:00:00:02".to_string(),
            address6: None,
        };
        endpoints.save(endpoint_id, &endpoint).unwrap();
        let target = Target {
            id: format!("docker-{endpoint_id}"),
            netns: NetnsRef::Handover(endpoints.path(endpoint_id)),
            pid: None,
        };
        let mut req = request(&[("io.ocinet.network", "bridge")]);
        req.interface = format!("ocd{endpoint_id}");
        attach_with(
            &sb.ctx,
            &mut RecordingKernel::default(),
            FrontEnd::Docker,
            &target,
            &req,
        )
        .unwrap();
    }

    #[test]
    fn a_docker_record_whose_endpoint_dockerd_dropped_becomes_stale_and_no_other() {
        let sb = Sandbox::new("docker-gc");
        let [listed, unknown, failing] = ["a", "b", "c"].map(|d| d.repeat(64));
        docker_endpoint(&sb, "e1", &listed, "10.99.0.2");
        docker_endpoint(&sb, "e2", &listed, "10.99.0.3");
        docker_endpoint(&sb, "e3", &unknown, "10.99.0.4");
        docker_endpoint(&sb, "e4", &failing, "10.99.0.5");
        // No dockerd remembered (a plugin that never said where it is): nothing concluded.
        let mut out = Collected::default();
        forget_dropped_endpoints(&sb.ctx, &mut out).unwrap();
        let endpoints = Endpoints::open(&sb.ctx).unwrap();
        assert!(["e1", "e2", "e3", "e4"]
            .iter()
            .all(|e| endpoints.path(e).exists()));

        let socket = fake_dockerd(
            &sb,
            vec![
                (
                    format!("/networks/{listed}"),
                    200,
                    format!(r#"{{"Id":"{listed}","Containers":{{"c1":{{"EndpointID":"e1"}}}}}}"#),
                ),
                (format!("/networks/{failing}"), 500, "{}".to_string()),
            ],
        );
        Dockerd { socket }.remember(&sb.ctx).unwrap();
        let mut out = Collected::default();
        forget_dropped_endpoints(&sb.ctx, &mut out).unwrap();
        let stale = |id: &str| {
            let record = sb.ctx.records.load(id).unwrap().unwrap();
            record.is_stale(&sb.ctx.boot_id)
        };
        // e2 is no longer listed on its network: dropped. e3's network is unknown to this
        // dockerd, and e4's could not be asked about: kept, the latter reported.
        assert!(stale("docker-e2"));
        assert!(!stale("docker-e1") && !stale("docker-e3") && !stale("docker-e4"));
        assert_eq!(out.errors.len(), 1, "{:?}", out.errors);
        assert!(
            out.errors[0].contains(&failing) && out.errors[0].contains("status 500"),
            "{:?}",
            out.errors
        );

        // The plugin's collection: Docker's stale records only, even beside another front
        // end's stale one.
        attach_fake(
            &sb,
            &mut RecordingKernel::default(),
            "hooked",
            &request(&[]),
        )
        .unwrap();
        let mut hooked = sb.ctx.records.load("hooked").unwrap().unwrap();
        hooked.pid_start = hooked.pid_start.map(|s| s + 1);
        sb.ctx.records.save(&hooked).unwrap();
        assert!(stale("hooked"));
        let mut kernel = RecordingKernel::default();
        let out = collect_of(&sb.ctx, &mut kernel, Some(FrontEnd::Docker)).unwrap();
        assert_eq!(out.removed, ["docker-e2"]);
        assert_eq!(kernel.names(), ["delete_link"]);
        assert!(sb.ctx.records.load("hooked").unwrap().is_some());
    }

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
