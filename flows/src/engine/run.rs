//! The run loop: start every ready atom up to the concurrency limit, fold in
//! completions, and decide the final state.
//!
//! Scheduling is O(edges): each node keeps a count of unfinished
//! predecessors (and, while reverting, of not-yet-undone successors); a
//! completion only touches the node's own edges. Nothing rescans all atoms
//! per step and nothing copies the whole flow detail per write.
//!
//! Writes go through the journal: the loop stages every transition it decides
//! and flushes them in one write before it launches jobs (a batch of them at
//! once), before it waits, and at the end.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::task::JoinSet;
use tracing::Instrument;

use super::job::{perform, Action, Completion, Done, Shared};
use super::journal::Journal;
use super::{Engine, RunOutcome};
use crate::compile::NodeKind;
use crate::error::Error;
use crate::failure::Failure;
use crate::logbook::{AtomDetail, Attempt};
use crate::park::{Delivery, Park, ParkedContext};
use crate::state::{AtomState, FlowState, Intention};
use crate::storage::FlowEnd;
use crate::task::ExecuteContext;

/// Run-time bookkeeping of one graph node.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rt {
    /// Predecessors not yet SUCCESS or IGNORE.
    pub(crate) remaining: u32,
    /// While reverting: successors that ran and are not undone yet.
    pub(crate) block: u32,
    /// Bumped when a retry resets the node, so stale ready entries are dropped.
    pub(crate) epoch: u32,
    /// A decider (or an ignored predecessor) said this node must not run.
    pub(crate) vetoed: bool,
    /// The node is to be reverted once its successors are undone.
    pub(crate) undo: bool,
    pub(crate) in_flight: bool,
}

/// The state of one `Engine::run`.
pub(crate) struct Run<'e> {
    pub(crate) engine: &'e mut Engine,
    pub(crate) shared: Arc<Shared>,
    /// One detail per graph node; joins have a never-persisted stand-in.
    pub(crate) details: Vec<AtomDetail>,
    pub(crate) rt: Vec<Rt>,
    /// Nodes whose predecessors are done, with the epoch they were queued in.
    pub(crate) ready: VecDeque<(usize, u32)>,
    /// Nodes ready to be reverted.
    pub(crate) undo: Vec<usize>,
    jobs: JoinSet<Completion>,
    pub(crate) in_flight: usize,
    /// True while everything is being reverted (a failure nobody retries, or a cancel).
    pub(crate) reverting_all: bool,
    pub(crate) suspending: bool,
    /// The failure that caused the revert.
    pub(crate) cause: Option<Failure>,
    pub(crate) flow_failures: BTreeMap<String, Failure>,
    pub(crate) revert_failure: Option<Failure>,
    pub(crate) error: Option<Error>,
    /// Retry nodes whose subflow is being reverted, with how many nodes remain to undo.
    pub(crate) scope_pending: BTreeMap<usize, usize>,
    /// Jobs launched since the run last yielded to the runtime.
    inline_streak: u32,
    /// Decided, not yet written.
    pub(crate) journal: Journal,
    /// Parked atoms whose `parked` hook is to run once their park is written.
    pub(crate) to_notify: Vec<(usize, ParkedContext)>,
    /// Deliveries taken from the control that wait for their atom's hook to end.
    pub(crate) deliveries: Vec<Delivery>,
}

pub(crate) async fn run(engine: &mut Engine) -> Result<RunOutcome, Error> {
    let shared = Arc::new(Shared {
        storage: engine.storage.clone(),
        book: engine.book,
        flow_id: engine.detail.id,
        compiled: engine.compiled.clone(),
        listeners: engine.listeners.clone(),
        control: engine.control.clone(),
    });
    let details = std::mem::take(&mut engine.details);
    let count = details.len();
    let mut run = Run {
        engine,
        shared,
        details,
        rt: vec![Rt::default(); count],
        ready: VecDeque::new(),
        undo: Vec::new(),
        jobs: JoinSet::new(),
        in_flight: 0,
        reverting_all: false,
        suspending: false,
        cause: None,
        flow_failures: BTreeMap::new(),
        revert_failure: None,
        error: None,
        scope_pending: BTreeMap::new(),
        inline_streak: 0,
        journal: Journal::new(count),
        to_notify: Vec::new(),
        deliveries: Vec::new(),
    };
    let outcome = run.drive().await;
    run.engine.details = std::mem::take(&mut run.details);
    outcome
}

