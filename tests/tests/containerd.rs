//! containerd (Debian's, driven by `ctr`) with ocinet-shim as the runc shim's binary
//! (`--runc-binary`, the `BinaryName` option of io.containerd.runc.v2).

use std::time::Duration;

use ocinet_tests::{binary, rootfs, Host};

#[test]
fn ctr_with_the_shim_as_runc_binary() {
    let host = Host::new("containerd");
    let ctd = host.containerd();
    let shim = binary("ocinet-shim").to_string_lossy().into_owned();
    let rootfs = rootfs().to_string_lossy().into_owned();
    let run = |id: &str, annotations: &[&str], args: &[&str]| {
        let mut all = vec!["run", "-d", "--runc-binary", &shim];
        for a in annotations {
            all.extend(["--annotation", a]);
        }
        all.extend(["--rootfs", &rootfs, id]);
        all.extend(args);
        let out = ctd.ctr(&all);
        assert!(
            out.status.success(),
            "ctr run {id}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(
        "web",
        &["io.ocinet.network=bridge", "io.ocinet.ports=8080:80"],
        &["/bin/httpd", "-f", "-p", "80", "-h", "/www"],
    );
    run(
        "side",
        &["io.ocinet.network=container:web"],
        &["/bin/sleep", "600"],
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        host.sh_ok("timeout 8 busybox wget -qO- http://127.0.0.1:8080/")
            .trim(),
        "hello from ocinet"
    );
    let out = ctd.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "probe",
        "side",
        "/bin/wget",
        "-qO-",
        "http://127.0.0.1/",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "hello from ocinet"
    );
    let ls = host.shim(&["ls"]).unwrap();
    assert!(
        ls.contains("container:web") && ls.contains("0.0.0.0:8080->80/tcp"),
        "{ls}"
    );
    ctd.remove("side");
    ctd.remove("web");
    assert_eq!(host.leftovers(), Vec::<String>::new());
}
