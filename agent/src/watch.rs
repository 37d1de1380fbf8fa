//! The watch of every host's block and what the agent does with what it reports: any report
//! starts a round now (which reads every block); a watch that ended, failed or that etcd
//! canceled is dropped, and the next round with etcd makes it again before it reads the blocks,
//! so no change falls between the two.

use etcd_client::WatchStream;

/// What the watch reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WatchEvent {
    /// A host joined or left (or the watch was just made).
    Changed,
    /// etcd canceled the watch (it fell behind a compaction, say): nothing more comes on it,
    /// though its stream stays open.
    Canceled,
    /// The stream ended.
    Ended,
    /// The stream failed (etcd or the connection is gone).
    Failed,
}

/// What the agent does with its watch after an event (a round follows either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WatchAction {
    Keep,
    /// Drop it; the next round with etcd makes a new one.
    Rewatch,
}

pub(crate) fn on_watch_event(event: WatchEvent) -> WatchAction {
    match event {
        WatchEvent::Changed => WatchAction::Keep,
        WatchEvent::Canceled | WatchEvent::Ended | WatchEvent::Failed => WatchAction::Rewatch,
    }
}

/// Waits for the watch's next report. With no watch, never returns (the ticks go on).
pub(crate) async fn next_event(watch: &mut Option<WatchStream>) -> WatchEvent {
    let Some(stream) = watch else {
        return std::future::pending().await;
    };
    match stream.message().await {
        Ok(Some(answer)) if answer.canceled() => WatchEvent::Canceled,
        Ok(Some(_)) => WatchEvent::Changed,
        Ok(None) => WatchEvent::Ended,
        Err(_) => WatchEvent::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_keeps_the_watch_and_a_canceled_ended_or_failed_one_is_made_again() {
        assert_eq!(on_watch_event(WatchEvent::Changed), WatchAction::Keep);
        assert_eq!(on_watch_event(WatchEvent::Canceled), WatchAction::Rewatch);
        assert_eq!(on_watch_event(WatchEvent::Ended), WatchAction::Rewatch);
        assert_eq!(on_watch_event(WatchEvent::Failed), WatchAction::Rewatch);
    }
}
