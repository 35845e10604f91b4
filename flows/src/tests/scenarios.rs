//! TaskFlow-derived scenarios: the cake graph, the cluster flow, revert order,
//! failing reverts, deciders, cancel, timeouts, panics, export.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};

use super::{assert_before, boom, check, ok, run};
use crate::{task, task_fn, Engine, ExecuteContext, Failure, Flow, FlowState, RevertContext, Storage, Task};

/// The cake graph from the DistributedTaskManagement seed: mix, two pans, two ovens, bake.
fn cake() -> Flow {
    let pan = |name: &str, provides: &str| {
        let pan = json!({ "selection": format!("{name}-pan") });
        task_fn(name, move |_| {
            let pan = pan.clone();
            async move { Ok(pan) }
        })
        .provides(provides)
    };
    let oven = |name: &str, pan: &str| {
        task_fn(name, |ctx: ExecuteContext| async move {
            let selection = ctx.require("pan")?["selection"].clone();
            Ok(json!({ "oven": selection }))
        })
        .requires(["pan"])
        .rebind("pan", pan)
        .provides(format!("{name}_out"))
    };
    Flow::graph("bake-cake-flow")
        .add(ok("mix"))
        .add(pan("choose_pan_1", "first_pan"))
        .add(pan("choose_pan_2", "second_pan"))
        .add(oven("heat_oven_1", "first_pan"))
        .add(oven("heat_oven_2", "second_pan"))
        .add(ok("bake").provides("cake"))
        .link("mix", "choose_pan_1")
        .link("mix", "choose_pan_2")
        .link("heat_oven_1", "bake")
        .link("heat_oven_2", "bake")
}

#[tokio::test]
async fn cake_graph_runs_in_dependency_order_serial_and_parallel() {
    for concurrency in [1, 4] {
        let ran = run(cake(), json!({}), concurrency).await;
        assert_eq!(ran.outcome.state, FlowState::Success);
        let trace = ran.recorder.trace();
        assert_eq!(trace.len(), 6, "{trace:#?}");
        for (a, b) in [
            ("mix", "choose_pan_1"),
            ("mix", "choose_pan_2"),
            ("choose_pan_1", "heat_oven_1"),
            ("choose_pan_2", "heat_oven_2"),
            ("heat_oven_1", "bake"),
            ("heat_oven_2", "bake"),
        ] {
            assert_before(&trace, &format!("{a} SUCCESS"), &format!("{b} SUCCESS"));
        }
        let results = &ran.outcome.results;
        assert_eq!(results["heat_oven_1_out"], json!({ "oven": "choose_pan_1-pan" }));
        assert_eq!(results["heat_oven_2_out"], json!({ "oven": "choose_pan_2-pan" }));
        assert_eq!(results["cake"], json!("bake"));
    }
}

/// A cloud whose servers are created by tasks and deleted by their reverts.
#[derive(Default)]
struct Cloud {
    servers: Mutex<BTreeSet<String>>,
    created: Mutex<Vec<String>>,
}

struct CreateServer(Arc<Cloud>);

#[async_trait]
impl Task for CreateServer {
    async fn execute(&self, ctx: &ExecuteContext) -> Result<Value, Failure> {
        let node = ctx.require("node_id")?.as_str().unwrap_or_default().to_owned();
        tokio::task::yield_now().await;
        self.0.servers.lock().expect("cloud lock").insert(node.clone());
        self.0.created.lock().expect("cloud lock").push(node.clone());
        Ok(json!(format!("server-{node}")))
    }
    async fn revert(&self, ctx: &RevertContext) -> Result<(), Failure> {
        let node = ctx.get("node_id").and_then(Value::as_str).unwrap_or_default();
        self.0.servers.lock().expect("cloud lock").remove(node);
        Ok(())
    }
}

