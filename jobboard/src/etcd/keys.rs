//! The etcd key layout of the job board, and the functions that build and parse keys.
//!
//! Every key starts with the configured prefix `P` (default `/baton/`). Ids are
//! time-ordered UUIDs (version 7 layout, monotonic within a process), so key
//! order under `spec/` and `m/state/` is creation order.
//!
//! | key | value | lease | written by |
//! |---|---|---|---|
//! | `P spec/<id>` | job spec JSON: flow, store, priority, idempotency key, created | - | post (immutable) |
//! | `P idem/<key-hex>` | job id | - | post, in the same txn as the job |
//! | `P book/<id>/book` | logbook header JSON (no flows) | - | owner, fenced |
//! | `P book/<id>/flow/<flow-id>` | flow detail JSON (no atoms) | - | owner, fenced |
//! | `P book/<id>/atom/<flow-id>/<atom-name>` | atom detail JSON | - | owner, fenced |
//! | `P done/<finished-ms:013>/<id>` | empty: finished jobs by finish time | - | consume/trash/cancel/quarantine; read by purge |
//! | `P m/state/<id>` | small mutable state JSON: state, claims, outcome, failure, cancel flag | - | every transition |
//! | `P m/owner/<id>` | owner name; present = CLAIMED; fencing token = its create revision | session lease | claim |
//! | `P m/held/<id>` | empty; the job was claimed and not yet released (finds orphans after a lease expiry) | - | claim |
//! | `P m/queue/<inv-prio:010>/<id>` | copy of the state JSON (same revision as `m/state`): claimable index over all flows | - | post, abandon, re-queue |
//! | `P m/fqueue/<flow-hex>/<inv-prio:010>/<id>` | same as `queue`: claimable index per flow | - | same txns as `queue` |
//! | `P m/conductor/<name>` | `ConductorInfo` JSON | session lease | register_conductor |
//! | `P defs/v/<name>/<version:010>` | flow definition version JSON: name, version, hash, source, applied | - | apply (immutable) |
//! | `P defs/current/<name>` | the current version's number | - | apply, in the same txn as the version |
//! | `P m/epoch` | the board epoch, a number; compared by every claim and owner write (see `epoch`) | - | first session; bumped on an etcd restore |
//! | `P m/park/<id>/<atom-hex>` | park entry JSON: attempt, token hash, deadline, state, outcome (see `parking`) | - | owner's logbook txn (park); completion, timeout, cancel (conditional) |
//! | `P due/<deadline-ms:013>/<id>/<atom-hex>` | empty: parked tasks by deadline, read only up to now | - | with the entry; deleted when it is settled |
//! | `P format` | the board's format version, a number (see `format`) | - | first session (conditional create); each migration step |
//! | `P floor` | the list floor: an id no job's id is below, where `list` starts (see `floor`) | - | first session (conditional create); raised by the purge and by a listing that finds a gap; compared by every post |
//! | `P parked/<id>` | empty: PARKED jobs, in id (= age) order; counted for the backlog | - | park; deleted by deliver and cancel (same txns) |
//! | `P m/sync` | empty: a listing's barrier; its put's event tells that the board watch has applied every earlier write (see `list_live`) | - | a CLAIMED or UNCLAIMED listing whose board watch is behind etcd's revision |
//!
//! `inv-prio` is `i32::MAX - priority` zero-padded, so ascending key order is
//! priority descending, then id (= age) ascending. Every board watches `P m/`
//! (small values only): a `queue` put or an `owner` delete by lease expiry
//! wakes claimers; a `state` put carrying the cancel flag reaches the owner.
//!
//! `list` ranges `state` keys from the floor (or a page token) in id-time windows
//! (`windows`: `[P m/state/<id at t>, P m/state/<id at t+w>)` holds the jobs created in
//! `[t, t+w)`), so that etcd walks the page's neighbourhood, not every job kept. It reads
//! the indexes too: with a CLAIMED filter it ranges `owner` keys (id order), with an
//! UNCLAIMED filter the keys of `queue` (or one flow's `fqueue`), `held` and `owner`;
//! then only the page's `state`, `owner` and `spec` records (see `list`). While the board
//! watch is running, those CLAIMED and UNCLAIMED candidates come from the keys it has seen
//! instead (`list_live`), so that a listing does not walk the deleted keys of those prefixes.

