//! One overlay network's agent on one host: holds the host's block in etcd (a lease kept
//! alive), programs the tunnels to the other hosts' blocks as they come and go, and leaves
//! (lease revoked, devices removed) when no container of the network is left on the host, or
//! when its state root is removed (a user clearing it: nothing would ever tear its containers
//! down, and what it holds is released rather than kept for good). Once it serves, its keeper
//! (`ocinet::host::supervision`) restarts it if it dies; leaving, it tells the keeper first.
//!
//! The cluster is watched: a host joining or leaving (or its lease running out) wakes the
//! agent, which then reads every block and programs the tunnels to match. The blocks are read
//! only then and when the watch is made (again): an idle cluster asks etcd for nothing but the
//! leases' renewals. Once a second the agent counts its host's containers, renews the lease
//! when due and makes a lost connection or watch again. etcd down: the host keeps its block and
//! tunnels and retries; a block lost meanwhile is taken again when etcd is back.

use std::time::{Duration, Instant};

use etcd_client::WatchStream;
use ipnet::{IpNet, Ipv4Net};
use ocinet::context::{Context, Options};
use ocinet::host::supervision::{StateDirs, Supervised, Supervision};
use ocinet::network::Network;
use ocinet::overlay::state::{format_mac, in_use, try_lock_network, vtep_mac, OverlayDir};
use tokio::signal::unix::{signal, SignalKind};

use crate::blocks::Member;
use crate::cluster::{self, Cluster};
use crate::error::{AgentError, Result};
use crate::host_block::{host_block, preferred_block};
use crate::lease::{self, LeaseAction, LeaseDue, Start};
use crate::peers::wanted_peers;
use crate::ready::Ready;
use crate::tunnels::Tunnels;
use crate::underlay;
use crate::watch::{self, WatchAction};

const TICK: Duration = Duration::from_secs(1);

pub struct Args {
    pub options: Options,
    pub network: String,
}

pub fn run(args: &Args, ready: &mut Ready, supervision: &Supervision) -> Result<()> {
    let ctx = Context::open(&args.options)?;
    let network = ctx
        .networks
        .load(&args.network)?
        .filter(|n| n.overlay.is_some())
        .ok_or_else(|| AgentError::Config {
            network: args.network.clone(),
            reason: format!(
                "no overlay network of that name in {}",
                ctx.networks.path_of(&args.network).display()
            ),
        })?;
    let dir = OverlayDir::open(&ctx.root, &network.name)?;
    // One agent per network and state root: a second one waits here for the first to leave.
    let _life = dir.lock_agent()?;
    dir.write_agent()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| AgentError::Underlay(format!("cannot start the agent's runtime: {e}")))?;
    let life = Life {
        ready,
        supervision,
        dirs: StateDirs::capture(
            &ocinet::overlay::agent::supervised(&args.options, &network.name).dirs(),
        ),
    };
    let result = runtime.block_on(serve(&ctx, &network, &dir, life));
    let _ = dir.remove_agent();
    if result.is_ok() {
        // Left on purpose: the keeper is not to start another.
        supervision.leaving();
    }
    result
}

/// The agent's ties outside its network: the word to the hook that started it, its keeper,
/// and the directories whose removal ends it.
struct Life<'a> {
    ready: &'a mut Ready,
    supervision: &'a Supervision,
    dirs: StateDirs,
}

/// The IPv4 subnet, whose blocks the hosts lease (`parse_subnets` puts it first and refuses
/// an overlay without one).
fn subnet_of(network: &Network) -> Result<Ipv4Net> {
    match network.primary().subnet {
        IpNet::V4(net) => Ok(net),
        IpNet::V6(net) => Err(AgentError::Config {
            network: network.name.clone(),
            reason: format!("subnet {net} is IPv6: an overlay needs an IPv4 subnet"),
        }),
    }
}

