//! `ocinet-hook [--root R] [--config-dir C] <stage>`: the OCI hook. Reads the container state on
//! stdin; exits non-zero with one line on stderr when it cannot do its job.

use std::path::PathBuf;
use std::process::ExitCode;

use ocinet::engine::{options_from, run_stage};
use ocinet::error::Error;
use ocinet::oci::{Stage, State};

const USAGE: &str = "ocinet-hook [--root DIR] [--config-dir DIR] createRuntime|prestart|poststop";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let line = e.to_string().replace(['\n', '\r'], " ");
            eprintln!("ocinet-hook: {line}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Error> {
    let mut root = None;
    let mut config_dir = None;
    let mut stage = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value_of = |flag: &str, inline: Option<&str>| -> Result<PathBuf, Error> {
            inline
                .map(str::to_string)
                .or_else(|| args.next())
                .map(PathBuf::from)
                .ok_or_else(|| Error::Usage(format!("{flag} needs a value; {USAGE}")))
        };
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v)),
            _ => (arg.clone(), None),
        };
        match flag.as_str() {
            "--root" => root = Some(value_of("--root", inline)?),
            "--config-dir" => config_dir = Some(value_of("--config-dir", inline)?),
            "-h" | "--help" => return Err(Error::Usage(USAGE.to_string())),
            s if s.starts_with('-') => {
                return Err(Error::Usage(format!("unknown flag {s}; {USAGE}")))
            }
            s if stage.is_none() => stage = Some(Stage::parse(s)?),
            s => return Err(Error::Usage(format!("unexpected argument {s:?}; {USAGE}"))),
        }
    }
    let stage = stage.ok_or_else(|| Error::Usage(format!("missing stage; {USAGE}")))?;
    let state = State::read(std::io::stdin().lock())?;
    run_stage(&options_from(root, config_dir), stage, &state)
}
