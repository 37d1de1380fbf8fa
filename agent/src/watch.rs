//! The watch of every host's block and what the agent does with what it reports: a change
//! starts a round now, which reads every block; a watch that ended, failed or that etcd
//! canceled is dropped, and the next round with etcd makes it again and then reads the blocks,
//! so no change falls between the two. Nothing else reads them: an idle cluster asks etcd for
//! nothing but its leases' renewals.

use etcd_client::WatchStream;

/// What the watch reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WatchEvent {
    /// etcd made the watch: nothing has changed yet (the round that made it reads the blocks).
    Created,
    /// A host joined or left, or its lease ran out.
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
        WatchEvent::Created | WatchEvent::Changed => WatchAction::Keep,
        WatchEvent::Canceled | WatchEvent::Ended | WatchEvent::Failed => WatchAction::Rewatch,
    }
}

/// Whether the blocks must be read again after `event`. A watch made again reads them too
/// (see the module's doc).
pub(crate) fn calls_for_a_read(event: WatchEvent) -> bool {
    event == WatchEvent::Changed
}

/// Waits for the watch's next report. With no watch, never returns (the ticks go on).
pub(crate) async fn next_event(watch: &mut Option<WatchStream>) -> WatchEvent {
    let Some(stream) = watch else {
        return std::future::pending().await;
    };
    match stream.message().await {
        Ok(Some(answer)) if answer.canceled() => WatchEvent::Canceled,
        Ok(Some(answer)) if answer.created() && answer.events().is_empty() => WatchEvent::Created,
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
        assert_eq!(on_watch_event(WatchEvent::Created), WatchAction::Keep);
        assert_eq!(on_watch_event(WatchEvent::Changed), WatchAction::Keep);
        assert_eq!(on_watch_event(WatchEvent::Canceled), WatchAction::Rewatch);
        assert_eq!(on_watch_event(WatchEvent::Ended), WatchAction::Rewatch);
        assert_eq!(on_watch_event(WatchEvent::Failed), WatchAction::Rewatch);
    }

    #[test]
    fn only_a_change_calls_for_a_read_of_the_blocks() {
        assert!(calls_for_a_read(WatchEvent::Changed));
        for event in [
            WatchEvent::Created,
            WatchEvent::Canceled,
            WatchEvent::Ended,
            WatchEvent::Failed,
        ] {
            assert!(!calls_for_a_read(event), "{event:?}");
        }
    }
}
