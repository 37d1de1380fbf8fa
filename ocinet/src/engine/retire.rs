//! A network taken out of use (`docker network rm`): its stale containers torn down, then its
//! bridge and its firewall elements removed, and its directories in the state root (leases,
//! cursors, lock; its names). Its definition is the caller's to delete. (A routed network's gateway on
//! `lo` and unreachable route are not removed: the Docker plugin, the one caller, makes bridge
//! networks only.)

use crate::context::Context;
use crate::error::{Error, Result};
use crate::host::store;
use crate::kernel::{Kernel, SystemKernel};
use crate::network::Network;
use crate::state::ipam::LeaseStore;

use super::teardown_with;

/// Removes what `network` has on the host and in the state root once no live container uses
/// it; a live one is an error naming it. Idempotent: what is gone already is fine.
pub fn retire_network(ctx: &Context, network: &Network) -> Result<()> {
    retire_with(ctx, &mut SystemKernel::new(), network)
}

pub(crate) fn retire_with(ctx: &Context, kernel: &mut dyn Kernel, network: &Network) -> Result<()> {
    let (records, _unreadable) = ctx.records.all()?;
    for record in records
        .iter()
        .filter(|r| r.interfaces.iter().any(|i| i.network == network.name))
    {
        let _held = ctx.records.lock(&record.id)?;
        // Read again under the lock: a teardown may have finished it meanwhile.
        let Some(record) = ctx.records.load(&record.id)? else {
            continue;
        };
        if !record.is_stale(&ctx.boot_id) {
            return Err(Error::NetworkConfig {
                path: ctx.networks.path_of(&network.name),
                reason: format!(
                    "network {} is in use by container {}: stop that container first",
                    network.name, record.id
                ),
            });
        }
        teardown_with(ctx, kernel, &record)?;
    }
    let subnets: Vec<_> = match network.masquerade {
        true => network.subnets.iter().map(|s| s.subnet).collect(),
        false => Vec::new(),
    };
    kernel.firewall_remove_networks(&[network.filter()], &subnets)?;
    if !network.bridge.is_empty() {
        kernel.delete_link(&network.bridge)?;
    }
    LeaseStore::remove_network(&ctx.root, &network.name)?;
    // No live container is left to hold a name on it.
    store::remove_tree(&ctx.root.path().join("names").join(&network.name))
}
