//! Containers' names: the names a container holds on each network (`names`), the resolver
//! process that answers them (`resolver`: started on demand, told of each setup), and the
//! container's `resolv.conf` pointing at it (`resolv_conf`).

pub mod names;
pub mod resolv_conf;
pub mod resolver;
