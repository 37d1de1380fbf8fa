//! `create`/`run`: reads the bundle's config, and when its annotations ask for ocinet, rewrites
//! it for the network mode before the runtime reads it. Containers without `io.ocinet.*`
//! annotations are left alone, so the shim can stand in for runc under podman or containerd,
//! whose own networking they keep.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use ocinet::context::Context;
use ocinet::oci;
use ocinet::request::{NetworkMode, NetworkRequest};
use serde_json::Value;

use crate::error::{Result, ShimError};
use crate::rewrite::{rewrite, HookCommand, NamespacePlan};

const ANNOTATION_PREFIX: &str = "io.ocinet.";

/// Rewrites the config at `path` for ocinet if it asks for ocinet; otherwise leaves it.
pub fn prepare(ctx: &Context, path: &Path, hook: &HookCommand) -> Result<()> {
    let fail = |reason: String| ShimError::Config {
        path: path.to_path_buf(),
        reason,
    };
    let text = oci::read_config(path).map_err(fail)?;
    let mut config: Value = serde_json::from_slice(&text).map_err(|e| fail(e.to_string()))?;
    let annotations = annotations(&config);
    if !annotations.keys().any(|k| k.starts_with(ANNOTATION_PREFIX)) {
        return Ok(());
    }
    // The same validation the hook does, before the runtime creates anything.
    let request = NetworkRequest::from_annotations(&annotations)?;
    let plan = match &request.mode {
        NetworkMode::None | NetworkMode::Bridge { .. } | NetworkMode::Networks { .. } => {
            NamespacePlan::Own
        }
        NetworkMode::Host => NamespacePlan::Host,
        NetworkMode::Container { id } => NamespacePlan::Join(namespace_of(ctx, id)?),
    };
    if rewrite(&mut config, &plan, hook).map_err(fail)? {
        let bytes = serde_json::to_vec_pretty(&config).map_err(|e| fail(e.to_string()))?;
        replace(path, &bytes).map_err(fail)?;
    }
    Ok(())
}

fn annotations(config: &Value) -> HashMap<String, String> {
    config
        .get("annotations")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// The namespace of a live container known to ocinet: its record's process, checked by pid,
/// start time and boot (a reused pid is another process). The id was validated by the parser.
fn namespace_of(ctx: &Context, target: &str) -> Result<PathBuf> {
    let record = ctx.records.find_running(target, &ctx.boot_id)?;
    match (record.pid, record.netns_path) {
        (Some(pid), _) => Ok(PathBuf::from(format!("/proc/{pid}/ns/net"))),
        (None, Some(path)) => Ok(path),
        (None, None) => Err(ocinet::error::Error::NotRunning(target.to_string()).into()),
    }
}

/// Replaces the file atomically, keeping its permissions: a runtime never sees half a config.
fn replace(path: &Path, bytes: &[u8]) -> std::result::Result<(), String> {
    let mode = fs::metadata(path)
        .map_err(|e| e.to_string())?
        .permissions()
        .mode()
        & 0o7777;
    ocinet::host::store::write_atomic_with_mode(path, bytes, mode).map_err(|e| e.to_string())
}
