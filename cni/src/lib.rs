//! `ocinet-cni`: a CNI plugin (type `ocinet`) on ocinet's engine, one more front end beside
//! the OCI hook. Reads CNI's environment (`env`) and configuration (`config`, each field's type
//! checked by `schema`, the reference bridge plugin's fields read by `bridge_plugin`), runs the command on the engine (`commands`) and writes the result in
//! the version asked (`result`, with the host links' MACs from `links`) or the specification's
//! error (`error`).

mod bridge_plugin;
pub mod commands;
pub mod config;
pub mod env;
pub mod error;
mod links;
pub mod result;
mod schema;
pub mod version;

use serde_json::Value;

use crate::config::Config;
use crate::env::Command;
use crate::error::{CniError, Result};
use crate::version::Version;

/// What the process prints on stdout, and its exit code.
pub struct Answer {
    pub stdout: Option<Value>,
    pub code: i32,
}

/// One invocation: the environment through `var`, the configuration from `input`.
pub fn run(var: &dyn Fn(&str) -> Option<String>, input: &[u8]) -> Answer {
    match execute(var, input) {
        Ok(stdout) => Answer { stdout, code: 0 },
        Err(e) => Answer {
            stdout: Some(e.to_json(asked_version(input))),
            code: 1,
        },
    }
}

fn execute(var: &dyn Fn(&str) -> Option<String>, input: &[u8]) -> Result<Option<Value>> {
    let env = env::read(var)?;
    if env.command == Command::Version {
        // Answered whatever the configuration: a runtime asks before it knows.
        return Ok(Some(commands::version(Version::parse(asked_version(
            input,
        )))));
    }
    let config = Config::parse(input)?;
    let attachment = || {
        env.attachment.as_ref().ok_or_else(|| {
            CniError::new(
                error::code::INVALID_ENVIRONMENT,
                "CNI_CONTAINERID is not set",
            )
        })
    };
    match env.command {
        Command::Add => commands::add(&config, &env, attachment()?).map(Some),
        Command::Del => commands::del(&config, attachment()?).map(|()| None),
        Command::Check => commands::check(&config, attachment()?).map(|()| None),
        Command::Gc => commands::gc(&config).map(|()| None),
        Command::Status => commands::status(&config).map(|()| None),
        Command::Version => Ok(None),
    }
}

/// The configuration's `cniVersion` as written, for an answer in the same version, else the
/// newest.
fn asked_version(input: &[u8]) -> &str {
    // A borrowed parse: only the one string is needed, even of a configuration that is wrong.
    #[derive(serde::Deserialize)]
    struct Versioned<'a> {
        #[serde(rename = "cniVersion", borrow)]
        version: Option<&'a str>,
    }
    serde_json::from_slice::<Versioned<'_>>(input)
        .ok()
        .and_then(|v| v.version)
        .unwrap_or("1.1.0")
}
