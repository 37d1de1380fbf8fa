//! ocinet's nftables table, `inet ocinet`, created in one atomic nfnetlink batch. As
//! `nft list table inet ocinet` shows it:
//!
//! ```text
//! table inet ocinet {
//!     set masq_subnets { type ipv4_addr; flags interval; }
//!     map dnat_port { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; flags interval; }
//!     map dnat_addr { type ipv4_addr . inet_proto . inet_service : ipv4_addr; flags interval; }
//!     map dnat_any { type inet_proto . inet_service : ipv4_addr . inet_service; }
//!     set bridges { type ifname; }
//!     set isolated { type ifname; }
//!     set internal { type ifname; }
//!     set same_bridge { type ifname . ifname; }
//!     set groups { type devgroup; }
//!     set isolated_groups { type devgroup; }
//!     set internal_groups { type devgroup; }
//!     set icc_off_groups { type devgroup; }
//!     set same_group { type devgroup . devgroup; }
//!     set masq_subnets6 { type ipv6_addr; flags interval; }
//!     map dnat6_port { type ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service; flags interval; }
//!     map dnat6_addr { type ipv6_addr . inet_proto . inet_service : ipv6_addr; flags interval; }
//!     map dnat6_any { type inet_proto . inet_service : ipv6_addr . inet_service; }
//!     set direct_bridges { type ipv4_addr . ifname; flags interval; }
//!     set direct_subnets { type ipv4_addr; flags interval; }
//!     set direct_isolated { type ipv4_addr; flags interval; }
//!     set direct_internal { type ipv4_addr; flags interval; }
//!     chain prerouting { type nat hook prerouting priority dstnat; policy accept;
//!         fib daddr type local dnat ip to ip daddr . meta l4proto . th dport map @dnat_port
//!         fib daddr type local dnat ip to ip daddr . meta l4proto . th dport map @dnat_addr
//!         fib daddr type local dnat ip to meta l4proto . th dport map @dnat_any
//!         fib daddr type local ip6 daddr != ::1 dnat ip6 to ip6 daddr . meta l4proto . th dport map @dnat6_port
//!         fib daddr type local ip6 daddr != ::1 dnat ip6 to ip6 daddr . meta l4proto . th dport map @dnat6_addr
//!         fib daddr type local ip6 daddr != ::1 dnat ip6 to meta l4proto . th dport map @dnat6_any }
//!     chain output { type nat hook output priority -100; policy accept; (the same six rules) }
//!     chain postrouting { type nat hook postrouting priority srcnat; policy accept;
//!         ip saddr @masq_subnets ip daddr != @masq_subnets masquerade
//!         ct status dnat ip saddr 127.0.0.0/8 masquerade
//!         ct status dnat ip saddr @masq_subnets masquerade
//!         ip6 saddr @masq_subnets6 ip6 daddr != @masq_subnets6 masquerade
//!         ct status dnat ip6 saddr @masq_subnets6 masquerade }
//!     chain forward { type filter hook forward priority filter; policy accept;
//!         ip daddr . iifname @direct_bridges oifname != @bridges accept
//!         ip saddr . oifname @direct_bridges iifname != @bridges accept
//!         ip daddr @direct_internal oifname != @bridges drop
//!         ip saddr @direct_internal iifname != @bridges drop
//!         iifname @internal iifname . oifname != @same_bridge drop
//!         oifname @internal iifname . oifname != @same_bridge drop
//!         iifgroup @internal_groups iifgroup . oifgroup != @same_group drop
//!         oifgroup @internal_groups iifgroup . oifgroup != @same_group drop
//!         ct status dnat accept
//!         iifname @isolated oifname @bridges iifname . oifname != @same_bridge drop
//!         oifname @isolated iifname @bridges iifname . oifname != @same_bridge drop
//!         iifgroup @isolated_groups oifgroup @groups iifgroup . oifgroup != @same_group drop
//!         oifgroup @isolated_groups iifgroup @groups iifgroup . oifgroup != @same_group drop
//!         iifgroup @isolated_groups oifname @bridges drop
//!         oifgroup @isolated_groups iifname @bridges drop
//!         iifname @isolated oifgroup @groups drop
//!         oifname @isolated iifgroup @groups drop
//!         ip daddr @direct_isolated iifname @bridges oifname != @bridges drop
//!         ip daddr @direct_subnets iifname @isolated oifname != @bridges drop
//!         ip daddr @direct_subnets iifgroup @isolated_groups drop
//!         ip daddr @direct_isolated iifgroup @groups drop
//!         ip saddr @direct_isolated oifname @bridges iifname != @bridges drop
//!         ip saddr @direct_subnets oifname @isolated iifname != @bridges drop
//!         ip saddr @direct_subnets oifgroup @isolated_groups drop
//!         ip saddr @direct_isolated oifgroup @groups drop
//!         iifgroup @icc_off_groups iifgroup . oifgroup @same_group drop }
//! }
//! ```
//!
//! The DNAT rules also match `meta l4proto { tcp, udp, sctp }` (not shown above; an anonymous
//! set per rule): `nft` refuses to load a port mapping without it, and the listing must load
//! back (`nft list ruleset > file; nft -f file`).
//!
//! `dnat_any` maps `proto . dport` to `container . port`: one port on every local address, the
//! common case, in a hash map (an element costs the same to add however many there are). The
//! rest are interval maps of `daddr . proto . dport`: `dnat_port` to `container . port`,
//! `dnat_addr` to the container alone, keeping the port, so a range published on the same
//! numbers is one element. The port claims keep the maps' keys apart. Localhost
//! access needs the
//! masquerade of 127.0.0.0/8 (and route_localnet on the bridge); hairpin (a container to a
//! published port) the masquerade of DNATed container traffic.
//!
//! IPv6 has sets and maps of its own (`masq_subnets6`, `dnat6_*`: a set's key has one length),
//! and no localhost rule: the kernel sends no packet from `::1` out of `lo` (IPv6 has no
//! `route_localnet`, and masquerading it after the fact does not help), so a port published
//! on `[::1]` is refused at setup, and `ip6 daddr != ::1` leaves a connection from the host
//! to `[::1]:PORT` alone: refused at once (nothing listens), where DNATed it would hang.
//!
//! The forward chain keeps networks apart with per-network elements only (a setup adds its
//! bridge's, in the same batch as its masquerade and DNAT elements): `bridges` holds every
//! ocinet bridge, `isolated` those of networks that isolate, `internal` those of internal
//! networks, `same_bridge` the pair `br . br` of each (nft cannot compare `iifname` with
//! `oifname`; a lookup of the pair can). Traffic staying on one bridge (a container to a
//! published port of its own network, or anything bridged when `br_netfilter` is loaded) is
//! never dropped; traffic to a published port through the host's addresses (`ct status
//! dnat`) crosses networks. A chain of policy accept: another table's drop still applies.
//!
//! A directly routed overlay (`direct_routing`) talks with its peers on the underlay's
//! subnets through the underlay interface, which carries everyone's traffic: the forward
//! chain tells that traffic by the overlay's subnet instead, on the side that is no ocinet
//! device (`ip daddr` leaving, `ip saddr` arriving). `direct_bridges` pairs the subnet with
//! its bridge (its own traffic is accepted first, as the tunnel's would pass), and
//! `direct_subnets`, `direct_isolated` and `direct_internal` do for the peers what `bridges`,
//! `isolated` and `internal` do for a device.
//!
//! A routed network has no bridge to name: its containers' host ends carry the network's
//! device group (`Network::device_group`), and the `*_group` sets do for groups what the
//! others do for bridges, with rules between the two kinds, and `icc_off_groups` for `icc:
//! false` (on a bridge, the ports' `isolated` flag does that).
//!
//! Each rule is the list of kernel expressions `nft` would make of it (`nft --debug=netlink`
//! prints them); the test suite checks that `nft` lists this table exactly as it lists the
//! text above loaded by `nft -f`.

