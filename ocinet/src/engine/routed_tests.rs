//! The engine with a routed network, and the neighbour table check of bridge setups, against
//! the recording kernel.

use super::tests::{attach_fake, request, rollback_at_every_step, target, Sandbox};
use super::*;
use crate::driver::neighbours;
use crate::kernel::fake::RecordingKernel;
use crate::netlink::rtnl::neigh_table::Limits;
use crate::state::activity;

const ROUTED_SETUP: &[&str] = &[
    "is_host_netns",
    "create_routed_veth",
    "route_to_container",
    "configure_container",
    "ensure_ipv4_forwarding",
    "firewall_add",
    "bind_netns_name",
];

fn with_routed_network(name: &str) -> Sandbox {
    let sb = Sandbox::new(name);
    let networks = sb.dir.join("etc/networks");
    std::fs::create_dir_all(&networks).unwrap();
    std::fs::write(
        networks.join("r.json"),
        r#"{"driver": "routed", "subnets": [{"subnet": "10.77.0.0/24"}]}"#,
    )
    .unwrap();
    sb
}

fn routed_with_port() -> NetworkRequest {
    request(&[("io.ocinet.network", "r"), ("io.ocinet.ports", "8080:80")])
}

#[test]
fn a_routed_setup_gives_a_32_and_routes_to_it_in_order() {
    let sb = with_routed_network("routed-order");
    let mut kernel = RecordingKernel::default();
    let made = attach_fake(&sb, &mut kernel, "web", &routed_with_port()).unwrap();
    assert_eq!(kernel.names(), ROUTED_SETUP);
    let iface = &made.interfaces[0];
    assert_eq!(iface.driver, DriverKind::Routed);
    assert_eq!(iface.bridge, "");
    assert_eq!(iface.addresses[0].to_string(), "10.77.0.2/32");
    assert_eq!(iface.addresses[0].gateway, "10.77.0.1".parse().ok());
    assert_eq!(iface.mac.as_deref(), Some("02:42:0a:4d:00:02"));
    let route = format!("route_to_container 10.77.0.2 {}", iface.host_veth);
    assert!(kernel.calls.contains(&route), "{:?}", kernel.calls);
    assert_eq!(kernel.configured, [("10.77.0.2".parse().unwrap(), 32)]);
    let record = sb.ctx.records.load("web").unwrap().unwrap();
    assert_eq!(record.mode, "routed:r");
    assert_eq!(record.interfaces, made.interfaces);
    assert_eq!(sb.lease_holder_on("r", "10.77.0.2").as_deref(), Some("web"));
    assert_eq!(sb.port_holder(8080).as_deref(), Some("web"));
    // The next container gets the next address, on a link of its own.
    let mut next = RecordingKernel::default();
    let made = attach_fake(
        &sb,
        &mut next,
        "db",
        &request(&[("io.ocinet.network", "r")]),
    );
    assert_eq!(
        made.unwrap().interfaces[0].addresses[0].to_string(),
        "10.77.0.3/32"
    );
}

#[test]
fn a_failure_at_any_routed_step_undoes_everything() {
    let sandbox = |i| with_routed_network(&format!("routed-rollback-{i}"));
    let lease = ("r", "10.77.0.2");
    rollback_at_every_step(&ROUTED_SETUP[1..], sandbox, &routed_with_port(), lease);
}

#[test]
fn a_routed_teardown_releases_the_lease_only_once_the_veth_is_gone() {
    let sb = with_routed_network("routed-undo");
    let mut kernel = RecordingKernel::default();
    attach_fake(&sb, &mut kernel, "web", &routed_with_port()).unwrap();
    let mut stuck = RecordingKernel {
        failing: vec!["delete_link"],
        ..Default::default()
    };
    let err = detach_with(&sb.ctx, &mut stuck, "web").unwrap_err();
    assert!(err.to_string().contains("delete_link failed"), "{err}");
    assert_eq!(
        stuck.names(),
        ["unbind_netns_name", "firewall_remove", "delete_link"]
    );
    // The elements went, so the port did; the veth did not, so the lease and record stay.
    assert_eq!(sb.port_holder(8080), None);
    assert_eq!(sb.lease_holder_on("r", "10.77.0.2").as_deref(), Some("web"));
    assert!(sb.ctx.records.load("web").unwrap().is_some());
    // From the record alone, and idempotent.
    detach_with(&sb.ctx, &mut RecordingKernel::default(), "web").unwrap();
    assert_eq!(sb.lease_holder_on("r", "10.77.0.2"), None);
    assert!(sb.ctx.records.load("web").unwrap().is_none());
    let mut nothing = RecordingKernel::default();
    detach_with(&sb.ctx, &mut nothing, "web").unwrap();
    assert!(nothing.calls.is_empty());
}

/// `n` records of other containers (only their number matters here).
fn crowd(sb: &Sandbox, n: usize) {
    let records = sb.ctx.root.path().join("containers");
    for i in 0..n {
        std::fs::write(records.join(format!("other-{i}.json")), "{}").unwrap();
    }
}

/// An id whose setup checks the neighbour table's limits.
fn due_id(prefix: &str) -> String {
    (0..)
        .map(|i| format!("{prefix}{i}"))
        .find(|id| neighbours::due(id))
        .unwrap_or_default()
}

fn notes(sb: &Sandbox, id: &str) -> Vec<String> {
    activity::read(sb.ctx.root.path(), Some(id))
        .unwrap()
        .into_iter()
        .filter(|e| e.stage == "neighbour-limits")
        .map(|e| e.result)
        .collect()
}

const DEFAULT_LIMITS: Limits = Limits {
    thresh1: 128,
    thresh2: 512,
    thresh3: 1024,
};

