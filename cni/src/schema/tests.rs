//! Every field the plugin reads, given the wrong type, through the configuration's checks:
//! code 6 and a message naming the field and the type it must be; and valid configurations
//! (podman's, containerd's, every field at once, nulls) as before.

use std::collections::BTreeSet;

use ocinet::network;
use serde_json::{json, Value};

use super::*;
use crate::config::{Config, CNI_KEYS, OCINET_KEYS};
use crate::env::Args;

/// A configuration every command takes (1.1.0 has GC and STATUS), with `patch` over it.
fn config(patch: Value) -> Value {
    let mut base = json!({"cniVersion": "1.1.0", "name": "n1", "type": "ocinet",
        "subnets": [{"subnet": "10.98.0.0/24"}], "root": "/nonexistent/ocinet-unit"});
    if let (Some(b), Some(p)) = (base.as_object_mut(), patch.as_object()) {
        b.extend(p.clone());
    }
    base
}

/// What ADD, CHECK, GC and STATUS check before anything else.
fn strict(v: &Value) -> Result<Config> {
    let c = Config::parse(v.to_string().as_bytes())?;
    c.check_strict()?;
    Ok(c)
}

/// One wrong type for each field, nested ones included: (patch, field as named, type said).
fn wrong_types() -> Vec<(Value, &'static str, &'static str)> {
    let pm = |entry: Value| json!({"runtimeConfig": {"portMappings": [entry]}});
    let prev = |result: Value| json!({"prevResult": result});
    let subnet = |entry: Value| json!({"subnets": [entry]});
    let etcd = |e: Value| json!({"driver": "overlay", "etcd": e});
    let attachment = |a: Value| json!({"cni.dev/valid-attachments": [a]});
    vec![
        (
            json!({"cniVersion": 1}),
            "cniVersion",
            "a string such as \"1.0.0\"",
        ),
        (json!({"name": 2}), "name", "a string"),
        (json!({"type": 3}), "type", "a string"),
        (json!({"args": "IP=10.0.0.1"}), "args", "an object"),
        (
            json!({"capabilities": 5}),
            "capabilities",
            "an object such as",
        ),
        (
            json!({"capabilities": {"portMappings": "yes"}}),
            "capabilities.portMappings",
            "true or false",
        ),
        (json!({"runtimeConfig": []}), "runtimeConfig", "an object"),
        (
            json!({"runtimeConfig": {"portMappings": {"hostPort": 80}}}),
            "runtimeConfig.portMappings",
            "a list",
        ),
        (
            pm(json!(8080)),
            "runtimeConfig.portMappings[0]",
            "an object",
        ),
        (
            pm(json!({"hostPort": "8080", "containerPort": 80})),
            "runtimeConfig.portMappings[0].hostPort",
            "a whole number",
        ),
        (
            pm(json!({"hostPort": 8080, "containerPort": 80.5})),
            "runtimeConfig.portMappings[0].containerPort",
            "a whole number",
        ),
        (
            pm(json!({"hostPort": 8080, "containerPort": 80, "protocol": 6})),
            "runtimeConfig.portMappings[0].protocol",
            "a string",
        ),
        (
            pm(json!({"hostPort": 8080, "containerPort": 80, "hostIP": 0})),
            "runtimeConfig.portMappings[0].hostIP",
            "a string",
        ),
        (
            json!({"runtimeConfig": {"ips": "10.98.0.9"}}),
            "runtimeConfig.ips",
            "a list of strings",
        ),
        (
            json!({"runtimeConfig": {"ips": ["10.98.0.9", 5]}}),
            "runtimeConfig.ips[1]",
            "a string",
        ),
        (
            json!({"runtimeConfig": {"aliases": ["web"]}}),
            "runtimeConfig.aliases",
            "an object",
        ),
        (
            json!({"runtimeConfig": {"aliases": {"n1": "web"}}}),
            "runtimeConfig.aliases.n1",
            "a list of strings",
        ),
        (
            json!({"runtimeConfig": {"aliases": {"n1": ["web", 7]}}}),
            "runtimeConfig.aliases.n1[1]",
            "a string",
        ),
        (
            json!({"runtimeConfig": {"mac": 2}}),
            "runtimeConfig.mac",
            "a string",
        ),
        (json!({"prevResult": 7}), "prevResult", "an object"),
        (
            prev(json!({"cniVersion": 1})),
            "prevResult.cniVersion",
            "a string",
        ),
        (
            prev(json!({"interfaces": {"name": "eth0"}})),
            "prevResult.interfaces",
            "a list",
        ),
        (
            prev(json!({"interfaces": [{"name": "eth0"}, {"name": 1}]})),
            "prevResult.interfaces[1].name",
            "a string",
        ),
        (
            prev(json!({"interfaces": [{"mac": 1}]})),
            "prevResult.interfaces[0].mac",
            "a string",
        ),
        (
            prev(json!({"interfaces": [{"mtu": "1500"}]})),
            "prevResult.interfaces[0].mtu",
            "a whole number",
        ),
        (
            prev(json!({"interfaces": [{"sandbox": false}]})),
            "prevResult.interfaces[0].sandbox",
            "a string",
        ),
        (prev(json!({"ips": [7]})), "prevResult.ips[0]", "an object"),
        (
            prev(json!({"ips": [{"address": 167772161}]})),
            "prevResult.ips[0].address",
            "a string",
        ),
        (
            prev(json!({"ips": [{"address": "10.0.0.1/24", "gateway": []}]})),
            "prevResult.ips[0].gateway",
            "a string",
        ),
        (
            prev(json!({"ips": [{"address": "10.0.0.1/24", "interface": "0"}]})),
            "prevResult.ips[0].interface",
            "a whole number",
        ),
        (
            prev(json!({"ips": [{"address": "10.0.0.1/24", "version": 4}]})),
            "prevResult.ips[0].version",
            "a string",
        ),
        (
            prev(json!({"routes": "none"})),
            "prevResult.routes",
            "a list",
        ),
        (
            prev(json!({"routes": [{"dst": 0}]})),
            "prevResult.routes[0].dst",
            "a string",
        ),
        (
            prev(json!({"routes": [{"dst": "0.0.0.0/0", "gw": {}}]})),
            "prevResult.routes[0].gw",
            "a string",
        ),
        (
            prev(json!({"routes": [{"dst": "0.0.0.0/0", "priority": "high"}]})),
            "prevResult.routes[0].priority",
            "a whole number",
        ),
        (
            prev(json!({"dns": {"nameservers": "10.0.0.1"}})),
            "prevResult.dns.nameservers",
            "a list of strings",
        ),
        (
            json!({"dns": 5}),
            "dns",
            "true or false (the network's name service)",
        ),
        (
            json!({"dns": "yes"}),
            "dns",
            "true or false (the network's name service) or an object (CNI's DNS settings)",
        ),
        (
            json!({"dns": {"nameservers": [10]}}),
            "dns.nameservers[0]",
            "a string",
        ),
        (json!({"dns": {"domain": 1}}), "dns.domain", "a string"),
        (
            json!({"dns": {"search": "a.example"}}),
            "dns.search",
            "a list",
        ),
        (
            json!({"dns": {"options": [true]}}),
            "dns.options[0]",
            "a string",
        ),
        (
            json!({"cni.dev/valid-attachments": {"containerID": "c1"}}),
            "cni.dev/valid-attachments",
            "a list",
        ),
        (
            attachment(json!("c1")),
            "cni.dev/valid-attachments[0]",
            "an object",
        ),
        (
            attachment(json!({"containerID": 1, "ifname": "eth0"})),
            "cni.dev/valid-attachments[0].containerID",
            "a string",
        ),
        (
            attachment(json!({"containerID": "c1", "ifname": 0})),
            "cni.dev/valid-attachments[0].ifname",
            "a string",
        ),
        (json!({"root": 1}), "root", "a string"),
        (
            json!({"configDir": ["/etc/ocinet"]}),
            "configDir",
            "a string",
        ),
        (json!({"driver": 1}), "driver", "a string"),
        (json!({"bridge": true}), "bridge", "a string"),
        (json!({"subnets": "10.98.0.0/24"}), "subnets", "a list"),
        (json!({"subnets": null}), "subnets", "a list"),
        (subnet(json!("10.98.0.0/24")), "subnets[0]", "an object"),
        (
            subnet(json!({"subnet": 10})),
            "subnets[0].subnet",
            "a string",
        ),
        (
            subnet(json!({"subnet": null})),
            "subnets[0].subnet",
            "a string",
        ),
        (
            subnet(json!({"subnet": "10.98.0.0/24", "gateway": 1})),
            "subnets[0].gateway",
            "a string",
        ),
        (json!({"masquerade": "yes"}), "masquerade", "true or false"),
        (
            json!({"mtu": "1500"}),
            "mtu",
            "a whole number from 0 to 4294967295",
        ),
        (
            json!({"mtu": -1}),
            "mtu",
            "a whole number from 0 to 4294967295",
        ),
        (json!({"mtu": 1500.5}), "mtu", "a whole number"),
        (etcd(json!(["http://192.0.2.1:2379"])), "etcd", "an object"),
        (
            etcd(json!({"endpoints": "http://192.0.2.1:2379"})),
            "etcd.endpoints",
            "a list of strings",
        ),
        (etcd(json!({"endpoints": null})), "etcd.endpoints", "a list"),
        (
            etcd(json!({"endpoints": [1]})),
            "etcd.endpoints[0]",
            "a string",
        ),
        (
            etcd(json!({"endpoints": ["http://192.0.2.1:2379"], "ca": 1})),
            "etcd.ca",
            "a string",
        ),
        (
            etcd(json!({"endpoints": ["http://192.0.2.1:2379"], "cert": 1})),
            "etcd.cert",
            "a string",
        ),
        (
            etcd(json!({"endpoints": ["http://192.0.2.1:2379"], "key": 1})),
            "etcd.key",
            "a string",
        ),
        (
            json!({"vni": "42"}),
            "vni",
            "a whole number from 0 to 4294967295",
        ),
        (
            json!({"port": 70000}),
            "port",
            "a whole number from 0 to 65535",
        ),
        (
            json!({"block": 300}),
            "block",
            "a whole number from 0 to 255",
        ),
        (
            json!({"ttl": -5}),
            "ttl",
            "a whole number from 0 to 4294967295",
        ),
        (json!({"underlay": 1}), "underlay", "a string"),
        (
            json!({"direct_routing": "yes"}),
            "direct_routing",
            "true or false",
        ),
        (json!({"internal": "no"}), "internal", "true or false"),
        (json!({"isolate": 1}), "isolate", "true or false"),
        (json!({"icc": 0}), "icc", "true or false"),
        (json!({"isGateway": "true"}), "isGateway", "true or false"),
        (
            json!({"isDefaultGateway": 1}),
            "isDefaultGateway",
            "true or false",
        ),
        (json!({"ipMasq": "yes"}), "ipMasq", "true or false"),
        (json!({"hairpinMode": 1}), "hairpinMode", "true or false"),
        (json!({"promiscMode": "no"}), "promiscMode", "true or false"),
        (json!({"vlan": "100"}), "vlan", "a whole number"),
        (json!({"ipam": "host-local"}), "ipam", "an object"),
        (json!({"ipam": {"type": 1}}), "ipam.type", "a string"),
        (
            json!({"ipam": {"ranges": [{"subnet": "10.88.0.0/16"}]}}),
            "ipam.ranges[0]",
            "a list",
        ),
        (
            json!({"ipam": {"ranges": [[{"subnet": 10}]]}}),
            "ipam.ranges[0][0].subnet",
            "a string",
        ),
        (
            json!({"ipam": {"ranges": [[{"subnet": "10.88.0.0/16", "gateway": 1}]]}}),
            "ipam.ranges[0][0].gateway",
            "a string",
        ),
        (
            json!({"ipam": {"ranges": [[{"subnet": "10.88.0.0/16", "rangeStart": 5}]]}}),
            "ipam.ranges[0][0].rangeStart",
            "a string",
        ),
        (
            json!({"ipam": {"ranges": [[{"subnet": "10.88.0.0/16", "rangeEnd": []}]]}}),
            "ipam.ranges[0][0].rangeEnd",
            "a string",
        ),
        (
            json!({"ipam": {"routes": {"dst": "0.0.0.0/0"}}}),
            "ipam.routes",
            "a list",
        ),
        (
            json!({"ipam": {"routes": [{"dst": 0}]}}),
            "ipam.routes[0].dst",
            "a string",
        ),
        (
            json!({"ipam": {"routes": [{"dst": "0.0.0.0/0", "gw": false}]}}),
            "ipam.routes[0].gw",
            "a string",
        ),
    ]
}