use crate::job::JobId;

/// Builds keys under one prefix.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Self {
        let mut prefix = prefix.to_string();
        if !prefix.ends_with('/') {
            prefix.push('/');
        }
        Keys { prefix }
    }

    pub(crate) fn spec(&self, id: JobId) -> String {
        format!("{}spec/{id}", self.prefix)
    }

    pub(crate) fn idem(&self, key: &str) -> String {
        format!("{}idem/{}", self.prefix, hex(key))
    }

    pub(crate) fn book_prefix(&self, id: JobId) -> String {
        format!("{}book/{id}/", self.prefix)
    }

    pub(crate) fn book_header(&self, id: JobId) -> String {
        format!("{}book/{id}/book", self.prefix)
    }

    pub(crate) fn book_flow(&self, id: JobId, flow: uuid::Uuid) -> String {
        format!("{}book/{id}/flow/{flow}", self.prefix)
    }

    pub(crate) fn book_atom(&self, id: JobId, flow: uuid::Uuid, atom: &str) -> String {
        format!("{}book/{id}/atom/{flow}/{atom}", self.prefix)
    }

    pub(crate) fn done_prefix(&self) -> String {
        format!("{}done/", self.prefix)
    }

    pub(crate) fn done(&self, finished_ms: u64, id: JobId) -> String {
        format!("{}done/{finished_ms:013}/{id}", self.prefix)
    }

    /// Everything every board watches.
    pub(crate) fn watched(&self) -> String {
        format!("{}m/", self.prefix)
    }

    pub(crate) fn state_prefix(&self) -> String {
        format!("{}m/state/", self.prefix)
    }

    pub(crate) fn state(&self, id: JobId) -> String {
        format!("{}m/state/{id}", self.prefix)
    }

    pub(crate) fn owner_prefix(&self) -> String {
        format!("{}m/owner/", self.prefix)
    }

    pub(crate) fn owner(&self, id: JobId) -> String {
        format!("{}m/owner/{id}", self.prefix)
    }

    pub(crate) fn held_prefix(&self) -> String {
        format!("{}m/held/", self.prefix)
    }

    pub(crate) fn held(&self, id: JobId) -> String {
        format!("{}m/held/{id}", self.prefix)
    }

    pub(crate) fn queue_prefix(&self) -> String {
        format!("{}m/queue/", self.prefix)
    }

    pub(crate) fn queue(&self, priority: i32, id: JobId) -> String {
        format!("{}m/queue/{}/{id}", self.prefix, inverted(priority))
    }

    /// Where every flow's queue lives.
    pub(crate) fn flow_queue_root(&self) -> String {
        format!("{}m/fqueue/", self.prefix)
    }

    pub(crate) fn flow_queue_prefix(&self, flow: &str) -> String {
        format!("{}m/fqueue/{}/", self.prefix, hex(flow))
    }

    pub(crate) fn flow_queue(&self, flow: &str, priority: i32, id: JobId) -> String {
        format!("{}{}/{id}", self.flow_queue_prefix(flow), inverted(priority))
    }

    pub(crate) fn worker_prefix(&self) -> String {
        format!("{}w/", self.prefix)
    }

    pub(crate) fn worker(&self, conductor: &str, id: &str) -> String {
        format!("{}w/{conductor}/{id}", self.prefix)
    }

    pub(crate) fn conductor_prefix(&self) -> String {
        format!("{}m/conductor/", self.prefix)
    }

    pub(crate) fn conductor(&self, name: &str) -> String {
        format!("{}m/conductor/{name}", self.prefix)
    }

    pub(crate) fn flow_versions_prefix(&self, name: &str) -> String {
        format!("{}defs/v/{name}/", self.prefix)
    }

    pub(crate) fn flow_version(&self, name: &str, version: u32) -> String {
        format!("{}defs/v/{name}/{version:010}", self.prefix)
    }

    pub(crate) fn flow_current_prefix(&self) -> String {
        format!("{}defs/current/", self.prefix)
    }

    pub(crate) fn flow_current(&self, name: &str) -> String {
        format!("{}defs/current/{name}", self.prefix)
    }

    /// `P sched/`: every schedule (see `schedules`).
    pub(crate) fn schedules_prefix(&self) -> String {
        format!("{}sched/", self.prefix)
    }

    pub(crate) fn schedule(&self, name: &str) -> String {
        format!("{}sched/{name}", self.prefix)
    }

    /// Every key of the board is under it.
    pub(crate) fn root(&self) -> &str {
        &self.prefix
    }

    /// The board's format version (see `format.rs`).
    pub(crate) fn format(&self) -> String {
        format!("{}format", self.prefix)
    }

    /// The list floor (see `floor`).
    pub(crate) fn floor(&self) -> String {
        format!("{}floor", self.prefix)
    }

    pub(crate) fn epoch(&self) -> String {
        format!("{}m/epoch", self.prefix)
    }

    /// A listing's barrier (see `list_live`).
    pub(crate) fn list_sync(&self) -> String {
        format!("{}m/sync", self.prefix)
    }

    /// Where a job's park entries live (watched: a settled entry reaches the owner).
    pub(crate) fn park_prefix(&self, id: JobId) -> String {
        format!("{}m/park/{id}/", self.prefix)
    }

    pub(crate) fn park(&self, id: JobId, atom: &str) -> String {
        format!("{}m/park/{id}/{}", self.prefix, hex(atom))
    }

    /// The index of PARKED jobs (not watched): what `backlog` counts.
    pub(crate) fn parked_prefix(&self) -> String {
        format!("{}parked/", self.prefix)
    }

    pub(crate) fn parked(&self, id: JobId) -> String {
        format!("{}parked/{id}", self.prefix)
    }

    /// The deadline index of parked tasks (not watched).
    /// Unfinished jobs by deadline (`P jdue/<deadline-ms>/<id>`), read only up to now.
    pub(crate) fn job_due_prefix(&self) -> String {
        format!("{}jdue/", self.prefix)
    }

    pub(crate) fn job_due(&self, deadline: u64, id: JobId) -> String {
        format!("{}jdue/{deadline:013}/{id}", self.prefix)
    }

    /// The deadline and job a `jdue` key names.
    pub(crate) fn parse_job_due(&self, key: &[u8]) -> Option<(u64, JobId)> {
        let key = std::str::from_utf8(key).ok()?;
        let (deadline, id) = key.strip_prefix(&self.job_due_prefix())?.split_once('/')?;
        Some((deadline.parse().ok()?, id.parse().ok()?))
    }

    pub(crate) fn due_prefix(&self) -> String {
        format!("{}due/", self.prefix)
    }

    pub(crate) fn due(&self, deadline: u64, id: JobId, atom: &str) -> String {
        format!("{}due/{deadline:013}/{id}/{}", self.prefix, hex(atom))
    }

    /// The job and atom a `due` key names.
    pub(crate) fn parse_due(&self, key: &[u8]) -> Option<(JobId, String)> {
        let key = std::str::from_utf8(key).ok()?;
        let mut parts = key.strip_prefix(&self.due_prefix())?.split('/');
        let (_deadline, id, atom) = (parts.next()?, parts.next()?, parts.next()?);
        Some((id.parse().ok()?, unhex(atom)?))
    }

    /// What kind of watched key this is, and the job it names.
    pub(crate) fn classify(&self, key: &[u8]) -> Option<Watched> {
        let key = std::str::from_utf8(key).ok()?;
        let rest = key.strip_prefix(&self.prefix)?.strip_prefix("m/")?;
        if rest == "epoch" {
            return Some(Watched::Epoch);
        }
        let (kind, tail) = rest.split_once('/')?;
        let id_of = |s: &str| s.rsplit('/').next().and_then(|s| s.parse::<JobId>().ok());
        match kind {
            "state" => id_of(tail).map(Watched::State),
            "owner" => id_of(tail).map(Watched::Owner),
            "held" => id_of(tail).map(Watched::Held),
            "queue" | "fqueue" => Some(Watched::Queue),
            "park" => tail.split('/').next().and_then(|s| s.parse().ok()).map(Watched::Park),
            _ => Some(Watched::Other),
        }
    }
}

