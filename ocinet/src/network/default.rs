//! The built-in default network, `ocinet`: its subnet chosen once per state root, at its first
//! use, from candidates that overlap none of the host's routes.

use std::net::Ipv4Addr;
use std::path::Path;

use ipnet::{IpNet, Ipv4Net};
use serde::{Deserialize, Serialize};

use super::*;
use crate::error::{Error, Result};
use crate::host::store::{self, StateRoot};

/// Where the default network's subnet is kept once chosen, in the state root.
const DEFAULT_NETWORK_FILE: &str = "default-network.json";

impl Network {
    /// The default network on `subnet` (chosen once per host, see [`choose_default_subnet`]).
    pub(crate) fn default_on(subnet: Ipv4Net) -> Network {
        Network {
            name: DEFAULT_NETWORK.to_string(),
            driver: DriverKind::Bridge,
            bridge: DEFAULT_BRIDGE.to_string(),
            subnets: vec![Subnet {
                subnet: IpNet::V4(subnet),
                gateway: first_host(IpNet::V4(subnet)),
            }],
            masquerade: true,
            mtu: DEFAULT_MTU,
            internal: false,
            isolate: true,
            icc: true,
            dns: false,
            overlay: None,
        }
    }
}

/// The subnet of the default network, chosen once per state root and kept.
#[derive(Serialize, Deserialize)]
struct DefaultNetworkFile {
    subnet: Ipv4Net,
}

/// The default network, if its subnet has been chosen (at the first setup on it in this root).
pub(crate) fn chosen_default_network(root: &StateRoot) -> Result<Option<Network>> {
    let path = root.path().join(DEFAULT_NETWORK_FILE);
    Ok(store::read_json::<DefaultNetworkFile>(&path)?.map(|f| Network::default_on(f.subnet)))
}

/// The candidate pool for the default network, in order of preference (Docker's, then podman's
/// neighbourhood).
fn default_candidates() -> impl Iterator<Item = Ipv4Net> {
    let docker = (17..=31).map(|b| Ipv4Net::new(Ipv4Addr::new(172, b, 0, 0), 16));
    let podman = (88..=127).map(|b| Ipv4Net::new(Ipv4Addr::new(10, b, 0, 0), 16));
    docker.chain(podman).filter_map(|n| n.ok())
}

/// The first candidate /16 that overlaps none of the host's routes (default routes excluded).
pub(crate) fn choose_default_subnet(routes: &[Ipv4Net]) -> Option<Ipv4Net> {
    default_candidates().find(|candidate| {
        routes
            .iter()
            .filter(|r| r.prefix_len() > 0)
            .all(|r| !r.contains(candidate) && !candidate.contains(r))
    })
}

/// The default network: as chosen before in `root`, else on the first candidate subnet that
/// overlaps none of `host_routes` (asked only then), kept for the next setups. `file` is where
/// a user would define it instead (for the error when every candidate is taken).
pub(super) fn resolve_default(
    root: &StateRoot,
    host_routes: &mut dyn FnMut() -> Result<Vec<Ipv4Net>>,
    file: &Path,
) -> Result<Network> {
    let _lock = store::lock(&root.path().join("lock"))?;
    if let Some(network) = chosen_default_network(root)? {
        return Ok(network);
    }
    let subnet = choose_default_subnet(&host_routes()?).ok_or_else(|| {
        Error::Namespace(format!(
            "every candidate subnet for the default network overlaps a host route: define {} with a free subnet",
            file.display()
        ))
    })?;
    store::write_json(
        &root.path().join(DEFAULT_NETWORK_FILE),
        &DefaultNetworkFile { subnet },
    )?;
    Ok(Network::default_on(subnet))
}
