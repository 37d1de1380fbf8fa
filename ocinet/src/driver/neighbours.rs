//! The host's IPv4 (and, for a dual-stack container, IPv6) neighbour table against the number
//! of containers on it.
//!
//! The table is the whole host's (see `netlink::rtnl::neigh_table`), and a bridge container that talks holds
//! about two of its entries: its own for the gateway, and the host's for it. At the kernel's
//! default limit (`gc_thresh3` 1024) containers past about the 500th find no room while the
//! others' entries are fresh: the kernel logs "neighbor table overflow" and they are
//! unreachable. So a bridge setup that finds the containers near the limits raises them, and
//! says so in the activity log; where it may not (only the initial network namespace may), it
//! logs a warning naming the setting instead.
//!
//! Checked at one setup in `CHECK_EVERY` (by the id's hash), and the limits read only past
//! the kernel's default: counting the records lists a directory, which grows with them. A
//! routed container needs no entry the limits count (its and the host's are permanent).

use super::DriverInfo;
use crate::host::naming;
use crate::kernel::Kernel;
use crate::netlink::rtnl::neigh_table::{Limits, Table};
use crate::state::activity::{self, Entry};

/// One setup in this many looks at the table's limits.
const CHECK_EVERY: u64 = 16;
/// Entries a container holds: its own for the gateway, and the host's for it.
const PER_CONTAINER: u32 = 2;
/// Room for the host's own neighbours and whatever else on it uses the table.
const SPARE: u32 = 256;
/// The kernel's default `gc_thresh2`: below it, the limits are not read.
const KERNEL_THRESH2: u32 = 512;

/// Whether the setup of `id` is one that checks.
pub fn due(id: &str) -> bool {
    naming::stable_hash(id.as_bytes()).is_multiple_of(CHECK_EVERY)
}

/// The entries `containers` need, with the spare room.
pub(crate) fn need(containers: usize) -> u32 {
    u32::try_from(containers)
        .unwrap_or(u32::MAX)
        .saturating_mul(PER_CONTAINER)
        .saturating_add(SPARE)
}

/// The limits to set when `containers` come near `now`'s soft limit: `gc_thresh2` with room
/// for as many containers again (a power of two), `gc_thresh3` twice that, as the kernel's
/// defaults are; never lower than now. `None`: `now` carries them.
pub(crate) fn wanted(containers: usize, now: Limits) -> Option<Limits> {
    let need = need(containers);
    if need < now.thresh2 {
        return None;
    }
    let thresh2 = need
        .saturating_mul(2)
        .checked_next_power_of_two()
        .unwrap_or(u32::MAX)
        .max(now.thresh2);
    Some(Limits {
        thresh1: now.thresh1,
        thresh2,
        thresh3: thresh2.saturating_mul(2).max(now.thresh3),
    })
}

/// At the setup of `info.target` (its record on disk), raises the limits when the containers
/// come near them, or warns where it may not: the IPv4 table's, and the IPv6 one's too when the
/// container has an IPv6 address (`ipv6`; every container counts, as each may be dual-stack).
/// Never fails the setup: a problem is a line in the log.
pub(crate) fn check(info: &mut DriverInfo<'_>, ipv6: bool) {
    let (ctx, kernel) = (info.env.ctx, &mut *info.env.kernel);
    let (id, netns) = (&info.target.id, &info.target.netns);
    if !due(id) {
        return;
    }
    let Ok(containers) = ctx.records.count() else {
        return;
    };
    if need(containers) < KERNEL_THRESH2 {
        return;
    }
    let tables: &[Table] = match ipv6 {
        true => &[Table::Ipv4, Table::Ipv6],
        false => &[Table::Ipv4],
    };
    for &table in tables {
        let note = match kernel.neighbour_limits(netns, table) {
            Ok(now) => match wanted(containers, now) {
                Some(raised) => raise(kernel, table, containers, now, raised),
                None => continue,
            },
            Err(e) => format!("warning: {e}"),
        };
        let entry = Entry::note(id, "neighbour-limits", &note);
        let _ = activity::append(ctx.root.path(), &entry);
    }
}

fn raise(
    kernel: &mut dyn Kernel,
    table: Table,
    containers: usize,
    now: Limits,
    raised: Limits,
) -> String {
    let setting = table.setting();
    let family = table.family_name();
    match kernel.set_neighbour_limits(table, &raised) {
        Ok(true) => format!(
            "raised {setting}2 {} -> {} and {setting}3 {} -> {}: {containers} containers hold up to {} entries of the host's {family} neighbour table",
            now.thresh2, raised.thresh2, now.thresh3, raised.thresh3, need(containers)
        ),
        Ok(false) => format!(
            "warning: {containers} containers hold up to {} entries of the host's {family} neighbour table and {setting}3 is {}: containers past it may be unreachable; only the initial network namespace may raise it: sysctl -w {setting}2={} {setting}3={}",
            need(containers), now.thresh3, raised.thresh2, raised.thresh3
        ),
        Err(e) => format!("warning: {containers} containers near {setting}3 {}: {e}", now.thresh3),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULTS: Limits = Limits {
        thresh1: 128,
        thresh2: 512,
        thresh3: 1024,
    };

    #[test]
    fn the_limits_are_raised_well_before_the_containers_reach_them() {
        assert_eq!(wanted(100, DEFAULTS), None);
        let raised = wanted(128, DEFAULTS).unwrap();
        assert_eq!(
            (raised.thresh1, raised.thresh2, raised.thresh3),
            (128, 1024, 2048)
        );
        // Raised, they carry the next containers until the soft limit nears again, far below
        // the hard one.
        assert_eq!(wanted(383, raised), None);
        assert!(need(383) < raised.thresh3 / 2);
        let again = wanted(384, raised).unwrap();
        assert_eq!((again.thresh2, again.thresh3), (2048, 4096));
        assert!(need(1022) < again.thresh3);
        // Never lowered, whatever the host chose.
        let high = Limits {
            thresh1: 1024,
            thresh2: 100_000,
            thresh3: 50_000,
        };
        assert_eq!(wanted(60_000, high).unwrap().thresh2, 262_144);
        assert_eq!(wanted(60_000, high).unwrap().thresh1, 1024);
        assert_eq!(wanted(usize::MAX, DEFAULTS).unwrap().thresh3, u32::MAX);
    }

    #[test]
    fn about_one_setup_in_sixteen_checks() {
        let due = (0..1600).filter(|i| due(&format!("c{i}"))).count();
        assert!((50..=150).contains(&due), "{due}");
    }
}
