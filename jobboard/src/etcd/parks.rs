//! Parked tasks on etcd: park entries (`P m/park/<id>/<atom-hex>`, written by
//! the owner's logbook txn, watched so a settled one reaches a claimed job's
//! owner), the deadline index (`P due/<deadline:013>/<id>/<atom-hex>`, read only
//! up to now), and the conditional writes `crate::parking` decides: a completion
//! or a timeout compares the entry's and the job state's mod revisions as read,
//! so exactly one of them wins; a PARKED job becomes claimable in the same txn.
//! The owner's park compares its claim, the state and every waited-for entry.

use std::collections::HashMap;

use etcd_client::{Compare, CompareOp, GetOptions, KeyValue, Txn, TxnOp};
use flows::logbook::now_millis;
use flows::Millis;
use tokio::sync::watch as tokio_watch;

use super::codec::{decode, encode, StateRecord};
use super::keys::prefix_end;
use super::owner::get_kv;
use super::Inner;
use crate::board::Wakeups;
use crate::claim::FenceToken;
use crate::error::Error;
use crate::job::{JobId, JobState};
use crate::lifecycle::Change;
use crate::parking::{self, delivered_for, Completed, ParkEntry, Parking, Presenter, TaskOutcome, Verdict};

/// Retries of a conditional write that lost a race, before giving up as Unavailable.
const ATTEMPTS: usize = 16;

impl Inner {
    /// A subscription to settled park entries of job `id` (see `Claim::deliveries`).
    pub(super) fn subscribe_parks(&self, id: JobId) -> Wakeups {
        let mut parks = self.parks.lock().unwrap_or_else(|e| e.into_inner());
        parks.retain(|_, tx| tx.receiver_count() > 0);
        Wakeups::new(parks.entry(id).or_insert_with(|| tokio_watch::Sender::new(0)).subscribe())
    }

