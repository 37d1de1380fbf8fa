//! The shim's own commands: `ls`, `inspect`, `networks`, `gc`, `logs`, `reload`, each with
//! `--format json`. Their command line is parsed in `admin_cli`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use ocinet::context::Context;
use ocinet::engine::{cni_networks, gc};
use ocinet::network::{DriverKind, Network, DEFAULT_NETWORK};
use ocinet::overlay::state::{HostBlock, OverlayDir, PeerBlock};
use ocinet::ports::host_address;
use ocinet::ports::publish::PublishedPort;
use ocinet::state::activity;
use ocinet::state::record::Record;
use serde::Serialize;
use serde_json::json;

use crate::admin_cli::{AdminCommand, Format};
use crate::error::{Result, ShimError};
use ocinet::host::output;

/// Runs one admin command, parsed by `admin_cli`; returns the process exit code.
pub fn run(ctx: &Context, command: &AdminCommand) -> Result<i32> {
    let format = command.format();
    match command {
        AdminCommand::Ls(_) => print(format, &list(ctx)?, render_ls),
        AdminCommand::Inspect { ids, .. } => inspect(ctx, format, ids),
        AdminCommand::Networks(_) => print(format, &networks(ctx)?, render_networks),
        AdminCommand::Gc {
            cni_config_dirs, ..
        } => collect(ctx, format, cni_config_dirs),
        AdminCommand::Reload(_) => {
            let restored = ocinet::engine::reload(ctx)?;
            match format {
                Format::Json => say(format!(
                    "{}\n",
                    to_json(&json!({
                        "containers": restored.containers,
                        "subnets": restored.subnets,
                        "elements": restored.elements,
                    }))?
                ))?,
                Format::Table => say(format!(
                    "restored {} containers: {} masqueraded subnets, {} port elements\n",
                    restored.containers, restored.subnets, restored.elements
                ))?,
            }
            Ok(0)
        }
        AdminCommand::Logs { id, .. } => {
            let entries = activity::read(ctx.root.path(), id.as_deref())?;
            print(format, &entries, |entries| {
                entries.iter().map(|e| format!("{e}\n")).collect()
            })
        }
    }
}

fn print<T: Serialize>(format: Format, items: &[T], table: fn(&[T]) -> String) -> Result<i32> {
    match format {
        Format::Json => say(format!("{}\n", to_json(items)?))?,
        Format::Table => say(table(items))?,
    }
    Ok(0)
}

fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string_pretty(value).map_err(|e| ShimError::Runtime(e.to_string()))
}

/// One row of `ls`.
#[derive(Debug, Serialize)]
struct Summary {
    id: String,
    /// Who wired it: `oci-hook`, `cni`, `docker`.
    front_end: ocinet::state::record::FrontEnd,
    mode: String,
    network: Option<String>,
    address: Option<String>,
    /// Every address of the first interface (one per family).
    addresses: Vec<String>,
    ports: Vec<String>,
    running: bool,
}

fn summary(record: &Record, boot_id: &str) -> Summary {
    let first = record.interfaces.first();
    Summary {
        id: record.id.clone(),
        front_end: record.front_end,
        mode: record.mode.clone(),
        network: first.map(|i| i.network.clone()),
        address: record.primary_address().map(|a| a.to_string()),
        addresses: first
            .map(|i| i.addresses.iter().map(|a| a.to_string()).collect())
            .unwrap_or_default(),
        ports: record
            .interfaces
            .iter()
            .flat_map(|i| i.ports.iter().map(docker_port))
            .collect(),
        running: !record.is_stale(boot_id),
    }
}

/// Docker's notation: `0.0.0.0:8080->80/tcp`.
fn docker_port(p: &PublishedPort) -> String {
    format!(
        "{}:{}->{}/{}",
        host_address(p.host_ip),
        p.host,
        p.container,
        p.protocol
    )
}

/// Every readable record. A corrupt one is reported on stderr and skipped: one bad file must
/// not hide the other containers.
fn records(ctx: &Context) -> Result<Vec<Record>> {
    let (records, unreadable) = ctx.records.all()?;
    for problem in unreadable {
        ocinet::stderr_line!("ocinet-shim: {problem}");
    }
    Ok(records)
}

