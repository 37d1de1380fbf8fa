//! The overlay's cluster state in etcd: one key per host's block (named and checked in
//! [`crate::blocks`]), whose value names the host's underlay address and VTEP MAC, attached to
//! an etcd lease that the agent keeps alive: a host that dies loses its block `ttl` seconds
//! later. Everything read here was written by other hosts: keys and values are checked, and
//! what does not check is skipped.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, GetOptions, Identity, PutOptions,
    TlsOptions, Txn, TxnOp, WatchOptions, WatchStream,
};
use ipnet::Ipv4Net;
use ocinet::network::{Etcd, Network};

use crate::blocks::{BlockLayout, Claim, Member};
use crate::error::{AgentError, Result};
use crate::lease::Renewal;

/// How long one request may take before etcd counts as unreachable.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
pub struct Cluster {
    client: Client,
    endpoints: String,
    layout: BlockLayout,
    network: String,
    subnet: Ipv4Net,
    block_len: u8,
    ttl: i64,
    me: Member,
}

impl Cluster {
    pub async fn connect(network: &Network, subnet: Ipv4Net, me: Member) -> Result<Cluster> {
        let overlay = network.overlay.as_ref().ok_or_else(|| AgentError::Config {
            network: network.name.clone(),
            reason: "not an overlay network".to_string(),
        })?;
        let endpoints = overlay.etcd.endpoints.join(",");
        let options = connect_options(&network.name, &overlay.etcd)?;
        let client = connect_to_a_member(&overlay.etcd.endpoints, &options)
            .await
            .map_err(|reason| AgentError::Unreachable {
                endpoints: endpoints.clone(),
                reason,
            })?;
        Ok(Cluster {
            client,
            layout: BlockLayout::new(&network.name, subnet, overlay.block),
            network: network.name.clone(),
            subnet,
            block_len: overlay.block,
            ttl: i64::from(overlay.ttl),
            endpoints,
            me,
        })
    }

    fn failed(&self, e: etcd_client::Error) -> AgentError {
        AgentError::Etcd {
            endpoints: self.endpoints.clone(),
            reason: one_line(&e),
        }
    }

    /// A watch of every host's block: each change (a host joining, leaving, or its lease
    /// running out) arrives as it happens, so the agent need not wait for its next round.
    pub async fn watch(&mut self) -> Result<WatchStream> {
        let options = WatchOptions::new().with_prefix();
        let asked = tokio::time::timeout(
            REQUEST_TIMEOUT,
            self.client.watch(self.layout.prefix(), Some(options)),
        )
        .await
        .map_err(|_| AgentError::Etcd {
            endpoints: self.endpoints.clone(),
            reason: "no answer to a watch".to_string(),
        })?;
        asked.map_err(|e| self.failed(e))
    }

    /// Every host's block, checked; malformed keys and values are skipped.
    pub async fn blocks(&mut self) -> Result<HashMap<Ipv4Net, Member>> {
        let answer = self
            .client
            .get(self.layout.prefix(), Some(GetOptions::new().with_prefix()))
            .await
            .map_err(|e| self.failed(e))?;
        Ok(answer
            .kvs()
            .iter()
            .filter_map(|kv| self.layout.entry(kv.key(), kv.value()))
            .collect())
    }

