//! The schedule calls: create (validated in full before anything is stored), list,
//! get, pause, resume, delete. Firing is the daemon's (`daemon::scheduler`).

use jobboard::schedules::{self, Schedule, ScheduleSpec};
use proto::pb;
use tonic::Status;

use super::service::parse_store;
use super::status::{from_board, from_registry, invalid};
use super::ApiState;
use crate::catalog::CatalogError;

/// Creates a schedule: name, cron, time zone, catch-up, flow and store are all checked
/// first (INVALID_ARGUMENT, or NOT_FOUND for an unknown flow), and nothing is stored
/// unless all pass.
pub async fn create(state: &ApiState, req: pb::CreateScheduleRequest) -> Result<pb::Schedule, Status> {
    let spec = ScheduleSpec {
        name: req.name,
        flow: req.flow,
        store: parse_store(&req.store_json)?,
        cron: req.cron,
        timezone: req.timezone,
        catch_up: req.catch_up,
    };
    let clock = Schedule::check(&spec).map_err(|e| from_board(&e))?;
    let board = state.board()?;
    match state.catalog.for_post(board.as_ref(), &spec.flow, None).await {
        // Every job it posts is checked again (and its defaults filled) at its tick,
        // against the flow's version then current.
        Ok(resolved) => drop(resolved.factory.factory().complete(&spec.store).map_err(|e| from_registry(&e))?),
        Err(unknown @ CatalogError::UnknownFlow { .. }) => {
            // Built into other live conductors only: those fire it.
            if state.fleet.rust_owners(board.as_ref(), &spec.flow).await.is_empty() {
                return Err(Status::not_found(unknown.to_string()));
            }
        }
        Err(other) => return Err(super::status::from_catalog(&other)),
    }
    let schedule = Schedule::new(spec, flows::now_millis());
    board.schedules().create_schedule(&schedule).await.map_err(|e| from_board(&e))?;
    tracing::info!(schedule = %schedule.spec.name, flow = %schedule.spec.flow, cron = %schedule.spec.cron, "schedule created");
    Ok(to_pb(&schedule, Some(&clock)))
}

/// Every schedule, by name.
pub async fn list(state: &ApiState) -> Result<pb::ListSchedulesResponse, Status> {
    let board = state.board()?;
    let mut schedules = board.schedules().list_schedules().await.map_err(|e| from_board(&e))?;
    schedules.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
    Ok(pb::ListSchedulesResponse { schedules: schedules.iter().map(|s| to_pb(s, s.clock().ok().as_ref())).collect() })
}

/// One schedule.
pub async fn get(state: &ApiState, name: &str) -> Result<pb::Schedule, Status> {
    let schedule = state.board()?.schedules().schedule(name).await.map_err(|e| from_board(&e))?;
    Ok(to_pb(&schedule, schedule.clock().ok().as_ref()))
}

/// Pauses (`pause`) or resumes a schedule; the same again is a no-op.
pub async fn set_paused(state: &ApiState, name: &str, pause: bool) -> Result<pb::Schedule, Status> {
    let board = state.board()?;
    let now = flows::now_millis();
    let changed = schedules::update(board.schedules(), name, |schedule| {
        if schedule.paused == pause {
            return None;
        }
        if pause {
            schedule.pause();
        } else {
            schedule.resume(now);
        }
        Some(())
    })
    .await
    .map_err(|e| from_board(&e))?;
    if changed.is_some() {
        tracing::info!(schedule = %name, paused = pause, "schedule {}", if pause { "paused" } else { "resumed" });
    }
    get(state, name).await
}

/// Removes a schedule.
pub async fn delete(state: &ApiState, name: &str) -> Result<(), Status> {
    state.board()?.schedules().delete_schedule(name).await.map_err(|e| from_board(&e))?;
    tracing::info!(schedule = %name, "schedule deleted");
    Ok(())
}

/// The wire form, with its next firing computed now.
fn to_pb(schedule: &Schedule, clock: Option<&schedules::CronClock>) -> pb::Schedule {
    let spec = &schedule.spec;
    pb::Schedule {
        name: spec.name.clone(),
        flow: spec.flow.clone(),
        store_json: serde_json::Value::Object(spec.store.clone()).to_string(),
        cron: spec.cron.clone(),
        timezone: spec.timezone.clone(),
        catch_up: spec.catch_up,
        paused: schedule.paused,
        created_ms: schedule.created_at,
        next_tick_ms: clock.and_then(|clock| schedule.next_firing(clock, flows::now_millis())),
        recent: schedule
            .recent
            .iter()
            .map(|f| pb::ScheduleFiring { tick_ms: f.tick, job_id: f.job.to_string(), fired_ms: f.fired_at })
            .collect(),
        last_error: schedule.last_error.clone(),
        pending: u32::try_from(schedule.pending.len()).unwrap_or(u32::MAX),
    }
}

/// Refuses an empty name before asking the board.
pub fn name(name: &str) -> Result<&str, Status> {
    if name.trim().is_empty() {
        return Err(invalid("name", "must not be empty"));
    }
    Ok(name)
}
