//! The CNI reference chain from Debian's containernetworking-plugins: `bridge` (isGateway,
//! ipMasq, hairpinMode) with `host-local` IPAM in a private dataDir, then `portmap` chained
//! with `prevResult`. DEL runs in reverse.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::backend::{bridge_ports, count_files, iptables_container_rules, Backend, Leaks};
use crate::exec::{self, Result};
use crate::fleet::Container;

pub const PLUGINS: &str = "/usr/lib/cni";
const NAME: &str = "benchcni";
pub const BRIDGE: &str = "benchcni0";
const SUBNET: &str = "10.91.0.0/16";
/// The IPv6 range of the chain configured dual-stack (`--dual-stack`).
const SUBNET6: &str = "fd00:91::/64";
pub const PORT_BASE: u16 = 20001;

pub struct Cni {
    data_dir: PathBuf,
    /// Each container's `bridge` ADD result, for `portmap` (ADD and DEL) and `bridge` DEL.
    results: Vec<Option<Value>>,
    n: usize,
    dual: bool,
}

impl Cni {
    /// `dual`: host-local with an IPv4 and an IPv6 range (each container gets both).
    pub fn new(work: &Path, n: usize, dual: bool) -> Cni {
        Cni {
            data_dir: work.join("cni-ipam"),
            results: vec![None; n],
            n,
            dual,
        }
    }

    fn bridge_conf(&self) -> Value {
        let mut ranges = vec![json!([{"subnet": SUBNET}])];
        if self.dual {
            ranges.push(json!([{"subnet": SUBNET6}]));
        }
        json!({
            "cniVersion": "1.0.0", "name": NAME, "type": "bridge", "bridge": BRIDGE,
            "isGateway": true, "ipMasq": true, "hairpinMode": true,
            "ipam": {"type": "host-local", "dataDir": self.data_dir, "ranges": ranges}
        })
    }

    fn portmap_conf(i: usize, prev: &Value) -> Value {
        json!({
            "cniVersion": "1.0.0", "name": NAME, "type": "portmap",
            "capabilities": {"portMappings": true},
            "runtimeConfig": {"portMappings": [
                {"hostPort": PORT_BASE as usize + i, "containerPort": 80, "protocol": "tcp"}
            ]},
            "prevResult": prev
        })
    }

    fn call(
        plugin: &str,
        command: &str,
        i: usize,
        c: &Container,
        conf: &Value,
    ) -> Result<exec::Run> {
        let mut cmd = Command::new(format!("{PLUGINS}/{plugin}"));
        cmd.env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", format!("cni{i}"))
            .env("CNI_NETNS", c.netns_path())
            .env("CNI_IFNAME", "eth0")
            .env("CNI_PATH", PLUGINS);
        exec::run(
            &format!("cni {plugin} {command} {i}"),
            &mut cmd,
            conf.to_string().as_bytes(),
        )
    }
}

impl Backend for Cni {
    fn name(&self) -> &'static str {
        match self.dual {
            true => "cni-dual",
            false => "cni",
        }
    }

    fn setup(&mut self, i: usize, c: &Container) -> Result<Duration> {
        let bridge = Self::call("bridge", "ADD", i, c, &self.bridge_conf())?;
        let result: Value = serde_json::from_slice(&bridge.stdout)
            .map_err(|e| format!("cni bridge ADD {i}: bad result: {e}"))?;
        let portmap = Self::call("portmap", "ADD", i, c, &Self::portmap_conf(i, &result))?;
        self.results[i] = Some(result);
        Ok(bridge.elapsed + portmap.elapsed)
    }

    fn teardown(&mut self, i: usize, c: &Container) -> Result<Duration> {
        let prev = self.results[i].take().unwrap_or(Value::Null);
        let portmap = Self::call("portmap", "DEL", i, c, &Self::portmap_conf(i, &prev))?;
        let mut conf = self.bridge_conf();
        conf["prevResult"] = prev;
        let bridge = Self::call("bridge", "DEL", i, c, &conf)?;
        Ok(portmap.elapsed + bridge.elapsed)
    }

    fn leaks(&self) -> Result<Leaks> {
        let last = PORT_BASE + self.n as u16;
        Ok(Leaks {
            links: bridge_ports(BRIDGE)?,
            rules: iptables_container_rules("10.91.", (PORT_BASE, last), Some("id: \\\"cni"))?,
            leases: Some(count_files(&self.data_dir.join(NAME), &|n| {
                n != "lock" && !n.starts_with("last_reserved_ip")
            })),
        })
    }
}
