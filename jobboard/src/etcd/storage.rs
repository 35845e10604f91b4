//! `EtcdStorage`: a job's logbook in etcd, every write fenced by the claim.
//!
//! The book is split in keys (header, one per flow detail, one per atom
//! detail; see [`super::keys`]) so that each engine write is one small put.
//! Each write is a txn whose compare is the claim's fence (the owner key's mod
//! revision equals the token and it is on our lease), so a conductor whose
//! claim was lost cannot write: it gets `ClaimLost` and nothing changes.

use etcd_client::{Compare, CompareOp, GetOptions, KvClient, Txn, TxnOp};
use flows::{AtomDetail, FlowDetail, LogBook, Storage, StorageError};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::bounded;
use super::codec::{check_size, decode, encode};
use super::keys::Keys;
use super::owner::get_kv;
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
}

/// The fenced logbook of one claimed job.
#[derive(Clone)]
pub struct EtcdStorage {
    kv: KvClient,
    keys: Keys,
    fence: Fence,
    max_value_bytes: usize,
    job: JobId,
}

impl std::fmt::Debug for EtcdStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStorage").field("job", &self.job).field("token", &self.fence.token).finish()
    }
}

impl EtcdStorage {
    pub(super) fn new(kv: KvClient, keys: Keys, fence: Fence, config: &BoardConfig, job: JobId) -> Self {
        EtcdStorage { kv, keys, fence, max_value_bytes: config.max_value_bytes, job }
    }

    fn compares(&self) -> [Compare; 2] {
        let owner = self.keys.owner(self.job);
        [
            Compare::mod_revision(owner.clone(), CompareOp::Equal, self.fence.token as i64),
            Compare::lease(owner, CompareOp::Equal, self.fence.lease),
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
        let txn = Txn::new().when(when).and_then(ops).or_else([TxnOp::get(owner, None)]);
        let resp = bounded(self.kv.clone().txn(txn), "writing a logbook").await?;
        if resp.succeeded() {
            return Ok(());
        }
        match get_kv(&resp, 0) {
            Some(kv)
                if checks_extra && kv.mod_revision() as u64 == self.fence.token && kv.lease() == self.fence.lease =>
            {
                Err(StorageError::NotFound(missing.to_string()))
            }
            _ => Err(Error::ClaimLost { job: self.job, token: self.fence.token }.into()),
        }
    }

    async fn get_one(&self, key: String) -> Result<Option<Vec<u8>>, StorageError> {
        let mut resp = bounded(self.kv.clone().get(key, None), "reading a logbook").await?;
        Ok(resp.take_kvs().pop().map(|kv| kv.into_key_value().1))
    }
}

fn too_large(what: String, size: usize, limit: usize) -> StorageError {
    Error::TooLarge { what, size, limit }.into()
}

#[async_trait::async_trait]
impl Storage for EtcdStorage {
    async fn save_book(&self, book: &LogBook) -> Result<(), StorageError> {
        self.check_book(book.id)?;
        let key = self.keys.book_header(self.job);
        let created_at = match self.get_one(key.clone()).await? {
            Some(bytes) => decode::<LogBook>(&bytes, "logbook header")?.created_at,
            None => book.created_at,
        };
        let header =
            LogBook { flows: Default::default(), created_at, updated_at: flows::logbook::now_millis(), ..book.clone() };
        let bytes = encode(&header, "logbook header")?;
        if bytes.len() > self.max_value_bytes {
            return Err(too_large("logbook meta".into(), bytes.len(), self.max_value_bytes));
        }
        self.fenced(Vec::new(), vec![TxnOp::put(key, bytes, None)], "").await
    }

    async fn load_book(&self, book: Uuid) -> Result<Option<LogBook>, StorageError> {
        self.check_book(book)?;
        Ok(read_book(&self.kv, &self.keys, self.job).await?)
    }

    async fn save_flow(&self, book: Uuid, flow: &FlowDetail) -> Result<(), StorageError> {
        self.check_book(book)?;
        let detail = FlowDetail { atoms: Default::default(), ..flow.clone() };
        let bytes = encode(&detail, "flow detail")?;
        if bytes.len() > self.max_value_bytes {
            return Err(too_large(format!("flow detail {}", flow.name), bytes.len(), self.max_value_bytes));
        }
        let header_key = self.keys.book_header(self.job);
        let header = encode(&LogBook::new(self.job, flow.name.clone()), "logbook header")?;
        // The book springs into being with its first flow, as in MemoryStorage.
        let create_header = Txn::new()
            .when([Compare::create_revision(header_key.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(header_key, header, None)]);
        let ops = vec![TxnOp::put(self.keys.book_flow(self.job, flow.id), bytes, None), TxnOp::txn(create_header)];
        self.fenced(Vec::new(), ops, "").await
    }

    async fn load_flow(&self, book: Uuid, flow: Uuid) -> Result<Option<FlowDetail>, StorageError> {
        self.check_book(book)?;
        Ok(read_book(&self.kv, &self.keys, self.job).await?.and_then(|mut b| b.flows.remove(&flow)))
    }

    async fn save_atom(&self, book: Uuid, flow: Uuid, atom: &AtomDetail) -> Result<(), StorageError> {
        self.check_book(book)?;
        if let Some(result) = &atom.result {
            check_size(&format!("result of atom {}", atom.name), result, self.max_value_bytes)?;
        }
        let bytes = encode(atom, "atom detail")?;
        if bytes.len() > self.max_value_bytes {
            return Err(too_large(format!("atom detail {}", atom.name), bytes.len(), self.max_value_bytes));
        }
        let flow_key = self.keys.book_flow(self.job, flow);
        let exists = Compare::create_revision(flow_key, CompareOp::NotEqual, 0);
        let put = TxnOp::put(self.keys.book_atom(self.job, flow, &atom.name), bytes, None);
        self.fenced(vec![exists], vec![put], &format!("flow {flow} in logbook {book}")).await
    }
}

/// Reads a whole logbook: header, flows, atoms. `None` if it was never saved.
async fn read_book(kv: &KvClient, keys: &Keys, job: JobId) -> Result<Option<LogBook>, Error> {
    let prefix = keys.book_prefix(job);
    let doing = format!("reading the logbook of job {job}");
    let mut resp = bounded(kv.clone().get(prefix.clone(), Some(GetOptions::new().with_prefix())), &doing).await?;
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
