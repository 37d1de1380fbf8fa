//! Every command-line tool's help and version, read by a reader that has gone (`| head -c1`
//! that exited first: the pipe's read end closed before the tool writes): the tool ends
//! quietly with 0, as `ls` does, with no error line and no abort.

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
