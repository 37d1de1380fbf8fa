//! rtnetlink requests sent together: messages built with the rtnetlink crate's types, several
//! in one datagram on a plain netlink socket, one acknowledgement each.
//!
//! Why together: the kernel handles the messages of one datagram one after the other inside
//! that one system call. Sent one per system call (as the rtnetlink crate sends them), the
//! kernel's link worker can take the rtnl lock between two of them: a link that has just come
//! up with a carrier hands the worker the bridge's port-state walk, an IPv6 route walk and
//! notifications, each as long as there are containers on the machine, and the next request
//! (the container's default route) then waits for all of it. In one datagram the next message
//! takes the lock before the worker is awake. And one system call instead of one each.

use std::io;

use rtnetlink::packet_core::{NetlinkMessage, NLM_F_ACK, NLM_F_REQUEST};
use rtnetlink::packet_route::RouteNetlinkMessage;

use crate::error::Error;
use crate::raw_netlink::{self, RawSocket};

/// Requests to send in one datagram, each with what it does (for the error when refused).
#[derive(Default)]
pub struct Batch {
    buf: Vec<u8>,
    what: Vec<String>,
}

/// Why a batch did not go through: the first request the kernel refused (the ones after it
/// were handled too, each on its own), or the socket's own failure.
#[derive(Debug)]
pub struct Refused {
    pub what: String,
    pub error: io::Error,
}

impl Refused {
    pub fn errno(&self) -> Option<i32> {
        self.error.raw_os_error()
    }
}

impl From<Refused> for Error {
    fn from(r: Refused) -> Error {
        Error::Netlink(format!("{}: {}", r.what, r.error))
    }
}

impl Batch {
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Queues `message` with header flags `flags` (besides REQUEST and ACK); `what` says what
    /// it does, as in "cannot set eth0 up".
    pub fn push(&mut self, message: RouteNetlinkMessage, flags: u16, what: String) {
        let mut message = NetlinkMessage::from(message);
        message.header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        message.header.sequence_number = self.what.len() as u32 + 1;
        message.finalize();
        let start = self.buf.len();
        self.buf.resize(start + message.buffer_len(), 0);
        message.serialize(&mut self.buf[start..]);
        self.what.push(what);
    }

    /// Sends every request in one datagram and reads every acknowledgement.
    pub fn send(self, socket: &RawSocket) -> Result<(), Refused> {
        let broken = |error| Refused {
            what: "rtnetlink socket".to_string(),
            error,
        };
        if self.what.is_empty() {
            return Ok(());
        }
        socket.send(&self.buf).map_err(broken)?;
        let mut codes = vec![None; self.what.len()];
        let mut answered = 0;
        socket
            .receive(|kind, msg| {
                let Some(code) = raw_netlink::error_code(kind, msg) else {
                    return Ok(None);
                };
                let seq = raw_netlink::sequence(msg) as usize;
                if let Some(slot) = seq.checked_sub(1).and_then(|i| codes.get_mut(i)) {
                    if slot.replace(code).is_none() {
                        answered += 1;
                    }
                }
                Ok((answered == codes.len()).then_some(()))
            })
            .map_err(broken)?;
        let refused = codes
            .iter()
            .zip(self.what)
            .find_map(|(code, what)| match code {
                Some(code) if *code != 0 => Some(Refused {
                    what,
                    error: io::Error::from_raw_os_error(-code),
                }),
                _ => None,
            });
        refused.map_or(Ok(()), Err)
    }
}
