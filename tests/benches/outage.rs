//! What etcd faults cost a fleet (issue 13's measurements; not a test, asserts nothing).
//!
//! Real `conductor` processes with the default lease TTL (10 s), supervised (an exited
//! conductor is started again, as Kubernetes would), running `chain` jobs posted through
//! `baton`. Faults: kill -9 of the leader of a three-member cluster; kill -9 of a lone etcd
//! and a start on the same data dir 1 s, 3 s and 5 s later; the same with 30 s, after which a
//! job is posted at once and timed to its first claim; kill -9 of a conductor, timed to the
//! takeover of its job. Each row counts sessions lost, conductor process exits and tasks run
//! more than once (from `baton get`'s execution counts), and how many jobs completed.
//!
//! Run: `cargo build --release -p conductor --bins && cargo bench -p tests --bench outage`
//! (or both with `--profile dev`: timings here are seconds, not microseconds). About 3 to 5
//! minutes; jobs that stay stuck are given up on after `STUCK_AFTER`.

#[path = "outage/fleet.rs"]
mod fleet;

use std::time::{Duration, Instant};

use fleet::{reexecutions, succeeded, Fleet};
use serde_json::Value;
use tests::conductor::{get_job, post_job, succeeded_tasks, wait_job};
use tests::etcd::cluster::EtcdCluster;
use tests::etcd::{unique_prefix, EtcdProcess};

/// etcd's and the conductor's default lease TTL.
const TTL: Duration = Duration::from_secs(10);
/// Jobs running when a fault hits.
const JOBS: usize = 6;
/// 20 steps of 400 ms: a job spans a 5 s outage and the restart after it.
const CHAIN: [(&str, &str); 2] = [("steps", "20"), ("step_ms", "400")];
/// Time given after the fault for the jobs to complete before they count as stuck.
const STUCK_AFTER: Duration = Duration::from_secs(45);
/// Bound on a wait that should take seconds.
const PATIENCE: Duration = Duration::from_secs(60);

/// One line of the table.
struct Row {
    fault: String,
    /// How long etcd (or the conductor) was gone, as measured.
    outage: Duration,
    sessions_lost: usize,
    exits: usize,
    reexecutions: u64,
    /// Jobs COMPLETE/SUCCESS out of jobs posted.
    done: (usize, usize),
    note: String,
}

fn main() {
    let started = Instant::now();
    let mut rows = Vec::new();
    eprintln!("leader kill in a three-member cluster ...");
    rows.push(leader_kill().unwrap_or_else(|e| failed("leader kill, 3-member cluster", e)));
    for seconds in [1, 3, 5] {
        eprintln!("etcd restart after {seconds} s ...");
        let fault = format!("etcd kill -9, restart after {seconds} s");
        rows.push(etcd_restart(Duration::from_secs(seconds), false).unwrap_or_else(|e| failed(&fault, e)));
    }
    eprintln!("etcd outage of 30 s ...");
    rows.push(
        etcd_restart(Duration::from_secs(30), true).unwrap_or_else(|e| failed("etcd kill -9, restart after 30 s", e)),
    );
    eprintln!("takeover after kill -9 of a conductor ...");
    rows.push(takeover().unwrap_or_else(|e| failed("conductor kill -9 (takeover)", e)));

    println!(
        "\netcd faults with real conductors, lease TTL {TTL:?}, {JOBS} `chain` jobs of steps=20 step_ms=400 running"
    );
    println!("| fault | outage | sessions lost | process exits | task re-runs | jobs done | note |");
    println!("|---|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {:.1} s | {} | {} | {} | {}/{} | {} |",
            r.fault,
            r.outage.as_secs_f64(),
            r.sessions_lost,
            r.exits,
            r.reexecutions,
            r.done.0,
            r.done.1,
            r.note
        );
    }
    println!(
        "targets: 0 sessions lost, 0 exits, 0 re-runs; claiming within 1 s of etcd's return; takeover <= TTL + 1 s"
    );
    eprintln!("bench took {:.0} s", started.elapsed().as_secs_f64());
}

fn failed(fault: &str, error: String) -> Row {
    Row {
        fault: fault.to_owned(),
        outage: Duration::ZERO,
        sessions_lost: 0,
        exits: 0,
        reexecutions: 0,
        done: (0, 0),
        note: format!("bench failed: {error}"),
    }
}

/// Posts `n` chain jobs and waits until each has a step done.
fn running_jobs(fleet: &mut Fleet, n: usize) -> Result<Vec<String>, String> {
    let api = fleet.api().ok_or("no conductor runs")?;
    let ids: Vec<String> =
        (0..n).map(|_| post_job(&api, "chain", &CHAIN)).collect::<Result<_, _>>().map_err(|e| e.to_string())?;
    for id in &ids {
        wait_job(&api, id, PATIENCE, "a step done", |job| !succeeded_tasks(job).is_empty())
            .map_err(|e| e.to_string())?;
    }
    Ok(ids)
}