#[test]
fn every_wrong_type_is_a_decoding_failure_naming_the_field_and_its_type() {
    for (patch, field, type_said) in wrong_types() {
        let e = strict(&config(patch.clone())).err().unwrap_or_else(|| {
            panic!("{patch} was taken");
        });
        assert_eq!(e.code, code::DECODING, "{patch}: {e}");
        let says = format!("\"{field}\" must be {type_said}");
        assert!(e.msg.contains(&says), "{patch}: {e}\nwanted: {says}");
    }
}

#[test]
fn the_cases_cover_every_field_the_plugin_takes() {
    let tested: BTreeSet<String> = wrong_types()
        .iter()
        .filter_map(|(_, field, _)| {
            // The top-level key the field is in (`cni.dev/valid-attachments` has a dot).
            TOP.iter().map(|k| k.name).find(|name| {
                field
                    .strip_prefix(name)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
            })
        })
        .map(str::to_string)
        .collect();
    let typed: BTreeSet<String> = TOP.iter().map(|k| k.name.to_string()).collect();
    assert_eq!(tested, typed);
    // What check_strict takes is what the schema types: CNI's keys, ocinet's, the network's.
    let taken: BTreeSet<String> = CNI_KEYS
        .iter()
        .chain(OCINET_KEYS)
        .chain(network::FIELDS)
        .chain(crate::bridge_plugin::KEYS)
        .map(|k| k.to_string())
        .collect();
    assert_eq!(taken, typed);
}

