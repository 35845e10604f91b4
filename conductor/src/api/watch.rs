//! `WatchJob`: a stream of job snapshots, one per change, until the job ends.
//!
//! The board's `watch_job` wake-ups say *that* something changed; each one is
//! answered by re-reading the job and its logbook, and a snapshot is sent only
//! when it differs from the last one sent. Several changes between two reads
//! are folded into one snapshot, which is what a progress display wants.

use std::time::Duration;

use futures::Stream;
use jobboard::JobId;
use proto::pb;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::outline::Shape;
use super::service::BatonService;
use super::status::from_board;
use super::ApiState;

/// A re-read even without a wake-up, so that a missed notification (a backend
/// watch reconnecting) delays a snapshot by at most this long.
const RESYNC_EVERY: Duration = Duration::from_secs(5);

/// Subscribes to the job's changes (before the first read, so none is missed)
/// and returns the stream of snapshots. `NOT_FOUND` at once for an unknown job.
pub async fn watch_job(state: ApiState, id: JobId) -> Result<impl Stream<Item = Result<pb::Job, Status>>, Status> {
    let wakeups = state.board()?.watch_job(id).await.map_err(|e| from_board(&e))?;
    let mut outline = None;
    let first = BatonService::snapshot(&state, id, &mut outline).await?;
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(follow(state, id, wakeups, first, outline, tx));
    Ok(ReceiverStream::new(rx))
}

fn is_finished(job: &pb::Job) -> bool {
    matches!(job.state(), pb::JobState::Complete | pb::JobState::Trashed)
}

async fn follow(
    state: ApiState,
    id: JobId,
    mut wakeups: jobboard::Wakeups,
    first: pb::Job,
    mut outline: Option<Option<Shape>>,
    tx: mpsc::Sender<Result<pb::Job, Status>>,
) {
    let mut last = first;
    if tx.send(Ok(last.clone())).await.is_err() {
        return;
    }
    while !is_finished(&last) {
        tokio::select! {
            woke = wakeups.changed() => {
                if woke.is_err() {
                    let _ = tx.send(Err(Status::unavailable("the job board stopped reporting changes; watch again"))).await;
                    return;
                }
            }
            () = tokio::time::sleep(RESYNC_EVERY) => {}
            () = tx.closed() => return,
            () = state.shutdown.cancelled() => {
                let _ = tx.send(Err(Status::unavailable("conductor shutting down; watch again elsewhere"))).await;
                return;
            }
        }
        match BatonService::snapshot(&state, id, &mut outline).await {
            Ok(snapshot) if snapshot == last => {}
            Ok(snapshot) => {
                last = snapshot;
                if tx.send(Ok(last.clone())).await.is_err() {
                    return;
                }
            }
            Err(status) => {
                // A transient board error is not the end of the job: say so and keep following.
                if status.code() != tonic::Code::Unavailable {
                    let _ = tx.send(Err(status)).await;
                    return;
                }
                tracing::debug!(job = %id, error = %status.message(), "watch re-read failed; retrying");
            }
        }
    }
}
