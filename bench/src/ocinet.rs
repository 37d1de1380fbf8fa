//! ocinet as one of the benchmark's backends: a lane (bridge, subnet, host ports) and the hook
//! that wires it.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::backend::{bridge_ports, count_files, Backend, Leaks};
use crate::exec::{self, Result};
use crate::fleet::Container;
use crate::hook::Hook;
use crate::reach::Target;

pub const NETWORK: &str = "bench";

/// Where one ocinet build works: its own bridge, subnet, host ports and directories, so two
/// builds can run side by side (the A/B mode).
pub struct Lane {
    pub name: &'static str,
    /// Empty for a routed network.
    pub bridge: &'static str,
    pub subnet: &'static str,
    /// An IPv6 subnet beside the IPv4 one: a dual-stack network.
    pub subnet6: Option<&'static str>,
    pub port_base: u16,
    /// A routed network (`"driver": "routed"`) rather than a bridge.
    pub routed: bool,
}

/// The lane of the main benchmark.
pub const MAIN: Lane = Lane {
    name: "ocinet",
    bridge: "ocbench0",
    subnet: "10.90.0.0/16",
    subnet6: None,
    port_base: 10001,
    routed: false,
};

/// ocinet on a routed network, beside the others in the main run.
pub const ROUTED: Lane = Lane {
    name: "ocinet-routed",
    bridge: "",
    subnet: "10.95.0.0/16",
    subnet6: None,
    // Below the other backends' ports and the end-to-end run's range (50000-50999).
    port_base: 1001,
    routed: true,
};

/// The second build's lane in the A/B mode (CNI and netavark do not run then).
pub const SECOND: Lane = Lane {
    name: "ocinet-b",
    bridge: "ocbench1",
    subnet: "10.93.0.0/16",
    subnet6: None,
    port_base: 40001,
    routed: false,
};

/// ocinet on a dual-stack bridge network (`--dual-stack`), beside the IPv4-only `MAIN`.
pub const DUAL: Lane = Lane {
    name: "ocinet-dual",
    bridge: "ocbench2",
    subnet: "10.94.0.0/16",
    subnet6: Some("fd00:94::/64"),
    port_base: 41001,
    routed: false,
};

/// The main run's first phase, ocinet alone on the machine (torn down before the others run).
pub const ALONE: Lane = Lane {
    name: "ocinet-alone",
    ..SECOND
};

/// Beside `ALONE` in that phase: a routed network with only ocinet on the machine.
pub const ALONE_ROUTED: Lane = Lane {
    name: "ocinet-alone-routed",
    subnet: "10.96.0.0/16",
    ..ROUTED
};

pub struct Ocinet {
    lane: &'static Lane,
    pub hook: Hook,
}

impl Ocinet {
    pub fn new(hook: &Path, work: &Path, lane: &'static Lane) -> Result<Ocinet> {
        Self::with_dns_field(hook, work, lane, true)
    }

    /// For a build older than names, which refuses the `dns` field (and has no names).
    pub fn before_names(hook: &Path, work: &Path, lane: &'static Lane) -> Result<Ocinet> {
        Self::with_dns_field(hook, work, lane, false)
    }

    fn with_dns_field(
        hook: &Path,
        work: &Path,
        lane: &'static Lane,
        dns_field: bool,
    ) -> Result<Ocinet> {
        let hook = Hook::new(hook, &work.join(lane.name))?;
        let mut subnets = vec![json!({"subnet": lane.subnet})];
        subnets.extend(lane.subnet6.map(|s| json!({"subnet": s})));
        let mut def = match lane.routed {
            true => json!({"driver": "routed", "subnets": subnets, "masquerade": true}),
            false => json!({"bridge": lane.bridge, "subnets": subnets, "masquerade": true}),
        };
        if dns_field {
            // No names: the CNI chain and netavark run without a DNS plugin here.
            def["dns"] = json!(false);
        }
        hook.define(NETWORK, &def)?;
        Ok(Ocinet { lane, hook })
    }

    /// Container `i`'s id, unique across lanes.
    fn id(&self, i: usize) -> String {
        format!("{}-{i}", self.lane.name)
    }
}

