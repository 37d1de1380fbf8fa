//! The hook's side of an overlay network's agent: the agent holds this host's block in etcd,
//! keeps the lease alive and programs the tunnels to the other hosts, none of which a hook can
//! do. The first setup on a host starts it (as netavark starts aardvark-dns) when the bridge
//! driver prepares the network, before its plan; every setup checks that it still runs and
//! restarts a dead one, which rebuilds from the state root. Once it serves, its keeper
//! (`host::supervision`, told what it needs by [`supervised`]) starts it again within
//! milliseconds if it is killed, with no setup needed.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::context::{Context, Options};
use crate::error::{Error, Result};
use crate::host::helper::{self, StartError};
use crate::host::store::StateRoot;
use crate::host::supervision::{StartGuard, Supervised};
use crate::network::Network;
use crate::overlay::state::{in_use, HostBlock, OverlayDir};
use crate::state::ipam::LeaseStore;

/// The agent's binary name.
pub(crate) const NAME: &str = "ocinet-agent";

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
    let binary = helper::binary(NAME, "OCINET_AGENT").map_err(Error::Overlay)?;
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

/// What the keeper of the agent of `network` (a validated name) needs to know of it.
pub fn supervised(options: &Options, network: &str) -> AgentSupervision {
    AgentSupervision {
        options: options.clone(),
        network: network.to_string(),
    }
}

/// See [`supervised`].
pub struct AgentSupervision {
    options: Options,
    network: String,
}

impl AgentSupervision {
    /// The state root, unless it is gone: never made again here (a removed root ends the
    /// keeper instead).
    fn root(&self) -> Option<StateRoot> {
        self.options
            .root
            .is_dir()
            .then(|| StateRoot::open(&self.options.root).ok())
            .flatten()
    }
}

impl Supervised for AgentSupervision {
    fn name(&self) -> &str {
        NAME
    }

    fn dirs(&self) -> Vec<PathBuf> {
        let root = &self.options.root;
        vec![root.clone(), root.join("overlay").join(&self.network)]
    }

    /// The network's lease lock, under which a setup starts the agent (`ensure_running`).
    fn start_lock(&self) -> Result<StartGuard> {
        let root = self
            .root()
            .ok_or_else(|| Error::Overlay(format!("{} is gone", self.options.root.display())))?;
        Ok(Box::new(LeaseStore::open(&root, &self.network)?.begin()?))
    }

    fn running(&self) -> bool {
        self.root()
            .and_then(|root| OverlayDir::open(&root, &self.network).ok())
            .is_some_and(|dir| dir.live_agent().is_some())
    }

    /// A live container on the network: what the agent waits for before it leaves.
    fn needed(&self) -> bool {
        if self.root().is_none() {
            return false;
        }
        match Context::open(&self.options) {
            Ok(ctx) => in_use(&ctx, &self.network).unwrap_or(true),
            Err(_) => true,
        }
    }

    fn start_timeout(&self) -> Duration {
        START_TIMEOUT
    }
}
