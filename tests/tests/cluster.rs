//! Test hosts and what they run, torn down by the test.

use ocinet_tests::Host;

/// Alive = in /proc and not a zombie (the init here reaps orphans late).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat[stat.rfind(')').unwrap() + 1..]
                .split_whitespace()
                .next();
            !matches!(state, Some("Z" | "X"))
        }
        Err(_) => false,
    }
}

#[test]
fn host_drop_kills_detached_processes_and_reaps_its_own() {
    let host = Host::new("strays");
    let detached: u32 = host
        .sh_ok("setsid -f nohup sh -c 'echo $$; exec sleep 1000 </dev/null >/dev/null 2>&1'")
        .trim()
        .parse()
        .unwrap();
    // A child of this test left unwaited: the sweep reaps it, no zombie stays behind.
    let child = host
        .command("sleep")
        .arg("1000")
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let own = child.id();
    drop(child);
    assert!(alive(detached) && alive(own));
    drop(host);
    assert!(!alive(detached), "the detached process outlived its host");
    assert!(
        !std::path::Path::new(&format!("/proc/{own}")).exists(),
        "this test's own child was not reaped"
    );
}
