//! Schedules: flows posted on a cron clock, stored on the board.
//!
//! A [`Schedule`] is one record (etcd `P sched/<name>`, SQLite table `schedules`)
//! holding the definition (flow, store, cron, time zone, catch-up) and the firing
//! state every conductor shares: the `cursor` (every tick at or before it is settled),
//! ticks reserved but not yet posted (`pending`) and the recent firings. Every change
//! is a compare-and-swap on the record's revision ([`ScheduleStore::replace_schedule`]),
//! so concurrent conductors never lose each other's writes.
//!
//! ## Firing a tick exactly once
//! 1. *Reserve*: a conductor that finds ticks due ([`Schedule::due`]) moves the cursor past
//!    them and records the ones to fire as `pending`, in one CAS. Whoever wins decides,
//!    once, which missed ticks are caught up and which are skipped.
//! 2. *Post*: each pending tick is posted with [`tick_key`] as its idempotency key, so
//!    posting it again (a retry, or another conductor taking over a pending tick left
//!    stale by a dead one) returns the same job.
//! 3. *Record*: the tick leaves `pending` and joins `recent` with its job, in one CAS.
//!
//! ## On time or missed
//! A tick is on time if it is at most [`GRACE`] old, or came after the deciding
//! conductor's session began and is at most [`LATE_LIMIT`] old: a conductor that was
//! up fires its ticks however late its loop ran. Older unfired ticks were missed while no
//! conductor ran: the `catch_up` most recent of them are fired, the rest skipped.

pub mod cron;

use async_trait::async_trait;
use flows::Millis;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use self::cron::CronClock;
use crate::board::Wakeups;
use crate::error::Error;
use crate::job::JobId;

/// A tick at most this old is on time, whoever fires it (so a conductor that just
/// started does not count a tick another conductor is firing right now as missed).
pub const GRACE: Millis = 2_000;
/// After a conductor's session began, its ticks count as on time up to this age; beyond
/// it (the flow was unknown for an hour, say) they are missed and follow the policy.
pub const LATE_LIMIT: Millis = 60_000;
/// A pending tick reserved this long ago by a conductor that has not posted it is
/// taken over (posted, idempotently) by any other.
pub const STALE_PENDING: Millis = 5_000;
/// The most missed ticks a schedule may catch up.
pub const MAX_CATCH_UP: u32 = 1_000;
/// How many firings a schedule keeps (newest first).
pub const RECENT: usize = 10;

/// What `baton schedules create` gives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleSpec {
    /// Unique name: 1 to 128 characters of a-z, 0-9, '.', '_' and '-'.
    pub name: String,
    /// The flow each tick posts.
    pub flow: String,
    /// The store of every job it posts.
    pub store: Map<String, Value>,
    /// Five fields, or six with leading seconds.
    pub cron: String,
    /// IANA time zone the cron expression is read in; empty means UTC.
    pub timezone: String,
    /// Missed ticks (no conductor ran) to fire late, the most recent ones; 0 skips them.
    pub catch_up: u32,
}

/// A tick reserved for posting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingTick {
    /// The tick, ms since the Unix epoch.
    pub tick: Millis,
    /// When it was reserved.
    pub reserved_at: Millis,
}

/// One tick that was posted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Firing {
    /// The tick.
    pub tick: Millis,
    /// The job it posted.
    pub job: JobId,
    /// When its job was recorded.
    pub fired_at: Millis,
}

/// A schedule as stored on the board.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// Its definition.
    #[serde(flatten)]
    pub spec: ScheduleSpec,
    /// Paused schedules post nothing; ticks while paused are never fired.
    pub paused: bool,
    /// When it was created.
    pub created_at: Millis,
    /// Every tick at or before it is settled (reserved, or skipped).
    pub cursor: Millis,
    /// Ticks reserved whose jobs are not recorded yet.
    #[serde(default)]
    pub pending: Vec<PendingTick>,
    /// The latest firings, newest first, at most [`RECENT`].
    #[serde(default)]
    pub recent: Vec<Firing>,
    /// Why the last tick that could not be posted was dropped (cleared by the next firing).
    #[serde(default)]
    pub last_error: Option<String>,
    /// The stored revision this was read at (etcd mod revision, SQLite row version);
    /// [`ScheduleStore::replace_schedule`] compares it. Not part of the record.
    #[serde(skip)]
    pub revision: u64,
}

