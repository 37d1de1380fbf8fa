//! `ocinet-bench`: sets up and tears down N containers (each a process in its own netns, one
//! published TCP port each) with ocinet, the CNI chain and netavark, interleaved round by
//! round, inside a private "host" network namespace; then ocinet-only end-to-end numbers.
//! Run it through `bench/run.sh`. With `--overlay` (through `bench/overlay.sh`), overlay
//! networks across hosts instead (`overlay/`).

mod backend;
mod cni;
mod e2e;
mod exec;
mod fleet;
mod hook;
mod netavark;
mod netns;
mod ocinet;
mod ocinet_cni;
mod overlay;
mod plot;
mod reach;
mod report;

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use backend::Backend;
use exec::Result;
use report::{BackendReport, Report};

const USAGE: &str = "ocinet-bench --hook PATH [--cni-plugin PATH] [--hook-b PATH [--a-before-names]] [--n N] [--out FILE.json] [--table FILE.md] [--plot FILE.svg] [--reach | --reach-routed] \
[--sample-config bundles/bridge/config.json --rootfs bundles/rootfs] [--runc-reps R] [--range-reps R] \
[--overlay [--new-hosts K] [--iperf-runs R] [--iperf-seconds S]] [--dual-stack] [--three-way-routed]";

struct Args {
    n: usize,
    hook: PathBuf,
    /// ocinet-cni, run beside the CNI chain (default: beside the hook, when it is there).
    cni_plugin: Option<PathBuf>,
    /// A second ocinet build: compare the two (A/B) instead of ocinet, CNI and netavark.
    hook_b: Option<PathBuf>,
    /// The A/B mode's first build predates names: its network file has no `dns` field.
    a_before_names: bool,
    out: Option<PathBuf>,
    table: Option<PathBuf>,
    /// The SVG of setup against containers present and of teardowns.
    plot: Option<PathBuf>,
    /// With every container set up, check that each answers (from the host, a peer, and its
    /// published port).
    reach: ReachCheck,
    sample_config: Option<PathBuf>,
    rootfs: Option<PathBuf>,
    runc_reps: usize,
    range_reps: usize,
    /// Overlay networks across hosts (the hook's `ocinet-agent` beside it) instead.
    overlay: bool,
    /// Dual-stack networks instead: ocinet IPv4-only and dual-stack, the CNI chain and
    /// netavark dual-stack.
    dual_stack: bool,
    /// Only three lanes, interleaved: ocinet on a routed network, the CNI chain, netavark
    /// (issue 21's "three-way run" with the driver it asks for; no alone lanes, no runc).
    three_way_routed: bool,
    new_hosts: usize,
    iperf_runs: usize,
    iperf_seconds: u32,
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        n: 100,
        hook: PathBuf::new(),
        cni_plugin: None,
        hook_b: None,
        a_before_names: false,
        out: None,
        table: None,
        plot: None,
        reach: ReachCheck::None,
        sample_config: None,
        rootfs: None,
        runc_reps: 20,
        range_reps: 5,
        overlay: false,
        dual_stack: false,
        three_way_routed: false,
        new_hosts: 10,
        iperf_runs: 5,
        iperf_seconds: 10,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value; {USAGE}"));
        let number = |v: String| v.parse::<usize>().map_err(|e| format!("{flag} {v}: {e}"));
        match flag.as_str() {
            "--n" => a.n = number(value()?)?,
            "--hook" => a.hook = value()?.into(),
            "--hook-b" => a.hook_b = Some(value()?.into()),
            "--a-before-names" => a.a_before_names = true,
            "--cni-plugin" => a.cni_plugin = Some(value()?.into()),
            "--out" => a.out = Some(value()?.into()),
            "--table" => a.table = Some(value()?.into()),
            "--plot" => a.plot = Some(value()?.into()),
            "--reach" => a.reach = ReachCheck::All,
            "--reach-routed" => a.reach = ReachCheck::Routed,
            "--sample-config" => a.sample_config = Some(value()?.into()),
            "--rootfs" => a.rootfs = Some(value()?.into()),
            "--runc-reps" => a.runc_reps = number(value()?)?,
            "--range-reps" => a.range_reps = number(value()?)?,
            "--overlay" => a.overlay = true,
            "--dual-stack" => a.dual_stack = true,
            "--three-way-routed" => a.three_way_routed = true,
            "--new-hosts" => a.new_hosts = number(value()?)?,
            "--iperf-runs" => a.iperf_runs = number(value()?)?,
            "--iperf-seconds" => {
                a.iperf_seconds = u32::try_from(number(value()?)?).map_err(|e| e.to_string())?
            }
            _ => return Err(format!("unknown argument {flag}; {USAGE}")),
        }
    }
    if a.hook.as_os_str().is_empty() {
        return Err(format!("--hook is required; {USAGE}"));
    }
    if a.new_hosts > 190 {
        return Err(
            "--new-hosts must be at most 190: host n has the underlay address 192.0.2.(10+n)"
                .to_string(),
        );
    }
    if !(1..=1022).contains(&a.n) {
        return Err(
            "--n must be 1..=1022: each backend puts its N containers on one bridge, and a Linux bridge takes at most 1023 ports"
                .to_string(),
        );
    }
    a.hook = std::fs::canonicalize(&a.hook).map_err(|e| format!("hook {:?}: {e}", a.hook))?;
    if a.cni_plugin.is_none() {
        a.cni_plugin = a
            .hook
            .parent()
            .map(|d| d.join("ocinet-cni"))
            .filter(|p| p.exists());
    }
    Ok(a)
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ocinet-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn prepare_host() -> Result<()> {
    fleet::check_private_host()?;
    warn_if_profiled();
    exec::output(
        "ip link set lo up",
        Command::new("ip").args(["link", "set", "lo", "up"]),
    )?;
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")
        .map_err(|e| format!("cannot enable forwarding: {e}"))
}

