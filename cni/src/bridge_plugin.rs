//! The reference `bridge` plugin's configuration, with its meaning: a conflist podman
//! generated works with only `"type": "bridge"` changed to `"type": "ocinet"`. `bridge` and
//! `mtu` are ocinet's own fields already (same meaning); the others are read here into the
//! network's fields (`ipam`'s host-local ranges into `subnets`, `ipMasq` into `masquerade`) or
//! into what ADD does after the attach (`hairpinMode`), and what ocinet cannot do as the bridge
//! plugin does is refused in one line saying why. Types are `schema`'s check, made before.

use std::net::IpAddr;

use ipnet::IpNet;
use ocinet::network::first_host;
use serde_json::{json, Map, Value};

use crate::error::{code, CniError, Result};

/// The bridge plugin's keys that are not ocinet's own.
pub(crate) const KEYS: &[&str] = &[
    "isGateway",
    "isDefaultGateway",
    "ipMasq",
    "hairpinMode",
    "promiscMode",
    "vlan",
    "ipam",
];

/// What the bridge plugin's keys ask of ocinet.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Reading {
    /// Network fields they stand for (`subnets`, `masquerade`).
    pub(crate) fields: Map<String, Value>,
    /// `hairpinMode: true`: the host veth's bridge port reflects frames, whoever publishes
    /// ports (ocinet turns it on itself only for the ports it publishes; `portmap` chained
    /// after ocinet needs it too).
    pub(crate) hairpin: bool,
}

fn unsupported(msg: String) -> CniError {
    CniError::new(code::UNSUPPORTED_FIELD, msg)
}

fn invalid(msg: String) -> CniError {
    CniError::new(code::INVALID_CONFIG, msg)
}

/// Reads the bridge plugin's keys of `raw` (typed by `schema`: a value here is of its type
/// or null, which is absent).
pub(crate) fn read(raw: &Map<String, Value>) -> Result<Reading> {
    let given = |key: &str| raw.get(key).filter(|v| !v.is_null());
    let flag = |key: &str| given(key).and_then(Value::as_bool);
    let ipam = given("ipam").and_then(Value::as_object);
    let mut out = Reading::default();
    let default_gateway = flag("isDefaultGateway");
    // isDefaultGateway implies isGateway in the bridge plugin.
    let is_gateway = flag("isGateway").or(default_gateway.filter(|d| *d));
    match is_gateway {
        Some(false) => {
            return Err(unsupported(
                "\"isGateway\": false is not supported: ocinet's bridge always holds the network's gateway, which its containers route through; remove it or set it true".to_string(),
            ))
        }
        None if ipam.is_some() => {
            return Err(unsupported(
                "\"isGateway\" is absent, which the bridge plugin reads as false (a bridge without the gateway), but ocinet's bridge always holds it: set \"isGateway\": true".to_string(),
            ))
        }
        _ => {}
    }
    if ipam.is_none() && default_gateway == Some(false) {
        return Err(unsupported(
            "\"isDefaultGateway\": false is not supported without \"ipam\": ocinet always gives the container its default route through the gateway; remove it".to_string(),
        ));
    }
    if flag("promiscMode") == Some(true) {
        return Err(unsupported(
            "\"promiscMode\": true is not supported: ocinet leaves the bridge out of promiscuous mode (its ports reach each other and the host without it); remove it".to_string(),
        ));
    }
    if let Some(vlan) = given("vlan").and_then(Value::as_i64).filter(|v| *v != 0) {
        return Err(unsupported(format!(
            "\"vlan\": {vlan} is not supported: ocinet's bridges carry no 802.1q tags (this kernel has no 8021q module); remove it"
        )));
    }
    match flag("hairpinMode") {
        Some(true) => out.hairpin = true,
        Some(false) if publishes_ports(raw) => {
            return Err(unsupported(
                "\"hairpinMode\": false with ocinet publishing ports (capabilities.portMappings) is not supported: ocinet turns hairpin on for a container that publishes ports, so that it reaches itself at them; remove it".to_string(),
            ))
        }
        _ => {}
    }
    if let Some(masquerade) = flag("ipMasq") {
        if flag("masquerade").is_some_and(|m| m != masquerade) {
            return Err(invalid(format!(
                "\"ipMasq\": {masquerade} and \"masquerade\": {} disagree: give one",
                !masquerade
            )));
        }
        out.fields.insert("masquerade".into(), json!(masquerade));
    }
    if let Some(ipam) = ipam {
        let subnets = host_local(ipam, default_gateway)?;
        if given("subnets").is_some() {
            return Err(invalid(
                "\"ipam\" and \"subnets\" both give the network's subnets: give one".to_string(),
            ));
        }
        out.fields.insert("subnets".into(), subnets);
        // The bridge plugin masquerades only when asked.
        out.fields
            .entry("masquerade")
            .or_insert_with(|| json!(flag("masquerade").unwrap_or(false)));
    }
    Ok(out)
}