/// Ticks to fire now, and where the cursor moves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    /// Ticks to post, oldest first: caught-up missed ones, then on-time ones.
    pub fire: Vec<Millis>,
    /// The newest tick at or before now: everything up to it is settled.
    pub cursor: Millis,
}

impl Schedule {
    /// A new schedule created at `now`: nothing before `now` is due.
    pub fn new(spec: ScheduleSpec, now: Millis) -> Schedule {
        Schedule {
            spec,
            paused: false,
            created_at: now,
            cursor: now,
            pending: Vec::new(),
            recent: Vec::new(),
            last_error: None,
            revision: 0,
        }
    }

    /// Checks the spec (name, cron, zone, catch-up; not the flow, which the caller's
    /// catalog knows) and returns its clock.
    pub fn check(spec: &ScheduleSpec) -> Result<CronClock, Error> {
        check_name(&spec.name)?;
        if spec.flow.trim().is_empty() {
            return Err(Error::InvalidInput("flow is empty".into()));
        }
        if spec.catch_up > MAX_CATCH_UP {
            return Err(Error::InvalidInput(format!("catch-up {} is over the limit of {MAX_CATCH_UP}", spec.catch_up)));
        }
        CronClock::new(&spec.cron, &spec.timezone)
    }

    /// This schedule's clock.
    pub fn clock(&self) -> Result<CronClock, Error> {
        CronClock::new(&self.spec.cron, &self.spec.timezone)
    }

    /// What is due at `now` for a conductor whose session began at `since`; `None` when
    /// nothing is (paused, or no tick since the cursor). See the module doc.
    pub fn due(&self, clock: &CronClock, now: Millis, since: Millis) -> Option<Due> {
        if self.paused {
            return None;
        }
        let newest = clock.previous_before(now + 1).filter(|&tick| tick > self.cursor)?;
        // Ticks at or after `from` are on time.
        let from = now.saturating_sub(GRACE).min(since.max(now.saturating_sub(LATE_LIMIT)));
        let mut fire = Vec::new();
        let mut before = from;
        while fire.len() < self.spec.catch_up as usize {
            match clock.previous_before(before) {
                Some(tick) if tick > self.cursor => {
                    fire.push(tick);
                    before = tick;
                }
                _ => break,
            }
        }
        fire.reverse();
        // At most LATE_LIMIT's worth of ticks (one a second): a bounded walk.
        let mut after = self.cursor.max(from.saturating_sub(1));
        while let Some(tick) = clock.next_after(after).filter(|&tick| tick <= now) {
            fire.push(tick);
            after = tick;
        }
        Some(Due { fire, cursor: newest })
    }

    /// Reserves `due` at `now` (step 1 of the module doc).
    pub fn reserve(&mut self, due: &Due, now: Millis) {
        self.cursor = due.cursor;
        self.pending.extend(due.fire.iter().map(|&tick| PendingTick { tick, reserved_at: now }));
    }

    /// Records `tick` as posted with `job` (step 3); false if it was not pending.
    pub fn record(&mut self, tick: Millis, job: JobId, now: Millis) -> bool {
        if !self.take_pending(tick) {
            return false;
        }
        self.recent.insert(0, Firing { tick, job, fired_at: now });
        self.recent.sort_by_key(|f| std::cmp::Reverse(f.tick));
        self.recent.truncate(RECENT);
        self.last_error = None;
        true
    }

