//! `baton schedules create|list|get|pause|resume|delete`: flows posted on a cron clock.

use std::process::ExitCode;

use anyhow::Context;
use proto::pb;
use serde_json::{json, Map, Value};

use crate::args::Output;
use crate::commands::{emit, print_json};
use crate::fleet::Fleet;
use crate::output::table;
use crate::time::format_time;

/// `baton schedules`.
#[derive(Debug, clap::Args)]
pub struct SchedulesArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: SchedulesCommand,
}

/// The `baton schedules` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum SchedulesCommand {
    /// Create a schedule: each tick of its cron expression posts one job of the flow.
    Create(CreateArgs),
    /// List the schedules with their last and next firing.
    List,
    /// Show a schedule: its last and next firing and the jobs it posted.
    Get {
        /// The schedule's name.
        name: String,
    },
    /// Stop posting; ticks while paused are never fired.
    Pause {
        /// The schedule's name.
        name: String,
    },
    /// Post again, from the next tick on.
    Resume {
        /// The schedule's name.
        name: String,
    },
    /// Remove a schedule (the jobs it posted stay).
    Delete {
        /// The schedule's name.
        name: String,
    },
}

/// `baton schedules create`.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// Unique name: a-z, 0-9, '.', '_' and '-'.
    pub name: String,
    /// The flow each tick posts (see `baton flows`).
    #[arg(long)]
    pub flow: String,
    /// One input of every job, read as the type the flow declares for KEY. Repeatable.
    #[arg(long = "store", short = 's', value_name = "KEY=VALUE", value_parser = crate::store::parse_pair)]
    pub store: Vec<(String, String)>,
    /// Five fields (minute hour day-of-month month day-of-week), or six with leading seconds.
    #[arg(long, value_name = "EXPR")]
    pub cron: String,
    /// The IANA time zone the expression is read in (default UTC).
    #[arg(long, value_name = "TZ")]
    pub timezone: Option<String>,
    /// Ticks missed while no conductor ran to post late, the most recent ones (default 0: skip them).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub catch_up: u32,
}

