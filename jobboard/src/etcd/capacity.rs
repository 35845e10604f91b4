//! `capacity` on etcd: the queue's length, the database size and raised alarms.
//!
//! The length is a count-only range of `P m/queue/` (etcd 3.4 walks the range
//! for it, so it is asked only when a limit needs it); size and alarms come from
//! the Maintenance API of the member the client talks to.

use etcd_client::{AlarmAction, AlarmType, GetOptions};

use super::{etcd_error, Inner};
use crate::capacity::{Capacity, StorageUse};
use crate::error::Error;

impl Inner {
    pub(super) async fn capacity(&self, count_queued: bool) -> Result<Capacity, Error> {
        let queued = if count_queued {
            let options = GetOptions::new().with_prefix().with_count_only();
            let resp = self.get(self.keys.queue_prefix(), Some(options), "counting queued jobs").await?;
            Some(u64::try_from(resp.count()).unwrap_or_default())
        } else {
            None
        };
        let mut maintenance = self.client.maintenance_client();
        let status = maintenance.status().await.map_err(|e| etcd_error(e, "reading etcd's status"))?;
        let alarms = maintenance
            .alarm(AlarmAction::Get, AlarmType::None, None)
            .await
            .map_err(|e| etcd_error(e, "reading etcd's alarms"))?;
        let alarm = alarms
            .alarms()
            .iter()
            .map(|member| format!("{:?}", member.alarm()).to_uppercase())
            .reduce(|all, one| if all.contains(&one) { all } else { format!("{all}, {one}") });
        Ok(Capacity {
            queued,
            storage: Some(StorageUse { db_bytes: u64::try_from(status.db_size()).unwrap_or_default(), alarm }),
        })
    }
}
