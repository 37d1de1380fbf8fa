//! `create`/`run`: reads the bundle's config, and when its annotations ask for ocinet, rewrites
//! it for the network mode before the runtime reads it. Containers without `io.ocinet.*`
//! annotations are left alone, so the shim can stand in for runc under podman or containerd,
//! whose own networking they keep.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ocinet::engine::Context;
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
        NetworkMode::None | NetworkMode::Bridge { .. } => NamespacePlan::Own,
        NetworkMode::Host => NamespacePlan::Host,
        NetworkMode::Container { id } => NamespacePlan::Join(namespace_of(ctx, id)?),
    };
    if rewrite(&mut config, &plan, hook).map_err(fail)? {
        let bytes = serde_json::to_vec_pretty(&config).map_err(|e| fail(e.to_string()))?;
        replace(path, &bytes).map_err(|e| fail(e.to_string()))?;
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
    let record = ctx.records.find(target)?;
    match record {
        Some(r) if !r.is_stale(&ctx.boot_id) => {
            let pid = r.pid.unwrap_or_default();
            Ok(PathBuf::from(format!("/proc/{pid}/ns/net")))
        }
        _ => Err(ShimError::Runtime(format!(
            "container {target} is not running: start it (with ocinet) before joining its network"
        ))),
    }
}

/// Replaces the file atomically, keeping its permissions: a runtime never sees half a config.
fn replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mode = fs::metadata(path)?.permissions().mode() & 0o7777;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.ocinet.{}", std::process::id()));
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