use nix::libc;

use crate::netlink::nft::message::{
    attr, attr_str, nested, Batch, BatchError, Element, Op, Session, SetChange, NFTA_DATA_VALUE,
    NFTA_LIST_ELEM,
};

/// The table's sets and maps, by name (the firewall fills them).
pub(crate) const MASQUERADE_SET: &str = "masq_subnets";
pub(crate) const DNAT_PORT_MAP: &str = "dnat_port";
pub(crate) const DNAT_ADDR_MAP: &str = "dnat_addr";
pub(crate) const DNAT_ANY_MAP: &str = "dnat_any";
pub(crate) const BRIDGES_SET: &str = "bridges";
pub(crate) const ISOLATED_SET: &str = "isolated";
pub(crate) const INTERNAL_SET: &str = "internal";
pub(crate) const SAME_BRIDGE_SET: &str = "same_bridge";
pub(crate) const GROUPS_SET: &str = "groups";
pub(crate) const ISOLATED_GROUPS_SET: &str = "isolated_groups";
pub(crate) const INTERNAL_GROUPS_SET: &str = "internal_groups";
pub(crate) const ICC_OFF_GROUPS_SET: &str = "icc_off_groups";
pub(crate) const SAME_GROUP_SET: &str = "same_group";
pub(crate) const MASQUERADE6_SET: &str = "masq_subnets6";
pub(crate) const DNAT6_PORT_MAP: &str = "dnat6_port";
pub(crate) const DNAT6_ADDR_MAP: &str = "dnat6_addr";
pub(crate) const DNAT6_ANY_MAP: &str = "dnat6_any";
pub(crate) const DIRECT_BRIDGES_SET: &str = "direct_bridges";
pub(crate) const DIRECT_SUBNETS_SET: &str = "direct_subnets";
pub(crate) const DIRECT_ISOLATED_SET: &str = "direct_isolated";
pub(crate) const DIRECT_INTERNAL_SET: &str = "direct_internal";

pub(crate) const TABLE_NAME: &str = "ocinet";

const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_NEWSET: u16 = 9;

const NFTA_TABLE_NAME: u16 = 1;
const NFTA_TABLE_FLAGS: u16 = 2;

const NFTA_SET_TABLE: u16 = 1;
const NFTA_SET_NAME: u16 = 2;
const NFTA_SET_FLAGS: u16 = 3;
const NFTA_SET_KEY_TYPE: u16 = 4;
const NFTA_SET_KEY_LEN: u16 = 5;
const NFTA_SET_DATA_TYPE: u16 = 6;
const NFTA_SET_DATA_LEN: u16 = 7;
const NFTA_SET_DESC: u16 = 9;
const NFTA_SET_ID: u16 = 10;
const NFTA_SET_USERDATA: u16 = 13;
/// libnftnl's set user data: key byte order (`NFTNL_UDATA_SET_KEYBYTEORDER`), host endian.
const UDATA_SET_KEYBYTEORDER: u8 = 0;
const BYTEORDER_HOST_ENDIAN: u32 = 1;
const NFTA_SET_DESC_SIZE: u16 = 1;
const NFTA_SET_DESC_CONCAT: u16 = 2;
const NFTA_SET_FIELD_LEN: u16 = 1;
const NFT_SET_ANONYMOUS: u32 = 0x1;
const NFT_SET_CONSTANT: u32 = 0x2;
const NFT_SET_INTERVAL: u32 = 0x4;
const NFT_SET_MAP: u32 = 0x8;
const NFT_SET_CONCAT: u32 = 0x80;

const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NF_INET_PRE_ROUTING: u32 = 0;
const NF_INET_FORWARD: u32 = 2;
const NF_INET_LOCAL_OUT: u32 = 3;
const NF_INET_POST_ROUTING: u32 = 4;
const NF_DROP: u32 = 0;
const NF_ACCEPT: u32 = 1;

/// The kernel names anonymous sets itself, from this pattern.
const ANONYMOUS_SET: &str = "__set%d";
/// `tcp`, `udp`, `sctp`: the protocols with ports that ocinet publishes.
const PORT_PROTOCOLS: [u8; 3] = [6, 17, 132];

const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;

