//! What the command-line tools and helpers print. A reader of stdout that stops reading
//! (`| head -1`) ends the tool quietly with status 0, as `ls` and `cat` end; a closed stderr
//! loses the line and nothing else. `print!` and `eprintln!` panic on either, and a panic
//! aborts. SIGPIPE stays ignored: a tool's sockets to the helpers must fail with an error,
//! never kill it, so a closed pipe shows up here as EPIPE.

use std::io::{ErrorKind, Write};

/// Writes `bytes` to stdout and flushes; exits the process with 0 if the reader has gone.
pub fn stdout(bytes: impl AsRef<[u8]>) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes.as_ref()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == ErrorKind::BrokenPipe => std::process::exit(0),
        result => result,
    }
}

/// Writes one line to stderr; a stderr that cannot take it (closed, full) loses the line.
pub fn stderr_line(line: std::fmt::Arguments<'_>) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_fmt(format_args!("{line}\n"));
}

/// `eprintln!` that never panics: see [`stderr_line`].
#[macro_export]
macro_rules! stderr_line {
    ($($arg:tt)*) => {
        $crate::host::output::stderr_line(format_args!($($arg)*))
    };
}