#[test]
fn the_message_says_what_was_given_in_one_line() {
    let e = strict(&config(json!({"type": 3}))).err().unwrap();
    assert_eq!(e.msg, "\"type\" must be a string, not the number 3");
    let e = strict(&config(json!({"cniVersion": 1}))).err().unwrap();
    assert_eq!(
        e.msg,
        "\"cniVersion\" must be a string such as \"1.0.0\", not the number 1"
    );
    let long = "x".repeat(500);
    let e = strict(&config(json!({"masquerade": long}))).err().unwrap();
    assert_eq!(
        e.msg,
        format!(
            "\"masquerade\" must be true or false, not the string \"{}\"...",
            "x".repeat(40)
        )
    );
    let e = strict(&config(json!({"runtimeConfig": [{"a": "b"}]})))
        .err()
        .unwrap();
    assert_eq!(e.msg, "\"runtimeConfig\" must be an object, not a list");
}

#[test]
fn what_every_command_reads_is_typed_at_parse_and_the_rest_spares_del() {
    for patch in [
        json!({"cniVersion": 1}),
        json!({"name": 2}),
        json!({"root": 1}),
        json!({"configDir": {}}),
    ] {
        let e = Config::parse(config(patch.clone()).to_string().as_bytes()).unwrap_err();
        assert_eq!(e.code, code::DECODING, "{patch}");
    }
    // DEL reads none of these: it goes through with a configuration its ADD refused.
    for patch in [json!({"type": 3}), json!({"runtimeConfig": []})] {
        assert!(Config::parse(config(patch).to_string().as_bytes()).is_ok());
    }
}

