//! Parked tasks on the board: a real engine parks through a claim's storage,
//! the owner parks the job (released, not claimable), a token completes it
//! (idempotent answers), another owner resumes it with the delivered result;
//! wrong tokens, cancels, completions while claimed, and completion racing the
//! deadline.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use flows::{
    task, task_fn, AtomDetail, AtomKind, AtomState, CallbackToken, Engine, ExecuteContext, Failure, Flow, FlowChanges,
    FlowDetail, FlowState, Park, ParkRecord, ParkedContext, Task, TokenName, PARK_META,
};
use jobboard::{Claim, Completed, Error, FlowFilter, JobBoard, JobState, ParkState, Parking, TaskOutcome};
use serde_json::{json, Value};
use uuid::Uuid;

use super::{job, post, within, BoardFactory};

/// Parks; its hook keeps the token it is given.
struct Await {
    tokens: Arc<Mutex<Vec<CallbackToken>>>,
    timeout: Duration,
}

#[async_trait]
impl Task for Await {
    async fn execute(&self, _ctx: &ExecuteContext) -> Result<Value, Failure> {
        Err(Park::after(self.timeout).into())
    }
    async fn parked(&self, ctx: &ParkedContext) -> Result<(), Failure> {
        self.tokens.lock().expect("lock").push(ctx.token().clone());
        Ok(())
    }
}

fn waits(tokens: &Arc<Mutex<Vec<CallbackToken>>>) -> Flow {
    Flow::linear("waits")
        .add(task("approve", Await { tokens: tokens.clone(), timeout: Duration::from_secs(3600) }).provides("approval"))
        .add(
            task_fn("use", |ctx: ExecuteContext| async move { Ok(json!({ "got": ctx.require("approval")?.clone() })) })
                .requires(["approval"])
                .provides("used"),
        )
}

/// Runs `flow` on the claim's logbook (flow detail id = job id) after handing it `deliveries`.
async fn run(claim: &Claim, flow: Flow, deliveries: Vec<flows::Delivery>, cancel: bool) -> flows::RunOutcome {
    let id = claim.id();
    let mut engine = Engine::builder(flow).storage(claim.storage(), id, id).build().await.expect("engine builds");
    for d in deliveries {
        engine.control().deliver(d);
    }
    if cancel {
        engine.control().cancel();
    }
    engine.run().await.expect("engine runs")
}

/// What a board holds for `id` as deliveries.
async fn deliveries(board: &Arc<dyn JobBoard>, id: Uuid) -> Vec<flows::Delivery> {
    board.parked_tasks(id).await.expect("parked_tasks failed").iter().filter_map(|e| e.delivery()).collect()
}

/// Parks a fresh job through a real engine; returns its id and token.
async fn parked_job(owner: &Arc<dyn JobBoard>) -> (Uuid, CallbackToken) {
    let posted = post(owner, job("waits", 1)).await;
    let claim = owner.claim(posted.id).await.expect("claim failed");
    let tokens = Arc::default();
    let outcome = run(&claim, waits(&tokens), Vec::new(), false).await;
    assert_eq!(outcome.state, FlowState::Parked);
    let token = tokens.lock().expect("lock")[0].clone();
    let parking = claim.park(&[("approve".into(), 1)]).await.expect("park failed");
    assert_eq!(parking, Parking::Parked);
    (posted.id, token)
}

