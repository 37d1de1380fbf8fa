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
use crate::netlink::raw::{self, RawSocket};

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
        let mut acks = Acks::new(self.steps.len());
        socket
            .receive(|kind, msg| Ok(acks.take(kind, msg).then_some(())))
            .map_err(broken)?;
        first_refusal(&acks.codes, self.steps)
    }
}

/// The acknowledgements of a batch so far, by sequence number (1 for the first request).
struct Acks {
    codes: Vec<Option<i32>>,
    answered: usize,
}

impl Acks {
    fn new(requests: usize) -> Acks {
        Acks {
            codes: vec![None; requests],
            answered: 0,
        }
    }

    /// Takes one answer; true once every request has its acknowledgement.
    fn take(&mut self, kind: u16, msg: &[u8]) -> bool {
        if let Some(code) = raw::error_code(kind, msg) {
            let seq = raw::sequence(msg) as usize;
            if let Some(slot) = seq.checked_sub(1).and_then(|i| self.codes.get_mut(i)) {
                if slot.replace(code).is_none() {
                    self.answered += 1;
                }
            }
        }
        self.answered == self.codes.len()
    }
}

/// The first request, in the batch's order, that the kernel refused for a reason its step does
/// not take as done.
fn first_refusal(codes: &[Option<i32>], steps: Vec<Step>) -> Result<(), Refused> {
    let refused = codes.iter().zip(steps).find_map(|(code, step)| match code {
        Some(code) if *code != 0 && !step.fine.contains(&-code) => Some(Refused {
            what: step.what,
            error: io::Error::from_raw_os_error(-code),
        }),
        _ => None,
    });
    refused.map_or(Ok(()), Err)
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
            if let Some(code) = raw::error_code(kind, msg) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use rtnetlink::packet_route::link::LinkMessage;

    fn ack(seq: u32, code: i32) -> Vec<u8> {
        let mut buf = Vec::new();
        let start = raw::begin(&mut buf, libc::NLMSG_ERROR as u16, 0, seq);
        buf.extend(code.to_ne_bytes());
        raw::finish(&mut buf, start);
        buf
    }

    fn step(what: &str, fine: &'static [i32]) -> Step {
        Step {
            what: what.to_string(),
            fine,
        }
    }

    #[test]
    fn requests_go_in_order_each_asking_for_an_acknowledgement() {
        let mut batch = Batch::new();
        for what in ["a", "b", "c"] {
            batch.push(
                RouteNetlinkMessage::SetLink(LinkMessage::default()),
                0,
                what.to_string(),
            );
        }
        let mut at = 0;
        for seq in 1..=3u32 {
            let msg = &batch.buf[at..];
            let len = u32::from_ne_bytes(msg[0..4].try_into().unwrap()) as usize;
            let flags = u16::from_ne_bytes(msg[6..8].try_into().unwrap());
            assert_eq!(raw::sequence(msg), seq);
            assert_eq!(flags, NLM_F_REQUEST | NLM_F_ACK);
            at += len;
        }
        assert_eq!(at, batch.buf.len());
    }

    #[test]
    fn a_batch_is_answered_when_every_request_is_whatever_the_order() {
        let mut acks = Acks::new(3);
        assert!(!acks.take(libc::NLMSG_ERROR as u16, &ack(2, 0)));
        // A repeated or unknown sequence number counts once or not at all.
        assert!(!acks.take(libc::NLMSG_ERROR as u16, &ack(2, 0)));
        assert!(!acks.take(libc::NLMSG_ERROR as u16, &ack(9, 0)));
        assert!(!acks.take(libc::NLMSG_ERROR as u16, &ack(3, -libc::EEXIST)));
        assert!(acks.take(libc::NLMSG_ERROR as u16, &ack(1, 0)));
        assert_eq!(acks.codes, [Some(0), Some(0), Some(-libc::EEXIST)]);
    }

    #[test]
    fn the_first_refusal_in_order_is_reported_unless_its_step_takes_it_as_done() {
        let steps = || {
            vec![
                step("cannot add the address", &[libc::EEXIST]),
                step("cannot set eth0 up", &[]),
                step("cannot add the route", &[]),
            ]
        };
        let codes = [Some(-libc::EEXIST), Some(0), Some(-libc::ENETUNREACH)];
        let refused = first_refusal(&codes, steps()).unwrap_err();
        assert_eq!(refused.what, "cannot add the route");
        assert_eq!(refused.errno(), Some(libc::ENETUNREACH));
        let codes = [Some(-libc::ENODEV), Some(-libc::ENODEV), Some(0)];
        assert_eq!(
            first_refusal(&codes, steps()).unwrap_err().what,
            "cannot add the address"
        );
        assert!(first_refusal(&[Some(-libc::EEXIST), Some(0), Some(0)], steps()).is_ok());
    }
}
