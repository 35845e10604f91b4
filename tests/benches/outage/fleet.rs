//! A supervised fleet of real conductors, and what the outage bench counts of it.
//!
//! The supervisor restarts a conductor that exited (as Kubernetes or systemd
//! would), so the jobs of a fleet that fences itself off still complete and the
//! bench can count what that cost: process exits, sessions lost (from
//! `GetStatus` when the daemon serves it, else the log lines that say so,
//! of live and exited processes alike) and tasks that ran more than once.

use std::time::{Duration, Instant};

use serde_json::Value;
use tests::conductor::{get_job, is_complete, task_executions, ConductorConfig, ConductorProcess};

/// How long the supervisor waits before it restarts an exited conductor again.
const RESTART_BACKOFF: Duration = Duration::from_secs(1);

/// One slot of the fleet: its settings and, while it runs, its process.
struct Slot {
    config: ConductorConfig,
    process: Option<ConductorProcess>,
    next_start: Instant,
}

/// Conductors on one board, restarted when they exit.
pub struct Fleet {
    slots: Vec<Slot>,
    /// Logs of the processes that exited, so their lost sessions count.
    exited_logs: Vec<String>,
    /// Running conductors that exited on their own.
    pub exits: usize,
    /// Restarts by the supervisor that did not come up (each is a few short-lived processes).
    pub failed_starts: usize,
}

impl Fleet {
    /// Starts `n` conductors named `NAME-i` on `etcd` (comma-separated endpoints) under `prefix`.
    pub fn start(etcd: &str, prefix: &str, name: &str, n: usize, ttl: Duration) -> Result<Fleet, String> {
        let mut slots = Vec::new();
        for i in 0..n {
            let config = ConductorConfig::etcd(etcd, prefix, &format!("{name}-{i}"), ttl);
            let process = ConductorProcess::start(&config).map_err(|e| e.to_string())?;
            slots.push(Slot { config, process: Some(process), next_start: Instant::now() });
        }
        Ok(Fleet { slots, exited_logs: Vec::new(), exits: 0, failed_starts: 0 })
    }

    /// The API endpoint of a running conductor, if any runs.
    pub fn api(&mut self) -> Option<String> {
        self.slots.iter_mut().filter_map(|s| s.process.as_mut()).find_map(|p| p.is_running().then(|| p.endpoint()))
    }

    /// The running conductor named `name`, if it runs.
    pub fn by_name(&mut self, name: &str) -> Option<&mut ConductorProcess> {
        self.slots.iter_mut().filter_map(|s| s.process.as_mut()).find(|p| p.name() == name)
    }

    /// Notes exited conductors and restarts them (one attempt per backoff each).
    pub fn supervise(&mut self) {
        for slot in &mut self.slots {
            if let Some(process) = slot.process.as_mut() {
                if process.is_running() {
                    continue;
                }
                self.exits += 1;
                self.exited_logs.push(process.log());
                slot.process = None;
                slot.next_start = Instant::now();
            }
            if Instant::now() < slot.next_start {
                continue;
            }
            match ConductorProcess::start(&slot.config) {
                Ok(process) => slot.process = Some(process),
                Err(_) => {
                    self.failed_starts += 1;
                    slot.next_start = Instant::now() + RESTART_BACKOFF;
                }
            }
        }
    }

    /// SIGKILL of conductor `name` (not counted as an exit: the bench did it).
    pub fn kill(&mut self, name: &str) -> Result<(), String> {
        let slot = self.slots.iter_mut().find(|s| s.config.name == name).ok_or(format!("no conductor {name}"))?;
        if let Some(mut process) = slot.process.take() {
            process.kill().map_err(|e| e.to_string())?;
        }
        slot.next_start = Instant::now() + Duration::from_secs(3600);
        Ok(())
    }

    /// Sessions lost so far, fleet-wide: per live conductor the larger of what
    /// `GetStatus` says and what its log says, plus what the logs of exited ones say.
    pub fn sessions_lost(&mut self) -> usize {
        let mut lost: usize = self.exited_logs.iter().map(|log| sessions_lost_in(log)).sum();
        for process in self.slots.iter_mut().filter_map(|s| s.process.as_mut()) {
            let from_log = sessions_lost_in(&process.log());
            lost += from_log.max(status_sessions_lost(&process.endpoint()).unwrap_or(0));
        }
        lost
    }

    /// Supervises until every job in `ids` is complete or `within` passes;
    /// returns the last snapshot of each (Null if never seen).
    pub fn wait_complete(&mut self, ids: &[String], within: Duration) -> Vec<Value> {
        let deadline = Instant::now() + within;
        let mut last = vec![Value::Null; ids.len()];
        while Instant::now() < deadline {
            self.supervise();
            if let Some(api) = self.api() {
                for (id, seen) in ids.iter().zip(last.iter_mut()) {
                    if !is_complete(seen) {
                        if let Ok(job) = get_job(&api, id) {
                            *seen = job;
                        }
                    }
                }
            }
            if last.iter().all(is_complete) {
                break;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        last
    }
}

/// The sessions lost `GetStatus` reports, if the conductor answers it.
fn status_sessions_lost(endpoint: &str) -> Option<usize> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
    runtime.block_on(async {
        let ask = async { proto::Client::connect(endpoint.to_owned()).await.ok()?.get_status().await.ok() };
        let status = tokio::time::timeout(Duration::from_secs(5), ask).await.ok()??;
        Some(status.sessions_lost as usize)
    })
}

/// The sessions a log says were lost: the daemon logs "board session lost", the
/// board "session lease lost ..."; one loss may show as either or both.
fn sessions_lost_in(log: &str) -> usize {
    let lines: Vec<String> = log.lines().map(str::to_lowercase).collect();
    let count = |what: &str| lines.iter().filter(|line| line.contains(what)).count();
    count("session lost").max(count("lease lost"))
}

/// Task runs beyond the first, summed over the jobs' snapshots.
pub fn reexecutions(jobs: &[Value]) -> u64 {
    jobs.iter().flat_map(|job| task_executions(job).into_values()).map(|n| n.saturating_sub(1)).sum()
}

/// How many of the snapshots show COMPLETE/SUCCESS.
pub fn succeeded(jobs: &[Value]) -> usize {
    jobs.iter().filter(|job| is_complete(job) && job["outcome"].as_str() == Some("SUCCESS")).count()
}
