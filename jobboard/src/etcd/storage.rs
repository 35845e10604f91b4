//! `EtcdStorage`: a job's logbook in etcd, every write fenced by the claim.
//!
//! The book is split in keys (header, one per flow detail, one per atom
//! detail; see [`super::keys`]) so that an engine write is a few small puts.
//! Each write is a txn whose compare is the claim's fence (the owner key's mod
//! revision equals the token and it is on our lease, in the board epoch of the
//! claim), so a conductor whose
//! claim was lost cannot write: it gets `ClaimLost` and nothing changes.
//!
//! `save_changes` checks and encodes its whole batch first (a bad value
//! writes nothing), then writes it in one txn, or, past etcd's per-txn limits
//! (op count, request bytes), in several txns in order: each later one also
//! requires the flow key, and a crash between them leaves a prefix.
//!
//! A logbook is written only under a claim (fenced), so on a job's first claim
//! it is known to be empty: until the claim's first write *attempt*, its
//! storages answer `load_flow`/`load_book` with `None` and `save_book` skips
//! reading the header, with no request to etcd ([`KnownEmpty`], one per
//! claim). Any write attempt clears that before it is sent: a write whose
//! reply was lost may still have been applied, so from then on we read.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use etcd_client::{Compare, CompareOp, GetOptions, KvClient, Txn, TxnOp};
use flows::{AtomDetail, FlowChanges, FlowDetail, LogBook, Storage, StorageError};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::batch::{Batcher, Committed, Member};
use super::codec::{check_size, decode, encode};
use super::keys::Keys;
use super::owner::get_kv;
use super::send_get;
use super::Inner;
use crate::claim::FenceToken;
use crate::error::Error;
use crate::job::{BoardConfig, JobId};

/// What a claim's writes are fenced by.
#[derive(Debug, Clone)]
pub(super) struct Fence {
    /// The session lease the owner key must be on.
    pub(super) lease: i64,
    /// The owner key's mod revision at the claim.
    pub(super) token: FenceToken,
    /// The session's `lost`: once it fires (self-fencing after missed renewals)
    /// writes are refused here, even while etcd still holds the lease.
    pub(super) session_lost: CancellationToken,
    /// The board epoch the claim was made in (see `epoch`).
    pub(super) epoch: super::epoch::BoardEpoch,
    /// The session's revision watermark, noted on every write.
    pub(super) revisions: Arc<super::session::Revisions>,
}

/// "This claim's logbook is still empty": true from a job's first claim until
/// the claim's first logbook write attempt. Clones share the flag.
#[derive(Debug, Clone)]
pub(super) struct KnownEmpty(Arc<AtomicBool>);

impl KnownEmpty {
    pub(super) fn new(empty: bool) -> Self {
        KnownEmpty(Arc::new(AtomicBool::new(empty)))
    }

    fn get(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// A write is about to be tried: from now on, read. Returns whether it was still empty.
    fn clear(&self) -> bool {
        self.0.swap(false, Ordering::AcqRel)
    }
}

/// The fenced logbook of one claimed job.
#[derive(Clone)]
pub struct EtcdStorage {
    kv: KvClient,
    /// Writes go through the board's batcher: a logbook write is a hot write (`batch`).
    batcher: Arc<Batcher>,
    keys: Keys,
    fence: Fence,
    max_value_bytes: usize,
    job: JobId,
    book_empty: KnownEmpty,
}

impl std::fmt::Debug for EtcdStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStorage").field("job", &self.job).field("token", &self.fence.token).finish()
    }
}

impl EtcdStorage {
    pub(super) fn new(
        kv: KvClient,
        batcher: Arc<Batcher>,
        keys: Keys,
        fence: Fence,
        config: &BoardConfig,
        job: JobId,
        book_empty: KnownEmpty,
    ) -> Self {
        EtcdStorage { kv, batcher, keys, fence, max_value_bytes: config.max_value_bytes, job, book_empty }
    }

    /// The whole logbook: none without a request while it is known to be empty.
    async fn read(&self) -> Result<Option<LogBook>, Error> {
        if self.book_empty.get() {
            return Ok(None);
        }
        read_book(&self.kv, &self.keys, self.job).await
    }

    fn compares(&self) -> [Compare; 3] {
        let owner = self.keys.owner(self.job);
        [
            Compare::mod_revision(owner.clone(), CompareOp::Equal, self.fence.token as i64),
            Compare::lease(owner, CompareOp::Equal, self.fence.lease),
            self.fence.epoch.compare(),
        ]
    }

