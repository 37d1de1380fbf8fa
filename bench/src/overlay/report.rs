//! The overlay run's numbers: JSON for results-overlay.json, a Markdown table for
//! bench/README.md.

use std::time::Duration;

use serde::Serialize;

use super::iperf::Throughput;
use crate::report::Stats;

#[derive(Debug, Serialize)]
pub struct Setups {
    pub bridge_setup: Stats,
    pub overlay_setup: Stats,
    pub dual_overlay_setup: Stats,
    pub bridge_teardown: Stats,
    pub overlay_teardown: Stats,
    pub dual_overlay_teardown: Stats,
}

impl Setups {
    /// From each lane's samples: bridge, overlay, dual-stack overlay.
    pub fn new(setup: &[Vec<Duration>; 3], teardown: &[Vec<Duration>; 3]) -> Setups {
        Setups {
            bridge_setup: Stats::of(&setup[0]),
            overlay_setup: Stats::of(&setup[1]),
            dual_overlay_setup: Stats::of(&setup[2]),
            bridge_teardown: Stats::of(&teardown[0]),
            overlay_teardown: Stats::of(&teardown[1]),
            dual_overlay_teardown: Stats::of(&teardown[2]),
        }
    }
}

/// A host that joined with its first container.
#[derive(Debug, Serialize)]
pub struct Join {
    pub host: String,
    /// The hook's createRuntime, the agent's start and block lease included.
    pub first_setup_ms: f64,
    /// From the hook's spawn until the agent wrote its pid file (it runs, its config is read)
    /// and its block file (block leased, VXLAN device up): file times, to the kernel's clock
    /// tick (4 ms here).
    pub agent_started_ms: f64,
    pub block_held_ms: f64,
    /// From the setup's return until host 1's container got an answer from the new one.
    pub reached_ms: f64,
    /// Host 1's peers once both answered (all hosts present but itself).
    pub peers_of_h1: usize,
    pub leave: Option<Leave>,
}