    /// Drops `tick`, which cannot be posted (its flow is gone, its store no longer
    /// fits); false if it was not pending.
    pub fn drop_tick(&mut self, tick: Millis, why: String) -> bool {
        if !self.take_pending(tick) {
            return false;
        }
        self.last_error = Some(why);
        true
    }

    fn take_pending(&mut self, tick: Millis) -> bool {
        let before = self.pending.len();
        self.pending.retain(|p| p.tick != tick);
        self.pending.len() != before
    }

    /// Pauses: nothing more is posted, and what was reserved is dropped.
    pub fn pause(&mut self) {
        self.paused = true;
        self.pending.clear();
    }

    /// Resumes at `now`: ticks that came while paused are never fired.
    pub fn resume(&mut self, now: Millis) {
        self.paused = false;
        self.cursor = self.cursor.max(now);
    }

    /// The next tick it will fire, if it is not paused.
    pub fn next_firing(&self, clock: &CronClock, now: Millis) -> Option<Millis> {
        if self.paused {
            return None;
        }
        clock.next_after(self.cursor.max(now))
    }
}

/// The idempotency key of the job a tick posts: the schedule's name and the tick's time.
pub fn tick_key(name: &str, tick: Millis) -> String {
    let time = i64::try_from(tick)
        .ok()
        .and_then(|ms| jiff_tz::Timestamp::from_millisecond(ms).ok())
        .map_or_else(|| tick.to_string(), |at| at.to_string());
    format!("schedule/{name}/{time}")
}

/// Refuses a schedule name that is not 1 to 128 characters of a-z, 0-9, '.', '_' and '-'.
pub fn check_name(name: &str) -> Result<(), Error> {
    let valid = !name.is_empty()
        && name.len() <= 128
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "schedule name {name:?} must be 1 to 128 characters of a-z, 0-9, '.', '_' and '-'"
        )))
    }
}

/// Where schedules are stored: a part of every board.
#[async_trait]
pub trait ScheduleStore: Send + Sync {
    /// Stores a new schedule; `ScheduleExists` if the name is taken.
    async fn create_schedule(&self, schedule: &Schedule) -> Result<(), Error>;

    /// One schedule; `UnknownSchedule` if absent.
    async fn schedule(&self, name: &str) -> Result<Schedule, Error>;

    /// Every schedule, by name.
    async fn list_schedules(&self) -> Result<Vec<Schedule>, Error>;

    /// Replaces a schedule if it is still at `schedule.revision`; false (and nothing
    /// written) if it changed meanwhile or is gone.
    async fn replace_schedule(&self, schedule: &Schedule) -> Result<bool, Error>;

    /// Removes a schedule; `UnknownSchedule` if absent.
    async fn delete_schedule(&self, name: &str) -> Result<(), Error>;

    /// Fires whenever a schedule may have changed (created, fired, paused, deleted),
    /// anywhere in the fleet; also after a lost watch is re-established.
    fn schedule_changes(&self) -> Wakeups;
}

/// How many times [`update`] re-reads after losing a race.
const UPDATE_ROUNDS: usize = 32;

/// Reads `name`, lets `change` edit it, and stores the result with a CAS, again on a lost
/// race. `change` answers `None` when there is nothing to write; `update` then returns
/// `None` too. Returns the value `change` answered and the schedule as written (its
/// `revision` is still the one it replaced).
pub async fn update<T: Send>(
    store: &dyn ScheduleStore,
    name: &str,
    mut change: impl FnMut(&mut Schedule) -> Option<T> + Send,
) -> Result<Option<(T, Schedule)>, Error> {
    for _ in 0..UPDATE_ROUNDS {
        let mut schedule = store.schedule(name).await?;
        let Some(out) = change(&mut schedule) else { return Ok(None) };
        if store.replace_schedule(&schedule).await? {
            return Ok(Some((out, schedule)));
        }
    }
    Err(Error::Unavailable {
        message: format!("schedule {name} kept changing while updating it; try again"),
        source: None,
    })
}

#[cfg(test)]
mod tests;
