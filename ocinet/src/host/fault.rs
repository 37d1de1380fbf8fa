//! Fault injection for the crash tests: `OCINET_FAULT=<point>` SIGKILLs the hook at that point
//! (`OCINET_PAUSE=<point>` pauses there),
//! between two resources, to prove that teardown and gc clean up after a crash anywhere. Only
//! debug builds (the tests') look at the variable; in release builds `point` is empty.

/// Every point setup and teardown pass, in order. The crash test runs each one.
pub const SETUP_POINTS: &[&str] = &[
    "setup:record",
    "setup:lease",
    "setup:claims",
    "setup:bridge",
    "setup:veth",
    "setup:container-address",
    "setup:forwarding",
    "setup:firewall",
    "setup:netns-name",
];

/// The points a routed network's setup passes, in order (no bridge; a route after the veth).
pub const ROUTED_SETUP_POINTS: &[&str] = &[
    "setup:record",
    "setup:lease",
    "setup:claims",
    "setup:veth",
    "setup:route",
    "setup:container-address",
    "setup:forwarding",
    "setup:firewall",
    "setup:netns-name",
];

pub const TEARDOWN_POINTS: &[&str] = &[
    "teardown:netns-name",
    "teardown:unpublish",
    "teardown:claims",
    "teardown:veth",
    "teardown:lease",
];

/// Dies here, by SIGKILL as the OOM killer or a runtime's timeout would, if asked to; or, with
/// `OCINET_PAUSE=<point>`, stops here for half a second (a background teardown held at a step
/// while a test does something else).
#[inline]
pub(crate) fn point(name: &str) {
    #[cfg(debug_assertions)]
    if std::env::var_os("OCINET_FAULT").is_some_and(|v| v == name) {
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    }
    #[cfg(debug_assertions)]
    if std::env::var_os("OCINET_PAUSE").is_some_and(|v| v == name) {
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    #[cfg(not(debug_assertions))]
    let _ = name;
}
