//! The hook's own start, in place of Rust's runtime setup (the binary is `#![no_main]`).
//!
//! Why: that setup costs about twenty system calls at every start (the main thread's stack
//! bounds read from /proc/self/maps, a signal stack with a guard page, fault handlers),
//! ~65 us per start on the benchmark machine, and the hook starts for every container. Its
//! stack-overflow message is all the hook gives up; the two things it needs from that setup are
//! here.

use std::ffi::{c_char, c_int, CStr};

use nix::libc;

/// The arguments after the program's name, from C's `main`. `std::env::args` is empty in a
/// `no_main` binary on musl (only glibc hands them to the code that fills it). An argument
/// that is not UTF-8 is the `Err`, in its lossy text.
///
/// # Safety
/// `argv` must hold `argc` valid NUL-terminated strings, as C's `main` receives them.
pub unsafe fn arguments(argc: c_int, argv: *const *const c_char) -> Result<Vec<String>, String> {
    let count = usize::try_from(argc).unwrap_or(0);
    (1..count)
        // SAFETY: i < argc, and the caller vouches for argv's first argc entries.
        .map(|i| unsafe { *argv.add(i) })
        .filter(|arg| !arg.is_null())
        .map(|arg| {
            // SAFETY: a non-null entry of argv is a NUL-terminated string.
            let bytes = unsafe { CStr::from_ptr(arg) }.to_bytes();
            String::from_utf8(bytes.to_vec())
                .map_err(|_| String::from_utf8_lossy(bytes).into_owned())
        })
        .collect()
}

/// SIGPIPE ignored and file descriptors 0-2 open, as Rust's runtime would leave them.
pub fn prepare() {
    // SAFETY: setting a signal's disposition to SIG_IGN has no other effect.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    open_missing_stdio();
}

/// A runtime may start the hook with stdin, stdout or stderr closed; a file the hook opens
/// later would then take that number, and an error line would be written into it. Each closed
/// one gets /dev/null (open takes the lowest free number).
fn open_missing_stdio() {
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    // SAFETY: fds is a valid array of three pollfd; a zero timeout only reports.
    while unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) } == -1 {
        if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return;
        }
    }
    for fd in fds {
        if fd.revents & libc::POLLNVAL != 0 {
            // SAFETY: a plain open of a constant path; the descriptor stays open for the
            // process's life, standing in for the missing one.
            unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
        }
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::CString;

    use super::*;

    #[test]
    fn arguments_skip_the_program_name_and_refuse_what_is_not_utf8() {
        let strings = [
            CString::new("ocinet-hook").unwrap(),
            CString::new("--root").unwrap(),
            CString::new(b"/run/\xffocinet".to_vec()).unwrap(),
            CString::new("poststop").unwrap(),
        ];
        let mut argv: Vec<*const c_char> = strings.iter().map(|s| s.as_ptr()).collect();
        argv.push(std::ptr::null());
        // SAFETY: argv holds four valid C strings and a terminating null.
        let refused = unsafe { arguments(4, argv.as_ptr()) };
        assert_eq!(refused, Err("/run/\u{fffd}ocinet".to_string()));
        let mut good = argv.clone();
        good.remove(2);
        // SAFETY: good holds three of those strings and the null.
        let args = unsafe { arguments(3, good.as_ptr()) };
        assert_eq!(args, Ok(vec!["--root".to_string(), "poststop".to_string()]));
        // SAFETY: as above; no arguments at all.
        assert_eq!(unsafe { arguments(1, argv.as_ptr()) }, Ok(Vec::new()));
    }
}
