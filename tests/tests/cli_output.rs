//! Every command-line tool's help and version, read by a reader that has gone (`| head -c1`
//! that exited first: the pipe's read end closed before the tool writes): the tool ends
//! quietly with 0, as `ls` does, with no error line and no abort. And an error said to a
//! stderr that has gone (`2>&1 | grep -q`): the tool's own exit status, no panic, no abort.

use std::process::{Command, Stdio};

use ocinet_tests::binary;

#[test]
fn help_and_version_end_quietly_when_the_reader_has_gone() {
    let cases: &[(&str, &[&str])] = &[
        ("ocinet-hook", &["--help", "--version"]),
        ("ocinet-shim", &["--help", "--version"]),
        ("ocinet-agent", &["--help", "--version"]),
        ("ocinet-resolver", &["--help"]),
        ("ocinet-docker", &["--help", "--version"]),
    ];
    for (tool, flags) in cases {
        for flag in *flags {
            let (reader, writer) = std::io::pipe().expect("pipe");
            drop(reader);
            let out = Command::new(binary(tool))
                .arg(flag)
                .env("OCINET_RUNTIME", "/bin/true")
                .stdin(Stdio::null())
                .stdout(writer)
                .output()
                .expect("run the tool");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(0), "{tool} {flag}: {stderr}");
            assert_eq!(stderr, "", "{tool} {flag}");
        }
    }
}

#[test]
fn an_error_said_to_a_closed_stderr_keeps_the_tools_exit_status() {
    let cases: &[(&str, &[&str])] = &[
        ("ocinet-hook", &["--no-such-flag"]),
        // Unknown flags go to the runtime; an admin command's are the shim's.
        ("ocinet-shim", &["ls", "--no-such-flag"]),
        ("ocinet-agent", &["--no-such-flag"]),
        ("ocinet-resolver", &["--no-such-flag"]),
        ("ocinet-docker", &["--no-such-flag"]),
        ("ocinet-cni", &["--no-such-flag"]),
    ];
    for (tool, args) in cases {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let out = Command::new(binary(tool))
            .args(*args)
            .env("OCINET_RUNTIME", "/bin/true")
            .env_remove("CNI_COMMAND")
            .stdin(Stdio::null())
            .stderr(writer)
            .output()
            .expect("run the tool");
        let code = out.status.code();
        // 101 is a panic's status, 134 (or no code: a signal) an abort's.
        assert!(
            matches!(code, Some(1..=100)),
            "{tool}: exit status {:?}",
            out.status
        );
    }
}
