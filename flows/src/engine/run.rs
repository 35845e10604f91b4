//! The run loop: start every ready atom up to the concurrency limit, fold in
//! completions, and decide the final state.
//!
//! Scheduling is O(edges): each node keeps a count of unfinished
//! predecessors (and, while reverting, of not-yet-undone successors); a
//! completion only touches the node's own edges. Nothing rescans all atoms
//! per step and nothing copies the whole flow detail per write.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::task::JoinSet;

use super::job::{perform, Action, Completion, Done, Shared};
use super::{Engine, RunOutcome};
use crate::compile::NodeKind;
use crate::error::Error;
use crate::failure::Failure;
use crate::logbook::AtomDetail;
use crate::state::{AtomState, FlowState, Intention};

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
    };
    let outcome = run.drive().await;
    run.engine.details = std::mem::take(&mut run.details);
    outcome
}

impl Run<'_> {
    async fn drive(&mut self) -> Result<RunOutcome, Error> {
        if let Some(done) = self.prepare().await? {
            return Ok(done);
        }
        loop {
            if let Err(error) = self.check_control().await {
                // Like any storage error: start nothing more, let running jobs record their outcome.
                self.error.get_or_insert(error);
            }
            self.dispatch().await;
            if self.in_flight == 0 {
                // While everything is reverted nothing in `ready` may start, so it cannot keep
                // the loop going (that would spin).
                let startable = !self.ready.is_empty() && !self.reverting_all;
                let stuck = self.error.is_some() || (!startable && self.undo.is_empty());
                if stuck || self.suspending || self.revert_failure.is_some() {
                    break;
                }
                continue;
            }
            self.wait_one().await;
        }
        if let Some(error) = self.error.take() {
            return Err(error);
        }
        self.conclude().await
    }

    /// Turns suspend and cancel requests into mode changes.
    async fn check_control(&mut self) -> Result<(), Error> {
        let control = self.engine.control.clone();
        if control.cancel_requested() && self.error.is_none() {
            // Honoured (or moot, if everything is being reverted already): a later run
            // must not be cancelled by this same request.
            control.clear_cancel();
            if !self.reverting_all {
                let name = &self.shared.compiled.name;
                self.revert_all(Failure::new(super::CANCELLED, format!("flow {name} was cancelled"))).await;
            }
        }
        if control.suspend_requested() && self.error.is_none() {
            // Honoured once (a repeated request while suspending must not suspend the next run).
            control.clear_suspend();
            if !self.suspending {
                self.suspending = true;
                self.set_flow(FlowState::Suspending).await?;
            }
        }
        Ok(())
    }

    /// Starts reverts, then executions, while there is room.
    async fn dispatch(&mut self) {
        let limit = self.engine.max_concurrency;
        let control = self.engine.control.clone();
        while self.error.is_none() && !self.suspending && self.revert_failure.is_none() && self.in_flight < limit {
            // A request made by a task that just ran inline is honoured before anything else starts.
            if (control.cancel_requested() && !self.reverting_all) || control.suspend_requested() {
                break;
            }
            if let Some(n) = self.undo.pop() {
                self.start_revert(n).await;
                continue;
            }
            if self.reverting_all {
                break;
            }
            match self.ready.pop_front() {
                Some((n, epoch)) => self.start(n, epoch).await,
                None => break,
            }
        }
    }

    /// Starts (or skips, or ignores) a node whose predecessors are done.
    async fn start(&mut self, n: usize, epoch: u32) {
        let rt = &self.rt[n];
        let state = self.details[n].state;
        let startable = matches!(state, AtomState::Pending | AtomState::Retrying);
        if rt.epoch != epoch || rt.undo || rt.in_flight || !startable {
            return;
        }
        if !self.rt[n].vetoed {
            match self.deciders_allow(n) {
                Ok(allowed) => self.rt[n].vetoed = !allowed,
                Err(failure) => {
                    // A decider is user code like a task: its panic fails the flow, it does not crash the engine.
                    self.revert_all(failure).await;
                    return;
                }
            }
        }
        let shared = self.shared.clone();
        let node = &shared.compiled.nodes[n];
        if self.rt[n].vetoed {
            self.ignore(n).await;
            return;
        }
        match &node.kind {
            NodeKind::Join => {
                if self.move_join(n, &[AtomState::Running, AtomState::Success]) {
                    self.done(n);
                }
            }
            NodeKind::Task(_) => {
                let inputs = self.inputs(n);
                self.launch(n, Action::Execute { inputs }).await;
            }
            NodeKind::Retry { retry, .. } => {
                let inputs = self.inputs(n).unwrap_or_default();
                let delay = retry.backoff.map(|b| b.delay(self.details[n].attempts.len() + 1)).unwrap_or_default();
                self.launch(n, Action::RetryExecute { inputs, delay }).await;
            }
        }
    }

    /// Runs a job: inline for a serial engine; for a parallel one, polled once
    /// inline and spawned only if it has to wait (unless `eager_spawn`).
    pub(crate) async fn launch(&mut self, n: usize, action: Action) {
        let kind = self.details[n].kind;
        let detail = std::mem::replace(&mut self.details[n], AtomDetail::new(String::new(), kind));
        self.rt[n].in_flight = true;
        self.in_flight += 1;
        let job = perform(self.shared.clone(), n, detail, action);
        if self.engine.max_concurrency == 1 {
            let completion = job.await;
            self.complete(completion).await;
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
                Poll::Ready(completion) => self.complete(completion).await,
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
                Some(Ok(completion)) => self.complete(completion).await,
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

    /// Folds a finished job into the run.
    async fn complete(&mut self, c: Completion) {
        let n = c.node;
        self.rt[n].in_flight = false;
        self.in_flight -= 1;
        self.details[n] = c.detail;
        if self.error.is_some() {
            // The run is stopping: a job that was in flight is folded in (its detail is
            // what it recorded) but nothing more is decided or written.
            if let Err(error) = c.outcome {
                tracing::warn!(flow = %self.shared.compiled.name, %error, "another error while stopping");
            }
            return;
        }
        match c.outcome {
            Err(error) => {
                self.error.get_or_insert(error);
            }
            Ok(Done::Executed(Ok(_))) => {
                if self.rt[n].undo {
                    self.consider_undo(n);
                } else {
                    self.done(n);
                }
            }
            Ok(Done::Executed(Err(failure))) => {
                self.flow_failures.insert(self.details[n].name.clone(), failure.clone());
                if self.rt[n].undo {
                    self.consider_undo(n);
                } else {
                    self.resolve(n, failure).await;
                }
            }
            Ok(Done::Reverted(Ok(()))) => self.undone(n).await,
            Ok(Done::Interrupted) => {
                // The retry is still RETRYING: reverted if everything is, started by a later run if suspended.
                if self.rt[n].undo {
                    self.consider_undo(n);
                } else {
                    self.ready.push_front((n, self.rt[n].epoch));
                }
            }
            Ok(Done::Reverted(Err(failure))) => {
                // A failed revert is fatal: nothing more is started, the flow ends FAILURE.
                self.revert_failure.get_or_insert(failure);
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

    /// Persists IGNORE for a vetoed node, then treats it as done.
    async fn ignore(&mut self, n: usize) {
        if self.shared.compiled.nodes[n].is_join() {
            if !self.move_join(n, &[AtomState::Ignore]) {
                return;
            }
        } else {
            let mut detail = self.details[n].clone();
            detail.intention = Intention::Ignore;
            if let Err(e) = self.shared.transition(&mut detail, AtomState::Ignore).await {
                self.error.get_or_insert(e);
                return;
            }
            self.details[n] = detail;
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
        self.set_flow(state).await?;
        Ok(RunOutcome { state, failure, results: self.results() })
    }
}
