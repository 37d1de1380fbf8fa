//! The bridge plugin's fields: podman's generated configuration read with its meaning, and
//! each field ocinet cannot honour refused in one line naming it.

use serde_json::{json, Value};

use super::*;
use crate::config::Config;

/// The plugin podman 4.3's `network create` writes, with only its type changed, and `patch`
/// over it (a null removes a key).
fn podman(patch: Value) -> Value {
    let mut conf = json!({"cniVersion": "0.4.0", "name": "podman", "type": "ocinet",
        "bridge": "cni-podman0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
        "ipam": {"type": "host-local", "routes": [{"dst": "0.0.0.0/0"}],
            "ranges": [[{"subnet": "10.88.0.0/16", "gateway": "10.88.0.1"}]]},
        "capabilities": {"ips": true}, "root": "/nonexistent/ocinet-unit"});
    let (Some(c), Some(p)) = (conf.as_object_mut(), patch.as_object()) else {
        return conf;
    };
    for (k, v) in p {
        if v.is_null() {
            c.remove(k);
        } else {
            c.insert(k.clone(), v.clone());
        }
    }
    conf
}

fn config(v: &Value) -> Config {
    Config::parse(v.to_string().as_bytes()).unwrap()
}

#[test]
fn podmans_configuration_is_its_network() {
    let c = config(&podman(json!({})));
    c.check_strict().unwrap();
    let n = c.network().unwrap().unwrap();
    assert_eq!(n.bridge, "cni-podman0");
    assert_eq!(n.subnets.len(), 1);
    assert_eq!(n.subnets[0].subnet.to_string(), "10.88.0.0/16");
    assert_eq!(n.subnets[0].gateway.to_string(), "10.88.0.1");
    assert!(n.masquerade);
    assert!(c.hairpin().unwrap());
    // The bridge plugin's defaults: no masquerade, no hairpin; a gateway host-local picks.
    let plain = config(&podman(json!({"ipMasq": null, "hairpinMode": null,
        "ipam": {"type": "host-local", "routes": [{"dst": "0.0.0.0/0", "gw": "10.89.0.1"}],
            "ranges": [[{"subnet": "10.89.0.0/24"}]]}})));
    plain.check_strict().unwrap();
    let n = plain.network().unwrap().unwrap();
    assert!(!n.masquerade);
    assert_eq!(n.subnets[0].gateway.to_string(), "10.89.0.1");
    assert!(!plain.hairpin().unwrap());
    // Dual stack: a range set per family, a default route per family (or isDefaultGateway).
    let dual = config(&podman(json!({"isDefaultGateway": true,
        "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.88.0.0/16"}],
            [{"subnet": "fd00:88::/64"}]]}})));
    dual.check_strict().unwrap();
    assert_eq!(dual.network().unwrap().unwrap().subnets.len(), 2);
    // ocinet's own fields beside the bridge plugin's, as long as they agree.
    let own = config(&podman(json!({"masquerade": true, "mtu": 1400})));
    assert_eq!(own.network().unwrap().unwrap().mtu, 1400);
    // No ipam: ocinet's subnets; the bridge plugin's flags that say what ocinet does pass.
    let no_ipam = config(
        &json!({"cniVersion": "1.0.0", "name": "n1", "type": "ocinet",
        "subnets": [{"subnet": "10.98.0.0/24"}], "isGateway": true, "isDefaultGateway": true,
        "ipMasq": false, "promiscMode": false, "vlan": 0, "hairpinMode": false}),
    );
    no_ipam.check_strict().unwrap();
    assert!(!no_ipam.network().unwrap().unwrap().masquerade);
}

#[test]
fn what_ocinet_cannot_do_is_refused_in_one_line_naming_the_field() {
    for (patch, says) in [
        (json!({"isGateway": false}), "\"isGateway\": false"),
        (json!({"isGateway": null}), "\"isGateway\" is absent"),
        (json!({"promiscMode": true}), "\"promiscMode\": true"),
        (json!({"vlan": 100}), "\"vlan\": 100"),
        (
            json!({"hairpinMode": false, "capabilities": {"portMappings": true}}),
            "\"hairpinMode\": false",
        ),
        (json!({"ipam": {"type": "dhcp"}}), "of type \"dhcp\""),
        (
            json!({"ipam": {"type": "static", "addresses": []}}),
            "of type \"static\"",
        ),
        (
            json!({"ipam": {"type": "host-local", "dataDir": "/x",
                "ranges": [[{"subnet": "10.88.0.0/16"}]], "routes": [{"dst": "0.0.0.0/0"}]}}),
            "\"ipam.dataDir\"",
        ),
        (
            json!({"ipam": {"type": "host-local", "routes": [{"dst": "0.0.0.0/0"}],
                "ranges": [[{"subnet": "10.88.0.0/16", "rangeStart": "10.88.1.1"}]]}}),
            "rangeStart",
        ),
        (
            json!({"ipam": {"type": "host-local", "routes": [{"dst": "0.0.0.0/0"}],
                "ranges": [[{"subnet": "10.88.0.0/16", "rangeEnd": "10.88.1.1"}]]}}),
            "rangeEnd",
        ),
        (
            json!({"ipam": {"type": "host-local", "routes": [{"dst": "0.0.0.0/0"}],
                "ranges": [[{"subnet": "10.88.0.0/24"}, {"subnet": "10.88.1.0/24"}]]}}),
            "has 2 ranges",
        ),
        (
            json!({"ipam": {"type": "host-local", "routes": [{"dst": "10.0.0.0/8"}],
                "ranges": [[{"subnet": "10.88.0.0/16"}]]}}),
            "\"ipam.routes[0]\" to \"10.0.0.0/8\"",
        ),
        (
            json!({"ipam": {"type": "host-local", "routes": [{"dst": "0.0.0.0/0", "gw": "10.88.0.9"}],
                "ranges": [[{"subnet": "10.88.0.0/16"}]]}}),
            "through \"10.88.0.9\"",
        ),
        (
            json!({"ipam": {"type": "host-local", "ranges": [[{"subnet": "10.88.0.0/16"}]]}}),
            "no default route",
        ),
        (
            json!({"ipam": {"type": "host-local", "routes": [{"dst": "0.0.0.0/0"}]}}),
            "\"ipam.ranges\" is missing",
        ),
        (
            json!({"subnets": [{"subnet": "10.98.0.0/24"}]}),
            "\"ipam\" and \"subnets\"",
        ),
        (json!({"masquerade": false}), "disagree"),
    ] {
        let e = config(&podman(patch.clone())).check_strict().unwrap_err();
        assert!(e.msg.contains(says), "{patch}: {e}");
        assert!(!e.msg.contains('\n'), "{e}");
        assert!(
            [code::UNSUPPORTED_FIELD, code::INVALID_CONFIG].contains(&e.code),
            "{patch}: {e}"
        );
    }
    let no_ipam = json!({"cniVersion": "1.0.0", "name": "n1", "isDefaultGateway": false});
    let e = config(&no_ipam).check_strict().unwrap_err();
    assert!(e.msg.contains("\"isDefaultGateway\": false"), "{e}");
}