/// A watched key, classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Watched {
    State(JobId),
    Owner(JobId),
    /// A `held` key of this job.
    Held(JobId),
    /// A park entry of this job.
    Park(JobId),
    Queue,
    Epoch,
    Other,
}

/// The job id at the end of a key (`.../<id>`).
pub(crate) fn id_at_end(key: &[u8]) -> Option<JobId> {
    let key = std::str::from_utf8(key).ok()?;
    key.rsplit('/').next()?.parse().ok()
}

/// The first key after every key that starts with `prefix` (etcd's range end for a prefix).
pub(crate) fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// The part of queue entry `key` under `root` (`P m/queue/` or a flow's
/// `P m/fqueue/<flow>/`) that names its priority, `/` included: every entry of
/// a higher priority sorts below it. `None` if `key` is not such an entry.
pub(crate) fn priority_dir<'k>(root: &[u8], key: &'k [u8]) -> Option<&'k [u8]> {
    let dir = root.len() + PRIORITY_DIGITS + 1;
    let fits = key.starts_with(root) && key.len() > dir && key[dir - 1] == b'/';
    fits.then(|| &key[..dir])
}

/// Digits of an inverted priority: fixed, so that key order is priority order.
const PRIORITY_DIGITS: usize = 10;

/// Priority mapped so that ascending key order is descending priority.
fn inverted(priority: i32) -> String {
    format!("{:0width$}", i64::from(i32::MAX) - i64::from(priority), width = PRIORITY_DIGITS)
}