/// The cluster flow from the blog seed: per-node linear subflows in an unordered flow, then configure.
fn cluster(cloud: &Arc<Cloud>, nodes: &[&str], failing: Option<&str>) -> Flow {
    let per_node = nodes.iter().map(|node| {
        let wait = if Some(*node) == failing { boom(&format!("wait_{node}")) } else { ok(&format!("wait_{node}")) };
        Flow::linear(format!("add_{node}"))
            .add(
                task(format!("create_{node}"), CreateServer(cloud.clone()))
                    .requires(["node_id"])
                    .inject("node_id", json!(node)),
            )
            .add(wait.requires(["node_id"]).inject("node_id", json!(node)))
    });
    Flow::linear("create_cluster").add(Flow::unordered("nodes").add_all(per_node)).add(ok("configure_cluster"))
}

#[tokio::test]
async fn cluster_flow_configures_after_every_node() {
    let cloud = Arc::new(Cloud::default());
    let ran = run(cluster(&cloud, &["a", "b", "c"], None), json!({}), 4).await;
    assert_eq!(ran.outcome.state, FlowState::Success);
    let trace = ran.recorder.trace();
    for node in ["a", "b", "c"] {
        assert_before(&trace, &format!("create_{node} SUCCESS"), &format!("wait_{node} SUCCESS"));
        assert_before(&trace, &format!("wait_{node} SUCCESS"), "configure_cluster SUCCESS");
    }
    assert_eq!(cloud.servers.lock().expect("cloud lock").len(), 3);
}

#[tokio::test]
async fn cluster_flow_with_a_failing_node_deletes_every_created_server() {
    for concurrency in [1, 2, 8] {
        let cloud = Arc::new(Cloud::default());
        let ran = run(cluster(&cloud, &["a", "b", "c", "d"], Some("c")), json!({}), concurrency).await;
        assert_eq!(ran.outcome.state, FlowState::Reverted);
        assert_eq!(ran.outcome.failure.as_ref().map(|f| f.message.as_str()), Some("wait_c failed"));
        assert!(!cloud.created.lock().expect("cloud lock").is_empty());
        assert!(cloud.servers.lock().expect("cloud lock").is_empty(), "servers left behind");
        let trace = ran.recorder.trace();
        assert!(!trace.iter().any(|e| e.starts_with("configure_cluster")), "{trace:#?}");
        for created in cloud.created.lock().expect("cloud lock").iter() {
            assert_before(&trace, &format!("create_{created} SUCCESS"), &format!("create_{created} REVERTED"));
        }
        assert_before(&trace, "wait_c REVERTED", "create_c REVERTED");
    }
}

#[tokio::test]
async fn deep_nested_flow_reverts_in_reverse_order_failed_atom_included() {
    let flow = Flow::linear("top").add(ok("a")).add(
        Flow::linear("l1")
            .add(ok("b"))
            .add(Flow::unordered("u1").add(ok("c")))
            .add(Flow::linear("l2").add(ok("d")).add(Flow::linear("l3").add(ok("e")).add(boom("f")).add(ok("g")))),
    );
    let ran = run(flow, json!({}), 1).await;
    check(
        &ran,
        FlowState::Reverted,
        &[
            "a SUCCESS",
            "b SUCCESS",
            "c SUCCESS",
            "d SUCCESS",
            "e SUCCESS",
            "f FAILURE",
            "f REVERTED",
            "e REVERTED",
            "d REVERTED",
            "c REVERTED",
            "b REVERTED",
            "a REVERTED",
        ],
    );
}

#[tokio::test]
async fn revert_receives_its_failure_and_the_flow_failures() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (s1, s2) = (seen.clone(), seen.clone());
    let flow = Flow::linear("f")
        .add(ok("a").revert_fn(move |ctx: RevertContext| {
            let seen = s1.clone();
            async move {
                let failures: Vec<String> = ctx.flow_failures().keys().cloned().collect();
                seen.lock().expect("lock").push(format!("a result={:?} failures={failures:?}", ctx.result()));
                Ok(())
            }
        }))
        .add(boom("b").revert_fn(move |ctx: RevertContext| {
            let seen = s2.clone();
            async move {
                seen.lock().expect("lock").push(format!("b failure={:?}", ctx.failure().map(|f| f.message.clone())));
                Ok(())
            }
        }));
    let ran = run(flow, json!({}), 1).await;
    assert_eq!(ran.outcome.state, FlowState::Reverted);
    assert_eq!(
        *seen.lock().expect("lock"),
        vec!["b failure=Some(\"b failed\")".to_owned(), "a result=Some(String(\"a\")) failures=[\"b\"]".to_owned()]
    );
}

