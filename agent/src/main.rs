//! `ocinet-agent --network NAME [--root DIR] [--config-dir DIR]`: an overlay network's agent on
//! this host. The hook starts it on the network's first container here and it leaves when the
//! last one is gone (or its state root is); killed, its keeper (the same binary,
//! `ocinet::host::supervision`) starts it again at once. It is not meant to be run by hand but
//! may be (to watch its log; it then has no keeper).

mod agent;
mod blocks;
mod cluster;
mod direct;
mod error;
mod host_block;
mod lease;
mod peers;
mod ready;
mod tunnels;
mod underlay;
mod vxlan;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use ocinet::context::options_from;
use ocinet::host::supervision;

use crate::agent::Args;
use crate::error::AgentError;
use crate::ready::Ready;

const USAGE: &str = "ocinet-agent --network NAME [--root DIR] [--config-dir DIR]";
/// Where the hook passes its end of the ready pipe.
const READY_FD: i32 = 3;

fn main() -> ExitCode {
    let mut ready = Ready::inherited(READY_FD);
    let result = parse(std::env::args().skip(1).collect()).and_then(|args| match args {
        Some(args) => {
            // A keeper runs its loop in here and never returns.
            let supervision = supervision::enter(&ocinet::overlay::agent::supervised(
                &args.options,
                &args.network,
            ));
            agent::run(&args, &mut ready, &supervision)
        }
        None => Ok(()),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let line = e.to_string().replace(['\n', '\r'], " ");
            // The pipe first: it needs no disk (the log may be on a full one).
            ready.fail(&line);
            ocinet::stderr_line!("ocinet-agent: {line}");
            ExitCode::FAILURE
        }
    }
}

/// `None` when help or version was asked (and printed).
fn parse(words: Vec<String>) -> Result<Option<Args>, AgentError> {
    let mut root = None;
    let mut config_dir = None;
    let mut network = None;
    let mut words = words.into_iter();
    while let Some(word) = words.next() {
        let (flag, inline) = match word.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (word.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| words.next())
                .ok_or_else(|| AgentError::Usage(format!("{flag} needs a value; {USAGE}")))
        };
        match flag.as_str() {
            "--root" => root = Some(PathBuf::from(value()?)),
            "--config-dir" => config_dir = Some(PathBuf::from(value()?)),
            "--network" => network = Some(value()?),
            "-h" | "--help" => {
                let _ = ocinet::host::output::stdout(format!("{USAGE}\nHolds this host's block of an overlay network in etcd and programs its VXLAN tunnels.\n"));
                return Ok(None);
            }
            "-v" | "--version" => {
                let _ = ocinet::host::output::stdout(format!(
                    "ocinet-agent {}\n",
                    env!("CARGO_PKG_VERSION")
                ));
                return Ok(None);
            }
            other => return Err(AgentError::Usage(format!("unexpected {other:?}; {USAGE}"))),
        }
    }
    let network =
        network.ok_or_else(|| AgentError::Usage(format!("missing --network; {USAGE}")))?;
    ocinet::validate::network_name(&network).map_err(AgentError::Usage)?;
    Ok(Some(Args {
        options: options_from(root, config_dir),
        network,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|w| w.to_string()).collect()
    }

    fn usage_error(list: &[&str]) -> String {
        match parse(words(list)) {
            Err(e @ AgentError::Usage(_)) => e.to_string(),
            Err(other) => panic!("{list:?}: not a usage error: {other}"),
            Ok(_) => panic!("{list:?} was accepted"),
        }
    }

    #[test]
    fn flags_take_their_value_after_a_space_or_an_equals_sign() {
        for list in [
            ["--network", "blue", "--root", "/r", "--config-dir", "/c"].as_slice(),
            &["--network=blue", "--root=/r", "--config-dir=/c"],
            &["--config-dir=/c", "--root", "/r", "--network=blue"],
        ] {
            let args = parse(words(list)).unwrap().expect("arguments to run with");
            assert_eq!(args.network, "blue", "{list:?}");
            assert_eq!(args.options.root, PathBuf::from("/r"), "{list:?}");
            assert_eq!(args.options.config_dir, PathBuf::from("/c"), "{list:?}");
        }
        // The last of a repeated flag counts.
        let args = parse(words(&["--network", "blue", "--network", "red"]))
            .unwrap()
            .unwrap();
        assert_eq!(args.network, "red");
    }

    #[test]
    fn help_and_version_run_nothing() {
        for flag in ["-h", "--help", "-v", "--version"] {
            assert!(parse(words(&[flag])).unwrap().is_none(), "{flag}");
        }
    }

    #[test]
    fn wrong_arguments_are_usage_errors_that_say_what_is_wrong() {
        for (list, says) in [
            (&[][..], "missing --network"),
            (&["--network"], "--network needs a value"),
            (&["--root=/r"], "missing --network"),
            (&["--network", "blue", "--bogus"], "unexpected \"--bogus\""),
            (&["--network", "blue", "extra"], "unexpected \"extra\""),
            (&["-h=1"], "unexpected \"-h=1\""),
            (&["--network", "not a name"], "network name \"not a name\""),
            (&["--network="], "network name \"\""),
        ] {
            let said = usage_error(list);
            assert!(said.starts_with("usage: "), "{list:?}: {said}");
            assert!(said.contains(says), "{list:?}: {said}");
        }
    }
}
