//! The handlers of libnetwork's remote driver API on ocinet's engine. One Docker endpoint is
//! one engine record, `docker-<endpoint id>`, front end `docker`:
//!
//! - CreateNetwork writes `<config-dir>/networks/docker-<short id>.json` (a bridge network);
//!   DeleteNetwork retires it (its endpoints' records, bridge, firewall elements, state
//!   directory) and removes the file.
//! - CreateEndpoint keeps Docker's address (and a MAC, Docker's form, if it gave none) in the
//!   plugin's endpoint file; Join attaches: a veth whose container end stays in the host
//!   namespace for Docker to move (`NetnsRef::Handover`); ProgramExternalConnectivity
//!   publishes the ports, RevokeExternalConnectivity withdraws them; DeleteEndpoint detaches.
//!
//! dockerd may drop endpoints without a DeleteEndpoint (killed, it removes its sandboxes by
//! force when it starts again): an address or port held by such an endpoint is freed by asking
//! dockerd which endpoints it still has (`engine::gc`), then taken.

use std::net::{Ipv4Addr, Ipv6Addr};

use ocinet::context::{Context, Options};
use ocinet::engine::{self, NetnsRef, Target};
use ocinet::host::store;
use ocinet::network::Network;
use ocinet::request::{NetworkMode, NetworkRequest};
use ocinet::state::activity;
use ocinet::state::docker_endpoints::{Endpoint, Endpoints};
use ocinet::state::dockerd::Dockerd;
use ocinet::state::record::FrontEnd;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::api;
use crate::error::{bad, Result};
use crate::network_options::{check_id, definition, network_name};
use crate::port_map;

pub struct Plugin {
    ctx: Context,
    endpoints: Endpoints,
}

impl Plugin {
    /// The plugin on `options`' state, serving `dockerd` (remembered for gc, which asks it
    /// too).
    pub fn open(options: &Options, dockerd: &Dockerd) -> Result<Plugin> {
        let ctx = Context::open(options)?;
        let endpoints = Endpoints::open(&ctx)?;
        dockerd.remember(&ctx)?;
        Ok(Plugin { ctx, endpoints })
    }

    /// The answer to one call: its JSON, or `{"Err": "<one line>"}`.
    pub fn handle(&self, path: &str, body: &[u8]) -> (bool, Value) {
        match self.dispatch(path, body) {
            Ok(value) => (true, value),
            Err(e) => (false, json!({ "Err": e.to_string() })),
        }
    }

    fn dispatch(&self, path: &str, body: &[u8]) -> Result<Value> {
        match path {
            "/Plugin.Activate" => Ok(json!({ "Implements": ["NetworkDriver"] })),
            "/NetworkDriver.GetCapabilities" => {
                Ok(json!({ "Scope": "local", "ConnectivityScope": "local" }))
            }
            "/NetworkDriver.CreateNetwork" => self.create_network(&parse(body)?),
            "/NetworkDriver.DeleteNetwork" => self.delete_network(&parse(body)?),
            "/NetworkDriver.CreateEndpoint" => self.create_endpoint(&parse(body)?),
            "/NetworkDriver.EndpointOperInfo" => self.endpoint_info(&parse(body)?),
            "/NetworkDriver.DeleteEndpoint" => self.delete_endpoint(&parse(body)?),
            "/NetworkDriver.Join" => self.join(&parse(body)?),
            // The veth goes at DeleteEndpoint, as with Docker's bridge driver: after Leave,
            // Docker moves the interface back to the host, then deletes the endpoint.
            "/NetworkDriver.Leave" => {
                let r: api::EndpointRef = parse(body)?;
                check_id("endpoint", &r.endpoint_id)?;
                Ok(json!({}))
            }
            "/NetworkDriver.ProgramExternalConnectivity" => self.program(&parse(body)?),
            "/NetworkDriver.RevokeExternalConnectivity" => self.revoke(&parse(body)?),
            // Other hosts' discovery: a local-scope driver has nothing to learn.
            "/NetworkDriver.DiscoverNew" | "/NetworkDriver.DiscoverDelete" => Ok(json!({})),
            other => Err(bad(format!(
                "{other} is not part of the network driver API this plugin serves"
            ))),
        }
    }

