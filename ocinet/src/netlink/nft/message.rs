//! nf_tables over nfnetlink: atomic batches on one socket. The common path of every setup and
//! teardown (add or remove a few elements of ocinet's sets) is one batch; creating the table
//! (`netlink::nft::table`) another. No library, no `nft` process, no dump of the ruleset first.

use std::io;

use nix::libc;

pub(crate) use crate::netlink::raw::attr;
use crate::netlink::raw::{self, RawSocket};

/// Kernel constants (linux/netfilter/nfnetlink.h, nf_tables.h).
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFT_MSG_NEWSETELEM: u16 = 12;
const NFT_MSG_DELSETELEM: u16 = 14;
const NFPROTO_INET: u8 = 1;
const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_SET_ELEM_LIST_SET_ID: u16 = 4;
pub(crate) const NFTA_LIST_ELEM: u16 = 1;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_DATA: u16 = 2;
const NFTA_SET_ELEM_FLAGS: u16 = 3;
const NFTA_SET_ELEM_KEY_END: u16 = 10;
pub(crate) const NFTA_DATA_VALUE: u16 = 1;
const NLA_F_NESTED: u16 = 0x8000;
/// The element closes the interval opened by the one before (rbtree interval sets).
pub(crate) const NFT_SET_ELEM_INTERVAL_END: u32 = 1;

/// One element to add or remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Element {
    pub key: Vec<u8>,
    /// For concatenated interval sets: the end of the key's interval.
    pub key_end: Option<Vec<u8>>,
    /// For maps: the value.
    pub data: Option<Vec<u8>>,
    pub flags: u32,
}

/// Adds or removes elements of one set.
#[derive(Debug, Clone)]
pub(crate) struct SetChange<'a> {
    pub set: &'a str,
    pub elements: Vec<Element>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Add,
    Delete,
}

/// Why a batch failed: the first errno the kernel gave. The batch is atomic: nothing of it
/// happened.
#[derive(Debug)]
pub(crate) struct BatchError(pub io::Error);

impl BatchError {
    /// Table, set or (on delete) element missing.
    pub(crate) fn is_missing(&self) -> bool {
        self.0.raw_os_error() == Some(libc::ENOENT)
    }

    /// Something the batch creates exclusively (the table) is already there.
    pub(crate) fn is_exists(&self) -> bool {
        self.0.raw_os_error() == Some(libc::EEXIST)
    }
}

/// A socket for nf_tables batches.
///
/// Closing it waits for the kernel to free what its batches removed (the kernel frees removed
/// elements after an RCU grace period, and a closing nfnetlink socket waits for that work;
/// figures in bench/README.md). Kept open while other slow work runs (a link's deletion waits for grace periods of
/// its own), the two waits overlap.
pub(crate) struct Session(RawSocket);

impl Session {
    pub fn open() -> Result<Session, BatchError> {
        RawSocket::open(libc::NETLINK_NETFILTER)
            .map(Session)
            .map_err(BatchError)
    }

    /// Runs one atomic batch: `op` on every change, all in table `table` (family inet).
    pub(crate) fn run(
        &self,
        table: &str,
        op: Op,
        changes: &[SetChange<'_>],
    ) -> Result<(), BatchError> {
        let changes: Vec<&SetChange<'_>> =
            changes.iter().filter(|c| !c.elements.is_empty()).collect();
        if changes.is_empty() {
            return Ok(());
        }
        let mut batch = Batch::new();
        for change in &changes {
            batch.set_elements(table, op, change, None);
        }
        batch.send(self)
    }
}

/// An atomic nf_tables batch (family inet): every message is acknowledged, and the kernel
/// applies all of them or none.
pub struct Batch {
    buf: Vec<u8>,
    seq: u32,
    messages: usize,
}

impl Batch {
    pub fn new() -> Batch {
        let mut buf = Vec::with_capacity(512);
        message(&mut buf, NFNL_MSG_BATCH_BEGIN, 0, 1, BATCH, |_| {});
        Batch {
            buf,
            seq: 1,
            messages: 0,
        }
    }

    /// Queues nf_tables message `msg_type` (NFT_MSG_*) with `flags` besides REQUEST and ACK.
    pub(crate) fn add(&mut self, msg_type: u16, flags: u16, body: impl FnOnce(&mut Vec<u8>)) {
        self.seq += 1;
        self.messages += 1;
        message(
            &mut self.buf,
            (NFNL_SUBSYS_NFTABLES << 8) | msg_type,
            libc::NLM_F_ACK as u16 | flags,
            self.seq,
            (NFPROTO_INET, 0),
            body,
        );
    }

