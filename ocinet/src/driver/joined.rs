//! A container joining a named network (mode `bridge`, `<name>`, `bridge:<name>`): resolves
//! the network (given inline, a user file, or the built-in default) and hands the rest to the
//! driver of the network's kind, which is only known once the network is: its prepare (an
//! overlay's agent) in this driver's prepare, its plan in this one's plan.

use super::{for_kind, require_own_namespace, Driver, DriverInfo, Env, Plan, Ready, Recorded};
use crate::error::{Error, Result};
use crate::network::Network;
use crate::request::{NetworkMode, NetworkRequest};

pub(crate) struct JoinedDriver;

impl Driver for JoinedDriver {
    fn own_namespace(&self) -> bool {
        true
    }

    fn prepare(&self, info: &mut DriverInfo<'_>) -> Result<Ready> {
        let network = resolve(&mut info.env, info.request)?;
        let mode = info.request.mode.to_string();
        require_own_namespace(info, &mode)?;
        if network.internal && !info.request.ports.is_empty() {
            return Err(Error::InternalPorts {
                network: network.name.clone(),
            });
        }
        // Only a request that passed the checks starts what the network needs.
        let prepared = for_kind(network.driver).prepare(info, &network)?;
        Ok(Ready {
            joined: Some((network, prepared)),
        })
    }

    fn plan(&self, info: &mut DriverInfo<'_>, ready: Ready) -> Result<Plan> {
        let Some((network, prepared)) = ready.joined else {
            return Err(Error::Namespace(
                "a network's plan lacks its prepared network".to_string(),
            ));
        };
        for_kind(network.driver).plan(info, network, prepared)
    }

    fn apply(&self, info: &mut DriverInfo<'_>, plan: Plan, iface: Recorded<'_>) -> Result<()> {
        let Some(kind) = plan.network.as_ref().map(|n| n.driver) else {
            return Err(Error::Namespace(
                "a network's plan lacks its network".to_string(),
            ));
        };
        for_kind(kind).apply(info, plan, iface)
    }
}

/// The network `request` joins.
fn resolve(env: &mut Env<'_>, request: &NetworkRequest) -> Result<Network> {
    let NetworkMode::Bridge { network: name } = &request.mode else {
        return Err(Error::Namespace(format!(
            "mode {} joins no network",
            request.mode
        )));
    };
    let ctx = env.ctx;
    let kernel = &mut *env.kernel;
    match &request.definition {
        // Given inline (CNI): it stands for the name only if no file says otherwise.
        Some(inline) if inline.name == *name => {
            ctx.networks.check_inline(inline)?;
            Ok(inline.clone())
        }
        Some(inline) => Err(Error::Namespace(format!(
            "the request joins network {name} but defines {}",
            inline.name
        ))),
        None => ctx
            .networks
            .resolve(&ctx.root, name, &mut || kernel.host_ipv4_routes()),
    }
}