    fn create_network(&self, r: &api::CreateNetwork) -> Result<Value> {
        let name = network_name(&r.network_id)?;
        let fields = definition(r)?;
        let path = self.ctx.networks.path_of(&name);
        // Parsed and checked as any network file, before anything is written.
        let network = Network::from_json(&name, &path, fields.clone())?;
        match self.ctx.networks.load(&name)? {
            // Docker asking again (a retry after a restart): nothing to change.
            Some(existing) if existing == network => return Ok(json!({})),
            Some(_) => {
                return Err(bad(format!(
                    "{} exists and defines network {name} differently: remove it or the Docker network of the same short id",
                    path.display()
                )))
            }
            None => {}
        }
        self.ctx
            .networks
            .check_no_overlap(&self.ctx.root, &network)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                ocinet::error::Error::io(format!("cannot create {}", dir.display()), e)
            })?;
        }
        let mut text = serde_json::to_string_pretty(&fields).unwrap_or_default();
        text.push('\n');
        store::write_atomic_with_mode(&path, text.as_bytes(), 0o644)?;
        Ok(json!({}))
    }

    fn delete_network(&self, r: &api::NetworkRef) -> Result<Value> {
        let name = network_name(&r.network_id)?;
        // dockerd removes a network only once it has no endpoint on it (and has forgotten it
        // when this comes): an endpoint of it still on file here was dropped without a
        // DeleteEndpoint. Without its file, its record is stale and retired with the network.
        for endpoint_id in self.endpoints.on_network(&r.network_id)? {
            self.endpoints.remove(&endpoint_id)?;
        }
        let Some(network) = self.ctx.networks.load(&name)? else {
            return Ok(json!({}));
        };
        engine::retire_network(&self.ctx, &network)?;
        store::remove_file(&self.ctx.networks.path_of(&name))?;
        Ok(json!({}))
    }

    fn create_endpoint(&self, r: &api::CreateEndpoint) -> Result<Value> {
        check_id("endpoint", &r.endpoint_id)?;
        let name = network_name(&r.network_id)?;
        let network = self
            .ctx
            .networks
            .load(&name)?
            .ok_or_else(|| unknown_network(&name))?;
        let given = r.interface.as_ref();
        let address = given.map(|i| i.address.as_str()).unwrap_or_default();
        let (ip, prefix_len) = parse_cidr(address)?;
        let address6 = match given.map(|i| i.address_ipv6.as_str()).unwrap_or_default() {
            "" => None,
            text => Some(parse_cidr6(text)?),
        };
        // Without Docker's, ocinet would lease an IPv6 address of its own that Docker never
        // puts on the interface (and publish ports to it).
        if address6.is_none() && network.ipv6_subnet().is_some() {
            return Err(bad(format!(
                "Docker gave the endpoint no IPv6 address on network {name}, which has an IPv6 subnet: the network needs Docker's IPAM (the default) and --ipv6"
            )));
        }
        let mac = given.map(|i| i.mac_address.clone()).unwrap_or_default();
        let (mac, chosen) = match mac.as_str() {
            "" => (docker_mac(ip), true),
            m => (m.to_ascii_lowercase(), false),
        };
        parse_mac(&mac)?;
        let endpoint = Endpoint {
            network_id: r.network_id.clone(),
            address: ip,
            prefix_len,
            mac: mac.clone(),
            address6,
        };
        self.endpoints.save(&r.endpoint_id, &endpoint)?;
        // Docker takes a MAC back only if it gave none.
        Ok(match chosen {
            true => json!({ "Interface": { "MacAddress": mac } }),
            false => json!({}),
        })
    }

    fn endpoint_info(&self, r: &api::EndpointRef) -> Result<Value> {
        check_id("endpoint", &r.endpoint_id)?;
        let record = self.ctx.records.load(&record_id(&r.endpoint_id))?;
        let mut value = serde_json::Map::new();
        if let Some(iface) = record.as_ref().and_then(|r| r.interfaces.first()) {
            value.insert("ocinet.host_veth".into(), json!(iface.host_veth));
            let address = iface.addresses.first().map(|a| a.address);
            let bindings = port_map::bindings(&iface.ports, address);
            if !bindings.is_empty() {
                value.insert(api::PORT_MAP.into(), json!(bindings));
            }
        }
        Ok(json!({ "Value": value }))
    }

    fn join(&self, r: &api::Join) -> Result<Value> {
        check_id("endpoint", &r.endpoint_id)?;
        let name = network_name(&r.network_id)?;
        let endpoint = self.endpoints.load(&r.endpoint_id)?.ok_or_else(|| {
            bad(format!(
                "endpoint {} was not created through this plugin (its state root {} has no file of it)",
                r.endpoint_id,
                self.ctx.root.path().display()
            ))
        })?;
        let network = self
            .ctx
            .networks
            .load(&name)?
            .ok_or_else(|| unknown_network(&name))?;
        // Docker's ids are random, but nothing makes their first digits unique: a hash of the
        // whole id, as the host end's name is.
        let src_name = format!(
            "ocd{:012x}",
            ocinet::host::naming::stable_hash(r.endpoint_id.as_bytes()) >> 16
        );
        let request = NetworkRequest {
            mode: NetworkMode::Bridge {
                network: name.clone(),
            },
            ports: Vec::new(),
            static_ip: Some(endpoint.address),
            // Docker's IPAM chose it; ocinet leases it (refused, in one line, if the network
            // has no IPv6 subnet).
            static_ip6: endpoint.address6,
            mac: Some(parse_mac(&endpoint.mac)?),
            interface: src_name.clone(),
            definition: None,
            // Docker's embedded DNS answers the names.
            names: Default::default(),
        };
        let target = Target {
            id: record_id(&r.endpoint_id),
            netns: NetnsRef::Handover(self.endpoints.path(&r.endpoint_id)),
            pid: None,
        };
        let attached = self.past_dropped_endpoints(|| {
            activity::logged(self.ctx.root.path(), &target.id, "docker-join", || {
                engine::attach(&self.ctx, FrontEnd::Docker, &target, &request)
            })
        })?;
        let mut answer = json!({
            "InterfaceName": { "SrcName": src_name, "DstPrefix": "eth" },
        });
        // Docker adds a default route of each family through the gateway Join names; an
        // internal network has no way out: none.
        let gateways = attached
            .interfaces
            .first()
            .into_iter()
            .flat_map(|i| i.addresses.iter())
            .filter_map(|a| a.gateway)
            .filter(|_| !network.internal);
        for gateway in gateways {
            let key = if gateway.is_ipv6() {
                "GatewayIPv6"
            } else {
                "Gateway"
            };
            answer[key] = json!(gateway.to_string());
        }
        Ok(answer)
    }

    fn program(&self, r: &api::ProgramExternalConnectivity) -> Result<Value> {
        check_id("endpoint", &r.endpoint_id)?;
        // The network's families decide what a binding on an IPv6 host address means.
        let ipv6 = self
            .ctx
            .networks
            .load(&network_name(&r.network_id)?)?
            .is_some_and(|n| n.ipv6_subnet().is_some());
        let specs = port_map::specs(r.options.as_ref(), ipv6)?;
        if specs.is_empty() {
            return Ok(json!({}));
        }
        let id = record_id(&r.endpoint_id);
        match self.past_dropped_endpoints(|| {
            activity::logged(self.ctx.root.path(), &id, "docker-publish", || {
                engine::publish(&self.ctx, &id, &specs)
            })
        }) {
            Ok(_) => {}
            // Docker users know containers by name: an endpoint id is what they can look up.
            Err(ocinet::error::Error::PortTaken { spec, holder }) => {
                let who = match holder.strip_prefix("docker-") {
                    Some(eid) => format!(
                        "the Docker endpoint {} (docker network inspect lists its container)",
                        &eid[..eid.len().min(12)]
                    ),
                    None => format!("the ocinet container {holder}"),
                };
                return Err(bad(format!(
                    "host port {spec} is already published by {who}: pick another host port or remove that container"
                )));
            }
            Err(e) => return Err(e.into()),
        }
        Ok(json!({}))
    }

    fn revoke(&self, r: &api::EndpointRef) -> Result<Value> {
        check_id("endpoint", &r.endpoint_id)?;
        let id = record_id(&r.endpoint_id);
        activity::logged(self.ctx.root.path(), &id, "docker-unpublish", || {
            engine::unpublish(&self.ctx, &id)
        })?;
        Ok(json!({}))
    }

    fn delete_endpoint(&self, r: &api::EndpointRef) -> Result<Value> {
        check_id("endpoint", &r.endpoint_id)?;
        let id = record_id(&r.endpoint_id);
        let detached = activity::logged(self.ctx.root.path(), &id, "docker-delete", || {
            engine::detach(&self.ctx, &id)
        });
        // Gone from Docker either way: without its file, a record left by a failed teardown
        // is stale, and `ocinet-shim gc` finishes it.
        self.endpoints.remove(&r.endpoint_id)?;
        detached?;
        Ok(json!({}))
    }
}

