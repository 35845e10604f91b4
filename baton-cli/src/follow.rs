//! Following a job to its end with live progress on stderr (`post --wait`, `watch`, `demo`).
//!
//! Each snapshot from `WatchJob` prints the tasks whose state changed and a status line
//! (`job 4b7c… chain: CLAIMED by c1, 3/7 tasks done`). On a terminal the status line is
//! a live progress bar (indicatif) under the task lines; otherwise it is printed as a
//! plain line only when it changes, so logs stay short.
//!
//! An open stream has no `--timeout` (a job may run for hours). A stream that breaks
//! (UNAVAILABLE, a lost connection, an unanswered keep-alive, or an end before the job's)
//! is re-opened on the next endpoint, then round the list again, with a growing pause,
//! until [`REWATCH_GIVE_UP`] passes without a snapshot.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use indicatif::{ProgressBar, ProgressStyle};
use proto::{pb, ClientError};

use crate::fleet::{passing_failure, CallError, Fleet};
use crate::output::{failure_line, is_finished, outcome_name, progress, state_name};

/// How long a broken watch is re-opened, round after round, before giving up.
pub const REWATCH_GIVE_UP: Duration = Duration::from_secs(60);
/// The first pause before re-opening a broken watch; it doubles up to [`REWATCH_PAUSE_MAX`].
const REWATCH_PAUSE: Duration = Duration::from_millis(200);
/// The longest pause between two re-openings.
const REWATCH_PAUSE_MAX: Duration = Duration::from_secs(2);

/// How often the bar's spinner moves while nothing changes.
const TICK: Duration = Duration::from_millis(120);

/// Prints progress to stderr.
#[derive(Debug)]
pub struct Progress {
    /// The live bar, on a terminal only.
    bar: Option<ProgressBar>,
    quiet: bool,
    task_states: HashMap<String, String>,
    last_status: String,
}

impl Progress {
    /// Progress on stderr; `quiet` prints nothing.
    pub fn new(quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let style = ProgressStyle::with_template("{spinner} [{bar:24}] {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            let bar = ProgressBar::new(0).with_style(style);
            bar.enable_steady_tick(TICK);
            bar
        });
        Progress { bar, quiet, task_states: HashMap::new(), last_status: String::new() }
    }

    /// Shows one snapshot: changed tasks, then the status line.
    pub fn show(&mut self, job: &pb::Job) {
        let events = self.task_events(job);
        let status = status_line(job);
        if self.quiet {
            self.last_status = status;
            return;
        }
        match &self.bar {
            Some(bar) => {
                for event in events {
                    bar.println(event);
                }
                let (done, total) = progress(job);
                bar.set_length(u64::try_from(total).unwrap_or(u64::MAX));
                bar.set_position(u64::try_from(done).unwrap_or(u64::MAX));
                bar.set_message(status.clone());
                if is_finished(job) {
                    bar.finish_and_clear();
                    eprintln!("{status}");
                }
            }
            None => {
                let mut err = std::io::stderr().lock();
                // Errors writing progress to stderr are not worth failing the command for.
                for event in events {
                    let _ = writeln!(err, "{event}");
                }
                if status != self.last_status {
                    let _ = writeln!(err, "{status}");
                }
                let _ = err.flush();
            }
        }
        self.last_status = status;
    }

    /// `  name: STATE` for each task whose state changed since the last snapshot.
    fn task_events(&mut self, job: &pb::Job) -> Vec<String> {
        let mut events = Vec::new();
        for task in &job.tasks {
            let previous = self.task_states.insert(task.name.clone(), task.state.clone());
            let changed = previous.as_deref() != Some(task.state.as_str());
            if changed && !(previous.is_none() && task.state == "PENDING") {
                let mut event = format!("  {:<28} {}", task.name, task.state);
                if task.executions > 1 {
                    event.push_str(&format!(" (execution {})", task.executions));
                }
                if let Some(failure) = task.failure.as_ref().filter(|_| task.state == "FAILURE") {
                    event.push_str(&format!(": {}", failure_line(failure)));
                }
                events.push(event);
            }
        }
        events
    }
}

