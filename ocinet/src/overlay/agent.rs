//! The hook's side of an overlay network's agent: the agent holds this host's block in etcd,
//! keeps the lease alive and programs the tunnels to the other hosts, none of which a hook can
//! do. The first setup on a host starts it (as netavark starts aardvark-dns) when the bridge
//! driver prepares the network, before its plan; every setup checks that it still runs and
//! restarts a dead one, which rebuilds from the state root.

use std::process::Command;
use std::time::Duration;

use crate::context::Context;
use crate::error::{Error, Result};
use crate::host::helper::{self, StartError};
use crate::network::Network;
use crate::overlay::state::{HostBlock, OverlayDir};

/// How long a setup waits for a new agent: reaching etcd and leasing a block.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Starts the agent of `network` unless it runs, and returns this host's block of the network,
/// which the agent leased. The caller holds the network's lease lock: two setups never start
/// two agents, and the agent, which decides under that lock to leave once no live record uses
/// the network, cannot leave before the caller's record is written.
pub(crate) fn ensure_running(ctx: &Context, network: &Network) -> Result<HostBlock> {
    let dir = OverlayDir::open(&ctx.root, &network.name)?;
    if dir.live_agent().is_some() {
        if let Some(block) = dir.block()? {
            return Ok(block);
        }
    }
    // Checked when the host joins (not on every setup): the other files do not change often.
    ctx.networks.check_no_overlap(&ctx.root, network)?;
    start(ctx, network, &dir)?;
    dir.block()?
        .ok_or_else(|| agent_failed(network, "it said it was ready but wrote no block", &dir))
}

fn agent_failed(network: &Network, why: &str, dir: &OverlayDir) -> Error {
    Error::Overlay(format!(
        "the overlay agent of network {} failed: {why} (log: {})",
        network.name,
        dir.log_path().display()
    ))
}

/// Starts the agent detached (`helper.rs`) and waits for its word.
fn start(ctx: &Context, network: &Network, dir: &OverlayDir) -> Result<()> {
    let binary = helper::binary("ocinet-agent", "OCINET_AGENT").map_err(Error::Overlay)?;
    let mut cmd = Command::new(binary);
    cmd.arg("--root")
        .arg(ctx.root.path())
        .arg("--config-dir")
        .arg(&ctx.config_dir)
        .arg("--network")
        .arg(&network.name);
    match helper::start(cmd, &dir.log_path(), START_TIMEOUT) {
        Ok(()) => Ok(()),
        Err(StartError::Spawn(why)) => Err(Error::Overlay(format!("the overlay agent: {why}"))),
        Err(StartError::Refused(why)) => Err(Error::Overlay(why)),
        Err(StartError::Silent(why)) => Err(agent_failed(network, &why, dir)),
    }
}
