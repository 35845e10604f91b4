//! [`Metrics`]: the conductor's counters and histograms, in Prometheus text format.
//!
//! Names follow Prometheus conventions: a `baton_` prefix, base units (seconds),
//! `_total` on counters. Recording is a few atomic adds or one short lock; the
//! text is rendered only when `/metrics` is scraped ([`crate::http`]).
//!
//! - [`family`]: labelled counter and histogram families.
//! - [`board`]: [`board::MeteredBoard`], every board request timed and counted by operation.
//! - [`tasks`]: [`tasks::TaskListener`], a job's task transitions counted by flow and kind.
//! - [`backlog`]: queue depth and parked jobs from the board's indexes, refreshed on a timer.

pub mod backlog;
pub mod board;
pub mod family;
pub mod tasks;

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jobboard::SessionStats;

use self::backlog::BacklogGauges;
use self::family::{CounterFamily, HistogramFamily};
use crate::local::LocalStatus;

/// Everything the conductor measures. One per process, shared through [`LocalStatus`].
#[derive(Debug, Default)]
pub struct Metrics {
    jobs_posted: CounterFamily,
    jobs_claimed: CounterFamily,
    jobs_completed: CounterFamily,
    jobs_trashed: CounterFamily,
    jobs_abandoned: CounterFamily,
    job_duration: HistogramFamily,
    claim_latency: HistogramFamily,
    board_requests: CounterFamily,
    board_errors: CounterFamily,
    board_latency: HistogramFamily,
    task_executions: CounterFamily,
    task_failures: CounterFamily,
    task_retries: CounterFamily,
    task_reverts: CounterFamily,
    task_duration: HistogramFamily,
    workers_connected: AtomicU64,
    dispatch_latency: HistogramFamily,
    /// Queue depth and parked jobs, as last read ([`backlog::refresh`]).
    pub backlog: BacklogGauges,
    /// The etcd sessions' lease renewals (every session of this conductor counts into it).
    pub lease: Arc<SessionStats>,
}

impl Metrics {
    /// A job of `flow` was posted through this conductor's API.
    pub fn job_posted(&self, flow: &str) {
        self.jobs_posted.inc(&[("flow", flow)]);
    }

    /// A job of `flow` was claimed; `latency` is how long the claim request took.
    pub fn job_claimed(&self, flow: &str, latency: Duration) {
        self.jobs_claimed.inc(&[("flow", flow)]);
        self.claim_latency.observe(&[], latency);
    }

    /// A job of `flow` ended with `outcome` (SUCCESS, FAILURE, REVERTED, CANCELLED) after
    /// running `ran` on this conductor.
    pub fn job_completed(&self, flow: &str, outcome: &str, ran: Duration) {
        self.jobs_completed.inc(&[("flow", flow), ("outcome", outcome)]);
        self.job_duration.observe(&[("flow", flow)], ran);
    }

    /// A job of `flow` was trashed.
    pub fn job_trashed(&self, flow: &str) {
        self.jobs_trashed.inc(&[("flow", flow)]);
    }

    /// A job of `flow` was handed back to the board unfinished.
    pub fn job_abandoned(&self, flow: &str) {
        self.jobs_abandoned.inc(&[("flow", flow)]);
    }

    /// One board request `op` took `took`; `failed` if it returned an error.
    pub fn board_request(&self, op: &str, took: Duration, failed: bool) {
        self.board_requests.inc(&[("op", op)]);
        if failed {
            self.board_errors.inc(&[("op", op)]);
        }
        self.board_latency.observe(&[("op", op)], took);
    }

    /// A task of a job of `flow` was executed; `again` if not for the first time.
    pub fn task_executed(&self, flow: &str, kind: &str, again: bool) {
        self.task_executions.inc(&[("flow", flow), ("kind", kind)]);
        if again {
            self.task_retries.inc(&[("flow", flow), ("kind", kind)]);
        }
    }

    /// A task failed.
    pub fn task_failed(&self, flow: &str, kind: &str) {
        self.task_failures.inc(&[("flow", flow), ("kind", kind)]);
    }

    /// A task was reverted.
    pub fn task_reverted(&self, flow: &str, kind: &str) {
        self.task_reverts.inc(&[("flow", flow), ("kind", kind)]);
    }