fn list(ctx: &Context) -> Result<Vec<Summary>> {
    Ok(records(ctx)?
        .iter()
        .map(|r| summary(r, &ctx.boot_id))
        .collect())
}

fn render_ls(rows: &[Summary]) -> String {
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_string());
    let mut lines = vec![[
        "ID".to_string(),
        "MODE".to_string(),
        "NETWORK".to_string(),
        "ADDRESS".to_string(),
        "PORTS".to_string(),
    ]];
    for r in rows {
        let mut mode = r.mode.clone();
        if !r.running {
            mode.push_str(" (stale)");
        }
        lines.push([
            r.id.clone(),
            mode,
            dash(&r.network),
            match r.addresses.is_empty() {
                true => "-".to_string(),
                false => r.addresses.join(", "),
            },
            if r.ports.is_empty() {
                "-".to_string()
            } else {
                r.ports.join(", ")
            },
        ]);
    }
    columns(&lines)
}

fn inspect(ctx: &Context, format: Format, ids: &[String]) -> Result<i32> {
    if ids.is_empty() {
        // clap asks for one already; kept for any other caller.
        return Err(ShimError::Usage("inspect needs a container id".to_string()));
    }
    let mut found = Vec::new();
    let mut code = 0;
    for id in ids {
        ocinet::validate::container_id(id).map_err(ShimError::Usage)?;
        match ctx.records.load(id)? {
            Some(record) => found.push(record),
            None => {
                ocinet::stderr_line!(
                    "ocinet-shim: no container {id} in {}",
                    ctx.root.path().display()
                );
                code = 1;
            }
        }
    }
    match format {
        Format::Json => {
            let items: Vec<_> = found
                .iter()
                .map(|r| json!({"running": !r.is_stale(&ctx.boot_id), "record": r}))
                .collect();
            say(format!("{}\n", to_json(&items)?))?;
        }
        Format::Table => {
            for r in &found {
                say(render_inspect(r, &ctx.boot_id))?;
            }
        }
    }
    Ok(code)
}