/// nft's datatype numbers; a concatenation packs them 6 bits each, first field highest.
const TYPE_IPV4_ADDR: u32 = 7;
const TYPE_IPV6_ADDR: u32 = 8;
const TYPE_INET_PROTO: u32 = 12;
const TYPE_INET_SERVICE: u32 = 13;
const TYPE_DEVGROUP: u32 = 35;
const TYPE_IFNAME: u32 = 41;
/// An interface name as a key: IFNAMSIZ bytes, NUL-padded.
pub(crate) const IFNAME_LEN: u32 = 16;
const TYPE_BITS: u32 = 6;

/// Registers: 1 is the first 16-byte register; 32-bit registers 8.. overlap it (9 = its
/// second word), which is how concatenations are laid out.
const REG_1: u32 = 1;
const REG_2: u32 = 2;
const REG32_01: u32 = 9;
const REG32_02: u32 = 10;

/// Creates the table, its sets, chains and rules, all or nothing. `Err` with
/// [`BatchError::is_exists`] when the table is already there (another hook made it first).
pub(crate) fn create(session: &Session) -> Result<(), BatchError> {
    let mut batch = Batch::new();
    let create = libc::NLM_F_CREATE as u16;
    batch.add(NFT_MSG_NEWTABLE, create | libc::NLM_F_EXCL as u16, |b| {
        attr_str(b, NFTA_TABLE_NAME, TABLE_NAME);
        attr(b, NFTA_TABLE_FLAGS, &0u32.to_be_bytes());
    });
    for set in SETS {
        batch.add(NFT_MSG_NEWSET, create, |b| set.encode(b));
    }
    for (name, kind, hook, priority) in [
        ("prerouting", "nat", NF_INET_PRE_ROUTING, -100i32),
        ("output", "nat", NF_INET_LOCAL_OUT, -100),
        ("postrouting", "nat", NF_INET_POST_ROUTING, 100),
        ("forward", "filter", NF_INET_FORWARD, 0),
    ] {
        batch.add(NFT_MSG_NEWCHAIN, create, |b| {
            attr_str(b, NFTA_CHAIN_TABLE, TABLE_NAME);
            attr_str(b, NFTA_CHAIN_NAME, name);
            attr_str(b, NFTA_CHAIN_TYPE, kind);
            attr(b, NFTA_CHAIN_POLICY, &NF_ACCEPT.to_be_bytes());
            nested(b, NFTA_CHAIN_HOOK, |b| {
                attr(b, NFTA_HOOK_HOOKNUM, &hook.to_be_bytes());
                attr(b, NFTA_HOOK_PRIORITY, &priority.to_be_bytes());
            });
        });
    }
    let append = create | libc::NLM_F_APPEND as u16;
    let mut next_id = SETS.len() as u32 + 1;
    for (chain, rule) in rules() {
        // A port-protocol match gets its anonymous set first, in the same batch.
        let mut rule = rule;
        for expr in &mut rule {
            if let Expr::PortProtocol { set_id } = expr {
                *set_id = next_id;
                add_port_protocols(&mut batch, next_id);
                next_id += 1;
            }
        }
        batch.add(NFT_MSG_NEWRULE, append, |b| {
            attr_str(b, NFTA_RULE_TABLE, TABLE_NAME);
            attr_str(b, NFTA_RULE_CHAIN, chain);
            nested(b, NFTA_RULE_EXPRESSIONS, |b| {
                for expr in &rule {
                    expr.encode(b);
                }
            });
        });
    }
    batch.send(session)
}

/// The anonymous, constant set `{ tcp, udp, sctp }` with batch id `id`.
fn add_port_protocols(batch: &mut Batch, id: u32) {
    let create = libc::NLM_F_CREATE as u16;
    batch.add(NFT_MSG_NEWSET, create, |b| {
        attr_str(b, NFTA_SET_TABLE, TABLE_NAME);
        attr_str(b, NFTA_SET_NAME, ANONYMOUS_SET);
        attr(
            b,
            NFTA_SET_FLAGS,
            &(NFT_SET_ANONYMOUS | NFT_SET_CONSTANT).to_be_bytes(),
        );
        attr(b, NFTA_SET_KEY_TYPE, &TYPE_INET_PROTO.to_be_bytes());
        attr(b, NFTA_SET_KEY_LEN, &1u32.to_be_bytes());
        attr(b, NFTA_SET_ID, &id.to_be_bytes());
        nested(b, NFTA_SET_DESC, |b| {
            attr(
                b,
                NFTA_SET_DESC_SIZE,
                &(PORT_PROTOCOLS.len() as u32).to_be_bytes(),
            )
        });
    });
    let protocols = SetChange {
        set: ANONYMOUS_SET,
        elements: PORT_PROTOCOLS
            .iter()
            .map(|&protocol| Element {
                key: vec![protocol],
                key_end: None,
                data: None,
                flags: 0,
            })
            .collect(),
    };
    batch.set_elements(TABLE_NAME, Op::Add, &protocols, Some(id));
}

/// A set or map of the table.
struct Set {
    name: &'static str,
    id: u32,
    /// Byte length of each field of the key (a concatenation when more than one).
    key: &'static [(u32, u32)],
    /// Datatype and byte length of each field of a map's value.
    data: &'static [(u32, u32)],
    /// Holds ranges (an rbtree or, concatenated, a pipapo set); else exact keys (a hash).
    interval: bool,
}

const IFNAME: (u32, u32) = (TYPE_IFNAME, IFNAME_LEN);
const DEVGROUP: (u32, u32) = (TYPE_DEVGROUP, 4);

const IPV4_ADDR: (u32, u32) = (TYPE_IPV4_ADDR, 4);

