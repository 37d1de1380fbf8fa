//! Puts back the firewall state of every live container from its record: after `nft flush
//! ruleset` (or a firewall service reload) the table is gone with all its elements.

use crate::engine::Context;
use crate::error::Result;
use crate::firewall::Firewall;
use crate::mode::bridge::chosen_default_network;
use crate::network::DEFAULT_NETWORK;
use crate::publish;

/// What a reload restored.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Restored {
    /// Live bridge containers whose elements were put back.
    pub containers: usize,
    pub subnets: usize,
    pub elements: usize,
}

pub fn restore(ctx: &Context) -> Result<Restored> {
    let mut subnets = Vec::new();
    let mut elements = Vec::new();
    let mut containers = 0;
    for id in ctx.records.ids()? {
        // A corrupt or vanished record has nothing to restore; the others still do.
        let Ok(Some(record)) = ctx.records.load(&id) else {
            continue;
        };
        let Some(bridge) = record
            .bridge
            .as_ref()
            .filter(|_| !record.is_stale(&ctx.boot_id))
        else {
            continue;
        };
        containers += 1;
        let network = match ctx.networks.load(&bridge.network) {
            Ok(Some(n)) => Some(n),
            Ok(None) if bridge.network == DEFAULT_NETWORK => chosen_default_network(ctx)?,
            _ => None,
        };
        if let Some(n) = network.filter(|n| n.masquerade) {
            if !subnets.contains(&n.subnet) {
                subnets.push(n.subnet);
            }
        }
        elements.extend(publish::dnat_elements(&bridge.ports, bridge.address));
    }
    Firewall::new()?.add(&subnets, &elements)?;
    Ok(Restored {
        containers,
        subnets: subnets.len(),
        elements: elements.len(),
    })
}
