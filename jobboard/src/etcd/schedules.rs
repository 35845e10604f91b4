//! Schedules in etcd: one key `P sched/<name>` per schedule, its JSON record as value.
//!
//! Create is a txn on the key's absence; every change compares the key's mod revision
//! (the schedule's `revision`), so the firing steps of `crate::schedules` are CASes.
//! The schedules watch (`defs_watch::schedules_watch`) feeds `schedule_changes`.

use async_trait::async_trait;
use etcd_client::{Compare, CompareOp, GetOptions, Txn, TxnOp};

use super::codec::{decode, encode};
use super::EtcdBoard;
use crate::board::Wakeups;
use crate::error::Error;
use crate::schedules::{Schedule, ScheduleStore};

fn read(kv: &etcd_client::KeyValue) -> Result<Schedule, Error> {
    let mut schedule: Schedule = decode(kv.value(), "schedule")?;
    schedule.revision = u64::try_from(kv.mod_revision()).unwrap_or(0);
    Ok(schedule)
}

#[async_trait]
impl ScheduleStore for EtcdBoard {
    async fn create_schedule(&self, schedule: &Schedule) -> Result<(), Error> {
        crate::schedules::check_name(&schedule.spec.name)?;
        let key = self.inner.keys.schedule(&schedule.spec.name);
        let txn = Txn::new().when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)]).and_then([TxnOp::put(
            key,
            encode(schedule, "schedule")?,
            None,
        )]);
        if self.inner.txn(txn, &format!("creating schedule {}", schedule.spec.name)).await?.succeeded() {
            Ok(())
        } else {
            Err(Error::ScheduleExists(schedule.spec.name.clone()))
        }
    }

    async fn schedule(&self, name: &str) -> Result<Schedule, Error> {
        crate::schedules::check_name(name)?;
        let resp = self.inner.get(self.inner.keys.schedule(name), None, "reading a schedule").await?;
        resp.kvs().first().map(read).unwrap_or_else(|| Err(Error::UnknownSchedule(name.to_owned())))
    }

    async fn list_schedules(&self) -> Result<Vec<Schedule>, Error> {
        let prefix = self.inner.keys.schedules_prefix();
        let resp = self.inner.get(prefix, Some(GetOptions::new().with_prefix()), "listing schedules").await?;
        resp.kvs().iter().map(read).collect()
    }

    async fn replace_schedule(&self, schedule: &Schedule) -> Result<bool, Error> {
        let key = self.inner.keys.schedule(&schedule.spec.name);
        let revision = i64::try_from(schedule.revision).unwrap_or(i64::MAX);
        let txn = Txn::new()
            .when([Compare::mod_revision(key.clone(), CompareOp::Equal, revision)])
            .and_then([TxnOp::put(key, encode(schedule, "schedule")?, None)]);
        Ok(self.inner.txn(txn, &format!("updating schedule {}", schedule.spec.name)).await?.succeeded())
    }

    async fn delete_schedule(&self, name: &str) -> Result<(), Error> {
        crate::schedules::check_name(name)?;
        let resp = self
            .inner
            .txn(Txn::new().and_then([TxnOp::delete(self.inner.keys.schedule(name), None)]), "deleting a schedule")
            .await?;
        let removed = resp.op_responses().into_iter().any(|op| match op {
            etcd_client::TxnOpResponse::Delete(deleted) => deleted.deleted() > 0,
            _ => false,
        });
        if removed {
            Ok(())
        } else {
            Err(Error::UnknownSchedule(name.to_owned()))
        }
    }

    fn schedule_changes(&self) -> Wakeups {
        Wakeups::new(self.inner.schedule_changes.subscribe())
    }
}