    /// A task of `flow` ran for `ran` (RUNNING to SUCCESS or FAILURE).
    pub fn task_ran(&self, flow: &str, ran: Duration) {
        self.task_duration.observe(&[("flow", flow)], ran);
    }

    /// Remote workers connected to this conductor now.
    pub fn workers_connected(&self, count: usize) {
        self.workers_connected.store(count as u64, Ordering::Relaxed);
    }

    /// A remote call waited `waited` for a worker before its assignment was sent.
    pub fn dispatched(&self, waited: Duration) {
        self.dispatch_latency.observe(&[], waited);
    }

    /// The Prometheus text exposition of everything, with the conductor's own gauges from `local`.
    pub fn render(&self, local: &LocalStatus) -> String {
        let mut out = String::new();
        let (started, lost) = local.sessions();
        let _ = writeln!(
            out,
            "# HELP baton_build_info The conductor's version and optional features.\n# TYPE baton_build_info gauge"
        );
        let (version, otel) = (env!("CARGO_PKG_VERSION"), cfg!(feature = "otel"));
        let _ = writeln!(out, "baton_build_info{{version=\"{version}\",otel=\"{otel}\"}} 1");
        gauge(&mut out, "baton_jobs_running", "Jobs this conductor runs now.", local.running_jobs().len() as u64);
        gauge(&mut out, "baton_draining", "1 while this conductor is draining.", u64::from(local.drain.is_draining()));
        counter(&mut out, "baton_board_sessions_started_total", "Board sessions started.", u64::from(started));
        counter(
            &mut out,
            "baton_board_session_losses_total",
            "Board sessions lost (lease expired or revoked).",
            u64::from(lost),
        );
        self.jobs_posted.render(&mut out, "baton_jobs_posted_total", "Jobs posted through this conductor.");
        self.jobs_claimed.render(&mut out, "baton_jobs_claimed_total", "Jobs claimed by this conductor.");
        self.jobs_completed.render(&mut out, "baton_jobs_completed_total", "Jobs this conductor finished, by outcome.");
        self.jobs_trashed.render(&mut out, "baton_jobs_trashed_total", "Jobs this conductor trashed.");
        self.jobs_abandoned.render(&mut out, "baton_jobs_abandoned_total", "Jobs handed back unfinished.");
        self.job_duration.render(
            &mut out,
            "baton_job_duration_seconds",
            "Time from claim to outcome on this conductor.",
        );
        self.claim_latency.render(
            &mut out,
            "baton_claim_latency_seconds",
            "Time from picking a job to its claim landing (with the job's first logbook write), or of a claim request.",
        );
        self.board_requests.render(&mut out, "baton_board_requests_total", "Board requests, by operation.");
        self.board_errors.render(
            &mut out,
            "baton_board_request_errors_total",
            "Board requests that failed, by operation.",
        );
        self.board_latency.render(
            &mut out,
            "baton_board_request_duration_seconds",
            "Board request latency, by operation.",
        );
        self.task_executions.render(&mut out, "baton_task_executions_total", "Task executions, by flow and kind.");
        self.task_failures.render(
            &mut out,
            "baton_task_failures_total",
            "Task executions that failed, by flow and kind.",
        );
        self.task_retries.render(
            &mut out,
            "baton_task_retries_total",
            "Task executions after a task's first (retried or resumed), by flow and kind.",
        );
        self.task_reverts.render(&mut out, "baton_task_reverts_total", "Tasks reverted, by flow and kind.");
        self.task_duration.render(
            &mut out,
            "baton_task_duration_seconds",
            "Task run time (RUNNING to SUCCESS or FAILURE), by flow.",
        );
        gauge(
            &mut out,
            "baton_workers_connected",
            "Remote workers connected to this conductor.",
            self.workers_connected.load(Ordering::Relaxed),
        );
        self.dispatch_latency.render(
            &mut out,
            "baton_dispatch_latency_seconds",
            "Time a remote call waited for a worker before its assignment was sent.",
        );
        counter(&mut out, "baton_lease_renewals_total", "etcd session lease renewals answered.", self.lease.renewals());
        counter(
            &mut out,
            "baton_lease_renewal_failures_total",
            "etcd session lease renewals that failed.",
            self.lease.renewal_failures(),
        );
        self.backlog.render(&mut out, flows::now_millis());
        out
    }
}

fn gauge(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
}