impl Plugin {
    /// `call`, and `call` again if it was refused an address or port that a Docker endpoint
    /// holds which dockerd no longer has: Docker's IPAM hands a dropped endpoint's address out
    /// again, and its ports were free on Docker's side the moment it dropped it.
    fn past_dropped_endpoints<T>(
        &self,
        call: impl Fn() -> ocinet::error::Result<T>,
    ) -> ocinet::error::Result<T> {
        match call() {
            Err(e) if docker_holder(&e).is_some_and(|h| self.collected(h)) => call(),
            result => result,
        }
    }

    /// Collects the Docker records that are stale, asking dockerd which endpoints it still
    /// has; true when `holder` was one.
    fn collected(&self, holder: &str) -> bool {
        let done = match engine::gc::collect_front_end(&self.ctx, FrontEnd::Docker) {
            Ok(done) => done,
            Err(e) => {
                ocinet::stderr_line!("ocinet-docker: cannot collect dropped endpoints: {e}");
                return false;
            }
        };
        for id in &done.removed {
            ocinet::stderr_line!("ocinet-docker: {id}: dockerd dropped it; torn down");
        }
        for e in &done.errors {
            ocinet::stderr_line!("ocinet-docker: {e}");
        }
        done.removed.iter().any(|id| id == holder)
    }
}

