//! The bench's containers on a cluster host: the networks they join, wired and unwired by the
//! hook as a runtime runs it.

use std::net::Ipv4Addr;
use std::time::Duration;

use serde_json::json;

use super::etcd::Etcd;
use super::lab::Host;
use super::{BRIDGE, BRIDGE_LINK, OVERLAY, OVERLAY6, OVERLAY6_LINK, OVERLAY_LINK};
use crate::exec::Result;
use crate::fleet::Container;

/// The networks (no names: what is measured is the wiring), the same files on every host (the bridge network and the dual-stack overlay
/// are used on host 1 only).
pub fn define_networks(host: &Host) -> Result<()> {
    host.hook.define(
        OVERLAY6,
        &json!({"driver": "overlay", "bridge": OVERLAY6_LINK,
            "subnets": [{"subnet": "10.201.0.0/16"}, {"subnet": "fd00:201::/64"}],
            "etcd": {"endpoints": [Etcd::endpoint()]}, "vni": 4201, "port": 4789, "masquerade": true, "dns": false}),
    )?;
    host.hook.define(
        OVERLAY,
        &json!({"driver": "overlay", "bridge": OVERLAY_LINK, "subnets": [{"subnet": "10.200.0.0/16"}],
            "etcd": {"endpoints": [Etcd::endpoint()]}, "vni": 4200, "port": 4789, "masquerade": true, "dns": false}),
    )?;
    host.hook.define(
        BRIDGE,
        &json!({"bridge": BRIDGE_LINK, "subnets": [{"subnet": "10.90.0.0/16"}], "masquerade": true, "dns": false}),
    )
}

/// A container of the bench: its process (a network namespace of its own), id and address.
pub struct Placed {
    pub id: String,
    pub process: Container,
    pub address: Ipv4Addr,
}

/// Wires `process` as container `id` on `network`; the setup's time.
pub fn place(
    host: &mut Host,
    id: &str,
    network: &str,
    process: Container,
) -> Result<(Placed, Duration)> {
    let bundle = host
        .hook
        .bundle(id, json!({"io.ocinet.network": network}))?;
    let took = host.run_hook("createRuntime", id, process.pid(), &bundle)?;
    let address = address_of(host, id)?;
    let placed = Placed {
        id: id.to_string(),
        process,
        address,
    };
    Ok((placed, took))
}

pub fn unplace(host: &mut Host, c: &Placed) -> Result<Duration> {
    let bundle = host.hook.bundle_dir(&c.id);
    host.run_hook("poststop", &c.id, 0, &bundle)
}

/// The address the hook gave container `id`, from its record.
fn address_of(host: &Host, id: &str) -> Result<Ipv4Addr> {
    let path = host
        .hook
        .root()
        .join("containers")
        .join(format!("{id}.json"));
    let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path:?}: {e}"))?;
    let record: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{path:?}: {e}"))?;
    record["interfaces"][0]["addresses"][0]["address"]
        .as_str()
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| format!("{path:?} names no IPv4 address"))
}
