//! `ocinet-hook [--root R] [--config-dir C] <stage>`: the OCI hook. Reads the container state on
//! stdin; exits non-zero with one line on stderr when it cannot do its job.
//!
//! No Rust runtime setup at start (`no_main`, see `ocinet::host::startup`): the hook starts for
//! every container.

#![no_main]

use std::ffi::{c_char, c_int};
use std::path::{Path, PathBuf};
use std::time::Instant;

use oci_hook::run_stage;
use ocinet::context::options_from;
use ocinet::error::{Error, IoContext};
use ocinet::oci::{Stage, StageArg, State};
use ocinet::state::activity::{self, Entry};

mod oci_hook;

const USAGE: &str =
    "ocinet-hook [--root DIR] [--config-dir DIR] createRuntime|prestart|poststop|auto";

/// `--help`: for a person at a terminal, so on stdout and with exit 0.
const HELP: &str = "\
OCI hook that wires a container's network (none, bridge, container:<id>, host), chosen by the
bundle's io.ocinet.* annotations. The runtime runs it with the container's state on stdin.

Usage: ocinet-hook [--root DIR] [--config-dir DIR] STAGE

Stages:
  createRuntime, prestart  set the network up
  poststop                 tear it down
  auto                     either, from the state's status (for a hooks.d entry listing both)

Flags:
  --root DIR        state directory (env OCINET_ROOT; default /run/ocinet)
  --config-dir DIR  network definitions (env OCINET_CONFIG_DIR; default /etc/ocinet)
  -h, --help        print this help
  -v, --version     print the version

runc gives hooks an empty environment: prefer the flags to the variables.
";

/// The C entry point.
#[no_mangle]
extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    ocinet::host::startup::prepare();
    // SAFETY: argc and argv are as the C start code passed them.
    let args = unsafe { ocinet::host::startup::arguments(argc, argv) };
    match run(args) {
        Ok(()) => 0,
        Err(e) => {
            let line = e.to_string().replace(['\n', '\r'], " ");
            ocinet::stderr_line!("ocinet-hook: {line}");
            1
        }
    }
}

fn run(args: Result<Vec<String>, String>) -> Result<(), Error> {
    let mut root = None;
    let mut config_dir = None;
    let mut stage = None;
    let mut args = args
        .map_err(|arg| Error::Usage(format!("argument {arg:?} is not UTF-8; {USAGE}")))?
        .into_iter();
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
            // Answered before the state is read: a person asking has no state to give.
            "-h" | "--help" => return say(HELP),
            "-v" | "--version" => {
                return say(&format!("ocinet-hook {}\n", env!("CARGO_PKG_VERSION")))
            }
            s if s.starts_with('-') => {
                return Err(Error::Usage(format!("unknown flag {s}; {USAGE}")))
            }
            s if stage.is_none() => stage = Some(StageArg::parse(s)?),
            s => return Err(Error::Usage(format!("unexpected argument {s:?}; {USAGE}"))),
        }
    }
    let stage = stage.ok_or_else(|| Error::Usage(format!("missing stage; {USAGE}")))?;
    let options = options_from(root, config_dir);
    let state = match State::read(std::io::stdin().lock()) {
        Ok(state) => state,
        Err(e) => {
            log(&options.root, "-", "state", Err(&e), Instant::now());
            return Err(e);
        }
    };
    // Timed from here: waiting for the runtime to write the state is not ocinet's time.
    let started = Instant::now();
    let stage = stage.resolve(&state)?;
    let result = run_stage(&options, stage, &state);
    let name = match stage {
        Stage::Setup => "setup",
        Stage::Teardown => "teardown",
        Stage::Ignored => return result,
    };
    log(
        &options.root,
        &state.id,
        name,
        result.as_ref().map(|_| ()),
        started,
    );
    result
}

/// Help and version text; a reader gone (`| head`) ends the hook quietly.
fn say(text: &str) -> Result<(), Error> {
    ocinet::host::output::stdout(text).context(|| "cannot write to stdout".to_string())
}

/// The log is for people; failing to write it must not fail the container.
fn log(root: &Path, id: &str, stage: &str, result: Result<(), &Error>, started: Instant) {
    if root.is_dir() {
        let result = result.map_err(|e| e.to_string());
        let _ = activity::append(root, &Entry::new(id, stage, result, started.elapsed()));
    }
}
