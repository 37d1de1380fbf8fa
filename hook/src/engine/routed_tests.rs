//! The engine with a routed network, against the recording kernel.

use super::tests::{attach_fake, request, rollback_at_every_step, Sandbox};
use super::*;
use crate::kernel::fake::RecordingKernel;

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
