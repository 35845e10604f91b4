//! The session lease: granted at connect, renewed by our own loop every
//! [`renew_interval`] (TTL/10, at most 1 s).
//!
//! etcd-client's `LeaseKeeper` only sends when asked, so this loop asks. A
//! reply with TTL 0 means etcd no longer knows the lease: the session is lost.
//! A stream error is "unknown": the loop re-opens the keep-alive stream on the
//! same client (it reconnects by itself) every 250 ms. Independently, a local
//! deadline of *last renewal sent + TTL - [`fence_margin`]* fences the session
//! off if renewals stop getting through, because while etcd is unreachable it
//! cannot tell us the lease expired, yet another conductor may already hold
//! our jobs. Counting from when the renewal was *sent* keeps the deadline
//! before etcd's own expiry, which counts from when it was received.
//!
//! So an outage survives when it ends before that deadline: an outage of `D`
//! that begins at most one interval after the last renewal loses nothing if
//! `D < TTL - margin - interval - reconnect` (10 s TTL: about 7.5 s). etcd
//! keeps leases across a restart and a leader election, and its new leader
//! restarts every lease's TTL, so a renewal after the outage finds the lease.
//!
//! Once fenced, the claims' writes are refused locally (etcd may still hold
//! the lease), and the loop revokes the lease as soon as etcd answers, so the
//! jobs go back at once. While renewals fail, [`Availability`] says so.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Client, KvClient};
use tokio::time::{sleep, sleep_until, timeout, Instant};
use tokio_util::sync::CancellationToken;

use super::bounded;
use super::codec::{cause_in_words, etcd_error};
use super::epoch::BoardEpoch;
use crate::backlog::SessionStats;
use crate::board::Availability;
use crate::error::Error;

/// How often the lease is renewed: TTL/10, at most 1 s, so a short outage
/// costs little of the TTL before the first renewal after it.
pub(crate) fn renew_interval(ttl: Duration) -> Duration {
    (ttl / 10).min(Duration::from_secs(1))
}

/// How long before the lease would expire in etcd (counted from the last
/// renewal sent) the session fences itself: time for running engines to stop
/// before another conductor can claim their jobs.
pub(crate) fn fence_margin(ttl: Duration) -> Duration {
    (ttl / 10).max(Duration::from_millis(200))
}

/// One lease, and the tokens that say it is over.
#[derive(Debug)]
pub(crate) struct Session {
    pub lease: i64,
    /// Cancelled when the lease is known (or must be assumed) lost, or on close.
    pub lost: CancellationToken,
    /// Cancelled to stop the keep-alive loop (close).
    stop: CancellationToken,
    /// Whether renewals are getting through.
    availability: tokio::sync::watch::Sender<Availability>,
    /// The highest store revision etcd has answered this session with.
    pub revisions: Arc<Revisions>,
}

/// The highest store revision seen in any etcd reply (a watermark): every
/// reply's header is noted, and a renewal answered with a lower revision
/// means etcd went back in time (a restore; see `epoch`).
#[derive(Debug, Default)]
pub(crate) struct Revisions(AtomicI64);

impl Revisions {
    /// Notes a reply's revision.
    pub(crate) fn note(&self, revision: i64) {
        self.0.fetch_max(revision, Ordering::AcqRel);
    }

    fn max(&self) -> i64 {
        self.0.load(Ordering::Acquire)
    }
}

