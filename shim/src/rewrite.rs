//! What the shim changes in `config.json` before the runtime reads it: the network namespace the
//! mode needs and ocinet's hooks. Works on the JSON as it is, so fields ocinet does not know
//! (newer spec versions, runtime extensions) pass through untouched.

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

/// How the injected hooks call ocinet-hook.
#[derive(Debug, Clone)]
pub struct HookCommand {
    pub path: PathBuf,
    pub root: PathBuf,
    pub config_dir: PathBuf,
}

impl HookCommand {
    fn entry(&self, stage: &str) -> Value {
        json!({
            "path": self.path,
            "args": [
                "ocinet-hook",
                "--root", self.root,
                "--config-dir", self.config_dir,
                stage
            ]
        })
    }
}

/// What the container's network namespace must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamespacePlan {
    /// A namespace of its own (none, bridge): add an empty network entry if there is none;
    /// keep one that names a path (podman's pre-made namespace).
    Own,
    /// The host's: no network entry.
    Host,
    /// Another container's: the network entry names this path.
    Join(PathBuf),
}

/// Rewrites `config` in place; returns whether anything changed.
pub fn rewrite(
    config: &mut Value,
    plan: &NamespacePlan,
    hook: &HookCommand,
) -> Result<bool, String> {
    let before = config.clone();
    let root = config
        .as_object_mut()
        .ok_or("config.json is not a JSON object")?;
    set_network_namespace(root, plan)?;
    inject_hooks(root, hook)?;
    Ok(*config != before)
}

fn set_network_namespace(
    root: &mut Map<String, Value>,
    plan: &NamespacePlan,
) -> Result<(), String> {
    let linux = object_entry(root, "linux")?;
    let is_network = |ns: &Value| ns.get("type").and_then(Value::as_str) == Some("network");
    if *plan != NamespacePlan::Own {
        // runc refuses net.* sysctls without a namespace of the container's own, and in a
        // shared one they would change the host's or the other container's settings (podman
        // adds net.ipv4.ping_group_range to every container).
        if let Some(sysctl) = linux.get_mut("sysctl").and_then(Value::as_object_mut) {
            sysctl.retain(|key, _| !key.starts_with("net."));
        }
    }
    let namespaces = linux
        .entry("namespaces")
        .or_insert_with(|| Value::Array(Vec::new()))
        .as_array_mut()
        .ok_or("linux.namespaces in config.json is not an array")?;
    match plan {
        NamespacePlan::Host => namespaces.retain(|ns| !is_network(ns)),
        NamespacePlan::Own => {
            if !namespaces.iter().any(is_network) {
                namespaces.push(json!({"type": "network"}));
            }
        }
        NamespacePlan::Join(path) => {
            namespaces.retain(|ns| !is_network(ns));
            namespaces.push(json!({"type": "network", "path": path}));
        }
    }
    Ok(())
}

/// Adds ocinet's setup (createRuntime) and teardown (poststop) hooks unless an ocinet-hook is
/// already there (podman's hooks.d adds it at prestart), keeping the user's own hooks.
fn inject_hooks(root: &mut Map<String, Value>, hook: &HookCommand) -> Result<(), String> {
    let hooks = object_entry(root, "hooks")?;
    let has_ocinet = |hooks: &Map<String, Value>, stages: &[&str]| {
        stages.iter().any(|stage| {
            hooks
                .get(*stage)
                .and_then(Value::as_array)
                .is_some_and(|list| list.iter().any(is_ocinet_hook))
        })
    };
    if !has_ocinet(hooks, &["prestart", "createRuntime"]) {
        // First, so that hooks after it see the network wired.
        stage_list(hooks, "createRuntime")?.insert(0, hook.entry("createRuntime"));
    }
    if !has_ocinet(hooks, &["poststop"]) {
        stage_list(hooks, "poststop")?.push(hook.entry("poststop"));
    }
    Ok(())
}

fn is_ocinet_hook(entry: &Value) -> bool {
    entry
        .get("path")
        .and_then(Value::as_str)
        .and_then(|p| Path::new(p).file_name())
        .is_some_and(|name| name == "ocinet-hook")
}

fn object_entry<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
) -> Result<&'a mut Map<String, Value>, String> {
    map.entry(key)
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or_else(|| format!("{key} in config.json is not an object"))
}

