//! The schedule loop of a board session: fires every schedule's ticks, one job per tick
//! across the fleet (the rules are `jobboard::schedules`).
//!
//! Each pass lists the schedules and, for each whose flow this conductor can post:
//! reserves what is due (one CAS; losing it to another conductor is fine, it fires them),
//! posts each reserved tick with the tick's idempotency key, and records the job (CAS).
//! A pending tick another conductor reserved and left for [`STALE_PENDING`] is taken over
//! and posted again, idempotently. Between passes the loop sleeps until the next tick of
//! any schedule or until a schedule changes (`schedule_changes`, a watch): it never polls.

use std::sync::Arc;
use std::time::Duration;

use flows::Millis;
use jobboard::schedules::{self, Schedule, STALE_PENDING};
use jobboard::{JobBoard, NewJob};
use tokio_util::sync::CancellationToken;

use crate::catalog::{Catalog, CatalogError, Resolved};

/// After a failed pass (the board did not answer), the next try.
const RETRY: Millis = 1_000;

/// Runs until `stop` is cancelled. Ticks count as on time from now on (see
/// `jobboard::schedules`): older unfired ones were missed while no conductor ran.
pub(crate) async fn run(board: Arc<dyn JobBoard>, catalog: Arc<Catalog>, stop: CancellationToken) {
    let scheduler = Scheduler { board, catalog, since: flows::now_millis() };
    loop {
        // Subscribe before reading, so that a change made during the pass wakes the next one.
        let mut changes = scheduler.board.schedules().schedule_changes();
        let wake_at = match scheduler.pass().await {
            Ok(next) => next,
            Err(error) => {
                tracing::warn!(%error, "cannot read the schedules; trying again");
                Some(flows::now_millis() + RETRY)
            }
        };
        let sleep = async {
            match wake_at {
                Some(at) => tokio::time::sleep(Duration::from_millis(at.saturating_sub(flows::now_millis()))).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = stop.cancelled() => return,
            changed = changes.changed() => if changed.is_err() { return },
            () = sleep => {}
        }
    }
}

struct Scheduler {
    board: Arc<dyn JobBoard>,
    catalog: Arc<Catalog>,
    /// When this session's loop began.
    since: Millis,
}

impl Scheduler {
    /// Fires what is due now; returns when the next pass is needed (`None`: only on a change).
    async fn pass(&self) -> Result<Option<Millis>, jobboard::Error> {
        let now = flows::now_millis();
        let mut next: Option<Millis> = None;
        let mut wake = |at: Millis| next = Some(next.map_or(at, |n| n.min(at)));
        for schedule in self.board.schedules().list_schedules().await? {
            let Ok(clock) = schedule.clock() else { continue };
            if let Some(tick) = schedule.next_firing(&clock, now) {
                wake(tick);
            }
            if schedule.paused {
                continue;
            }
            let mut fire: Vec<Millis> = Vec::new();
            for pending in &schedule.pending {
                if pending.reserved_at + STALE_PENDING <= now {
                    fire.push(pending.tick);
                } else {
                    wake(pending.reserved_at + STALE_PENDING);
                }
            }
            let due = schedule.due(&clock, now, self.since);
            if fire.is_empty() && due.is_none() {
                continue;
            }
            let resolved = match self.catalog.for_post(self.board.as_ref(), &schedule.spec.flow, None).await {
                Ok(resolved) => resolved,
                // Unknown or unbuildable here: a conductor that can post it fires it.
                Err(CatalogError::Board(_)) => {
                    wake(now + RETRY);
                    continue;
                }
                Err(_) => continue,
            };
            if let Some(due) = due {
                let mut reserved = schedule.clone();
                reserved.reserve(&due, now);
                if self.board.schedules().replace_schedule(&reserved).await? {
                    fire.extend(&due.fire);
                } else {
                    // Another conductor changed it first: look again at once.
                    wake(now);
                }
            }
            for tick in fire {
                if !self.fire(&schedule, &resolved, tick).await {
                    wake(flows::now_millis() + STALE_PENDING);
                }
            }
        }
        Ok(next)
    }

    /// Posts one reserved tick and records its job; false if the board failed (the tick
    /// stays pending and is posted again later, by this conductor or another).
    async fn fire(&self, schedule: &Schedule, resolved: &Resolved, tick: Millis) -> bool {
        let name = &schedule.spec.name;
        let job = match resolved.factory.factory().complete(&schedule.spec.store) {
            Ok(store) => NewJob {
                flow: schedule.spec.flow.clone(),
                store,
                priority: 0,
                idempotency_key: Some(schedules::tick_key(name, tick)),
                pin: resolved.pin.clone(),
                requires: crate::features::required(&resolved.factory),
                deadline: resolved.factory.default_deadline().map(|after| flows::now_millis().saturating_add(after)),
                rerun_of: None,
            },
            Err(refused) => return self.drop_tick(name, tick, refused.to_string()).await,
        };
        let posted = match self.board.post(job).await {
            Ok(posted) => posted,
            Err(error) if error.is_retryable() => {
                tracing::warn!(schedule = %name, tick, %error, "cannot post a scheduled job; will try again");
                return false;
            }
            Err(error) => return self.drop_tick(name, tick, error.to_string()).await,
        };
        let now = flows::now_millis();
        match schedules::update(self.board.schedules(), name, |s| s.record(tick, posted.id, now).then_some(())).await {
            Ok(recorded) => {
                if recorded.is_some() {
                    tracing::debug!(schedule = %name, tick, job = %posted.id, delay_ms = now.saturating_sub(tick), "schedule fired");
                }
                true
            }
            Err(jobboard::Error::UnknownSchedule(_)) => true,
            Err(error) => {
                tracing::warn!(schedule = %name, tick, %error, "cannot record a scheduled job; will try again");
                false
            }
        }
    }

    /// Drops a tick that can never be posted as it is, saying why on the schedule.
    async fn drop_tick(&self, name: &str, tick: Millis, why: String) -> bool {
        tracing::warn!(schedule = %name, tick, reason = %why, "scheduled job refused; tick dropped");
        match schedules::update(self.board.schedules(), name, |s| s.drop_tick(tick, why.clone()).then_some(())).await {
            Ok(_) | Err(jobboard::Error::UnknownSchedule(_)) => true,
            Err(_) => false,
        }
    }
}
