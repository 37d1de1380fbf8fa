//! The overlay's blocks as etcd holds them, without etcd: the key of each host's block,
//! `/ocinet/overlay/<network>/blocks/<address>-<prefix>`, the value naming its host (a
//! [`Member`]), the check of what other hosts wrote, and the order in which this host tries
//! blocks when it takes one.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use ocinet::overlay::state::parse_mac;
use serde::{Deserialize, Serialize};

/// Values are a few dozen bytes; anything far larger is not one of ours.
const MAX_VALUE_BYTES: usize = 1024;

/// A host as its block's value describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Member {
    pub(crate) underlay: Ipv4Addr,
    pub(crate) vtep_mac: String,
}

impl Member {
    /// Whether another host's value can be programmed: a unicast underlay address, a unicast
    /// MAC.
    fn is_valid(&self) -> bool {
        let ip = self.underlay;
        !(ip.is_unspecified()
            || ip.is_loopback()
            || ip.is_multicast()
            || ip.is_broadcast()
            || ip.is_link_local())
            && parse_mac(&self.vtep_mac).is_some()
    }
}

/// How one network's subnet is cut into blocks and where they are kept.
#[derive(Debug, Clone)]
pub(crate) struct BlockLayout {
    prefix: String,
    subnet: Ipv4Net,
    block_len: u8,
}

/// How a block is claimed: the transaction's condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Claim<'a> {
    /// Nobody holds it: created only if it still does not exist.
    Free,
    /// This host held it (an agent before this one): taken over only if its value is still
    /// this one.
    TakeOver(&'a Member),
}

impl BlockLayout {
    pub(crate) fn new(network: &str, subnet: Ipv4Net, block_len: u8) -> BlockLayout {
        BlockLayout {
            prefix: format!("/ocinet/overlay/{network}/blocks/"),
            subnet,
            block_len,
        }
    }

    /// The key prefix every block of the network is under (what is read and watched).
    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    pub(crate) fn key(&self, block: Ipv4Net) -> String {
        format!("{}{}-{}", self.prefix, block.network(), block.prefix_len())
    }

    /// Whether `block` is one of this network's: of the block size, aligned, in the subnet.
    fn is_block(&self, block: Ipv4Net) -> bool {
        block.trunc() == block
            && block.prefix_len() == self.block_len
            && self.subnet.contains(&block)
    }

    /// `10.200.3.0-24` as a block of this network's subnet, of the network's block size.
    fn parse_block(&self, text: &str) -> Option<Ipv4Net> {
        let (address, len) = text.split_once('-')?;
        let block = Ipv4Net::new(address.parse().ok()?, len.parse().ok()?).ok()?;
        self.is_block(block).then_some(block)
    }

    /// One key and value etcd listed, checked: `None` for anything malformed (another host
    /// wrote it; it is skipped, not trusted).
    pub(crate) fn entry(&self, key: &[u8], value: &[u8]) -> Option<(Ipv4Net, Member)> {
        let block = std::str::from_utf8(key)
            .ok()
            .and_then(|k| k.strip_prefix(&self.prefix))
            .and_then(|k| self.parse_block(k))?;
        if value.len() > MAX_VALUE_BYTES {
            return None;
        }
        let member = serde_json::from_slice::<Member>(value).ok()?;
        member.is_valid().then_some((block, member))
    }

