//! Retry controllers: Times, ForEach, ParameterizedForEach, AlwaysRevert(All),
//! custom controllers, and backoff delays (under paused tokio time).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::{boom, check, engine_on, ok, run};
use crate::{
    task_fn, Attempt, Decision, ExecuteContext, Failure, Flow, FlowState, Inputs, Retry, RetryController, Storage,
};

/// A task failing until the retry's attempt number reaches `succeed_at`.
fn flaky(name: &str, succeed_at: u64) -> crate::TaskSpec {
    task_fn(name, move |ctx: ExecuteContext| async move {
        let attempt = ctx.require("attempt")?.as_u64().unwrap_or(0);
        if attempt >= succeed_at {
            Ok(json!(attempt))
        } else {
            Err(Failure::task(format!("attempt {attempt} failed")))
        }
    })
    .requires(["attempt"])
}

#[tokio::test]
async fn times_five_around_a_subflow_that_fails_four_times_then_succeeds() {
    let flow = Flow::linear("outer")
        .add(ok("prepare"))
        .add(
            Flow::linear("attempt")
                .retry(Retry::times(5).named("r").provides("attempt"))
                .add(ok("step"))
                .add(flaky("flaky", 5).provides("value")),
        )
        .add(ok("finish"));
    let ran = run(flow, json!({}), 1).await;
    let mut expected = vec!["prepare SUCCESS"];
    for _ in 0..4 {
        expected.extend([
            "r SUCCESS",
            "step SUCCESS",
            "flaky FAILURE",
            "flaky REVERTED",
            "step REVERTED",
            "r RETRYING",
            "step PENDING",
            "flaky PENDING",
        ]);
    }
    expected.extend(["r SUCCESS", "step SUCCESS", "flaky SUCCESS", "finish SUCCESS"]);
    check(&ran, FlowState::Success, &expected);
    assert_eq!(ran.outcome.results["value"], json!(5));
    let stored = ran.storage.load_flow(ran.book, ran.flow_id).await.expect("load").expect("flow");
    let r = &stored.atoms["r"];
    assert_eq!(r.attempts.len(), 5);
    assert_eq!(r.attempts.iter().filter(|a| a.failures.contains_key("flaky")).count(), 4);
    assert_eq!(stored.atoms["flaky"].executions, 5);
    assert_eq!(stored.atoms["prepare"].executions, 1);
}

#[tokio::test]
async fn an_exhausted_retry_reverts_everything() {
    let flow = Flow::linear("outer")
        .add(ok("prepare"))
        .add(Flow::linear("attempt").retry(Retry::times(2).named("r").provides("attempt")).add(flaky("flaky", 9)));
    for concurrency in [1, 3] {
        let ran = run(flow.clone(), json!({}), concurrency).await;
        check(
            &ran,
            FlowState::Reverted,
            &[
                "prepare SUCCESS",
                "r SUCCESS",
                "flaky FAILURE",
                "flaky REVERTED",
                "r RETRYING",
                "flaky PENDING",
                "r SUCCESS",
                "flaky FAILURE",
                "flaky REVERTED",
                "r REVERTED",
                "prepare REVERTED",
            ],
        );
        assert_eq!(ran.outcome.failure.map(|f| f.message), Some("attempt 2 failed".to_owned()));
    }
}

#[tokio::test]
async fn for_each_tries_values_in_order_until_one_works() {
    let flow =
        Flow::linear("f").retry(Retry::for_each([json!("a"), json!("b"), json!("c")]).named("r").provides("host")).add(
            task_fn("connect", |ctx: ExecuteContext| async move {
                match ctx.require("host")?.as_str() {
                    Some("b") => Ok(json!("connected to b")),
                    other => Err(Failure::task(format!("{other:?} down"))),
                }
            })
            .requires(["host"])
            .provides("conn"),
        );
    let ran = run(flow, json!({}), 1).await;
    assert_eq!(ran.outcome.state, FlowState::Success);
    assert_eq!(ran.outcome.results["conn"], json!("connected to b"));
    let stored = ran.storage.load_flow(ran.book, ran.flow_id).await.expect("load").expect("flow");
    let tried: Vec<Value> = stored.atoms["r"].attempts.iter().map(|a| a.value.clone()).collect();
    assert_eq!(tried, [json!("a"), json!("b")]);
}

