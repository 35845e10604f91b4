//! Group commit on etcd: the hot writes of many jobs share one Txn.
//!
//! etcd 3.4 pays for every Txn whatever it carries: a gRPC call, a raft
//! proposal, and a read view for its compares, for which it copies its whole
//! uncommitted write buffer. That copy (and the garbage it leaves) was most of
//! etcd's CPU per job. So the writes a job makes as it runs (its post, a pick's
//! claim, logbook writes, the consume) go through one [`Batcher`] per board:
//!
//! - a write that finds fewer than [`MAX_IN_FLIGHT`] batches in flight, and none
//!   waiting, is sent at once and alone: a lone writer waits for nothing;
//! - writes that arrive meanwhile wait, and the next batch carries all of them
//!   (up to [`MAX_MEMBERS`]), each as a nested Txn with its own compares and
//!   branches. etcd evaluates every member's compares against one revision,
//!   then applies the branch each member chose, all in that one revision: every
//!   member gets the answer its own Txn would have got, and the revision of the
//!   batch's header.
//!
//! Why that is serializable: all compares of a batch read the revision before
//! it, so it equals running the members one after the other only if no member
//! compares a key another one writes. Members are writes of different jobs
//! (a job makes one write at a time: the write-ahead rule), or of one job that
//! touch different keys: every non-logbook write of a job puts its `m/state`,
//! so two of one job make etcd refuse the batch (`duplicate key`, before
//! anything is applied), and logbook writes only put. etcd checks put/put and
//! delete-then-put between members, not put-then-delete nor a compare against
//! another member's write: a write added to the batched ones must keep to this
//! argument. A batch too big for etcd's limits is refused too. A refused batch
//! is sent again member by member, in order; any other error may have come
//! after the batch was applied, so every member gets `Unavailable`, exactly as
//! if its own Txn's answer had been lost. A member whose writer gave up before
//! it was sent is dropped: never sent, never written.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use etcd_client::{Compare, KvClient, Txn, TxnOp, TxnOpResponse, TxnResponse};
use tokio::sync::oneshot;

use super::send_txn;
use crate::error::Error;

/// Batches sent at once. Two: one fills while the other is in flight, so a
/// batch never waits for a slow one, and a lone writer rarely waits at all.
pub(crate) const MAX_IN_FLIGHT: usize = 2;
/// Members per batch: etcd refuses a Txn of more than 128 operations
/// (`--max-txn-ops`) at any level, and counts the outer operations against
/// each nested one's budget.
pub(crate) const MAX_MEMBERS: usize = 32;
/// A member with more operations than this (in its compares, or in either
/// branch) is always sent alone; with [`MAX_MEMBERS`] it keeps within 128.
const MAX_MEMBER_OPS: usize = 96;

/// One Txn, with the size the batcher needs (etcd-client's `Txn` hides its parts).
pub(crate) struct Member {
    txn: Txn,
    ops: usize,
}

impl Member {
    pub(crate) fn new(when: Vec<Compare>, then: Vec<TxnOp>, otherwise: Vec<TxnOp>) -> Self {
        let ops = when.len().max(then.len()).max(otherwise.len());
        Member { txn: Txn::new().when(when).and_then(then).or_else(otherwise), ops }
    }

    fn shareable(&self) -> bool {
        self.ops <= MAX_MEMBER_OPS
    }
}

/// A member's answer: its own Txn's response, and the revision of the Txn
/// that carried it (a nested response has no header of its own).
#[derive(Debug)]
pub(crate) struct Committed {
    pub resp: TxnResponse,
    pub revision: i64,
}

impl Committed {
    fn alone(resp: TxnResponse) -> Self {
        let revision = resp.header().map_or(0, |h| h.revision());
        Committed { resp, revision }
    }
}

/// Sends the hot writes of one board, batching those that arrive together (see the module doc).
pub(crate) struct Batcher {
    kv: KvClient,
    queue: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<Waiting>,
    in_flight: usize,
}

struct Waiting {
    member: Member,
    doing: String,
    reply: oneshot::Sender<Result<Committed, Error>>,
}

/// Whether a write goes at once, or waits for a batch.
enum Turn {
    Now(Member),
    Later(oneshot::Receiver<Result<Committed, Error>>),
}

/// A batch slot taken: given back (and the next batch started) when dropped,
/// also when the writer that sent alone is dropped mid-request.
struct Slot(Arc<Batcher>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.release();
    }
}

impl Batcher {
    pub(crate) fn new(kv: KvClient) -> Arc<Self> {
        Arc::new(Batcher { kv, queue: Mutex::default() })
    }

