//! One question, answered from the table or handed to the host's resolvers.

use std::net::IpAddr;

use hickory_proto::op::{Message, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, PTR};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::fast;
use crate::table::{Lookup, Reverse, Table};

/// Names come and go with containers: resolvers and programs must not keep them long.
pub const TTL: u32 = 5;

pub enum Outcome {
    /// The answer, on the wire.
    Reply(Vec<u8>),
    /// Not a container's name or address: ask the host's resolvers.
    Forward,
    /// Not even a DNS message: nothing to say.
    Drop,
    /// Neither a name nor an address the table knows (asked with `first`): a setup may have
    /// made it a moment ago; look in the state root, then ask again.
    Miss {
        names: Vec<String>,
        address: Option<IpAddr>,
    },
}

/// Answers `query` (wire format) from the container at `source` on `network`.
/// `search` is the host's search domains (containers' resolv.conf has them): `web.<domain>`
/// is `web` when `web` is a container's name (busybox asks the first domain only).
pub fn answer(
    table: &Table,
    network: &str,
    source: IpAddr,
    query: &[u8],
    search: &dyn Fn() -> Vec<String>,
    first: bool,
) -> Outcome {
    // Most questions: a name a container holds, answered from the bytes (`fast.rs`).
    if let Some(q) = fast::question(query) {
        if let Some(addresses) = table.found(network, source, q.name()) {
            return Outcome::Reply(fast::answer(query, &q, addresses, TTL));
        }
    }
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
        let found = table.reverse(network, source, net.addr()).filter(|_| full);
        if first && full && !matches!(found, Some(Reverse::Found(_))) {
            return Outcome::Miss {
                names: Vec::new(),
                address: Some(net.addr()),
            };
        }
        match found {
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
    let mut search_domains = None;
    if found == Lookup::Elsewhere {
        let domains = search_domains.get_or_insert_with(search);
        let short = domains.iter().find_map(|domain| {
            let short = key.strip_suffix(domain.as_str())?.strip_suffix('.')?;
            let short = short.to_string();
            matches!(table.lookup(network, source, &short), Lookup::Found(_)).then_some(short)
        });
        if let Some(short) = short {
            found = table.lookup(network, source, &short);
        }
    }
    if first && !matches!(found, Lookup::Found(_)) {
        let mut names = vec![key.to_string()];
        let domains = search_domains.get_or_insert_with(search);
        names.extend(
            domains
                .iter()
                .filter_map(|d| Some(key.strip_suffix(d.as_str())?.strip_suffix('.')?.to_string())),
        );
        return Outcome::Miss {
            names,
            address: None,
        };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::tests::table_of;
    use hickory_proto::op::Query;

    fn ask(table: &Table, from: &str, name: &str, qtype: RecordType) -> Message {
        let mut q = Message::query();
        q.metadata.id = 7;
        q.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
        let bytes = q.to_vec().unwrap();
        let search = || vec!["example.test".to_string()];
        match answer(table, "n1", from.parse().unwrap(), &bytes, &search, false) {
            Outcome::Reply(r) => Message::from_vec(&r).unwrap(),
            Outcome::Forward => {
                let mut m = Message::query();
                m.metadata.response_code = ResponseCode::Refused;
                m.metadata.id = 0;
                m
            }
            Outcome::Drop | Outcome::Miss { .. } => panic!("dropped"),
        }
    }

    fn addresses(m: &Message) -> Vec<String> {
        m.answers.iter().map(|r| r.data.to_string()).collect()
    }

    #[test]
    fn names_aliases_case_ptr_and_what_goes_upstream() {
        let table = table_of();
        let web = ask(&table, "10.91.0.3", "WeB.", RecordType::A);
        assert_eq!(web.metadata.id, 7);
        assert_eq!(web.metadata.response_code, ResponseCode::NoError);
        assert!(web.metadata.authoritative);
        assert_eq!(addresses(&web), ["10.91.0.2"]);
        // The question's spelling is kept.
        assert_eq!(web.answers[0].name.to_ascii(), "WeB.");
        assert_eq!(
            addresses(&ask(&table, "10.91.0.3", "www.", RecordType::A)),
            ["10.91.0.2"]
        );
        // Under the host's search domain.
        assert_eq!(
            addresses(&ask(
                &table,
                "10.91.0.3",
                "web.example.test.",
                RecordType::A
            )),
            ["10.91.0.2"]
        );
        // No IPv6 address: no data, not an error.
        let aaaa = ask(&table, "10.91.0.3", "web.", RecordType::AAAA);
        assert_eq!(aaaa.metadata.response_code, ResponseCode::NoError);
        assert!(aaaa.answers.is_empty());
        // db is on n2 only: not for a container of n1 alone.
        let db = ask(&table, "10.91.0.3", "db.", RecordType::A);
        assert_eq!(db.metadata.response_code, ResponseCode::NXDomain);
        // Nor is a single label nobody holds forwarded.
        let nobody = ask(&table, "10.91.0.3", "nobody.", RecordType::A);
        assert_eq!(nobody.metadata.response_code, ResponseCode::NXDomain);
        // A name with dots nobody holds goes upstream.
        let out = ask(&table, "10.91.0.3", "example.org.", RecordType::A);
        assert_eq!(out.metadata.response_code, ResponseCode::Refused);
        // PTR of web's address; of db's (not shared): NXDOMAIN; of an unknown one: upstream.
        let ptr = ask(
            &table,
            "10.91.0.3",
            "2.0.91.10.in-addr.arpa.",
            RecordType::PTR,
        );
        assert_eq!(addresses(&ptr), ["web."]);
        let ptr = ask(
            &table,
            "10.91.0.3",
            "2.0.92.10.in-addr.arpa.",
            RecordType::PTR,
        );
        assert_eq!(ptr.metadata.response_code, ResponseCode::NXDomain);
        let ptr = ask(
            &table,
            "10.91.0.3",
            "9.9.9.9.in-addr.arpa.",
            RecordType::PTR,
        );
        assert_eq!(ptr.metadata.response_code, ResponseCode::Refused);
    }

    #[test]
    fn what_the_table_does_not_know_is_a_miss_first() {
        let table = table_of();
        let mut q = Message::query();
        q.add_query(Query::query(
            Name::from_ascii("new.example.test.").unwrap(),
            RecordType::A,
        ));
        let search = || vec!["example.test".to_string()];
        let from = "10.91.0.3".parse().unwrap();
        let Outcome::Miss { names, address } =
            answer(&table, "n1", from, &q.to_vec().unwrap(), &search, true)
        else {
            panic!("not a miss");
        };
        assert_eq!(names, ["new.example.test", "new"]);
        assert_eq!(address, None);
        // Known names are no miss.
        let mut q = Message::query();
        q.add_query(Query::query(
            Name::from_ascii("web.").unwrap(),
            RecordType::A,
        ));
        assert!(matches!(
            answer(&table, "n1", from, &q.to_vec().unwrap(), &search, true),
            Outcome::Reply(_)
        ));
    }

    /// The same question through the fast path and the whole way: the same message.
    #[test]
    fn the_fast_answer_is_the_whole_ways() {
        let table = table_of();
        for (name, qtype, rd) in [
            ("WeB.", RecordType::A, true),
            ("www.", RecordType::A, false),
            ("web.", RecordType::AAAA, true),
        ] {
            let mut q = Message::query();
            q.metadata.id = 4242;
            q.metadata.recursion_desired = rd;
            q.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
            let bytes = q.to_vec().unwrap();
            let quick = fast::question(&bytes).expect("a fast question");
            let from = "10.91.0.3".parse().unwrap();
            let Lookup::Found(addresses) = table.lookup("n1", from, quick.name()) else {
                panic!("{name} not found");
            };
            let fast_reply =
                Message::from_vec(&fast::answer(&bytes, &quick, &addresses, TTL)).unwrap();
            let whole =
                Message::from_vec(
                    &match answer(&table, "n1", from, &bytes, &Vec::new, false) {
                        Outcome::Reply(r) => r,
                        _ => panic!("no reply"),
                    },
                )
                .unwrap();
            assert_eq!(fast_reply, whole, "{name}");
        }
        // Not for the fast path: PTR, two questions, EDNS, a compressed or odd name.
        let mut q = Message::query();
        q.add_query(Query::query(
            Name::from_ascii("2.0.91.10.in-addr.arpa.").unwrap(),
            RecordType::PTR,
        ));
        assert!(fast::question(&q.to_vec().unwrap()).is_none());
        let mut q = Message::query();
        q.add_query(Query::query(Name::from_ascii("a.").unwrap(), RecordType::A));
        q.add_query(Query::query(Name::from_ascii("b.").unwrap(), RecordType::A));
        assert!(fast::question(&q.to_vec().unwrap()).is_none());
        let mut q = Message::query();
        q.add_query(Query::query(
            Name::from_ascii("web.").unwrap(),
            RecordType::A,
        ));
        q.set_edns(hickory_proto::op::Edns::new());
        assert!(fast::question(&q.to_vec().unwrap()).is_none());
        assert!(fast::question(&[0u8; 11]).is_none());
        let mut odd = Message::query();
        odd.add_query(Query::query(
            Name::from_ascii("we\\.b.").unwrap(),
            RecordType::A,
        ));
        assert!(fast::question(&odd.to_vec().unwrap()).is_none());
    }

    #[test]
    fn a_container_on_two_networks_sees_both() {
        let table = table_of();
        // "both" is 10.91.0.4 on n1 and 10.92.0.3 on n2; asking on n1.
        assert_eq!(
            addresses(&ask(&table, "10.91.0.4", "db.", RecordType::A)),
            ["10.92.0.2"]
        );
        assert_eq!(
            addresses(&ask(&table, "10.91.0.4", "web.", RecordType::A)),
            ["10.91.0.2"]
        );
    }

    #[test]
    fn garbage_gets_formerr_or_nothing() {
        let table = table_of();
        assert!(matches!(
            answer(
                &table,
                "n1",
                "10.91.0.3".parse().unwrap(),
                b"\x00\x07",
                &Vec::new,
                true
            ),
            Outcome::Drop
        ));
        let Outcome::Reply(r) = answer(
            &table,
            "n1",
            "10.91.0.3".parse().unwrap(),
            &[0, 7, 1, 0, 0, 9, 0, 0, 0, 0, 0, 0, 1],
            &Vec::new,
            true,
        ) else {
            panic!("no FORMERR");
        };
        assert_eq!(r[3] & 0x0f, 1);
        assert_eq!(&r[..2], &[0, 7]);
    }
}