    /// The blocks `me` tries, in order, with how each is claimed: `preferred` (this host's
    /// before a restart), then those `taken` that `me` still holds, then every block of the
    /// subnet from the first; never one another host holds, never one not of this network.
    /// Lazy: a large subnet has many blocks, and the first that works ends the search.
    pub(crate) fn claims<'a>(
        &'a self,
        preferred: Option<Ipv4Net>,
        taken: &'a HashMap<Ipv4Net, Member>,
        me: &'a Member,
    ) -> impl Iterator<Item = (Ipv4Net, Claim<'a>)> + 'a {
        let mine: Vec<Ipv4Net> = taken
            .iter()
            .filter(|(_, m)| m.underlay == me.underlay)
            .map(|(b, _)| *b)
            .collect();
        preferred
            .into_iter()
            .chain(mine)
            .chain(self.subnet.subnets(self.block_len).into_iter().flatten())
            .filter(|block| self.is_block(*block))
            .filter_map(move |block| match taken.get(&block) {
                Some(holder) if holder.underlay != me.underlay => None,
                Some(holder) => Some((block, Claim::TakeOver(holder))),
                None => Some((block, Claim::Free)),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(text: &str) -> Ipv4Net {
        text.parse().unwrap()
    }

    fn layout() -> BlockLayout {
        BlockLayout::new("blue", net("10.200.0.0/16"), 24)
    }

    fn member(last: u8) -> Member {
        Member {
            underlay: Ipv4Addr::new(192, 0, 2, last),
            vtep_mac: format!("02:6f:0a:c8:{last:02x}:00"),
        }
    }

    fn value(m: &Member) -> Vec<u8> {
        serde_json::to_vec(m).unwrap()
    }

    #[test]
    fn a_block_is_named_by_its_network_address_and_prefix_and_read_back() {
        let l = layout();
        let key = l.key(net("10.200.3.0/24"));
        assert_eq!(key, "/ocinet/overlay/blue/blocks/10.200.3.0-24");
        assert!(key.starts_with(l.prefix()));
        assert_eq!(
            l.entry(key.as_bytes(), &value(&member(12))),
            Some((net("10.200.3.0/24"), member(12)))
        );
    }

    #[test]
    fn keys_that_are_not_one_of_the_networks_blocks_are_skipped() {
        let l = layout();
        let v = value(&member(12));
        for key in [
            "/ocinet/overlay/blue/blocks/10.200.3.0-25", // another block size
            "/ocinet/overlay/blue/blocks/10.200.3.7-24", // not aligned
            "/ocinet/overlay/blue/blocks/10.201.3.0-24", // outside the subnet
            "/ocinet/overlay/blue/blocks/10.200.3.0/24", // not our spelling
            "/ocinet/overlay/blue/blocks/10.200.3.0-",   // no length
            "/ocinet/overlay/blue/blocks/10.200.3.0-33", // no such length
            "/ocinet/overlay/green/blocks/10.200.3.0-24", // another network
            "/ocinet/overlay/blue/blocks/10.200.3.0-24/x", // below a block
        ] {
            assert_eq!(l.entry(key.as_bytes(), &v), None, "{key}");
        }
        assert_eq!(
            l.entry(b"/ocinet/overlay/blue/blocks/\xff-24", &v),
            None,
            "not UTF-8"
        );
    }

    #[test]
    fn values_that_cannot_be_programmed_are_skipped() {
        let l = layout();
        let key = l.key(net("10.200.3.0/24"));
        let with = |underlay: [u8; 4], mac: &str| Member {
            underlay: Ipv4Addr::from(underlay),
            vtep_mac: mac.to_string(),
        };
        for bad in [
            with([0, 0, 0, 0], "02:6f:0a:c8:03:00"),
            with([127, 0, 0, 1], "02:6f:0a:c8:03:00"),
            with([224, 0, 0, 1], "02:6f:0a:c8:03:00"),
            with([255, 255, 255, 255], "02:6f:0a:c8:03:00"),
            with([169, 254, 1, 1], "02:6f:0a:c8:03:00"),
            with([192, 0, 2, 12], "03:6f:0a:c8:03:00"), // multicast MAC
            with([192, 0, 2, 12], "00:00:00:00:00:00"),
            with([192, 0, 2, 12], "02:6f:0a:c8:03"),
        ] {
            assert_eq!(l.entry(key.as_bytes(), &value(&bad)), None, "{bad:?}");
        }
        assert_eq!(l.entry(key.as_bytes(), b"not json"), None);
        assert_eq!(
            l.entry(key.as_bytes(), br#"{"underlay":"192.0.2.12"}"#),
            None
        );
        let mut huge = value(&member(12));
        huge.truncate(huge.len() - 1);
        huge.extend(std::iter::repeat_n(b' ', MAX_VALUE_BYTES));
        huge.push(b'}');
        assert!(serde_json::from_slice::<Member>(&huge).is_ok());
        assert_eq!(l.entry(key.as_bytes(), &huge), None, "too large");
    }

    #[test]
    fn a_host_tries_its_preferred_block_then_its_own_then_the_first_free_ones() {
        let l = layout();
        let me = member(11);
        let taken = HashMap::from([
            (net("10.200.0.0/24"), member(12)),
            (net("10.200.5.0/24"), me.clone()),
        ]);
        let tried: Vec<(Ipv4Net, Claim)> = l
            .claims(Some(net("10.200.9.0/24")), &taken, &me)
            .take(5)
            .collect();
        assert_eq!(
            tried,
            [
                (net("10.200.9.0/24"), Claim::Free),
                (net("10.200.5.0/24"), Claim::TakeOver(&me)),
                // 10.200.0.0/24 is another host's.
                (net("10.200.1.0/24"), Claim::Free),
                (net("10.200.2.0/24"), Claim::Free),
                (net("10.200.3.0/24"), Claim::Free),
            ]
        );
    }

    #[test]
    fn a_preferred_block_another_host_holds_or_not_of_the_network_is_not_tried() {
        let l = layout();
        let me = member(11);
        let taken = HashMap::from([(net("10.200.0.0/24"), member(12))]);
        for preferred in ["10.200.0.0/24", "10.200.7.0/25", "10.9.7.0/24"] {
            let first = l.claims(Some(net(preferred)), &taken, &me).next();
            assert_eq!(
                first,
                Some((net("10.200.1.0/24"), Claim::Free)),
                "{preferred}"
            );
        }
    }

    #[test]
    fn a_full_subnet_has_nothing_left_to_try() {
        let l = BlockLayout::new("blue", net("10.200.0.0/23"), 24);
        let me = member(11);
        let taken = HashMap::from([
            (net("10.200.0.0/24"), member(12)),
            (net("10.200.1.0/24"), member(13)),
        ]);
        assert_eq!(l.claims(None, &taken, &me).count(), 0);
        // A block size larger than the subnet: no block at all.
        let l = BlockLayout::new("blue", net("10.200.0.0/24"), 16);
        assert_eq!(l.claims(None, &HashMap::new(), &me).count(), 0);
    }
}
