//! Parked atoms: a task parks, the run ends PARKED while nothing else can run,
//! its park is recorded before its hook learns the token, and a delivered
//! result or failure moves it on (to its consumers, or into retries and reverts).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{engine_on, ok};
use crate::{
    task, task_fn, AtomState, CallbackToken, Delivery, Engine, ExecuteContext, Failure, Flow, FlowState, MemoryStorage,
    Park, ParkedContext, Retry, RevertContext, Storage, Task,
};

/// Parks on every execute; its hook records each token it is given and what the
/// logbook said at that moment; counts reverts.
struct Await {
    storage: Arc<MemoryStorage>,
    book: Uuid,
    flow_id: Uuid,
    tokens: Arc<Mutex<Vec<CallbackToken>>>,
    /// State of the atom in storage when the hook ran.
    seen: Arc<Mutex<Vec<AtomState>>>,
    reverts: Arc<AtomicUsize>,
    /// The hook fails (once per entry) while this is positive.
    hook_failures: Arc<AtomicUsize>,
}

#[async_trait]
impl Task for Await {
    async fn execute(&self, _ctx: &ExecuteContext) -> Result<Value, Failure> {
        Err(Park::after(Duration::from_secs(3600)).into())
    }
    async fn revert(&self, _ctx: &RevertContext) -> Result<(), Failure> {
        self.reverts.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    async fn parked(&self, ctx: &ParkedContext) -> Result<(), Failure> {
        let stored = self.storage.load_flow(self.book, self.flow_id).await.map_err(|e| Failure::task(e.to_string()))?;
        let state = stored.and_then(|f| f.atoms.get(ctx.atom_name()).map(|a| a.state));
        self.seen.lock().expect("lock").push(state.unwrap_or(AtomState::Pending));
        self.tokens.lock().expect("lock").push(ctx.token().clone());
        if self.hook_failures.load(Ordering::SeqCst) > 0 {
            self.hook_failures.fetch_sub(1, Ordering::SeqCst);
            return Err(Failure::task("chat is down"));
        }
        Ok(())
    }
}

struct Fixture {
    storage: Arc<MemoryStorage>,
    book: Uuid,
    flow_id: Uuid,
    tokens: Arc<Mutex<Vec<CallbackToken>>>,
    seen: Arc<Mutex<Vec<AtomState>>>,
    reverts: Arc<AtomicUsize>,
    hook_failures: Arc<AtomicUsize>,
}

impl Fixture {
    fn new() -> Self {
        Fixture {
            storage: Arc::new(MemoryStorage::new()),
            book: Uuid::new_v4(),
            flow_id: Uuid::new_v4(),
            tokens: Arc::default(),
            seen: Arc::default(),
            reverts: Arc::default(),
            hook_failures: Arc::default(),
        }
    }

    fn approve(&self) -> crate::TaskSpec {
        task(
            "approve",
            Await {
                storage: self.storage.clone(),
                book: self.book,
                flow_id: self.flow_id,
                tokens: self.tokens.clone(),
                seen: self.seen.clone(),
                reverts: self.reverts.clone(),
                hook_failures: self.hook_failures.clone(),
            },
        )
        .provides("approval")
    }

    /// approve, then `use` which echoes the approval.
    fn linear(&self) -> Flow {
        Flow::linear("waits").add(self.approve()).add(
            task_fn("use", |ctx: ExecuteContext| async move { Ok(json!({ "got": ctx.require("approval")?.clone() })) })
                .requires(["approval"])
                .provides("used"),
        )
    }

    async fn engine(&self, flow: Flow, concurrency: usize) -> Engine {
        engine_on(flow, self.storage.clone(), self.book, self.flow_id, concurrency).await
    }

    async fn atom(&self, name: &str) -> crate::AtomDetail {
        let flow = self.storage.load_flow(self.book, self.flow_id).await.expect("load").expect("flow");
        flow.atoms[name].clone()
    }