const SETS: [Set; 21] = [
    Set {
        name: MASQUERADE_SET,
        id: 1,
        key: &[(TYPE_IPV4_ADDR, 4)],
        data: &[],
        interval: true,
    },
    Set {
        name: DNAT_PORT_MAP,
        id: 2,
        key: &[
            (TYPE_IPV4_ADDR, 4),
            (TYPE_INET_PROTO, 1),
            (TYPE_INET_SERVICE, 2),
        ],
        data: &[(TYPE_IPV4_ADDR, 4), (TYPE_INET_SERVICE, 2)],
        interval: true,
    },
    Set {
        name: DNAT_ADDR_MAP,
        id: 3,
        key: &[
            (TYPE_IPV4_ADDR, 4),
            (TYPE_INET_PROTO, 1),
            (TYPE_INET_SERVICE, 2),
        ],
        data: &[(TYPE_IPV4_ADDR, 4)],
        interval: true,
    },
    Set {
        name: DNAT_ANY_MAP,
        id: 4,
        key: &[(TYPE_INET_PROTO, 1), (TYPE_INET_SERVICE, 2)],
        data: &[(TYPE_IPV4_ADDR, 4), (TYPE_INET_SERVICE, 2)],
        interval: false,
    },
    Set {
        name: BRIDGES_SET,
        id: 5,
        key: &[IFNAME],
        data: &[],
        interval: false,
    },
    Set {
        name: ISOLATED_SET,
        id: 6,
        key: &[IFNAME],
        data: &[],
        interval: false,
    },
    Set {
        name: INTERNAL_SET,
        id: 7,
        key: &[IFNAME],
        data: &[],
        interval: false,
    },
    Set {
        name: SAME_BRIDGE_SET,
        id: 8,
        key: &[IFNAME, IFNAME],
        data: &[],
        interval: false,
    },
    Set {
        name: GROUPS_SET,
        id: 9,
        key: &[DEVGROUP],
        data: &[],
        interval: false,
    },
    Set {
        name: ISOLATED_GROUPS_SET,
        id: 10,
        key: &[DEVGROUP],
        data: &[],
        interval: false,
    },
    Set {
        name: INTERNAL_GROUPS_SET,
        id: 11,
        key: &[DEVGROUP],
        data: &[],
        interval: false,
    },
    Set {
        name: ICC_OFF_GROUPS_SET,
        id: 12,
        key: &[DEVGROUP],
        data: &[],
        interval: false,
    },
    Set {
        name: SAME_GROUP_SET,
        id: 13,
        key: &[DEVGROUP, DEVGROUP],
        data: &[],
        interval: false,
    },
    Set {
        name: MASQUERADE6_SET,
        id: 14,
        key: &[(TYPE_IPV6_ADDR, 16)],
        data: &[],
        interval: true,
    },
    Set {
        name: DNAT6_PORT_MAP,
        id: 15,
        key: &[
            (TYPE_IPV6_ADDR, 16),
            (TYPE_INET_PROTO, 1),
            (TYPE_INET_SERVICE, 2),
        ],
        data: &[(TYPE_IPV6_ADDR, 16), (TYPE_INET_SERVICE, 2)],
        interval: true,
    },
    Set {
        name: DNAT6_ADDR_MAP,
        id: 16,
        key: &[
            (TYPE_IPV6_ADDR, 16),
            (TYPE_INET_PROTO, 1),
            (TYPE_INET_SERVICE, 2),
        ],
        data: &[(TYPE_IPV6_ADDR, 16)],
        interval: true,
    },
    Set {
        name: DNAT6_ANY_MAP,
        id: 17,
        key: &[(TYPE_INET_PROTO, 1), (TYPE_INET_SERVICE, 2)],
        data: &[(TYPE_IPV6_ADDR, 16), (TYPE_INET_SERVICE, 2)],
        interval: false,
    },
    Set {
        name: DIRECT_BRIDGES_SET,
        id: 18,
        key: &[IPV4_ADDR, IFNAME],
        data: &[],
        interval: true,
    },
    Set {
        name: DIRECT_SUBNETS_SET,
        id: 19,
        key: &[IPV4_ADDR],
        data: &[],
        interval: true,
    },
    Set {
        name: DIRECT_ISOLATED_SET,
        id: 20,
        key: &[IPV4_ADDR],
        data: &[],
        interval: true,
    },
    Set {
        name: DIRECT_INTERNAL_SET,
        id: 21,
        key: &[IPV4_ADDR],
        data: &[],
        interval: true,
    },
];

/// nft's type number of a concatenation of `fields`.
fn concat_type(fields: &[(u32, u32)]) -> u32 {
    fields
        .iter()
        .fold(0, |acc, (kind, _)| (acc << TYPE_BITS) | kind)
}

/// Registers hold each field of a concatenation in whole 4-byte words.
fn concat_len(fields: &[(u32, u32)]) -> u32 {
    fields.iter().map(|(_, len)| len.div_ceil(4) * 4).sum()
}

impl Set {
    fn encode(&self, b: &mut Vec<u8>) {
        // As nft does: the concatenation's field lengths are given for a pipapo set only.
        let concat_ranges = self.interval && self.key.len() > 1;
        let mut flags = 0;
        if self.interval {
            flags |= NFT_SET_INTERVAL;
        }
        if !self.data.is_empty() {
            flags |= NFT_SET_MAP;
        }
        if concat_ranges {
            flags |= NFT_SET_CONCAT;
        }
        attr_str(b, NFTA_SET_TABLE, TABLE_NAME);
        attr_str(b, NFTA_SET_NAME, self.name);
        attr(b, NFTA_SET_FLAGS, &flags.to_be_bytes());
        attr(b, NFTA_SET_KEY_TYPE, &concat_type(self.key).to_be_bytes());
        attr(b, NFTA_SET_KEY_LEN, &concat_len(self.key).to_be_bytes());
        if !self.data.is_empty() {
            attr(b, NFTA_SET_DATA_TYPE, &concat_type(self.data).to_be_bytes());
            attr(b, NFTA_SET_DATA_LEN, &concat_len(self.data).to_be_bytes());
        }
        attr(b, NFTA_SET_ID, &self.id.to_be_bytes());
        if self.key == [IFNAME] {
            // A lone string key: nft reads it as big endian (an empty name) unless told, as
            // it tells itself in the set's user data. Concatenations carry no such note.
            let mut udata = vec![UDATA_SET_KEYBYTEORDER, 4];
            udata.extend(BYTEORDER_HOST_ENDIAN.to_ne_bytes());
            attr(b, NFTA_SET_USERDATA, &udata);
        }
        if concat_ranges {
            nested(b, NFTA_SET_DESC, |b| {
                nested(b, NFTA_SET_DESC_CONCAT, |b| {
                    for (_, len) in self.key {
                        nested(b, NFTA_LIST_ELEM, |b| {
                            attr(b, NFTA_SET_FIELD_LEN, &len.to_be_bytes())
                        });
                    }
                });
            });
        }
    }
}

