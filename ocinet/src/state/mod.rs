//! What ocinet keeps in the state root about what it made: the per-container record
//! (`record`), address leases (`ipam`), leases and port claims held between a plan and its
//! record (`reservation`), the activity log (`activity`), and the firewall's elements put
//! back from the records when its table was lost (`restore`). Host-port claims are with the
//! ports (`ports::claims`). The Docker plugin's endpoint files (`docker_endpoints`) and what
//! dockerd still holds (`dockerd`) are here too: they decide whether a Docker record is live.

pub mod activity;
pub mod docker_endpoints;
pub mod dockerd;
pub(crate) mod ipam;
pub mod record;
pub(crate) mod reservation;
pub mod restore;
