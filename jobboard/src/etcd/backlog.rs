//! `backlog` on etcd: counts and first keys of the claim queue (`P m/queue/`) and
//! of the parked-jobs index (`P parked/<id>`), each a keys-only range of limit 1
//! (etcd answers the range's full count along with the first key).
//!
//! The queue is ordered by priority, then id: its first key is the oldest job of
//! the highest priority only. The oldest overall is the first key of some
//! priority band, so the bands are walked (one request each, jumping past a
//! band's keys), up to [`MAX_BANDS`]; a queue with more distinct priorities
//! reports the oldest of its first bands. Ids carry their posting time
//! (`codec::new_job_id_from`), so no job record is read.

use etcd_client::GetOptions;
use flows::Millis;

use super::keys::{id_at_end, prefix_end};
use super::Inner;
use crate::backlog::Backlog;
use crate::error::Error;
use crate::job::JobId;

/// Priority bands of the queue looked at for its oldest job.
const MAX_BANDS: usize = 16;

impl Inner {
    pub(super) async fn backlog(&self) -> Result<Backlog, Error> {
        let (queued, oldest_queued) = self.queue_backlog().await?;
        let parked_prefix = self.keys.parked_prefix();
        let (parked, first) = self.count_and_first(parked_prefix.clone(), prefix_end(&parked_prefix)).await?;
        let oldest_parked = first.and_then(|key| id_at_end(&key)).map(posted_at);
        Ok(Backlog { queued, oldest_queued, parked, oldest_parked })
    }

    async fn queue_backlog(&self) -> Result<(u64, Option<Millis>), Error> {
        let prefix = self.keys.queue_prefix();
        let end = prefix_end(&prefix);
        let (queued, mut next) = self.count_and_first(prefix.clone(), end.clone()).await?;
        let mut oldest: Option<Millis> = None;
        for _ in 0..MAX_BANDS {
            let Some(key) = next else { break };
            let Some(posted) = id_at_end(&key).map(posted_at) else { break };
            oldest = Some(oldest.map_or(posted, |o| o.min(posted)));
            // The band's keys are `<prefix><band>/<id>`: the next band starts at `<prefix><band>0` ('0' > '/').
            let Some(band) = std::str::from_utf8(&key).ok().and_then(|k| k.rsplit_once('/')).map(|(band, _)| band)
            else {
                break;
            };
            next = self.count_and_first(format!("{band}0"), end.clone()).await?.1;
        }
        Ok((queued, oldest))
    }

    /// How many keys lie in `[from, end)`, and the first of them.
    async fn count_and_first(&self, from: String, end: Vec<u8>) -> Result<(u64, Option<Vec<u8>>), Error> {
        let options = GetOptions::new().with_range(end).with_limit(1).with_keys_only();
        let mut resp = self.get(from, Some(options), "reading the backlog").await?;
        let count = u64::try_from(resp.count()).unwrap_or_default();
        Ok((count, resp.take_kvs().first().map(|kv| kv.key().to_vec())))
    }
}

/// When job `id` was posted: the milliseconds in its first six bytes.
fn posted_at(id: JobId) -> Millis {
    let bytes = id.as_bytes();
    bytes[..6].iter().fold(0, |ms, b| (ms << 8) | u64::from(*b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_tells_when_it_was_posted() {
        let (id, ms) = super::super::codec::new_job_id_from(0);
        assert_eq!(posted_at(id), ms);
    }
}
