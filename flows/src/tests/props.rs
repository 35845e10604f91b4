//! Property test on random DAGs: start order, the concurrency limit, and the
//! exact set of reverted atoms.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use proptest::prelude::*;
use serde_json::json;

use crate::{task_fn, Engine, Failure, Flow, FlowState, RevertContext};

/// What the tasks of one case observed.
#[derive(Default)]
struct Observed {
    log: Mutex<Vec<(String, usize)>>,
    running: AtomicUsize,
    peak: AtomicUsize,
}

impl Observed {
    fn push(&self, event: &str, node: usize) {
        self.log.lock().expect("log lock").push((event.to_owned(), node));
    }
    fn position(&self, event: &str, node: usize) -> Option<usize> {
        self.log.lock().expect("log lock").iter().position(|(e, n)| e == event && *n == node)
    }
    fn nodes(&self, event: &str) -> BTreeSet<usize> {
        self.log.lock().expect("log lock").iter().filter(|(e, _)| e == event).map(|(_, n)| *n).collect()
    }
}

fn graph(n: usize, edges: &[(usize, usize)], failing: Option<usize>, seen: &Arc<Observed>) -> Flow {
    graph_with(n, edges, failing, seen, false)
}

/// The random graph; with `retried`, under `Times(2)` and failing only on the first attempt.
fn graph_with(n: usize, edges: &[(usize, usize)], failing: Option<usize>, seen: &Arc<Observed>, retried: bool) -> Flow {
    let mut flow = Flow::graph("random");
    if retried {
        flow = flow.retry(crate::Retry::times(2).named("r").provides("attempt"));
    }
    for i in 0..n {
        let (s1, s2) = (seen.clone(), seen.clone());
        let fails = failing == Some(i);
        let spec = task_fn(format!("t{i}"), move |ctx: crate::ExecuteContext| {
            let seen = s1.clone();
            let first_attempt = ctx.get("attempt").and_then(serde_json::Value::as_u64).unwrap_or(1) == 1;
            async move {
                seen.push("start", i);
                let now = seen.running.fetch_add(1, Ordering::SeqCst) + 1;
                seen.peak.fetch_max(now, Ordering::SeqCst);
                for _ in 0..(i % 3) {
                    tokio::task::yield_now().await;
                }
                seen.running.fetch_sub(1, Ordering::SeqCst);
                seen.push("finish", i);
                if fails && first_attempt {
                    Err(Failure::task(format!("t{i} failed")))
                } else {
                    Ok(json!(i))
                }
            }
        })
        .revert_fn(move |_: RevertContext| {
            let seen = s2.clone();
            async move {
                seen.push("revert", i);
                Ok(())
            }
        })
        .optional("attempt", json!(1));
        flow = flow.add(spec);
    }
    for (a, b) in edges {
        flow = flow.link(format!("t{a}"), format!("t{b}"));
    }
    flow
}

fn dag() -> impl Strategy<Value = (usize, Vec<(usize, usize)>, Option<usize>, usize, bool)> {
    (1usize..12).prop_flat_map(|n| {
        let edges = proptest::collection::vec((0..n, 0..n), 0..(n * 2))
            .prop_map(|pairs| pairs.into_iter().filter(|(a, b)| a < b).collect::<BTreeSet<_>>().into_iter().collect());
        (Just(n), edges, proptest::option::of(0..n), 1usize..5, any::<bool>())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_dags_respect_order_limits_and_revert_exactly_what_ran((n, edges, failing, limit, eager) in dag()) {
        let seen = Arc::new(Observed::default());
        let flow = graph(n, &edges, failing, &seen);
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let outcome = rt.block_on(async {
            let mut engine = Engine::builder(flow).max_concurrency(limit).eager_spawn(eager).build().await.expect("builds");
            engine.run().await.expect("runs")
        });

        prop_assert!(seen.peak.load(Ordering::SeqCst) <= limit, "peak {} over limit {limit}", seen.peak.load(Ordering::SeqCst));
        for (a, b) in &edges {
            if let Some(start_b) = seen.position("start", *b) {
                let finish_a = seen.position("finish", *a);
                prop_assert!(finish_a.is_some_and(|f| f < start_b), "t{b} started before t{a} finished");
            }
        }
        let ran = seen.nodes("finish");
        match failing {
            None => {
                prop_assert_eq!(outcome.state, FlowState::Success);
                prop_assert_eq!(ran.len(), n);
                prop_assert!(seen.nodes("revert").is_empty());
            }
            Some(_) => {
                prop_assert_eq!(outcome.state, FlowState::Reverted);
                prop_assert_eq!(seen.nodes("revert"), ran, "exactly the atoms that ran are reverted");
                for (a, b) in &edges {
                    if let (Some(ra), Some(rb)) = (seen.position("revert", *a), seen.position("revert", *b)) {
                        prop_assert!(rb < ra, "t{a} reverted before its successor t{b}");
                    }
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn a_retried_random_dag_undoes_the_first_attempt_before_the_second((n, edges, failing, limit, eager) in dag()) {
        let Some(f) = failing else { return Ok(()) };
        let seen = Arc::new(Observed::default());
        let flow = graph_with(n, &edges, Some(f), &seen, true);
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let outcome = rt.block_on(async {
            let mut engine = Engine::builder(flow).max_concurrency(limit).eager_spawn(eager).build().await.expect("builds");
            engine.run().await.expect("runs")
        });
        prop_assert_eq!(outcome.state, FlowState::Success);
        prop_assert!(seen.peak.load(Ordering::SeqCst) <= limit);
        let log = seen.log.lock().expect("log lock").clone();
        // The second attempt starts at the first "start" after the failing node's finish... once every
        // revert is done: everything that finished before then was reverted, exactly once.
        let last_revert = log.iter().rposition(|(e, _)| e == "revert");
        let first_attempt_finished: BTreeSet<usize> = log
            .iter()
            .take(last_revert.map_or(0, |p| p + 1))
            .filter(|(e, _)| e == "finish")
            .map(|(_, n)| *n)
            .collect();
        prop_assert_eq!(seen.nodes("revert"), first_attempt_finished);
        let second_starts = log.iter().skip(last_revert.map_or(0, |p| p + 1)).filter(|(e, _)| e == "start").count();
        prop_assert_eq!(second_starts, n, "the whole subflow runs again after the revert");
    }
}
