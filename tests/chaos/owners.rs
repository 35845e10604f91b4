//! The owner check: the owners the board reports (`baton list --state claimed`) agree with
//! what each conductor reports it runs (`GetStatus`). No job may stay claimed by a
//! conductor that is not running it, and no conductor may run a job the board does not
//! give it.
//!
//! The two sides cannot be read in one instant, so a round reads every conductor's status,
//! then the board, then the statuses again: a job claimed by X on the board must be in
//! one of X's two answers, and a job X runs in both answers must be X's on the board. A
//! round with no disagreement means the fleet has settled; a disagreement that outlasts
//! the window (a few lease TTLs: a killed conductor's claims live one TTL) is a finding.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use proto::Client;
use serde_json::Value;
use tests::chaos::flow::FLOW;
use tokio::runtime::Handle;

use crate::cli::Cli;

/// How long one `GetStatus` may take.
const STATUS_TIMEOUT: Duration = Duration::from_secs(3);

/// What a settle check found.
#[derive(Debug)]
pub enum Settle {
    /// A round agreed this long after the check started.
    Agreed(Duration),
    /// The conductors do not implement `GetStatus`: nothing to compare with.
    Unimplemented(String),
    /// No round agreed within the window; the last round's disagreements.
    Disagreed(Vec<String>),
}

/// The jobs each conductor says it runs, by conductor name.
pub type Running = BTreeMap<String, BTreeSet<String>>;

enum RoundError {
    Unimplemented(String),
    Disagreed(Vec<String>),
}

/// Asks the conductors and the board; remembers each process's session counts.
#[derive(Debug)]
pub struct Owners {
    conductors: Vec<(String, String)>,
    runtime: Handle,
    /// Sessions lost, by (conductor name, process start time): the highest count seen.
    sessions_lost: Mutex<BTreeMap<(String, u64), u32>>,
}

impl Owners {
    /// For these (name, endpoint) conductors.
    pub fn new(conductors: Vec<(String, String)>, runtime: Handle) -> Owners {
        Owners { conductors, runtime, sessions_lost: Mutex::default() }
    }

    /// Rounds until one agrees, for at most `window`.
    pub fn settle(&self, cli: &Cli, window: Duration) -> Settle {
        let start = Instant::now();
        loop {
            match self.round(cli) {
                Ok(()) => return Settle::Agreed(start.elapsed()),
                Err(RoundError::Unimplemented(message)) => return Settle::Unimplemented(message),
                Err(RoundError::Disagreed(found)) if start.elapsed() > window => return Settle::Disagreed(found),
                Err(RoundError::Disagreed(_)) => std::thread::sleep(Duration::from_millis(500)),
            }
        }
    }

    /// Sessions lost, summed over every process seen (`None` before any status answered).
    pub fn sessions_lost(&self) -> Option<u64> {
        let seen = self.sessions_lost.lock().unwrap_or_else(|e| e.into_inner());
        (!seen.is_empty()).then(|| seen.values().map(|&n| u64::from(n)).sum())
    }

    fn round(&self, cli: &Cli) -> Result<(), RoundError> {
        let before = self.statuses()?;
        let board = cli
            .any(&["list", "--state", "claimed", "--flow", FLOW])
            .map_err(|e| RoundError::Disagreed(vec![format!("cannot list claimed jobs: {e}")]))?;
        let after = self.statuses()?;
        let found = disagreements(&before, &board, &after);
        if found.is_empty() {
            Ok(())
        } else {
            Err(RoundError::Disagreed(found))
        }
    }

    /// Each conductor's running jobs, by name.
    fn statuses(&self) -> Result<Running, RoundError> {
        let mut running = BTreeMap::new();
        for (name, endpoint) in &self.conductors {
            let answer = self.runtime.block_on(async {
                tokio::time::timeout(STATUS_TIMEOUT, async {
                    Client::connect(endpoint.clone()).await?.get_status().await
                })
                .await
            });
            let status = match answer {
                Ok(Ok(status)) => status,
                Ok(Err(error)) if error.code() == tonic::Code::Unimplemented => {
                    return Err(RoundError::Unimplemented(format!("{name}: {error}")))
                }
                Ok(Err(error)) => return Err(RoundError::Disagreed(vec![format!("{name} gave no status: {error}")])),
                Err(_) => {
                    return Err(RoundError::Disagreed(vec![format!("{name} gave no status within {STATUS_TIMEOUT:?}")]))
                }
            };
            if status.name != *name {
                return Err(RoundError::Disagreed(vec![format!(
                    "{endpoint} says it is {:?}, not {name}",
                    status.name
                )]));
            }
            let mut seen = self.sessions_lost.lock().unwrap_or_else(|e| e.into_inner());
            let count = seen.entry((name.clone(), status.started_ms)).or_default();
            *count = (*count).max(status.sessions_lost);
            running.insert(name.clone(), status.running.iter().map(|job| job.id.clone()).collect());
        }
        Ok(running)
    }
}

/// What disagrees between the board's claimed jobs (`baton list --state claimed` JSON)
/// and the conductors' answers just before and just after it was read.
pub fn disagreements(before: &Running, board: &Value, after: &Running) -> Vec<String> {
    let mut found = Vec::new();
    let mut owned: BTreeMap<&str, &str> = BTreeMap::new();
    for job in board.as_array().into_iter().flatten() {
        let (Some(id), owner) = (job["id"].as_str(), job["owner"].as_str().unwrap_or("")) else { continue };
        owned.insert(id, owner);
        let runs = |side: &Running| side.get(owner).is_some_and(|jobs| jobs.contains(id));
        if !runs(before) && !runs(after) {
            found.push(format!("job {id} is claimed by {owner:?} on the board, which does not run it"));
        }
    }
    for (name, jobs) in before {
        for id in jobs.iter().filter(|id| after.get(name).is_some_and(|a| a.contains(*id))) {
            if owned.get(id.as_str()) != Some(&name.as_str()) {
                let board_says =
                    owned.get(id.as_str()).map_or("not claimed".to_string(), |o| format!("claimed by {o:?}"));
                found.push(format!("{name} runs job {id}, which the board shows {board_says}"));
            }
        }
    }
    found
}