impl Session {
    /// Grants a lease of `ttl` (at least 2 s, etcd's minimum) and starts renewing it.
    /// A session of the board in `epoch`: it fences itself if etcd turns out to
    /// have been restored from a snapshot (see `epoch`).
    pub(crate) async fn start(
        client: &Client,
        ttl: Duration,
        kv: KvClient,
        epoch: BoardEpoch,
        stats: Arc<SessionStats>,
    ) -> Result<Session, Error> {
        let ttl_secs = ttl.as_secs().max(2) as i64;
        let grant = || {
            let mut leases = client.lease_client();
            async move { leases.grant(ttl_secs, None).await }
        };
        let granted = bounded(grant, "granting the session lease").await?;
        let session = Session {
            lease: granted.id(),
            lost: CancellationToken::new(),
            stop: CancellationToken::new(),
            availability: tokio::sync::watch::channel(Availability::Available).0,
            revisions: Arc::default(),
        };
        let ttl = Duration::from_secs(granted.ttl().max(2) as u64);
        session.revisions.note(granted.header().map_or(0, |h| h.revision()));
        let keeper = KeepAlive {
            kv,
            epoch,
            revisions: session.revisions.clone(),
            client: client.clone(),
            lease: session.lease,
            ttl,
            lost: session.lost.clone(),
            stop: session.stop.clone(),
            availability: session.availability.clone(),
            stats,
        };
        tokio::spawn(keeper.run());
        Ok(session)
    }

    /// Follows whether renewals are getting through.
    pub(crate) fn availability(&self) -> tokio::sync::watch::Receiver<Availability> {
        self.availability.subscribe()
    }

    /// Stops renewing without revoking: to etcd this session now looks frozen.
    pub(crate) fn suspend(&self) {
        self.stop.cancel();
    }

    /// Stops renewing and revokes the lease, so that its keys (claims,
    /// conductor registration) go at once.
    pub(crate) async fn close(&self, client: &Client) -> Result<(), Error> {
        self.stop.cancel();
        let result = timeout(Duration::from_secs(10), client.lease_client().revoke(self.lease)).await;
        self.lost.cancel();
        match result {
            Err(_) => Err(Error::Unavailable { message: "etcd did not answer the lease revoke".into(), source: None }),
            Ok(Ok(_)) => Ok(()),
            // Already gone (expired, or revoked by the self-fencing path): the goal is reached.
            Ok(Err(etcd_client::Error::GRpcStatus(status))) if status.code() == tonic::Code::NotFound => Ok(()),
            Ok(Err(e)) => Err(etcd_error(e, "revoking the session lease")),
        }
    }
}

/// The renewal loop of one lease.
struct KeepAlive {
    client: Client,
    kv: KvClient,
    epoch: BoardEpoch,
    revisions: Arc<Revisions>,
    lease: i64,
    ttl: Duration,
    lost: CancellationToken,
    stop: CancellationToken,
    availability: tokio::sync::watch::Sender<Availability>,
    stats: Arc<SessionStats>,
}

/// Why the renewal loop stopped renewing.
enum Ended {
    /// Closed or suspended: not a loss.
    Stopped,
    /// etcd said the lease is gone, or the local deadline passed.
    Lost,
}

impl KeepAlive {
    async fn run(self) {
        if let Ended::Stopped = self.renew_until_lost().await {
            return;
        }
        tracing::warn!(
            lease = self.lease,
            "session lease lost or not renewed in time; fencing off this session's claims"
        );
        self.set_unavailable("the session lease was lost");
        self.lost.cancel();
        revoke_after_fencing(&self.client, self.lease, self.ttl, &self.stop).await;
    }

    fn set_unavailable(&self, cause: &str) {
        self.availability.send_if_modified(|now| {
            let changed = *now == Availability::Available;
            if changed {
                tracing::warn!(lease = self.lease, cause, "etcd unreachable: lease renewals are failing");
                *now = Availability::Unavailable(format!("etcd unreachable: {cause}"));
            }
            changed
        });
    }

    /// A renewal attempt failed: counted, and the board is unavailable until one lands.
    fn renewal_failed(&self, cause: &str) {
        self.stats.renewal_failed();
        self.set_unavailable(cause);
    }

    fn set_available(&self) {
        self.availability.send_if_modified(|now| {
            let changed = *now != Availability::Available;
            if changed {
                tracing::info!(lease = self.lease, "etcd reachable again: lease renewed");
                *now = Availability::Available;
            }
            changed
        });
    }