fn stage_list<'a>(
    hooks: &'a mut Map<String, Value>,
    stage: &str,
) -> Result<&'a mut Vec<Value>, String> {
    hooks
        .entry(stage)
        .or_insert_with(|| Value::Array(Vec::new()))
        .as_array_mut()
        .ok_or_else(|| format!("hooks.{stage} in config.json is not an array"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook() -> HookCommand {
        HookCommand {
            path: "/usr/local/bin/ocinet-hook".into(),
            root: "/run/ocinet".into(),
            config_dir: "/etc/ocinet".into(),
        }
    }

    fn config() -> Value {
        json!({
            "ociVersion": "1.0.2",
            "x-unknown": {"kept": true},
            "linux": {"namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "mount"}]},
            "hooks": {"poststop": [{"path": "/bin/user-hook"}]}
        })
    }

    fn network_entries(c: &Value) -> Vec<Value> {
        c["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["type"] == "network")
            .cloned()
            .collect()
    }

    #[test]
    fn host_removes_the_network_namespace() {
        let mut c = config();
        assert!(rewrite(&mut c, &NamespacePlan::Host, &hook()).unwrap());
        assert!(network_entries(&c).is_empty());
        assert_eq!(c["linux"]["namespaces"].as_array().unwrap().len(), 2);
        assert_eq!(c["x-unknown"]["kept"], true);
    }

    #[test]
    fn shared_namespaces_drop_net_sysctls() {
        let mut c = json!({"linux": {"sysctl": {"net.ipv4.ping_group_range": "0 0", "kernel.msgmax": "8192"}}});
        rewrite(&mut c, &NamespacePlan::Host, &hook()).unwrap();
        assert_eq!(c["linux"]["sysctl"], json!({"kernel.msgmax": "8192"}));
        let mut own = json!({"linux": {"sysctl": {"net.ipv4.ping_group_range": "0 0"}}});
        rewrite(&mut own, &NamespacePlan::Own, &hook()).unwrap();
        assert_eq!(own["linux"]["sysctl"]["net.ipv4.ping_group_range"], "0 0");
    }

    #[test]
    fn join_sets_the_path() {
        let mut c = config();
        let plan = NamespacePlan::Join("/proc/42/ns/net".into());
        rewrite(&mut c, &plan, &hook()).unwrap();
        assert_eq!(
            network_entries(&c),
            vec![json!({"type": "network", "path": "/proc/42/ns/net"})]
        );
    }

    #[test]
    fn own_adds_a_missing_entry_and_keeps_a_path() {
        let mut c = json!({"linux": {}});
        rewrite(&mut c, &NamespacePlan::Own, &hook()).unwrap();
        assert_eq!(network_entries(&c), vec![json!({"type": "network"})]);
        let mut podman =
            json!({"linux": {"namespaces": [{"type": "network", "path": "/run/netns/p"}]}});
        rewrite(&mut podman, &NamespacePlan::Own, &hook()).unwrap();
        assert_eq!(network_entries(&podman)[0]["path"], "/run/netns/p");
    }

    #[test]
    fn hooks_are_injected_once_beside_the_users() {
        let mut c = config();
        assert!(rewrite(&mut c, &NamespacePlan::Own, &hook()).unwrap());
        assert_eq!(c["hooks"]["createRuntime"].as_array().unwrap().len(), 1);
        let poststop = c["hooks"]["poststop"].as_array().unwrap();
        assert_eq!(poststop.len(), 2);
        assert_eq!(poststop[0]["path"], "/bin/user-hook");
        assert_eq!(
            poststop[1]["args"],
            json!([
                "ocinet-hook",
                "--root",
                "/run/ocinet",
                "--config-dir",
                "/etc/ocinet",
                "poststop"
            ])
        );
        // A second pass changes nothing.
        assert!(!rewrite(&mut c, &NamespacePlan::Own, &hook()).unwrap());
    }

    #[test]
    fn hooks_d_prestart_hook_is_not_doubled() {
        let mut c = json!({"hooks": {
            "prestart": [{"path": "/usr/libexec/ocinet-hook", "args": ["ocinet-hook", "prestart"]}],
            "poststop": [{"path": "/usr/libexec/ocinet-hook", "args": ["ocinet-hook", "poststop"]}]
        }});
        rewrite(&mut c, &NamespacePlan::Own, &hook()).unwrap();
        assert!(c["hooks"].get("createRuntime").is_none());
        assert_eq!(c["hooks"]["poststop"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn malformed_shapes_are_errors() {
        for bad in [
            json!([]),
            json!({"linux": []}),
            json!({"linux": {"namespaces": {}}}),
            json!({"hooks": {"poststop": {}}}),
        ] {
            let mut c = bad.clone();
            assert!(
                rewrite(&mut c, &NamespacePlan::Own, &hook()).is_err(),
                "{bad}"
            );
        }
    }
}
