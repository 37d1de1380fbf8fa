//! The real runtime (runc or crun): found once, then run by `exec` (so the caller's stdio, exit
//! status and signals are the runtime's own) or, for `delete`, as a child the shim waits for.

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{Result, ShimError};

/// Runtimes tried in order when none is configured.
const CANDIDATES: &[&str] = &["runc", "crun"];
/// Searched after PATH: podman runs some runtime commands (kill, delete) with no PATH at all.
const STANDARD_DIRS: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `--runtime-path`, then `OCINET_RUNTIME`, then the first of runc, crun on PATH.
pub fn locate(flag: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = flag {
        return Ok(path.to_path_buf());
    }
    if let Some(path) = std::env::var_os("OCINET_RUNTIME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let me = std::env::current_exe()
        .ok()
        .and_then(|p| p.canonicalize().ok());
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path)
        .chain(std::env::split_paths(STANDARD_DIRS))
        .collect();
    for name in CANDIDATES {
        for dir in &dirs {
            let candidate = dir.join(name);
            let is_file = candidate.is_file();
            // Installed under runc's name, the shim must not find itself.
            if is_file && candidate.canonicalize().ok() != me {
                return Ok(candidate);
            }
        }
    }
    Err(ShimError::Runtime(
        "no OCI runtime found: install runc or crun, or name one with --runtime-path or OCINET_RUNTIME"
            .to_string(),
    ))
}

/// Replaces this process with the runtime. Returns only if exec failed.
pub fn exec(runtime: &Path, args: &[String]) -> ShimError {
    let err = Command::new(runtime).args(args).exec();
    ShimError::Runtime(format!("cannot run {}: {err}", runtime.display()))
}

/// Runs the runtime to completion; returns the exit code to pass on (128+signal if killed).
pub fn run(runtime: &Path, args: &[String]) -> Result<i32> {
    let status = Command::new(runtime)
        .args(args)
        .status()
        .map_err(|e| ShimError::Runtime(format!("cannot run {}: {e}", runtime.display())))?;
    Ok(status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1))
}

/// Runs the runtime for its stdout (`--help`, `--version`); its stderr stays the caller's.
pub fn output(runtime: &Path, args: &[String]) -> Result<Vec<u8>> {
    Command::new(runtime)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map(|out| out.stdout)
        .map_err(|e| ShimError::Runtime(format!("cannot run {}: {e}", runtime.display())))
}