impl Run<'_> {
    async fn drive(&mut self) -> Result<RunOutcome, Error> {
        if let Some(done) = self.prepare()? {
            return Ok(done);
        }
        loop {
            if let Err(error) = self.check_control() {
                // Like any storage error: start nothing more, let running jobs finish.
                self.error.get_or_insert(error);
            }
            self.dispatch().await;
            if self.in_flight == 0 {
                // While everything is reverted nothing in `ready` may start, so it cannot keep
                // the loop going (that would spin).
                let startable = !self.ready.is_empty() && !self.reverting_all;
                let stuck = self.error.is_some() || (!startable && self.undo.is_empty());
                let delivered = self.error.is_none() && !self.suspending && self.engine.control.has_deliveries();
                if (stuck || self.suspending || self.revert_failure.is_some()) && !delivered {
                    break;
                }
                continue;
            }
            // Whatever finished is recorded before the wait, which may be long.
            if self.error.is_none() {
                if let Err(error) = self.flush().await {
                    self.error.get_or_insert(error);
                }
            }
            self.wait_one().await;
        }
        if let Some(error) = self.error.take() {
            // Nothing more is written after an error: jobs that were in flight finished,
            // but their outcomes are not recorded, so a later run runs them again.
            return Err(error);
        }
        self.conclude().await
    }

    /// Turns suspend and cancel requests into mode changes.
    fn check_control(&mut self) -> Result<(), Error> {
        let control = self.engine.control.clone();
        if self.error.is_none() {
            self.fold_deliveries();
        }
        if control.cancel_requested() && self.error.is_none() {
            // Honoured (or moot, if everything is being reverted already): a later run
            // must not be cancelled by this same request.
            control.clear_cancel();
            if !self.reverting_all {
                let name = &self.shared.compiled.name;
                self.revert_all(Failure::new(super::CANCELLED, format!("flow {name} was cancelled")));
            }
        }
        if control.suspend_requested() && self.error.is_none() {
            // Honoured once (a repeated request while suspending must not suspend the next run).
            control.clear_suspend();
            if !self.suspending {
                self.suspending = true;
                self.set_flow(FlowState::Suspending)?;
            }
        }
        Ok(())
    }

    /// Starts reverts, then executions, while there is room: each round stages the
    /// transitions of every job it can start, writes them at once, then launches the
    /// jobs (those that finish inline may make more work ready for the next round).
    async fn dispatch(&mut self) {
        let limit = self.engine.max_concurrency;
        let control = self.engine.control.clone();
        loop {
            let mut batch = Vec::new();
            while self.error.is_none() && !self.suspending && self.revert_failure.is_none() && self.in_flight < limit {
                // A request made by a task that just ran inline is honoured before anything else starts.
                if (control.cancel_requested() && !self.reverting_all) || control.suspend_requested() {
                    break;
                }
                if let Some(n) = self.undo.pop() {
                    if let Some(action) = self.start_revert(n) {
                        batch.push((n, action));
                    }
                    continue;
                }
                if let Some(job) = self.next_notify() {
                    batch.push(job);
                    continue;
                }
                if self.reverting_all {
                    break;
                }
                match self.ready.pop_front() {
                    Some((n, epoch)) => {
                        if let Some(action) = self.start(n, epoch) {
                            batch.push((n, action));
                        }
                    }
                    None => break,
                }
            }
            if batch.is_empty() {
                return;
            }
            if self.error.is_none() {
                if let Err(error) = self.flush().await {
                    self.error.get_or_insert(error);
                }
            }
            if self.error.is_some() {
                // Not recorded (or the run is stopping): these jobs never begin.
                for (n, _) in &batch {
                    self.rt[*n].in_flight = false;
                    self.in_flight -= 1;
                }
                return;
            }
            for (n, action) in batch {
                self.launch(n, action).await;
            }
        }
    }

    /// Stages the start of a node whose predecessors are done and returns its job,
    /// or settles it at once (skipped, ignored, a join, a retry's next attempt).
    fn start(&mut self, n: usize, epoch: u32) -> Option<Action> {
        let rt = &self.rt[n];
        let state = self.details[n].state;
        let startable = matches!(state, AtomState::Pending | AtomState::Retrying);
        if rt.epoch != epoch || rt.undo || rt.in_flight || !startable {
            return None;
        }
        if !self.rt[n].vetoed {
            match self.deciders_allow(n) {
                Ok(allowed) => self.rt[n].vetoed = !allowed,
                Err(failure) => {
                    // A decider is user code like a task: its panic fails the flow, it does not crash the engine.
                    self.revert_all(failure);
                    return None;
                }
            }
        }
        let shared = self.shared.clone();
        let node = &shared.compiled.nodes[n];
        if self.rt[n].vetoed {
            self.ignore(n);
            return None;
        }
        match &node.kind {
            NodeKind::Join => {
                if self.move_join(n, &[AtomState::Running, AtomState::Success]) {
                    self.done(n);
                }
                None
            }
            NodeKind::Task(_) => {
                let inputs = self.inputs(n);
                if !self.begin(n, Self::begin_execute) {
                    return None;
                }
                let attempt = self.details[n].executions;
                let book = self.shared.book;
                let context =
                    inputs.map(|inputs| ExecuteContext::new(node.shared_name.clone(), inputs, attempt).in_book(book));
                Some(Action::Execute(context))
            }
            NodeKind::Retry { retry, .. } => {
                let delay = retry.backoff.map(|b| b.delay(self.details[n].attempts.len() + 1)).unwrap_or_default();
                if delay.is_zero() {
                    self.attempt_retry(n);
                    return None;
                }
                self.rt[n].in_flight = true;
                self.in_flight += 1;
                Some(Action::Delay(delay))
            }
        }
    }

    /// Stages `begin` for node `n` and counts it in flight; false (run stopped) if refused.
    pub(crate) fn begin(&mut self, n: usize, begin: fn(&mut Self, usize) -> Result<(), Error>) -> bool {
        if let Err(error) = begin(self, n) {
            self.error.get_or_insert(error);
            return false;
        }
        self.rt[n].in_flight = true;
        self.in_flight += 1;
        true
    }

    /// Runs a retry controller's next attempt. It is the engine's own code, quick and
    /// without side effects, so it runs right here and its RUNNING and outcome are
    /// recorded together.
    fn attempt_retry(&mut self, n: usize) {
        let shared = self.shared.clone();
        let NodeKind::Retry { retry, .. } = &shared.compiled.nodes[n].kind else { return };
        if let Err(error) = self.begin_execute(n) {
            self.error.get_or_insert(error);
            return;
        }
        let inputs = self.inputs(n).unwrap_or_default();
        let outcome = retry.controller.execute(&self.details[n].attempts, &inputs);
        if let Ok(value) = &outcome {
            self.details[n].attempts.push(Attempt { value: value.clone(), failures: BTreeMap::new() });
        }
        self.executed(n, outcome);
    }

    /// Runs a job: inline for a serial engine; for a parallel one, polled once
    /// inline and spawned only if it has to wait (unless `eager_spawn`).
    async fn launch(&mut self, n: usize, action: Action) {
        // Made here, inside the caller's span (the job's), so that a spawned call keeps its parent.
        let span = call_span(&self.shared, n, &action);
        let job = perform(self.shared.clone(), n, action).instrument(span);
        if self.engine.max_concurrency == 1 {
            let completion = job.await;
            self.complete(completion);
        } else if self.engine.eager_spawn {
            self.jobs.spawn(job);
        } else {
            let mut job = Box::pin(job);
            // The job is polled again by its own tokio task right away if it is not
            // done, which re-registers a real waker wherever it is waiting.
            // The context is dropped at the end of this statement: it is not `Send`,
            // and the engine's future must stay `Send` to be spawned.
            let polled = job.as_mut().poll(&mut Context::from_waker(futures::task::noop_waker_ref()));
            match polled {
                Poll::Ready(completion) => self.complete(completion),
                Poll::Pending => {
                    self.jobs.spawn(job);
                }
            }
        }
        // Jobs that finish without waiting never yield to the runtime: do it now and
        // then so other tasks on this thread (heartbeats, listeners) are not starved.
        self.inline_streak += 1;
        if self.inline_streak >= 256 {
            self.inline_streak = 0;
            tokio::task::yield_now().await;
        }
    }

    async fn wait_one(&mut self) {
        let control = self.engine.control.clone();
        tokio::select! {
            joined = self.jobs.join_next() => match joined {
                Some(Ok(completion)) => self.complete(completion),
                Some(Err(err)) => {
                    // The job's own panic guard failed (the runtime is shutting down): stop.
                    self.in_flight = self.in_flight.saturating_sub(1);
                    self.error.get_or_insert(Error::JobLost {
                        flow: self.shared.compiled.name.clone(),
                        message: err.to_string(),
                    });
                }
                None => self.in_flight = 0,
            },
            () = control.woken() => {}
        }
    }

    /// Folds a finished job into the run: stages its outcome and decides what follows.
    fn complete(&mut self, c: Completion) {
        let n = c.node;
        self.rt[n].in_flight = false;
        self.in_flight -= 1;
        if self.error.is_some() {
            // The run is stopping: nothing more is decided or written.
            return;
        }
        match c.done {
            Done::Executed(outcome) => self.executed(n, outcome),
            Done::Notified(attempt, outcome) => self.notified(n, attempt, outcome),
            Done::Reverted(outcome) => {
                if let Err(error) = self.finish_revert(n, &outcome) {
                    self.error.get_or_insert(error);
                    return;
                }
                match outcome {
                    Ok(()) => self.undone(n),
                    // A failed revert is fatal: nothing more is started, the flow ends FAILURE.
                    Err(failure) => {
                        self.revert_failure.get_or_insert(failure);
                    }
                }
            }
            Done::Delayed if !self.rt[n].undo => self.attempt_retry(n),
            Done::Delayed | Done::Interrupted => {
                // The retry is still RETRYING: reverted if everything is, started by a later run if suspended.
                if self.rt[n].undo {
                    self.consider_undo(n);
                } else {
                    self.ready.push_front((n, self.rt[n].epoch));
                }
            }
        }
    }

    /// Stages how `n`'s execute ended and decides what follows: a park, or a settled outcome.
    fn executed(&mut self, n: usize, outcome: Result<serde_json::Value, Failure>) {
        if let Some(park) = outcome.as_ref().err().and_then(Park::from_failure) {
            self.park(n, park);
            return;
        }
        self.settle(n, outcome);
    }

    /// Stages SUCCESS or FAILURE for `n` (from RUNNING, or PARKED on a delivery) and decides what follows.
    pub(crate) fn settle(&mut self, n: usize, outcome: Result<serde_json::Value, Failure>) {
        if let Err(error) = self.finish_execute(n, &outcome) {
            self.error.get_or_insert(error);
            return;
        }
        match outcome {
            Ok(_) if self.rt[n].undo => self.consider_undo(n),
            Ok(_) => self.done(n),
            Err(failure) => {
                self.flow_failures.insert(self.details[n].name.clone(), failure.clone());
                if self.rt[n].undo {
                    self.consider_undo(n);
                } else {
                    self.resolve(n, failure);
                }
            }
        }
    }

    /// Marks `n` done (SUCCESS or IGNORE) and readies successors whose predecessors are all done.
    pub(crate) fn done(&mut self, n: usize) {
        let ignored = self.details[n].state == AtomState::Ignore;
        let compiled = self.shared.compiled.clone();
        for &s in &compiled.nodes[n].succs {
            let rt = &mut self.rt[s];
            if ignored {
                rt.vetoed = true;
            }
            rt.remaining = rt.remaining.saturating_sub(1);
            if rt.remaining == 0 {
                self.ready.push_back((s, rt.epoch));
            }
        }
    }

    /// Stages IGNORE for a vetoed node, then treats it as done.
    fn ignore(&mut self, n: usize) {
        if self.shared.compiled.nodes[n].is_join() {
            if !self.move_join(n, &[AtomState::Ignore]) {
                return;
            }
        } else {
            self.details[n].intention = Intention::Ignore;
            if !self.try_transition(n, AtomState::Ignore) {
                return;
            }
        }
        self.done(n);
    }

    /// Decides and records the final state.
    async fn conclude(&mut self) -> Result<RunOutcome, Error> {
        let nodes = &self.shared.compiled.nodes;
        let root_exit = nodes.len() - 1;
        let finished = matches!(self.details[root_exit].state, AtomState::Success | AtomState::Ignore);
        let (state, failure) = if let Some(rf) = self.revert_failure.clone() {
            let failure = match (&rf.cause, &self.cause) {
                (None, Some(cause)) => rf.with_cause(cause.clone()),
                _ => rf,
            };
            (FlowState::Failure, Some(failure))
        } else if self.reverting_all && self.undo.is_empty() && !self.suspending {
            (FlowState::Reverted, self.cause.clone())
        } else if finished && !self.reverting_all {
            (FlowState::Success, None)
        } else if self.suspending {
            (FlowState::Suspended, self.cause.clone())
        } else if self.any_parked() && !self.reverting_all {
            (FlowState::Parked, None)
        } else {
            // Nothing runs, nothing is ready and the flow is not done: a scheduling bug.
            // Report it rather than end in a state that claims a request was honoured.
            let atoms = nodes
                .iter()
                .zip(&self.details)
                .filter(|(n, d)| !n.is_join() && !matches!(d.state, AtomState::Success | AtomState::Ignore))
                .map(|(n, d)| format!("{} ({})", n.name, d.state))
                .collect();
            return Err(Error::Stalled { flow: self.shared.compiled.name.clone(), atoms });
        };
        if state == FlowState::Reverted || state == FlowState::Success {
            self.engine.detail.meta.remove("revert_all");
        }
        self.set_flow(state)?;
        // The last write goes with how the run ends, so a storage may record both at once.
        self.flush_final(FlowEnd { state, failure: failure.as_ref() }).await?;
        Ok(RunOutcome { state, failure, results: self.results() })
    }
}

/// The tracing span of one call into a task (`execute`, `revert` or `parked`); none for a retry's backoff.
fn call_span(shared: &Shared, n: usize, action: &Action) -> tracing::Span {
    let node = &shared.compiled.nodes[n];
    let call = match action {
        Action::Execute(_) => "execute",
        Action::Revert(_) => "revert",
        Action::Notify(_) => "parked",
        Action::Delay(_) => return tracing::Span::none(),
    };
    let kind = match &node.kind {
        NodeKind::Task(spec) => spec.declared_kind().unwrap_or("task"),
        _ => "retry",
    };
    tracing::info_span!("task", flow = %shared.compiled.name, atom = %node.name, kind, call)
}