/// Whether ocinet publishes ports itself (the runtime passes them only to a plugin that
/// declares the capability).
fn publishes_ports(raw: &Map<String, Value>) -> bool {
    raw.get("capabilities")
        .and_then(|c| c.get("portMappings"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// host-local's `ranges` as ocinet's `subnets`; its `routes` must be what ocinet gives the
/// container (the default route through the gateway, per family), no more, no less.
fn host_local(ipam: &Map<String, Value>, default_gateway: Option<bool>) -> Result<Value> {
    let kind = ipam.get("type").and_then(Value::as_str).unwrap_or("");
    if kind != "host-local" {
        return Err(unsupported(format!(
            "\"ipam\" of type {kind:?} is not supported: ocinet leases the addresses itself, from the subnets of a \"host-local\" configuration's \"ranges\""
        )));
    }
    for (key, value) in ipam {
        if !["type", "ranges", "routes"].contains(&key.as_str()) && !value.is_null() {
            return Err(unsupported(format!(
                "\"ipam.{key}\" is not supported: ocinet reads host-local's \"ranges\" (subnet, gateway) and \"routes\", and keeps its leases in its state root"
            )));
        }
    }
    let sets = ipam.get("ranges").and_then(Value::as_array);
    let sets = sets.filter(|s| !s.is_empty()).ok_or_else(|| {
        invalid("\"ipam.ranges\" is missing: give [[{\"subnet\": \"10.88.0.0/16\"}]]".to_string())
    })?;
    let mut subnets = Vec::new();
    let mut gateways: Vec<IpAddr> = Vec::new();
    for (i, set) in sets.iter().enumerate() {
        let at = format!("ipam.ranges[{i}]");
        let ranges = set.as_array().map(Vec::as_slice).unwrap_or_default();
        let [range] = ranges else {
            return Err(unsupported(format!(
                "\"{at}\" has {} ranges: ocinet leases from one subnet per range set",
                ranges.len()
            )));
        };
        for key in ["rangeStart", "rangeEnd"] {
            if range.get(key).is_some_and(|v| !v.is_null()) {
                return Err(unsupported(format!(
                    "\"{at}[0].{key}\" is not supported: ocinet leases from the whole subnet; give a smaller subnet instead"
                )));
            }
        }
        let text = range
            .get("subnet")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(format!("\"{at}[0].subnet\" is missing")))?;
        let subnet: IpNet = text
            .parse()
            .map_err(|_| invalid(format!("\"{at}[0].subnet\" {text:?} is not a CIDR")))?;
        let gateway = range.get("gateway").and_then(Value::as_str);
        let mut entry = json!({"subnet": text});
        if let Some(g) = gateway {
            entry["gateway"] = json!(g);
        }
        // A bad gateway is the network parser's to say; compared here only when it parses.
        gateways.push(
            gateway
                .and_then(|g| g.parse().ok())
                .unwrap_or_else(|| first_host(subnet)),
        );
        subnets.push(entry);
    }
    let routes = ipam.get("routes").and_then(Value::as_array);
    let mut routed: Vec<bool> = vec![false; gateways.len()];
    for (i, route) in routes.into_iter().flatten().enumerate() {
        let at = format!("ipam.routes[{i}]");
        let dst = route.get("dst").and_then(Value::as_str).unwrap_or("");
        let default = dst
            .parse::<IpNet>()
            .ok()
            .filter(|n| n.prefix_len() == 0)
            .ok_or_else(|| {
                unsupported(format!(
                    "\"{at}\" to {dst:?} is not supported: ocinet gives the container only its default route through the gateway (\"dst\": \"0.0.0.0/0\" or \"::/0\")"
                ))
            })?;
        let family = gateways
            .iter()
            .position(|g| g.is_ipv4() == default.addr().is_ipv4())
            .ok_or_else(|| {
                invalid(format!(
                    "\"{at}\" is a default route of a family no range has"
                ))
            })?;
        if let Some(gw) = route.get("gw").and_then(Value::as_str) {
            if gw.parse::<IpAddr>().ok() != Some(gateways[family]) {
                return Err(unsupported(format!(
                    "\"{at}\" through {gw:?} is not supported: ocinet routes the container through the network's gateway {}; remove \"gw\"",
                    gateways[family]
                )));
            }
        }
        routed[family] = true;
    }
    if default_gateway != Some(true) {
        if let Some(i) = routed.iter().position(|r| !r) {
            let dst = if gateways[i].is_ipv4() {
                "0.0.0.0/0"
            } else {
                "::/0"
            };
            return Err(unsupported(format!(
                "the container would get no default route through {} (no {{\"dst\": \"{dst}\"}} in \"ipam.routes\", no \"isDefaultGateway\": true), but ocinet always gives it one: add it",
                gateways[i]
            )));
        }
    }
    Ok(Value::Array(subnets))
}

#[cfg(test)]
mod tests;
