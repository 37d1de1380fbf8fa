//! A container end handed over to its runtime (the Docker plugin), ports published after the
//! attach, and a network retired: against the recording kernel.

use super::tests::Sandbox;
use super::*;
use crate::kernel::fake::RecordingKernel;
use crate::network::Network;
use crate::ports::parse_list;
use crate::request::NetworkMode;

const NET: &str = r#"{"subnets": [{"subnet": "10.77.0.0/24", "gateway": "10.77.0.1"}]}"#;

fn network(sb: &Sandbox, fields: &str) -> Network {
    let dir = sb.dir.join("etc/networks");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("dk.json"), fields).unwrap();
    sb.ctx.networks.load("dk").unwrap().unwrap()
}

/// What the plugin asks at Join: Docker's address and MAC, the end under its own name.
fn handover(sb: &Sandbox, kernel: &mut RecordingKernel, id: &str, ip: &str) -> Result<Attachment> {
    let alive = sb.dir.join(format!("endpoint-{id}"));
    std::fs::write(&alive, "{}").unwrap();
    let target = Target {
        id: id.to_string(),
        netns: NetnsRef::Handover(alive),
        pid: None,
    };
    let request = NetworkRequest {
        mode: NetworkMode::Bridge {
            network: "dk".to_string(),
        },
        ports: Vec::new(),
        static_ip: Some(ip.parse().unwrap()),
        static_ip6: None,
        mac: Some([0x02, 0x42, 10, 77, 0, 5]),
        interface: format!("ocd{id}"),
        definition: None,
        names: Default::default(),
    };
    attach_with(&sb.ctx, kernel, FrontEnd::Docker, &target, &request)
}

#[test]
fn a_handed_over_end_is_made_in_the_host_unconfigured_and_live_while_its_file_is() {
    let sb = Sandbox::new("handover");
    network(&sb, NET);
    // The host's namespace: only a handed-over end may be made there.
    let mut kernel = RecordingKernel {
        host_netns: true,
        ..Default::default()
    };
    let made = handover(&sb, &mut kernel, "e1", "10.77.0.5").unwrap();
    assert_eq!(
        kernel.names(),
        [
            "ensure_bridge",
            "create_veth",
            "ensure_ipv4_forwarding",
            "firewall_add"
        ]
    );
    let iface = &made.interfaces[0];
    assert_eq!(iface.name, "ocde1");
    assert_eq!(iface.addresses[0].to_string(), "10.77.0.5/24");
    assert_eq!(iface.mac.as_deref(), Some("02:42:0a:4d:00:05"));
    assert_eq!(made.netns_name, None);
    let record = sb.ctx.records.load("e1").unwrap().unwrap();
    assert_eq!(record.front_end, FrontEnd::Docker);
    assert!(!record.is_stale(&sb.ctx.boot_id));
    assert_eq!(sb.lease_holder_on("dk", "10.77.0.5").as_deref(), Some("e1"));

    // The runtime let go of it (the plugin's endpoint file is gone): gc may collect it.
    std::fs::remove_file(sb.dir.join("endpoint-e1")).unwrap();
    assert!(record.is_stale(&sb.ctx.boot_id));
}

