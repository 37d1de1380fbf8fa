//! The one engine every front end calls: [`attach`] wires a container's namespace to a network
//! and says what it made; [`detach`] undoes it from the record alone.
//!
//! Order of a setup: the driver prepares the network (an overlay's agent started) and plans
//! (chooses and checks, holding the locks of what it chose), the record of the plan is
//! written, the driver applies it (commits the reservations, then the kernel), and the
//! namespace gets its `ip netns` name. Any failure undoes everything
//! the record lists. Teardown undoes every step it can, even past a failed one, and keeps the
//! record while something is left, so that `gc` can finish it.
//!
//! Beside them: ports published and withdrawn after the attach (`publishing.rs`, the Docker
//! plugin's), a network retired (`retire.rs`), networks only CNI configurations define
//! (`cni_networks.rs`), the collection of stale records (`gc.rs`), and the firewall's state put
//! back (`reload`).

use std::net::IpAddr;

use crate::context::Context;
use crate::dns::names::NetworkNames;
use crate::dns::resolver;
use crate::driver::{self, DriverInfo, Env};
use crate::error::{Error, Result};
use crate::host::background;
use crate::host::fault;
use crate::host::netns_name;
use crate::host::process;
use crate::kernel::{Kernel, SystemKernel};
use crate::network::DriverKind;
use crate::request::NetworkRequest;
use crate::state::record::{FrontEnd, InterfaceRecord, Record, RECORD_VERSION};
use crate::state::restore::{self, Restored};

pub use crate::driver::Target;
pub use crate::host::netns::NetnsRef;
pub use publishing::{publish, unpublish};
pub use retire::retire_network;

pub mod cni_networks;
pub mod gc;
mod publishing;
mod retire;

/// What an attach made: the container's interfaces (names, addresses, gateways, ports) and
/// the name of its namespace for `ip netns`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub interfaces: Vec<InterfaceRecord>,
    pub netns_name: Option<String>,
}

/// Wires `target` as `request` asks. On failure, undoes whatever it did and returns the cause.
///
/// A host port held by a container whose teardown is under way (poststop has returned, its
/// child is still at work: `detach_deferred`) is waited for, once: `docker stop a && docker
/// run -p 8080:80 b` works, as with Docker.
pub fn attach(
    ctx: &Context,
    front_end: FrontEnd,
    target: &Target,
    request: &NetworkRequest,
) -> Result<Attachment> {
    match attach_with(ctx, &mut SystemKernel::new(), front_end, target, request) {
        Err(Error::PortTaken { holder, .. }) if waited_for_teardown(ctx, &holder, &target.id)? => {
            attach_with(ctx, &mut SystemKernel::new(), front_end, target, request)
        }
        result => result,
    }
}

/// How long a setup waits for a port holder's teardown: its child's work (the elements, the
/// claims, the veth's deletion) takes tens of milliseconds, more on a busy host.
const TEARDOWN_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// True when `holder`'s lock was held (a teardown at work; or a setup, which the retry then
/// meets as before) and is free now. A live container's lock is free: no wait, no retry.
fn waited_for_teardown(ctx: &Context, holder: &str, id: &str) -> Result<bool> {
    if holder == id || ctx.records.try_lock(holder)?.is_some() {
        return Ok(false);
    }
    Ok(ctx.records.lock_within(holder, TEARDOWN_WAIT)?.is_some())
}

/// Turns hairpin on at the bridge port `host_veth` (CNI's `hairpinMode`, for ports another
/// plugin publishes: the engine turns it on itself for those it publishes). It goes with the
/// veth, so the record need not list it.
pub fn set_hairpin(host_veth: &str) -> Result<()> {
    SystemKernel::new().set_hairpin(host_veth)
}

/// Undoes everything the container's record lists. No record: nothing to do.
pub fn detach(ctx: &Context, id: &str) -> Result<()> {
    detach_with(ctx, &mut SystemKernel::new(), id)
}

/// As [`detach`], but what the kernel makes slow (a veth's deletion waits for RCU grace
/// periods, tens of milliseconds) finishes in a child process after this returns: the runtime
/// waits for poststop on every stop. The child holds the id's lock (the same open lock file)
/// until it is done, and the lease and the record go last, so no new container can get the
/// address while the old pair still answers for it; a child killed half way leaves the record,
/// which the next setup of the id, `gc` or the shim finishes.
pub fn detach_deferred(ctx: &Context, id: &str) -> Result<()> {
    let held = ctx.records.lock(id)?;
    let Some(record) = ctx.records.load(id)? else {
        return Ok(());
    };
    if record.interfaces.is_empty() {
        // Nothing slow to undo.
        return teardown_with(ctx, &mut SystemKernel::new(), &record);
    }
    // Names go before poststop returns. A problem here is the child's teardown's too (it
    // tries again and reports).
    let _ = forget_names(ctx, &record);
    match background::fork_detached() {
        Ok(background::Side::Parent) => {
            // The child's copy of the lock file keeps the lock.
            drop(held);
            Ok(())
        }
        Ok(background::Side::Child) => {
            let started = std::time::Instant::now();
            let result = teardown_with(ctx, &mut SystemKernel::new(), &record);
            let entry = crate::state::activity::Entry::new(
                id,
                "teardown-finish",
                result.as_ref().map(|_| ()).map_err(|e| e.to_string()),
                started.elapsed(),
            );
            let _ = crate::state::activity::append(ctx.root.path(), &entry);
            drop(held);
            std::process::exit(i32::from(result.is_err()));
        }
        // No child: done here, as before.
        Err(_) => teardown_with(ctx, &mut SystemKernel::new(), &record),
    }
}

/// Checks that what the record of `target.id` lists is still there: the host's veth, and the
/// interface in the target's namespace with its addresses (CNI's CHECK). Returns the record's
/// attachment.
pub fn check(ctx: &Context, target: &Target) -> Result<Attachment> {
    check_with(ctx, &mut SystemKernel::new(), target)
}

