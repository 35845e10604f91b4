//! What the benchmark reads from etcd: its counters (through `tests::etcd::metrics`), and the
//! jobs the board marks finished.

use std::time::Duration;

use etcd_client::{Client, EventType, WatchOptions, WatchStream};
use tests::conductor::HarnessResult;
use tests::etcd::metrics::Metrics;

/// etcd's own counters, from its `/metrics` endpoint.
pub struct EtcdCounters {
    /// Txn requests served (gRPC `KV/Txn` calls): what "transactions" means in issue 4.
    pub txn_rpcs: f64,
    /// Every KV request served: Txn, Range, Put, DeleteRange.
    pub kv_rpcs: f64,
    /// etcd's internal MVCC transactions of more than one operation: a Txn request with
    /// compares counts twice (one read pass for the compares, one for the writes).
    pub mvcc_txns: f64,
    pub writes: f64,
    pub ranges: f64,
}

impl EtcdCounters {
    pub fn read(endpoint: &str) -> Self {
        let metrics = Metrics::read(endpoint);
        Self {
            txn_rpcs: metrics.kv_requests(&["Txn"]),
            kv_rpcs: metrics.kv_requests(&["Txn", "Range", "Put", "DeleteRange"]),
            mvcc_txns: metrics.counter("etcd_mvcc_txn_total"),
            writes: metrics.counter("etcd_server_proposals_committed_total"),
            ranges: metrics.counter("etcd_mvcc_range_total"),
        }
    }
}

/// Counts the board's finished-jobs index entries (`P done/<finished-ms>/<id>`, one per
/// consumed job) as etcd writes them: a watch, so learning of them costs no KV request.
pub struct DoneKeys {
    stream: WatchStream,
    /// Keeps the connection the watch runs on.
    _client: Client,
}

impl DoneKeys {
    /// Starts watching at the current revision, so no later put is missed.
    pub async fn watch(endpoint: &str, prefix: &str) -> HarnessResult<Self> {
        let mut client = Client::connect([endpoint], None).await?;
        let revision = client.get("bench-revision-probe", None).await?.header().map(|h| h.revision()).unwrap_or(0);
        let options = WatchOptions::new().with_prefix().with_start_revision(revision + 1);
        let stream = client.watch(format!("{prefix}done/"), Some(options)).await?;
        Ok(Self { stream, _client: client })
    }

    /// Returns once `jobs` entries were put, or fails after `patience`.
    pub async fn wait_for(mut self, jobs: usize, patience: Duration) -> HarnessResult<()> {
        let deadline = tokio::time::Instant::now() + patience;
        let mut done = 0;
        while done < jobs {
            let message = tokio::time::timeout_at(deadline, self.stream.message())
                .await
                .map_err(|_| format!("{done} of {jobs} jobs done after {patience:?}"))??;
            let response = message.ok_or("the watch of finished jobs ended")?;
            done += response.events().iter().filter(|event| event.event_type() == EventType::Put).count();
        }
        Ok(())
    }
}
