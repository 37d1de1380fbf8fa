//! The hook's side of an overlay network: the files it shares with the network's agent
//! (`state`: this host's block, the peers, the agent's pid) and the agent's start on demand
//! (`agent`, which also tells the agent's keeper what it needs). The agent itself (etcd, the VXLAN device) is the `ocinet-agent` crate.

pub mod agent;
pub mod state;