#[test]
fn a_bridge_setup_near_the_neighbour_limits_raises_them_and_says_so() {
    let sb = Sandbox::new("neighbours");
    crowd(&sb, 200);
    let id = due_id("c");
    let mut kernel = RecordingKernel {
        initial_netns: true,
        ..Default::default()
    };
    attach_fake(&sb, &mut kernel, &id, &request(&[])).unwrap();
    let names = kernel.names();
    assert_eq!(
        names[names.len() - 3..],
        [
            "neighbour_limits",
            "set_neighbour_limits",
            "bind_netns_name"
        ]
    );
    let raised = neighbours::wanted(201, DEFAULT_LIMITS).unwrap();
    assert_eq!(kernel.limits, Some(raised));
    let said = notes(&sb, &id);
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(
        said[0].starts_with(&format!(
            "raised net.ipv4.neigh.default.gc_thresh2 512 -> {}",
            raised.thresh2
        )),
        "{said:?}"
    );
}

#[test]
fn outside_the_initial_namespace_the_setting_is_named_in_a_warning() {
    let sb = Sandbox::new("neighbours-warn");
    crowd(&sb, 200);
    let id = due_id("w");
    let mut kernel = RecordingKernel::default();
    attach_fake(&sb, &mut kernel, &id, &request(&[])).unwrap();
    assert_eq!(kernel.limits, None);
    let said = notes(&sb, &id);
    assert!(
        said.len() == 1
            && said[0].starts_with("warning: 201 containers")
            && said[0].contains("sysctl -w net.ipv4.neigh.default.gc_thresh2="),
        "{said:?}"
    );
}

#[test]
fn few_containers_a_setup_not_due_or_a_routed_one_leave_the_limits_alone() {
    let sb = with_routed_network("neighbours-quiet");
    let due = due_id("q");
    let mut kernel = RecordingKernel::default();
    attach_fake(&sb, &mut kernel, &due, &request(&[])).unwrap();
    crowd(&sb, 200);
    let not_due = (0..)
        .map(|i| format!("n{i}"))
        .find(|id| !neighbours::due(id))
        .unwrap_or_default();
    attach_fake(&sb, &mut kernel, &not_due, &request(&[])).unwrap();
    let routed = request(&[("io.ocinet.network", "r")]);
    attach_with(
        &sb.ctx,
        &mut kernel,
        FrontEnd::OciHook,
        &target(&due_id("r")),
        &routed,
    )
    .unwrap();
    assert!(
        !kernel.names().contains(&"neighbour_limits"),
        "{:?}",
        kernel.calls
    );
}

#[test]
fn a_dual_stack_setup_near_the_limits_raises_both_neighbour_tables() {
    let sb = Sandbox::new("neighbours-dual");
    let networks = sb.dir.join("etc/networks");
    std::fs::create_dir_all(&networks).unwrap();
    std::fs::write(
        networks.join("d.json"),
        r#"{"subnets": [{"subnet": "10.78.0.0/24"}, {"subnet": "fd00:78::/64"}]}"#,
    )
    .unwrap();
    crowd(&sb, 200);
    let id = due_id("d");
    let mut kernel = RecordingKernel {
        initial_netns: true,
        ..Default::default()
    };
    attach_fake(
        &sb,
        &mut kernel,
        &id,
        &request(&[("io.ocinet.network", "d")]),
    )
    .unwrap();
    let checked: Vec<&String> = kernel
        .calls
        .iter()
        .filter(|c| c.contains("neighbour_limits"))
        .collect();
    assert_eq!(checked.len(), 4, "{:?}", kernel.calls);
    assert!(
        checked[3].starts_with("set_neighbour_limits IPv6"),
        "{checked:?}"
    );
    let said = notes(&sb, &id);
    assert_eq!(said.len(), 2, "{said:?}");
    assert!(
        said[0].contains("net.ipv4.neigh.default.gc_thresh2"),
        "{said:?}"
    );
    assert!(
        said[1].contains("net.ipv6.neigh.default.gc_thresh2")
            && said[1].contains("host's IPv6 neighbour table"),
        "{said:?}"
    );
}

#[test]
fn a_dual_stack_routed_setup_routes_each_family() {
    let sb = Sandbox::new("routed-dual");
    let networks = sb.dir.join("etc/networks");
    std::fs::create_dir_all(&networks).unwrap();
    std::fs::write(
        networks.join("r6.json"),
        r#"{"driver": "routed", "subnets": [{"subnet": "fd00:77::/64"}, {"subnet": "10.77.0.0/24"}]}"#,
    )
    .unwrap();
    let mut kernel = RecordingKernel::default();
    let made = attach_fake(
        &sb,
        &mut kernel,
        "web",
        &request(&[("io.ocinet.network", "r6"), ("io.ocinet.ip6", "fd00:77::9")]),
    )
    .unwrap();
    let iface = &made.interfaces[0];
    let addresses: Vec<String> = iface.addresses.iter().map(|a| a.to_string()).collect();
    assert_eq!(addresses, ["10.77.0.2/32", "fd00:77::9/128"]);
    // The MAC follows the IPv4 address, as on an IPv4-only network.
    assert_eq!(iface.mac.as_deref(), Some("02:42:0a:4d:00:02"));
    let route = format!(
        "route_to_container 10.77.0.2,fd00:77::9 {}",
        iface.host_veth
    );
    assert!(kernel.calls.contains(&route), "{:?}", kernel.calls);
    let names = kernel.names();
    assert!(names.contains(&"ensure_ipv6_forwarding"), "{names:?}");
    assert_eq!(
        sb.lease_holder_on("r6", "fd00:77::9").as_deref(),
        Some("web")
    );
}