/// Lowercase hex of a free-form name, so that no `/` in it can break the layout.
fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

/// The name [`hex`] encoded.
fn unhex(s: &str) -> Option<String> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> =
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect();
    String::from_utf8(bytes?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn higher_priority_sorts_first() {
        let keys = Keys::new("/p");
        let id = JobId::nil();
        assert!(keys.queue(10, id) < keys.queue(0, id));
        assert!(keys.queue(i32::MAX, id) < keys.queue(i32::MIN, id));
        assert!(keys.queue(0, id) < keys.queue(-1, id));
    }

    #[test]
    fn a_priority_dir_holds_its_priority_and_every_higher_one_sorts_below() {
        let keys = Keys::new("/p/");
        let id = JobId::from_u128(7);
        for (root, entry, higher) in [
            (keys.queue_prefix(), keys.queue(3, id), keys.queue(4, JobId::max())),
            (keys.flow_queue_prefix("a/b"), keys.flow_queue("a/b", 3, id), keys.flow_queue("a/b", 4, JobId::max())),
        ] {
            let dir = priority_dir(root.as_bytes(), entry.as_bytes()).expect("a queue entry has a priority dir");
            assert!(entry.as_bytes().starts_with(dir) && dir.ends_with(b"/"));
            assert!(higher.as_bytes() < dir, "a higher priority sorts below the dir");
            let older = entry.replace(&id.to_string(), &JobId::nil().to_string());
            assert!(older.as_bytes().starts_with(dir), "one dir per priority");
        }
        assert_eq!(priority_dir(keys.queue_prefix().as_bytes(), keys.state(id).as_bytes()), None);
        assert_eq!(priority_dir(keys.queue_prefix().as_bytes(), keys.queue_prefix().as_bytes()), None);
    }

    #[test]
    fn classifies_watched_keys() {
        let keys = Keys::new("/p/");
        let id = JobId::from_u128(7);
        assert_eq!(keys.classify(keys.owner(id).as_bytes()), Some(Watched::Owner(id)));
        assert_eq!(keys.classify(keys.state(id).as_bytes()), Some(Watched::State(id)));
        assert_eq!(keys.classify(keys.held(id).as_bytes()), Some(Watched::Held(id)));
        assert_eq!(keys.classify(keys.list_sync().as_bytes()), None);
        assert_eq!(keys.classify(keys.flow_queue("a/b", 3, id).as_bytes()), Some(Watched::Queue));
        assert_eq!(id_at_end(keys.queue(3, id).as_bytes()), Some(id));
        assert_eq!(prefix_end("a/"), b"a0".to_vec());
        assert_eq!(keys.classify(keys.park(id, "a/b").as_bytes()), Some(Watched::Park(id)));
        assert_eq!(keys.parse_due(keys.due(42, id, "a/b").as_bytes()), Some((id, "a/b".to_owned())));
    }
}
