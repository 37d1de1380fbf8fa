//! The CNI commands on the engine: ADD is `attach`, DEL `detach`, CHECK `check`, GC
//! `collect_unlisted`; STATUS says whether an ADD could go through.

use std::path::Path;

use ocinet::context::Context;
use ocinet::engine::{self, NetnsRef, Target};
use ocinet::engine::{cni_networks, gc};
use ocinet::error::Error;
use ocinet::network::DriverKind;
use ocinet::request::{NetworkMode, NetworkRequest};
use ocinet::state::activity;
use ocinet::state::record::FrontEnd;
use serde_json::Value;

use crate::config::Config;
use crate::env::{Attachment, Environment};
use crate::error::{code, CniError, Result};
use crate::links;
use crate::result;
use crate::version::Version;

pub fn add(config: &Config, env: &Environment, a: &Attachment) -> Result<Value> {
    config.check_strict()?;
    let definition = config.network()?;
    let runtime = config.runtime(&env.args)?;
    let hairpin = config.hairpin()?;
    let netns = a.netns.clone().unwrap_or_default();
    let request = NetworkRequest {
        mode: NetworkMode::Bridge {
            network: config.name.clone(),
        },
        ports: runtime.ports,
        static_ip: runtime.ip,
        static_ip6: runtime.ip6,
        mac: runtime.mac,
        interface: a.ifname.clone(),
        definition,
        names: runtime.names,
    };
    let ctx = Context::open(&config.options)?;
    let target = target(a, &netns);
    let made = activity::logged(ctx.root.path(), &target.id, "cni-add", || {
        engine::attach(&ctx, FrontEnd::Cni, &target, &request)
    })
    .map_err(|e| match e {
        Error::Attached { .. } => CniError::new(
            code::INVALID_ENVIRONMENT,
            format!(
                "container {} already has interface {} (CNI_CONTAINERID, CNI_IFNAME): DEL it before adding it again",
                a.container_id, a.ifname
            ),
        ),
        e => e.into(),
    })?;
    // An inline network as seen at its last ADD, for `ocinet-shim networks` and `gc`.
    let remembered = match config.network_fields()? {
        Some(fields) => cni_networks::remember(&ctx, &config.name, &fields),
        None => Ok(()),
    };
    if let Err(e) = remembered {
        let _ = engine::detach(&ctx, &target.id);
        return Err(e.into());
    }
    if hairpin {
        for iface in &made.interfaces {
            let set = match iface.driver {
                DriverKind::Bridge | DriverKind::Overlay => {
                    engine::set_hairpin(&iface.host_veth).map_err(CniError::from)
                }
                DriverKind::Routed => Err(CniError::new(
                    code::UNSUPPORTED_FIELD,
                    format!(
                        "\"hairpinMode\" is a bridge port's, and network {} is routed (no bridge): remove it",
                        iface.network
                    ),
                )),
            };
            if let Err(e) = set {
                // Nothing half-made: the attachment goes with the error.
                let _ = engine::detach(&ctx, &target.id);
                return Err(e);
            }
        }
    }
    Ok(result::render(
        config.version,
        &made,
        &netns,
        config.prev_result()?,
        config.dns()?,
        &links::mac_of,
    ))
}

/// Idempotent: no record, nothing to do; the namespace may be gone (teardown needs only the
/// record). As the hook's poststop, the teardown finishes in a child (the runtime waits for DEL
/// at every stop); a next ADD of the id, or one asking for its ports, waits for it.
pub fn del(config: &Config, a: &Attachment) -> Result<()> {
    let ctx = Context::open(&config.options)?;
    let id = a.record_id();
    // Nothing to undo is no news for the log (an unreadable record goes on to say so).
    if matches!(ctx.records.load(&id), Ok(None)) {
        return Ok(());
    }
    activity::logged(ctx.root.path(), &id, "cni-del", || {
        engine::detach_deferred(&ctx, &id)
    })?;
    Ok(())
}

pub fn check(config: &Config, a: &Attachment) -> Result<()> {
    needs(config, config.version.has_check(), "CHECK", "0.4.0")?;
    config.check_strict()?;
    config.network()?;
    let ctx = Context::open(&config.options)?;
    let netns = a.netns.clone().unwrap_or_default();
    let made = engine::check(&ctx, &target(a, &netns))?;
    if let Some(prev) = config.prev_result()? {
        let listed = result::addresses(prev);
        for address in made.interfaces.iter().flat_map(|i| &i.addresses) {
            if !listed.contains(&address.to_string()) {
                return Err(CniError::new(
                    code::INTERNAL,
                    format!("{} has {address}, which prevResult does not list", a.ifname),
                ));
            }
        }
    }
    Ok(())
}

/// Tears down this network's CNI attachments that the runtime no longer lists.
pub fn gc(config: &Config) -> Result<()> {
    needs(config, config.version.has_gc_and_status(), "GC", "1.1.0")?;
    config.check_strict()?;
    let keep = config.valid_attachments()?;
    let ctx = Context::open(&config.options)?;
    let out = gc::collect_unlisted(&ctx, FrontEnd::Cni, &config.name, &keep)?;
    let mut problems = out.errors;
    problems.extend(out.busy.iter().map(|id| format!("{id}: busy")));
    if !problems.is_empty() {
        return Err(CniError::new(
            code::TRY_AGAIN_LATER,
            format!("garbage collection is incomplete: {}", problems.join("; ")),
        ));
    }
    Ok(())
}

/// Whether an ADD could go through: the configuration holds and the state root opens.
pub fn status(config: &Config) -> Result<()> {
    needs(
        config,
        config.version.has_gc_and_status(),
        "STATUS",
        "1.1.0",
    )?;
    config.check_strict()?;
    let network = config.network()?;
    let ctx = Context::open(&config.options)
        .map_err(|e| CniError::new(code::NOT_AVAILABLE, format!("ocinet cannot add now: {e}")))?;
    if let Some(network) = network {
        ctx.networks.check_inline(&network)?;
    }
    Ok(())
}

fn needs(config: &Config, has: bool, command: &str, since: &str) -> Result<()> {
    if has {
        return Ok(());
    }
    Err(CniError::new(
        code::INCOMPATIBLE_VERSION,
        format!(
            "{command} needs cniVersion {since} or newer, the configuration says {}",
            config.version.as_str()
        ),
    ))
}

fn target(a: &Attachment, netns: &Path) -> Target {
    Target {
        id: a.record_id(),
        netns: NetnsRef::Path(netns.to_path_buf()),
        pid: None,
    }
}

/// VERSION's answer: every version this plugin speaks.
pub fn version(asked: Option<Version>) -> Value {
    serde_json::json!({
        "cniVersion": asked.unwrap_or(Version::V1_1_0).as_str(),
        "supportedVersions": crate::version::SUPPORTED,
    })
}