async fn serve(ctx: &Context, network: &Network, dir: &OverlayDir, life: Life<'_>) -> Result<()> {
    let overlay = network.overlay.as_ref().ok_or_else(|| AgentError::Config {
        network: network.name.clone(),
        reason: "not an overlay network".to_string(),
    })?;
    let subnet = subnet_of(network)?;
    let underlay = underlay::find(overlay)?;
    let mac = vtep_mac(underlay.address);
    let me = Member {
        underlay: underlay.address,
        vtep_mac: format_mac(mac),
    };
    // What this host held before (an agent that was killed): kept if etcd cannot be asked.
    let known = preferred_block(dir.block()?, underlay.address, subnet);

    let connected = Cluster::connect(network, subnet, me.clone()).await;
    let (mut cluster, block, mut lease) = match lease::on_start(connected, known)? {
        Start::Acquire {
            mut cluster,
            preferred,
        } => {
            let (block, lease) = cluster.acquire(preferred).await?;
            (Some(cluster), block, Some(lease))
        }
        Start::KeepUntilEtcdAnswers { block, why } => {
            ocinet::stderr_line!("ocinet-agent: {why}; keeping block {block} until etcd answers");
            (None, block, None)
        }
    };
    let host = host_block(network, overlay, block, &underlay, me.vtep_mac.clone());
    let mut tunnels = Tunnels::up(
        overlay,
        &host,
        (&underlay, subnet),
        mac,
        dir.peers().unwrap_or_default(),
    )?;
    dir.write_block(&host)?;
    life.ready.ok();
    // The pipe is closed: the keeper started now does not hold it.
    life.supervision.serving();
    ocinet::stderr_line!(
        "ocinet-agent: network {} holds block {block} on {} ({}, mtu {})",
        network.name,
        underlay.address,
        underlay.interface,
        host.mtu
    );

    let mut terminate = signal(SignalKind::terminate())
        .map_err(|e| AgentError::Underlay(format!("cannot catch SIGTERM: {e}")))?;
    let mut interrupt = signal(SignalKind::interrupt())
        .map_err(|e| AgentError::Underlay(format!("cannot catch SIGINT: {e}")))?;
    let renew_every = lease::renew_every(overlay.ttl);
    let mut renewed = Instant::now();
    let mut ticks = tokio::time::interval(TICK);
    let mut watch: Option<WatchStream> = None;
    // The first round reads every block (with the watch it makes).
    let mut read_blocks = true;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            event = watch::next_event(&mut watch) => {
                read_blocks |= watch::calls_for_a_read(event);
                if watch::on_watch_event(event) == WatchAction::Rewatch {
                    // Made again with the next round's connection.
                    watch = None;
                }
            }
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        }
        if life.dirs.gone() {
            ocinet::stderr_line!("ocinet-agent: its state root is gone: leaving");
            break;
        }
        if leave_if_unused(ctx, network, dir)? {
            break;
        }
        if cluster.is_none() {
            match Cluster::connect(network, subnet, me.clone()).await {
                Ok(c) => cluster = Some(c),
                Err(e) => {
                    ocinet::stderr_line!("ocinet-agent: {e}");
                    continue;
                }
            }
        }
        let Some(c) = cluster.as_mut() else { continue };
        if watch.is_none() {
            // Made before the round reads the blocks: no change falls between the two.
            watch = c
                .watch()
                .await
                .map_err(|e| ocinet::stderr_line!("ocinet-agent: {e}"))
                .ok();
            read_blocks = true;
        }
        let round = Round {
            network,
            block,
            underlay: underlay.address,
            renew_every,
        };
        match tend(
            c,
            &round,
            read_blocks,
            &mut lease,
            &mut renewed,
            &mut tunnels,
            dir,
        )
        .await
        {
            Ok(()) => read_blocks = false,
            Err(e) => {
                ocinet::stderr_line!("ocinet-agent: {e}");
                // Asked again from a new connection (to the next member, with a new watch,
                // then a read) next time.
                cluster::skip_member();
                cluster = None;
                watch = None;
            }
        }
    }
    if let Some(lease) = lease {
        // The other hosts drop this one now rather than at the lease's end: asked over a new
        // connection when the last round lost the old one.
        if cluster.is_none() {
            cluster = Cluster::connect(network, subnet, me.clone()).await.ok();
        }
        if let Some(c) = cluster.as_mut() {
            c.release(lease).await;
        }
    }
    let _ = dir.write_peers(&[]);
    tunnels.down(&host.bridge)?;
    ocinet::stderr_line!("ocinet-agent: network {} left this host", network.name);
    Ok(())
}

/// What every round with etcd needs to know of this host.
struct Round<'a> {
    /// Each peer's IPv6 block is derived from its IPv4 block by the network's subnets.
    network: &'a Network,
    block: Ipv4Net,
    underlay: std::net::Ipv4Addr,
    renew_every: Duration,
}

/// One round with etcd: the lease renewed when due (or the block taken again when it was
/// lost), then, when `read_blocks` or the block was taken again, the tunnels made to match the
/// other hosts' blocks.
async fn tend(
    cluster: &mut Cluster,
    round: &Round<'_>,
    read_blocks: bool,
    lease: &mut Option<i64>,
    renewed: &mut Instant,
    tunnels: &mut Tunnels,
    dir: &OverlayDir,
) -> Result<()> {
    let take_block = match lease::lease_due(*lease, renewed.elapsed(), round.renew_every) {
        LeaseDue::Held => false,
        LeaseDue::TakeBlock => true,
        LeaseDue::Renew(id) => match lease::on_keep_alive(cluster.keep_alive(id).await) {
            LeaseAction::Renewed => {
                *renewed = Instant::now();
                false
            }
            LeaseAction::TakeBlockAgain => true,
            LeaseAction::Retry(e) => return Err(e),
        },
    };
    if take_block {
        let (got, id) = cluster.acquire(Some(round.block)).await?;
        if let Err(e) = lease::check_retaken(round.block, got) {
            cluster.release(id).await;
            return Err(e);
        }
        *lease = Some(id);
        *renewed = Instant::now();
    } else if !read_blocks {
        return Ok(());
    }
    let peers = wanted_peers(
        cluster.blocks().await?,
        round.block,
        round.underlay,
        round.network,
    );
    for problem in tunnels.reconcile(&peers)? {
        ocinet::stderr_line!("ocinet-agent: {problem}");
    }
    dir.write_peers(&peers)?;
    Ok(())
}

/// True (and the block file gone) when no live container of the network is left on this
/// host. Decided under the network's lease lock: a setup holds it from its plan until its
/// record and lease are written, so none is missed.
fn leave_if_unused(ctx: &Context, network: &Network, dir: &OverlayDir) -> Result<bool> {
    if in_use(ctx, &network.name)? {
        return Ok(false);
    }
    let Some(_held) = try_lock_network(&ctx.root, &network.name)? else {
        return Ok(false);
    };
    if in_use(ctx, &network.name)? {
        return Ok(false);
    }
    dir.remove_block()?;
    Ok(true)
}
