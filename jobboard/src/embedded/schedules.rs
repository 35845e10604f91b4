//! Schedules in SQLite: table `schedules` (name, revision, JSON record).
//!
//! Every change is one write that compares the row's `revision` and bumps it, so the
//! firing steps of `crate::schedules` are CASes here as on etcd; `schedule_changes`
//! fires after each committed change (one process holds the file).

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};

use super::db::sql_error;
use super::rows::{from_json, to_i64, to_json, to_u64};
use super::EmbeddedBoard;
use crate::board::Wakeups;
use crate::error::Error;
use crate::schedules::{check_name, Schedule, ScheduleStore};

fn read_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, String)> {
    Ok((row.get(0)?, row.get(1)?))
}

fn decode((revision, record): (i64, String)) -> Result<Schedule, Error> {
    let mut schedule: Schedule = from_json(&record, "schedule")?;
    schedule.revision = to_u64(revision);
    Ok(schedule)
}

fn get(tx: &Connection, name: &str) -> Result<Schedule, Error> {
    tx.query_row("SELECT revision, record FROM schedules WHERE name = ?1", params![name], read_row)
        .optional()
        .map_err(sql_error)?
        .map(decode)
        .unwrap_or_else(|| Err(Error::UnknownSchedule(name.to_owned())))
}

fn list(tx: &Connection) -> Result<Vec<Schedule>, Error> {
    let mut stmt = tx.prepare("SELECT revision, record FROM schedules ORDER BY name").map_err(sql_error)?;
    let rows = stmt.query_map([], read_row).map_err(sql_error)?;
    let rows: Vec<(i64, String)> = rows.collect::<Result<_, _>>().map_err(sql_error)?;
    rows.into_iter().map(decode).collect()
}

impl EmbeddedBoard {
    fn schedules_changed(&self) {
        self.shared.schedule_changes.send_modify(|n| *n = n.wrapping_add(1));
    }
}

#[async_trait]
impl ScheduleStore for EmbeddedBoard {
    async fn create_schedule(&self, schedule: &Schedule) -> Result<(), Error> {
        self.check_open()?;
        check_name(&schedule.spec.name)?;
        let (name, record) = (schedule.spec.name.clone(), to_json(schedule)?);
        self.shared
            .db
            .write(move |tx| {
                let added = tx
                    .execute(
                        "INSERT INTO schedules (name, revision, record) VALUES (?1, 1, ?2) ON CONFLICT (name) DO NOTHING",
                        params![name, record],
                    )
                    .map_err(sql_error)?;
                if added == 0 {
                    return Err(Error::ScheduleExists(name));
                }
                Ok(())
            })
            .await?;
        self.schedules_changed();
        Ok(())
    }

    async fn schedule(&self, name: &str) -> Result<Schedule, Error> {
        self.check_open()?;
        check_name(name)?;
        let name = name.to_owned();
        self.shared.db.read(move |tx| get(tx, &name)).await
    }

    async fn list_schedules(&self) -> Result<Vec<Schedule>, Error> {
        self.check_open()?;
        self.shared.db.read(list).await
    }

    async fn replace_schedule(&self, schedule: &Schedule) -> Result<bool, Error> {
        self.check_open()?;
        let (name, record, revision) = (schedule.spec.name.clone(), to_json(schedule)?, to_i64(schedule.revision));
        let replaced = self
            .shared
            .db
            .write(move |tx| {
                tx.execute(
                    "UPDATE schedules SET record = ?2, revision = revision + 1 WHERE name = ?1 AND revision = ?3",
                    params![name, record, revision],
                )
                .map_err(sql_error)
            })
            .await?;
        if replaced == 1 {
            self.schedules_changed();
        }
        Ok(replaced == 1)
    }

    async fn delete_schedule(&self, name: &str) -> Result<(), Error> {
        self.check_open()?;
        check_name(name)?;
        let name = name.to_owned();
        self.shared
            .db
            .write(move |tx| {
                let removed = tx.execute("DELETE FROM schedules WHERE name = ?1", params![name]).map_err(sql_error)?;
                if removed == 0 {
                    return Err(Error::UnknownSchedule(name));
                }
                Ok(())
            })
            .await?;
        self.schedules_changed();
        Ok(())
    }

    fn schedule_changes(&self) -> Wakeups {
        Wakeups::new(self.shared.schedule_changes.subscribe())
    }
}
