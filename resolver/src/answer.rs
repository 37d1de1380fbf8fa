//! One question, answered from the table or handed to the host's resolvers.

use std::net::IpAddr;

use hickory_proto::op::{Message, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, PTR};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::table::{Lookup, Reverse, Table};

/// Names come and go with containers: resolvers and programs must not keep them long.
const TTL: u32 = 5;

pub enum Outcome {
    /// The answer, on the wire.
    Reply(Vec<u8>),
    /// Not a container's name or address: ask the host's resolvers.
    Forward,
    /// Not even a DNS message: nothing to say.
    Drop,
}

/// Answers `query` (wire format) from the container at `source` on `network`.
/// `search` is the host's search domains (containers' resolv.conf has them): `web.<domain>`
/// is `web` when `web` is a container's name (busybox asks the first domain only).
pub fn answer(
    table: &Table,
    network: &str,
    source: IpAddr,
    query: &[u8],
    search: &[String],
) -> Outcome {
    let Ok(request) = Message::from_vec(query) else {
        return match query.get(..2) {
            // A header at least: say FORMERR, as servers do.
            Some(id) if query.len() >= 12 => {
                let id = u16::from_be_bytes([id[0], id[1]]);
                reply(Message::error_msg(id, OpCode::Query, ResponseCode::FormErr))
            }
            _ => Outcome::Drop,
        };
    };
    if request.metadata.message_type != MessageType::Query {
        return Outcome::Drop;
    }
    let mut response = Message::new(
        request.metadata.id,
        MessageType::Response,
        request.metadata.op_code,
    );
    response.metadata = Metadata::response_from_request(&request.metadata);
    response.metadata.recursion_available = true;
    let [question] = request.queries.as_slice() else {
        response.metadata.response_code = ResponseCode::FormErr;
        return reply(response);
    };
    if request.metadata.op_code != OpCode::Query {
        response.metadata.response_code = ResponseCode::NotImp;
        return reply(response);
    }
    response.add_query(question.clone());
    let qname = question.name();
    let qtype = question.query_type();
    let key = qname.to_lowercase().to_ascii();
    let key = key.trim_end_matches('.');
    if qtype == RecordType::PTR {
        let Ok(net) = qname.parse_arpa_name() else {
            return Outcome::Forward;
        };
        let full = net.prefix_len() == net.max_prefix_len();
        match table.reverse(network, source, net.addr()).filter(|_| full) {
            None => return Outcome::Forward,
            Some(Reverse::NotHere) => response.metadata.response_code = ResponseCode::NXDomain,
            Some(Reverse::Found(name)) => {
                let Ok(target) = Name::from_ascii(format!("{name}.")) else {
                    return Outcome::Forward;
                };
                response.add_answer(Record::from_rdata(
                    qname.clone(),
                    TTL,
                    RData::PTR(PTR(target)),
                ));
            }
        }
        response.metadata.authoritative = true;
        return reply(response);
    }
    let mut found = table.lookup(network, source, key);
    if found == Lookup::Elsewhere {
        let short = search.iter().find_map(|domain| {
            let short = key.strip_suffix(domain.as_str())?.strip_suffix('.')?;
            matches!(table.lookup(network, source, short), Lookup::Found(_)).then_some(short)
        });
        if let Some(short) = short {
            found = table.lookup(network, source, short);
        }
    }
    match found {
        Lookup::Elsewhere => return Outcome::Forward,
        Lookup::NotHere => response.metadata.response_code = ResponseCode::NXDomain,
        Lookup::Found(addresses) => {
            for a in addresses {
                let rdata = match (qtype, a) {
                    (RecordType::A | RecordType::ANY, IpAddr::V4(v4)) => RData::A(A(v4)),
                    (RecordType::AAAA | RecordType::ANY, IpAddr::V6(v6)) => RData::AAAA(AAAA(v6)),
                    // Another type of a known name: no data (NOERROR, no answer).
                    _ => continue,
                };
                response.add_answer(Record::from_rdata(qname.clone(), TTL, rdata));
            }
        }
    }
    response.metadata.authoritative = true;
    reply(response)
}

fn reply(message: Message) -> Outcome {
    match message.to_vec() {
        Ok(bytes) => Outcome::Reply(bytes),
        Err(_) => Outcome::Drop,
    }
}

/// SERVFAIL for `query` (no upstream answered).
pub fn server_failure(query: &[u8]) -> Option<Vec<u8>> {
    let request = Message::from_vec(query).ok()?;
    let mut response = Message::new(
        request.metadata.id,
        MessageType::Response,
        request.metadata.op_code,
    );
    response.metadata = Metadata::response_from_request(&request.metadata);
    response.metadata.recursion_available = true;
    response.metadata.response_code = ResponseCode::ServFail;
    for q in request.queries {
        response.add_query(q);
    }
    response.to_vec().ok()
}

/// The response code of an upstream's answer (the low 4 bits of byte 3).
pub fn rcode(answer: &[u8]) -> Option<u8> {
    answer.get(3).map(|b| b & 0x0f)
}