/// A profiler left running (`perf record -a`) slows every backend by 15-40% and skews A/B
/// differences; the numbers would be wrong without any sign of it.
fn warn_if_profiled() {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if matches!(comm.trim(), "perf" | "bpftrace" | "strace") {
            eprintln!(
                "ocinet-bench: warning: {} (pid {}) is running; it inflates every number",
                comm.trim(),
                entry.file_name().to_string_lossy()
            );
        }
    }
}

fn machine() -> String {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let os = std::fs::read_to_string("/etc/os-release")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("PRETTY_NAME=")
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{os}, kernel {}, {cores} cores ({cpu})", kernel.trim())
}

fn run() -> Result<()> {
    let args = parse_args()?;
    prepare_host()?;
    let work = std::env::temp_dir().join(format!("ocinet-bench.{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(|e| format!("cannot create {work:?}: {e}"))?;
    let result = match (&args.hook_b, args.overlay) {
        (_, true) => run_overlay(&args, &work).and_then(|r| Ok((r.table(), to_json(&r)?))),
        (None, false) if args.dual_stack => {
            dual_stack(&args, &work).and_then(|r| Ok((r.table(), to_json(&r)?)))
        }
        (None, false) if args.three_way_routed => three_way_routed(&args, &work)
            .and_then(|r| plot(&args, &r).map(|()| r))
            .and_then(|r| Ok((r.table(), to_json(&r)?))),
        (Some(hook_b), false) => ab(&args, hook_b, &work)
            .and_then(|r| plot(&args, &r).map(|()| r))
            .and_then(|r| Ok((r.table(), to_json(&r)?))),
        (None, false) => bench(&args, &work)
            .and_then(|r| plot(&args, &r).map(|()| r))
            .and_then(|r| Ok((r.table(), to_json(&r)?))),
    };
    let _ = std::fs::remove_dir_all(&work);
    let (table, json) = result?;
    println!("{table}");
    if let Some(path) = &args.table {
        std::fs::write(path, &table).map_err(|e| format!("cannot write {path:?}: {e}"))?;
    }
    if let Some(path) = &args.out {
        std::fs::write(path, json + "\n").map_err(|e| format!("cannot write {path:?}: {e}"))?;
    }
    Ok(())
}

fn plot(args: &Args, report: &Report) -> Result<()> {
    let Some(path) = &args.plot else {
        return Ok(());
    };
    let backends: Vec<&BackendReport> =
        report.backends.iter().chain(&report.ocinet_alone).collect();
    plot::write(path, &report.machine, &backends)
}

fn to_json(report: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string_pretty(report).map_err(|e| e.to_string())
}

fn run_overlay(args: &Args, work: &std::path::Path) -> Result<overlay::OverlayReport> {
    overlay::run(&overlay::Inputs {
        hook: &args.hook,
        work,
        n: args.n,
        new_hosts: args.new_hosts,
        iperf_runs: args.iperf_runs,
        iperf_seconds: args.iperf_seconds,
    })
}

fn bench(args: &Args, work: &std::path::Path) -> Result<Report> {
    let n = args.n;
    // First ocinet alone: no other backend's links and their kernel work (IPv6 timers, MLD,
    // link events under the global rtnl lock) on the machine.
    let mut alone = ocinet::Ocinet::new(&args.hook, work, &ocinet::ALONE)?;
    let mut alone_routed = ocinet::Ocinet::new(&args.hook, work, &ocinet::ALONE_ROUTED)?;
    let (containers, ocinet_alone) =
        interleaved(n, &mut [&mut alone, &mut alone_routed], args.reach)?;
    drop(containers);

    let mut oc = ocinet::Ocinet::new(&args.hook, work, &ocinet::MAIN)?;
    let mut routed = ocinet::Ocinet::new(&args.hook, work, &ocinet::ROUTED)?;
    let mut cni = cni::Cni::new(work, n, false);
    let mut nv = netavark::Netavark::new(work, n, false)?;

    let mut oc_cni = args
        .cni_plugin
        .as_ref()
        .map(|p| ocinet_cni::OcinetCni::new(p, work));
    let mut backends: Vec<&mut dyn Backend> = vec![&mut oc, &mut cni, &mut nv];
    if let Some(oc_cni) = oc_cni.as_mut() {
        backends.push(oc_cni);
    }
    backends.push(&mut routed);
    let (containers, backends) = interleaved(n, &mut backends, args.reach)?;
    drop(containers);

    let end_to_end = match (&args.sample_config, &args.rootfs) {
        (Some(sample_config), Some(rootfs)) => {
            eprintln!("ocinet-bench: runc end-to-end and the 1,000-port range");
            let inputs = e2e::Inputs {
                sample_config,
                rootfs,
                work,
                runc_reps: args.runc_reps,
                range_reps: args.range_reps,
            };
            Some(e2e::run(&inputs, &mut oc, &routed)?)
        }
        _ => None,
    };
    let named = |name: &str| backends.iter().find(|b| b.name == name);
    let p50 = |b: usize| backends[b].setup.p50_ms;
    Ok(Report {
        machine: machine(),
        containers: n,
        cni_over_ocinet: p50(1) / p50(0),
        netavark_over_ocinet: p50(2) / p50(0),
        // ocinet-cni against the chain it replaces, ADD and DEL.
        cni_over_ocinet_cni: named(ocinet_cni::BACKEND).map(|oc_cni| {
            (
                p50(1) / oc_cni.setup.p50_ms,
                backends[1].teardown.p50_ms / oc_cni.teardown.p50_ms,
            )
        }),
        routed_over_bridge: named(ocinet::ROUTED.name).map(|r| r.setup.p50_ms / p50(0)),
        dual_minus_ipv4_ms: None,
        backends,
        ocinet_alone,
        end_to_end,
        hook_peak_rss_kib: oc.hook.max_rss_kib,
    })
}

/// Dual stack: ocinet on an IPv4-only and on a dual-stack network, the CNI chain and netavark
/// dual-stack, interleaved as the main run; the ratios are against ocinet dual-stack.
fn dual_stack(args: &Args, work: &std::path::Path) -> Result<Report> {
    against_others(args, work, &ocinet::DUAL, Some(&ocinet::MAIN), true)
}

/// ocinet on a routed network, the CNI chain and netavark, and nothing else on the host; the
/// ratios are against the routed lane.
fn three_way_routed(args: &Args, work: &std::path::Path) -> Result<Report> {
    against_others(args, work, &ocinet::ROUTED, None, false)
}

/// ocinet's `lane`, the CNI chain and netavark (all dual-stack or none), and `second` last when
/// given, interleaved; the ratios are against `lane`, and with `second` the report gives
/// `lane`'s p50 minus `second`'s.
fn against_others(
    args: &Args,
    work: &std::path::Path,
    lane: &'static ocinet::Lane,
    second: Option<&'static ocinet::Lane>,
    dual_stack: bool,
) -> Result<Report> {
    let n = args.n;
    let mut first = ocinet::Ocinet::new(&args.hook, work, lane)?;
    let mut other = second
        .map(|l| ocinet::Ocinet::new(&args.hook, work, l))
        .transpose()?;
    let mut cni = cni::Cni::new(work, n, dual_stack);
    let mut nv = netavark::Netavark::new(work, n, dual_stack)?;
    let mut backends: Vec<&mut dyn Backend> = vec![&mut first, &mut cni, &mut nv];
    if let Some(other) = other.as_mut() {
        backends.push(other);
    }
    let (containers, backends) = interleaved(n, &mut backends, args.reach)?;
    drop(containers);
    let p50 = |b: usize| backends[b].setup.p50_ms;
    Ok(Report {
        machine: machine(),
        containers: n,
        cni_over_ocinet: p50(1) / p50(0),
        netavark_over_ocinet: p50(2) / p50(0),
        cni_over_ocinet_cni: None,
        routed_over_bridge: None,
        dual_minus_ipv4_ms: second.map(|_| p50(0) - p50(3)),
        ocinet_alone: Vec::new(),
        end_to_end: None,
        hook_peak_rss_kib: first.hook.max_rss_kib,
        backends,
    })
}

/// Which lanes the reachability check covers, with every container set up.
#[derive(Clone, Copy)]
enum ReachCheck {
    None,
    All,
    /// Only routed networks: in a private host at N >= ~500 a bridge lane's neighbour entries
    /// overflow the host-wide table, whose limits only the initial namespace may raise, so a
    /// bridge check there measures the host's settings (and takes an hour of timeouts).
    Routed,
}

/// N rounds of setups, then N of teardowns; in round i each backend wires its container i, who
/// goes first rotating. Leaks are checked while the containers live (their netns going away
/// would delete leaked veths).
fn interleaved(
    n: usize,
    backends: &mut [&mut dyn Backend],
    reach: ReachCheck,
) -> Result<(Vec<fleet::Container>, Vec<BackendReport>)> {
    let k = backends.len();
    eprintln!("ocinet-bench: starting {} container processes", k * n);
    let containers = fleet::spawn(k * n)?;
    let mut setup = vec![Vec::new(); k];
    let mut teardown = vec![Vec::new(); k];
    let mut reached = vec![None; k];
    for (phase, times) in [("setup", &mut setup), ("teardown", &mut teardown)] {
        if phase == "teardown" {
            for (b, backend) in backends.iter().enumerate() {
                let checked = match reach {
                    ReachCheck::None => false,
                    ReachCheck::All => true,
                    ReachCheck::Routed => backend.routed(),
                };
                if checked {
                    reached[b] = reachable(&**backend, n, k, b, &containers)?;
                }
            }
        }
        for i in 0..n {
            for j in 0..k {
                let b = (i + j) % k;
                let c = &containers[k * i + b];
                times[b].push(match phase {
                    "setup" => backends[b].setup(i, c)?,
                    _ => backends[b].teardown(i, c)?,
                });
            }
            progress(phase, i, n);
        }
    }
    let mut reports = Vec::new();
    for (b, backend) in backends.iter().enumerate() {
        let mut report =
            BackendReport::new(backend.name(), &setup[b], &teardown[b], backend.leaks()?);
        if let Some(usage) = backend.setup_usage() {
            report = report.with_usage(&setup[b], usage);
        }
        report.reach = reached[b].take();
        reports.push(report);
    }
    Ok((containers, reports))
}

/// The reachability of backend `b`'s containers (of `k` interleaved), when it names targets.
fn reachable(
    backend: &dyn Backend,
    n: usize,
    k: usize,
    b: usize,
    containers: &[fleet::Container],
) -> Result<Option<reach::Reach>> {
    let mut targets = Vec::with_capacity(n);
    for i in 0..n {
        match backend.target(i)? {
            Some(t) => targets.push((t, &containers[k * i + b])),
            None => return Ok(None),
        }
    }
    eprintln!("ocinet-bench: reachability of {}", backend.name());
    let r = reach::check(&targets)?;
    eprintln!("ocinet-bench: {}: {r:?}", backend.name());
    Ok(Some(r))
}

/// Two ocinet builds, interleaved as the main benchmark interleaves backends.
fn ab(args: &Args, hook_b: &std::path::Path, work: &std::path::Path) -> Result<Report> {
    let hook_b = std::fs::canonicalize(hook_b).map_err(|e| format!("hook {hook_b:?}: {e}"))?;
    let mut a = match args.a_before_names {
        true => ocinet::Ocinet::before_names(&args.hook, work, &ocinet::MAIN)?,
        false => ocinet::Ocinet::new(&args.hook, work, &ocinet::MAIN)?,
    };
    let mut b = ocinet::Ocinet::new(&hook_b, work, &ocinet::SECOND)?;
    let mut backends: [&mut dyn Backend; 2] = [&mut a, &mut b];
    let (containers, backends) = interleaved(args.n, &mut backends, args.reach)?;
    drop(containers);
    Ok(Report {
        machine: machine(),
        containers: args.n,
        cni_over_ocinet: f64::NAN,
        netavark_over_ocinet: f64::NAN,
        cni_over_ocinet_cni: None,
        routed_over_bridge: None,
        dual_minus_ipv4_ms: None,
        backends,
        ocinet_alone: Vec::new(),
        end_to_end: None,
        hook_peak_rss_kib: a.hook.max_rss_kib.max(b.hook.max_rss_kib),
    })
}

fn progress(what: &str, i: usize, n: usize) {
    let step = n.div_ceil(10);
    if (i + 1).is_multiple_of(step) || i + 1 == n {
        eprintln!("ocinet-bench: {what} {}/{n}", i + 1);
    }
}
