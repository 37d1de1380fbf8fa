//! Network drivers: each wires one kind of network model in phases.
//!
//! - *prepare* (only a joined network's driver: `NetworkDriver::prepare`) starts what the
//!   network needs outside this container (an overlay's agent) and takes the network's lease
//!   lock, which the plan keeps; it owns nothing the record must list;
//! - *plan* chooses what the container gets (addresses, ports, names) and checks what must
//!   hold, changing nothing on the host; the locks of what it chose stay held in the plan;
//! - the engine writes the record of the plan (before anything is created);
//! - *apply* commits the plan's reservations, then asks the kernel for the rest;
//! - *undo* removes one interface from its record alone (no pid, no namespace), carrying on
//!   past a failed step and returning every failure (only interfaces have anything to undo:
//!   `NetworkDriver::undo`, by the kind of network the record names).
//!
//! A setup's calls take a `DriverInfo`: the state and the kernel (`Env`), the container
//! and what it asks for. Undo takes the `Env` alone: teardown has only the record.
//!
//! A container that joins a named network (mode `bridge`, `<name>`) is planned by
//! `joined::JoinedDriver`, which resolves the network and hands it to the driver of its kind
//! (`NetworkDriver`): `bridge.rs` (bridge, overlay) or `routed.rs`. What those two share (the
//! leased address, the published ports, a veth's undo) is in `veth.rs`.

pub(crate) mod bridge;
pub(crate) mod container;
pub(crate) mod host;
pub(crate) mod joined;
pub mod neighbours;
pub(crate) mod none;
pub(crate) mod routed;
pub(crate) mod veth;

use std::net::IpAddr;

use crate::context::Context;
use crate::error::{Error, Result};
use crate::host::netns::NetnsRef;
use crate::kernel::Kernel;
use crate::network::{DriverKind, Network};
use crate::overlay::state::HostBlock;
use crate::request::{NetworkMode, NetworkRequest};
use crate::state::ipam::LeaseTxn;
use crate::state::record::InterfaceRecord;
use crate::state::reservation::Reservation;

/// The container a front end attaches: its id and its network namespace (by process or path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub id: String,
    pub netns: NetnsRef,
    /// The container's process, when the front end knows it (the OCI hook does).
    pub pid: Option<i32>,
}

/// What a driver needs around it: the state on disk and the kernel.
pub(crate) struct Env<'a> {
    pub(crate) ctx: &'a Context,
    pub(crate) kernel: &'a mut dyn Kernel,
}

/// The interface a plan chose, as the record lists it (saved before apply), for apply to
/// complete (the host veth's index, ...); `None` for modes with no interface.
pub(crate) type Recorded<'r> = Option<&'r mut InterfaceRecord>;

/// What one call of a setup works with: its [`Env`], the container, and what it asks for (one
/// network's part of the request, when it joins several).
pub(crate) struct DriverInfo<'a> {
    pub(crate) env: Env<'a>,
    pub(crate) target: &'a Target,
    pub(crate) request: &'a NetworkRequest,
    /// The addresses (one per family) the same container had before: a plan keeps each that
    /// is still free across a restart.
    pub(crate) preferred: &'a [IpAddr],
}

/// What a plan chose: the interface as the record will list it, and the leases and port
/// claims reserved for it (under their locks until apply commits them).
#[derive(Default)]
pub(crate) struct Plan {
    pub(crate) interface: Option<InterfaceRecord>,
    pub(crate) reserved: Option<Reservation>,
    /// The network joined, as resolved (its definition may change while the container runs:
    /// apply uses what plan saw).
    pub(crate) network: Option<Network>,
}

/// What [`NetworkDriver::prepare`] hands to the plan.
pub(crate) struct Prepared {
    /// The network's lease lock, taken before anything the network needs is started: the plan
    /// keeps it in its reservation until apply commits the lease.
    pub(crate) leases: LeaseTxn,
    /// An overlay's: this host's block of it, from its agent.
    pub(crate) overlay_block: Option<HostBlock>,
}