    /// The watch saw a park entry of job `id` written.
    pub(super) fn park_settled(&self, id: JobId) {
        let parks = self.parks.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = parks.get(&id) {
            tx.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// Every park entry of job `id`, with its mod revision.
    async fn entries(&self, id: JobId) -> Result<Vec<(ParkEntry, i64)>, Error> {
        let prefix = self.keys.park_prefix(id);
        let options = GetOptions::new().with_range(prefix_end(&prefix));
        let mut resp = self.get(prefix, Some(options), &format!("reading the parked tasks of job {id}")).await?;
        resp.take_kvs().iter().map(|kv| Ok((decode(kv.value(), "park entry")?, kv.mod_revision()))).collect()
    }

    pub(super) async fn parked_tasks(&self, id: JobId) -> Result<Vec<ParkEntry>, Error> {
        let mut entries: Vec<ParkEntry> = self.entries(id).await?.into_iter().map(|(e, _)| e).collect();
        entries.sort_by(|a, b| a.atom.cmp(&b.atom));
        Ok(entries)
    }

    /// Reads an entry, the job's state and its owner in one txn.
    async fn read_park(
        &self,
        id: JobId,
        atom: &str,
    ) -> Result<(Option<(ParkEntry, i64)>, StateRecord, i64, bool), Error> {
        let keys = &self.keys;
        let txn = Txn::new().and_then([
            TxnOp::get(keys.park(id, atom), None),
            TxnOp::get(keys.state(id), None),
            TxnOp::get(keys.owner(id), None),
        ]);
        let resp = self.txn(txn, &format!("reading a parked task of job {id}")).await?;
        let entry = get_kv(&resp, 0).map(|kv| Ok::<_, Error>((decode(kv.value(), "park entry")?, kv.mod_revision())));
        let Some(state) = get_kv(&resp, 1) else { return Err(Error::TokenNotFound) };
        let owned = get_kv(&resp, 2).is_some();
        Ok((entry.transpose()?, decode(state.value(), "job state")?, state.mod_revision(), owned))
    }

    /// Writes a settled entry if it and the job's state are as read; a PARKED job
    /// becomes claimable in the same txn. False if something moved meanwhile.
    async fn settle(
        &self,
        id: JobId,
        entry: &ParkEntry,
        entry_rev: i64,
        state: &StateRecord,
        state_rev: i64,
        owned: bool,
    ) -> Result<bool, Error> {
        let keys = &self.keys;
        let mut ops = vec![
            TxnOp::put(keys.park(id, &entry.atom), encode(entry, "park entry")?, None),
            TxnOp::delete(keys.due(entry.deadline, id, &entry.atom), None),
        ];
        let deliver = state.current(owned) == JobState::Parked;
        if deliver {
            let next =
                state.apply(JobState::Parked, &Change::Deliver, now_millis()).map_err(|r| r.into_error(id, None))?;
            let encoded = encode(&next, "job state")?;
            ops.push(TxnOp::put(keys.state(id), encoded.clone(), None));
            ops.push(TxnOp::put(keys.queue(state.priority, id), encoded.clone(), None));
            ops.push(TxnOp::put(keys.flow_queue(&state.flow, state.priority, id), encoded, None));
            ops.push(TxnOp::delete(keys.parked(id), None));
        }
        let txn = Txn::new()
            .when([
                Compare::mod_revision(keys.park(id, &entry.atom), CompareOp::Equal, entry_rev),
                Compare::mod_revision(keys.state(id), CompareOp::Equal, state_rev),
            ])
            .and_then(ops);
        let landed = self.txn(txn, &format!("settling a parked task of job {id}")).await?.succeeded();
        if landed && deliver {
            self.with_local(|local| local.queue_put(keys.queue(state.priority, id).as_bytes()));
        }
        Ok(landed)
    }

    pub(super) async fn complete(
        &self,
        id: JobId,
        atom: &str,
        who: &Presenter<'_>,
        outcome: &TaskOutcome,
    ) -> Result<Completed, Error> {
        for _ in 0..ATTEMPTS {
            let (entry, state, state_rev, owned) = self.read_park(id, atom).await?;
            let entry_rev = entry.as_ref().map_or(0, |(_, rev)| *rev);
            let now = now_millis();
            let (settled, answer) =
                match parking::decide_complete(id, entry.as_ref().map(|(e, _)| e), who, outcome, now)? {
                    Verdict::Answer(answer) => return Ok(answer),
                    Verdict::Complete(done) => (done, Ok(Completed::Now)),
                    Verdict::Expire(expired) => {
                        (expired, Err(Error::ParkClosed { atom: atom.to_owned(), why: "its deadline passed".into() }))
                    }
                };
            if self.settle(id, &settled, entry_rev, &state, state_rev, owned).await? {
                return answer;
            }
        }
        Err(Error::Unavailable { message: format!("job {id} kept changing while completing {atom}"), source: None })
    }

    /// Times out due entries, earliest deadline first: reads the index up to now only.
    pub(super) async fn time_out_due(&self, limit: usize) -> Result<usize, Error> {
        let keys = &self.keys;
        let now = now_millis();
        let end = format!("{}{:013}0", keys.due_prefix(), now);
        let options =
            GetOptions::new().with_range(end).with_limit(i64::try_from(limit).unwrap_or(i64::MAX)).with_keys_only();
        let mut resp = self.get(keys.due_prefix(), Some(options), "reading due parked tasks").await?;
        let mut timed_out = 0;
        for kv in resp.take_kvs() {
            if self.time_out_one(&kv, now).await? {
                timed_out += 1;
            }
        }
        Ok(timed_out)
    }

    /// One due key: time its entry out, or drop the key if the entry moved on.
    async fn time_out_one(&self, due: &KeyValue, now: Millis) -> Result<bool, Error> {
        let Some((id, atom)) = self.keys.parse_due(due.key()) else { return Ok(false) };
        for _ in 0..ATTEMPTS {
            let read = match self.read_park(id, &atom).await {
                Ok(read) => Some(read),
                // The job is gone (purged): so is the reason for this key.
                Err(Error::TokenNotFound) => None,
                Err(e) => return Err(e),
            };
            let Some((Some((entry, entry_rev)), state, state_rev, owned)) = read else {
                self.txn(Txn::new().and_then([TxnOp::delete(due.key().to_vec(), None)]), "dropping a stale due key")
                    .await?;
                return Ok(false);
            };
            let Some(expired) = parking::decide_timeout(&entry, entry.attempt, now) else {
                // Settled, or re-parked with a later deadline: this key is stale.
                if self.keys.due(entry.deadline, id, &atom).as_bytes() != due.key()
                    || entry.state != parking::ParkState::Parked
                {
                    self.txn(
                        Txn::new().and_then([TxnOp::delete(due.key().to_vec(), None)]),
                        "dropping a stale due key",
                    )
                    .await?;
                }
                return Ok(false);
            };
            if self.settle(id, &expired, entry_rev, &state, state_rev, owned).await? {
                tracing::info!(job = %id, atom = %atom, attempt = expired.attempt, "parked task timed out");
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The owner parks job `id` (see `Claim::park`).
    pub(super) async fn park_job(
        &self,
        id: JobId,
        token: FenceToken,
        waiting: &[(String, u32)],
    ) -> Result<Parking, Error> {
        let keys = &self.keys;
        let lost = || Error::ClaimLost { job: id, token };
        for _ in 0..ATTEMPTS {
            if self.session.lost.is_cancelled() {
                self.lose(id, token);
                return Err(lost());
            }
            let entries = self.entries(id).await?;
            let settled: Vec<ParkEntry> = entries.iter().map(|(e, _)| e.clone()).collect();
            let delivered = delivered_for(&settled, waiting);
            if !delivered.is_empty() {
                return Ok(Parking::Delivered(delivered));
            }
            let (state, state_rev, _) = self.read_state(id).await?;
            if state.cancel_requested {
                return Ok(Parking::Cancelled);
            }
            let next = state.apply(state.state, &Change::Park, now_millis()).map_err(|r| r.into_error(id, None))?;
            let revs: HashMap<&str, i64> = entries.iter().map(|(e, rev)| (e.atom.as_str(), *rev)).collect();
            let mut when = vec![
                Compare::mod_revision(keys.owner(id), CompareOp::Equal, token as i64),
                Compare::lease(keys.owner(id), CompareOp::Equal, self.session.lease),
                Compare::mod_revision(keys.state(id), CompareOp::Equal, state_rev),
                self.epoch.compare(),
            ];
            for (atom, _) in waiting {
                let rev = revs.get(atom.as_str()).copied().unwrap_or(0);
                when.push(Compare::mod_revision(keys.park(id, atom), CompareOp::Equal, rev));
            }
            let txn = Txn::new()
                .when(when)
                .and_then([
                    TxnOp::put(keys.state(id), encode(&next, "job state")?, None),
                    TxnOp::delete(keys.owner(id), None),
                    TxnOp::delete(keys.held(id), None),
                    TxnOp::put(keys.parked(id), Vec::new(), None),
                ])
                .or_else([TxnOp::get(keys.owner(id), None), self.epoch.get()]);
            let resp = self.txn(txn, &format!("parking job {id} under claim {token}")).await?;
            if resp.succeeded() {
                self.forget(id, token);
                return Ok(Parking::Parked);
            }
            let ours =
                get_kv(&resp, 0).is_some_and(|o| o.mod_revision() as u64 == token && o.lease() == self.session.lease);
            if !ours || !self.epoch.is_current(get_kv(&resp, 1).as_ref()) {
                self.lose(id, token);
                return Err(lost());
            }
        }
        Err(Error::Unavailable { message: format!("job {id} kept changing while parking it"), source: None })
    }

    /// The compares and puts that kill job `id`'s parked entries along with a cancel.
    pub(super) async fn cancel_park_ops(&self, id: JobId) -> Result<(Vec<Compare>, Vec<TxnOp>), Error> {
        let keys = &self.keys;
        let now = now_millis();
        let (mut when, mut ops) = (Vec::new(), Vec::new());
        for (entry, rev) in self.entries(id).await? {
            if let Some(cancelled) = parking::cancel_entry(&entry, now) {
                when.push(Compare::mod_revision(keys.park(id, &entry.atom), CompareOp::Equal, rev));
                ops.push(TxnOp::put(keys.park(id, &entry.atom), encode(&cancelled, "park entry")?, None));
                ops.push(TxnOp::delete(keys.due(entry.deadline, id, &entry.atom), None));
            }
        }
        Ok((when, ops))
    }
}

/// The owner's logbook write: entries (and due keys) for atoms written PARKED
/// and not yet notified, to go in the same txn as the atoms.
pub(crate) async fn entry_puts(
    storage: &super::storage::EtcdStorage,
    atoms: &[&flows::AtomDetail],
) -> Result<Vec<(String, Vec<u8>)>, Error> {
    let mut puts = Vec::new();
    // Only a first park (or a re-issued token) writes an entry: the notified flag's write does not read.
    let fresh = |a: &&&flows::AtomDetail| a.state == flows::AtomState::Parked && a.park().is_some_and(|r| !r.notified);
    for atom in atoms.iter().filter(fresh) {
        let before = storage.park_entry(&atom.name).await?;
        if let Some(entry) = ParkEntry::for_atom(atom, before.as_ref()) {
            let keys = storage.keys();
            puts.push((keys.park(storage.job(), &atom.name), encode(&entry, "park entry")?));
            puts.push((keys.due(entry.deadline, storage.job(), &atom.name), Vec::new()));
        }
    }
    Ok(puts)
}