/// The same host's last container going.
#[derive(Debug, Serialize)]
pub struct Leave {
    pub poststop_ms: f64,
    /// From the poststop's return until the agent's process was gone.
    pub agent_left_ms: f64,
    /// From the poststop's return until host 1's agent no longer listed the host.
    pub dropped_by_h1_ms: f64,
    pub processes_left: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct ThroughputRun {
    pub overlay: Throughput,
    pub underlay: Throughput,
}

#[derive(Debug, Default, Serialize)]
pub struct Leaks {
    pub processes: Vec<String>,
    pub etcd_keys: Vec<String>,
    pub links: Vec<String>,
    pub files: usize,
}

#[derive(Debug, Serialize)]
pub struct OverlayReport {
    pub machine: String,
    pub containers: usize,
    pub setups: Setups,
    /// Host 1's first container: the cluster's first host, no peer yet.
    pub first_in_cluster_ms: f64,
    pub joins: Vec<Join>,
    pub throughput: Vec<ThroughputRun>,
    pub leaks: Leaks,
    /// Every agent's log lines beyond its block and its leaving (errors, tunnels it could not
    /// program), by host.
    pub agent_log: Vec<String>,
    pub hook_peak_rss_kib: u64,
}

fn p50_p90(s: &Stats) -> String {
    format!("{:.2} / {:.2}", s.p50_ms, s.p90_ms)
}

/// Median, minimum and maximum.
fn summary(mut values: Vec<f64>) -> String {
    values.sort_by(f64::total_cmp);
    match values.as_slice() {
        [] => "n/a".to_string(),
        v => format!("{:.1} ({:.1}-{:.1})", v[v.len() / 2], v[0], v[v.len() - 1]),
    }
}

impl OverlayReport {
    pub fn table(&self) -> String {
        let s = &self.setups;
        let mut t = format!(
            "Overlay, N = {} containers per lane on host 1; {}\n\n",
            self.containers, self.machine
        );
        t += "| host 1 (holds its block) | setup p50 / p90 ms | teardown p50 / p90 ms |\n";
        t += "| --- | --- | --- |\n";
        t += &format!(
            "| bridge | {} | {} |\n| overlay | {} | {} |\n| overlay, dual-stack | {} | {} |\n",
            p50_p90(&s.bridge_setup),
            p50_p90(&s.bridge_teardown),
            p50_p90(&s.overlay_setup),
            p50_p90(&s.overlay_teardown),
            p50_p90(&s.dual_overlay_setup),
            p50_p90(&s.dual_overlay_teardown)
        );
        t += &format!(
            "\noverlay - bridge setup p50: {:+.2} ms (p90 {:+.2} ms); dual-stack overlay - overlay: {:+.2} ms (p90 {:+.2} ms)\n",
            s.overlay_setup.p50_ms - s.bridge_setup.p50_ms,
            s.overlay_setup.p90_ms - s.bridge_setup.p90_ms,
            s.dual_overlay_setup.p50_ms - s.overlay_setup.p50_ms,
            s.dual_overlay_setup.p90_ms - s.overlay_setup.p90_ms
        );

        t += "\n| host joins | first setup ms | of which: agent runs / block held ms | reachable from host 1 ms | leaves: agent gone / dropped by host 1 ms |\n";
        t += "| --- | --- | --- | --- | --- |\n";
        for j in &self.joins {
            let leave = j.leave.as_ref().map_or("(stays)".to_string(), |l| {
                format!("{:.0} / {:.0}", l.agent_left_ms, l.dropped_by_h1_ms)
            });
            t += &format!(
                "| {} | {:.1} | {:.0} / {:.0} | {:.0} | {leave} |\n",
                j.host, j.first_setup_ms, j.agent_started_ms, j.block_held_ms, j.reached_ms
            );
        }
        let of = |f: fn(&Join) -> f64| summary(self.joins.iter().map(f).collect());
        let leaves: Vec<&Leave> = self.joins.iter().filter_map(|j| j.leave.as_ref()).collect();
        t += &format!(
            "| median (min-max) | {} | {} / {} | {} | {} / {} |\n",
            of(|j| j.first_setup_ms),
            of(|j| j.agent_started_ms),
            of(|j| j.block_held_ms),
            of(|j| j.reached_ms),
            summary(leaves.iter().map(|l| l.agent_left_ms).collect()),
            summary(leaves.iter().map(|l| l.dropped_by_h1_ms).collect()),
        );
        t += &format!(
            "\nHost 1's first container (first host of the cluster): {:.1} ms\n",
            self.first_in_cluster_ms
        );

        t += "\n| iperf3 run | container to container Gbit/s (retr) | host to host Gbit/s (retr) | ratio |\n";
        t += "| --- | --- | --- | --- |\n";
        for (i, r) in self.throughput.iter().enumerate() {
            t += &format!(
                "| {} | {:.2} ({}) | {:.2} ({}) | {:.0}% |\n",
                i + 1,
                r.overlay.gbit_s,
                r.overlay.retransmits,
                r.underlay.gbit_s,
                r.underlay.retransmits,
                100.0 * r.overlay.gbit_s / r.underlay.gbit_s
            );
        }
        let overlay = summary(self.throughput.iter().map(|r| r.overlay.gbit_s).collect());
        let underlay = summary(self.throughput.iter().map(|r| r.underlay.gbit_s).collect());
        let ratio = summary(
            self.throughput
                .iter()
                .map(|r| 100.0 * r.overlay.gbit_s / r.underlay.gbit_s)
                .collect(),
        );
        t += &format!("| median (min-max) | {overlay} | {underlay} | {ratio} |\n");

        let l = &self.leaks;
        t += &format!(
            "\nLeft after the last containers went: processes {:?}, etcd keys {:?}, links {:?}, lease/record/claim files {}; on hosts that left: processes {:?}\n",
            l.processes, l.etcd_keys, l.links, l.files,
            leaves.iter().flat_map(|l| l.processes_left.iter()).collect::<Vec<_>>()
        );
        if !self.agent_log.is_empty() {
            t += "\nThe agents logged:\n\n";
            for line in &self.agent_log {
                t += &format!("    {line}\n");
            }
        }
        t += &format!(
            "\nocinet-hook peak RSS: {:.1} MiB\n",
            self.hook_peak_rss_kib as f64 / 1024.0
        );
        t
    }
}
