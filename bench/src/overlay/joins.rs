//! Items 2 and 3: hosts joining the cluster with their first container, and leaving with their
//! last.

use std::time::{Duration, Instant, SystemTime};

use super::containers::{define_networks, place, unplace, Placed};
use super::lab::{Host, Lab};
use super::report::{Join, Leave};
use super::{agent, ms, probe, Inputs, OVERLAY};
use crate::exec::Result;
use crate::{fleet, netns};

/// Longer than a healthy agent ever needs (it polls each second): a wait past it is a failure.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Polls `done` every 5 ms; the time it took, or an error after [`PATIENCE`].
pub fn wait_until(what: &str, since: Instant, mut done: impl FnMut() -> bool) -> Result<Duration> {
    while !done() {
        if since.elapsed() > PATIENCE {
            return Err(format!("{what}: not within {PATIENCE:?}"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(since.elapsed())
}

/// Items 2 and 3: host `n` joins with its first container; the setup's time, then how long
/// until host 1's container gets an answer from the new one (from the moment the setup
/// returned). An answer needs both ways: host 1's agent has programmed the new host (its next
/// poll) and the new host's agent host 1 (its first poll, right after it is ready).
pub fn join(
    lab: &Lab,
    inp: &Inputs,
    n: u8,
    h1: &Host,
    old: &Placed,
) -> Result<(Host, Placed, Join)> {
    let mut host = lab.host(n, inp.hook, inp.work)?;
    define_networks(&host)?;
    let process = fleet::spawn(1)?.remove(0);
    let spawned = SystemTime::now();
    let (c, first_setup) = place(&mut host, &format!("h{n}-a"), OVERLAY, process)?;
    let since = Instant::now();
    let written = |file: &str| -> Result<f64> {
        let at = agent::written(&host, file)?;
        Ok(ms(at.duration_since(spawned).unwrap_or_default()))
    };
    let old_ns = netns::of_pid(old.process.pid())?;
    let answered = probe::until_answered(&old_ns, c.address, Duration::from_millis(5), PATIENCE)
        .map_err(|e| format!("{e}\n{}\n{}", agent::diagnose(h1), agent::diagnose(&host)))?;
    let join = Join {
        host: host.name.clone(),
        first_setup_ms: ms(first_setup),
        agent_started_ms: written("agent.pid")?,
        block_held_ms: written("block.json")?,
        reached_ms: ms(answered - since),
        peers_of_h1: agent::peers_of(h1).len(),
        leave: None,
    };
    Ok((host, c, join))
}

/// The agents poll etcd once a second, and a step that follows another would fall at the same
/// point of their second each time (the bench sees a join or a leave on such a poll): a pause
/// of a random part of a second before each join and each leave spreads them over it.
pub struct Pauses(u64);

impl Pauses {
    pub fn new() -> Pauses {
        let nanos = SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Pauses(nanos | 1)
    }

    pub fn pause(&mut self) {
        // xorshift64*: plenty for spreading a few dozen pauses.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let r = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        std::thread::sleep(Duration::from_millis(r % 1000));
    }
}

/// The host's last container goes: its poststop, then how long until its agent has left and
/// host 1 no longer has it among its peers. Whatever is left of the host then is a leak.
pub fn leave(host: &mut Host, c: &Placed, h1: &Host) -> Result<Leave> {
    let poststop = unplace(host, c)?;
    let since = Instant::now();
    let agent_left = wait_until(&format!("{}'s agent leaves", host.name), since, || {
        !agent::running(host)
    })?;
    let address = host.address.to_string();
    let dropped = wait_until(&format!("host 1 drops {}", host.name), since, || {
        !agent::peers_of(h1).contains(&address)
    })?;
    Ok(Leave {
        poststop_ms: ms(poststop),
        agent_left_ms: ms(agent_left),
        dropped_by_h1_ms: ms(dropped),
        processes_left: host.processes().into_iter().map(|(c, _)| c).collect(),
    })
}
