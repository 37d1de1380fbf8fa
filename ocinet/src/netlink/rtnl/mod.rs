//! rtnetlink on one plain socket per namespace: requests batched into one datagram (`batch`),
//! the veth, bridge and routed links a setup makes (`link`), a link's index by name
//! (`probe`), the neighbour tables' limits (`neigh_table`) and forwarding (`netconf`).

pub mod batch;
pub mod link;
pub(crate) mod neigh_table;
pub(crate) mod netconf;
pub mod probe;
