//! Board operations that need no claim: post, get, purge (`list` is in [`super::list`], operators' requests in [`super::operate`]).

use etcd_client::{Compare, CompareOp, DeleteOptions, GetOptions, Txn, TxnOp};

use super::batch::Member;
use super::codec::{assemble, decode, encode, new_job_id_from, validate_new_job, QueueEntry, SpecRecord, StateRecord};
use super::floor;
use super::keys::id_at_end;
use super::owner::{get_kv, owner_name};
use super::windows::id_ms;
use super::Inner;
use crate::error::Error;
use crate::job::{Job, JobId, NewJob};

/// Jobs removed per purge round: small, so no revision deletes many keys (see etcd-notes §6).
const PURGE_BATCH: i64 = 32;
/// Post attempts: a refusal by the list floor is followed by one at the floor, which it admits.
const POST_ROUNDS: usize = 3;

impl Inner {
    pub(super) async fn post(&self, job: NewJob) -> Result<Job, Error> {
        validate_new_job(&job, self.config.max_value_bytes)?;
        let keys = &self.keys;
        // Refused by the list floor (see `floor`): post again with an id at it.
        let mut not_before = 0;
        let mut posted = None;
        let mut spec = SpecRecord {
            flow: job.flow,
            store: job.store,
            priority: job.priority,
            idempotency_key: job.idempotency_key,
            created_at: 0,
            pin: job.pin,
            requires: job.requires,
            deadline: job.deadline,
            rerun_of: job.rerun_of,
        };
        for _ in 0..POST_ROUNDS {
            let id;
            (id, spec.created_at) = new_job_id_from(not_before);
            let state = StateRecord::new(&spec);
            let encoded_spec = encode(&spec, "job spec")?;
            let entry = QueueEntry::posted(&state, &spec, &encoded_spec)?;
            let mut then = vec![
                TxnOp::put(keys.spec(id), encoded_spec, None),
                TxnOp::put(keys.state(id), encode(&state, "job state")?, None),
                TxnOp::put(keys.queue(spec.priority, id), entry.clone(), None),
                TxnOp::put(keys.flow_queue(&spec.flow, spec.priority, id), entry, None),
            ];
            if let Some(deadline) = spec.deadline {
                then.push(TxnOp::put(keys.job_due(deadline, id), "", None));
            }
            let mut when = vec![floor::admits(keys, id)];
            let mut otherwise = vec![TxnOp::get(keys.floor(), None)];
            if let Some(key) = &spec.idempotency_key {
                then.push(TxnOp::put(keys.idem(key), id.to_string(), None));
                when.push(Compare::create_revision(keys.idem(key), CompareOp::Equal, 0));
                otherwise.push(TxnOp::get(keys.idem(key), None));
            }
            let resp = self.batched(Member::new(when, then, otherwise), "posting a job").await?.resp;
            if resp.succeeded() {
                posted = Some((id, state));
                break;
            }
            if spec.idempotency_key.is_some() {
                if let Some(kv) = get_kv(&resp, 1) {
                    let existing = String::from_utf8_lossy(kv.value()).parse::<JobId>().map_err(|_| {
                        Error::Backend { message: "corrupt idempotency index entry".into(), source: None }
                    })?;
                    return self.get_job(existing).await;
                }
            }
            match floor::refused_at(get_kv(&resp, 0).as_ref())? {
                Some(floor) => {
                    tracing::warn!(%id, %floor, "this clock is behind the board's list floor: the job takes an id at it");
                    not_before = id_ms(floor);
                }
                None => self.ensure_floor().await?,
            }
        }
        let Some((id, state)) = posted else {
            return Err(Error::Backend {
                message: format!("posting kept being refused by the list floor at {}", keys.floor()),
                source: None,
            });
        };
        // Our own watch will say so too, a moment later; a sibling claimer must not miss it meanwhile.
        let queued = keys.queue(spec.priority, id);
        self.with_local(|local| local.queue_put(queued.as_bytes()));
        self.with_queue_view(|view| view.insert(queued.as_bytes()));
        Ok(assemble(id, spec, state, None))
    }

    pub(super) async fn get_job(&self, id: JobId) -> Result<Job, Error> {
        let keys = &self.keys;
        let txn = Txn::new().and_then([
            TxnOp::get(keys.spec(id), None),
            TxnOp::get(keys.state(id), None),
            TxnOp::get(keys.owner(id), None),
        ]);
        let resp = self.txn(txn, &format!("reading job {id}")).await?;
        let spec = get_kv(&resp, 0).ok_or(Error::NotFound(id))?;
        let state = get_kv(&resp, 1).ok_or(Error::NotFound(id))?;
        let owner = get_kv(&resp, 2).map(|kv| owner_name(&kv));
        Ok(assemble(id, decode(spec.value(), "job spec")?, decode(state.value(), "job state")?, owner))
    }

    /// Deletes finished jobs past the retention, one small txn per job.
    pub(super) async fn purge_expired(&self) -> Result<usize, Error> {
        let keys = &self.keys;
        let cutoff = flows::logbook::now_millis().saturating_sub(self.config.retention.as_millis() as u64);
        let mut removed = 0;
        loop {
            let end = keys.done(cutoff, JobId::nil());
            let options = GetOptions::new().with_range(end).with_limit(PURGE_BATCH).with_keys_only();
            let mut resp = self.get(keys.done_prefix(), Some(options), "listing expired jobs").await?;
            let done = resp.take_kvs();
            if done.is_empty() {
                // The oldest job left is where listings start from now on.
                if let Err(error) = self.tighten_floor().await {
                    tracing::warn!(%error, "raising the list floor failed; listings start lower until the next purge");
                }
                return Ok(removed);
            }
            for kv in done {
                let Some(id) = id_at_end(kv.key()) else { continue };
                let spec = match self.get(keys.spec(id), None, "reading a job to purge").await?.take_kvs().pop() {
                    Some(spec) => Some(decode::<SpecRecord>(spec.value(), "job spec")?),
                    None => None,
                };
                let (idem, deadline) = spec.map_or((None, None), |s| (s.idempotency_key, s.deadline));
                let mut ops = vec![
                    TxnOp::delete(kv.key().to_vec(), None),
                    TxnOp::delete(keys.spec(id), None),
                    TxnOp::delete(keys.state(id), None),
                    TxnOp::delete(keys.book_prefix(id), Some(DeleteOptions::new().with_prefix())),
                    TxnOp::delete(keys.park_prefix(id), Some(DeleteOptions::new().with_prefix())),
                ];
                if let Some(key) = idem {
                    ops.push(TxnOp::delete(keys.idem(&key), None));
                }
                if let Some(deadline) = deadline {
                    ops.push(TxnOp::delete(keys.job_due(deadline, id), None));
                }
                self.txn(Txn::new().and_then(ops), &format!("purging job {id}")).await?;
                removed += 1;
            }
        }
    }
}