/// One kernel expression: its name and attributes.
enum Expr {
    /// `fib daddr type` into `REG_1`.
    FibDaddrType,
    /// `meta <key>` into `dreg`.
    Meta {
        key: u32,
        dreg: u32,
    },
    /// Compares `REG_1` with `value`.
    Cmp {
        equal: bool,
        value: Vec<u8>,
    },
    /// Loads `len` bytes at `offset` of the network (1) or transport (2) header into `dreg`.
    Payload {
        base: u32,
        offset: u32,
        len: u32,
        dreg: u32,
    },
    /// Host to network order of `reg` in place (`len` bytes, in units of `size`).
    Hton {
        reg: u32,
        len: u32,
        size: u32,
    },
    /// `REG_1 & mask`, in place.
    And {
        mask: Vec<u8>,
    },
    /// Looks `REG_1` up in `set`; a map's value goes to `REG_1`.
    Lookup {
        set: &'static str,
        id: u32,
        map: bool,
        invert: bool,
    },
    /// `meta l4proto { tcp, udp, sctp }`: the lookup of `REG_1` in the anonymous set with
    /// batch id `set_id` (given when the batch is built).
    PortProtocol {
        set_id: u32,
    },
    /// `ct status` into `REG_1`.
    CtStatus,
    /// DNAT of `family` to the address in `REG_1` and, when `port`, the port in `REG32_01`
    /// (IPv4: after the 4-byte address) or `REG_2` (IPv6: after the 16-byte address).
    Dnat {
        family: u8,
        port: bool,
    },
    Masquerade,
    /// `accept` or `drop`.
    Verdict {
        code: u32,
    },
}

const META_NFPROTO: u32 = 15;
const META_L4PROTO: u32 = 16;
const META_IIFNAME: u32 = 6;
const META_OIFNAME: u32 = 7;
const META_IIFGROUP: u32 = 21;
const META_OIFGROUP: u32 = 22;
const NFPROTO_IPV4: u8 = 2;
const NFPROTO_IPV6: u8 = 10;
const RTN_LOCAL: u32 = 2;
const PAYLOAD_NETWORK: u32 = 1;
const PAYLOAD_TRANSPORT: u32 = 2;
const IPS_DST_NAT: u32 = 1 << 5;

impl Expr {
    fn name(&self) -> &'static str {
        match self {
            Expr::FibDaddrType => "fib",
            Expr::Meta { .. } => "meta",
            Expr::Cmp { .. } => "cmp",
            Expr::Payload { .. } => "payload",
            Expr::Hton { .. } => "byteorder",
            Expr::And { .. } => "bitwise",
            Expr::Lookup { .. } | Expr::PortProtocol { .. } => "lookup",
            Expr::CtStatus => "ct",
            Expr::Dnat { .. } => "nat",
            Expr::Masquerade => "masq",
            Expr::Verdict { .. } => "immediate",
        }
    }

    fn encode(&self, b: &mut Vec<u8>) {
        let u32_attr = |b: &mut Vec<u8>, kind: u16, v: u32| attr(b, kind, &v.to_be_bytes());
        let data = |b: &mut Vec<u8>, kind: u16, v: &[u8]| {
            nested(b, kind, |b| attr(b, NFTA_DATA_VALUE, v));
        };
        nested(b, NFTA_LIST_ELEM, |b| {
            attr_str(b, NFTA_EXPR_NAME, self.name());
            nested(b, NFTA_EXPR_DATA, |b| match self {
                Expr::FibDaddrType => {
                    const RESULT_ADDRTYPE: u32 = 3;
                    const FLAG_DADDR: u32 = 1 << 1;
                    u32_attr(b, 1, REG_1); // NFTA_FIB_DREG
                    u32_attr(b, 2, RESULT_ADDRTYPE); // NFTA_FIB_RESULT
                    u32_attr(b, 3, FLAG_DADDR); // NFTA_FIB_FLAGS
                }
                Expr::Meta { key, dreg } => {
                    u32_attr(b, 1, *dreg); // NFTA_META_DREG
                    u32_attr(b, 2, *key); // NFTA_META_KEY
                }
                Expr::Cmp { equal, value } => {
                    u32_attr(b, 1, REG_1); // NFTA_CMP_SREG
                    u32_attr(b, 2, if *equal { 0 } else { 1 }); // NFTA_CMP_OP: EQ, NEQ
                    data(b, 3, value); // NFTA_CMP_DATA
                }
                Expr::Payload {
                    base,
                    offset,
                    len,
                    dreg,
                } => {
                    u32_attr(b, 1, *dreg); // NFTA_PAYLOAD_DREG
                    u32_attr(b, 2, *base); // NFTA_PAYLOAD_BASE
                    u32_attr(b, 3, *offset); // NFTA_PAYLOAD_OFFSET
                    u32_attr(b, 4, *len); // NFTA_PAYLOAD_LEN
                }
                Expr::Hton { reg, len, size } => {
                    const HTON: u32 = 1;
                    u32_attr(b, 1, *reg); // NFTA_BYTEORDER_SREG
                    u32_attr(b, 2, *reg); // NFTA_BYTEORDER_DREG
                    u32_attr(b, 3, HTON); // NFTA_BYTEORDER_OP
                    u32_attr(b, 4, *len); // NFTA_BYTEORDER_LEN
                    u32_attr(b, 5, *size); // NFTA_BYTEORDER_SIZE
                }
                Expr::And { mask } => {
                    u32_attr(b, 1, REG_1); // NFTA_BITWISE_SREG
                    u32_attr(b, 2, REG_1); // NFTA_BITWISE_DREG
                    u32_attr(b, 3, mask.len() as u32); // NFTA_BITWISE_LEN
                    data(b, 4, mask); // NFTA_BITWISE_MASK
                    data(b, 5, &vec![0; mask.len()]); // NFTA_BITWISE_XOR
                }
                Expr::Lookup {
                    set,
                    id,
                    map,
                    invert,
                } => {
                    attr_str(b, 1, set); // NFTA_LOOKUP_SET
                    u32_attr(b, 2, REG_1); // NFTA_LOOKUP_SREG
                    if *map {
                        u32_attr(b, 3, REG_1); // NFTA_LOOKUP_DREG
                    }
                    u32_attr(b, 4, *id); // NFTA_LOOKUP_SET_ID
                    if *invert {
                        u32_attr(b, 5, 1); // NFTA_LOOKUP_FLAGS: NFT_LOOKUP_F_INV
                    }
                }
                Expr::PortProtocol { set_id } => {
                    attr_str(b, 1, ANONYMOUS_SET); // NFTA_LOOKUP_SET
                    u32_attr(b, 2, REG_1); // NFTA_LOOKUP_SREG
                    u32_attr(b, 4, *set_id); // NFTA_LOOKUP_SET_ID
                }
                Expr::CtStatus => {
                    const CT_STATUS: u32 = 2;
                    u32_attr(b, 1, REG_1); // NFTA_CT_DREG
                    u32_attr(b, 2, CT_STATUS); // NFTA_CT_KEY
                }
                Expr::Dnat { family, port } => {
                    const NAT_DNAT: u32 = 1;
                    u32_attr(b, 1, NAT_DNAT); // NFTA_NAT_TYPE
                    u32_attr(b, 2, u32::from(*family)); // NFTA_NAT_FAMILY
                    u32_attr(b, 3, REG_1); // NFTA_NAT_REG_ADDR_MIN
                    if *port {
                        let reg = if *family == NFPROTO_IPV6 {
                            REG_2
                        } else {
                            REG32_01
                        };
                        u32_attr(b, 5, reg); // NFTA_NAT_REG_PROTO_MIN
                    }
                }
                Expr::Masquerade => {}
                Expr::Verdict { code } => {
                    const NFT_REG_VERDICT: u32 = 0;
                    const NFTA_DATA_VERDICT: u16 = 2;
                    u32_attr(b, 1, NFT_REG_VERDICT); // NFTA_IMMEDIATE_DREG
                    nested(b, 2, |b| {
                        // NFTA_IMMEDIATE_DATA
                        nested(b, NFTA_DATA_VERDICT, |b| u32_attr(b, 1, *code));
                        // NFTA_VERDICT_CODE
                    });
                }
            });
        });
    }
}