/// Runs a `baton schedules` subcommand.
pub async fn run(fleet: &Fleet, args: SchedulesArgs, out: Output) -> anyhow::Result<ExitCode> {
    let schedule = match args.command {
        SchedulesCommand::Create(args) => {
            let request = &pb::CreateScheduleRequest {
                store_json: Value::Object(store(fleet, &args).await).to_string(),
                name: args.name.clone(),
                flow: args.flow.clone(),
                cron: args.cron.clone(),
                timezone: args.timezone.clone().unwrap_or_default(),
                catch_up: args.catch_up,
            };
            let created = fleet.call(|c| async move { c.create_schedule(request.clone()).await }).await;
            created.with_context(|| format!("cannot create schedule {}", args.name))?
        }
        SchedulesCommand::List => {
            let all = fleet.call(|c| async move { c.list_schedules().await }).await.context("cannot list schedules")?;
            match out {
                Output::Json => print_json(&all.iter().map(schedule_json).collect())?,
                Output::Table => emit(&schedules_table(&all))?,
            }
            return Ok(ExitCode::SUCCESS);
        }
        SchedulesCommand::Get { name } => {
            let name = &name;
            let found = fleet.call(|c| async move { c.get_schedule(name.as_str()).await }).await;
            found.with_context(|| format!("cannot get schedule {name}"))?
        }
        SchedulesCommand::Pause { name } => {
            let name = &name;
            let paused = fleet.call(|c| async move { c.pause_schedule(name.as_str()).await }).await;
            paused.with_context(|| format!("cannot pause schedule {name}"))?
        }
        SchedulesCommand::Resume { name } => {
            let name = &name;
            let resumed = fleet.call(|c| async move { c.resume_schedule(name.as_str()).await }).await;
            resumed.with_context(|| format!("cannot resume schedule {name}"))?
        }
        SchedulesCommand::Delete { name } => {
            let name = &name;
            let deleted = fleet.call(|c| async move { c.delete_schedule(name.as_str()).await }).await;
            deleted.with_context(|| format!("cannot delete schedule {name}"))?;
            match out {
                Output::Json => print_json(&json!({ "deleted": name }))?,
                Output::Table => emit(&format!("schedule {name} deleted\n"))?,
            }
            return Ok(ExitCode::SUCCESS);
        }
    };
    match out {
        Output::Json => print_json(&schedule_json(&schedule))?,
        Output::Table => emit(&schedule_detail(&schedule))?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The `--store` pairs, read as the types the flow declares (best effort, as for `post`).
async fn store(fleet: &Fleet, args: &CreateArgs) -> Map<String, Value> {
    if args.store.is_empty() {
        return Map::new();
    }
    let schema = match fleet.fresh().call(|c| async move { c.list_flows().await }).await {
        Ok(flows) => flows.iter().find(|f| f.name == args.flow).map(crate::inputs::schema_of).unwrap_or_default(),
        Err(error) => {
            tracing::debug!(%error, "cannot list flows; --store values are read as undeclared inputs");
            flows::Schema::new()
        }
    };
    crate::inputs::coerce_pairs(&schema, &args.store)
}

fn zone(s: &pb::Schedule) -> &str {
    if s.timezone.is_empty() {
        "UTC"
    } else {
        &s.timezone
    }
}

/// The JSON form of a schedule.
pub fn schedule_json(s: &pb::Schedule) -> Value {
    let store: Value = serde_json::from_str(&s.store_json).unwrap_or(Value::String(s.store_json.clone()));
    let recent: Vec<Value> =
        s.recent.iter().map(|f| json!({"tick": f.tick_ms, "job": f.job_id, "fired": f.fired_ms})).collect();
    json!({
        "name": s.name,
        "flow": s.flow,
        "store": store,
        "cron": s.cron,
        "timezone": zone(s),
        "catch_up": s.catch_up,
        "paused": s.paused,
        "created": s.created_ms,
        "last_tick": s.recent.first().map(|f| f.tick_ms),
        "next_tick": s.next_tick_ms,
        "recent": recent,
        "pending": s.pending,
        "last_error": s.last_error,
    })
}

fn last(s: &pb::Schedule) -> String {
    s.recent.first().map_or_else(|| "-".to_owned(), |f| format_time(f.tick_ms))
}

fn next(s: &pb::Schedule) -> String {
    match s.next_tick_ms {
        Some(tick) => format_time(tick),
        None if s.paused => "paused".to_owned(),
        None => "-".to_owned(),
    }
}

/// Schedules as a table.
pub fn schedules_table(all: &[pb::Schedule]) -> String {
    let rows =
        all.iter().map(|s| vec![s.name.clone(), s.flow.clone(), s.cron.clone(), zone(s).to_owned(), last(s), next(s)]);
    table(&["NAME", "FLOW", "CRON", "TIMEZONE", "LAST", "NEXT"], rows)
}

/// One schedule for people: its definition, last and next firing, and the jobs it posted.
pub fn schedule_detail(s: &pb::Schedule) -> String {
    let mut text = format!(
        "schedule {}\n  flow:      {}\n  store:     {}\n  cron:      {} ({})\n  catch-up:  {}\n  state:     {}\n  last:      {}\n  next:      {}\n",
        s.name,
        s.flow,
        s.store_json,
        s.cron,
        zone(s),
        s.catch_up,
        if s.paused { "paused" } else { "active" },
        last(s),
        next(s),
    );
    if let Some(error) = &s.last_error {
        text.push_str(&format!("  error:     {error}\n"));
    }
    if !s.recent.is_empty() {
        let rows = s.recent.iter().map(|f| vec![format_time(f.tick_ms), f.job_id.clone(), format_time(f.fired_ms)]);
        text.push_str("jobs posted (newest first):\n");
        text.push_str(&table(&["TICK", "JOB", "POSTED"], rows));
    }
    text
}
