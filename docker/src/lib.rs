//! `ocinet-docker`: a Docker Engine network plugin (libnetwork's remote network driver API,
//! HTTP on a unix socket) on ocinet's engine. `docker network create -d ocinet` makes an
//! ocinet bridge network; containers on it are ocinet records of front end `docker`.

pub mod activation;
pub mod api;
pub mod docker_host;
pub mod error;
pub mod network_options;
pub mod plugin;
pub mod port_map;
pub mod server;