fn render_inspect(r: &Record, boot_id: &str) -> String {
    let mut out = vec![
        ("id", r.id.clone()),
        ("mode", r.mode.clone()),
        ("running", (!r.is_stale(boot_id)).to_string()),
        ("pid", r.pid.map_or("-".to_string(), |p| p.to_string())),
        // A CNI runtime's namespace has no `ip netns` name of ocinet's: its path says it.
        (
            "netns",
            r.netns_name
                .clone()
                .or_else(|| r.netns_path.as_ref().map(|p| p.display().to_string()))
                .unwrap_or_else(|| "-".to_string()),
        ),
    ];
    for b in &r.interfaces {
        let addresses: Vec<String> = b.addresses.iter().map(|a| a.to_string()).collect();
        let gateways: Vec<String> = b
            .addresses
            .iter()
            .filter_map(|a| a.gateway)
            .map(|g| g.to_string())
            .collect();
        out.extend([
            ("network", b.network.clone()),
            ("bridge", bridge_or_dash(&b.bridge)),
            ("host veth", b.host_veth.clone()),
            ("interface", b.name.clone()),
            ("address", addresses.join(", ")),
            ("gateway", gateways.join(", ")),
            ("mac", b.mac.clone().unwrap_or_else(|| "-".to_string())),
            // Its name first, then its aliases (as the resolver answers them on this network).
            (
                "name",
                b.names.first().cloned().unwrap_or_else(|| "-".to_string()),
            ),
            (
                "aliases",
                match b.names.get(1..) {
                    Some(a) if !a.is_empty() => a.join(", "),
                    _ => "-".to_string(),
                },
            ),
            (
                "ports",
                b.ports
                    .iter()
                    .map(docker_port)
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        ]);
    }
    let mut text: String = out
        .into_iter()
        .map(|(k, v)| format!("{k:<10} {v}\n"))
        .collect();
    text.push('\n');
    text
}

/// One network with the containers on it.
#[derive(Debug, Serialize)]
struct NetworkView {
    name: String,
    /// `None` for the default network before its subnet is chosen (at its first container).
    #[serde(skip)]
    network: Option<Network>,
    bridge: Option<String>,
    subnet: Option<String>,
    gateway: Option<String>,
    masquerade: Option<bool>,
    mtu: Option<u32>,
    internal: Option<bool>,
    isolate: Option<bool>,
    icc: Option<bool>,
    dns: Option<bool>,
    driver: Option<DriverKind>,
    /// Defined by a CNI configuration alone (no network file), as seen at its last ADD.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    cni: bool,
    /// An overlay's block on this host (while a container of it runs here).
    #[serde(skip_serializing_if = "Option::is_none")]
    block: Option<HostBlock>,
    /// An overlay's other hosts, as programmed here.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    peers: Vec<PeerBlock>,
    /// Container id -> address/prefix.
    containers: BTreeMap<String, String>,
}

impl NetworkView {
    fn new(name: String, network: Option<Network>) -> NetworkView {
        NetworkView {
            name,
            driver: network.as_ref().map(|n| n.driver),
            block: None,
            peers: Vec::new(),
            bridge: network.as_ref().map(|n| n.bridge.clone()),
            subnet: network.as_ref().map(subnets_of),
            gateway: network.as_ref().map(gateways_of),
            masquerade: network.as_ref().map(|n| n.masquerade),
            internal: network.as_ref().map(|n| n.internal),
            isolate: network.as_ref().map(|n| n.isolate),
            icc: network.as_ref().map(|n| n.icc),
            dns: network.as_ref().map(|n| n.dns),
            mtu: network.as_ref().map(|n| n.mtu),
            network,
            cni: false,
            containers: BTreeMap::new(),
        }
    }
}

/// A network's bridge; `-` for a routed network, which has none.
fn bridge_or_dash(bridge: &str) -> String {
    match bridge {
        "" => "-".to_string(),
        bridge => bridge.to_string(),
    }
}

/// A network's subnets, comma-separated (one per family).
fn subnets_of(n: &Network) -> String {
    let all: Vec<String> = n.subnets.iter().map(|s| s.subnet.to_string()).collect();
    all.join(",")
}

fn gateways_of(n: &Network) -> String {
    let all: Vec<String> = n.subnets.iter().map(|s| s.gateway.to_string()).collect();
    all.join(",")
}

/// `v4` alone, or `v4,v6` on a dual-stack overlay.
fn with_v6(v4: String, v6: Option<String>) -> String {
    match v6 {
        Some(v6) => format!("{v4},{v6}"),
        None => v4,
    }
}

fn networks(ctx: &Context) -> Result<Vec<NetworkView>> {
    let mut views: BTreeMap<String, NetworkView> = BTreeMap::new();
    let default = ctx.networks.known(&ctx.root, DEFAULT_NETWORK)?;
    views.insert(
        DEFAULT_NETWORK.to_string(),
        NetworkView::new(DEFAULT_NETWORK.to_string(), default),
    );
    for name in ctx.networks.names()? {
        let network = ctx.networks.load(&name)?;
        let mut view = NetworkView::new(name.clone(), network);
        if view.driver == Some(DriverKind::Overlay) {
            let dir = OverlayDir::open(&ctx.root, &name)?;
            view.block = dir.block()?;
            view.peers = dir.peers()?;
        }
        views.insert(name, view);
    }
    // Networks only CNI configurations define, as seen at their last ADD.
    for network in cni_networks::all(ctx)? {
        let name = network.name.clone();
        let mut view = NetworkView::new(name.clone(), Some(network));
        view.cni = true;
        views.entry(name).or_insert(view);
    }
    for record in records(ctx)? {
        for iface in &record.interfaces {
            if let Some(view) = views.get_mut(&iface.network) {
                let addresses: Vec<String> =
                    iface.addresses.iter().map(|a| a.to_string()).collect();
                if !addresses.is_empty() {
                    view.containers
                        .insert(record.id.clone(), addresses.join(","));
                }
            }
        }
    }
    Ok(views.into_values().collect())
}

fn render_networks(views: &[NetworkView]) -> String {
    let mut lines = vec![[
        "NAME".to_string(),
        "DRIVER".to_string(),
        "BRIDGE".to_string(),
        "SUBNET".to_string(),
        "GATEWAY".to_string(),
        "OPTIONS".to_string(),
        "CONTAINERS".to_string(),
        "BLOCK".to_string(),
        "PEERS".to_string(),
    ]];
    for v in views {
        let (driver, bridge, subnet, gateway) = match &v.network {
            Some(n) => (
                format!("{:?}", n.driver).to_lowercase(),
                bridge_or_dash(&n.bridge),
                subnets_of(n),
                gateways_of(n),
            ),
            None => (
                "bridge".into(),
                "-".into(),
                "(chosen at first use)".into(),
                "-".into(),
            ),
        };
        // An overlay's gateways here are its blocks' (an IPv6 one on a dual-stack overlay).
        let gateway = v.block.as_ref().map_or(gateway, |b| {
            with_v6(b.gateway.to_string(), b.gateway6.map(|g| g.to_string()))
        });
        let peers: Vec<String> = v
            .peers
            .iter()
            .map(|p| {
                let blocks = with_v6(p.block.to_string(), p.block6.map(|b| b.to_string()));
                format!("{blocks}@{}", p.underlay)
            })
            .collect();
        // The options between networks, as the file would say them.
        let options = match &v.network {
            Some(n) => format!(
                "{}dns={},internal={},isolate={},icc={}",
                if v.cni { "cni," } else { "" },
                n.dns,
                n.internal,
                n.isolate,
                n.icc
            ),
            None => "dns=false,internal=false,isolate=true,icc=true".to_string(),
        };
        lines.push([
            v.name.clone(),
            driver,
            bridge,
            subnet,
            gateway,
            options,
            v.containers.len().to_string(),
            v.block.as_ref().map_or("-".into(), |b| {
                with_v6(b.block.to_string(), b.block6.map(|b6| b6.to_string()))
            }),
            if peers.is_empty() {
                "-".into()
            } else {
                peers.join(",")
            },
        ]);
    }
    columns(&lines)
}

fn collect(ctx: &Context, format: Format, cni_config_dirs: &[PathBuf]) -> Result<i32> {
    let mut done = gc::collect(ctx)?;
    // After the containers: a network whose last attachment was stale is free now.
    let retired = cni_networks::configured_names(cni_config_dirs)
        .and_then(|configured| cni_networks::retire_unconfigured(ctx, &configured));
    let retired = retired.unwrap_or_else(|e| {
        done.errors.push(format!("CNI networks: {e}"));
        Vec::new()
    });
    match format {
        Format::Json => say(format!(
            "{}\n",
            to_json(
                &json!({"removed": done.removed, "busy": done.busy, "errors": done.errors,
                "networks_retired": retired})
            )?
        ))?,
        Format::Table => {
            for id in &done.removed {
                say(format!("removed {id}\n"))?;
            }
            for name in &retired {
                say(format!("retired network {name}\n"))?;
            }
        }
    }
    for e in &done.errors {
        ocinet::stderr_line!("ocinet-shim: gc: {e}");
    }
    Ok(if done.errors.is_empty() { 0 } else { 1 })
}

/// Left-aligned columns, two spaces apart.
fn columns<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// Writes a command's output; a reader gone (`| head`) ends the shim quietly.
fn say(text: impl AsRef<[u8]>) -> Result<()> {
    output::stdout(text).map_err(|e| ShimError::Runtime(format!("cannot write to stdout: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_columns_line_up() {
        let rows = [
            ["ID".to_string(), "MODE".to_string()],
            ["web-1".to_string(), "bridge:ocinet".to_string()],
        ];
        assert_eq!(columns(&rows), "ID     MODE\nweb-1  bridge:ocinet\n");
    }
}
