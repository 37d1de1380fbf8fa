//! `ocinet-bench --overlay`: an overlay network (issue 16) measured in one run, in a lab of
//! cluster hosts (network namespaces on an underlay bridge) with a real etcd:
//! 1. setup and teardown of overlay containers on a host that already holds its block,
//!    interleaved with bridge containers' on the same host;
//! 2. the first container's setup on a new host (the agent's start and its block lease);
//! 3. the time until that container answers a container on an existing host, and, when it
//!    goes, until its host has left and the others dropped it;
//! 4. TCP throughput container to container across two hosts, against host to host over the
//!    same underlay.
//!
//! Method, command and figures: bench/README.md.

mod agent;
mod containers;
mod etcd;
mod iperf;
mod joins;
mod lab;
mod leaks;
mod probe;
mod report;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::exec::Result;
use crate::{fleet, netns};
use containers::{define_networks, place, unplace, Placed};
use etcd::Etcd;
use joins::{join, leave, wait_until, Pauses};
use lab::{Host, Lab};
pub use report::OverlayReport;
use report::{Setups, ThroughputRun};

pub struct Inputs<'a> {
    pub hook: &'a Path,
    pub work: &'a Path,
    /// Containers per lane in the setup comparison.
    pub n: usize,
    /// New hosts that join one after the other (each one's first container, then it leaves).
    pub new_hosts: usize,
    pub iperf_runs: usize,
    pub iperf_seconds: u32,
}

const OVERLAY: &str = "ov";
/// A dual-stack overlay beside it (issue 18): the same setup with an IPv6 address as well.
const OVERLAY6: &str = "ov6";
const BRIDGE: &str = "br";
/// The networks' bridges.
const BRIDGE_LINK: &str = "ocbench0";
const OVERLAY_LINK: &str = "ocov0";
const OVERLAY6_LINK: &str = "ocov1";

pub fn run(inp: &Inputs) -> Result<OverlayReport> {
    let lab = Lab::new()?;
    // On disk, as a real member keeps it; removed when the run ends.
    let etcd = Etcd::start(PathBuf::from(format!(
        "/var/tmp/ocinet-bench-etcd.{}",
        std::process::id()
    )))?;
    let mut h1 = lab.host(1, inp.hook, inp.work)?;
    define_networks(&h1)?;
    eprintln!("ocinet-bench: host 1's first overlay container (its agent starts)");
    let (a, first_in_cluster) = place(&mut h1, "h1-a", OVERLAY, fleet::spawn(1)?.remove(0))?;

    eprintln!("ocinet-bench: host 2 joins");
    let mut pauses = Pauses::new();
    pauses.pause();
    let (mut h2, b, join2) = join(&lab, inp, 2, &h1, &a)?;
    let mut joins = vec![join2];
    let mut agent_log = Vec::new();

    let setups = setups(&mut h1, inp.n)?;

    eprintln!(
        "ocinet-bench: iperf3, {} x {} s each way",
        inp.iperf_runs, inp.iperf_seconds
    );
    let throughput = throughput(&h1, &h2, &a, &b, inp)?;

    for k in 0..inp.new_hosts {
        let n = u8::try_from(3 + k).map_err(|_| "too many hosts")?;
        eprintln!("ocinet-bench: host {n} joins and leaves");
        pauses.pause();
        let (mut host, c, mut join) = join(&lab, inp, n, &h1, &a)?;
        pauses.pause();
        join.leave = Some(leave(&mut host, &c, &h1)?);
        agent_log.extend(agent::complaints(&host));
        joins.push(join);
    }

    eprintln!("ocinet-bench: the last containers go; both hosts leave");
    unplace(&mut h1, &a)?;
    unplace(&mut h2, &b)?;
    let since = Instant::now();
    for h in [&h1, &h2] {
        wait_until(&format!("{}'s agent leaves", h.name), since, || {
            !agent::running(h)
        })?;
    }
    let leaks = leaks::leaks(&etcd, &[&h1, &h2])?;
    for h in [&h1, &h2] {
        agent_log.extend(agent::complaints(h));
    }
    let hook_peak_rss_kib = h1.hook.max_rss_kib.max(h2.hook.max_rss_kib);
    Ok(OverlayReport {
        machine: crate::machine(),
        containers: inp.n,
        setups,
        first_in_cluster_ms: ms(first_in_cluster),
        joins,
        throughput,
        leaks,
        agent_log,
        hook_peak_rss_kib,
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Item 1: on host 1, which holds its block and runs its agent, N bridge, N overlay and N
/// dual-stack overlay containers set up round by round (who goes first rotating), then torn
/// down the same way. The dual-stack overlay's first setup starts its agent.
fn setups(h1: &mut Host, n: usize) -> Result<Setups> {
    const K: usize = 3;
    eprintln!("ocinet-bench: starting {} container processes", K * n);
    let processes = fleet::spawn(K * n)?;
    let lanes = [BRIDGE, OVERLAY, OVERLAY6];
    let mut setup: [Vec<Duration>; K] = Default::default();
    let mut teardown: [Vec<Duration>; K] = Default::default();
    for i in 0..n {
        for j in 0..K {
            let lane = (i + j) % K;
            let id = format!("{}-{i}", lanes[lane]);
            let bundle = h1
                .hook
                .bundle(&id, json!({"io.ocinet.network": lanes[lane]}))?;
            let pid = processes[K * i + lane].pid();
            setup[lane].push(h1.run_hook("createRuntime", &id, pid, &bundle)?);
        }
        crate::progress("setup", i, n);
    }
    for i in 0..n {
        for j in 0..K {
            let lane = (i + j) % K;
            let id = format!("{}-{i}", lanes[lane]);
            let bundle = h1.hook.bundle_dir(&id);
            teardown[lane].push(h1.run_hook("poststop", &id, 0, &bundle)?);
        }
        crate::progress("teardown", i, n);
    }
    Ok(Setups::new(&setup, &teardown))
}

/// Item 4: one TCP stream for `iperf_seconds`, container a (host 1) to container b (host 2)
/// through the overlay, then host 1 to host 2 over the underlay; the two alternate which goes
/// first, so a slow stretch of the machine lands on both alike.
fn throughput(
    h1: &Host,
    h2: &Host,
    a: &Placed,
    b: &Placed,
    inp: &Inputs,
) -> Result<Vec<ThroughputRun>> {
    let a_ns = netns::of_pid(a.process.pid())?;
    let _overlay_server = iperf::Server::start(&netns::of_pid(b.process.pid())?, b.address)?;
    let _underlay_server = iperf::Server::start(h2.ns(), h2.address)?;
    let mut runs = Vec::new();
    for r in 0..inp.iperf_runs {
        let mut overlay = None;
        let mut underlay = None;
        for k in 0..2 {
            if (r + k) % 2 == 0 {
                overlay = Some(iperf::client(&a_ns, b.address, inp.iperf_seconds)?);
            } else {
                underlay = Some(iperf::client(h1.ns(), h2.address, inp.iperf_seconds)?);
            }
        }
        let (Some(overlay), Some(underlay)) = (overlay, underlay) else {
            unreachable!("both ran");
        };
        eprintln!(
            "ocinet-bench: run {}: overlay {:.2} Gbit/s, underlay {:.2} Gbit/s",
            r + 1,
            overlay.gbit_s,
            underlay.gbit_s
        );
        runs.push(ThroughputRun { overlay, underlay });
    }
    Ok(runs)
}
