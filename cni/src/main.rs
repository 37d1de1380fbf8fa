//! `ocinet-cni`: the CNI plugin of type `ocinet`. The runtime sets CNI_COMMAND and the rest
//! of CNI's environment and writes the network configuration on stdin; the result or the
//! specification's error goes to stdout.
//!
//! No Rust runtime setup at start (`no_main`, see `ocinet::host::startup`): it starts for every
//! container, as the hook does.

#![no_main]

use std::ffi::{c_char, c_int};
use std::io::{Read, Write};

use ocinet_cni::config::MAX_BYTES;
use ocinet_cni::version::SUPPORTED;

#[no_mangle]
extern "C" fn main(_argc: c_int, _argv: *const *const c_char) -> c_int {
    ocinet::host::startup::prepare();
    if std::env::var_os("CNI_COMMAND").is_none() {
        // A person at a terminal: say what this is rather than wait for stdin.
        ocinet::stderr_line!(
            "ocinet-cni {}: CNI plugin of type \"ocinet\" (CNI versions {}); a CNI runtime runs it with CNI_COMMAND set",
            env!("CARGO_PKG_VERSION"),
            SUPPORTED.join(", ")
        );
        return 1;
    }
    let mut input = Vec::new();
    // One byte more than allowed, so that the parser can say it is too large.
    if let Err(e) = std::io::stdin()
        .lock()
        .take(MAX_BYTES as u64 + 1)
        .read_to_end(&mut input)
    {
        ocinet::stderr_line!("ocinet-cni: cannot read the configuration on stdin: {e}");
        input.clear();
    }
    let answer = ocinet_cni::run(&|key| std::env::var(key).ok(), &input);
    if let Some(value) = answer.stdout {
        let mut out = std::io::stdout().lock();
        // A runtime that closed its end has gone: nothing to tell it.
        let _ = writeln!(out, "{value}").and_then(|()| out.flush());
    }
    answer.code
}