#[tokio::test]
async fn a_failing_revert_ends_the_flow_in_failure() {
    let flow = Flow::linear("f")
        .add(ok("a"))
        .add(ok("b").revert_fn(|_| async { Err(Failure::task("cannot undo b")) }))
        .add(boom("c"));
    let ran = run(flow.clone(), json!({}), 1).await;
    check(&ran, FlowState::Failure, &["a SUCCESS", "b SUCCESS", "c FAILURE", "c REVERTED", "b REVERT_FAILURE"]);
    let failure = ran.outcome.failure.clone().expect("failure reported");
    assert_eq!(failure.message, "cannot undo b");
    assert_eq!(failure.cause.map(|c| c.message), Some("c failed".to_owned()));
    let stored = ran.storage.load_flow(ran.book, ran.flow_id).await.expect("load").expect("stored");
    assert_eq!(stored.state, FlowState::Failure);
    assert_eq!(stored.atoms["a"].state, crate::AtomState::Success, "nothing before a failed revert is undone");
    // A later run changes nothing and reports the same failure, cause included.
    let again = super::run_on(flow, json!({}), 1, ran.storage.clone(), ran.book, ran.flow_id).await;
    check(&again, FlowState::Failure, &[]);
    assert_eq!(again.outcome.failure, ran.outcome.failure);
}

#[tokio::test]
async fn a_decider_saying_no_ignores_the_target_and_what_follows() {
    let flow = Flow::graph("g")
        .add(task_fn("a", |_| async { Ok(json!({ "go": false })) }))
        .add(ok("b"))
        .add(ok("c"))
        .add(ok("d"))
        .link_if("a", "b", |v| v["go"] == json!(true))
        .link("b", "c")
        .link("a", "d");
    let ran = run(flow, json!({}), 1).await;
    assert_eq!(ran.outcome.state, FlowState::Success);
    let mut trace = ran.recorder.trace();
    trace.sort();
    assert_eq!(trace, ["a SUCCESS", "b IGNORE", "c IGNORE", "d SUCCESS"]);
}

#[tokio::test]
async fn a_decider_saying_yes_runs_the_target() {
    let flow = Flow::graph("g").add(task_fn("a", |_| async { Ok(json!({ "go": true })) })).add(ok("b")).link_if(
        "a",
        "b",
        |v| v["go"] == json!(true),
    );
    let ran = run(flow, json!({}), 1).await;
    check(&ran, FlowState::Success, &["a SUCCESS", "b SUCCESS"]);
}

#[tokio::test]
async fn a_panicking_decider_fails_the_flow_instead_of_the_engine() {
    let flow = Flow::linear("f").add(ok("a")).add(Flow::graph("g").add(ok("b")).add(ok("c")).link_if("b", "c", |v| {
        assert!(v.is_object(), "decider expected an object");
        true
    }));
    for concurrency in [1, 2] {
        let ran = run(flow.clone(), json!({}), concurrency).await;
        check(&ran, FlowState::Reverted, &["a SUCCESS", "b SUCCESS", "b REVERTED", "a REVERTED"]);
        let failure = ran.outcome.failure.expect("failure");
        assert_eq!(failure.kind, Failure::PANIC);
        assert!(failure.message.contains("decider on b -> c"), "{failure}");
    }
}

#[tokio::test]
async fn cancel_reverts_what_ran_and_starts_nothing_new() {
    let slot: Arc<Mutex<Option<crate::EngineControl>>> = Arc::default();
    let control = slot.clone();
    let flow = Flow::linear("f")
        .add(ok("a"))
        .add(task_fn("b", move |_| {
            let control = control.lock().expect("lock").clone();
            async move {
                if let Some(c) = control {
                    c.cancel();
                }
                Ok(json!("b"))
            }
        }))
        .add(ok("c"));
    let recorder = Arc::new(super::Recorder::default());
    let mut engine = Engine::builder(flow).listener(recorder.clone()).build().await.expect("builds");
    *slot.lock().expect("lock") = Some(engine.control());
    let outcome = engine.run().await.expect("runs");
    assert_eq!(outcome.state, FlowState::Reverted);
    assert_eq!(outcome.failure.map(|f| f.kind), Some(crate::CANCELLED.to_owned()));
    assert_eq!(recorder.trace(), ["a SUCCESS", "b SUCCESS", "b REVERTED", "a REVERTED"]);
}

