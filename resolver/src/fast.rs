//! The common question answered without building a message: one A or AAAA question of class
//! IN, a standard query with no other records, for a name a container holds. The answer is the
//! question's bytes with the header changed and the addresses appended, each naming the
//! question by a pointer (RFC 1035 4.1.4). Anything else goes the whole way (`answer.rs`, with
//! `hickory-proto`), which also says what this says for these questions (its tests compare).

use std::net::IpAddr;

/// Record types and class.
const A: u16 = 1;
const AAAA: u16 = 28;
const IN: u16 = 1;

/// The longest name in text (255 bytes on the wire).
const NAME_MAX: usize = 254;

/// A question this module answers: its lower-case name, type, and where it ends. The name
/// is kept in place (no allocation per question).
pub struct Question {
    name: [u8; NAME_MAX],
    len: usize,
    pub qtype: u16,
    end: usize,
}

impl Question {
    /// The name, lower case, no trailing dot.
    pub fn name(&self) -> &str {
        // Only ASCII letters, digits, '-', '_' and '.' are put in.
        std::str::from_utf8(&self.name[..self.len]).unwrap_or_default()
    }
}

/// The question of `query`, if it is one this module answers.
pub fn question(query: &[u8]) -> Option<Question> {
    let header = query.get(..12)?;
    // QR 0, opcode 0 (standard query); TC 0.
    if header[2] & 0xfa != 0 {
        return None;
    }
    let count = |i: usize| u16::from_be_bytes([header[i], header[i + 1]]);
    if (count(4), count(6), count(8), count(10)) != (1, 0, 0, 0) {
        return None;
    }
    let mut name = [0u8; NAME_MAX];
    let mut len = 0;
    let mut at = 12;
    loop {
        let label_len = usize::from(*query.get(at)?);
        at += 1;
        if label_len == 0 {
            break;
        }
        // A pointer or an extended label: the whole way.
        if label_len > 63 {
            return None;
        }
        let label = query.get(at..at + label_len)?;
        if !label
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
        {
            return None;
        }
        if len > 0 {
            *name.get_mut(len)? = b'.';
            len += 1;
        }
        // Longer than a name can be: the whole way (which says what is wrong).
        let to = name.get_mut(len..len + label_len)?;
        for (t, b) in to.iter_mut().zip(label) {
            *t = b.to_ascii_lowercase();
        }
        len += label_len;
        at += label_len;
    }
    let fixed = query.get(at..at + 4)?;
    let qtype = u16::from_be_bytes([fixed[0], fixed[1]]);
    let qclass = u16::from_be_bytes([fixed[2], fixed[3]]);
    if !matches!(qtype, A | AAAA) || qclass != IN || len == 0 || at + 4 != query.len() {
        return None;
    }
    Some(Question {
        name,
        len,
        qtype,
        end: at + 4,
    })
}

/// The answer: authoritative, recursion available, RD as asked, the addresses of the
/// question's family (none: no data).
pub fn answer(query: &[u8], q: &Question, addresses: &[IpAddr], ttl: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(q.end + addresses.len() * 28);
    answer_into(query, q, addresses, ttl, &mut out);
    out
}

/// [`answer`], written into `out` (emptied first): a buffer used again and again.
pub fn answer_into(query: &[u8], q: &Question, addresses: &[IpAddr], ttl: u32, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&query[..q.end]);
    // QR, opcode 0, AA, TC 0, RD as asked; RA, Z 0, RCODE 0.
    out[2] = 0x84 | (query[2] & 0x01);
    out[3] = 0x80;
    let mut count = 0u16;
    for a in addresses {
        let (rtype, data): (u16, &[u8]) = match a {
            IpAddr::V4(v4) if q.qtype == A => (A, &v4.octets()[..]),
            IpAddr::V6(v6) if q.qtype == AAAA => (AAAA, &v6.octets()[..]),
            _ => continue,
        };
        // The name: a pointer to the question's, at offset 12.
        out.extend_from_slice(&[0xc0, 0x0c]);
        out.extend_from_slice(&rtype.to_be_bytes());
        out.extend_from_slice(&IN.to_be_bytes());
        out.extend_from_slice(&ttl.to_be_bytes());
        out.extend_from_slice(&(data.len() as u16).to_be_bytes());
        out.extend_from_slice(data);
        count += 1;
    }
    out[6..8].copy_from_slice(&count.to_be_bytes());
}
