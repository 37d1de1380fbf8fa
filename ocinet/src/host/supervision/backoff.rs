//! How long a keeper waits before it starts a helper again: at once after a helper that had
//! run a while, longer and longer while it keeps dying soon after its start (a crash loop
//! costs a start every 30 s at most, not a spinning core).

use std::time::Duration;

/// A helper that ran this long was not crashing in a loop: the next restart is at once.
pub(crate) const STABLE: Duration = Duration::from_secs(2);
/// The wait after the second quick death in a row; doubled for each one after it.
const FIRST: Duration = Duration::from_millis(500);
/// The longest wait.
const LONGEST: Duration = Duration::from_secs(30);

/// Deaths soon after a start, in a row.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    quick: u32,
}

impl Backoff {
    /// The wait before the next start, after a death `ran` after its start (zero for a start
    /// that failed, `Duration::MAX` when unknown: a helper the keeper did not start).
    pub(crate) fn after(&mut self, ran: Duration) -> Duration {
        if ran >= STABLE {
            self.quick = 0;
            return Duration::ZERO;
        }
        self.quick = self.quick.saturating_add(1);
        let doublings = self.quick - 1;
        match doublings {
            // The first quick death may be a kill right after a restart: not yet a loop.
            0 => Duration::ZERO,
            n => FIRST
                .checked_mul(1 << (n - 1).min(16))
                .map_or(LONGEST, |d| d.min(LONGEST)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_helper_that_ran_a_while_is_restarted_at_once_and_a_crash_loop_backs_off_to_30_s() {
        let mut backoff = Backoff::default();
        assert_eq!(backoff.after(Duration::MAX), Duration::ZERO);
        assert_eq!(backoff.after(Duration::from_secs(3600)), Duration::ZERO);
        let waits: Vec<f64> = (0..10)
            .map(|_| backoff.after(Duration::from_millis(100)).as_secs_f64())
            .collect();
        assert_eq!(
            waits,
            [0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0],
            "failed starts and quick deaths"
        );
        assert_eq!(backoff.after(Duration::ZERO), LONGEST);
        // Two seconds of service end the loop: the next death is restarted at once.
        assert_eq!(backoff.after(STABLE), Duration::ZERO);
        assert_eq!(backoff.after(Duration::from_millis(10)), Duration::ZERO);
        assert_eq!(backoff.after(Duration::from_millis(10)), FIRST);
        // No overflow however long it loops.
        for _ in 0..100 {
            assert!(backoff.after(Duration::ZERO) <= LONGEST);
        }
    }
}
