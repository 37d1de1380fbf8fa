//! What is left of the run's hosts and cluster once every container is gone.

use super::etcd::Etcd;
use super::lab::Host;
use super::report::Leaks;
use super::{BRIDGE, BRIDGE_LINK, OVERLAY, OVERLAY6};
use crate::backend::count_files;
use crate::exec::Result;

/// What is left once every container is gone and both agents left: processes in the hosts'
/// namespaces, keys in etcd, links on the hosts beyond the underlay's and the bridge network's
/// bridge (which stays by design, as docker0 does), lease, record and claim files.
pub fn leaks(etcd: &Etcd, hosts: &[&Host]) -> Result<Leaks> {
    let mut leaks = Leaks {
        etcd_keys: etcd.keys("/ocinet/")?,
        ..Leaks::default()
    };
    for h in hosts {
        leaks.processes.extend(
            h.processes()
                .into_iter()
                .map(|(c, _)| format!("{}: {c}", h.name)),
        );
        let links = h.sh("ip -o link show")?;
        leaks.links.extend(
            links
                .lines()
                .filter_map(|l| l.split(':').nth(1))
                .map(|n| n.trim().split('@').next().unwrap_or_default().to_string())
                .filter(|n| !["lo", "eth0", BRIDGE_LINK].contains(&n.as_str()))
                .map(|n| format!("{}: {n}", h.name)),
        );
        let root = h.hook.root();
        leaks.files += [OVERLAY, OVERLAY6, BRIDGE]
            .iter()
            .map(|n| count_files(&root.join("networks").join(n).join("leases"), &|_| true))
            .sum::<usize>()
            + count_files(&root.join("containers"), &|n| n.ends_with(".json"))
            + count_files(&root.join("ports"), &|n| n != "lock");
    }
    Ok(leaks)
}
