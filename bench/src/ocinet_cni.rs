//! ocinet-cni: ocinet's CNI plugin driven as a CNI runtime drives it (environment, the
//! configuration on stdin with the network inline and one port mapping), beside the reference
//! chain it replaces. DEL needs no prevResult.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::backend::{bridge_ports, count_files, Backend, Leaks};
use crate::exec::{self, Result};
use crate::fleet::Container;
use crate::ocinet::dnat_elements;

const NAME: &str = "benchcnioc";
/// The backend's name in the report.
pub const BACKEND: &str = "ocinet-cni";
const BRIDGE: &str = "ocbenchcni0";
const SUBNET: &str = "10.94.0.0/16";
const PORT_BASE: u16 = 30001;

pub struct OcinetCni {
    plugin: PathBuf,
    root: PathBuf,
    config_dir: PathBuf,
    /// Peak RSS of any plugin run, KiB.
    pub max_rss_kib: u64,
}

impl OcinetCni {
    pub fn new(plugin: &Path, work: &Path) -> OcinetCni {
        let work = work.join("ocinet-cni");
        OcinetCni {
            plugin: plugin.to_path_buf(),
            root: work.join("state"),
            config_dir: work.join("etc"),
            max_rss_kib: 0,
        }
    }

    fn conf(&self, i: usize) -> Value {
        json!({
            "cniVersion": "1.0.0", "name": NAME, "type": "ocinet", "bridge": BRIDGE,
            "subnets": [{"subnet": SUBNET}], "masquerade": true,
            "root": self.root, "configDir": self.config_dir,
            "capabilities": {"portMappings": true},
            "runtimeConfig": {"portMappings": [
                {"hostPort": PORT_BASE as usize + i, "containerPort": 80, "protocol": "tcp"}
            ]}
        })
    }

    fn call(&mut self, command: &str, i: usize, c: &Container) -> Result<Duration> {
        let mut cmd = Command::new(&self.plugin);
        cmd.env_clear()
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", format!("cnioc{i}"))
            .env("CNI_NETNS", c.netns_path())
            .env("CNI_IFNAME", "eth0")
            .env("CNI_PATH", crate::cni::PLUGINS);
        let run = exec::run(
            &format!("ocinet-cni {command} {i}"),
            &mut cmd,
            self.conf(i).to_string().as_bytes(),
        )?;
        self.max_rss_kib = self.max_rss_kib.max(run.max_rss_kib);
        Ok(run.elapsed)
    }
}

impl Backend for OcinetCni {
    fn name(&self) -> &'static str {
        BACKEND
    }

    fn setup(&mut self, i: usize, c: &Container) -> Result<Duration> {
        self.call("ADD", i, c)
    }

    fn teardown(&mut self, i: usize, c: &Container) -> Result<Duration> {
        self.call("DEL", i, c)
    }

    fn leaks(&self) -> Result<Leaks> {
        crate::hook::wait_for_record_locks(&self.root);
        let leases = count_files(
            &self.root.join("networks").join(NAME).join("leases"),
            &|_| true,
        ) + count_files(&self.root.join("containers"), &|n| n.ends_with(".json"))
            + count_files(&self.root.join("ports"), &|n| n != "lock");
        Ok(Leaks {
            links: bridge_ports(BRIDGE)?,
            rules: dnat_elements(PORT_BASE)?,
            leases: Some(leases),
        })
    }
}
