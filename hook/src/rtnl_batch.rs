//! rtnetlink requests on a plain netlink socket: messages built with the rtnetlink crate's
//! types, several in one datagram with one acknowledgement each ([`Batch`]), or one request
//! and its answer ([`ask`], [`dump`]).
//!
//! Why together: the kernel handles the messages of one datagram one after the other inside
//! that one system call. Sent one per system call (as the rtnetlink crate sends them), the
//! kernel's link worker can take the rtnl lock between two of them: a link that has just come
//! up with a carrier hands the worker the bridge's port-state walk, an IPv6 route walk and
//! notifications, each as long as there are containers on the machine, and the next request
//! (the container's default route) then waits for all of it. In one datagram the next message
//! takes the lock before the worker is awake. And one system call instead of one each, with no
//! async runtime to start.

use std::io;

use nix::libc;
use rtnetlink::packet_core::{
    NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST,
};
use rtnetlink::packet_route::RouteNetlinkMessage;

use crate::error::Error;
use crate::raw_netlink::{self, RawSocket};

/// Requests to send in one datagram.
#[derive(Default)]
pub struct Batch {
    buf: Vec<u8>,
    steps: Vec<Step>,
}

/// What a request of a batch does (for the error when refused), and which refusals mean it
/// is done already.
struct Step {
    what: String,
    fine: &'static [i32],
}

/// Why a request did not go through: the first one the kernel refused (the ones after it in a
/// batch were handled too, each on its own), or the socket's own failure.
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
        self.push_allowing(message, flags, &[], what);
    }

    /// [`push`](Batch::push), where a refusal with an errno in `fine` (e.g. EEXIST for an
    /// address that is there already) counts as done.
    pub fn push_allowing(
        &mut self,
        message: RouteNetlinkMessage,
        flags: u16,
        fine: &'static [i32],
        what: String,
    ) {
        let seq = self.steps.len() as u32 + 1;
        serialize(&mut self.buf, message, NLM_F_ACK | flags, seq);
        self.steps.push(Step { what, fine });
    }

    /// Sends every request in one datagram and reads every acknowledgement.
    pub fn send(self, socket: &RawSocket) -> Result<(), Refused> {
        if self.steps.is_empty() {
            return Ok(());
        }
        socket.send(&self.buf).map_err(broken)?;
        let mut codes = vec![None; self.steps.len()];
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
            .zip(self.steps)
            .find_map(|(code, step)| match code {
                Some(code) if *code != 0 && !step.fine.contains(&-code) => Some(Refused {
                    what: step.what,
                    error: io::Error::from_raw_os_error(-code),
                }),
                _ => None,
            });
        refused.map_or(Ok(()), Err)
    }
}

/// Sends one request (a GET of one object) and returns the kernel's answer.
pub fn ask(
    socket: &RawSocket,
    message: RouteNetlinkMessage,
    what: &str,
) -> Result<RouteNetlinkMessage, Refused> {
    let mut answers = request(socket, message, 0, what)?;
    answers.pop().ok_or_else(|| Refused {
        what: what.to_string(),
        error: io::Error::other("the kernel did not answer"),
    })
}

/// Sends a dump request and returns every answer.
pub fn dump(
    socket: &RawSocket,
    message: RouteNetlinkMessage,
    what: &str,
) -> Result<Vec<RouteNetlinkMessage>, Refused> {
    request(socket, message, NLM_F_DUMP, what)
}

fn request(
    socket: &RawSocket,
    message: RouteNetlinkMessage,
    flags: u16,
    what: &str,
) -> Result<Vec<RouteNetlinkMessage>, Refused> {
    let refused = |error| Refused {
        what: what.to_string(),
        error,
    };
    let mut buf = Vec::new();
    serialize(&mut buf, message, flags, 1);
    socket.send(&buf).map_err(broken)?;
    let dump = flags & NLM_F_DUMP != 0;
    let mut answers = Vec::new();
    socket
        .receive(|kind, msg| {
            if kind == libc::NLMSG_DONE as u16 {
                return Ok(Some(()));
            }
            if let Some(code) = raw_netlink::error_code(kind, msg) {
                return Err(io::Error::from_raw_os_error(-code));
            }
            let parsed = NetlinkMessage::<RouteNetlinkMessage>::deserialize(msg)
                .map_err(|e| io::Error::other(format!("unreadable answer: {e}")))?;
            if let NetlinkPayload::InnerMessage(answer) = parsed.payload {
                answers.push(answer);
            }
            Ok((!dump).then_some(()))
        })
        .map_err(refused)?;
    Ok(answers)
}

/// Appends `message` with header flags REQUEST and `flags` and sequence number `seq`.
fn serialize(buf: &mut Vec<u8>, message: RouteNetlinkMessage, flags: u16, seq: u32) {
    let mut message = NetlinkMessage::from(message);
    message.header.flags = NLM_F_REQUEST | flags;
    message.header.sequence_number = seq;
    message.finalize();
    let start = buf.len();
    buf.resize(start + message.buffer_len(), 0);
    message.serialize(&mut buf[start..]);
}

fn broken(error: io::Error) -> Refused {
    Refused {
        what: "rtnetlink socket".to_string(),
        error,
    }
}
