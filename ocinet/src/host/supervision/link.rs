//! The link between a helper and its keeper: one end each of a unix socket pair. The kernel
//! closes a process's end when it exits however it exits (a SIGKILL too, and before it is a
//! zombie, which may stay one for long on these hosts), so the other sees end-of-file at once
//! and knows its partner is gone. A partner that leaves on purpose says `bye` first.

use std::io::{ErrorKind, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{send, MsgFlags};

const BYE: &[u8] = b"bye\n";

/// What the partner did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Heard {
    /// Nothing within the time given: it lives.
    Nothing,
    /// It leaves on purpose: not to be restarted.
    Bye,
    /// Its end closed without a word: it died.
    Gone,
}

#[derive(Debug)]
pub(crate) struct Link {
    stream: UnixStream,
    heard: Vec<u8>,
}

impl Link {
    /// A new link: this process's end, and the partner's end to place in the partner.
    pub(crate) fn pair() -> std::io::Result<(Link, OwnedFd)> {
        // Both ends close-on-exec: the partner's end is placed by `helper::spawn_detached`.
        let (ours, theirs) = UnixStream::pair()?;
        Ok((Link::from(ours), theirs.into()))
    }

    /// The end a partner placed at `fd`; refused if `fd` is not a unix socket (the role was
    /// set by hand). Made close-on-exec: nothing this process starts may hold it.
    pub(crate) fn inherited(fd: RawFd) -> Result<Link, String> {
        // SAFETY: F_GETFD only asks whether the descriptor exists.
        if unsafe { nix::libc::fcntl(fd, nix::libc::F_GETFD) } < 0 {
            return Err(format!("no link on fd {fd}: it is not open"));
        }
        // SAFETY: open (just checked), and borrowed for the fstat only.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        let stat =
            nix::sys::stat::fstat(borrowed).map_err(|e| format!("no link on fd {fd}: {e}"))?;
        if stat.st_mode & nix::libc::S_IFMT != nix::libc::S_IFSOCK {
            return Err(format!("fd {fd} is not a socket: no link to a partner"));
        }
        // SAFETY: the descriptor is open (fstat said so) and nothing else in this process owns it.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        nix::fcntl::fcntl(
            &owned,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )
        .map_err(|e| format!("cannot keep fd {fd} to itself: {e}"))?;
        Ok(Link::from(UnixStream::from(owned)))
    }

    /// Another handle on the same end (for saying `bye` from another thread).
    pub(crate) fn try_clone(&self) -> std::io::Result<Link> {
        Ok(Link::from(self.stream.try_clone()?))
    }

    /// Waits up to `within` for the partner to say or do something.
    pub(crate) fn listen(&mut self, within: Duration) -> Heard {
        let millis = u16::try_from(within.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(self.stream.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(millis)) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => return Heard::Nothing,
            Ok(_) => {}
            // Nothing a partner can cause: as if it were gone, which a restart repairs.
            Err(_) => return Heard::Gone,
        }
        let mut buf = [0u8; 64];
        match self.stream.read(&mut buf) {
            Ok(0) => Heard::Gone,
            Ok(n) => {
                self.heard.extend_from_slice(&buf[..n]);
                if self.heard.windows(BYE.len()).any(|w| w == BYE) {
                    return Heard::Bye;
                }
                // Only `bye` is ever said: anything else is dropped, never buffered for long.
                if self.heard.len() > 1024 {
                    self.heard.clear();
                }
                Heard::Nothing
            }
            Err(e) if matches!(e.kind(), ErrorKind::Interrupted | ErrorKind::WouldBlock) => {
                Heard::Nothing
            }
            Err(_) => Heard::Gone,
        }
    }

    /// Tells the partner this process leaves on purpose. Never blocks, never raises SIGPIPE
    /// (the partner may be gone).
    pub(crate) fn bye(&self) {
        let _ = send(
            self.stream.as_raw_fd(),
            BYE,
            MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT,
        );
    }

    /// The pid of the process that made the pair (for a link this process inherited: its
    /// partner, which started it).
    pub(crate) fn maker_pid(&self) -> Option<i32> {
        nix::sys::socket::getsockopt(&self.stream, nix::sys::socket::sockopt::PeerCredentials)
            .ok()
            .map(|c| c.pid())
    }
}

impl From<UnixStream> for Link {
    fn from(stream: UnixStream) -> Link {
        Link {
            stream,
            heard: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partner_that_says_bye_leaves_and_one_that_closes_its_end_died() {
        let (mut ours, theirs) = Link::pair().unwrap();
        let theirs = Link::from(UnixStream::from(theirs));
        assert_eq!(ours.listen(Duration::from_millis(10)), Heard::Nothing);
        theirs.bye();
        drop(theirs);
        assert_eq!(ours.listen(Duration::from_secs(1)), Heard::Bye);

        let (mut ours, theirs) = Link::pair().unwrap();
        drop(theirs);
        assert_eq!(ours.listen(Duration::from_secs(1)), Heard::Gone);
        // Saying bye to a partner that is gone is harmless.
        ours.bye();
        assert_eq!(ours.maker_pid(), Some(std::process::id() as i32));
    }

    #[test]
    fn only_a_socket_is_taken_for_a_link() {
        let file = std::fs::File::open("/dev/null").unwrap();
        let fd = file.as_raw_fd();
        assert!(Link::inherited(fd).unwrap_err().contains("not a socket"));
        drop(file);
    }
}