#[test]
fn ports_published_after_the_attach_are_recorded_claimed_and_withdrawn() {
    let sb = Sandbox::new("late-ports");
    network(&sb, NET);
    handover(&sb, &mut RecordingKernel::default(), "e1", "10.77.0.5").unwrap();
    let specs = parse_list("8080:80").unwrap();
    let mut kernel = RecordingKernel::default();
    let ports = publishing::publish_with(&sb.ctx, &mut kernel, "e1", &specs).unwrap();
    assert_eq!(ports.len(), 1);
    assert_eq!(
        kernel.names(),
        ["ensure_bridge", "set_hairpin", "firewall_add"]
    );
    assert_eq!(sb.port_holder(8080).as_deref(), Some("e1"));
    let record = sb.ctx.records.load("e1").unwrap().unwrap();
    assert_eq!(record.interfaces[0].ports, ports);

    // Another container may not take the port: the error names the holder.
    handover(&sb, &mut RecordingKernel::default(), "e2", "10.77.0.6").unwrap();
    let taken = publishing::publish_with(&sb.ctx, &mut RecordingKernel::default(), "e2", &specs)
        .unwrap_err()
        .to_string();
    assert!(
        taken.contains("already published by container e1"),
        "{taken}"
    );
    assert!(sb.ctx.records.load("e2").unwrap().unwrap().interfaces[0]
        .ports
        .is_empty());

    // Withdrawn: elements first, then the claim; twice is fine.
    let mut kernel = RecordingKernel::default();
    publishing::unpublish_with(&sb.ctx, &mut kernel, "e1").unwrap();
    assert_eq!(kernel.names(), ["firewall_remove"]);
    assert_eq!(sb.port_holder(8080), None);
    let mut again = RecordingKernel::default();
    publishing::unpublish_with(&sb.ctx, &mut again, "e1").unwrap();
    assert!(again.names().is_empty());
}

#[test]
fn a_refused_firewall_leaves_no_claim_and_no_port_in_the_record() {
    let sb = Sandbox::new("late-ports-fail");
    network(&sb, NET);
    handover(&sb, &mut RecordingKernel::default(), "e1", "10.77.0.5").unwrap();
    let mut kernel = RecordingKernel {
        failing: vec!["firewall_add"],
        ..Default::default()
    };
    let specs = parse_list("8080:80").unwrap();
    assert!(publishing::publish_with(&sb.ctx, &mut kernel, "e1", &specs).is_err());
    assert_eq!(sb.port_holder(8080), None);
    assert!(sb.ctx.records.load("e1").unwrap().unwrap().interfaces[0]
        .ports
        .is_empty());
}

#[test]
fn an_internal_network_publishes_nothing() {
    let sb = Sandbox::new("late-ports-internal");
    network(
        &sb,
        r#"{"subnets": [{"subnet": "10.77.0.0/24"}], "internal": true}"#,
    );
    handover(&sb, &mut RecordingKernel::default(), "e1", "10.77.0.5").unwrap();
    let specs = parse_list("8080:80").unwrap();
    let e = publishing::publish_with(&sb.ctx, &mut RecordingKernel::default(), "e1", &specs)
        .unwrap_err();
    assert!(e.to_string().contains("is internal"), "{e}");
}

#[test]
fn a_network_is_retired_only_once_no_live_container_uses_it() {
    let sb = Sandbox::new("retire");
    let net = network(&sb, NET);
    handover(&sb, &mut RecordingKernel::default(), "e1", "10.77.0.5").unwrap();
    let mut kernel = RecordingKernel::default();
    let e = retire::retire_with(&sb.ctx, &mut kernel, &net).unwrap_err();
    assert!(e.to_string().contains("in use by container e1"), "{e}");
    assert!(kernel.names().is_empty());

    // Its runtime let go without a teardown: the stale record goes first, then the network's.
    std::fs::remove_file(sb.dir.join("endpoint-e1")).unwrap();
    let mut kernel = RecordingKernel::default();
    retire::retire_with(&sb.ctx, &mut kernel, &net).unwrap();
    assert_eq!(
        kernel.calls,
        [
            format!("delete_link {}", net_veth("e1")),
            format!("firewall_remove_networks [{}] 1 subnets", net.bridge),
            format!("delete_link {}", net.bridge),
        ]
    );
    assert!(sb.ctx.records.load("e1").unwrap().is_none());
    // Nothing of it stays in the state root: no lease, no cursor, no lock.
    assert!(!sb.dir.join("root/networks/dk").exists());
    assert_eq!(sb.lease_holder_on("dk", "10.77.0.5"), None);
}

fn net_veth(id: &str) -> String {
    crate::host::naming::host_veth_name(&format!("{id}:ocd{id}"))
}
