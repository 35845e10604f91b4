//! Listeners: the built-in ones observe a run, and a panicking one is ignored.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::{ok, Recorder};
use crate::{AtomEvent, Engine, Flow, FlowState, Listener};

#[tokio::test]
async fn built_in_listeners_observe_a_run() {
    let timing = Arc::new(crate::TimingListener::new());
    let flow = Flow::linear("f").retry(crate::Retry::times(1).named("r")).add(ok("a")).add(ok("b"));
    let compiled = crate::compile(&flow, Vec::<String>::new()).expect("compiles");
    let kinds: Vec<(&str, crate::AtomKind)> = compiled.atoms().collect();
    assert_eq!(kinds, [("r", crate::AtomKind::Retry), ("a", crate::AtomKind::Task), ("b", crate::AtomKind::Task)]);
    let mut engine = Engine::builder(flow)
        .listener(timing.clone())
        .listener(Arc::new(crate::LoggingListener))
        .build()
        .await
        .expect("builds");
    assert_eq!(engine.run().await.expect("runs").state, FlowState::Success);
    let durations = timing.atom_durations();
    assert_eq!(durations.keys().cloned().collect::<BTreeSet<_>>(), ["a", "b", "r"].map(String::from).into());
    assert!(timing.flow_duration().is_some());
}

/// A listener that panics on every atom event.
struct Panicky;

impl Listener for Panicky {
    fn on_atom(&self, _event: &AtomEvent<'_>) {
        panic!("listener bug");
    }
}

#[tokio::test]
async fn a_panicking_listener_neither_stops_the_run_nor_other_listeners() {
    for concurrency in [1, 2] {
        let recorder = Arc::new(Recorder::default());
        let flow = Flow::linear("f").add(ok("a")).add(Flow::unordered("u").add(ok("b")).add(ok("c")));
        let mut engine = Engine::builder(flow.clone())
            .max_concurrency(concurrency)
            .listener(Arc::new(Panicky))
            .listener(recorder.clone())
            .build()
            .await
            .expect("builds");
        let outcome = engine.run().await.expect("runs");
        assert_eq!(outcome.state, FlowState::Success);
        let mut trace = recorder.trace();
        trace.sort();
        assert_eq!(trace, ["a SUCCESS", "b SUCCESS", "c SUCCESS"]);
    }
}