fn set_id(name: &str) -> u32 {
    SETS.iter().find(|s| s.name == name).map_or(0, |s| s.id)
}

fn lookup(set: &'static str, map: bool, invert: bool) -> Expr {
    Expr::Lookup {
        set,
        id: set_id(set),
        map,
        invert,
    }
}

fn ipv4_only() -> [Expr; 2] {
    family_only(NFPROTO_IPV4)
}

fn family_only(family: u8) -> [Expr; 2] {
    [
        Expr::Meta {
            key: META_NFPROTO,
            dreg: REG_1,
        },
        Expr::Cmp {
            equal: true,
            value: vec![family],
        },
    ]
}

fn ip_saddr() -> Expr {
    Expr::Payload {
        base: PAYLOAD_NETWORK,
        offset: 12,
        len: 4,
        dreg: REG_1,
    }
}

/// `ip6 saddr` (`daddr`: offset 24) into `REG_1`, all four of its words.
fn ip6_addr(offset: u32) -> Expr {
    Expr::Payload {
        base: PAYLOAD_NETWORK,
        offset,
        len: 16,
        dreg: REG_1,
    }
}

fn ct_status_dnat() -> [Expr; 3] {
    [
        Expr::CtStatus,
        Expr::And {
            mask: IPS_DST_NAT.to_ne_bytes().to_vec(),
        },
        Expr::Cmp {
            equal: false,
            value: vec![0; 4],
        },
    ]
}

/// `fib daddr type local dnat ip to ip daddr . meta l4proto . th dport map @<map>`
fn dnat_rule(map: &'static str) -> Vec<Expr> {
    let mut rule = Vec::from(to_local_port_protocol());
    rule.extend(ipv4_only());
    rule.extend([
        Expr::Payload {
            base: PAYLOAD_NETWORK,
            offset: 16,
            len: 4,
            dreg: REG_1,
        },
        Expr::Meta {
            key: META_L4PROTO,
            dreg: REG32_01,
        },
        Expr::Hton {
            reg: REG32_01,
            len: 1,
            size: 2,
        },
        Expr::Payload {
            base: PAYLOAD_TRANSPORT,
            offset: 2,
            len: 2,
            dreg: REG32_02,
        },
        lookup(map, true, false),
        Expr::Dnat {
            family: NFPROTO_IPV4,
            port: map == DNAT_PORT_MAP,
        },
    ]);
    rule
}

/// `fib daddr type local dnat ip6 to ip6 daddr . meta l4proto . th dport map @<map>`: the
/// address fills `REG_1`, so the protocol and port go in the next 16-byte register's words.
fn dnat6_rule(map: &'static str) -> Vec<Expr> {
    // As nft writes it: the protocol in `REG_2` (its first word, 32-bit register 12), the
    // port in the word after (13).
    const REG32_05: u32 = 13;
    let mut rule = Vec::from(to_local_port_protocol());
    rule.extend(not_to_ipv6_loopback());
    rule.extend([
        ip6_addr(24),
        Expr::Meta {
            key: META_L4PROTO,
            dreg: REG_2,
        },
        Expr::Hton {
            reg: REG_2,
            len: 1,
            size: 2,
        },
        Expr::Payload {
            base: PAYLOAD_TRANSPORT,
            offset: 2,
            len: 2,
            dreg: REG32_05,
        },
        lookup(map, true, false),
        Expr::Dnat {
            family: NFPROTO_IPV6,
            port: map == DNAT6_PORT_MAP,
        },
    ]);
    rule
}