    fn token(&self, i: usize) -> CallbackToken {
        self.tokens.lock().expect("lock")[i].clone()
    }
}

fn deliver(engine: &Engine, attempt: u32, outcome: Result<Value, Failure>) {
    engine.control().deliver(Delivery::new("approve", attempt, outcome));
}

#[tokio::test]
async fn a_park_is_recorded_before_the_hook_and_a_delivery_feeds_the_consumer() {
    let fx = Fixture::new();
    let mut engine = fx.engine(fx.linear(), 1).await;
    let first = engine.run().await.expect("runs");
    assert_eq!(first.state, FlowState::Parked);

    let atom = fx.atom("approve").await;
    assert_eq!(atom.state, AtomState::Parked);
    let record = atom.park().expect("park record");
    let token = fx.token(0);
    assert_eq!(*fx.seen.lock().expect("lock"), [AtomState::Parked], "the hook ran after the park was written");
    assert!(record.notified, "the hook's end is recorded");
    assert_eq!(record.attempt, 1);
    assert!(token.matches(&record.token_hash));
    assert_eq!(token.name().job, fx.book);
    assert!(
        !serde_json::to_string(&atom).expect("json").contains(&token.expose()),
        "the logbook never holds the token"
    );
    assert!(record.deadline > crate::now_millis() + 3_500_000);

    // A new engine (another process) resumes with the delivery.
    let mut again = fx.engine(fx.linear(), 1).await;
    deliver(&again, 1, Ok(json!("yes")));
    let done = again.run().await.expect("runs");
    assert_eq!(done.state, FlowState::Success);
    assert_eq!(done.results["used"], json!({"got": "yes"}));
    assert_eq!(fx.tokens.lock().expect("lock").len(), 1, "no second hook");
}

#[tokio::test]
async fn other_branches_run_while_one_is_parked_and_a_delivery_mid_run_continues_it() {
    let fx = Fixture::new();
    let slow = task_fn("slow", |_| async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        Ok(json!("slow"))
    });
    let flow = Flow::unordered("branches").add(fx.linear()).add(Flow::linear("other").add(slow).add(ok("after")));
    let mut engine = fx.engine(flow, 4).await;
    let control = engine.control();
    let tokens = fx.tokens.clone();
    let deliverer = tokio::spawn(async move {
        for _ in 0..200 {
            let parked = tokens.lock().expect("lock").first().map(|t| t.name().attempt);
            if let Some(attempt) = parked {
                control.deliver(Delivery::new("approve", attempt, Ok(json!("mid-run"))));
                return true;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        false
    });
    let outcome = engine.run().await.expect("runs");
    assert!(deliverer.await.expect("joins"), "the park was seen");
    assert_eq!(outcome.state, FlowState::Success, "one run, no release");
    assert_eq!(outcome.results["used"], json!({"got": "mid-run"}));
    assert_eq!(fx.atom("after").await.state, AtomState::Success);
}

#[tokio::test]
async fn a_parked_branch_does_not_stop_the_others_and_the_run_ends_parked() {
    let fx = Fixture::new();
    let flow = Flow::unordered("branches").add(fx.linear()).add(Flow::linear("other").add(ok("x")).add(ok("y")));
    let mut engine = fx.engine(flow, 2).await;
    let outcome = engine.run().await.expect("runs");
    assert_eq!(outcome.state, FlowState::Parked);
    assert_eq!(fx.atom("y").await.state, AtomState::Success);
    assert_eq!(fx.atom("approve").await.state, AtomState::Parked);
}

#[tokio::test]
async fn a_delivered_failure_is_retried_with_a_new_token_and_a_stale_attempt_is_dropped() {
    let fx = Fixture::new();
    let flow = || Flow::linear("retried").retry(Retry::times(3)).add(fx.approve());
    let mut engine = fx.engine(flow(), 1).await;
    assert_eq!(engine.run().await.expect("runs").state, FlowState::Parked);
    deliver(&engine, 1, Err(Failure::new(Failure::TIMEOUT, "approve timed out")));
    assert_eq!(engine.run().await.expect("runs").state, FlowState::Parked, "parked again");
    let second = fx.atom("approve").await.park().expect("record");
    assert_eq!(second.attempt, 2);
    assert_ne!(fx.token(0).expose(), fx.token(1).expose(), "a new token per attempt");
    assert!(fx.token(1).matches(&second.token_hash));
    assert!(!fx.token(0).matches(&second.token_hash));

    deliver(&engine, 1, Ok(json!("late")));
    assert_eq!(engine.run().await.expect("runs").state, FlowState::Parked, "attempt 1's delivery is stale");
    deliver(&engine, 2, Ok(json!("ok")));
    let done = engine.run().await.expect("runs");
    assert_eq!(done.state, FlowState::Success);
    assert_eq!(done.results["approval"], json!("ok"));
}

#[tokio::test]
async fn a_cancel_while_parked_reverts_the_parked_task_too() {
    let fx = Fixture::new();
    let mut engine = fx.engine(Flow::linear("c").add(ok("before")).add(fx.approve()), 1).await;
    assert_eq!(engine.run().await.expect("runs").state, FlowState::Parked);
    let mut again = fx.engine(Flow::linear("c").add(ok("before")).add(fx.approve()), 1).await;
    again.control().cancel();
    let outcome = again.run().await.expect("runs");
    assert_eq!(outcome.state, FlowState::Reverted);
    assert_eq!(outcome.failure.expect("cause").kind, crate::CANCELLED);
    assert_eq!(fx.reverts.load(Ordering::SeqCst), 1);
    assert_eq!(fx.atom("approve").await.state, AtomState::Reverted);
    assert_eq!(fx.atom("before").await.state, AtomState::Reverted);
}

#[tokio::test]
async fn a_failed_hook_fails_the_attempt() {
    let fx = Fixture::new();
    fx.hook_failures.store(1, Ordering::SeqCst);
    let mut engine = fx.engine(fx.linear(), 1).await;
    let outcome = engine.run().await.expect("runs");
    assert_eq!(outcome.state, FlowState::Reverted);
    assert_eq!(outcome.failure.expect("cause").message, "chat is down");
    assert_eq!(fx.reverts.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_park_whose_hook_never_ended_gets_a_new_token_for_the_same_attempt() {
    let fx = Fixture::new();
    // Write what a crash between the park and the hook's end leaves: PARKED, not notified.
    let mut engine = fx.engine(fx.linear(), 1).await;
    engine.run().await.expect("runs");
    let mut atom = fx.atom("approve").await;
    let mut record = atom.park().expect("record");
    record.notified = false;
    atom.set_park(&record);
    let flow = fx.storage.load_flow(fx.book, fx.flow_id).await.expect("load").expect("flow");
    let atoms = [&atom];
    fx.storage
        .save_changes(fx.book, fx.flow_id, crate::FlowChanges { flow: Some(&flow), atoms: &atoms })
        .await
        .expect("saves");

    let mut again = fx.engine(fx.linear(), 1).await;
    assert_eq!(again.run().await.expect("runs").state, FlowState::Parked);
    let now = fx.atom("approve").await.park().expect("record");
    assert_eq!(now.attempt, 1, "same attempt");
    assert_eq!(now.deadline, record.deadline, "same deadline");
    assert!(now.notified);
    assert!(fx.token(1).matches(&now.token_hash));
    assert!(!fx.token(0).matches(&now.token_hash), "the old token completes nothing");
}