/// The Docker record holding what `e` refused, if one does.
fn docker_holder(e: &ocinet::error::Error) -> Option<&str> {
    match e {
        ocinet::error::Error::PortTaken { holder, .. }
        | ocinet::error::Error::AddressTaken { holder, .. } => {
            Some(holder.as_str()).filter(|h| h.starts_with("docker-"))
        }
        _ => None,
    }
}

/// The engine's record of a Docker endpoint.
pub fn record_id(endpoint_id: &str) -> String {
    format!("docker-{endpoint_id}")
}

fn unknown_network(name: &str) -> crate::error::Error {
    bad(format!(
        "network {name} is not known to this plugin: was it created with another --config-dir? Remove it with docker network rm"
    ))
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| bad(format!("cannot read Docker's request: {e}")))
}

/// Docker's IPAM address: `10.0.0.2/24`.
fn parse_cidr(text: &str) -> Result<(Ipv4Addr, u8)> {
    split_cidr(text, 32).ok_or_else(|| {
        bad(format!(
            "Docker gave the endpoint no IPv4 address ({text:?}): the network needs Docker's IPAM (the default)"
        ))
    })
}

/// Docker's IPAM IPv6 address: `fd00::2/64` (the prefix is the network's: not kept).
fn parse_cidr6(text: &str) -> Result<Ipv6Addr> {
    split_cidr(text, 128).map(|(ip, _)| ip).ok_or_else(|| {
        bad(format!(
            "Docker gave the endpoint the IPv6 address {text:?}, not an IPv6 address with its prefix length"
        ))
    })
}

