//! The hook's side of an overlay network: the files it shares with the network's agent
//! (`state`: this host's block, the peers, the agent's pid) and the agent's start on demand
//! (`agent`). The agent itself (etcd, the VXLAN device) is the `ocinet-agent` crate.

pub(crate) mod agent;
pub mod state;
