//! The kernel's netlink sockets, with no library and no process: the message framing they
//! share (`raw`), rtnetlink (`rtnl`: links, addresses, routes, neighbours, forwarding) and
//! nf_tables over nfnetlink (`nft`).

pub(crate) mod nft;
pub mod raw;
pub mod rtnl;