    fn check_book(&self, book: Uuid) -> Result<(), StorageError> {
        if book != self.job {
            return Err(StorageError::Rejected {
                what: format!("logbook {book}"),
                message: format!("this storage holds only the logbook of job {}", self.job),
            });
        }
        Ok(())
    }

    /// Runs a fenced write; `ClaimLost` if the fence fails, `NotFound(what)` if an extra compare does.
    async fn fenced(&self, extra: Vec<Compare>, ops: Vec<TxnOp>, missing: &str) -> Result<(), StorageError> {
        if self.fence.session_lost.is_cancelled() {
            return Err(Error::ClaimLost { job: self.job, token: self.fence.token }.into());
        }
        let mut when = self.compares().to_vec();
        let checks_extra = !extra.is_empty();
        when.extend(extra);
        let owner = self.keys.owner(self.job);
        let member = Member::new(when, ops, vec![TxnOp::get(owner, None), self.fence.epoch.get()]);
        let Committed { resp, revision } = self.batcher.send(member, "writing a logbook").await?;
        self.fence.revisions.note(revision);
        if resp.succeeded() {
            return Ok(());
        }
        let same_epoch = self.fence.epoch.is_current(get_kv(&resp, 1).as_ref());
        match get_kv(&resp, 0) {
            Some(kv)
                if checks_extra
                    && same_epoch
                    && kv.mod_revision() as u64 == self.fence.token
                    && kv.lease() == self.fence.lease =>
            {
                Err(StorageError::NotFound(missing.to_string()))
            }
            _ => Err(Error::ClaimLost { job: self.job, token: self.fence.token }.into()),
        }
    }

    async fn get_one(&self, key: String) -> Result<Option<Vec<u8>>, StorageError> {
        let mut resp = send_get(&self.kv, key.as_bytes(), None, "reading a logbook").await?;
        Ok(resp.take_kvs().pop().map(|kv| kv.into_key_value().1))
    }

    /// The park entry of `atom` of this job, if it ever parked.
    pub(crate) async fn park_entry(&self, atom: &str) -> Result<Option<crate::parking::ParkEntry>, Error> {
        let key = self.keys.park(self.job, atom);
        let mut resp = send_get(&self.kv, key.as_bytes(), None, "reading a park entry").await?;
        resp.take_kvs().first().map(|kv| decode(kv.value(), "park entry")).transpose()
    }

    pub(crate) fn keys(&self) -> &Keys {
        &self.keys
    }

    pub(crate) fn job(&self) -> JobId {
        self.job
    }

    /// Checks and encodes a whole batch before anything is written, so that a
    /// bad value refuses the batch instead of leaving part of it behind.
    fn encode_changes(&self, flow: Uuid, changes: &FlowChanges<'_>) -> Result<Batch, Error> {
        let limit = self.max_value_bytes;
        let mut batch = Batch { header: None, puts: Vec::with_capacity(changes.atoms.len() + 1) };
        if let Some(detail) = changes.flow {
            let own = FlowDetail {
                id: flow,
                name: detail.name.clone(),
                state: detail.state,
                meta: detail.meta.clone(),
                version: detail.version,
                atoms: Default::default(),
            };
            let bytes = encode(&own, "flow detail")?;
            if bytes.len() > limit {
                return Err(too_large(format!("flow detail {}", detail.name), bytes.len(), limit));
            }
            batch.puts.push((self.keys.book_flow(self.job, flow), bytes));
            // The book springs into being with its first flow, as in MemoryStorage.
            let header_key = self.keys.book_header(self.job);
            let header = encode(&LogBook::new(self.job, detail.name.clone()), "logbook header")?;
            batch.header = Some(
                Txn::new()
                    .when([Compare::create_revision(header_key.clone(), CompareOp::Equal, 0)])
                    .and_then([TxnOp::put(header_key, header, None)]),
            );
        }
        for atom in changes.atoms {
            let bytes = encode(atom, "atom detail")?;
            if bytes.len() > limit {
                // Name the result when it alone is over the limit: that is what the task must shrink.
                if let Some(result) = &atom.result {
                    check_size(&format!("result of atom {}", atom.name), result, limit)?;
                }
                return Err(too_large(format!("atom detail {}", atom.name), bytes.len(), limit));
            }
            batch.puts.push((self.keys.book_atom(self.job, flow, &atom.name), bytes));
        }
        Ok(batch)
    }
}

