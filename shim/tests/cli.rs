//! The shim's command line as a user meets it, through the built binary. Needs no root, no
//! runtime and no state: a script that prints its arguments stands in for runc, so what
//! reaches the runtime is visible.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// A runtime that prints `runtime: ARGS`. (GNU echo would answer `--help` itself.) Written
/// once per test process; the pid keeps concurrent runs of this file apart.
fn fake_runtime() -> String {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| {
        let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("ocinet-fake-runtime-{}", std::process::id()));
        std::fs::write(&path, "#!/bin/sh\necho \"runtime: $*\"\n").expect("write fake runtime");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path.to_string_lossy().into_owned()
    })
    .clone()
}

fn shim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ocinet-shim"))
        .args(args)
        // Unset, so that the state and runtime are only what a test names.
        .env_remove("OCINET_RUNTIME")
        .env_remove("OCINET_ROOT")
        .env_remove("OCINET_CONFIG_DIR")
        .stdin(Stdio::null())
        .output()
        .expect("run ocinet-shim")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn help_is_ocinets_then_the_runtimes() {
    for word in ["--help", "-h", "help"] {
        let runtime = fake_runtime();
        let out = shim(&["--runtime-path", &runtime, word]);
        assert!(out.status.success(), "{word}: {}", stderr(&out));
        let text = stdout(&out);
        for command in ["ls", "inspect", "networks", "gc", "logs", "reload"] {
            assert!(text.contains(&format!("\n  {command} ")), "{word}: {text}");
        }
        assert!(text.contains("unchanged to the OCI runtime"), "{text}");
        // The runtime was asked for its help, with nothing else.
        assert!(
            text.ends_with(&format!("({runtime} --help):\n\nruntime: --help\n")),
            "{text}"
        );
    }
}

#[test]
fn help_without_a_runtime_is_still_help() {
    let out = shim(&["--runtime-path", "/nonexistent/runc", "--help"]);
    assert!(out.status.success());
    assert!(stdout(&out).contains("Commands:"));
    assert!(!stdout(&out).contains("runtime's own help"));
}

#[test]
fn admin_command_help_and_errors() {
    for args in [&["ls", "--help"][..], &["help", "ls"], &["ls", "-h"]] {
        let out = shim(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert!(stdout(&out).contains("Usage: ocinet-shim ls"), "{args:?}");
        assert!(stdout(&out).contains("--format <FORMAT>"), "{args:?}");
    }
    let out = shim(&["ls", "--bogus"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert_eq!(
        stderr(&out),
        "ocinet-shim: unexpected argument '--bogus' found; see 'ocinet-shim ls --help'\n"
    );
}

#[test]
fn version_is_the_shims_then_the_runtimes() {
    let out = shim(&["--runtime-path", &fake_runtime(), "-v"]);
    assert!(out.status.success());
    assert_eq!(
        stdout(&out),
        format!(
            "ocinet-shim {}\nruntime: --version\n",
            env!("CARGO_PKG_VERSION")
        )
    );
}

#[test]
fn runtime_commands_pass_through_untouched() {
    let runtime = fake_runtime();
    let out = shim(&[
        "--runtime-path",
        &runtime,
        "--root",
        "/run/x",
        "state",
        "--help",
        "c1",
    ]);
    assert!(out.status.success());
    assert_eq!(stdout(&out), "runtime: --root /run/x state --help c1\n");
    let out = shim(&["--runtime-path", &runtime, "help", "create"]);
    assert_eq!(stdout(&out), "runtime: help create\n");
}

/// `ocinet-shim --version | head -c1`: the reader is gone before the shim writes (the pipe's
/// read end closed first), and the shim ends quietly with 0, as `ls` does.
#[test]
fn a_reader_gone_ends_the_shim_quietly() {
    let runtime = fake_runtime();
    for args in [
        vec!["--version"],
        vec!["--help"],
        vec!["--runtime-path", &runtime, "--version"],
        vec!["--runtime-path", &runtime, "--help"],
        vec!["ls", "--help"],
    ] {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let out = Command::new(env!("CARGO_BIN_EXE_ocinet-shim"))
            .args(&args)
            .env_remove("OCINET_RUNTIME")
            .stdin(Stdio::null())
            .stdout(writer)
            .output()
            .expect("run ocinet-shim");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert_eq!(stderr(&out), "", "{args:?}");
    }
}