    /// A block for this host under a new lease: `preferred` (this host's before a restart)
    /// or one it still holds, else the first free one. Create-if-absent transactions: two
    /// hosts never get one block.
    pub async fn acquire(&mut self, preferred: Option<Ipv4Net>) -> Result<(Ipv4Net, i64)> {
        let lease = self
            .client
            .lease_grant(self.ttl, None)
            .await
            .map_err(|e| self.failed(e))?
            .id();
        let taken = self.blocks().await?;
        let value = serde_json::to_vec(&self.me).unwrap_or_default();
        for (block, claim) in self.layout.claims(preferred, &taken, &self.me) {
            let key = self.layout.key(block);
            let compare = match claim {
                Claim::Free => Compare::create_revision(key.as_str(), CompareOp::Equal, 0),
                // Ours from an agent before this one: taken over with the new lease, unless it
                // changed hands meanwhile.
                Claim::TakeOver(holder) => Compare::value(
                    key.as_str(),
                    CompareOp::Equal,
                    serde_json::to_vec(holder).unwrap_or_default(),
                ),
            };
            let txn = Txn::new().when([compare]).and_then([TxnOp::put(
                key.as_str(),
                value.clone(),
                Some(PutOptions::new().with_lease(lease)),
            )]);
            let answer = self.client.txn(txn).await.map_err(|e| self.failed(e))?;
            if answer.succeeded() {
                return Ok((block, lease));
            }
        }
        let _ = self.client.lease_revoke(lease).await;
        Err(AgentError::Full {
            network: self.network.clone(),
            subnet: self.subnet.to_string(),
            block: self.block_len,
        })
    }

    /// Renews the lease and says what etcd answered.
    pub async fn keep_alive(&mut self, lease: i64) -> Renewal {
        match self.renew(lease).await {
            Ok(Some(ttl)) => Renewal::Ttl(ttl),
            Ok(None) => Renewal::Ended,
            Err(e) => Renewal::Failed(e),
        }
    }

    /// The lease's TTL after one renewal; `None` when the answers ended without one; 0 when
    /// etcd says it does not know the lease (it ran out, or etcd lost its data).
    async fn renew(&mut self, lease: i64) -> Result<Option<i64>> {
        let unknown_or_failed = |cluster: &Self, e: etcd_client::Error| match is_unknown_lease(&e) {
            true => Ok(Some(0)),
            false => Err(cluster.failed(e)),
        };
        let (mut keeper, mut answers) = match self.client.lease_keep_alive(lease).await {
            Ok(stream) => stream,
            Err(e) => return unknown_or_failed(self, e),
        };
        if let Err(e) = keeper.keep_alive().await {
            return unknown_or_failed(self, e);
        }
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, answers.message())
            .await
            .map_err(|_| AgentError::Etcd {
                endpoints: self.endpoints.clone(),
                reason: "no answer to a lease renewal".to_string(),
            })?;
        match answer {
            Ok(answer) => Ok(answer.map(|a| a.ttl())),
            Err(e) => unknown_or_failed(self, e),
        }
    }

    /// Gives the block back at once (the other hosts drop this one now, not at the lease's
    /// end).
    pub async fn release(&mut self, lease: i64) {
        let _ = tokio::time::timeout(REQUEST_TIMEOUT, self.client.lease_revoke(lease)).await;
    }
}

/// Whether etcd refused a renewal because it does not know the lease (it ran out, or etcd
/// lost its data). etcd-client turns etcd's first answer with a TTL of 0 into this error
/// rather than handing the TTL over (its own words, the only sign of it), and a server may
/// also end the stream with gRPC's NotFound. The lease is gone for good: the block must be
/// taken again, not the renewal retried.
fn is_unknown_lease(e: &etcd_client::Error) -> bool {
    match e {
        etcd_client::Error::LeaseKeepAliveError(why) => why == "lease not found",
        etcd_client::Error::GRpcStatus(status) => status.code() == tonic::Code::NotFound,
        _ => false,
    }
}

/// The member the agent asks first: the last one that answered, or the one after a member
/// whose connection failed (`skip_member`). One agent serves one network, so one per process.
static FIRST_MEMBER: AtomicUsize = AtomicUsize::new(0);

