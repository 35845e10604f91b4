//! `WatchJob`: a stream of job snapshots, one per change, until the job ends.
//!
//! The board's `watch_job` wake-ups say *that* something changed. A change of
//! the job itself (its state, owner, outcome, cancel request) is answered at
//! once with a full snapshot, so the final state is never delayed. A change of
//! the logbook alone (a step's progress) is folded: the job and its logbook are
//! re-read at most once per `FOLD_EVERY` while the job runs, because a full
//! snapshot of a long flow costs a read of every atom, and one per step would
//! make a flow's watch cost grow with the square of its steps. A snapshot is
//! sent only when it differs from the last one sent, which is what a progress
//! display wants.

use std::time::Duration;

use futures::Stream;
use jobboard::{Job, JobId};
use proto::pb;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::convert::job_to_pb;
use super::outline::Shape;
use super::service::BatonService;
use super::status::from_board;
use super::ApiState;

/// A re-read even without a wake-up, so that a missed notification (a backend
/// watch reconnecting) delays a snapshot by at most this long.
const RESYNC_EVERY: Duration = Duration::from_secs(5);

/// At most one logbook re-read per this interval while the job's own record is
/// unchanged: ten progress updates a second, far below what a step rate costs.
pub(super) const FOLD_EVERY: Duration = Duration::from_millis(100);

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

/// What a wake-up or a timer asks for.
enum Read {
    /// Nothing yet: a logbook change waits for the fold interval to end.
    Folded,
    /// A full snapshot, read afresh.
    Fresh,
    /// A full snapshot of this changed job record (read once, not twice).
    Of(Box<Job>),
}

/// Reads the job's record alone (one row, not the logbook) and says whether it
/// differs from the last snapshot's; a failed read asks for a fresh snapshot,
/// whose error handling then applies.
async fn after_wakeup(state: &ApiState, id: JobId, last: &mut pb::Job) -> Read {
    let Ok(board) = state.board() else { return Read::Fresh };
    let Ok(job) = board.get(id).await else { return Read::Fresh };
    let head = job_to_pb(&job, Vec::new());
    // Compared without the parts a snapshot adds from the logbook; they are put back at once.
    let tasks = std::mem::take(&mut last.tasks);
    let outputs = std::mem::take(&mut last.outputs_json);
    let same = head == *last;
    last.tasks = tasks;
    last.outputs_json = outputs;
    if same {
        Read::Folded
    } else {
        Read::Of(Box::new(job))
    }
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
    let mut read_at = Instant::now();
    // Set while a logbook change waits for the fold interval to end.
    let mut pending = false;
    while !is_finished(&last) {
        let fold_ends = read_at + FOLD_EVERY;
        let read = tokio::select! {
            woke = wakeups.changed() => {
                if woke.is_err() {
                    let _ = tx.send(Err(Status::unavailable("the job board stopped reporting changes; watch again"))).await;
                    return;
                }
                after_wakeup(&state, id, &mut last).await
            }
            () = tokio::time::sleep_until(fold_ends), if pending => Read::Fresh,
            () = tokio::time::sleep_until(read_at + RESYNC_EVERY) => Read::Fresh,
            () = tx.closed() => return,
            () = state.shutdown.cancelled() => {
                let _ = tx.send(Err(Status::unavailable("conductor shutting down; watch again elsewhere"))).await;
                return;
            }
        };
        let snapshot = match read {
            Read::Folded => {
                pending = true;
                continue;
            }
            Read::Fresh => BatonService::snapshot(&state, id, &mut outline).await,
            Read::Of(job) => BatonService::snapshot_of(&state, *job, &mut outline).await,
        };
        pending = false;
        read_at = Instant::now();
        match snapshot {
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
