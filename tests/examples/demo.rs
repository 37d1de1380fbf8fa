//! The demo: in a private "host" network namespace, two runc containers on ocinet's default
//! bridge ping each other and reach an "outside" namespace through NAT; a web server publishes
//! a port and a sidecar joins its namespace, both through ocinet-shim; two containers on a user
//! network find each other by name and cannot reach the default bridge's; `ocinet-shim ls` and
//! `ip netns` show them; then all are deleted and nothing of them remains. Run as root:
//! `scripts/demo.sh`.

use std::io::Read;

use ocinet_tests::{Host, Runtime};

fn main() {
    let host = Host::new("demo");
    println!(
        "== private host namespace, state root {}",
        host.state_root().display()
    );
    let outside = host.outside();
    let listener = outside.listen(8000);
    println!("== outside namespace at 198.51.100.2, joined to the host (198.51.100.1) by a veth");

    let web = host.start(Runtime::Runc, "web", &[("io.ocinet.network", "bridge")]);
    let app = host.start(Runtime::Runc, "app", &[]);
    let (web_ip, app_ip) = (web.address(), app.address());
    println!("== runc run web -> eth0 {web_ip}; runc run app -> eth0 {app_ip}");
    print!("{}", host.sh_ok("ip -br addr show"));

    println!("== app pings web");
    print!("{}", app.sh_ok(&format!("ping -c2 -W3 {web_ip}")));

    println!("== web connects to the outside namespace");
    let accept = std::thread::spawn(move || {
        let (mut conn, peer) = listener.accept().expect("accept");
        let mut text = String::new();
        conn.read_to_string(&mut text).expect("read");
        (peer, text)
    });
    web.sh_ok("echo hello from web | timeout 8 nc 198.51.100.2 8000");
    let (peer, text) = accept.join().expect("listener");
    println!(
        "outside got {:?} from {} (the host's address: masqueraded)",
        text.trim(),
        peer.ip()
    );

    println!("== ocinet-shim run: busybox httpd publishing 8080:80, a sidecar in its namespace");
    let site_bundle = host.shim_bundle(
        "bridge",
        "site",
        &[("io.ocinet.ports", "8080:80")],
        &["httpd", "-f", "-p", "80", "-h", "/www"],
    );
    let site = host
        .run_bundle(Runtime::ShimRunc, "site", &site_bundle)
        .expect("shim run site");
    let sidecar_bundle = host.shim_bundle(
        "bridge",
        "sidecar",
        &[("io.ocinet.network", "container:site")],
        &[],
    );
    let sidecar = host
        .run_bundle(Runtime::ShimCrun, "sidecar", &sidecar_bundle)
        .expect("shim run sidecar (crun)");
    std::thread::sleep(std::time::Duration::from_millis(200));
    let got = outside.sh("timeout 8 busybox wget -qO- http://198.51.100.1:8080/");
    println!(
        "outside wget http://198.51.100.1:8080/ -> {:?}",
        String::from_utf8_lossy(&got.stdout).trim()
    );
    println!(
        "sidecar wget http://127.0.0.1/ -> {:?}",
        sidecar
            .sh_ok("timeout 8 wget -qO- http://127.0.0.1/")
            .trim()
    );
    println!("== user network `shop` (names, isolated): runc db and crun store (alias www) on it");
    host.define_network("shop", r#"{"subnets": [{"subnet": "10.89.0.0/24"}]}"#);
    let db = host.start(
        Runtime::Runc,
        "db",
        &[("io.ocinet.network", "shop"), ("io.ocinet.name", "db")],
    );
    let store = host.start(
        Runtime::Crun,
        "store",
        &[
            ("io.ocinet.network", "shop"),
            ("io.ocinet.name", "store"),
            ("io.ocinet.aliases", "www"),
        ],
    );
    println!("store's /etc/resolv.conf (the image's file is untouched):");
    print!("{}", store.sh_ok("cat /etc/resolv.conf"));
    println!("store: nslookup db");
    print!(
        "{}",
        store.sh_ok("timeout 8 nslookup db | grep -A1 '^Name'")
    );
    println!("db: ping www (store's alias)");
    print!("{}", db.sh_ok("ping -c1 -W3 www"));
    let db_ip = db.address();
    let crossed = app
        .exec(&["ping", "-c1", "-W1", &db_ip.to_string()])
        .status
        .success();
    println!(
        "app (default bridge) pings db at {db_ip}: {}",
        if crossed {
            "answered"
        } else {
            "no answer: the networks are isolated"
        }
    );
    assert!(!crossed, "the default bridge reached the user network");

    println!("== ocinet-shim ls");
    print!("{}", host.shim(&["ls"]).expect("ls"));
    println!("== ip netns list");
    print!("{}", host.sh_ok("ip netns list"));

    println!("== nftables table inet ocinet");
    print!("{}", host.sh_ok("nft list table inet ocinet"));

    store.delete().expect("delete store");
    db.delete().expect("delete db");
    sidecar.delete().expect("delete sidecar");
    site.delete().expect("delete site");
    web.delete().expect("delete web");
    app.delete().expect("delete app");
    println!("== ocinet-shim logs");
    print!("{}", host.shim(&["logs"]).expect("logs"));
    let left = host.leftovers();
    println!(
        "== after runc delete: {} veths, leases or records left",
        left.len()
    );
    print!("{}", host.sh_ok("ip -br link show"));
    assert!(left.is_empty(), "left behind: {left:?}");
    println!("== demo done");
}