/// A client of the first member, in turn from [`FIRST_MEMBER`], that answers a small request.
/// One member at a time rather than etcd-client's balanced channel over all of them: that one
/// sends the first request to a member that is down as readily as to one that is up (seen with
/// three members, the leader killed: the connection was refused and the agent could not start).
/// Any member serves: followers forward to the leader.
async fn connect_to_a_member(
    members: &[String],
    options: &ConnectOptions,
) -> std::result::Result<Client, String> {
    let first = FIRST_MEMBER.load(Ordering::Relaxed);
    let mut problems = Vec::new();
    for i in members_in_turn(members.len(), first) {
        let member = &members[i];
        let connected = tokio::time::timeout(
            REQUEST_TIMEOUT + Duration::from_secs(1),
            Client::connect([member.as_str()], Some(options.clone())),
        )
        .await;
        let mut client = match connected {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => {
                problems.push(format!("{member}: {}", one_line(&e)));
                continue;
            }
            Err(_) => {
                problems.push(format!("{member}: no answer"));
                continue;
            }
        };
        // The client connects lazily: one small request tells now whether the member answers.
        match client
            .get("/ocinet/", Some(GetOptions::new().with_count_only()))
            .await
        {
            Ok(_) => {
                FIRST_MEMBER.store(i, Ordering::Relaxed);
                return Ok(client);
            }
            Err(e) => problems.push(format!("{member}: {}", one_line(&e))),
        }
    }
    Err(problems.join("; "))
}

/// The next connection starts with the member after the one whose connection just failed.
pub fn skip_member() {
    FIRST_MEMBER.fetch_add(1, Ordering::Relaxed);
}

/// Indexes of `n` members, starting at `first` (modulo `n`) and wrapping around.
fn members_in_turn(n: usize, first: usize) -> impl Iterator<Item = usize> {
    (0..n).map(move |k| (first + k) % n.max(1))
}

fn connect_options(network: &str, etcd: &Etcd) -> Result<ConnectOptions> {
    let mut options = ConnectOptions::new()
        .with_connect_timeout(REQUEST_TIMEOUT)
        .with_timeout(REQUEST_TIMEOUT);
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|e| AgentError::Config {
            network: network.to_string(),
            reason: format!("cannot read {}: {e}", path.display()),
        })
    };
    if etcd.ca.is_some() || etcd.cert.is_some() {
        let mut tls = TlsOptions::new();
        if let Some(ca) = &etcd.ca {
            tls = tls.ca_certificate(Certificate::from_pem(read(ca)?));
        }
        if let (Some(cert), Some(key)) = (&etcd.cert, &etcd.key) {
            tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
        }
        options = options.with_tls(tls);
    }
    Ok(options)
}

/// A library error as one line (tonic's carry their causes on several).
fn one_line(e: &dyn std::fmt::Display) -> String {
    e.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_asked_in_turn_from_the_one_that_answered_last() {
        assert_eq!(members_in_turn(3, 0).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(members_in_turn(3, 1).collect::<Vec<_>>(), [1, 2, 0]);
        assert_eq!(members_in_turn(3, 5).collect::<Vec<_>>(), [2, 0, 1]);
        assert_eq!(members_in_turn(1, 7).collect::<Vec<_>>(), [0]);
    }

    #[test]
    fn a_lease_etcd_does_not_know_is_told_from_a_failed_renewal() {
        let not_found = tonic::Status::not_found("etcdserver: requested lease not found");
        assert!(is_unknown_lease(&etcd_client::Error::GRpcStatus(not_found)));
        assert!(is_unknown_lease(&etcd_client::Error::LeaseKeepAliveError(
            "lease not found".to_string()
        )));
        assert!(!is_unknown_lease(&etcd_client::Error::LeaseKeepAliveError(
            "transport error".to_string()
        )));
        let unavailable = tonic::Status::unavailable("connection refused");
        assert!(!is_unknown_lease(&etcd_client::Error::GRpcStatus(
            unavailable
        )));
        assert!(!is_unknown_lease(&etcd_client::Error::WatchError(
            "lease not found".to_string()
        )));
    }

    #[test]
    fn a_library_error_of_several_lines_is_said_in_one() {
        let e = "status: Unavailable,\n  message: \"tcp connect error\",\n\tdetails: []";
        assert_eq!(
            one_line(&e),
            "status: Unavailable, message: \"tcp connect error\", details: []"
        );
    }
}
