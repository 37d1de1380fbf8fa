//! What the agent does about its block's lease, decided apart from etcd: renew it when due;
//! take the block again when etcd no longer knows the lease; and when etcd does not answer,
//! keep the block, the lease and the tunnels and ask again over a new connection (the hosts'
//! containers keep talking meanwhile, and the lease may well outlive the outage).

use std::time::Duration;

use ipnet::Ipv4Net;

use crate::error::{AgentError, Result};

/// How the agent starts with etcd, given whether it answered.
#[derive(Debug)]
pub(crate) enum Start<C> {
    /// etcd answers: take a block, `preferred` (this host's before a restart) first.
    Acquire {
        cluster: C,
        preferred: Option<Ipv4Net>,
    },
    /// etcd does not answer, but this host held `block` before: its containers hold addresses
    /// of it, so it is kept (with no lease) until etcd answers.
    KeepUntilEtcdAnswers { block: Ipv4Net, why: AgentError },
}

/// `connected` is the first connection to etcd; `known` the block this host held before.
/// An error when etcd does not answer and no block is known: this host has nothing to use.
pub(crate) fn on_start<C>(connected: Result<C>, known: Option<Ipv4Net>) -> Result<Start<C>> {
    match (connected, known) {
        (Ok(cluster), preferred) => Ok(Start::Acquire { cluster, preferred }),
        (Err(why), Some(block)) => Ok(Start::KeepUntilEtcdAnswers { block, why }),
        (Err(why), None) => Err(why),
    }
}

/// How often the lease is renewed: three times per TTL, so that one or two lost renewals do
/// not lose the block; once a second at most.
pub(crate) fn renew_every(ttl: u32) -> Duration {
    Duration::from_secs(u64::from(ttl / 3).max(1))
}

/// What a round does about the lease before it reads the blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LeaseDue {
    /// Renewed recently enough.
    Held,
    /// Time to renew this lease.
    Renew(i64),
    /// No lease (etcd did not answer when the agent started): take the block.
    TakeBlock,
}

pub(crate) fn lease_due(
    lease: Option<i64>,
    since_renewal: Duration,
    renew_every: Duration,
) -> LeaseDue {
    match lease {
        Some(id) if since_renewal >= renew_every => LeaseDue::Renew(id),
        Some(_) => LeaseDue::Held,
        None => LeaseDue::TakeBlock,
    }
}

/// What etcd answered to one renewal of the lease.
#[derive(Debug)]
pub(crate) enum Renewal {
    /// The lease's time to live now: 0 or less when etcd no longer knows it (it ran out while
    /// this host could not renew it).
    Ttl(i64),
    /// The renewal's answers ended without one.
    Ended,
    /// No answer, or an error. (A lease etcd no longer knows is a TTL of 0, also when etcd
    /// says so by an error: `cluster::is_unknown_lease`.)
    Failed(AgentError),
}

/// What the agent does after a renewal.
#[derive(Debug)]
pub(crate) enum LeaseAction {
    /// The lease lives on: go on with the round.
    Renewed,
    /// The lease is gone, and the block with it: take the block again, under a new lease.
    TakeBlockAgain,
    /// etcd did not answer: the round fails with this error; the agent drops its connection
    /// and asks again over a new one, keeping the block, the lease and the tunnels.
    Retry(AgentError),
}

pub(crate) fn on_keep_alive(renewal: Renewal) -> LeaseAction {
    match renewal {
        Renewal::Ttl(ttl) if ttl > 0 => LeaseAction::Renewed,
        Renewal::Ttl(_) | Renewal::Ended => LeaseAction::TakeBlockAgain,
        Renewal::Failed(e) => LeaseAction::Retry(e),
    }
}

/// After the block was taken again: `got` must be `ours`. Another host took it while this one
/// could not renew it; containers here hold addresses of it, so this host keeps it rather than
/// move, and says so (the new lease is given back by the caller).
pub(crate) fn check_retaken(ours: Ipv4Net, got: Ipv4Net) -> Result<()> {
    if got == ours {
        return Ok(());
    }
    Err(AgentError::Etcd {
        endpoints: "the cluster".to_string(),
        reason: format!(
            "block {ours} of this host was taken by another host while etcd was unreachable; restart this host's containers of the network"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(text: &str) -> Ipv4Net {
        text.parse().unwrap()
    }

    fn unreachable() -> AgentError {
        AgentError::Unreachable {
            endpoints: "http://192.0.2.1:2379".to_string(),
            reason: "no answer".to_string(),
        }
    }

    #[test]
    fn etcd_down_at_start_keeps_a_known_block_and_fails_without_one() {
        let block = net("10.200.3.0/24");
        match on_start(Ok("cluster"), Some(block)).unwrap() {
            Start::Acquire { cluster, preferred } => {
                assert_eq!(cluster, "cluster");
                assert_eq!(preferred, Some(block));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            on_start(Ok(()), None).unwrap(),
            Start::Acquire {
                preferred: None,
                ..
            }
        ));
        match on_start::<()>(Err(unreachable()), Some(block)).unwrap() {
            Start::KeepUntilEtcdAnswers { block: kept, why } => {
                assert_eq!(kept, block);
                assert!(matches!(why, AgentError::Unreachable { .. }));
            }
            other => panic!("{other:?}"),
        }
        let failed = on_start::<()>(Err(unreachable()), None).unwrap_err();
        assert!(matches!(failed, AgentError::Unreachable { .. }));
    }

    #[test]
    fn the_lease_is_renewed_three_times_per_ttl_and_taken_when_there_is_none() {
        assert_eq!(renew_every(30), Duration::from_secs(10));
        assert_eq!(renew_every(10), Duration::from_secs(3));
        assert_eq!(
            renew_every(2),
            Duration::from_secs(1),
            "once a second at most"
        );
        let every = renew_every(30);
        assert_eq!(
            lease_due(Some(7), Duration::from_secs(9), every),
            LeaseDue::Held
        );
        assert_eq!(
            lease_due(Some(7), Duration::from_secs(10), every),
            LeaseDue::Renew(7)
        );
        assert_eq!(
            lease_due(Some(7), Duration::from_secs(600), every),
            LeaseDue::Renew(7)
        );
        assert_eq!(lease_due(None, Duration::ZERO, every), LeaseDue::TakeBlock);
    }

    #[test]
    fn a_lost_lease_takes_the_block_again_and_a_silent_etcd_keeps_everything() {
        assert!(matches!(
            on_keep_alive(Renewal::Ttl(30)),
            LeaseAction::Renewed
        ));
        assert!(matches!(
            on_keep_alive(Renewal::Ttl(0)),
            LeaseAction::TakeBlockAgain
        ));
        assert!(matches!(
            on_keep_alive(Renewal::Ttl(-1)),
            LeaseAction::TakeBlockAgain
        ));
        assert!(matches!(
            on_keep_alive(Renewal::Ended),
            LeaseAction::TakeBlockAgain
        ));
        match on_keep_alive(Renewal::Failed(unreachable())) {
            LeaseAction::Retry(e) => assert!(matches!(e, AgentError::Unreachable { .. })),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_block_taken_by_another_host_meanwhile_is_an_error_that_says_what_to_do() {
        let ours = net("10.200.3.0/24");
        assert!(check_retaken(ours, ours).is_ok());
        let said = check_retaken(ours, net("10.200.4.0/24"))
            .unwrap_err()
            .to_string();
        assert!(
            said.contains("block 10.200.3.0/24 of this host was taken"),
            "{said}"
        );
        assert!(said.contains("restart this host's containers"), "{said}");
    }
}