    /// Sends `member`, alone or in a batch, and returns its own answer.
    pub(crate) async fn send(self: &Arc<Self>, member: Member, doing: &str) -> Result<Committed, Error> {
        let turn = {
            let mut queue = self.lock();
            if queue.in_flight < MAX_IN_FLIGHT && queue.waiting.is_empty() {
                queue.in_flight += 1;
                Turn::Now(member)
            } else {
                let (reply, answer) = oneshot::channel();
                queue.waiting.push_back(Waiting { member, doing: doing.to_owned(), reply });
                Turn::Later(answer)
            }
        };
        match turn {
            Turn::Now(member) => {
                let _slot = Slot(self.clone());
                send_txn(&self.kv, &member.txn, doing).await.map(Committed::alone)
            }
            Turn::Later(answer) => answer.await.unwrap_or_else(|_| Err(unanswered(doing))),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Gives back a slot and starts batches while slots are free and writes wait.
    fn release(self: &Arc<Self>) {
        let batches = {
            let mut queue = self.lock();
            queue.in_flight -= 1;
            let mut batches = Vec::new();
            while queue.in_flight < MAX_IN_FLIGHT && !queue.waiting.is_empty() {
                let batch = take_batch(&mut queue.waiting);
                if !batch.is_empty() {
                    queue.in_flight += 1;
                    batches.push(batch);
                }
            }
            batches
        };
        // Spawned with the lock released: a runtime shutting down drops a spawned
        // future at once, and its slot's drop comes back here.
        for batch in batches {
            let slot = Slot(self.clone());
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => drop(runtime.spawn(async move {
                    slot.0.run(batch).await;
                    drop(slot);
                })),
                // No runtime on this thread: nothing can be sent from here, and none of these was.
                Err(_) => {
                    for waiting in batch {
                        let _ = waiting.reply.send(Err(unanswered(&waiting.doing)));
                    }
                }
            }
        }
    }

    async fn run(&self, batch: Vec<Waiting>) {
        if batch.len() == 1 {
            for waiting in batch {
                let answer = send_txn(&self.kv, &waiting.member.txn, &waiting.doing).await.map(Committed::alone);
                let _ = waiting.reply.send(answer);
            }
            return;
        }
        let members = batch.iter().map(|waiting| TxnOp::txn(waiting.member.txn.clone())).collect::<Vec<_>>();
        let txn = Txn::new().and_then(members);
        let doing = format!("writing a batch of {} transactions ({} first)", batch.len(), batch[0].doing);
        match send_txn(&self.kv, &txn, &doing).await {
            Ok(resp) => answer_each(batch, &resp),
            // Refused before anything was applied (a key written twice, too big): one by one,
            // but not those whose writer gave up meanwhile (never sent: not written).
            Err(error) if refused_unapplied(&error) => {
                tracing::warn!(%error, "etcd refused a batch; sending its members one by one");
                for waiting in batch.into_iter().filter(|waiting| !waiting.reply.is_closed()) {
                    let answer = send_txn(&self.kv, &waiting.member.txn, &waiting.doing).await.map(Committed::alone);
                    let _ = waiting.reply.send(answer);
                }
            }
            // Anything else may have been applied: each member learns its outcome is unknown,
            // exactly as if its own Txn's answer had been lost (a claim then settles it).
            Err(error) => {
                let message = error.to_string();
                for waiting in batch {
                    let _ = waiting.reply.send(Err(Error::Unavailable { message: message.clone(), source: None }));
                }
            }
        }
    }
}

/// Whether etcd refused a request in checks made before anything is applied: a key
/// written twice, too many operations, too big a request (`InvalidArgument`), a
/// message over gRPC's limit (`ResourceExhausted`).
fn refused_unapplied(error: &Error) -> bool {
    let Error::Backend { source: Some(source), .. } = error else { return false };
    match source.downcast_ref::<etcd_client::Error>() {
        Some(etcd_client::Error::GRpcStatus(status)) => {
            matches!(status.code(), tonic::Code::InvalidArgument | tonic::Code::ResourceExhausted)
        }
        _ => false,
    }
}

/// The next batch: waiting writes in order, up to [`MAX_MEMBERS`]; a member
/// too big to share goes alone.
fn take_batch(waiting: &mut VecDeque<Waiting>) -> Vec<Waiting> {
    let mut batch = Vec::new();
    while let Some(next) = waiting.front() {
        if next.reply.is_closed() {
            // Its writer gave up before it was sent: dropped, it is simply not written.
            waiting.pop_front();
            continue;
        }
        let fits = batch.is_empty() || (next.member.shareable() && batch.len() < MAX_MEMBERS);
        if !fits {
            break;
        }
        let alone = !next.member.shareable();
        batch.extend(waiting.pop_front());
        if alone {
            break;
        }
    }
    batch
}

/// Hands each member its nested response, in the order they were sent.
fn answer_each(batch: Vec<Waiting>, resp: &TxnResponse) {
    let revision = resp.header().map_or(0, |h| h.revision());
    let mut responses = resp.op_responses().into_iter();
    for waiting in batch {
        let answer = match responses.next() {
            Some(TxnOpResponse::Txn(resp)) => Ok(Committed { resp, revision }),
            // The batch was applied, so this member was too, in some branch: unknown which.
            _ => Err(Error::Unavailable {
                message: format!(
                    "etcd answered a batch without the answer of one of its transactions ({})",
                    waiting.doing
                ),
                source: None,
            }),
        };
        let _ = waiting.reply.send(answer);
    }
}

/// A batch that ended without answering (its task was dropped): the write may or may not have landed.
fn unanswered(doing: &str) -> Error {
    Error::Unavailable { message: format!("no answer from etcd while {doing}"), source: None }
}