#[tokio::test]
async fn parameterized_for_each_reads_values_from_the_store_and_gives_up_when_exhausted() {
    let flow = Flow::linear("f")
        .retry(Retry::parameterized_for_each("hosts").named("r").provides("host"))
        .add(boom("connect").requires(["host"]));
    let ran = run(flow, json!({ "hosts": ["x", "y"] }), 1).await;
    assert_eq!(ran.outcome.state, FlowState::Reverted);
    assert_eq!(ran.recorder.trace().iter().filter(|e| *e == "connect FAILURE").count(), 2);
}

#[tokio::test]
async fn an_empty_for_each_fails_the_retry_itself() {
    let flow = Flow::linear("f").retry(Retry::for_each([]).named("r")).add(ok("never"));
    let ran = run(flow, json!({}), 1).await;
    check(&ran, FlowState::Reverted, &["r FAILURE", "r REVERTED"]);
    assert_eq!(ran.outcome.failure.map(|f| f.kind), Some(Failure::NOT_FOUND.to_owned()));
}

#[tokio::test]
async fn inner_revert_defers_to_the_outer_retry() {
    let outer_runs = Arc::new(AtomicUsize::new(0));
    let counter = outer_runs.clone();
    let flow = Flow::linear("outer")
        .retry(Retry::times(3).named("outer_r").provides("attempt"))
        .add(task_fn("count", move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
            async { Ok(Value::Null) }
        }))
        .add(Flow::linear("inner").retry(Retry::always_revert().named("inner_r")).add(flaky("flaky", 3)));
    let ran = run(flow, json!({}), 1).await;
    assert_eq!(ran.outcome.state, FlowState::Success);
    assert_eq!(outer_runs.load(Ordering::SeqCst), 3, "the outer subflow ran once per outer attempt");
}

#[tokio::test]
async fn always_revert_all_inside_a_retrying_flow_reverts_everything() {
    let flow = Flow::linear("outer")
        .retry(Retry::times(5).named("outer_r"))
        .add(ok("a"))
        .add(Flow::linear("inner").retry(Retry::always_revert_all().named("inner_r")).add(boom("b")));
    let ran = run(flow, json!({}), 1).await;
    check(
        &ran,
        FlowState::Reverted,
        &[
            "outer_r SUCCESS",
            "a SUCCESS",
            "inner_r SUCCESS",
            "b FAILURE",
            "b REVERTED",
            "inner_r REVERTED",
            "a REVERTED",
            "outer_r REVERTED",
        ],
    );
}

/// Retries only failures of kind `Transient`.
struct OnlyTransient;

impl RetryController for OnlyTransient {
    fn execute(&self, history: &[Attempt], _: &Inputs) -> Result<Value, Failure> {
        Ok(json!(history.len() + 1))
    }
    fn on_failure(&self, history: &[Attempt], _: &Inputs) -> Decision {
        let last = history.last().map(|a| a.failures.values().all(|f| f.kind == "Transient")).unwrap_or(false);
        if last {
            Decision::Retry
        } else {
            Decision::RevertAll
        }
    }
}

#[tokio::test]
async fn a_custom_controller_sees_the_failures_of_each_attempt() {
    let flow = Flow::linear("f").retry(Retry::custom(OnlyTransient).named("r").provides("attempt")).add(
        task_fn("t", |ctx: ExecuteContext| async move {
            match ctx.require("attempt")?.as_u64() {
                Some(1) => Err(Failure::new("Transient", "try again")),
                _ => Err(Failure::new("Fatal", "no")),
            }
        })
        .requires(["attempt"]),
    );
    let ran = run(flow, json!({}), 1).await;
    assert_eq!(ran.outcome.state, FlowState::Reverted);
    assert_eq!(ran.recorder.trace().iter().filter(|e| *e == "t FAILURE").count(), 2);
}

