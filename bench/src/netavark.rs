//! netavark 1.4 from Debian: `netavark --config DIR setup|teardown <netns>` with its options
//! JSON on stdin: a bridge network and one port mapping per container. netavark does no IPAM
//! (podman passes the address), so its timings exclude address allocation.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::backend::{address, bridge_ports, iptables_container_rules, Backend, Leaks};
use crate::exec::{self, Result};
use crate::fleet::Container;

pub const BINARY: &str = "/usr/lib/podman/netavark";
pub const BRIDGE: &str = "benchnv0";
const BASE: Ipv4Addr = Ipv4Addr::new(10, 92, 0, 0);
pub const PORT_BASE: u16 = 30001;

pub struct Netavark {
    config: PathBuf,
    n: usize,
    /// A dual-stack network (`--dual-stack`): an IPv6 subnet and address too.
    dual: bool,
}

impl Netavark {
    pub fn new(work: &Path, n: usize, dual: bool) -> Result<Netavark> {
        let config = work.join("netavark");
        std::fs::create_dir_all(&config).map_err(|e| format!("cannot create {config:?}: {e}"))?;
        Ok(Netavark { config, n, dual })
    }

    fn options(&self, i: usize) -> Value {
        let mut v = Self::ipv4_options(i);
        if self.dual {
            let net = &mut v["network_info"]["benchnet"];
            net["ipv6_enabled"] = json!(true);
            if let Some(subnets) = net["subnets"].as_array_mut() {
                subnets.push(json!({"subnet": "fd00:92::/64", "gateway": "fd00:92::1"}));
            }
            if let Some(ips) = v["networks"]["benchnet"]["static_ips"].as_array_mut() {
                ips.push(json!(format!("fd00:92::{:x}", i + 2)));
            }
        }
        v
    }

    fn ipv4_options(i: usize) -> Value {
        json!({
            "container_id": format!("{i:064x}"),
            "container_name": format!("nv{i}"),
            "port_mappings": [{"host_ip": "", "container_port": 80, "host_port": PORT_BASE as usize + i, "range": 1, "protocol": "tcp"}],
            "networks": {"benchnet": {"static_ips": [address(BASE, i).to_string()], "aliases": [format!("nv{i}")], "interface_name": "eth0"}},
            "network_info": {"benchnet": {
                "name": "benchnet", "id": format!("{:064x}", 0xbe7c4u64), "driver": "bridge",
                "network_interface": BRIDGE,
                "subnets": [{"subnet": "10.92.0.0/16", "gateway": "10.92.0.1"}],
                "ipv6_enabled": false, "internal": false, "dns_enabled": false,
                "ipam_options": {"driver": "host-local"}
            }}
        })
    }

    fn call(&self, command: &str, i: usize, c: &Container) -> Result<Duration> {
        let mut cmd = Command::new(BINARY);
        cmd.env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("NETAVARK_FW", "iptables")
            .arg("--config")
            .arg(&self.config)
            .arg(command)
            .arg(c.netns_path());
        let input = self.options(i).to_string();
        Ok(exec::run(
            &format!("netavark {command} {i}"),
            &mut cmd,
            input.as_bytes(),
        )?
        .elapsed)
    }
}

impl Backend for Netavark {
    fn name(&self) -> &'static str {
        match self.dual {
            true => "netavark-dual",
            false => "netavark",
        }
    }

    fn setup(&mut self, i: usize, c: &Container) -> Result<Duration> {
        self.call("setup", i, c)
    }

    fn teardown(&mut self, i: usize, c: &Container) -> Result<Duration> {
        self.call("teardown", i, c)
    }

    fn leaks(&self) -> Result<Leaks> {
        let last = PORT_BASE + self.n as u16;
        Ok(Leaks {
            links: bridge_ports(BRIDGE)?,
            rules: iptables_container_rules("10.92.", (PORT_BASE, last), None)?,
            leases: None,
        })
    }
}
