//! ocinet only: what a user feels (`runc run` of busybox `true` on a bridge network, a routed
//! one, in none mode and without the hook) and a 1,000-port range publish.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::exec::{self, Result};
use crate::fleet;
use crate::ocinet::{Ocinet, NETWORK};
use crate::report::{EndToEnd, Stats};

pub struct Inputs<'a> {
    pub sample_config: &'a Path,
    pub rootfs: &'a Path,
    pub work: &'a Path,
    pub runc_reps: usize,
    pub range_reps: usize,
}

/// A runc bundle from the sample config: busybox `true`, this build's hook, `network` as the
/// annotation (`None`: no hook at all).
fn runc_bundle(inp: &Inputs, oc: &Ocinet, name: &str, network: Option<&str>) -> Result<PathBuf> {
    let text = std::fs::read_to_string(inp.sample_config)
        .map_err(|e| format!("cannot read {:?}: {e}", inp.sample_config))?;
    let mut config: Value =
        serde_json::from_str(&text).map_err(|e| format!("{:?}: {e}", inp.sample_config))?;
    config["process"]["args"] = json!(["true"]);
    config["root"]["path"] = json!(inp.rootfs);
    let obj = config
        .as_object_mut()
        .ok_or("the sample config is not an object")?;
    obj.remove("hooks");
    obj.remove("annotations");
    if let Some(net) = network {
        let hook = oc.hook.path();
        let entry = |stage: &str| json!([{"path": hook, "args": ["ocinet-hook", "--root", oc.hook.root(), "--config-dir", oc.hook.config_dir(), stage]}]);
        obj.insert(
            "hooks".into(),
            json!({"createRuntime": entry("createRuntime"), "poststop": entry("poststop")}),
        );
        obj.insert("annotations".into(), json!({"io.ocinet.network": net}));
    }
    let dir = inp.work.join("runc-bundles").join(name);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {dir:?}: {e}"))?;
    std::fs::write(dir.join("config.json"), config.to_string())
        .map_err(|e| format!("cannot write the config of {name}: {e}"))?;
    Ok(dir)
}

/// `routed`: ocinet with a routed network of the same name as `oc`'s.
pub fn run(inp: &Inputs, oc: &mut Ocinet, routed: &Ocinet) -> Result<EndToEnd> {
    let runc_root = inp.work.join("runc-state");
    let network = format!("bridge:{NETWORK}");
    let variants = [
        ("bridge", &*oc, Some(network.as_str())),
        ("routed", routed, Some(network.as_str())),
        ("none", &*oc, Some("none")),
        ("nohook", &*oc, None),
    ];
    let mut bundles = Vec::new();
    for (name, ocinet, net) in &variants {
        bundles.push(runc_bundle(inp, ocinet, name, *net)?);
    }
    let k_max = variants.len();
    let mut times: [Vec<Duration>; 4] = Default::default();
    for rep in 0..inp.runc_reps {
        // Interleaved, like the backends.
        for k in 0..k_max {
            let v = (rep + k) % k_max;
            let mut cmd = Command::new("runc");
            cmd.arg("--root")
                .arg(&runc_root)
                .arg("run")
                .arg("--bundle")
                .arg(&bundles[v])
                .arg(format!("e2e-{}-{rep}", variants[v].0));
            times[v]
                .push(exec::run(&format!("runc run ({})", variants[v].0), &mut cmd, b"")?.elapsed);
        }
    }

    let holder = fleet::spawn(1)?;
    let (mut setup, mut teardown) = (Vec::new(), Vec::new());
    for rep in 0..inp.range_reps {
        let id = format!("range{rep}");
        let bundle = oc.hook.bundle(
            &id,
            json!({"io.ocinet.network": format!("bridge:{NETWORK}"), "io.ocinet.ports": "50000-50999:50000-50999"}),
        )?;
        setup.push(
            oc.hook
                .run("createRuntime", &id, holder[0].pid(), &bundle)?,
        );
        teardown.push(oc.hook.run("poststop", &id, 0, &bundle)?);
        // The next rep's setup would wait for this teardown's child (its ports are the same).
        oc.hook.settle();
    }
    Ok(EndToEnd {
        runc_bridge: Stats::of(&times[0]),
        runc_routed: Stats::of(&times[1]),
        runc_none: Stats::of(&times[2]),
        runc_no_hook: Stats::of(&times[3]),
        range_1000_setup: Stats::of(&setup),
        range_1000_teardown: Stats::of(&teardown),
    })
}
