//! Percentiles, the table (Markdown, pasted into bench/README.md) and the JSON report.

use std::time::Duration;

use serde::Serialize;

use crate::backend::Leaks;
use crate::exec::Usage;
use crate::reach::Reach;

#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub n: usize,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub max_ms: f64,
}

impl Stats {
    pub fn of(samples: &[Duration]) -> Stats {
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        let at = |q: f64| {
            if ms.is_empty() {
                f64::NAN
            } else {
                ms[((ms.len() as f64 * q) as usize).min(ms.len() - 1)]
            }
        };
        Stats {
            n: ms.len(),
            p50_ms: at(0.5),
            p90_ms: at(0.9),
            max_ms: ms.last().copied().unwrap_or(f64::NAN),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct BackendReport {
    pub name: &'static str,
    pub setup: Stats,
    pub teardown: Stats,
    /// Setup of the first and last 10% of containers: does cost grow with their number?
    pub setup_first_10pct: Stats,
    pub setup_last_10pct: Stats,
    pub leaks: Leaks,
    /// With every container set up (`--reach`), whether each answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reach: Option<Reach>,
    /// The hook's own CPU time and context switches in the first and last 10% of setups.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub setup_usage: Option<[UsageSummary; 2]>,
    /// Every call in start order, in ms (the plot's input).
    pub setup_ms: Vec<f64>,
    pub teardown_ms: Vec<f64>,
}

impl BackendReport {
    pub fn new(
        name: &'static str,
        setup: &[Duration],
        teardown: &[Duration],
        leaks: Leaks,
    ) -> Self {
        let tenth = setup.len().div_ceil(10);
        BackendReport {
            name,
            setup: Stats::of(setup),
            teardown: Stats::of(teardown),
            setup_first_10pct: Stats::of(&setup[..tenth]),
            setup_last_10pct: Stats::of(&setup[setup.len() - tenth..]),
            leaks,
            reach: None,
            setup_usage: None,
            setup_ms: setup.iter().map(millis).collect(),
            teardown_ms: teardown.iter().map(millis).collect(),
        }
    }
}

/// Where a share of setups spent their time: p50 of wall and CPU, the mean of the switches.
#[derive(Debug, Clone, Serialize)]
pub struct UsageSummary {
    pub wall_p50_ms: f64,
    pub cpu_p50_ms: f64,
    pub voluntary_switches_mean: f64,
    pub involuntary_switches_mean: f64,
}

impl BackendReport {
    /// Adds the first and last 10% of `usage` (one per setup, in order) beside `setup`.
    pub fn with_usage(mut self, setup: &[Duration], usage: &[Usage]) -> Self {
        if usage.len() != setup.len() || usage.is_empty() {
            return self;
        }
        let tenth = usage.len().div_ceil(10);
        let summary = |range: std::ops::Range<usize>| {
            let cpu: Vec<Duration> = usage[range.clone()].iter().map(|u| u.cpu).collect();
            let mean = |f: fn(&Usage) -> u64| {
                usage[range.clone()]
                    .iter()
                    .map(|u| f(u) as f64)
                    .sum::<f64>()
                    / range.len() as f64
            };
            UsageSummary {
                wall_p50_ms: Stats::of(&setup[range.clone()]).p50_ms,
                cpu_p50_ms: Stats::of(&cpu).p50_ms,
                voluntary_switches_mean: mean(|u| u.voluntary_switches),
                involuntary_switches_mean: mean(|u| u.involuntary_switches),
            }
        };
        self.setup_usage = Some([summary(0..tenth), summary(usage.len() - tenth..usage.len())]);
        self
    }
}

/// Milliseconds, rounded to the microsecond (the JSON stays readable).
fn millis(d: &Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

#[derive(Debug, Serialize)]
pub struct EndToEnd {
    /// `runc run` of busybox `true`, whole command.
    pub runc_bridge: Stats,
    pub runc_routed: Stats,
    pub runc_none: Stats,
    pub runc_no_hook: Stats,
    /// One container publishing a 1,000-port range.
    pub range_1000_setup: Stats,
    pub range_1000_teardown: Stats,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub machine: String,
    pub containers: usize,
    pub backends: Vec<BackendReport>,
    /// ocinet on its own (a bridge and a routed network), before the interleaved run (same N).
    pub ocinet_alone: Vec<BackendReport>,
    /// Setup p50 of the other backend divided by ocinet's.
    pub cni_over_ocinet: f64,
    pub netavark_over_ocinet: f64,
    /// The CNI chain's p50 over ocinet-cni's: (ADD, DEL); `None` when it did not run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cni_over_ocinet_cni: Option<(f64, f64)>,
    /// ocinet's setup p50 on a routed network over its p50 on a bridge network.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routed_over_bridge: Option<f64>,
    /// `--dual-stack`: ocinet's setup p50 on a dual-stack network minus its p50 on an
    /// IPv4-only one (ms); the other backends are dual-stack and compared with the former.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dual_minus_ipv4_ms: Option<f64>,
    pub end_to_end: Option<EndToEnd>,
    pub hook_peak_rss_kib: u64,
}

fn row(s: &Stats) -> String {
    format!("{:.2} / {:.2}", s.p50_ms, s.p90_ms)
}

impl Report {
    pub fn table(&self) -> String {
        let mut t = format!(
            "N = {} containers per backend, one published TCP port each; {}\n\n",
            self.containers, self.machine
        );
        t += "| backend | setup p50 / p90 ms | teardown p50 / p90 ms | setup first 10% / last 10% p50 ms | leaks: links, rules, leases |\n";
        t += "| --- | --- | --- | --- | --- |\n";
        for b in self.backends.iter().chain(&self.ocinet_alone) {
            let leases = b.leaks.leases.map_or("n/a".to_string(), |l| l.to_string());
            t += &format!(
                "| {} | {} | {} | {:.2} / {:.2} | {}, {}, {} |\n",
                b.name,
                row(&b.setup),
                row(&b.teardown),
                b.setup_first_10pct.p50_ms,
                b.setup_last_10pct.p50_ms,
                b.leaks.links,
                b.leaks.rules,
                leases
            );
        }
        for b in self.backends.iter().chain(&self.ocinet_alone) {
            if let Some(r) = &b.reach {
                t += &format!(
                    "\n{}: with all {} set up, unreachable from the host {}, from a peer {}, through the published port {} ({} connections needed a retry)",
                    b.name, r.containers, r.unreachable_from_host, r.unreachable_from_peer, r.unreachable_published, r.retried
                );
            }
        }
        if self
            .backends
            .iter()
            .chain(&self.ocinet_alone)
            .any(|b| b.reach.is_some())
        {
            t += "\n";
        }
        let with_usage: Vec<_> = self
            .backends
            .iter()
            .chain(&self.ocinet_alone)
            .filter_map(|b| b.setup_usage.as_ref().map(|u| (b.name, u)))
            .collect();
        if !with_usage.is_empty() {
            t += "\n| hook setups, first / last 10% | wall p50 ms | CPU p50 ms | waits (voluntary switches, mean) | preemptions (mean) |\n| --- | --- | --- | --- | --- |\n";
            for (name, [first, last]) in with_usage {
                t += &format!(
                    "| {name} | {:.2} / {:.2} | {:.2} / {:.2} | {:.1} / {:.1} | {:.1} / {:.1} |\n",
                    first.wall_p50_ms,
                    last.wall_p50_ms,
                    first.cpu_p50_ms,
                    last.cpu_p50_ms,
                    first.voluntary_switches_mean,
                    last.voluntary_switches_mean,
                    first.involuntary_switches_mean,
                    last.involuntary_switches_mean
                );
            }
        }
        if !self.ocinet_alone.is_empty() {
            t += "\n`ocinet-alone`, `ocinet-alone-routed`: the same run with only ocinet on the machine (a bridge and a routed network, interleaved), before the interleaved \
run (no other backend's links and namespaces beside ocinet's, whose state makes the kernel work in the hook's calls cost more).\n";
        }
        if let Some(extra) = self.dual_minus_ipv4_ms {
            t += &format!(
                "\nDual stack: ocinet setup p50 is {extra:+.2} ms against IPv4 only; {:.1}x faster than the CNI chain and {:.1}x faster than netavark, all dual-stack.\n",
                self.cni_over_ocinet, self.netavark_over_ocinet
            );
        } else if self.cni_over_ocinet.is_finite() {
            t += &format!(
                "\nocinet setup p50 is {:.1}x faster than the CNI chain and {:.1}x faster than netavark.\n",
                self.cni_over_ocinet, self.netavark_over_ocinet
            );
            if let Some((add, del)) = self.cni_over_ocinet_cni {
                t += &format!(
                    "ocinet-cni ADD p50 is {add:.1}x faster than the CNI chain (bridge + host-local + portmap), DEL {del:.1}x.\n"
                );
            }
            if let Some(ratio) = self.routed_over_bridge {
                t += &format!(
                    "ocinet on a routed network: setup p50 {ratio:.2}x its p50 on a bridge network.\n"
                );
            }
        } else if let [a, b] = &self.backends[..] {
            // The A/B mode: two ocinet builds.
            t += &format!(
                "\nsetup p50 B/A: {:.3} ({:.2} -> {:.2} ms)\n",
                b.setup.p50_ms / a.setup.p50_ms,
                a.setup.p50_ms,
                b.setup.p50_ms
            );
        }
        if let Some(e) = &self.end_to_end {
            t += "\n| ocinet only | p50 / p90 ms |\n| --- | --- |\n";
            for (what, s) in [
                ("`runc run` busybox `true`, bridge", &e.runc_bridge),
                ("`runc run` busybox `true`, routed", &e.runc_routed),
                ("`runc run` busybox `true`, none", &e.runc_none),
                ("`runc run` busybox `true`, no hook", &e.runc_no_hook),
                ("publish 1,000-port range: setup", &e.range_1000_setup),
                ("publish 1,000-port range: teardown", &e.range_1000_teardown),
            ] {
                t += &format!("| {what} (n={}) | {} |\n", s.n, row(s));
            }
        }
        t += &format!(
            "\nocinet-hook peak RSS: {:.1} MiB\n",
            self.hook_peak_rss_kib as f64 / 1024.0
        );
        t
    }
}
