//! The plugin's errors: each goes back to dockerd as `{"Err": "<one line>"}`, which `docker`
//! shows the user.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request dockerd should not send, or one this plugin cannot serve.
    #[error("{0}")]
    Request(String),

    #[error(transparent)]
    Engine(#[from] ocinet::error::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub fn bad(message: impl Into<String>) -> Error {
    Error::Request(message.into())
}