/// What a mode's [`Driver::prepare`] readied for its plan: for a named network, the network as
/// resolved and what its kind's prepare holds (its lease lock); nothing for the other modes.
#[derive(Default)]
pub(crate) struct Ready {
    pub(crate) joined: Option<(Network, Prepared)>,
}

pub(crate) trait Driver {
    /// Whether the container has a namespace of its own (and then a name for `ip netns`).
    fn own_namespace(&self) -> bool {
        false
    }

    /// Resolves and checks what the mode joins and starts what that needs outside this
    /// container (a named network: its kind's [`NetworkDriver::prepare`], an overlay's agent),
    /// which no record lists. The modes that join no network have nothing to prepare.
    fn prepare(&self, info: &mut DriverInfo<'_>) -> Result<Ready> {
        let _ = info;
        Ok(Ready::default())
    }

    /// Chooses and checks with what `prepare` readied; creates nothing.
    fn plan(&self, info: &mut DriverInfo<'_>, ready: Ready) -> Result<Plan>;

    /// Makes what the plan chose (its interface taken out into the record: `iface`). The
    /// record is on disk already; a failure leaves the engine to undo it from the record.
    fn apply(&self, info: &mut DriverInfo<'_>, plan: Plan, iface: Recorded<'_>) -> Result<()> {
        let _ = (info, plan, iface);
        Ok(())
    }
}

/// The driver of one kind of network (the network file's `"driver"`): the same phases, for a
/// network that is resolved already, and one before them.
pub(crate) trait NetworkDriver {
    /// Starts what `network` needs outside this container (an overlay's agent), under the
    /// network's lease lock, which it takes first and hands to the plan: two setups never
    /// start two agents. Idempotent; owns nothing the record must list (the agent leaves by
    /// itself when no live record uses the network).
    fn prepare(&self, info: &mut DriverInfo<'_>, network: &Network) -> Result<Prepared>;

    /// Chooses the address and ports on `network` and checks them; creates nothing.
    fn plan(&self, info: &mut DriverInfo<'_>, network: Network, prepared: Prepared)
        -> Result<Plan>;

    /// As [`Driver::apply`].
    fn apply(&self, info: &mut DriverInfo<'_>, plan: Plan, iface: Recorded<'_>) -> Result<()>;

    /// Removes one interface from its record alone (no pid, no namespace), carrying on past a
    /// failed step; every step accepts that its object is gone.
    fn undo(&self, env: &mut Env<'_>, id: &str, iface: &InterfaceRecord) -> Vec<Error>;
}

/// The driver of a network mode.
pub(crate) fn for_mode(mode: &NetworkMode) -> &'static dyn Driver {
    match mode {
        NetworkMode::None => &none::NoneDriver,
        NetworkMode::Host => &host::HostDriver,
        NetworkMode::Container { .. } => &container::ContainerDriver,
        // The engine wires each of several networks as its own `Bridge` request.
        NetworkMode::Bridge { .. } | NetworkMode::Networks { .. } => &joined::JoinedDriver,
    }
}

/// The driver of a kind of network.
pub(crate) fn for_kind(kind: DriverKind) -> &'static dyn NetworkDriver {
    match kind {
        // An overlay's interface is a bridge port like any other.
        DriverKind::Bridge | DriverKind::Overlay => &bridge::BridgeDriver,
        DriverKind::Routed => &routed::RoutedDriver,
    }
}

/// The driver that made an interface (for teardown, from the record alone).
pub(crate) fn for_interface(iface: &InterfaceRecord) -> &'static dyn NetworkDriver {
    for_kind(iface.driver)
}

/// Fails unless the container has its own namespace (not the host's).
pub(crate) fn require_own_namespace(info: &mut DriverInfo<'_>, mode: &str) -> Result<()> {
    // The runtime moves a handed-over end into the container's own namespace.
    if info.target.netns.is_handover() {
        return Ok(());
    }
    if info.env.kernel.is_host_netns(&info.target.netns)? {
        return Err(Error::Namespace(format!(
            "network mode {mode} needs the container's own network namespace: add {{\"type\": \"network\"}} to linux.namespaces in config.json"
        )));
    }
    Ok(())
}