/// Park, complete by token (with every idempotency answer), resume on another owner.
pub async fn a_parked_job_is_completed_and_resumed_elsewhere(f: &impl BoardFactory) {
    let (a, b, client) = (f.session("a").await, f.session("b").await, f.session("client").await);
    let (id, token) = parked_job(&a).await;

    let parked = client.get(id).await.expect("get failed");
    assert_eq!((parked.state, parked.owner.as_deref()), (JobState::Parked, None), "released");
    assert!(b.claim_next(&FlowFilter::any()).await.expect("claim_next failed").is_none(), "not claimable");
    let entries = client.parked_tasks(id).await.expect("parked_tasks failed");
    assert_eq!(entries.len(), 1);
    assert_eq!((entries[0].atom.as_str(), entries[0].attempt, entries[0].state), ("approve", 1, ParkState::Parked));
    assert!(token.matches(&entries[0].token_hash));
    assert!(entries[0].deadline > flows::now_millis() + 3_000_000);
    let listed = client
        .list(&jobboard::ListQuery { state: Some(JobState::Parked), ..Default::default() })
        .await
        .expect("list failed");
    assert_eq!(listed.jobs.iter().map(|j| j.id).collect::<Vec<_>>(), vec![id]);

    let yes = TaskOutcome::Result(json!({"by": "ops"}));
    assert_eq!(client.complete_task(&token.expose(), yes.clone()).await.expect("complete failed"), Completed::Now);
    assert_eq!(client.complete_task(&token.expose(), yes.clone()).await.expect("repeat failed"), Completed::Already);
    let other = client.complete_task(&token.expose(), TaskOutcome::Result(json!("no"))).await;
    assert!(matches!(other, Err(Error::CompletionConflict { .. })), "{other:?}");
    assert_eq!(client.get(id).await.expect("get failed").state, JobState::Unclaimed, "claimable again");

    let claim = within("the resumed job to be claimable", async {
        loop {
            if let Some(claim) = b.claim_next(&FlowFilter::any()).await.expect("claim_next failed") {
                return claim;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(claim.id(), id);
    let outcome = run(&claim, waits(&Arc::default()), deliveries(&b, id).await, false).await;
    assert_eq!(outcome.state, FlowState::Success);
    assert_eq!(outcome.results["used"], json!({"got": {"by": "ops"}}));
}

/// A wrong secret, a guessed prefix, another job's token, garbage: NOT_FOUND alike.
pub async fn wrong_tokens_are_not_found(f: &impl BoardFactory) {
    let (a, client) = (f.session("a").await, f.session("client").await);
    let (id, token) = parked_job(&a).await;
    let guessed = CallbackToken::mint(token.name().clone());
    let elsewhere = CallbackToken::mint(TokenName { job: Uuid::new_v4(), ..token.name().clone() });
    let older = CallbackToken::mint(TokenName { attempt: 0, ..token.name().clone() });
    let texts = [guessed.expose(), elsewhere.expose(), older.expose(), "bt1.nope".into(), String::new()];
    for text in texts {
        let got = client.complete_task(&text, TaskOutcome::Result(json!(1))).await;
        assert!(matches!(got, Err(Error::TokenNotFound)), "{got:?}");
    }
    assert_eq!(client.get(id).await.expect("get failed").state, JobState::Parked, "nothing changed");
}

/// Cancel while parked: the token dies, the job is claimed again and reverts.
pub async fn cancel_while_parked_reverts(f: &impl BoardFactory) {
    let (a, client) = (f.session("a").await, f.session("client").await);
    let (id, token) = parked_job(&a).await;
    let cancelled = client.request_cancel(id).await.expect("cancel failed");
    assert_eq!((cancelled.state, cancelled.cancel_requested), (JobState::Unclaimed, true));
    let late = client.complete_task(&token.expose(), TaskOutcome::Result(json!(1))).await;
    assert!(matches!(late, Err(Error::ParkClosed { .. })), "{late:?}");
    let claim = a.claim(id).await.expect("claim failed");
    assert!(claim.cancelled().is_cancelled(), "the claim knows");
    let outcome = run(&claim, waits(&Arc::default()), Vec::new(), true).await;
    assert_eq!(outcome.state, FlowState::Reverted);
    let entries = client.parked_tasks(id).await.expect("parked_tasks failed");
    assert_eq!(entries[0].state, ParkState::Cancelled);
}

/// A completion while the job is still claimed wakes the owner, and the owner's
/// park is refused with the delivery (the claim stands).
pub async fn a_completion_while_claimed_reaches_the_owner(f: &impl BoardFactory) {
    let (a, client) = (f.session("a").await, f.session("client").await);
    let posted = post(&a, job("waits", 1)).await;
    let claim = a.claim(posted.id).await.expect("claim failed");
    let tokens = Arc::default();
    assert_eq!(run(&claim, waits(&tokens), Vec::new(), false).await.state, FlowState::Parked);
    let token = tokens.lock().expect("lock")[0].clone();
    let mut woken = claim.deliveries();
    let done = client.complete_task(&token.expose(), TaskOutcome::Result(json!("ok"))).await.expect("complete");
    assert_eq!(done, Completed::Now);
    within("the owner to be told", woken.changed()).await.expect("deliveries ended");
    assert_eq!(client.get(posted.id).await.expect("get").state, JobState::Claimed, "no release");
    let Parking::Delivered(delivered) = claim.park(&[("approve".into(), 1)]).await.expect("park") else {
        panic!("the park must be refused with the delivery")
    };
    let outcome = run(&claim, waits(&tokens), delivered, false).await;
    assert_eq!(outcome.state, FlowState::Success);
    assert_eq!(outcome.results["used"], json!({"got": "ok"}));
}

/// Writes what an engine writes when `approve` parks (attempt 1, this deadline).
async fn park_directly(claim: &Claim, deadline: u64) -> CallbackToken {
    let id = claim.id();
    let token = CallbackToken::mint(TokenName { job: id, atom: "approve".into(), attempt: 1 });
    let mut atom = AtomDetail::new("approve", AtomKind::Task);
    atom.state = AtomState::Parked;
    atom.executions = 1;
    let record = ParkRecord { attempt: 1, token_hash: token.hash(), deadline, notified: false };
    atom.meta.insert(PARK_META.into(), serde_json::to_value(&record).expect("json"));
    let mut flow = FlowDetail::new(id, "waits");
    flow.state = FlowState::Parked;
    let atoms = [&atom];
    claim.storage().save_changes(id, id, FlowChanges { flow: Some(&flow), atoms: &atoms }).await.expect("saves");
    assert_eq!(claim.park(&[("approve".into(), 1)]).await.expect("park"), Parking::Parked);
    token
}

/// Completion racing the deadline scan, 200 times: exactly one wins each time,
/// the other gets its error; both outcomes are seen.
pub async fn completion_races_the_deadline(f: &impl BoardFactory) {
    let (a, client, scanner) = (f.session("a").await, f.session("client").await, f.session("scanner").await);
    let (mut completions, mut timeouts) = (0, 0);
    for i in 0..200u64 {
        let posted = post(&a, job("waits", 1)).await;
        let claim = a.claim(posted.id).await.expect("claim failed");
        // Both calls start from a little before the deadline to just on it, so they meet around it.
        let deadline = flows::now_millis() + 100;
        let token = park_directly(&claim, deadline).await.expose();
        let start = deadline.saturating_sub(i % 5);
        tokio::time::sleep(Duration::from_millis(start.saturating_sub(flows::now_millis()))).await;
        let (done, scanned) = tokio::join!(client.complete_task(&token, TaskOutcome::Result(json!(i))), async {
            let mut n = 0;
            // The scan takes whatever is due; keep scanning until this park is settled.
            for _ in 0..50 {
                n += scanner.time_out_due(100).await.expect("scan failed");
                let entries = scanner.parked_tasks(posted.id).await.expect("parked_tasks");
                if entries[0].state != ParkState::Parked {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            n
        });
        let entries = client.parked_tasks(posted.id).await.expect("parked_tasks");
        match (done, entries[0].state) {
            (Ok(Completed::Now), ParkState::Completed) => completions += 1,
            (Err(Error::ParkClosed { .. }), ParkState::TimedOut) => timeouts += 1,
            other => panic!("try {i}: both or neither won: {other:?}, scanned {scanned}"),
        }
        assert_eq!(client.get(posted.id).await.expect("get").state, JobState::Unclaimed, "try {i}: claimable");
        client.request_cancel(posted.id).await.expect("cancel");
    }
    assert!(completions > 0 && timeouts > 0, "both outcomes: {completions} completions, {timeouts} timeouts");
}

/// `backlog` counts the claim queue and the PARKED jobs, with the oldest of each
/// (by posting time, whatever the priorities), and follows a park and its completion.
pub async fn the_backlog_counts_the_queue_and_the_parked_jobs(f: &impl BoardFactory) {
    let board = f.session("a").await;
    let empty = board.backlog().await.expect("backlog failed");
    assert_eq!(empty, jobboard::Backlog::default());
    let mut posted = Vec::new();
    for (n, priority) in [0, 10, 5].into_iter().enumerate() {
        posted.push(post(&board, jobboard::NewJob { priority, ..job("queued", n as i64) }).await);
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let backlog = board.backlog().await.expect("backlog failed");
    assert_eq!((backlog.queued, backlog.oldest_queued), (3, Some(posted[0].created_at)), "oldest by age, not priority");
    assert_eq!((backlog.parked, backlog.oldest_parked), (0, None));

    let (id, token) = parked_job(&board).await;
    let parked_at = board.get(id).await.expect("get failed").created_at;
    let backlog = board.backlog().await.expect("backlog failed");
    assert_eq!((backlog.queued, backlog.parked, backlog.oldest_parked), (3, 1, Some(parked_at)));

    let done = TaskOutcome::Result(json!("yes"));
    assert_eq!(board.complete_task(&token.expose(), done).await.expect("complete failed"), Completed::Now);
    let backlog = board.backlog().await.expect("backlog failed");
    assert_eq!((backlog.queued, backlog.parked, backlog.oldest_parked), (4, 0, None), "delivered: claimable again");
    assert_eq!(backlog.oldest_queued, Some(posted[0].created_at));
}