fn too_large(what: String, size: usize, limit: usize) -> Error {
    Error::TooLarge { what, size, limit }
}

#[async_trait::async_trait]
impl Storage for EtcdStorage {
    async fn save_book(&self, book: &LogBook) -> Result<(), StorageError> {
        self.check_book(book.id)?;
        let key = self.keys.book_header(self.job);
        // Cleared before anything is sent, even if this write is then refused below.
        let existing = if self.book_empty.clear() { None } else { self.get_one(key.clone()).await? };
        let created_at = match existing {
            Some(bytes) => decode::<LogBook>(&bytes, "logbook header")?.created_at,
            None => book.created_at,
        };
        let header =
            LogBook { flows: Default::default(), created_at, updated_at: flows::logbook::now_millis(), ..book.clone() };
        let bytes = encode(&header, "logbook header")?;
        if bytes.len() > self.max_value_bytes {
            return Err(too_large("logbook meta".into(), bytes.len(), self.max_value_bytes).into());
        }
        self.fenced(Vec::new(), vec![TxnOp::put(key, bytes, None)], "").await
    }

    async fn load_book(&self, book: Uuid) -> Result<Option<LogBook>, StorageError> {
        self.check_book(book)?;
        Ok(self.read().await?)
    }

    async fn load_flow(&self, book: Uuid, flow: Uuid) -> Result<Option<FlowDetail>, StorageError> {
        self.check_book(book)?;
        Ok(self.read().await?.and_then(|mut b| b.flows.remove(&flow)))
    }

    async fn save_changes(&self, book: Uuid, flow: Uuid, changes: FlowChanges<'_>) -> Result<(), StorageError> {
        if changes.is_empty() {
            return Ok(());
        }
        self.check_book(book)?;
        let planned = self.plan(flow, &changes).await?;
        self.write_planned(planned).await
    }
}

/// A logbook batch as the fenced txns that write it, in order.
pub(super) struct Planned {
    /// Each txn's puts and the compares it needs beyond the fence.
    pub(super) txns: Vec<(Vec<TxnOp>, Vec<Compare>)>,
    /// What `NotFound` names if a txn's flow is missing.
    missing: String,
}

impl EtcdStorage {
    /// Checks and encodes a batch and splits it into txns (see the module doc);
    /// nothing is sent, so a bad batch writes nothing.
    pub(super) async fn plan(&self, flow: Uuid, changes: &FlowChanges<'_>) -> Result<Planned, Error> {
        let mut batch = self.encode_changes(flow, changes)?;
        batch.puts.extend(super::parks::entry_puts(self, changes.atoms).await?);
        let exists = Compare::create_revision(self.keys.book_flow(self.job, flow), CompareOp::NotEqual, 0);
        let mut header = batch.header;
        let txns = split_in_txns(batch.puts)
            .into_iter()
            .map(|chunk| {
                let mut ops: Vec<TxnOp> = chunk.into_iter().map(|(key, value)| TxnOp::put(key, value, None)).collect();
                // The first txn creates the flow (if it carries the flow's fields);
                // every other one writes atoms, so the flow must already exist.
                match header.take() {
                    Some(create_header) => {
                        ops.push(TxnOp::txn(create_header));
                        (ops, Vec::new())
                    }
                    None => (ops, vec![exists.clone()]),
                }
            })
            .collect();
        Ok(Planned { txns, missing: format!("flow {flow} in logbook {}", self.job) })
    }

    /// Sends planned txns in order, each fenced; stops at the first refusal.
    pub(super) async fn write_planned(&self, planned: Planned) -> Result<(), StorageError> {
        // Nothing was sent for a batch refused while planning, so the book is as empty as it was.
        self.book_empty.clear();
        for (ops, extra) in planned.txns {
            self.fenced(extra, ops, &planned.missing).await?;
        }
        Ok(())
    }

    /// About to send a write some other way (folded into an owner txn): from now on, read.
    pub(super) fn written(&self) {
        self.book_empty.clear();
    }
}

/// A `FlowChanges` checked and encoded: the puts in order, and the txn that
/// creates the book header if absent (when the flow's fields are written).
struct Batch {
    header: Option<Txn>,
    puts: Vec<(String, Vec<u8>)>,
}

/// Puts per txn: etcd's default `--max-txn-ops` is 128; the header txn and compares fit in the rest.
const MAX_TXN_PUTS: usize = 64;

/// Value bytes per txn: etcd's default request limit is 1.5 MiB; keys and framing fit in the rest.
const MAX_TXN_VALUE_BYTES: usize = 1024 * 1024;