    async fn renew_until_lost(&self) -> Ended {
        let interval = renew_interval(self.ttl);
        let margin = fence_margin(self.ttl);
        // A reply slower than this counts as a failed renewal (the stream is re-opened).
        let reply_wait = (self.ttl / 3).max(interval);
        let mut deadline = Instant::now() + self.ttl - margin;
        let mut lease_client = self.client.lease_client();
        'reopen: loop {
            let opened = tokio::select! {
                _ = self.stop.cancelled() => return Ended::Stopped,
                // Voided from outside (the board epoch moved on): stop renewing.
                _ = self.lost.cancelled() => return Ended::Lost,
                _ = sleep_until(deadline) => return Ended::Lost,
                opened = lease_client.keep_alive(self.lease) => opened,
            };
            let (mut keeper, mut stream) = match opened {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::debug!(lease = self.lease, error = %e, "cannot open lease keep-alive stream; retrying");
                    self.renewal_failed(&cause_in_words(&e));
                    tokio::select! {
                        _ = self.stop.cancelled() => return Ended::Stopped,
                        _ = sleep_until(deadline) => return Ended::Lost,
                        _ = sleep(Duration::from_millis(250)) => continue 'reopen,
                    }
                }
            };
            loop {
                let sent_at = Instant::now();
                if let Err(e) = keeper.keep_alive().await {
                    self.renewal_failed(&cause_in_words(&e));
                    continue 'reopen;
                }
                let reply = tokio::select! {
                    _ = self.stop.cancelled() => return Ended::Stopped,
                    _ = self.lost.cancelled() => return Ended::Lost,
                    _ = sleep_until(deadline) => return Ended::Lost,
                    reply = timeout(reply_wait, stream.message()) => reply,
                };
                match reply {
                    Ok(Ok(Some(resp))) if resp.ttl() <= 0 => {
                        tracing::warn!(lease = self.lease, "etcd says the session lease is gone");
                        return Ended::Lost;
                    }
                    Ok(Ok(Some(resp))) => {
                        let (revision, seen) = (resp.header().map_or(0, |h| h.revision()), self.revisions.max());
                        if revision < seen && self.epoch.check_restore(&self.kv, seen).await {
                            return Ended::Lost;
                        }
                        self.revisions.note(revision);
                        self.stats.renewed();
                        deadline = sent_at + Duration::from_secs(resp.ttl() as u64) - margin;
                        self.set_available();
                    }
                    Ok(Ok(None)) => {
                        self.renewal_failed("the keep-alive stream was closed");
                        continue 'reopen;
                    }
                    Ok(Err(e)) => {
                        self.renewal_failed(&cause_in_words(&e));
                        continue 'reopen;
                    }
                    Err(_) => {
                        self.renewal_failed(&format!("no lease renewal answer within {reply_wait:?}"));
                        continue 'reopen;
                    }
                }
                tokio::select! {
                    _ = self.stop.cancelled() => return Ended::Stopped,
                    _ = sleep(interval.saturating_sub(sent_at.elapsed())) => {}
                }
            }
        }
    }
}

/// After self-fencing, etcd may still hold the lease (we were cut off, or etcd
/// restarted and restarted its TTL): revoke it as soon as etcd answers, so the
/// jobs go back at once instead of after another TTL. Retried for a bounded
/// while (a restarted etcd expires the lease by itself one TTL after it is
/// back); our own writes are refused locally meanwhile (`lost` is cancelled).
async fn revoke_after_fencing(client: &Client, lease: i64, ttl: Duration, stop: &CancellationToken) {
    let give_up = Instant::now() + (ttl * 3).max(Duration::from_secs(30));
    while Instant::now() < give_up {
        match timeout(ttl, client.lease_client().revoke(lease)).await {
            Ok(Ok(_)) => return,
            Ok(Err(etcd_client::Error::GRpcStatus(status))) if status.code() == tonic::Code::NotFound => return,
            Ok(Err(e)) => tracing::debug!(lease, error = %e, "cannot revoke the fenced lease yet; retrying"),
            Err(_) => tracing::debug!(lease, "the fenced lease's revoke timed out; retrying"),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = sleep(Duration::from_millis(500)) => {}
        }
    }
}
