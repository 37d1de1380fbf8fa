//! Facts about processes and this boot, read from /proc.

use std::fs;

use crate::error::{IoContext, Result};

/// This boot's id: records and leases carry it, so those of an earlier boot are known stale.
pub fn boot_id() -> Result<String> {
    let id = fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .context(|| "cannot read /proc/sys/kernel/random/boot_id".to_string())?;
    Ok(id.trim().to_string())
}

/// The start time of `pid` in clock ticks since boot (field 22 of `/proc/<pid>/stat`). With the
/// pid it identifies a process for good: a reused pid has another start time.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_start_time(&stat)
}

fn parse_start_time(stat: &str) -> Option<u64> {
    // The command name (field 2) may hold spaces and parentheses: fields resume after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// True if `pid` is still the process that started at `start`, and alive: a zombie (exited,
/// not yet reaped by its parent) keeps its pid and start time but has no namespaces left.
pub fn is_same_process(pid: i32, start: u64) -> bool {
    if pid <= 0 {
        return false;
    }
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    parse_start_time(&stat) == Some(start) && !matches!(parse_state(&stat), Some('Z' | 'X'))
}

/// Field 3 of /proc/<pid>/stat: R, S, D, Z (zombie), X (dead), ...
fn parse_state(stat: &str) -> Option<char> {
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_of_a_stat_line() {
        let stat =
            "1234 (a b) c) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 50";
        assert_eq!(parse_start_time(stat), Some(98765));
        assert_eq!(parse_start_time("garbage"), None);
        assert_eq!(parse_state(stat), Some('S'));
        assert_eq!(parse_state("1 (x) Z 1 1"), Some('Z'));
    }

    #[test]
    fn this_process_is_itself() {
        let me = std::process::id() as i32;
        let start = start_time(me).unwrap();
        assert!(is_same_process(me, start));
        assert!(!is_same_process(me, start + 1));
        assert!(!boot_id().unwrap().is_empty());
    }
}