/// `job 4b7c…: CLAIMED by c1, 3/7 tasks done`.
pub fn status_line(job: &pb::Job) -> String {
    let short: String = job.id.chars().take(8).collect();
    let mut line = format!("job {short} {}: {}", job.flow, state_name(job));
    if let Some(outcome) = outcome_name(job) {
        line.push_str(&format!(" ({outcome})"));
    }
    if let Some(owner) = &job.owner {
        line.push_str(&format!(" by {owner}"));
    }
    let (done, total) = progress(job);
    if total > 0 {
        line.push_str(&format!(", {done}/{total} tasks done"));
    }
    if let Some(failure) = &job.failure {
        line.push_str(&format!(": {}", failure_line(failure)));
    }
    if let Some(reason) = &job.trash_reason {
        line.push_str(&format!(": {reason}"));
    }
    line
}

/// Follows job `id` until it is COMPLETE or TRASHED and returns its last snapshot.
pub async fn follow(fleet: &Fleet, id: &str, progress: &mut Progress) -> anyhow::Result<pb::Job> {
    let mut broken_since: Option<Instant> = None;
    let mut pause = REWATCH_PAUSE;
    loop {
        let why = match fleet.call(|c| async move { c.watch_job(id).await }).await {
            Ok(stream) => {
                let mut seen = false;
                let read = read_stream(stream, progress, &mut seen).await;
                if seen {
                    broken_since = None;
                    pause = REWATCH_PAUSE;
                }
                let why = match read {
                    Ok(Some(job)) => return Ok(job),
                    Ok(None) => "the stream ended before the job did".to_owned(),
                    Err(error) => match passing_failure(&error) {
                        Some(failure) => failure.to_string(),
                        None => {
                            return Err(anyhow!(CallError::Answer(error)))
                                .with_context(|| format!("cannot watch job {id}"))
                        }
                    },
                };
                // The endpoint that broke the stream is tried last next time.
                fleet.move_on();
                why
            }
            Err(unreachable @ CallError::Unreachable(_)) => unreachable.to_string(),
            Err(answer) => return Err(anyhow!(answer)).with_context(|| format!("cannot watch job {id}")),
        };
        let since = *broken_since.get_or_insert_with(Instant::now);
        if since.elapsed() >= REWATCH_GIVE_UP {
            if let Some(bar) = &progress.bar {
                bar.abandon();
            }
            let waited = flowfile::duration::format_duration(REWATCH_GIVE_UP);
            return Err(anyhow!("{why}")).with_context(|| format!("lost the watch on job {id} for {waited}"));
        }
        tracing::debug!(job = id, %why, "watch broken; re-opening");
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(REWATCH_PAUSE_MAX);
    }
}

/// Reads one `WatchJob` stream: `Some(job)` once the job has ended, `None` if the stream
/// ended first. `seen` tells whether any snapshot came.
async fn read_stream(
    mut stream: tonic::Streaming<pb::Job>,
    progress: &mut Progress,
    seen: &mut bool,
) -> Result<Option<pb::Job>, ClientError> {
    while let Some(job) = stream.message().await? {
        *seen = true;
        progress.show(&job);
        if is_finished(&job) {
            return Ok(Some(job));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(state: pb::JobState, tasks: &[(&str, &str)]) -> pb::Job {
        pb::Job {
            id: "0123456789abcdef".into(),
            flow: "chain".into(),
            state: state as i32,
            owner: Some("c1".into()),
            tasks: tasks
                .iter()
                .map(|(name, state)| pb::Task {
                    name: (*name).into(),
                    kind: "task".into(),
                    state: (*state).into(),
                    attempts: 1,
                    executions: 1,
                    failure: None,
                    result_json: None,
                    parked_deadline_ms: None,
                    completed_by: None,
                    completed_at_ms: None,
                })
                .collect(),
            ..pb::Job::default()
        }
    }

    #[test]
    fn status_line_counts_done_tasks() {
        let line = status_line(&job(pb::JobState::Claimed, &[("a", "SUCCESS"), ("b", "RUNNING")]));
        assert_eq!(line, "job 01234567 chain: CLAIMED by c1, 1/2 tasks done");
    }

    #[test]
    fn only_changed_tasks_are_events() {
        let mut progress = Progress::new(true);
        let first = progress.task_events(&job(pb::JobState::Claimed, &[("a", "RUNNING"), ("b", "PENDING")]));
        assert_eq!(first.len(), 1, "{first:?}");
        assert!(first[0].contains('a') && first[0].contains("RUNNING"));
        let second = progress.task_events(&job(pb::JobState::Claimed, &[("a", "SUCCESS"), ("b", "PENDING")]));
        assert_eq!(second.len(), 1);
        assert!(second[0].contains("SUCCESS"));
        assert!(progress.task_events(&job(pb::JobState::Claimed, &[("a", "SUCCESS"), ("b", "PENDING")])).is_empty());
    }
}
