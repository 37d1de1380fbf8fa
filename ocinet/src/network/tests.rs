//! The network files' parser, the directory's checks and the default network's choice.

use std::fs;
use std::path::Path;

use super::default::choose_default_subnet;
use super::file::{default_bridge_name, MAX_VNI};
use super::*;
use crate::error::Result;
use crate::host::store::StateRoot;

fn parse(text: &str) -> Result<Network> {
    Network::parse("net1", Path::new("/etc/ocinet/networks/net1.json"), text)
}

#[test]
fn minimal_file_gets_defaults() {
    let n = parse(r#"{"subnets":[{"subnet":"10.90.0.0/24"}]}"#).unwrap();
    assert_eq!(n.bridge, "oc-net1");
    assert_eq!(n.driver, DriverKind::Bridge);
    assert_eq!(n.primary().gateway, IpAddr::V4(Ipv4Addr::new(10, 90, 0, 1)));
    assert!(n.masquerade);
    assert_eq!(n.mtu, 1500);
    assert!(!n.internal && n.isolate && n.icc);
}

#[test]
fn filter_options() {
    let n = parse(
        r#"{"subnets":[{"subnet":"10.90.0.0/24"}],"internal":true,"isolate":false,"icc":false}"#,
    )
    .unwrap();
    assert!(n.internal && !n.isolate && !n.icc);
    // Nothing leaves an internal network: nothing to masquerade.
    assert!(!n.masquerade);
    let err = parse(r#"{"subnets":[{"subnet":"10.90.0.0/24"}],"internal":true,"masquerade":true}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no way out"), "{err}");
}

#[test]
fn full_file() {
    let n = parse(
        r#"{"bridge":"ocbr1","subnets":[{"subnet":"10.90.0.0/24","gateway":"10.90.0.254"}],"masquerade":false,"mtu":1400}"#,
    )
    .unwrap();
    assert_eq!(n.bridge, "ocbr1");
    assert_eq!(
        n.primary().gateway,
        IpAddr::V4(Ipv4Addr::new(10, 90, 0, 254))
    );
    assert!(!n.masquerade);
    assert_eq!(n.mtu, 1400);
}

#[test]
fn bad_files_are_rejected() {
    for bad in [
        "",
        "{}",
        r#"{"subnets":[]}"#,
        r#"{"subnets":[{"subnet":"10.90.0.0"}]}"#,
        r#"{"subnets":[{"subnet":"10.90.0.5/24"}]}"#,
        r#"{"subnets":[{"subnet":"10.90.0.0/31"}]}"#,
        r#"{"subnets":[{"subnet":"fd00::/63"}]}"#,
        r#"{"subnets":[{"subnet":"10.90.0.0/24","gateway":"10.91.0.1"}]}"#,
        r#"{"subnets":[{"subnet":"10.90.0.0/24","gateway":"10.90.0.255"}]}"#,
        r#"{"subnets":[{"subnet":"10.90.0.0/24"}],"bridge":"much-too-long-name"}"#,
        r#"{"subnets":[{"subnet":"10.90.0.0/24"}],"bridge":"../x"}"#,
        r#"{"subnets":[{"subnet":"10.90.0.0/24"}],"mtu":10}"#,
        r#"{"subnets":[{"subnet":"10.90.0.0/24"}],"unknown":1}"#,
        r#"{"subnets":[{"subnet":"10.90.0.0/24"}],"driver":"macvlan"}"#,
        r#"{"subnets":[{"subnet":"10.90.0.0/24"},{"subnet":"10.91.0.0/24"}]}"#,
    ] {
        let err = parse(bad).unwrap_err().to_string();
        assert!(err.contains("net1.json"), "{bad}: {err}");
    }
}

#[test]
fn dual_stack_and_ipv6_only_files() {
    let n = parse(
        r#"{"subnets":[{"subnet":"fd00:90::/64"},{"subnet":"10.90.0.0/24","gateway":"10.90.0.254"}]}"#,
    )
    .unwrap();
    // IPv4 first, whatever the file's order; the IPv6 gateway defaults to the first address.
    assert_eq!(n.primary().subnet, "10.90.0.0/24".parse::<IpNet>().unwrap());
    let v6 = n.ipv6_subnet().unwrap();
    assert_eq!(v6.gateway, "fd00:90::1".parse::<IpAddr>().unwrap());
    let only =
        parse(r#"{"subnets":[{"subnet":"fd00:91::/120","gateway":"fd00:91::fe"}]}"#).unwrap();
    assert_eq!(only.subnets.len(), 1);
    assert_eq!(
        only.primary().gateway,
        "fd00:91::fe".parse::<IpAddr>().unwrap()
    );
    for (subnets, says) in [
        (r#"{"subnet":"fd00::/63"}"#, "between /64 and /120"),
        (r#"{"subnet":"fd00::/121"}"#, "between /64 and /120"),
        (r#"{"subnet":"fe80::/64"}"#, "link-local"),
        (r#"{"subnet":"ff02::/64"}"#, "multicast"),
        (r#"{"subnet":"::/64"}"#, "not a unicast"),
        (r#"{"subnet":"::ffff:10.0.0.0/120"}"#, "not a unicast"),
        (
            r#"{"subnet":"fd00::/64","gateway":"fd01::1"}"#,
            "not a host address",
        ),
        (
            r#"{"subnet":"fd00::/64","gateway":"10.0.0.1"}"#,
            "not a host address",
        ),
        (
            r#"{"subnet":"fd00::/64"},{"subnet":"fd01::/64"}"#,
            "of one family",
        ),
        (
            r#"{"subnet":"10.1.0.0/24"},{"subnet":"10.2.0.0/24"}"#,
            "of one family",
        ),
        (
            r#"{"subnet":"10.1.0.0/24"},{"subnet":"fd00::/64"},{"subnet":"fd01::/64"}"#,
            "it lists 3",
        ),
    ] {
        let text = format!(r#"{{"subnets":[{subnets}]}}"#);
        let err = parse(&text).unwrap_err().to_string();
        assert!(
            err.contains(says) && err.contains("net1.json"),
            "{text}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    let routed =
        parse(r#"{"driver":"routed","subnets":[{"subnet":"10.1.0.0/24"},{"subnet":"fd00::/64"}]}"#)
            .unwrap();
    assert_eq!(routed.subnets.len(), 2);
}

fn overlay_on(subnets: &str, extra: &str) -> Result<Network> {
    parse(&format!(
        r#"{{"driver":"overlay","subnets":[{subnets}],"etcd":{{"endpoints":["http://192.0.2.1:2379"]}}{extra}}}"#
    ))
}

#[test]
fn a_dual_stack_overlay_is_taken_ipv4_first() {
    let n = overlay_on(
        r#"{"subnet":"fd00:200::/64"},{"subnet":"10.200.0.0/16"}"#,
        "",
    )
    .unwrap();
    assert_eq!(
        n.primary().subnet,
        "10.200.0.0/16".parse::<IpNet>().unwrap()
    );
    assert_eq!(
        n.ipv6_subnet().map(|s| s.subnet),
        Some("fd00:200::/64".parse().unwrap())
    );
    // /16 into /24 blocks: 8 bits, so the /64 into /72 blocks, of the same index.
    let block6 = |b: &str| n.overlay_block6(b.parse().unwrap()).map(|b| b.to_string());
    assert_eq!(block6("10.200.0.0/24").as_deref(), Some("fd00:200::/72"));
    assert_eq!(
        block6("10.200.3.0/24").as_deref(),
        Some("fd00:200:0:0:300::/72")
    );
    assert_eq!(
        block6("10.200.255.0/24").as_deref(),
        Some("fd00:200:0:0:ff00::/72")
    );
    assert_eq!(block6("10.201.0.0/24"), None, "not of the subnet");
}

#[test]
fn an_ipv6_only_too_finely_split_or_icc_off_overlay_is_refused_in_one_line() {
    for (subnets, extra, says) in [
        (
            r#"{"subnet":"fd00:200::/64"}"#,
            "",
            "subnet fd00:200::/64 is IPv6 and an overlay network needs an IPv4 subnet too",
        ),
        (
            r#"{"subnet":"10.0.0.0/8"},{"subnet":"fd00:200::/104"}"#,
            r#","block":30"#,
            "the IPv6 subnet fd00:200::/104 split as the IPv4 subnet 10.0.0.0/8 is into /30 blocks gives /126 blocks, longer than /120",
        ),
        (
            r#"{"subnet":"10.0.0.0/16"}"#,
            r#","icc":false"#,
            "\"icc\": false is not available on an overlay network",
        ),
    ] {
        let err = overlay_on(subnets, extra).unwrap_err().to_string();
        assert!(err.contains(says), "{subnets}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    // A /120 block is the longest an IPv6 bridge subnet may be: taken.
    overlay_on(
        r#"{"subnet":"10.0.0.0/8"},{"subnet":"fd00:200::/112"}"#,
        r#","block":16"#,
    )
    .unwrap();
}

#[test]
fn routed_file_has_no_bridge_and_no_overlay_settings() {
    let n =
        parse(r#"{"driver":"routed","subnets":[{"subnet":"10.90.0.0/24"}],"mtu":1400}"#).unwrap();
    assert_eq!(n.driver, DriverKind::Routed);
    assert_eq!(n.bridge, "");
    assert_eq!(n.primary().gateway, IpAddr::V4(Ipv4Addr::new(10, 90, 0, 1)));
    assert_eq!((n.mtu, n.masquerade), (1400, true));
    for (bad, says) in [
        (r#","bridge":"ocr0""#, "no bridge"),
        (r#","vni":42"#, "overlay setting"),
    ] {
        let text = format!(r#"{{"driver":"routed","subnets":[{{"subnet":"10.90.0.0/24"}}]{bad}}}"#);
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains(says), "{bad}: {err}");
    }
    let err = parse(r#"{"driver":"ipvlan","subnets":[{"subnet":"10.90.0.0/24"}]}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("\"routed\""), "{err}");
}

#[test]
fn a_routed_networks_device_group_is_its_subnet_and_never_zero() {
    let group = |subnet: &str| {
        parse(&format!(
            r#"{{"driver":"routed","subnets":[{{"subnet":"{subnet}"}}]}}"#
        ))
        .map(|n| n.device_group())
    };
    assert_eq!(group("10.90.0.0/24").unwrap(), 0x0a5a_0000);
    // Networks that do not overlap have different network addresses, so different groups.
    assert_ne!(
        group("10.90.0.0/24").unwrap(),
        group("10.90.1.0/24").unwrap()
    );
    let err = group("0.0.0.0/8").unwrap_err().to_string();
    assert!(err.contains("0.0.0.0/8"), "{err}");
}

fn overlay(extra: &str) -> Result<Network> {
    parse(&format!(
        r#"{{"driver":"overlay","subnets":[{{"subnet":"10.200.0.0/16"}}],"etcd":{{"endpoints":["http://192.0.2.1:2379"]}}{extra}}}"#
    ))
}

#[test]
fn overlay_file_gets_defaults() {
    let n = overlay("").unwrap();
    assert_eq!(n.driver, DriverKind::Overlay);
    let o = n.overlay.unwrap();
    assert_eq!(
        (o.port, o.block, o.ttl, o.mtu, o.underlay),
        (4789, 24, 60, None, None)
    );
    assert!((4096..=MAX_VNI).contains(&o.vni));
    // The same name gives the same VNI on every host.
    assert_eq!(overlay("").unwrap().overlay.unwrap().vni, o.vni);
    let full = overlay(
        r#","vni":4200,"port":8472,"block":26,"ttl":30,"underlay":"192.0.2.11","mtu":1400,"masquerade":false"#,
    )
    .unwrap();
    let o = full.overlay.unwrap();
    assert_eq!(
        (o.vni, o.port, o.block, o.ttl, o.mtu),
        (4200, 8472, 26, 30, Some(1400))
    );
    assert_eq!(
        o.underlay,
        Some(Underlay::Address(Ipv4Addr::new(192, 0, 2, 11)))
    );
    assert!(!full.masquerade);
    let by_name = overlay(r#","underlay":"eth1""#).unwrap().overlay.unwrap();
    assert_eq!(by_name.underlay, Some(Underlay::Interface("eth1".into())));
}

#[test]
fn direct_routing_is_off_unless_asked_and_only_on_an_ipv4_overlay() {
    assert!(!overlay("").unwrap().overlay.unwrap().direct_routing);
    let direct = overlay(r#","direct_routing":true"#).unwrap();
    assert!(direct.overlay.unwrap().direct_routing);
    let dual = parse(
        r#"{"driver":"overlay","subnets":[{"subnet":"10.200.0.0/16"},{"subnet":"fd00:200::/64"}],"etcd":{"endpoints":["http://192.0.2.1:2379"]},"direct_routing":true}"#,
    )
    .unwrap_err()
    .to_string();
    assert!(dual.contains("IPv4 blocks only"), "{dual}");
    let bridge = parse(r#"{"subnets":[{"subnet":"10.90.0.0/24"}],"direct_routing":true}"#)
        .unwrap_err()
        .to_string();
    assert!(
        bridge.contains("\"direct_routing\" is an overlay setting"),
        "{bridge}"
    );
}

#[test]
fn bad_overlay_files_say_what_is_wrong() {
    for (extra, says) in [
        (r#","vni":0"#, "vni 0"),
        (r#","vni":16777216"#, "vni 16777216"),
        (r#","block":8"#, "smaller than a block"),
        (r#","block":31"#, "block /31"),
        (r#","ttl":1"#, "ttl 1"),
        (r#","port":0"#, "port 0"),
        (r#","underlay":"224.0.0.1""#, "not a unicast"),
        (r#","underlay":"not an interface!""#, "neither"),
        (r#","etcd":{"endpoints":[]}"#, "no endpoint"),
    ] {
        let text = format!(
            r#"{{"driver":"overlay","subnets":[{{"subnet":"10.200.0.0/16"}}]{}}}"#,
            if extra.starts_with(",\"etcd\"") {
                extra.to_string()
            } else {
                format!(r#","etcd":{{"endpoints":["http://192.0.2.1:2379"]}}{extra}"#)
            }
        );
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains(says), "{extra}: {err}");
    }
    for (text, says) in [
        (
            r#"{"driver":"overlay","subnets":[{"subnet":"10.200.0.0/16"}]}"#,
            "needs \"etcd\"",
        ),
        (
            r#"{"driver":"overlay","subnets":[{"subnet":"10.200.0.0/16"}],"etcd":{"endpoints":["192.0.2.1:2379"]}}"#,
            "http://HOST:PORT",
        ),
        (
            r#"{"driver":"overlay","subnets":[{"subnet":"10.200.0.0/16"}],"etcd":{"endpoints":["http://a:1"],"cert":"/c"}}"#,
            "go together",
        ),
        (
            r#"{"subnets":[{"subnet":"10.90.0.0/24"}],"vni":4200}"#,
            "overlay setting",
        ),
    ] {
        let err = parse(text).unwrap_err().to_string();
        assert!(err.contains(says), "{text}: {err}");
    }
}

#[test]
fn an_overlay_may_not_overlap_another_network() {
    let dir = std::env::temp_dir().join(format!("ocinet-overlap-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("etc/networks")).unwrap();
    let root = StateRoot::open(&dir.join("root")).unwrap();
    let networks = NetworkDirectory::new(&dir.join("etc"));
    let write = |name: &str, text: &str| {
        fs::write(dir.join(format!("etc/networks/{name}.json")), text).unwrap()
    };
    write(
        "ov",
        r#"{"driver":"overlay","subnets":[{"subnet":"10.200.0.0/16"}],"etcd":{"endpoints":["http://192.0.2.1:2379"]}}"#,
    );
    write("apart", r#"{"subnets":[{"subnet":"10.201.0.0/24"}]}"#);
    let ov = networks.load("ov").unwrap().unwrap();
    networks.check_no_overlap(&root, &ov).unwrap();
    write("inside", r#"{"subnets":[{"subnet":"10.200.5.0/24"}]}"#);
    let err = networks
        .check_no_overlap(&root, &ov)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("overlaps network inside (10.200.5.0/24)"),
        "{err}"
    );
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn inline_definitions_validate_as_files_and_must_agree_with_them() {
    let inline = |fields: serde_json::Value| {
        Network::from_json("n1", Path::new("CNI configuration"), fields)
    };
    let n = inline(serde_json::json!({"subnets": [{"subnet": "10.98.0.0/24"}]})).unwrap();
    let file = r#"{"subnets":[{"subnet":"10.98.0.0/24"}]}"#;
    assert_eq!(n, Network::parse("n1", Path::new("n1.json"), file).unwrap());
    let err = inline(serde_json::json!({"subnets": [{"subnet": "10.98.0.5/24"}]}));
    assert!(err
        .unwrap_err()
        .to_string()
        .contains("CNI configuration: subnet 10.98.0.5/24 has host bits"));
    // Every field a file takes is taken inline.
    let mut all: serde_json::Map<String, serde_json::Value> = FIELDS
        .iter()
        .map(|f| (f.to_string(), serde_json::Value::Null))
        .collect();
    all["subnets"] = serde_json::json!([{"subnet": "10.98.0.0/24"}]);
    assert_eq!(inline(serde_json::Value::Object(all)).unwrap(), n);

    let dir = std::env::temp_dir().join(format!("ocinet-inline-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("networks")).unwrap();
    let networks = NetworkDirectory::new(&dir);
    networks.check_inline(&n).unwrap();
    fs::write(
        dir.join("networks/n1.json"),
        r#"{"subnets":[{"subnet":"10.98.0.0/24"}]}"#,
    )
    .unwrap();
    networks.check_inline(&n).unwrap();
    fs::write(
        dir.join("networks/n1.json"),
        r#"{"subnets":[{"subnet":"10.99.0.0/24"}]}"#,
    )
    .unwrap();
    let err = networks.check_inline(&n).unwrap_err().to_string();
    assert!(err.contains("differently"), "{err}");
    let default = Network::default_on("10.88.0.0/16".parse().unwrap());
    let err = networks.check_inline(&default).unwrap_err().to_string();
    assert!(err.contains("built-in default"), "{err}");
    let overlay = Network {
        name: "ov".into(),
        driver: DriverKind::Overlay,
        ..n.clone()
    };
    let err = networks.check_inline(&overlay).unwrap_err().to_string();
    assert!(err.contains("its agent reads it there"), "{err}");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn long_network_names_get_hashed_bridge_names() {
    assert_eq!(default_bridge_name("web"), "oc-web");
    let long = default_bridge_name("a-rather-long-network-name");
    assert_eq!(long.len(), 15);
    assert_ne!(long, default_bridge_name("a-rather-long-network-nam2"));
}

#[test]
fn default_subnet_avoids_host_routes() {
    assert_eq!(
        choose_default_subnet(&[]).unwrap(),
        "172.17.0.0/16".parse::<Ipv4Net>().unwrap()
    );
    let routes: Vec<Ipv4Net> = ["0.0.0.0/0", "172.16.0.0/12", "10.88.5.0/24"]
        .iter()
        .map(|r| r.parse().unwrap())
        .collect();
    assert_eq!(
        choose_default_subnet(&routes).unwrap(),
        "10.89.0.0/16".parse::<Ipv4Net>().unwrap()
    );
}
