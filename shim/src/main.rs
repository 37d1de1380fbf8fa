//! `ocinet-shim`: an OCI runtime wrapper. Takes runc's command line unchanged; on `create` and
//! `run` rewrites the bundle's config.json for the container's ocinet network mode, then execs
//! the real runtime; after `delete` makes sure nothing of the container is left. Also carries
//! the admin commands (`ls`, `inspect`, `networks`, `gc`, `logs`, `reload`).

mod admin;
mod admin_cli;
mod cli;
mod error;
mod prepare;
mod rewrite;
mod runtime;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ocinet::context::{options_from, Context, Options};

use crate::admin_cli::Parsed;
use crate::cli::{Command, Invocation};
use crate::error::{Result, ShimError};
use crate::rewrite::HookCommand;

fn main() -> ExitCode {
    match run() {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            let line = e.to_string().replace(['\n', '\r'], " ");
            ocinet::stderr_line!("ocinet-shim: {line}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<i32> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let inv = cli::parse(&args).map_err(ShimError::Usage)?;
    let options = options_from(
        inv.flags.ocinet_root.clone(),
        inv.flags.ocinet_config_dir.clone(),
    );
    match &inv.command {
        Command::Admin { name, args } => match admin_cli::parse(name, args)? {
            // Help needs no state: it works before ocinet's root exists, and unprivileged.
            Parsed::Help(text) => say(text),
            Parsed::Run(command) => admin::run(&Context::open(&options)?, &command),
        },
        Command::Help => {
            say(admin_cli::overview())?;
            append_runtime(&inv, "--help", "\nThe runtime's own help")
        }
        Command::Version => {
            say(version_line())?;
            append_runtime(&inv, "--version", "")
        }
        Command::Create { bundle, config, .. } => {
            let config_path = config_path(bundle.as_deref(), config.as_deref());
            let hook = HookCommand {
                path: hook_path()?,
                root: options.root.clone(),
                config_dir: options.config_dir.clone(),
            };
            prepare::prepare(&Context::open(&options)?, &config_path, &hook)?;
            Err(runtime::exec(&runtime_of(&inv)?, &inv.runtime_args))
        }
        Command::Delete { id } => {
            let code = runtime::run(&runtime_of(&inv)?, &inv.runtime_args)?;
            if let Some(id) = id {
                clean_after_delete(&options, id)?;
            }
            Ok(code)
        }
        Command::PassThrough => Err(runtime::exec(&runtime_of(&inv)?, &inv.runtime_args)),
    }
}

fn version_line() -> String {
    format!("ocinet-shim {}\n", env!("CARGO_PKG_VERSION"))
}

/// Prints help or version text, as bytes (a runtime's need not be UTF-8); exit code 0, also
/// when the reader has gone.
fn say(text: impl AsRef<[u8]>) -> Result<i32> {
    ocinet::host::output::stdout(text)
        .map_err(|e| ShimError::Runtime(format!("cannot write to stdout: {e}")))?;
    Ok(0)
}

/// After ocinet's help or version, the runtime's own (`runc --help`), when there is a runtime:
/// without one, ocinet's part stands alone. Exit code 0 either way: the user got an answer.
fn append_runtime(inv: &Invocation, flag: &str, heading: &str) -> Result<i32> {
    let Ok(runtime) = runtime_of(inv) else {
        return Ok(0);
    };
    // Read whole first, so that a runtime that cannot run leaves no heading without text.
    let text = match runtime::output(&runtime, &[flag.to_string()]) {
        Ok(text) => text,
        Err(e) => {
            ocinet::stderr_line!("ocinet-shim: {e}");
            return Ok(0);
        }
    };
    if !heading.is_empty() {
        say(format!("{heading} ({} {flag}):\n\n", runtime.display()))?;
    }
    say(text)
}

fn runtime_of(inv: &Invocation) -> Result<PathBuf> {
    runtime::locate(inv.flags.runtime_path.as_deref())
}

/// crun's `--config` wins; else `<bundle>/config.json`, the bundle defaulting to the working
/// directory as runc's does.
fn config_path(bundle: Option<&Path>, config: Option<&Path>) -> PathBuf {
    match (config, bundle) {
        (Some(c), _) => c.to_path_buf(),
        (None, Some(b)) => b.join("config.json"),
        (None, None) => PathBuf::from("config.json"),
    }
}

/// `ocinet-hook` beside the shim (both are installed together), or `OCINET_HOOK`.
fn hook_path() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("OCINET_HOOK").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let me = std::env::current_exe()
        .map_err(|e| ShimError::Runtime(format!("cannot find the shim's own path: {e}")))?;
    let hook = me.with_file_name("ocinet-hook");
    if !hook.is_file() {
        return Err(ShimError::Runtime(format!(
            "{} is missing: install ocinet-hook beside ocinet-shim or set OCINET_HOOK",
            hook.display()
        )));
    }
    Ok(hook)
}

/// After the runtime's delete: a container killed without poststop (or deleted by a runtime
/// that skipped it) still has its record; if its process is gone, undo it now. A container
/// still running (a failed delete) keeps everything.
fn clean_after_delete(options: &Options, id: &str) -> Result<()> {
    if ocinet::validate::container_id(id).is_err() {
        return Ok(()); // No such record can exist; the runtime has said what was wrong.
    }
    ocinet::engine::gc::collect_one(&Context::open(options)?, id)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_is_one_line_naming_the_shim() {
        let line = version_line();
        let version = line
            .strip_prefix("ocinet-shim ")
            .and_then(|v| v.strip_suffix('\n'))
            .unwrap_or_else(|| panic!("{line:?}"));
        assert_eq!(version, env!("CARGO_PKG_VERSION"));
        assert_eq!(version.split('.').count(), 3, "{version}");
        assert!(
            version.split('.').all(|n| n.parse::<u32>().is_ok()),
            "{version}"
        );
    }
}
