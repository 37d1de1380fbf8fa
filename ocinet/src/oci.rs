//! What the runtime hands the hook: the stage (argv), the state (stdin) and the bundle's config.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::validate;

/// Largest state document accepted; real ones are a few hundred bytes.
const MAX_STATE_BYTES: u64 = 1 << 20;
/// Largest config.json accepted; real ones are a few kilobytes.
const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// The hook stages ocinet acts on. The argv stage wins over the state's `status`: crun reports
/// `created` at createRuntime, and podman runs poststop itself with no pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// `createRuntime` or `prestart`: wire the container.
    Setup,
    /// `poststop`: undo everything from the record.
    Teardown,
    /// Stages with nothing to do (`createContainer`, `startContainer`, `poststart`).
    Ignored,
}

impl Stage {
    pub fn parse(arg: &str) -> Result<Stage> {
        match arg {
            "auto" => Err(Error::Usage(
                "stage auto is resolved from the state: use StageArg".to_string(),
            )),
            "createRuntime" | "prestart" => Ok(Stage::Setup),
            "poststop" => Ok(Stage::Teardown),
            "createContainer" | "startContainer" | "poststart" => Ok(Stage::Ignored),
            other => Err(Error::Usage(format!(
                "unknown hook stage {other:?}: use createRuntime, prestart or poststop"
            ))),
        }
    }
}

/// The stage argument: a stage, or `auto` for a podman hooks.d entry that lists both `prestart`
/// and `poststop` with one argv, where only the state's status tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageArg {
    Given(Stage),
    FromStatus,
}

impl StageArg {
    pub fn parse(arg: &str) -> Result<StageArg> {
        match arg {
            "auto" => Ok(StageArg::FromStatus),
            other => Stage::parse(other).map(StageArg::Given),
        }
    }

    pub fn resolve(self, state: &State) -> Result<Stage> {
        match self {
            StageArg::Given(stage) => Ok(stage),
            StageArg::FromStatus => match state.status.as_deref() {
                Some("creating") | Some("created") => Ok(Stage::Setup),
                Some("stopped") => Ok(Stage::Teardown),
                other => Err(Error::State(format!(
                    "stage auto cannot tell the stage from status {other:?}: name the stage (createRuntime, prestart or poststop)"
                ))),
            },
        }
    }
}

/// The OCI runtime state, as runc, crun and podman pass it.
#[derive(Debug, Clone, Deserialize)]
pub struct State {
    pub id: String,
    /// Absent or 0 when the process is gone (poststop).
    #[serde(default)]
    pub pid: Option<i32>,
    pub bundle: PathBuf,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    /// `creating`, `created`, `running` or `stopped`; only read for the stage `auto`.
    #[serde(default)]
    pub status: Option<String>,
}

impl State {
    pub fn read(input: impl Read) -> Result<State> {
        let mut buf = Vec::new();
        input
            .take(MAX_STATE_BYTES + 1)
            .read_to_end(&mut buf)
            .map_err(|e| Error::State(format!("cannot read stdin: {e}")))?;
        if buf.len() as u64 > MAX_STATE_BYTES {
            return Err(Error::State(format!("larger than {MAX_STATE_BYTES} bytes")));
        }
        State::parse(&buf)
    }

    pub fn parse(bytes: &[u8]) -> Result<State> {
        let state: State =
            serde_json::from_slice(bytes).map_err(|e| Error::State(e.to_string()))?;
        validate::container_id(&state.id).map_err(Error::State)?;
        if !state.bundle.is_absolute() {
            return Err(Error::State(format!(
                "bundle path {:?} is not absolute",
                state.bundle
            )));
        }
        Ok(state)
    }

    /// The live process id, if the runtime gave one.
    pub fn live_pid(&self) -> Option<i32> {
        self.pid.filter(|p| *p > 0)
    }
}

/// What ocinet needs from the bundle's `config.json`.
#[derive(Debug, Clone, Default)]
pub struct BundleConfig {
    pub annotations: HashMap<String, String>,
    /// The root filesystem's path, absolute (`root.path`, relative to the bundle).
    pub rootfs: Option<PathBuf>,
}

impl BundleConfig {
    pub fn load(bundle: &Path) -> Result<BundleConfig> {
        let path = bundle.join("config.json");
        let fail = |reason: String| Error::Bundle {
            path: path.clone(),
            reason,
        };
        let bytes = read_config(&path).map_err(fail)?;
        let spec: oci_spec::runtime::Spec =
            serde_json::from_slice(&bytes).map_err(|e| fail(one_line(&e.to_string())))?;
        Ok(BundleConfig {
            annotations: spec.annotations().clone().unwrap_or_default(),
            rootfs: spec.root().as_ref().map(|r| bundle.join(r.path())),
        })
    }
}

/// Reads a bundle's `config.json`. Its path comes from the state or the command line: a FIFO
/// would hang the reader (and the runtime waiting for it), a device like /dev/zero would never
/// end. Only a regular file of sane size is read.
pub fn read_config(path: &Path) -> std::result::Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".to_string());
    }
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(format!("larger than {MAX_CONFIG_BYTES} bytes"));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_CONFIG_BYTES).read_to_end(&mut bytes))
        .map_err(|e| e.to_string())?;
    Ok(bytes)
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_argument_names() {
        assert_eq!(Stage::parse("createRuntime").unwrap(), Stage::Setup);
        assert_eq!(Stage::parse("prestart").unwrap(), Stage::Setup);
        assert_eq!(Stage::parse("poststop").unwrap(), Stage::Teardown);
        assert_eq!(Stage::parse("poststart").unwrap(), Stage::Ignored);
        assert!(Stage::parse("created").is_err());
        let state = |status: &str| {
            State::parse(format!(r#"{{"id":"c","status":"{status}","bundle":"/b"}}"#).as_bytes())
                .unwrap()
        };
        let auto = StageArg::parse("auto").unwrap();
        assert_eq!(auto.resolve(&state("creating")).unwrap(), Stage::Setup);
        assert_eq!(auto.resolve(&state("created")).unwrap(), Stage::Setup);
        assert_eq!(auto.resolve(&state("stopped")).unwrap(), Stage::Teardown);
        assert!(auto.resolve(&state("running")).is_err());
        let given = StageArg::parse("poststop").unwrap();
        assert_eq!(given.resolve(&state("creating")).unwrap(), Stage::Teardown);
    }

    #[test]
    fn state_from_runc_crun_and_podman() {
        let runc =
            br#"{"ociVersion":"1.0.2","id":"c1","status":"creating","pid":42,"bundle":"/b"}"#;
        assert_eq!(State::parse(runc).unwrap().live_pid(), Some(42));
        let crun_poststop =
            br#"{"ociVersion":"1.0.0","id":"c1","status":"stopped","pid":0,"bundle":"/b"}"#;
        assert_eq!(State::parse(crun_poststop).unwrap().live_pid(), None);
        let podman = br#"{"ociVersion":"1.0.0","id":"c1","status":"stopped","bundle":"/b"}"#;
        assert_eq!(State::parse(podman).unwrap().live_pid(), None);
    }

    #[test]
    fn state_rejects_bad_input() {
        for bad in [
            &b"not json"[..],
            br#"{"id":"c1"}"#,
            br#"{"id":"../x","pid":1,"bundle":"/b"}"#,
            br#"{"id":"c1","pid":1,"bundle":"relative"}"#,
            br#"{"id":"","pid":1,"bundle":"/b"}"#,
        ] {
            assert!(
                State::parse(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
