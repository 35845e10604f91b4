//! The session lease: granted at connect, renewed by our own loop every TTL/3.
//!
//! etcd-client's `LeaseKeeper` only sends when asked, so this loop asks. A
//! reply with TTL 0 means etcd no longer knows the lease: the session is lost.
//! A stream error is "unknown": the loop re-opens the keep-alive stream on the
//! same client (it reconnects by itself). Independently, a local deadline of
//! *last renewal sent + TTL - TTL/6* fences the session off if renewals stop
//! getting through, because while etcd is unreachable it cannot tell us the
//! lease expired, yet another conductor may already hold our jobs. Once
//! fenced, the claims' writes are refused locally (etcd may still hold the
//! lease: it survives an etcd restart with its TTL started afresh), and the
//! loop revokes the lease as soon as etcd answers, so the jobs go back at once.

use std::time::Duration;

use etcd_client::Client;
use tokio::time::{sleep, sleep_until, timeout, Instant};
use tokio_util::sync::CancellationToken;

use super::bounded;
use super::codec::etcd_error;
use crate::error::Error;

/// One lease, and the tokens that say it is over.
#[derive(Debug)]
pub(crate) struct Session {
    pub lease: i64,
    /// Cancelled when the lease is known (or must be assumed) lost, or on close.
    pub lost: CancellationToken,
    /// Cancelled to stop the keep-alive loop (close).
    stop: CancellationToken,
}

impl Session {
    /// Grants a lease of `ttl` (at least 2 s, etcd's minimum) and starts renewing it.
    pub(crate) async fn start(client: &Client, ttl: Duration) -> Result<Session, Error> {
        let ttl_secs = ttl.as_secs().max(2) as i64;
        let granted = bounded(client.lease_client().grant(ttl_secs, None), "granting the session lease").await?;
        let session = Session { lease: granted.id(), lost: CancellationToken::new(), stop: CancellationToken::new() };
        let ttl = Duration::from_secs(granted.ttl().max(2) as u64);
        tokio::spawn(keep_alive(client.clone(), session.lease, ttl, session.lost.clone(), session.stop.clone()));
        Ok(session)
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

async fn keep_alive(client: Client, lease: i64, ttl: Duration, lost: CancellationToken, stop: CancellationToken) {
    let interval = ttl / 3;
    let margin = ttl / 6;
    let mut deadline = Instant::now() + ttl - margin;
    let mut lease_client = client.lease_client();
    'reopen: loop {
        let opened = tokio::select! {
            _ = stop.cancelled() => return,
            _ = sleep_until(deadline) => break 'reopen,
            opened = lease_client.keep_alive(lease) => opened,
        };
        let (mut keeper, mut stream) = match opened {
            Ok(pair) => pair,
            Err(e) => {
                tracing::debug!(lease, error = %e, "cannot open lease keep-alive stream; retrying");
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = sleep_until(deadline) => break 'reopen,
                    _ = sleep(Duration::from_millis(250)) => continue 'reopen,
                }
            }
        };
        loop {
            let sent_at = Instant::now();
            if keeper.keep_alive().await.is_err() {
                continue 'reopen;
            }
            let reply = tokio::select! {
                _ = stop.cancelled() => return,
                _ = sleep_until(deadline) => break 'reopen,
                reply = timeout(interval, stream.message()) => reply,
            };
            match reply {
                Ok(Ok(Some(resp))) if resp.ttl() <= 0 => {
                    tracing::warn!(lease, "etcd says the session lease is gone");
                    break 'reopen;
                }
                Ok(Ok(Some(resp))) => {
                    deadline = sent_at + Duration::from_secs(resp.ttl() as u64) - margin;
                }
                Ok(Ok(None)) | Ok(Err(_)) | Err(_) => continue 'reopen,
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = sleep(interval.saturating_sub(sent_at.elapsed())) => {}
            }
        }
    }
    tracing::warn!(lease, "session lease lost or not renewed in time; fencing off this session's claims");
    lost.cancel();
    revoke_after_fencing(&client, lease, ttl, &stop).await;
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