/// `fib daddr type local dnat ip to meta l4proto . th dport map @dnat_any` (no IPv4 match: in
/// an inet table the kernel applies `dnat ip` to IPv4 packets only, and `dnat ip6` of
/// `dnat6_any` to IPv6 ones).
fn dnat_any_rule(map: &'static str) -> Vec<Expr> {
    let mut rule = Vec::from(to_local_port_protocol());
    if map == DNAT6_ANY_MAP {
        rule.extend(not_to_ipv6_loopback());
    }
    rule.extend([
        Expr::Meta {
            key: META_L4PROTO,
            dreg: REG_1,
        },
        Expr::Payload {
            base: PAYLOAD_TRANSPORT,
            offset: 2,
            len: 2,
            dreg: REG32_01,
        },
        lookup(map, true, false),
        Expr::Dnat {
            family: if map == DNAT6_ANY_MAP {
                NFPROTO_IPV6
            } else {
                NFPROTO_IPV4
            },
            port: true,
        },
    ]);
    rule
}

/// `ip6 daddr != ::1` (with the IPv6 match nft puts before it).
fn not_to_ipv6_loopback() -> Vec<Expr> {
    let mut exprs = Vec::from(family_only(NFPROTO_IPV6));
    exprs.extend([
        ip6_addr(24),
        Expr::Cmp {
            equal: false,
            value: std::net::Ipv6Addr::LOCALHOST.octets().to_vec(),
        },
    ]);
    exprs
}

/// `fib daddr type local meta l4proto { tcp, udp, sctp }`: how every DNAT rule begins.
fn to_local_port_protocol() -> [Expr; 4] {
    [
        Expr::FibDaddrType,
        Expr::Cmp {
            equal: true,
            value: RTN_LOCAL.to_ne_bytes().to_vec(),
        },
        Expr::Meta {
            key: META_L4PROTO,
            dreg: REG_1,
        },
        Expr::PortProtocol { set_id: 0 },
    ]
}

fn meta(key: u32, dreg: u32) -> Expr {
    Expr::Meta { key, dreg }
}

/// `iifname . oifname != @same_bridge`: the packet leaves by another interface than the
/// bridge it came in by.
fn crosses_bridges() -> [Expr; 3] {
    [
        meta(META_IIFNAME, REG_1),
        meta(META_OIFNAME, REG_2),
        lookup(SAME_BRIDGE_SET, false, true),
    ]
}

/// The forward chain's rules: `<side>name @<set> [<other side>name @bridges] iifname .
/// oifname != @same_bridge drop`, for both sides, and `ct status dnat accept` between.
fn forward_rules() -> Vec<Vec<Expr>> {
    let drop = || Expr::Verdict { code: NF_DROP };
    let crossing = |side: u32, set: &'static str, other: Option<u32>| {
        let mut rule = vec![meta(side, REG_1), lookup(set, false, false)];
        if let Some(other) = other {
            rule.extend([meta(other, REG_1), lookup(BRIDGES_SET, false, false)]);
        }
        rule.extend(crosses_bridges());
        rule.push(drop());
        rule
    };
    let group_crossing = |side: u32, set: &'static str, other: Option<u32>| {
        let mut rule = vec![meta(side, REG_1), lookup(set, false, false)];
        if let Some(other) = other {
            rule.extend([meta(other, REG_1), lookup(GROUPS_SET, false, false)]);
        }
        rule.extend(same_group(true));
        rule.push(drop());
        rule
    };
    // One side in a set of one kind, the other in the other kind's: two different networks.
    let between_kinds = |side: u32, set: &'static str, other: u32, other_set: &'static str| {
        vec![
            meta(side, REG_1),
            lookup(set, false, false),
            meta(other, REG_1),
            lookup(other_set, false, false),
            drop(),
        ]
    };
    let mut published = Vec::from(ct_status_dnat());
    published.push(Expr::Verdict { code: NF_ACCEPT });
    let mut icc_off = vec![
        meta(META_IIFGROUP, REG_1),
        lookup(ICC_OFF_GROUPS_SET, false, false),
    ];
    icc_off.extend(same_group(false));
    icc_off.push(drop());
    let mut rules = vec![
        direct_own(IP_DADDR, META_IIFNAME, META_OIFNAME),
        direct_own(IP_SADDR, META_OIFNAME, META_IIFNAME),
        direct_drop(
            IP_DADDR,
            DIRECT_INTERNAL_SET,
            &[(META_OIFNAME, BRIDGES_SET, true)],
        ),
        direct_drop(
            IP_SADDR,
            DIRECT_INTERNAL_SET,
            &[(META_IIFNAME, BRIDGES_SET, true)],
        ),
        crossing(META_IIFNAME, INTERNAL_SET, None),
        crossing(META_OIFNAME, INTERNAL_SET, None),
        group_crossing(META_IIFGROUP, INTERNAL_GROUPS_SET, None),
        group_crossing(META_OIFGROUP, INTERNAL_GROUPS_SET, None),
        published,
        crossing(META_IIFNAME, ISOLATED_SET, Some(META_OIFNAME)),
        crossing(META_OIFNAME, ISOLATED_SET, Some(META_IIFNAME)),
        group_crossing(META_IIFGROUP, ISOLATED_GROUPS_SET, Some(META_OIFGROUP)),
        group_crossing(META_OIFGROUP, ISOLATED_GROUPS_SET, Some(META_IIFGROUP)),
        between_kinds(
            META_IIFGROUP,
            ISOLATED_GROUPS_SET,
            META_OIFNAME,
            BRIDGES_SET,
        ),
        between_kinds(
            META_OIFGROUP,
            ISOLATED_GROUPS_SET,
            META_IIFNAME,
            BRIDGES_SET,
        ),
        between_kinds(META_IIFNAME, ISOLATED_SET, META_OIFGROUP, GROUPS_SET),
        between_kinds(META_OIFNAME, ISOLATED_SET, META_IIFGROUP, GROUPS_SET),
    ];
    rules.extend(direct_isolation());
    rules.push(icc_off);
    rules
}

/// `ip saddr` and `ip daddr`: their offsets in the IPv4 header.
const IP_SADDR: u32 = 12;
const IP_DADDR: u32 = 16;

/// `ip <addr> . <side>name @direct_bridges <other side>name != @bridges accept`: a directly
/// routed overlay's own traffic between its bridge and its peers on the underlay (`addr` the
/// remote side's address), as the tunnel's would pass.
fn direct_own(addr: u32, side: u32, other: u32) -> Vec<Expr> {
    let mut rule = Vec::from(ipv4_only());
    rule.extend([
        Expr::Payload {
            base: PAYLOAD_NETWORK,
            offset: addr,
            len: 4,
            dreg: REG_1,
        },
        meta(side, REG32_01),
        lookup(DIRECT_BRIDGES_SET, false, false),
        meta(other, REG_1),
        lookup(BRIDGES_SET, false, true),
        Expr::Verdict { code: NF_ACCEPT },
    ]);
    rule
}