impl Backend for Ocinet {
    fn name(&self) -> &'static str {
        self.lane.name
    }

    fn setup(&mut self, i: usize, c: &Container) -> Result<Duration> {
        let port = self.lane.port_base as usize + i;
        let id = self.id(i);
        let bundle = self.hook.bundle(
            &id,
            json!({"io.ocinet.network": format!("bridge:{NETWORK}"), "io.ocinet.ports": format!("{port}:80")}),
        )?;
        self.hook.run("createRuntime", &id, c.pid(), &bundle)
    }

    fn teardown(&mut self, i: usize, _c: &Container) -> Result<Duration> {
        let id = self.id(i);
        let bundle = self.hook.bundle_dir(&id);
        self.hook.run("poststop", &id, 0, &bundle)
    }

    fn routed(&self) -> bool {
        self.lane.routed
    }

    fn setup_usage(&self) -> Option<&[crate::exec::Usage]> {
        Some(&self.hook.setup_usage)
    }

    /// The container's address from its record (as `ocinet-shim inspect` reads it); its port
    /// published on the network's gateway, an address of the host.
    fn target(&self, i: usize) -> Result<Option<Target>> {
        let path = self
            .hook
            .root()
            .join("containers")
            .join(format!("{}.json", self.id(i)));
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path:?}: {e}"))?;
        let record: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("{path:?}: {e}"))?;
        let address = &record["interfaces"][0]["addresses"][0];
        let parse = |v: &serde_json::Value| v.as_str().and_then(|a| a.parse::<Ipv4Addr>().ok());
        let (Some(address), Some(gateway)) =
            (parse(&address["address"]), parse(&address["gateway"]))
        else {
            return Err(format!("{path:?} names no IPv4 address and gateway"));
        };
        let port = self.lane.port_base + i as u16;
        Ok(Some(Target {
            address,
            published: SocketAddrV4::new(gateway, port),
        }))
    }

    fn leaks(&self) -> Result<Leaks> {
        // A poststop's teardown finishes in a child of the hook: counted once they are done.
        self.hook.settle();
        let leases = count_files(
            &self.hook.root().join("networks").join(NETWORK).join("leases"),
            &|_| true,
        )
        // Records are `<id>.json`; the `.lock-NN` files are the fixed set of per-id lock stripes.
        + count_files(&self.hook.root().join("containers"), &|n| n.ends_with(".json"))
            + count_files(&self.hook.root().join("ports"), &|n| n != "lock");
        Ok(Leaks {
            // A routed container's veth is known by the host's route to it.
            links: match self.lane.routed {
                true => routes_through_links(self.lane.subnet)?,
                false => bridge_ports(self.lane.bridge)?,
            },
            rules: dnat_elements(self.lane.port_base)?,
            leases: Some(leases),
        })
    }
}

/// Host routes into `subnet` through a link (a routed container's veth); the subnet's own
/// `unreachable` route has none.
fn routes_through_links(subnet: &str) -> Result<usize> {
    let out = exec::output(
        "ip route show root",
        Command::new("ip").args(["-4", "-o", "route", "show", "root", subnet]),
    )?;
    Ok(out.lines().filter(|l| l.contains(" dev ")).count())
}

/// Elements left in ocinet's DNAT maps for host ports from `port_base` on (0 when the table
/// does not exist).
pub fn dnat_elements(port_base: u16) -> Result<usize> {
    let out = Command::new("nft")
        .args(["-j", "list", "table", "inet", "ocinet"])
        .output()
        .map_err(|e| format!("cannot run nft: {e}"))?;
    if !out.status.success() {
        return Ok(0);
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("nft -j output: {e}"))?;
    let items = v["nftables"].as_array().cloned().unwrap_or_default();
    Ok(items
        .iter()
        .filter_map(|o| o.get("map"))
        // dnat_* and the IPv6 dnat6_*.
        .filter(|m| m["name"].as_str().is_some_and(|n| n.starts_with("dnat")))
        .filter_map(|m| m["elem"].as_array())
        .flatten()
        .filter(|e| {
            host_port(e).is_some_and(|p| (port_base..port_base.saturating_add(9000)).contains(&p))
        })
        .count())
}

/// The host port of a DNAT map element in `nft -j` form: `[[key concat], value]`, the key's
/// last field the port or a range.
fn host_port(element: &serde_json::Value) -> Option<u16> {
    let key = &element.as_array()?.first()?["concat"];
    let port = key.as_array()?.last()?;
    let port = port.as_u64().or_else(|| port["range"][0].as_u64())?;
    u16::try_from(port).ok()
}
