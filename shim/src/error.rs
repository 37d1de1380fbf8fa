//! The shim's errors: each is printed as one line, prefixed `ocinet-shim:`.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error("usage: {0}")]
    Usage(String),

    /// A bad admin command line; `message` is clap's, flattened to one line.
    #[error("{message}; see 'ocinet-shim {command} --help'")]
    Arguments { command: String, message: String },

    #[error("cannot use {path}: {reason}")]
    Config { path: PathBuf, reason: String },

    #[error("{0}")]
    Engine(#[from] ocinet::error::Error),

    #[error("{0}")]
    Runtime(String),
}

pub type Result<T, E = ShimError> = std::result::Result<T, E>;