    /// Queues `op` on the elements of one set of `table`; `set_id` names a set made earlier in
    /// this batch (an anonymous one has no name yet).
    pub(crate) fn set_elements(
        &mut self,
        table: &str,
        op: Op,
        change: &SetChange<'_>,
        set_id: Option<u32>,
    ) {
        let (msg_type, flags) = match op {
            Op::Add => (NFT_MSG_NEWSETELEM, libc::NLM_F_CREATE as u16),
            Op::Delete => (NFT_MSG_DELSETELEM, 0),
        };
        self.add(msg_type, flags, |b| {
            attr_str(b, NFTA_SET_ELEM_LIST_TABLE, table);
            attr_str(b, NFTA_SET_ELEM_LIST_SET, change.set);
            if let Some(id) = set_id {
                attr(b, NFTA_SET_ELEM_LIST_SET_ID, &id.to_be_bytes());
            }
            nested(b, NFTA_SET_ELEM_LIST_ELEMENTS, |b| {
                for e in &change.elements {
                    nested(b, NFTA_LIST_ELEM, |b| element(b, e, op));
                }
            });
        });
    }

    /// Sends the batch and waits for every acknowledgement; the first error is the batch's.
    pub fn send(mut self, session: &Session) -> Result<(), BatchError> {
        message(
            &mut self.buf,
            NFNL_MSG_BATCH_END,
            0,
            self.seq + 1,
            BATCH,
            |_| {},
        );
        session.0.send(&self.buf).map_err(BatchError)?;
        acks(&session.0, self.messages).map_err(BatchError)
    }
}

impl Default for Batch {
    fn default() -> Batch {
        Batch::new()
    }
}

fn element(b: &mut Vec<u8>, e: &Element, op: Op) {
    nested(b, NFTA_SET_ELEM_KEY, |b| attr(b, NFTA_DATA_VALUE, &e.key));
    if let Some(end) = &e.key_end {
        nested(b, NFTA_SET_ELEM_KEY_END, |b| attr(b, NFTA_DATA_VALUE, end));
    }
    if e.flags != 0 {
        attr(b, NFTA_SET_ELEM_FLAGS, &e.flags.to_be_bytes());
    }
    if let (Op::Add, Some(data)) = (op, &e.data) {
        nested(b, NFTA_SET_ELEM_DATA, |b| attr(b, NFTA_DATA_VALUE, data));
    }
}

/// The nfgenmsg of batch begin/end: no family, the subsystem in `res_id`.
const BATCH: (u8, u16) = (0, NFNL_SUBSYS_NFTABLES);

/// A netlink message: header, nfgenmsg (`family`, version 0, `res_id`), attributes.
fn message(
    buf: &mut Vec<u8>,
    msg_type: u16,
    flags: u16,
    seq: u32,
    (family, res_id): (u8, u16),
    body: impl FnOnce(&mut Vec<u8>),
) {
    let start = raw::begin(buf, msg_type, flags, seq);
    buf.extend([family, 0]);
    buf.extend(res_id.to_be_bytes());
    body(buf);
    raw::finish(buf, start);
}

pub(crate) fn attr_str(buf: &mut Vec<u8>, kind: u16, s: &str) {
    let mut bytes = s.as_bytes().to_vec();
    bytes.push(0);
    attr(buf, kind, &bytes);
}

pub(crate) fn nested(buf: &mut Vec<u8>, kind: u16, body: impl FnOnce(&mut Vec<u8>)) {
    let start = buf.len();
    buf.extend([0u8; 4]);
    body(buf);
    let len = (buf.len() - start) as u16;
    buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
    buf[start + 2..start + 4].copy_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
}

/// Reads the kernel's answer to each of `expected` acknowledged messages; the first error wins
/// (the kernel aborted the whole batch).
fn acks(socket: &RawSocket, expected: usize) -> io::Result<()> {
    let mut seen = 0;
    let mut first_error = None;
    socket.receive(|kind, msg| {
        if let Some(code) = raw::error_code(kind, msg) {
            seen += 1;
            if code != 0 && first_error.is_none() {
                first_error = Some(io::Error::from_raw_os_error(-code));
            }
        }
        Ok((seen >= expected).then_some(()))
    })?;
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_padded_and_nested() {
        let mut b = Vec::new();
        nested(&mut b, NFTA_SET_ELEM_KEY, |b| {
            attr(b, NFTA_DATA_VALUE, &[1, 2, 3, 4, 5])
        });
        // nest header (4) + attr header (4) + 5 bytes + 3 padding
        assert_eq!(b.len(), 16);
        assert_eq!(u16::from_ne_bytes([b[0], b[1]]), 16);
        assert_eq!(
            u16::from_ne_bytes([b[2], b[3]]),
            NFTA_SET_ELEM_KEY | NLA_F_NESTED
        );
        assert_eq!(u16::from_ne_bytes([b[4], b[5]]), 9);
        let mut m = Vec::new();
        message(&mut m, NFNL_MSG_BATCH_BEGIN, 0, 7, BATCH, |_| {});
        assert_eq!(m.len(), 20);
        assert_eq!(u32::from_ne_bytes([m[0], m[1], m[2], m[3]]), 20);
        assert_eq!(&m[16..20], &[0, 0, 0, 10]);
    }
}
