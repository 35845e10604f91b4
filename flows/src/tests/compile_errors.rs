//! Compile errors: every culprit is named, all at once.

use super::ok;
use crate::{compile, CompileProblem, Flow};

#[track_caller]
fn problems(flow: &Flow, store: &[&str]) -> Vec<CompileProblem> {
    compile(flow, store.iter().copied()).expect_err("flow must not compile").problems
}

#[test]
fn a_cycle_names_its_atoms() {
    let flow = Flow::graph("g")
        .add(ok("a"))
        .add(ok("b"))
        .add(ok("c"))
        .add(ok("d"))
        .link("a", "b")
        .link("b", "c")
        .link("c", "a")
        .link("c", "d");
    assert_eq!(problems(&flow, &[]), [CompileProblem::Cycle(vec!["a".into(), "b".into(), "c".into()])]);
}

#[test]
fn a_cycle_through_data_is_found_too() {
    let flow = Flow::graph("g").add(ok("a").requires(["y"]).provides("x")).add(ok("b").requires(["x"]).provides("y"));
    assert_eq!(problems(&flow, &[]), [CompileProblem::Cycle(vec!["a".into(), "b".into()])]);
}

#[test]
fn a_missing_input_names_the_input_and_the_task() {
    let flow = Flow::linear("f").add(ok("a").requires(["ghost"]));
    assert_eq!(problems(&flow, &[]), [CompileProblem::MissingInput { input: "ghost".into(), atom: "a".into() }]);
    assert!(compile(&flow, ["ghost"]).is_ok(), "the store can provide it");
}

#[test]
fn a_consumer_that_cannot_tell_providers_apart_is_refused() {
    let flow = Flow::linear("f")
        .add(Flow::unordered("u").add(ok("p1").provides("x")).add(ok("p2").provides("x")))
        .add(ok("c").requires(["x"]));
    assert_eq!(
        problems(&flow, &[]),
        [CompileProblem::Ambiguous { name: "x".into(), atom: "c".into(), providers: vec!["p1".into(), "p2".into()] }]
    );
    let graph = Flow::graph("g").add(ok("p1").provides("x")).add(ok("p2").provides("x")).add(ok("c").requires(["x"]));
    assert!(matches!(&problems(&graph, &[])[..], [CompileProblem::Ambiguous { .. }]));
}

#[test]
fn duplicate_names_are_refused() {
    let flow = Flow::linear("f").add(ok("a")).add(Flow::unordered("u").add(ok("a")));
    assert_eq!(problems(&flow, &[]), [CompileProblem::DuplicateName("a".into())]);
}

#[test]
fn every_culprit_is_reported_at_once() {
    let flow = Flow::linear("f")
        .add(ok("dup"))
        .add(ok("dup"))
        .add(ok("needy").requires(["nothing"]))
        .add(Flow::graph("g").add(ok("x")).add(ok("y")).link("x", "y").link("y", "x").link("x", "nowhere"));
    let found = problems(&flow, &[]);
    assert!(found.contains(&CompileProblem::DuplicateName("dup".into())), "{found:?}");
    assert!(found.contains(&CompileProblem::MissingInput { input: "nothing".into(), atom: "needy".into() }));
    assert!(found.contains(&CompileProblem::Cycle(vec!["x".into(), "y".into()])));
    assert!(found.contains(&CompileProblem::UnknownLink { flow: "g".into(), name: "nowhere".into() }));
    let message = compile(&flow, Vec::<String>::new()).expect_err("bad").to_string();
    assert!(message.contains("needy") && message.contains("dup") && message.contains("nowhere"), "{message}");
}

#[test]
fn links_on_a_linear_flow_are_refused() {
    let flow = Flow::linear("f").add(ok("a")).add(ok("b")).link("b", "a");
    assert_eq!(problems(&flow, &[]), [CompileProblem::LinkOutsideGraph("f".into())]);
}

#[test]
fn registry_names_unknown_flows_and_missing_inputs() {
    use crate::{FlowFactory, FlowRegistry, RegistryError};
    let mut registry = FlowRegistry::new();
    registry.register(
        FlowFactory::new("chain", |_| Ok(Flow::linear("chain")))
            .requires(["steps", "step_ms"])
            .input("flaky", crate::InputSpec::number().default(serde_json::json!(0))),
    );
    registry.register(FlowFactory::new("noop", |_| Ok(Flow::linear("noop"))));
    assert_eq!(registry.names(), ["chain", "noop"]);
    let store = serde_json::json!({ "steps": 3 }).as_object().cloned().unwrap_or_default();
    assert_eq!(
        registry.validate("chain", &store),
        Err(RegistryError::InvalidInputs {
            flow: "chain".into(),
            problems: vec![crate::InputProblem {
                path: "step_ms".into(),
                rule: crate::Rule::Required,
                message: "is required (any) and was not given".into()
            }]
        })
    );
    let err = registry.validate("nope", &store).expect_err("unknown");
    assert_eq!(err.to_string(), "unknown flow \"nope\"; known flows: chain, noop");
    assert!(registry.build("noop", &store).is_ok());
}