#[tokio::test(start_paused = true)]
async fn a_task_over_its_timeout_fails_with_timeout() {
    let flow = Flow::linear("f").add(ok("a")).add(
        task_fn("slow", |_| async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(json!("late"))
        })
        .timeout(Duration::from_secs(5)),
    );
    let start = tokio::time::Instant::now();
    let ran = run(flow, json!({}), 2).await;
    check(&ran, FlowState::Reverted, &["a SUCCESS", "slow FAILURE", "slow REVERTED", "a REVERTED"]);
    assert_eq!(ran.outcome.failure.map(|f| f.kind), Some(Failure::TIMEOUT.to_owned()));
    assert_eq!(start.elapsed(), Duration::from_secs(5), "virtual time: the timeout fired, the task did not finish");
}

#[tokio::test]
async fn a_panicking_task_is_a_failure_and_is_reverted() {
    let flow = Flow::linear("f").add(ok("a")).add(task_fn("p", |_| async { panic!("kaboom") }));
    for concurrency in [1, 2] {
        let ran = run(flow.clone(), json!({}), concurrency).await;
        assert_eq!(ran.outcome.state, FlowState::Reverted);
        let failure = ran.outcome.failure.expect("failure");
        assert_eq!(failure.kind, Failure::PANIC);
        assert!(failure.message.contains("kaboom"), "{failure}");
    }
}

#[test]
fn export_names_every_atom_and_marks_deciders() {
    let compiled = crate::compile(&cake().link_if("mix", "bake", |_| true), Vec::<String>::new()).expect("compiles");
    let dot = compiled.to_dot();
    let mermaid = compiled.to_mermaid();
    for name in compiled.atom_names() {
        assert!(dot.contains(&format!("{name:?}")), "{name} in dot");
        assert!(mermaid.contains(name), "{name} in mermaid");
    }
    assert!(dot.contains("style=dashed"));
    assert!(mermaid.contains("-.->"));
    assert_eq!(compiled.len(), 6);
}

#[tokio::test]
async fn a_cancel_is_honoured_once_and_a_later_run_starts_over() {
    let slot: Arc<Mutex<Option<crate::EngineControl>>> = Arc::default();
    let control = slot.clone();
    let flow = Flow::linear("f").add(ok("a")).add(task_fn("b", move |_| {
        // Only the first run is cancelled.
        let control = control.lock().expect("lock").take();
        async move {
            if let Some(c) = control {
                c.cancel();
            }
            Ok(json!("b"))
        }
    }));
    let mut engine = Engine::builder(flow).build().await.expect("builds");
    *slot.lock().expect("lock") = Some(engine.control());
    assert_eq!(engine.run().await.expect("runs").state, FlowState::Reverted);
    let again = engine.run().await.expect("runs again");
    assert_eq!(again.state, FlowState::Success, "the old cancel request is not applied twice");
    assert_eq!(again.results.len(), 0);
}

#[tokio::test]
async fn a_run_dropped_part_way_is_continued_by_the_next_one() {
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = calls.clone();
    let flow = Flow::linear("f").add(ok("a")).add(task_fn("hang", move |_| {
        let first = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0;
        async move {
            if first {
                // The first call never ends: its run is dropped (as a conductor drops a lost job).
                std::future::pending::<()>().await;
            }
            Ok(json!("done"))
        }
    }));
    for concurrency in [1, 2] {
        calls.store(0, std::sync::atomic::Ordering::SeqCst);
        let mut engine = Engine::builder(flow.clone()).max_concurrency(concurrency).build().await.expect("builds");
        let dropped = tokio::time::timeout(Duration::from_millis(50), engine.run()).await;
        assert!(dropped.is_err(), "the first run hangs and is dropped");
        let outcome = engine.run().await.expect("runs again");
        assert_eq!(outcome.state, FlowState::Success);
        assert_eq!(outcome.results.len(), 0);
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2, "hang ran again (at-least-once)");
    }
}