/// Undoes one record (the caller holds the id's lock: gc, the shim's delete).
pub(crate) fn teardown_record(ctx: &Context, record: &Record) -> Result<()> {
    teardown_with(ctx, &mut SystemKernel::new(), record)
}

pub(crate) fn attach_with(
    ctx: &Context,
    kernel: &mut dyn Kernel,
    front_end: FrontEnd,
    target: &Target,
    request: &NetworkRequest,
) -> Result<Attachment> {
    let _serialized = ctx.records.lock(&target.id)?;
    let preferred = take_over_previous(ctx, kernel, front_end, target)?;
    let driver = driver::for_mode(&request.mode);
    let mut record = Record {
        version: RECORD_VERSION,
        id: target.id.clone(),
        boot_id: ctx.boot_id.clone(),
        front_end,
        mode: request.mode.to_string(),
        pid: target.pid,
        pid_start: target.pid.and_then(process::start_time),
        netns_path: match &target.netns {
            NetnsRef::Path(path) | NetnsRef::Handover(path) => Some(path.clone()),
            NetnsRef::Pid(_) => None,
        },
        // Only containers with a namespace of their own get a name for `ip netns`, and only
        // when it has no path yet (a CNI runtime's namespace is its own file already).
        netns_name: (driver.own_namespace() && matches!(target.netns, NetnsRef::Pid(_)))
            .then(|| netns_name::name_for(&target.id)),
        interfaces: Vec::new(),
    };
    // One network after another (several: eth0, eth1, ...): each plan runs once the one before
    // has been applied, so no two hold the claims' lock at once. The record lists every
    // interface before its apply; a failure undoes all of them.
    let mut saved = false;
    let result = (|| {
        let parts = request.per_network();
        for (i, part) in parts.iter().enumerate() {
            let driver = driver::for_mode(&part.mode);
            // The previous addresses are the first interface's (one per family).
            let preferred: &[IpAddr] = if i == 0 { &preferred } else { &[] };
            let mut info = DriverInfo {
                env: Env {
                    ctx,
                    kernel: &mut *kernel,
                },
                target,
                request: part,
                preferred,
            };
            // What the network needs outside this container (an overlay's agent) first; the
            // plan then creates nothing.
            let ready = driver.prepare(&mut info)?;
            let mut plan = driver.plan(&mut info, ready)?;
            // The kind of network is known once the plan has resolved it.
            match plan.interface.as_ref().filter(|_| parts.len() == 1) {
                Some(i) if i.driver == DriverKind::Overlay => {
                    record.mode = format!("overlay:{}", i.network)
                }
                Some(i) if i.driver == DriverKind::Routed => {
                    record.mode = format!("routed:{}", i.network)
                }
                _ => {}
            }
            // Names on a DNS network: checked under the network's names lock, listed in the
            // record before they are taken.
            let names = claim_names(ctx, front_end, target, request, &mut plan)?;
            record.interfaces.extend(plan.interface.take());
            ctx.records.save(&record)?;
            saved = true;
            if let (Some(held), Some(iface)) = (names, record.interfaces.last()) {
                held.take(&target.id, &iface.names)?;
            }
            fault::point("setup:record");
            driver.apply(&mut info, plan, record.interfaces.last_mut())?;
        }
        if let Some(name) = &record.netns_name {
            kernel.bind_netns_name(&target.netns, name)?;
        }
        fault::point("setup:netns-name");
        // Answerable once the setup returns: the resolver has read the record when it says so.
        if has_names(&record) {
            resolver::register(ctx, &record)?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        // A refused first plan made nothing: its reservations were never committed. Else
        // whatever part of it was made, the record lists it: undo it all. The setup error is
        // what the user needs to see; a teardown problem keeps the record for gc.
        if saved {
            let _ = teardown_with(ctx, kernel, &record);
        }
        return Err(e);
    }
    Ok(Attachment {
        interfaces: record.interfaces,
        netns_name: record.netns_name,
    })
}

/// The names `target` holds on the network `plan` joins, if it has `dns`: refused when another
/// live container holds one; set on the plan's interface. The lock is held until they are
/// written.
fn claim_names(
    ctx: &Context,
    front_end: FrontEnd,
    target: &Target,
    request: &NetworkRequest,
    plan: &mut driver::Plan,
) -> Result<Option<NetworkNames>> {
    let (Some(network), Some(iface)) = (&plan.network, plan.interface.as_mut()) else {
        return Ok(None);
    };
    if !network.dns {
        return Ok(None);
    }
    // The hook names a container by its id by default; CNI's runtimes have their own names.
    let default_id = (front_end == FrontEnd::OciHook).then_some(target.id.as_str());
    let names = request.names.all(default_id);
    if names.is_empty() {
        return Ok(None);
    }
    let held = NetworkNames::lock(&ctx.root, &network.name)?;
    // A holder holds while it runs and its record lists the name; an unreadable record keeps
    // its names (better refused than two holders).
    let holds = |holder: &str, name: &str| match ctx.records.load(holder) {
        Ok(Some(r)) => {
            !r.is_stale(&ctx.boot_id)
                && r.interfaces
                    .iter()
                    .any(|i| i.network == network.name && i.names.iter().any(|n| n == name))
        }
        Ok(None) => false,
        Err(_) => true,
    };
    held.check_free(&network.name, &target.id, &names, &holds)?;
    iface.names = names;
    Ok(Some(held))
}

fn has_names(record: &Record) -> bool {
    record.interfaces.iter().any(|i| !i.names.is_empty())
}

/// Releases the record's names and tells the resolver: they no longer resolve once this
/// returns. Idempotent.
fn forget_names(ctx: &Context, record: &Record) -> Vec<Error> {
    if !has_names(record) {
        return Vec::new();
    }
    let mut problems = Vec::new();
    for iface in record.interfaces.iter().filter(|i| !i.names.is_empty()) {
        let released = NetworkNames::lock(&ctx.root, &iface.network)
            .and_then(|held| held.release(&record.id, &iface.names));
        problems.extend(released.err());
    }
    problems.extend(resolver::forget(ctx, &record.id).err());
    problems
}

pub(crate) fn check_with(
    ctx: &Context,
    kernel: &mut dyn Kernel,
    target: &Target,
) -> Result<Attachment> {
    let _serialized = ctx.records.lock(&target.id)?;
    let record = match ctx.records.load(&target.id)? {
        Some(record) if same_container(&record, target) => record,
        _ => return Err(Error::NotAttached(target.id.clone())),
    };
    let drift = |what: String| Error::Drift {
        id: target.id.clone(),
        what,
    };
    for iface in &record.interfaces {
        if !kernel.host_link_exists(&iface.host_veth)? {
            return Err(drift(format!("its host veth {} is gone", iface.host_veth)));
        }
        let Some(found) = kernel.link_addresses(&target.netns, &iface.name)? else {
            return Err(drift(format!("it has no interface {}", iface.name)));
        };
        for a in &iface.addresses {
            if !found.contains(&(a.address, a.prefix_len)) {
                return Err(drift(format!("{} lacks its address {a}", iface.name)));
            }
        }
    }
    Ok(Attachment {
        interfaces: record.interfaces,
        netns_name: record.netns_name,
    })
}

pub(crate) fn detach_with(ctx: &Context, kernel: &mut dyn Kernel, id: &str) -> Result<()> {
    let _serialized = ctx.records.lock(id)?;
    match ctx.records.load(id)? {
        Some(record) => teardown_with(ctx, kernel, &record),
        None => Ok(()),
    }
}

/// True when the record is of the same container as `target` (a second setup of it).
fn same_container(record: &Record, target: &Target) -> bool {
    match &target.netns {
        NetnsRef::Pid(pid) => record.pid == Some(*pid),
        NetnsRef::Path(path) | NetnsRef::Handover(path) => record.netns_path.as_ref() == Some(path),
    }
}

/// An existing record for this id: a live container of another process with the same id is
/// an error, and so is a live one of the same container for CNI (whose spec forbids a second
/// ADD: the first keeps its interface); anything else is stale, or the hook's second stage of
/// the same container, and torn down, keeping its first interface's addresses as the preferred
/// ones.
fn take_over_previous(
    ctx: &Context,
    kernel: &mut dyn Kernel,
    front_end: FrontEnd,
    target: &Target,
) -> Result<Vec<IpAddr>> {
    let previous = match ctx.records.load(&target.id) {
        Ok(Some(r)) => r,
        Ok(None) => return Ok(Vec::new()),
        // A corrupt record is overwritten: it lists nothing that can be trusted.
        Err(Error::Corrupt { .. }) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let rewires = same_container(&previous, target) && front_end == FrontEnd::OciHook;
    if !rewires && !previous.is_stale(&ctx.boot_id) {
        return Err(match (previous.pid, previous.netns_path) {
            (Some(pid), _) => Error::Duplicate {
                id: target.id.clone(),
                pid,
                root: ctx.root.path().to_path_buf(),
            },
            (None, netns) => Error::Attached {
                id: target.id.clone(),
                netns: netns.unwrap_or_default(),
            },
        });
    }
    teardown_with(ctx, kernel, &previous)?;
    Ok(previous
        .interfaces
        .first()
        .map(|i| i.addresses.iter().map(|a| a.address).collect())
        .unwrap_or_default())
}

/// Undoes every step the record lists, carrying on past failures; removes the record only
/// when nothing is left. Idempotent: every step accepts that its resource is already gone.
pub(crate) fn teardown_with(ctx: &Context, kernel: &mut dyn Kernel, record: &Record) -> Result<()> {
    let mut problems = forget_names(ctx, record);
    problems.extend(crate::dns::resolv_conf::remove(ctx, &record.id).err());
    if let Some(name) = &record.netns_name {
        problems.extend(kernel.unbind_netns_name(name).err());
    }
    fault::point("teardown:netns-name");
    let mut env = Env { ctx, kernel };
    for iface in record.interfaces.iter().rev() {
        problems.extend(driver::for_interface(iface).undo(&mut env, &record.id, iface));
    }
    if problems.is_empty() {
        return ctx.records.remove(&record.id);
    }
    Err(Error::Teardown {
        id: record.id.clone(),
        problems: problems
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("; "),
    })
}

/// `ocinet-shim reload`: every live container's firewall state put back (after `nft flush
/// ruleset` or a firewall service's reload).
pub fn reload(ctx: &Context) -> Result<Restored> {
    restore::restore(ctx, &mut SystemKernel::new())
}

#[cfg(test)]
mod handover_tests;
#[cfg(test)]
mod routed_tests;

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::HashMap;
    use std::path::PathBuf;

    use super::*;
    use crate::context::Options;
    use crate::kernel::fake::RecordingKernel;
    use crate::ports::claims::PortClaims;
    use crate::ports::Protocol;
    use crate::state::ipam::LeaseStore;
    use ipnet::IpNet;

    /// A state root and config dir of their own, removed on drop.
    pub(crate) struct Sandbox {
        pub(crate) dir: PathBuf,
        pub(crate) ctx: Context,
    }

    impl Sandbox {
        pub(crate) fn new(name: &str) -> Sandbox {
            let dir =
                std::env::temp_dir().join(format!("ocinet-engine-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let mut ctx = Context::open(&Options {
                root: dir.join("root"),
                config_dir: dir.join("etc"),
            })
            .unwrap();
            ctx.resolver = crate::context::ResolverLink::Recorded(Default::default());
            Sandbox { dir, ctx }
        }

        fn lease_holder(&self, ip: &str) -> Option<String> {
            self.lease_holder_on("ocinet", ip)
        }

        pub(crate) fn lease_holder_on(&self, network: &str, ip: &str) -> Option<String> {
            let leases = LeaseStore::open(&self.ctx.root, network).unwrap();
            leases.holder(ip.parse().unwrap()).unwrap().map(|l| l.id)
        }

        pub(crate) fn port_holder(&self, port: u16) -> Option<String> {
            let claims = PortClaims::open(&self.ctx.root).unwrap().begin().unwrap();
            claims
                .holder(Protocol::Tcp, port, None, "nobody", &self.ctx.boot_id)
                .unwrap()
        }
    }

    impl Drop for Sandbox {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// This test process stands in for the container: live, with a start time.
    pub(super) fn target(id: &str) -> Target {
        let pid = std::process::id() as i32;
        Target {
            id: id.to_string(),
            netns: NetnsRef::Pid(pid),
            pid: Some(pid),
        }
    }

    pub(crate) fn request(pairs: &[(&str, &str)]) -> NetworkRequest {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        NetworkRequest::from_annotations(&map).unwrap()
    }

    fn bridge_with_port() -> NetworkRequest {
        request(&[
            ("io.ocinet.network", "bridge"),
            ("io.ocinet.ports", "8080:80"),
        ])
    }

    pub(crate) fn attach_fake(
        sb: &Sandbox,
        kernel: &mut RecordingKernel,
        id: &str,
        req: &NetworkRequest,
    ) -> Result<Attachment> {
        attach_with(&sb.ctx, kernel, FrontEnd::OciHook, &target(id), req)
    }

    /// `web` on the default network with port 8080 published, through a healthy kernel.
    fn attach_web(sb: &Sandbox) {
        attach_fake(
            sb,
            &mut RecordingKernel::default(),
            "web",
            &bridge_with_port(),
        )
        .unwrap();
    }

    const BRIDGE_SETUP: &[&str] = &[
        "host_ipv4_routes",
        "is_host_netns",
        "ensure_bridge",
        "create_veth",
        "set_hairpin",
        "configure_container",
        "ensure_ipv4_forwarding",
        "firewall_add",
        "bind_netns_name",
    ];

    #[test]
    fn bridge_setup_reserves_records_and_wires_in_order() {
        let sb = Sandbox::new("order");
        let mut kernel = RecordingKernel::default();
        let made = attach_fake(&sb, &mut kernel, "web", &bridge_with_port()).unwrap();
        assert_eq!(kernel.names(), BRIDGE_SETUP);
        assert_eq!(made.interfaces[0].addresses[0].to_string(), "172.17.0.2/16");
        assert_eq!(made.interfaces[0].name, "eth0");
        assert_eq!(made.netns_name.as_deref(), Some("ocinet-web"));
        let record = sb.ctx.records.load("web").unwrap().unwrap();
        assert_eq!(record.interfaces, made.interfaces);
        assert_eq!(sb.lease_holder("172.17.0.2").as_deref(), Some("web"));
        assert_eq!(sb.port_holder(8080).as_deref(), Some("web"));

        // The default network is chosen once: the next setup asks no routes.
        let mut again = RecordingKernel::default();
        attach_fake(&sb, &mut again, "db", &request(&[])).unwrap();
        assert_eq!(again.names()[0], "is_host_netns");
        assert_eq!(sb.lease_holder("172.17.0.3").as_deref(), Some("db"));
    }

    #[test]
    fn a_failure_at_any_kernel_step_undoes_everything() {
        let sandbox = |i| Sandbox::new(&format!("rollback-{i}"));
        let lease = ("ocinet", "172.17.0.2");
        rollback_at_every_step(&BRIDGE_SETUP[2..], sandbox, &bridge_with_port(), lease);
    }

    /// Fails each of `steps` in turn, on a sandbox of its own: the setup of `web` (publishing
    /// 8080) undoes everything, in teardown's order, leaving no record, lease or claim.
    pub(super) fn rollback_at_every_step(
        steps: &[&'static str],
        sandbox: impl Fn(usize) -> Sandbox,
        req: &NetworkRequest,
        (network, ip): (&str, &str),
    ) {
        for (i, failing) in steps.iter().enumerate() {
            let sb = sandbox(i);
            let mut kernel = RecordingKernel {
                failing: vec![failing],
                ..Default::default()
            };
            let err = attach_fake(&sb, &mut kernel, "web", req).unwrap_err();
            assert!(err.to_string().contains(failing), "{failing}: {err}");
            assert!(sb.ctx.records.load("web").unwrap().is_none(), "{failing}");
            assert_eq!(sb.lease_holder_on(network, ip), None, "{failing}");
            assert_eq!(sb.port_holder(8080), None, "{failing}");
            let names = kernel.names();
            let at = names.iter().position(|s| s == failing).unwrap_or_default();
            // Elements are removed only once the batch that adds them went through.
            let published = names[..at].contains(&"firewall_add");
            let mut expected = vec!["unbind_netns_name"];
            if published {
                expected.push("firewall_remove");
            }
            expected.push("delete_link");
            assert_eq!(names[at + 1..], expected, "{failing}");
        }
    }

    #[test]
    fn a_refused_plan_creates_nothing() {
        let sb = Sandbox::new("refused");
        let mut kernel = RecordingKernel::default();
        attach_fake(&sb, &mut kernel, "web", &bridge_with_port()).unwrap();
        let mut other = RecordingKernel::default();
        let err = attach_fake(&sb, &mut other, "site", &bridge_with_port()).unwrap_err();
        assert!(err.to_string().contains("container web"), "{err}");
        assert_eq!(other.names(), ["is_host_netns"]);
        assert!(sb.ctx.records.load("site").unwrap().is_none());
        // Nor may a bridge container sit in the host's namespace.
        let mut host = RecordingKernel {
            host_netns: true,
            ..Default::default()
        };
        let err = attach_fake(&sb, &mut host, "h", &request(&[])).unwrap_err();
        assert!(err.to_string().contains("own network namespace"), "{err}");
        assert!(sb.ctx.records.load("h").unwrap().is_none());
    }

    #[test]
    fn teardown_goes_past_a_failed_step_and_keeps_the_record_until_done() {
        let sb = Sandbox::new("past");
        attach_web(&sb);
        let mut kernel = RecordingKernel {
            failing: vec!["unbind_netns_name"],
            ..Default::default()
        };
        let err = detach_with(&sb.ctx, &mut kernel, "web")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unbind_netns_name failed") && err.contains("gc"),
            "{err}"
        );
        assert_eq!(
            kernel.names(),
            ["unbind_netns_name", "firewall_remove", "delete_link"]
        );
        // Everything but the name is gone; the record stays for gc.
        assert_eq!(sb.lease_holder("172.17.0.2"), None);
        assert_eq!(sb.port_holder(8080), None);
        assert!(sb.ctx.records.load("web").unwrap().is_some());
        // Idempotent: done again, and once more with nothing left.
        detach_with(&sb.ctx, &mut RecordingKernel::default(), "web").unwrap();
        assert!(sb.ctx.records.load("web").unwrap().is_none());
        let mut nothing = RecordingKernel::default();
        detach_with(&sb.ctx, &mut nothing, "web").unwrap();
        assert!(nothing.calls.is_empty());
    }

    #[test]
    fn a_veth_that_will_not_go_keeps_its_lease_and_elements_that_stay_keep_their_ports() {
        let sb = Sandbox::new("keep");
        attach_web(&sb);
        let mut kernel = RecordingKernel {
            failing: vec!["delete_link", "firewall_remove"],
            ..Default::default()
        };
        let err = detach_with(&sb.ctx, &mut kernel, "web")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("delete_link failed") && err.contains("firewall_remove failed"),
            "{err}"
        );
        assert_eq!(sb.lease_holder("172.17.0.2").as_deref(), Some("web"));
        assert_eq!(sb.port_holder(8080).as_deref(), Some("web"));
    }

    fn define(sb: &Sandbox, name: &str, json: &str) {
        let dir = sb.dir.join("etc/networks");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.json")), json).unwrap();
    }

    #[test]
    fn network_options_isolate_ports_and_fill_the_forward_chain() {
        let sb = Sandbox::new("options");
        define(
            &sb,
            "apart",
            r#"{"subnets":[{"subnet":"10.96.0.0/24"}],"icc":false,"isolate":false}"#,
        );
        let mut kernel = RecordingKernel::default();
        let req = request(&[("io.ocinet.network", "apart")]);
        attach_fake(&sb, &mut kernel, "a", &req).unwrap();
        assert_eq!(
            kernel.names(),
            [
                "is_host_netns",
                "ensure_bridge",
                "create_veth",
                "set_port_isolated",
                "configure_container",
                "ensure_ipv4_forwarding",
                "firewall_add",
                "bind_netns_name",
            ]
        );
        assert!(kernel
            .calls
            .contains(&"firewall_add [oc-apart] 1 subnets, 0 elements".to_string()));

        // Internal: no masquerade, no default route, ports refused before anything is made.
        define(
            &sb,
            "inner",
            r#"{"subnets":[{"subnet":"10.95.0.0/24"}],"internal":true}"#,
        );
        let mut kernel = RecordingKernel::default();
        let req = request(&[("io.ocinet.network", "inner")]);
        attach_fake(&sb, &mut kernel, "b", &req).unwrap();
        assert!(kernel.calls.contains(
            &"firewall_add [oc-inner+isolate+internal] 0 subnets, 0 elements".to_string()
        ));
        let record = sb.ctx.records.load("b").unwrap().unwrap();
        assert!(record.interfaces[0].addresses[0].gateway.is_some());
        let mut kernel = RecordingKernel::default();
        let req = request(&[("io.ocinet.network", "inner"), ("io.ocinet.ports", "80")]);
        let err = attach_fake(&sb, &mut kernel, "c", &req).unwrap_err();
        assert!(matches!(err, Error::InternalPorts { .. }), "{err}");
        assert_eq!(kernel.names(), ["is_host_netns"]);
        assert!(sb.ctx.records.load("c").unwrap().is_none());
    }

    #[test]
    fn several_networks_are_wired_in_order_and_undone_together() {
        let sb = Sandbox::new("several");
        define(&sb, "n1", r#"{"subnets":[{"subnet":"10.91.0.0/24"}]}"#);
        define(&sb, "n2", r#"{"subnets":[{"subnet":"10.92.0.0/24"}]}"#);
        let mut kernel = RecordingKernel::default();
        let req = request(&[("io.ocinet.network", "n1,n2")]);
        let made = attach_fake(&sb, &mut kernel, "two", &req).unwrap();
        let one = [
            "is_host_netns",
            "ensure_bridge",
            "create_veth",
            "configure_container",
            "ensure_ipv4_forwarding",
            "firewall_add",
        ];
        let mut both: Vec<&str> = [one, one].concat();
        both.push("bind_netns_name");
        assert_eq!(kernel.names(), both);
        let names: Vec<&str> = made.interfaces.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["eth0", "eth1"]);
        assert_eq!(made.interfaces[0].network, "n1");
        assert_eq!(made.interfaces[1].addresses[0].to_string(), "10.92.0.2/24");
        assert_ne!(made.interfaces[0].host_veth, made.interfaces[1].host_veth);
        let record = sb.ctx.records.load("two").unwrap().unwrap();
        assert_eq!(record.interfaces, made.interfaces);
        let mut kernel = RecordingKernel::default();
        detach_with(&sb.ctx, &mut kernel, "two").unwrap();
        let deleted: Vec<&String> = kernel
            .calls
            .iter()
            .filter(|c| c.starts_with("delete_link"))
            .collect();
        assert_eq!(deleted.len(), 2);
        assert!(sb.ctx.records.load("two").unwrap().is_none());

        // The second network unknown: the first is undone, nothing is left.
        let mut kernel = RecordingKernel::default();
        let req = request(&[("io.ocinet.network", "n1,nope")]);
        let err = attach_fake(&sb, &mut kernel, "bad", &req).unwrap_err();
        assert!(matches!(err, Error::UnknownNetwork { .. }), "{err}");
        assert!(kernel.names().contains(&"delete_link"));
        assert!(sb.ctx.records.load("bad").unwrap().is_none());
        let leases = LeaseStore::open(&sb.ctx.root, "n1").unwrap();
        assert!(leases
            .holder("10.91.0.2".parse().unwrap())
            .unwrap()
            .is_none());

        // A kernel step of the second fails: both are undone.
        let mut kernel = RecordingKernel {
            failing: vec!["set_port_isolated"],
            ..Default::default()
        };
        define(
            &sb,
            "n3",
            r#"{"subnets":[{"subnet":"10.93.0.0/24"}],"icc":false}"#,
        );
        let req = request(&[("io.ocinet.network", "n1,n3")]);
        attach_fake(&sb, &mut kernel, "bad", &req).unwrap_err();
        let deleted = kernel
            .names()
            .iter()
            .filter(|n| **n == "delete_link")
            .count();
        assert_eq!(deleted, 2);
        assert!(sb.ctx.records.load("bad").unwrap().is_none());
    }

    fn announced(sb: &Sandbox) -> Vec<String> {
        match &sb.ctx.resolver {
            crate::context::ResolverLink::Recorded(calls) => calls.borrow_mut().drain(..).collect(),
            crate::context::ResolverLink::Process => Vec::new(),
        }
    }

    #[test]
    fn names_are_held_per_dns_network_refused_to_another_and_released_at_teardown() {
        let sb = Sandbox::new("names");
        define(&sb, "n1", r#"{"subnets":[{"subnet":"10.91.0.0/24"}]}"#);
        define(
            &sb,
            "n2",
            r#"{"subnets":[{"subnet":"10.92.0.0/24"}],"dns":false}"#,
        );
        let req = |pairs: &[(&str, &str)]| request(pairs);
        let web = req(&[
            ("io.ocinet.network", "n1,n2"),
            ("io.ocinet.name", "Web"),
            ("io.ocinet.aliases", "www,site"),
        ]);
        let made = attach_fake(&sb, &mut RecordingKernel::default(), "c1", &web).unwrap();
        assert_eq!(made.interfaces[0].names, ["web", "www", "site"]);
        // No names on a network without dns.
        assert!(made.interfaces[1].names.is_empty());
        assert_eq!(announced(&sb), ["add c1"]);
        let record = sb.ctx.records.load("c1").unwrap().unwrap();
        assert_eq!(record.interfaces[0].names, ["web", "www", "site"]);
        let held = NetworkNames::lock(&sb.ctx.root, "n1").unwrap();
        assert_eq!(held.holder("www").unwrap().as_deref(), Some("c1"));
        drop(held);

        // Another live container asking for one of them: refused, naming the holder; nothing
        // made, nothing announced.
        let other = req(&[("io.ocinet.network", "n1"), ("io.ocinet.aliases", "WWW")]);
        let mut kernel = RecordingKernel::default();
        let err = attach_fake(&sb, &mut kernel, "c2", &other).unwrap_err();
        assert!(matches!(err, Error::NameTaken { .. }), "{err}");
        assert_eq!(
            err.to_string().lines().next().unwrap(),
            err.to_string(),
            "one line"
        );
        assert!(err.to_string().contains("container c1"), "{err}");
        assert_eq!(kernel.names(), ["is_host_netns"]);
        assert!(sb.ctx.records.load("c2").unwrap().is_none());
        assert!(announced(&sb).is_empty());
        // The same name on a network without dns, or no names (the default network): fine.
        let plain = req(&[("io.ocinet.network", "n2"), ("io.ocinet.name", "web")]);
        attach_fake(&sb, &mut RecordingKernel::default(), "c3", &plain).unwrap();
        attach_fake(&sb, &mut RecordingKernel::default(), "c4", &req(&[])).unwrap();
        assert!(announced(&sb).is_empty());
        // The default name is the id.
        let byid = req(&[("io.ocinet.network", "n1")]);
        let made = attach_fake(&sb, &mut RecordingKernel::default(), "db", &byid).unwrap();
        assert_eq!(made.interfaces[0].names, ["db"]);
        assert_eq!(announced(&sb), ["add db"]);

        // Teardown: released and announced; idempotent.
        detach_with(&sb.ctx, &mut RecordingKernel::default(), "c1").unwrap();
        assert_eq!(announced(&sb), ["del c1"]);
        let held = NetworkNames::lock(&sb.ctx.root, "n1").unwrap();
        assert_eq!(held.holder("www").unwrap(), None);
        drop(held);
        detach_with(&sb.ctx, &mut RecordingKernel::default(), "c1").unwrap();
        attach_fake(&sb, &mut RecordingKernel::default(), "c2", &other).unwrap();

        // A holder that is gone (its record stale) loses its names to the next.
        let mut record = sb.ctx.records.load("c2").unwrap().unwrap();
        record.boot_id = "another boot".into();
        sb.ctx.records.save(&record).unwrap();
        let again = req(&[("io.ocinet.network", "n1"), ("io.ocinet.name", "www")]);
        attach_fake(&sb, &mut RecordingKernel::default(), "c5", &again).unwrap();

        // A failure after the names were taken gives them back.
        let mut kernel = RecordingKernel {
            failing: vec!["create_veth"],
            ..Default::default()
        };
        let failing = req(&[("io.ocinet.network", "n1"), ("io.ocinet.name", "late")]);
        attach_fake(&sb, &mut kernel, "c6", &failing).unwrap_err();
        let held = NetworkNames::lock(&sb.ctx.root, "n1").unwrap();
        assert_eq!(held.holder("late").unwrap(), None);
    }

    #[test]
    fn a_missing_table_restores_every_live_container() {
        let sb = Sandbox::new("restore");
        attach_web(&sb);
        let mut kernel = RecordingKernel {
            table_missing: true,
            ..Default::default()
        };
        attach_fake(&sb, &mut kernel, "db", &request(&[])).unwrap();
        let adds: Vec<&String> = kernel
            .calls
            .iter()
            .filter(|c| c.starts_with("firewall_add"))
            .collect();
        assert_eq!(
            adds,
            [
                "firewall_add [ocinet0+isolate] 1 subnets, 0 elements",
                "firewall_add [ocinet0+isolate] 1 subnets, 1 elements"
            ]
        );
    }

    #[test]
    fn none_host_and_container_modes() {
        let sb = Sandbox::new("modes");
        let mut kernel = RecordingKernel::default();
        attach_fake(
            &sb,
            &mut kernel,
            "n",
            &request(&[("io.ocinet.network", "none")]),
        )
        .unwrap();
        assert_eq!(
            kernel.names(),
            ["is_host_netns", "configure_container", "bind_netns_name"]
        );

        let host = request(&[("io.ocinet.network", "host")]);
        let err = attach_fake(&sb, &mut RecordingKernel::default(), "h", &host).unwrap_err();
        assert!(
            err.to_string().contains("host's network namespace"),
            "{err}"
        );
        let mut in_host = RecordingKernel {
            host_netns: true,
            ..Default::default()
        };
        let made = attach_fake(&sb, &mut in_host, "h", &host).unwrap();
        assert_eq!(made.netns_name, None);

        let join = |id: &str| request(&[("io.ocinet.network", &format!("container:{id}"))]);
        let mut kernel = RecordingKernel::default();
        attach_fake(&sb, &mut kernel, "side", &join("n")).unwrap();
        assert_eq!(kernel.names(), ["same_netns"]);
        let err = attach_fake(&sb, &mut RecordingKernel::default(), "x", &join("gone"));
        assert!(err.unwrap_err().to_string().contains("gone is not running"));
        let err = attach_fake(&sb, &mut RecordingKernel::default(), "n", &join("n"));
        assert!(err.unwrap_err().to_string().contains("its own network"));
    }

    /// A CNI runtime's sandbox: its namespace by path (a file that exists while it runs).
    pub(crate) fn cni_target(sb: &Sandbox, id: &str, netns: &str) -> Target {
        let path = sb.dir.join(netns);
        std::fs::write(&path, "").unwrap();
        Target {
            id: id.to_string(),
            netns: NetnsRef::Path(path),
            pid: None,
        }
    }

    pub(crate) fn cni_request(interface: &str, network: &str, subnet: &str) -> NetworkRequest {
        let fields = serde_json::json!({"subnets": [{"subnet": subnet}]});
        let definition = crate::network::Network::from_json(
            network,
            std::path::Path::new("CNI configuration"),
            fields,
        )
        .unwrap();
        NetworkRequest {
            mode: crate::request::NetworkMode::Bridge {
                network: network.to_string(),
            },
            ports: Vec::new(),
            static_ip: None,
            static_ip6: None,
            mac: None,
            interface: interface.to_string(),
            definition: Some(definition),
            names: Default::default(),
        }
    }

    pub(crate) fn attach_cni(
        sb: &Sandbox,
        kernel: &mut RecordingKernel,
        target: &Target,
        req: &NetworkRequest,
    ) -> Result<Attachment> {
        attach_with(&sb.ctx, kernel, FrontEnd::Cni, target, req)
    }

    #[test]
    fn a_cni_attachment_names_its_interface_uses_its_inline_network_and_binds_no_name() {
        let sb = Sandbox::new("cni");
        let mut kernel = RecordingKernel::default();
        let target = cni_target(&sb, "cni-c1-net1", "ns1");
        let made = attach_cni(
            &sb,
            &mut kernel,
            &target,
            &cni_request("net1", "n1", "10.98.0.0/24"),
        )
        .unwrap();
        // No default network to choose, no `ip netns` name: the namespace has its path.
        assert_eq!(
            kernel.names(),
            [
                "is_host_netns",
                "ensure_bridge",
                "create_veth",
                "configure_container",
                "ensure_ipv4_forwarding",
                "firewall_add",
            ]
        );
        assert_eq!(made.netns_name, None);
        let iface = &made.interfaces[0];
        assert_eq!(
            (iface.name.as_str(), iface.bridge.as_str()),
            ("net1", "oc-n1")
        );
        assert_eq!(iface.addresses[0].to_string(), "10.98.0.2/24");
        // Docker's MAC, known before the link exists.
        assert_eq!(iface.mac.as_deref(), Some("02:42:0a:62:00:02"));
        let record = sb.ctx.records.load("cni-c1-net1").unwrap().unwrap();
        assert_eq!(record.front_end, FrontEnd::Cni);
        // No file names the network: the record keeps its masquerade for a firewall reload.
        assert_eq!(iface.masquerade, ["10.98.0.0/24".parse::<IpNet>().unwrap()]);
        let mut reload = RecordingKernel::default();
        let restored = crate::state::restore::restore(&sb.ctx, &mut reload).unwrap();
        assert_eq!((restored.containers, restored.subnets), (1, 1));
        assert_eq!(record.pid, None);
        assert!(!record.is_stale(&sb.ctx.boot_id));
        let leases = LeaseStore::open(&sb.ctx.root, "n1").unwrap();
        let holder = leases.holder("10.98.0.2".parse().unwrap()).unwrap();
        assert_eq!(holder.map(|l| l.id).as_deref(), Some("cni-c1-net1"));
    }

    #[test]
    fn a_second_cni_add_of_the_same_attachment_is_refused_and_the_first_kept() {
        let sb = Sandbox::new("cni-twice");
        let target = cni_target(&sb, "cni-c1-eth0", "ns1");
        let req = cni_request("eth0", "n1", "10.98.0.0/24");
        attach_cni(&sb, &mut RecordingKernel::default(), &target, &req).unwrap();
        let mut again = RecordingKernel::default();
        let err = attach_cni(&sb, &mut again, &target, &req).unwrap_err();
        assert!(matches!(err, Error::Attached { .. }), "{err}");
        assert!(again.calls.is_empty(), "{:?}", again.calls);
        assert!(sb.ctx.records.load("cni-c1-eth0").unwrap().is_some());
        // The same container on another interface is another attachment.
        let eth1 = cni_target(&sb, "cni-c1-eth1", "ns1");
        let made = attach_cni(
            &sb,
            &mut RecordingKernel::default(),
            &eth1,
            &cni_request("eth1", "n1", "10.98.0.0/24"),
        )
        .unwrap();
        assert_eq!(made.interfaces[0].addresses[0].to_string(), "10.98.0.3/24");
        // Its namespace gone, the record is stale: a new ADD takes the id over.
        std::fs::remove_file(sb.dir.join("ns1")).unwrap();
        let target = cni_target(&sb, "cni-c1-eth0", "ns1-again");
        let mut over = RecordingKernel::default();
        attach_cni(&sb, &mut over, &target, &req).unwrap();
        assert_eq!(over.names()[0], "delete_link");
    }

    #[test]
    fn an_inline_network_that_disagrees_with_its_file_is_refused_before_anything() {
        let sb = Sandbox::new("cni-disagree");
        std::fs::create_dir_all(sb.dir.join("etc/networks")).unwrap();
        std::fs::write(
            sb.dir.join("etc/networks/n1.json"),
            r#"{"subnets":[{"subnet":"10.99.0.0/24"}]}"#,
        )
        .unwrap();
        let target = cni_target(&sb, "cni-c1-eth0", "ns1");
        let mut kernel = RecordingKernel::default();
        let err = attach_cni(
            &sb,
            &mut kernel,
            &target,
            &cni_request("eth0", "n1", "10.98.0.0/24"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("differently"), "{err}");
        assert!(kernel.calls.is_empty());
        assert!(sb.ctx.records.load("cni-c1-eth0").unwrap().is_none());
        // The same definition as the file's: one network for both.
        attach_cni(
            &sb,
            &mut RecordingKernel::default(),
            &target,
            &cni_request("eth0", "n1", "10.99.0.0/24"),
        )
        .unwrap();
    }

    #[test]
    fn check_finds_what_the_record_lists_and_says_what_is_missing() {
        let sb = Sandbox::new("cni-check");
        let target = cni_target(&sb, "cni-c1-eth0", "ns1");
        let mut kernel = RecordingKernel::default();
        attach_cni(
            &sb,
            &mut kernel,
            &target,
            &cni_request("eth0", "n1", "10.98.0.0/24"),
        )
        .unwrap();
        let made = check_with(&sb.ctx, &mut kernel, &target).unwrap();
        assert_eq!(made.interfaces[0].name, "eth0");
        let veth = made.interfaces[0].host_veth.clone();
        for (missing, says) in [(veth.as_str(), "host veth"), ("eth0", "no interface eth0")] {
            kernel.missing = vec![missing.to_string()];
            let err = check_with(&sb.ctx, &mut kernel, &target).unwrap_err();
            assert!(err.to_string().contains(says), "{err}");
        }
        kernel.missing.clear();
        kernel.configured = vec![("10.98.0.9".parse().unwrap(), 24)];
        let err = check_with(&sb.ctx, &mut kernel, &target).unwrap_err();
        assert!(
            err.to_string().contains("lacks its address 10.98.0.2/24"),
            "{err}"
        );
        let other = cni_target(&sb, "cni-c2-eth0", "ns2");
        let err = check_with(&sb.ctx, &mut kernel, &other).unwrap_err();
        assert!(matches!(err, Error::NotAttached(_)), "{err}");
    }

    #[test]
    fn a_record_of_the_previous_release_tears_down_completely() {
        let sb = Sandbox::new("v1");
        let v1 = include_str!("../../tests/fixtures/record-v1.json")
            .replace("0f3b8c1e-5d2a-4b7e-9c61-2a8d4e7f1b30", &sb.ctx.boot_id);
        let records = sb.ctx.root.path().join("containers");
        std::fs::write(records.join("web.json"), v1).unwrap();
        let leases = LeaseStore::open(&sb.ctx.root, "ocinet").unwrap();
        let txn = leases.begin().unwrap();
        txn.commit("172.17.0.5".parse().unwrap(), "web", &sb.ctx.boot_id)
            .unwrap();
        drop(txn);
        let mut kernel = RecordingKernel::default();
        detach_with(&sb.ctx, &mut kernel, "web").unwrap();
        assert_eq!(
            kernel.calls,
            [
                "unbind_netns_name ocinet-web",
                "firewall_remove 1 elements",
                "delete_link ocv5f2a1c9e0d7b"
            ]
        );
        assert_eq!(sb.lease_holder("172.17.0.5"), None);
        assert!(sb.ctx.records.load("web").unwrap().is_none());
    }
}
