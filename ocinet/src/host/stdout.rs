//! Standard output of the command-line tools. A reader that stops reading (`| head -1`) ends
//! the tool quietly with status 0, as `ls` and `cat` end, rather than with an error line or an
//! abort (`print!` panics, and panics abort). SIGPIPE stays ignored: a tool's sockets to the
//! helpers must fail with an error, never kill it, so a closed pipe shows up here as EPIPE.

use std::io::{ErrorKind, Write};

/// Writes `bytes` to stdout and flushes; exits the process with 0 if the reader has gone.
pub fn write(bytes: impl AsRef<[u8]>) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes.as_ref()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == ErrorKind::BrokenPipe => std::process::exit(0),
        result => result,
    }
}
