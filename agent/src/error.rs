//! The agent's errors: each one line that says what is wrong and, where the user can act, how
//! to fix it (the hook shows it to the user as the container's setup error).

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("usage: {0}")]
    Usage(String),

    #[error(transparent)]
    Engine(#[from] ocinet::error::Error),

    #[error("network {network}: {reason}")]
    Config { network: String, reason: String },

    #[error("cannot reach etcd at {endpoints}: {reason}; check that etcd runs and this host may reach it")]
    Unreachable { endpoints: String, reason: String },

    #[error("etcd at {endpoints}: {reason}")]
    Etcd { endpoints: String, reason: String },

    #[error("network {network} ({subnet}) has no free block of /{block} left: every block is held by another host; use a larger subnet or a smaller block")]
    Full {
        network: String,
        subnet: String,
        block: u8,
    },

    #[error("{0}")]
    Underlay(String),
}

pub type Result<T, E = AgentError> = std::result::Result<T, E>;