#[test]
fn each_reader_refuses_its_field_without_check_strict() {
    let parsed = |patch: Value| Config::parse(config(patch).to_string().as_bytes()).unwrap();
    let code_of = |r: Result<()>| r.map_or_else(|e| e.code, |()| 0);
    let c = parsed(
        json!({"runtimeConfig": {"portMappings": [{"hostPort": 80, "containerPort": 80, "protocol": 6}]}}),
    );
    assert_eq!(
        code_of(c.runtime(&Args::default()).map(drop)),
        code::DECODING
    );
    let c = parsed(json!({"prevResult": 7}));
    assert_eq!(code_of(c.prev_result().map(drop)), code::DECODING);
    let c = parsed(json!({"dns": 5}));
    assert_eq!(code_of(c.dns().map(drop)), code::DECODING);
    let c = parsed(json!({"mtu": "1500"}));
    assert_eq!(code_of(c.network().map(drop)), code::DECODING);
    let c = parsed(json!({"cni.dev/valid-attachments": [5]}));
    assert_eq!(code_of(c.valid_attachments().map(drop)), code::DECODING);
}

#[test]
fn podman_and_containerd_configurations_are_taken_as_before() {
    // podman 4.3's CNI backend: the conflist's plugin with its capabilities, and what libcni
    // adds (runtimeConfig with the capabilities' arguments, an empty hostIP).
    let podman = json!({"cniVersion": "1.0.0", "name": "n1", "type": "ocinet",
        "subnets": [{"subnet": "10.98.0.0/24"}], "root": "/run/x", "configDir": "/etc/x",
        "capabilities": {"portMappings": true, "ips": true, "mac": true},
        "runtimeConfig": {"portMappings": [
            {"hostPort": 8080, "containerPort": 80, "protocol": "tcp", "hostIP": ""}],
            "ips": ["10.98.0.10/24"], "mac": "02:00:00:00:00:0a"}});
    let c = strict(&podman).unwrap();
    let rt = c.runtime(&Args::default()).unwrap();
    assert_eq!(
        (rt.ports.len(), rt.ip.is_some(), rt.mac.is_some()),
        (1, true, true)
    );
    // containerd's: the plugin alone; a chained plugin's result before ocinet's.
    let containerd = json!({"cniVersion": "1.0.0", "name": "n1", "type": "ocinet",
        "subnets": [{"subnet": "10.98.0.0/24"}],
        "prevResult": {"cniVersion": "1.0.0", "interfaces": [{"name": "lo0", "sandbox": "/x"}],
            "ips": [{"address": "192.0.2.5/24", "interface": 0}],
            "routes": [{"dst": "0.0.0.0/0", "gw": "192.0.2.1"}], "dns": {}}});
    let c = strict(&containerd).unwrap();
    assert!(c.prev_result().unwrap().is_some());
    assert_eq!(c.runtime(&Args::default()).unwrap(), Default::default());
}

