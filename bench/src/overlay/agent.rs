//! What a host's overlay agent shows in its state root (`<root>/overlay/<network>/`): whether
//! it runs, the peers it programmed, what it logged.

use super::lab::Host;
use super::OVERLAY;

const AGENT: &str = "ocinet-agent";

fn dir(host: &Host) -> std::path::PathBuf {
    host.hook.root().join("overlay").join(OVERLAY)
}

/// Lines of the host's agent log beyond the two of every life (the block it holds, its
/// leaving): what went wrong in between, if anything.
pub fn complaints(host: &Host) -> Vec<String> {
    let log = dir(host).join("agent.log");
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.contains(" holds block ") && !l.ends_with(" left this host"))
        .map(|l| format!("{}: {l}", host.name))
        .collect()
}

/// What a host's agent logged and programmed, for an error that needs explaining.
pub fn diagnose(host: &Host) -> String {
    let log = dir(host).join("agent.log");
    let state = host
        .sh("ip -d link show ocx4200; ip route show proto 111; ip neigh show dev ocx4200; bridge fdb show dev ocx4200; ip neigh show dev eth0")
        .unwrap_or_else(|e| e);
    format!(
        "{} ({}): agent log:\n{}peers: {:?}\n{state}",
        host.name,
        host.address,
        std::fs::read_to_string(log).unwrap_or_default(),
        peers_of(host)
    )
}

pub fn running(host: &Host) -> bool {
    host.processes().iter().any(|(comm, _)| comm == AGENT)
}

/// The underlay addresses of the other hosts, as `host`'s agent last programmed them.
pub fn peers_of(host: &Host) -> Vec<String> {
    let path = dir(host).join("peers.json");
    let peers: serde_json::Value = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    peers
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["underlay"].as_str().map(str::to_string))
        .collect()
}

/// When the agent wrote `file` (`agent.pid` once it runs, `block.json` once it holds its block
/// and its VXLAN device is up): the file's time, to the kernel's clock tick.
pub fn written(host: &Host, file: &str) -> crate::exec::Result<std::time::SystemTime> {
    std::fs::metadata(dir(host).join(file))
        .and_then(|m| m.modified())
        .map_err(|e| format!("the agent's {file}: {e}"))
}