/// `address/prefix`, the prefix at most `max`.
fn split_cidr<A: std::str::FromStr>(text: &str, max: u8) -> Option<(A, u8)> {
    let (ip, len) = text.split_once('/')?;
    let len: u8 = len.parse().ok().filter(|l| *l <= max)?;
    Some((ip.parse().ok()?, len))
}

/// Docker's own form: `02:42` and the IPv4 address.
fn docker_mac(ip: Ipv4Addr) -> String {
    let [a, b, c, d] = ip.octets();
    format!("02:42:{a:02x}:{b:02x}:{c:02x}:{d:02x}")
}

/// Six hex pairs, unicast, not zero (`--mac-address`).
fn parse_mac(text: &str) -> Result<[u8; 6]> {
    let refuse = || {
        bad(format!(
            "MAC address {text:?} must be six hex pairs, unicast, such as 02:42:0a:00:00:02"
        ))
    };
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for byte in mac.iter_mut() {
        let part = parts.next().filter(|p| p.len() == 2).ok_or_else(refuse)?;
        *byte = u8::from_str_radix(part, 16).map_err(|_| refuse())?;
    }
    if parts.next().is_some() || mac[0] & 1 == 1 || mac == [0; 6] {
        return Err(refuse());
    }
    Ok(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET: &str = "f73ed15728f5a0c1f73ed15728f5a0c1f73ed15728f5a0c1f73ed15728f5a0c1";
    const EP: &str = "4b2221bfc54480e161c91a5a7e370e919673b5911c9a1308cf8f3a27ebd8caf5";

    struct Sandbox {
        dir: std::path::PathBuf,
        plugin: Plugin,
    }

    impl Sandbox {
        fn new(name: &str) -> Sandbox {
            let dir =
                std::env::temp_dir().join(format!("ocinet-docker-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let dockerd = Dockerd {
                socket: dir.join("docker.sock"),
            };
            let plugin = Plugin::open(
                &Options {
                    root: dir.join("root"),
                    config_dir: dir.join("etc"),
                },
                &dockerd,
            )
            .unwrap();
            Sandbox { dir, plugin }
        }

        fn call(&self, path: &str, body: Value) -> (bool, Value) {
            self.plugin.handle(path, body.to_string().as_bytes())
        }

        fn ok(&self, path: &str, body: Value) -> Value {
            let (ok, answer) = self.call(path, body);
            assert!(ok, "{path}: {answer}");
            answer
        }

        fn err(&self, path: &str, body: Value) -> String {
            let (ok, answer) = self.call(path, body);
            assert!(!ok, "{path}: {answer}");
            let line = answer["Err"].as_str().unwrap().to_string();
            assert!(!line.is_empty() && !line.contains('\n'), "{line}");
            line
        }

        fn create_network(&self, id: &str, pool: &str) -> (bool, Value) {
            let gateway = pool.replace(".0/", ".1/");
            self.call(
                "/NetworkDriver.CreateNetwork",
                json!({"NetworkID": id, "Options": {}, "IPv4Data": [{"Pool": pool, "Gateway": gateway}]}),
            )
        }
    }

    impl Drop for Sandbox {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    #[test]
    fn activates_as_a_local_network_driver() {
        let sb = Sandbox::new("activate");
        assert_eq!(
            sb.ok("/Plugin.Activate", json!({})),
            json!({"Implements": ["NetworkDriver"]})
        );
        assert_eq!(
            sb.ok("/NetworkDriver.GetCapabilities", json!({}))["Scope"],
            "local"
        );
        assert!(sb
            .err("/IpamDriver.RequestPool", json!({}))
            .contains("not part of"));
        assert!(sb
            .err("/NetworkDriver.CreateNetwork", json!("[]"))
            .contains("cannot read Docker's request"));
    }

    #[test]
    fn a_network_is_a_file_written_once_and_checked_against_the_others() {
        let sb = Sandbox::new("network");
        assert!(sb.create_network(NET, "10.77.0.0/24").0);
        let file = sb.dir.join("etc/networks/docker-f73ed15728f5.json");
        let written: Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        assert_eq!(written["subnets"][0]["gateway"], "10.77.0.1");
        // Docker asking again is fine; another network on an overlapping pool is not.
        assert!(sb.create_network(NET, "10.77.0.0/24").0);
        let other = "a".repeat(64);
        let (ok, answer) = sb.create_network(&other, "10.77.0.0/16");
        assert!(!ok);
        assert!(answer["Err"]
            .as_str()
            .unwrap()
            .contains("overlaps network docker-f73ed15728f5"));
        assert!(!sb
            .dir
            .join("etc/networks/docker-aaaaaaaaaaaa.json")
            .exists());
        // A dual-stack network: both subnets in the file; an IPv6 subnet ocinet's parser
        // refuses is refused in its one line, and nothing is written.
        let dual = "b".repeat(64);
        let v4 = json!([{"Pool": "10.80.0.0/24", "Gateway": "10.80.0.1/24"}]);
        sb.ok(
            "/NetworkDriver.CreateNetwork",
            json!({"NetworkID": dual, "IPv4Data": v4,
                   "IPv6Data": [{"Pool": "fd00:80::/64", "Gateway": "fd00:80::1/64"}]}),
        );
        let written: Value = serde_json::from_str(
            &std::fs::read_to_string(sb.dir.join("etc/networks/docker-bbbbbbbbbbbb.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(
            written["subnets"][1],
            json!({"subnet": "fd00:80::/64", "gateway": "fd00:80::1"})
        );
        let wide = "c".repeat(64);
        let e = sb.err(
            "/NetworkDriver.CreateNetwork",
            json!({"NetworkID": wide, "IPv4Data": [{"Pool": "10.81.0.0/24", "Gateway": "10.81.0.1/24"}],
                   "IPv6Data": [{"Pool": "fd00:81::/48", "Gateway": "fd00:81::1/48"}]}),
        );
        assert!(e.contains("between /64 and /120"), "{e}");
        assert!(!sb
            .dir
            .join("etc/networks/docker-cccccccccccc.json")
            .exists());
        // Deleting an unknown network is done already.
        sb.ok("/NetworkDriver.DeleteNetwork", json!({"NetworkID": other}));
    }

    #[test]
    fn an_endpoint_keeps_dockers_address_and_gets_dockers_mac_form_when_it_has_none() {
        let sb = Sandbox::new("endpoint");
        let create = |mac: &str| {
            json!({"NetworkID": NET, "EndpointID": EP,
                   "Interface": {"Address": "10.77.0.2/24", "AddressIPv6": "", "MacAddress": mac}})
        };
        assert!(sb
            .err("/NetworkDriver.CreateEndpoint", create(""))
            .contains("not known to this plugin"));
        sb.create_network(NET, "10.77.0.0/24");
        assert_eq!(
            sb.ok("/NetworkDriver.CreateEndpoint", create("")),
            json!({"Interface": {"MacAddress": "02:42:0a:4d:00:02"}})
        );
        // A MAC Docker chose is kept, and not given back.
        assert_eq!(
            sb.ok("/NetworkDriver.CreateEndpoint", create("02:AA:00:00:00:01")),
            json!({})
        );
        let kept = sb.plugin.endpoints.load(EP).unwrap().unwrap();
        assert_eq!(
            (kept.address.to_string(), kept.mac.as_str()),
            ("10.77.0.2".into(), "02:aa:00:00:00:01")
        );
        assert!(sb
            .err("/NetworkDriver.CreateEndpoint", create("01:00:00:00:00:01"))
            .contains("unicast"));
        // Docker's IPv6 address is kept beside (the prefix is the network's).
        let dual = json!({"NetworkID": NET, "EndpointID": EP,
                          "Interface": {"Address": "10.77.0.2/24", "AddressIPv6": "fd00:77::2/64"}});
        sb.ok("/NetworkDriver.CreateEndpoint", dual);
        let kept = sb.plugin.endpoints.load(EP).unwrap().unwrap();
        assert_eq!(kept.address6, Some("fd00:77::2".parse().unwrap()));
        let bad6 = json!({"NetworkID": NET, "EndpointID": EP,
                          "Interface": {"Address": "10.77.0.2/24", "AddressIPv6": "10.77.0.2/24"}});
        assert!(sb
            .err("/NetworkDriver.CreateEndpoint", bad6)
            .contains("not an IPv6 address"));
        let dual_net = "d".repeat(64);
        sb.ok(
            "/NetworkDriver.CreateNetwork",
            json!({"NetworkID": dual_net, "IPv4Data": [{"Pool": "10.82.0.0/24", "Gateway": "10.82.0.1/24"}],
                   "IPv6Data": [{"Pool": "fd00:82::/64", "Gateway": "fd00:82::1/64"}]}),
        );
        let v4_only = json!({"NetworkID": dual_net, "EndpointID": EP,
                             "Interface": {"Address": "10.82.0.2/24"}});
        assert!(sb
            .err("/NetworkDriver.CreateEndpoint", v4_only)
            .contains("no IPv6 address on network docker-dddddddddddd"));
        let no_address = json!({"NetworkID": NET, "EndpointID": EP, "Interface": {}});
        assert!(sb
            .err("/NetworkDriver.CreateEndpoint", no_address)
            .contains("no IPv4 address"));
        let bad_id = json!({"NetworkID": NET, "EndpointID": "../../etc", "Interface": {}});
        assert!(sb
            .err("/NetworkDriver.CreateEndpoint", bad_id)
            .contains("not a Docker id"));

        // Deleting it (nothing attached yet) removes its file; twice is fine.
        let r = json!({"NetworkID": NET, "EndpointID": EP});
        sb.ok("/NetworkDriver.DeleteEndpoint", r.clone());
        sb.ok("/NetworkDriver.DeleteEndpoint", r.clone());
        assert_eq!(sb.plugin.endpoints.load(EP).unwrap(), None);
        let join = json!({"NetworkID": NET, "EndpointID": EP, "SandboxKey": "/x"});
        assert!(sb
            .err("/NetworkDriver.Join", join)
            .contains("was not created through this plugin"));
        assert_eq!(
            sb.ok("/NetworkDriver.EndpointOperInfo", r),
            json!({"Value": {}})
        );
    }

    #[test]
    fn a_deleted_network_takes_the_endpoint_files_docker_left_on_it() {
        let sb = Sandbox::new("delete-network");
        let other = "e".repeat(64);
        sb.create_network(NET, "10.77.0.0/24");
        sb.create_network(&other, "10.78.0.0/24");
        for (ep, net, address) in [
            ("1".repeat(64), NET, "10.77.0.2/24"),
            ("2".repeat(64), NET, "10.77.0.3/24"),
            ("3".repeat(64), other.as_str(), "10.78.0.2/24"),
        ] {
            sb.ok(
                "/NetworkDriver.CreateEndpoint",
                json!({"NetworkID": net, "EndpointID": ep, "Interface": {"Address": address}}),
            );
        }
        // Known to no network file here (another config dir): only the files go.
        std::fs::remove_file(sb.dir.join("etc/networks/docker-f73ed15728f5.json")).unwrap();
        sb.ok("/NetworkDriver.DeleteNetwork", json!({"NetworkID": NET}));
        let left: Vec<bool> = ["1", "2", "3"]
            .iter()
            .map(|d| sb.plugin.endpoints.path(&d.repeat(64)).exists())
            .collect();
        assert_eq!(left, [false, false, true]);
    }
}