#[test]
fn every_field_of_its_type_and_every_optional_null_is_taken() {
    // An overlay network with every field a file has, and CNI's keys.
    let all = json!({"cniVersion": "1.1.0", "name": "n1", "type": "ocinet",
        "args": {"cni": {"labels": [{"key": "app", "value": "web"}]}},
        "capabilities": {"portMappings": true}, "runtimeConfig": {"bandwidth": {}},
        "cni.dev/valid-attachments": [{"containerID": "c1", "ifname": "eth0"}],
        "root": "/run/x", "configDir": "/etc/x",
        "driver": "overlay", "subnets": [{"subnet": "10.98.0.0/16", "gateway": "10.98.0.1"}],
        "masquerade": true, "mtu": 1450, "vni": 4242, "port": 4789, "block": 24, "ttl": 60,
        "underlay": "eth0", "bridge": "ocn1", "internal": false, "isolate": true, "icc": true,
        "dns": true, "direct_routing": true,
        "etcd": {"endpoints": ["http://192.0.2.1:2379"], "ca": "/ca.pem", "cert": "/c.pem",
            "key": "/k.pem"}});
    let c = strict(&all).unwrap();
    let n = c.network().unwrap().unwrap();
    assert!(n.dns && n.overlay.is_some());
    assert_eq!(c.dns().unwrap(), None);
    assert_eq!(c.valid_attachments().unwrap().len(), 1);
    // Null is absent where a value is optional (as Go's decoder and serde's Option read it).
    let nulls = config(json!({"type": null, "args": null, "capabilities": null,
        "runtimeConfig": {"portMappings": null, "ips": null, "mac": null, "aliases": null},
        "prevResult": null, "dns": null, "root": null, "configDir": null, "driver": null,
        "bridge": null, "masquerade": null, "mtu": null, "etcd": null, "vni": null,
        "port": null, "block": null, "ttl": null, "underlay": null, "direct_routing": null,
        "internal": null, "isolate": null, "icc": null, "isGateway": null,
        "isDefaultGateway": null, "ipMasq": null, "hairpinMode": null, "promiscMode": null,
        "vlan": null, "ipam": null,
        "subnets": [{"subnet": "10.98.0.0/24", "gateway": null}]}));
    let c = strict(&nulls).unwrap();
    assert!(c.network().unwrap().is_some());
    assert_eq!(c.runtime(&Args::default()).unwrap(), Default::default());
    assert_eq!(c.prev_result().unwrap(), None);
}

#[test]
fn dns_is_the_networks_boolean_or_cnis_settings() {
    let settings = json!({"nameservers": ["10.98.0.1"], "domain": "example.test",
        "search": ["example.test"], "options": ["ndots:2"]});
    let c = strict(&config(json!({"dns": settings}))).unwrap();
    assert_eq!(c.dns().unwrap(), Some(&settings));
    // The network is the inline one, with its name service as the default has it.
    assert!(c.network().unwrap().unwrap().dns);
    let c = strict(&config(json!({"dns": false}))).unwrap();
    assert!(!c.network().unwrap().unwrap().dns);
    assert_eq!(c.dns().unwrap(), None);
    // CNI's settings alone define no network inline: the one of that name is used.
    let by_name = json!({"cniVersion": "1.0.0", "name": "n1", "dns": settings});
    assert_eq!(strict(&by_name).unwrap().network().unwrap(), None);
}