/// Splits puts into runs, in order, that each fit one etcd txn: at most
/// [`MAX_TXN_PUTS`] puts and [`MAX_TXN_VALUE_BYTES`] of values, except that a
/// single larger value (allowed by a raised `max_value_bytes`) goes alone.
/// etcd refuses a txn that puts one key twice, so an atom changed twice in a
/// batch starts a new run: both writes land, in order, as the batch says.
fn split_in_txns(puts: Vec<(String, Vec<u8>)>) -> Vec<Vec<(String, Vec<u8>)>> {
    let mut chunks: Vec<Vec<(String, Vec<u8>)>> = Vec::new();
    let mut bytes = 0;
    for put in puts {
        let size = put.1.len();
        match chunks.last_mut() {
            Some(chunk)
                if chunk.len() < MAX_TXN_PUTS
                    && bytes + size <= MAX_TXN_VALUE_BYTES
                    && !chunk.iter().any(|(key, _)| *key == put.0) =>
            {
                bytes += size;
                chunk.push(put);
            }
            _ => {
                bytes = size;
                chunks.push(vec![put]);
            }
        }
    }
    chunks
}

/// Reads a whole logbook: header, flows, atoms. `None` if it was never saved.
async fn read_book(kv: &KvClient, keys: &Keys, job: JobId) -> Result<Option<LogBook>, Error> {
    let prefix = keys.book_prefix(job);
    let doing = format!("reading the logbook of job {job}");
    let mut resp = send_get(kv, prefix.as_bytes(), Some(&GetOptions::new().with_prefix()), &doing).await?;
    let mut book: Option<LogBook> = None;
    let mut flows = Vec::new();
    let mut atoms = Vec::new();
    for kv in resp.take_kvs() {
        let rest = String::from_utf8_lossy(&kv.key()[prefix.len()..]).into_owned();
        if rest == "book" {
            book = Some(decode(kv.value(), "logbook header")?);
        } else if rest.starts_with("flow/") {
            flows.push(decode::<FlowDetail>(kv.value(), "flow detail")?);
        } else if let Some(tail) = rest.strip_prefix("atom/") {
            let flow = tail.split('/').next().and_then(|f| f.parse::<Uuid>().ok());
            if let Some(flow) = flow {
                atoms.push((flow, decode::<AtomDetail>(kv.value(), "atom detail")?));
            }
        }
    }
    let Some(mut book) = book else { return Ok(None) };
    for flow in flows {
        book.flows.insert(flow.id, flow);
    }
    for (flow, atom) in atoms {
        if let Some(detail) = book.flows.get_mut(&flow) {
            detail.atoms.insert(atom.name.clone(), atom);
        }
    }
    Ok(Some(book))
}

/// The read side of `JobBoard::logbook`.
pub(super) async fn load_logbook(inner: &Inner, id: JobId) -> Result<Option<LogBook>, Error> {
    read_book(&inner.kv, &inner.keys, id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn puts(sizes: &[usize]) -> Vec<(String, Vec<u8>)> {
        sizes.iter().enumerate().map(|(i, n)| (format!("k{i}"), vec![b'x'; *n])).collect()
    }

    fn shape(chunks: &[Vec<(String, Vec<u8>)>]) -> Vec<usize> {
        chunks.iter().map(Vec::len).collect()
    }

    #[test]
    fn split_keeps_order_and_limits() {
        assert!(split_in_txns(Vec::new()).is_empty());
        assert_eq!(shape(&split_in_txns(puts(&[10; 130]))), vec![64, 64, 2], "by count");
        let tenth = MAX_TXN_VALUE_BYTES / 10;
        assert_eq!(shape(&split_in_txns(puts(&[tenth; 25]))), vec![10, 10, 5], "by bytes");
        let big = MAX_TXN_VALUE_BYTES + 1;
        assert_eq!(shape(&split_in_txns(puts(&[1, big, 1, 1]))), vec![1, 1, 2], "an oversize value goes alone");
        let mut twice = puts(&[1, 1, 1]);
        twice[2].0 = "k0".into();
        assert_eq!(shape(&split_in_txns(twice)), vec![2, 1], "a key put twice starts a new txn");
        let keys: Vec<String> = split_in_txns(puts(&[tenth; 25])).into_iter().flatten().map(|(k, _)| k).collect();
        assert_eq!(keys, (0..25).map(|i| format!("k{i}")).collect::<Vec<_>>());
    }
}
