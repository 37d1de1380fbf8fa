//! The agent's word to the hook that started it, on the descriptor it inherited: `ok` once the
//! block is held and the tunnels are up, or `error: <line>`. Said once; later failures go to
//! the log only.

use std::fs::File;
use std::io::Write;
use std::os::fd::FromRawFd;

pub struct Ready {
    pipe: Option<File>,
}

impl Ready {
    /// The descriptor `fd` if it is open (an agent started by hand has none).
    pub fn inherited(fd: i32) -> Ready {
        // SAFETY: F_GETFD only asks whether the descriptor exists.
        let open = unsafe { nix::libc::fcntl(fd, nix::libc::F_GETFD) } >= 0;
        Ready {
            // SAFETY: the descriptor is open and nothing else in this process owns it.
            pipe: open.then(|| unsafe { File::from_raw_fd(fd) }),
        }
    }

    pub fn ok(&mut self) {
        self.say("ok");
    }

    pub fn fail(&mut self, line: &str) {
        self.say(&format!("error: {}", line.replace(['\n', '\r'], " ")));
    }

    fn say(&mut self, word: &str) {
        if let Some(mut pipe) = self.pipe.take() {
            let _ = writeln!(pipe, "{word}");
        }
    }
}
