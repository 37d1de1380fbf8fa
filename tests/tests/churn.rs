//! Churn: many start/stop cycles through ocinet-shim with random modes (none, bridge with and
//! without ports, a dual-stack network with a port, container:<id>, host), random runtimes and random SIGKILLs, then nothing may
//! remain. A cycle is one container started and stopped. `OCINET_CHURN_CYCLES` (default 500)
//! and `OCINET_CHURN_SEED` set the run.

use ocinet_tests::{Container, Host, Runtime};

/// xorshift64*: a reproducible stream from the seed, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn env_number(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Live<'h> {
    container: Container<'h>,
    /// Can another container join its namespace (none, bridge)?
    joinable: bool,
    bridge: bool,
    /// On the dual-stack network: two leases.
    dual: bool,
}

#[test]
fn churn_with_random_modes_and_kills_leaves_nothing() {
    let cycles = env_number("OCINET_CHURN_CYCLES", 500);
    let seed = env_number("OCINET_CHURN_SEED", 0x5eed_0c1e);
    eprintln!("churn: {cycles} cycles, seed {seed:#x}");
    let mut rng = Rng(seed | 1);
    let host = Host::new("churn");
    host.define_network(
        "d",
        r#"{"subnets": [{"subnet": "10.92.0.0/24"}, {"subnet": "fd00:92::/64"}]}"#,
    );
    let mut live: Vec<Live<'_>> = Vec::new();
    let (mut started, mut killed) = (0u64, 0u64);
    let mut step = 0u64;
    while started < cycles {
        step += 1;
        let cycle = step;
        if !live.is_empty() && (live.len() >= 6 || rng.below(2) == 0) {
            let gone = live.swap_remove(rng.below(live.len()));
            if rng.below(3) == 0 {
                // SIGKILL, then a plain delete: the shim cleans up after the runtime.
                gone.container.kill9();
                gone.container.delete_stopped().unwrap();
                killed += 1;
            } else {
                gone.container.delete().unwrap();
            }
            continue;
        }
        let id = format!("c{cycle}");
        let port = format!("{}:80", 30000 + cycle);
        let targets: Vec<String> = live
            .iter()
            .filter(|l| l.joinable)
            .map(|l| format!("container:{}", l.container.id()))
            .collect();
        let (mode, ports) = match rng.below(6) {
            0 => ("none".to_string(), None),
            1 => ("bridge".to_string(), None),
            2 => ("bridge".to_string(), Some(port)),
            3 => ("host".to_string(), None),
            4 if !targets.is_empty() => (targets[rng.below(targets.len())].clone(), None),
            5 => ("d".to_string(), Some(port)),
            _ => ("bridge".to_string(), None),
        };
        let mut annotations = vec![("io.ocinet.network", mode.as_str())];
        if let Some(p) = &ports {
            annotations.push(("io.ocinet.ports", p));
        }
        let runtime = if rng.below(4) == 0 {
            Runtime::ShimCrun
        } else {
            Runtime::ShimRunc
        };
        let bundle = host.shim_bundle("bridge", &id, &annotations, &[]);
        let container = host
            .run_bundle(runtime, &id, &bundle)
            .unwrap_or_else(|e| panic!("cycle {cycle}: {mode} with {runtime:?}: {e}"));
        started += 1;
        live.push(Live {
            container,
            joinable: mode == "none" || mode == "bridge" || mode == "d",
            bridge: mode == "bridge",
            dual: mode == "d",
        });
        if started % 50 == 0 {
            // Every live bridge container holds exactly one lease, nothing more.
            let bridges = live.iter().filter(|l| l.bridge).count();
            assert_eq!(host.leases("ocinet").len(), bridges, "cycle {cycle}");
            let duals = live.iter().filter(|l| l.dual).count();
            assert_eq!(host.leases("d").len(), 2 * duals, "cycle {cycle}");
        }
    }
    for l in live {
        l.container.delete().unwrap();
    }
    eprintln!("churn: {started} containers started, {killed} killed with SIGKILL");
    assert_eq!(host.leftovers(), Vec::<String>::new());
}