#[tokio::test(start_paused = true)]
async fn backoff_grows_exponentially_up_to_the_cap() {
    let flow = Flow::linear("f")
        .retry(Retry::times(4).named("r").backoff(Duration::from_millis(100), 2.0, Duration::from_millis(250), 0.0))
        .add(boom("t"));
    let start = tokio::time::Instant::now();
    let ran = run(flow, json!({}), 1).await;
    assert_eq!(ran.outcome.state, FlowState::Reverted);
    // Attempts 2, 3 and 4 wait 100 ms, 200 ms and 250 ms (capped): 550 ms of virtual time.
    assert_eq!(start.elapsed(), Duration::from_millis(550));
}

#[test]
fn jitter_only_shortens_the_delay() {
    let b = crate::Backoff { initial: Duration::from_secs(1), factor: 3.0, cap: Duration::from_secs(5), jitter: 0.5 };
    assert_eq!(b.delay(1), Duration::ZERO);
    for _ in 0..100 {
        let d = b.delay(2);
        assert!(d >= Duration::from_millis(500) && d <= Duration::from_secs(1), "{d:?}");
        let capped = b.delay(10);
        assert!(capped >= Duration::from_millis(2500) && capped <= Duration::from_secs(5), "{capped:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_timeout_inside_a_retry_is_retried() {
    let flow = Flow::linear("f").retry(Retry::times(3).named("r").provides("attempt")).add(
        task_fn("slow_then_fast", |ctx: ExecuteContext| async move {
            if ctx.require("attempt")?.as_u64() == Some(1) {
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
            Ok(json!("done"))
        })
        .requires(["attempt"])
        .timeout(Duration::from_secs(1)),
    );
    let ran = run(flow, json!({}), 2).await;
    assert_eq!(ran.outcome.state, FlowState::Success);
    let stored = ran.storage.load_flow(ran.book, ran.flow_id).await.expect("load").expect("flow");
    let first = &stored.atoms["r"].attempts[0].failures["slow_then_fast"];
    assert_eq!(first.kind, Failure::TIMEOUT);
}

#[tokio::test(start_paused = true)]
async fn parallel_siblings_are_reverted_before_the_retry_runs_again() {
    let flow = Flow::unordered("u")
        .retry(Retry::times(2).named("r").provides("attempt"))
        .add(task_fn("slow", |_| async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok(json!("slow"))
        }))
        .add(flaky("quick_fail", 2));
    let ran = run(flow, json!({}), 4).await;
    assert_eq!(ran.outcome.state, FlowState::Success);
    let trace = ran.recorder.trace();
    // The still-running sibling finishes, then both are undone, then the retry goes again.
    let first_retrying = trace.iter().position(|e| e == "r RETRYING").expect("retried");
    for undone in ["slow REVERTED", "quick_fail REVERTED"] {
        let at = trace.iter().position(|e| e == undone).unwrap_or_else(|| panic!("{undone} missing: {trace:#?}"));
        assert!(at < first_retrying, "{undone} after the retry: {trace:#?}");
    }
    assert_eq!(trace.iter().filter(|e| *e == "slow SUCCESS").count(), 2);
}

#[tokio::test]
async fn a_cancel_while_a_retry_waits_for_its_next_attempt_reverts_the_retry_too() {
    let slot: Arc<std::sync::Mutex<Option<crate::EngineControl>>> = Arc::default();
    let control = slot.clone();
    let failed = Arc::new(AtomicUsize::new(0));
    let fails = failed.clone();
    // t fails once; its revert cancels the run just as the retry is queued for attempt 2.
    let t = task_fn("t", move |_| {
        let first = fails.fetch_add(1, Ordering::SeqCst) == 0;
        async move {
            if first {
                Err(Failure::task("t failed"))
            } else {
                Ok(json!("t"))
            }
        }
    })
    .revert_fn(move |_| {
        let control = control.lock().expect("lock").take();
        async move {
            if let Some(c) = control {
                c.cancel();
            }
            Ok(())
        }
    });
    let flow = Flow::linear("f").add(ok("a")).add(Flow::linear("sub").retry(Retry::times(3).named("r")).add(t));
    for concurrency in [1, 2] {
        failed.store(0, Ordering::SeqCst);
        let storage = Arc::new(crate::MemoryStorage::new());
        let (book, flow_id) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        let mut engine = engine_on(flow.clone(), storage.clone(), book, flow_id, concurrency).await;
        *slot.lock().expect("lock") = Some(engine.control());
        let outcome = engine.run().await.expect("runs");
        assert_eq!(outcome.state, FlowState::Reverted);
        assert_eq!(outcome.failure.map(|f| f.kind), Some(crate::CANCELLED.to_owned()));
        let stored = storage.load_flow(book, flow_id).await.expect("load").expect("flow");
        for atom in ["a", "r"] {
            assert_eq!(stored.atoms[atom].state, crate::AtomState::Reverted, "{atom} ran, so it is reverted");
        }
        // t's attempt was undone before the retry reset it for an attempt that never started.
        assert_eq!(stored.atoms["t"].state, crate::AtomState::Pending);
        assert_eq!(stored.atoms["t"].executions, 1);
        // A REVERTED flow starts over; nothing was left half-retried.
        let again = super::run_on(flow.clone(), json!({}), concurrency, storage, book, flow_id).await;
        check(&again, FlowState::Success, &["a PENDING", "r PENDING", "a SUCCESS", "r SUCCESS", "t SUCCESS"]);
    }
}

#[tokio::test]
async fn suspend_and_cancel_do_not_wait_out_a_retry_delay() {
    let failed = Arc::new(AtomicUsize::new(0));
    let fails = failed.clone();
    let t = task_fn("t", move |_| {
        fails.fetch_add(1, Ordering::SeqCst);
        async { Err(Failure::task("t failed")) }
    });
    // An hour between attempts: only an interrupted delay lets this test end.
    let flow = Flow::linear("f")
        .add(ok("a"))
        .add(Flow::linear("sub").retry(Retry::times(3).named("r").delay(Duration::from_secs(3600))).add(t));
    for concurrency in [1, 2] {
        failed.store(0, Ordering::SeqCst);
        let storage = Arc::new(crate::MemoryStorage::new());
        let (book, flow_id) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        let mut engine = engine_on(flow.clone(), storage.clone(), book, flow_id, concurrency).await;
        let control = engine.control();
        // Stops the run once r waits for attempt 2 (RETRYING recorded, flow RUNNING), plus a
        // moment so the delay has begun. Were it earlier, r would simply not start: still correct.
        let request = |stop: fn(&crate::EngineControl)| {
            let (control, storage) = (control.clone(), storage.clone());
            tokio::spawn(async move {
                loop {
                    let flow = storage.load_flow(book, flow_id).await.expect("load").expect("flow");
                    let waiting = flow.atoms.get("r").is_some_and(|r| r.state == crate::AtomState::Retrying);
                    if waiting && flow.state == FlowState::Running {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                stop(&control);
            })
        };
        let suspender = request(crate::EngineControl::suspend);
        let first = tokio::time::timeout(Duration::from_secs(20), engine.run()).await.expect("suspend ends the delay");
        suspender.await.expect("suspender");
        assert_eq!(first.expect("runs").state, FlowState::Suspended);
        let stored = storage.load_flow(book, flow_id).await.expect("load").expect("flow");
        assert_eq!(stored.atoms["r"].state, crate::AtomState::Retrying, "attempt 2 has not started");
        assert_eq!(stored.atoms["r"].attempts.len(), 1);

        let canceller = request(crate::EngineControl::cancel);
        let second = tokio::time::timeout(Duration::from_secs(20), engine.run()).await.expect("cancel ends the delay");
        canceller.await.expect("canceller");
        let second = second.expect("runs");
        assert_eq!(second.state, FlowState::Reverted);
        assert_eq!(second.failure.map(|f| f.kind), Some(crate::CANCELLED.to_owned()));
        let stored = storage.load_flow(book, flow_id).await.expect("load").expect("flow");
        assert_eq!(stored.atoms["r"].state, crate::AtomState::Reverted);
        assert_eq!(stored.atoms["a"].state, crate::AtomState::Reverted);
        assert_eq!(failed.load(Ordering::SeqCst), 1, "t ran once: attempt 2 never started");
    }
}