/// Supervises the fleet until the jobs complete (or are stuck), and makes the row.
fn settle(fleet: &mut Fleet, ids: &[String], fault: String, outage: Duration, mut note: String) -> Row {
    let jobs = fleet.wait_complete(ids, STUCK_AFTER);
    if fleet.failed_starts > 0 {
        let failed = format!("{} supervisor restarts failed while etcd was down", fleet.failed_starts);
        note = if note.is_empty() { failed } else { format!("{note}; {failed}") };
    }
    Row {
        fault,
        outage,
        sessions_lost: fleet.sessions_lost(),
        exits: fleet.exits,
        reexecutions: reexecutions(&jobs),
        done: (succeeded(&jobs), ids.len()),
        note,
    }
}

/// Kill -9 of the leader of a three-member cluster; the outage is the time to a new leader.
fn leader_kill() -> Result<Row, String> {
    let mut cluster = EtcdCluster::start(3);
    let mut fleet = Fleet::start(&cluster.endpoints().join(","), &unique_prefix("outage-leader"), "leader", 3, TTL)?;
    let ids = running_jobs(&mut fleet, JOBS)?;
    let leader = cluster.wait_leader();
    let killed = Instant::now();
    cluster.kill(leader);
    cluster.wait_leader();
    let election = killed.elapsed();
    Ok(settle(
        &mut fleet,
        &ids,
        "leader kill -9, 3-member cluster".into(),
        election,
        "outage: until a new leader".into(),
    ))
}

/// Kill -9 of a lone etcd, a start on the same data dir `down` later. With `probe`, a job is
/// posted as soon as etcd is back and timed to its first claim and to its completion.
fn etcd_restart(down: Duration, probe: bool) -> Result<Row, String> {
    let mut etcd = EtcdProcess::start();
    let mut fleet = Fleet::start(&etcd.endpoint(), &unique_prefix("outage-restart"), "restart", 3, TTL)?;
    let mut ids = running_jobs(&mut fleet, JOBS)?;
    let killed = Instant::now();
    etcd.kill();
    while killed.elapsed() < down {
        fleet.supervise();
        std::thread::sleep(Duration::from_millis(100));
    }
    etcd.restart();
    let outage = killed.elapsed();
    let note = if probe {
        let (id, note) = first_claim_after_return(&mut fleet, Instant::now());
        ids.extend(id);
        note
    } else {
        String::new()
    };
    Ok(settle(&mut fleet, &ids, format!("etcd kill -9, restart after {} s", down.as_secs()), outage, note))
}

/// Posts a one-step job through the first conductor that takes it, then times (from
/// `back`, etcd's return) its first claim and its completion.
fn first_claim_after_return(fleet: &mut Fleet, back: Instant) -> (Option<String>, String) {
    let deadline = back + PATIENCE;
    let mut id = None;
    let mut claimed = None;
    while Instant::now() < deadline {
        fleet.supervise();
        let Some(api) = fleet.api() else {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        let Some(job) = &id else {
            // A conductor still waiting for etcd may refuse the post: try again.
            id = post_job(&api, "chain", &[("steps", "1"), ("step_ms", "100")]).ok();
            continue;
        };
        if let Ok(snapshot) = get_job(&api, job) {
            if claimed.is_none() && snapshot["owner"].as_str().is_some() {
                claimed = Some(back.elapsed());
            }
            if snapshot["state"].as_str() == Some("COMPLETE") {
                let claimed = claimed.unwrap_or_else(|| back.elapsed());
                let note = format!(
                    "new job: claimed {:.1} s, complete {:.1} s after etcd's return",
                    claimed.as_secs_f64(),
                    back.elapsed().as_secs_f64()
                );
                return (id, note);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (id, format!("new job: not complete {PATIENCE:?} after etcd's return"))
}

/// Kill -9 of the conductor running a job; the outage is the time until the other owns it.
fn takeover() -> Result<Row, String> {
    let etcd = EtcdProcess::start();
    let mut fleet = Fleet::start(&etcd.endpoint(), &unique_prefix("outage-takeover"), "takeover", 2, TTL)?;
    let ids = running_jobs(&mut fleet, 1)?;
    let api_of = |fleet: &mut Fleet, name: &str| fleet.by_name(name).map(|p| p.endpoint());
    let job: Value = get_job(&fleet.api().ok_or("no conductor runs")?, &ids[0]).map_err(|e| e.to_string())?;
    let owner = job["owner"].as_str().ok_or(format!("a running job shows no owner: {job}"))?.to_owned();
    let other = if owner == "takeover-0" { "takeover-1" } else { "takeover-0" };
    let api = api_of(&mut fleet, other).ok_or("the other conductor is gone")?;
    let killed = Instant::now();
    fleet.kill(&owner)?;
    wait_job(&api, &ids[0], PATIENCE, "takeover", |job| job["owner"].as_str() == Some(other))
        .map_err(|e| e.to_string())?;
    let took = killed.elapsed();
    let bound = TTL + Duration::from_secs(1);
    let note = format!("takeover {:.1} s (bound TTL + 1 s = {:.0} s)", took.as_secs_f64(), bound.as_secs_f64());
    // The killed conductor's interrupted step may run again: one re-run is the expected cost.
    Ok(settle(&mut fleet, &ids, "conductor kill -9 (takeover)".into(), took, note))
}