/// `ip <addr> @<set>` then each `<meta> [!=] @<set>` of `then`, `drop`.
fn direct_drop(addr: u32, set: &'static str, then: &[(u32, &'static str, bool)]) -> Vec<Expr> {
    let mut rule = Vec::from(ipv4_only());
    rule.extend([
        Expr::Payload {
            base: PAYLOAD_NETWORK,
            offset: addr,
            len: 4,
            dreg: REG_1,
        },
        lookup(set, false, false),
    ]);
    for (key, set, invert) in then {
        rule.extend([meta(*key, REG_1), lookup(set, false, *invert)]);
    }
    rule.push(Expr::Verdict { code: NF_DROP });
    rule
}

/// Isolation for a directly routed overlay's peers, which come and go by the underlay
/// interface (not in `bridges`): towards them (`ip daddr`) and from them (`ip saddr`), another
/// network's traffic is dropped when either network isolates. Its own traffic was accepted
/// first (`direct_own`).
fn direct_isolation() -> Vec<Vec<Expr>> {
    let mut rules = Vec::new();
    for (addr, side, other, group_side) in [
        (IP_DADDR, META_IIFNAME, META_OIFNAME, META_IIFGROUP),
        (IP_SADDR, META_OIFNAME, META_IIFNAME, META_OIFGROUP),
    ] {
        rules.extend([
            direct_drop(
                addr,
                DIRECT_ISOLATED_SET,
                &[(side, BRIDGES_SET, false), (other, BRIDGES_SET, true)],
            ),
            direct_drop(
                addr,
                DIRECT_SUBNETS_SET,
                &[(side, ISOLATED_SET, false), (other, BRIDGES_SET, true)],
            ),
            direct_drop(
                addr,
                DIRECT_SUBNETS_SET,
                &[(group_side, ISOLATED_GROUPS_SET, false)],
            ),
            direct_drop(
                addr,
                DIRECT_ISOLATED_SET,
                &[(group_side, GROUPS_SET, false)],
            ),
        ]);
    }
    rules
}

/// `iifgroup . oifgroup [!=] @same_group`: whether the packet stays in its routed network.
fn same_group(invert: bool) -> [Expr; 3] {
    [
        meta(META_IIFGROUP, REG_1),
        meta(META_OIFGROUP, REG32_01),
        lookup(SAME_GROUP_SET, false, invert),
    ]
}

/// Every rule, with its chain, in order.
fn rules() -> Vec<(&'static str, Vec<Expr>)> {
    let mut masquerade_subnets = Vec::from(ipv4_only());
    masquerade_subnets.extend([
        ip_saddr(),
        lookup(MASQUERADE_SET, false, false),
        Expr::Payload {
            base: PAYLOAD_NETWORK,
            offset: 16,
            len: 4,
            dreg: REG_1,
        },
        lookup(MASQUERADE_SET, false, true),
        Expr::Masquerade,
    ]);
    let mut localhost = Vec::from(ct_status_dnat());
    localhost.extend(ipv4_only());
    localhost.extend([
        // 127.0.0.0/8: the first byte of the source address.
        Expr::Payload {
            base: PAYLOAD_NETWORK,
            offset: 12,
            len: 1,
            dreg: REG_1,
        },
        Expr::Cmp {
            equal: true,
            value: vec![127],
        },
        Expr::Masquerade,
    ]);
    let mut hairpin = Vec::from(ct_status_dnat());
    hairpin.extend(ipv4_only());
    hairpin.extend([
        ip_saddr(),
        lookup(MASQUERADE_SET, false, false),
        Expr::Masquerade,
    ]);
    let mut masquerade_subnets6 = Vec::from(family_only(NFPROTO_IPV6));
    masquerade_subnets6.extend([
        ip6_addr(8),
        lookup(MASQUERADE6_SET, false, false),
        ip6_addr(24),
        lookup(MASQUERADE6_SET, false, true),
        Expr::Masquerade,
    ]);
    let mut hairpin6 = Vec::from(ct_status_dnat());
    hairpin6.extend(family_only(NFPROTO_IPV6));
    hairpin6.extend([
        ip6_addr(8),
        lookup(MASQUERADE6_SET, false, false),
        Expr::Masquerade,
    ]);
    let dnat = |chain: &'static str| {
        [
            (chain, dnat_rule(DNAT_PORT_MAP)),
            (chain, dnat_rule(DNAT_ADDR_MAP)),
            (chain, dnat_any_rule(DNAT_ANY_MAP)),
            (chain, dnat6_rule(DNAT6_PORT_MAP)),
            (chain, dnat6_rule(DNAT6_ADDR_MAP)),
            (chain, dnat_any_rule(DNAT6_ANY_MAP)),
        ]
    };
    dnat("prerouting")
        .into_iter()
        .chain(dnat("output"))
        .chain([
            ("postrouting", masquerade_subnets),
            ("postrouting", localhost),
            ("postrouting", hairpin),
            ("postrouting", masquerade_subnets6),
            ("postrouting", hairpin6),
        ])
        .chain(forward_rules().into_iter().map(|rule| ("forward", rule)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concatenations_pack_types_and_pad_fields() {
        let key = SETS[1].key;
        assert_eq!(concat_type(key), (7 << 12) | (12 << 6) | 13);
        assert_eq!(concat_len(key), 12);
        assert_eq!(concat_type(SETS[1].data), (7 << 6) | 13);
        assert_eq!(concat_len(SETS[1].data), 8);
        assert_eq!(concat_type(SETS[0].key), 7);
    }

    #[test]
    fn every_lookup_names_a_set_of_the_table() {
        for (_, rule) in rules() {
            for e in rule {
                if let Expr::Lookup { set, id, .. } = e {
                    assert!(SETS.iter().any(|s| s.name == set && s.id == id), "{set}");
                }
            }
        }
    }
}
