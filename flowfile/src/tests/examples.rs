//! The example flow files under `examples/flows/` parse and run.

use flows::FlowState;
use serde_json::json;

use super::{assert_state, kinds, parse, run};

const CHAIN: &str = include_str!("../../../examples/flows/chain.yaml");
const PROVISION: &str = include_str!("../../../examples/flows/provision-cluster.yaml");

#[test]
fn examples_parse_with_only_the_default_kinds() {
    for (name, text) in [("chain", CHAIN), ("provision-cluster", PROVISION)] {
        let file = crate::FlowFile::parse(name, text).unwrap_or_else(|p| panic!("{p}"));
        assert_eq!(file.name(), name);
        let used = file.kinds_used();
        assert!(crate::Kinds::default_allowed().missing(used.iter().map(String::as_str)).is_empty(), "{used:?}");
    }
}

#[tokio::test]
async fn chain_runs_its_steps_in_order() {
    let (kinds, _) = kinds();
    let file = parse(CHAIN, &kinds);
    let ran = run(&file, json!({"steps": 3, "step_ms": 1}), kinds).await;
    assert_state(&ran, FlowState::Success);
    let detail = ran.book.flows.values().next().expect("one flow");
    let mut steps: Vec<&String> = detail.atoms.keys().collect();
    steps.sort();
    assert_eq!(steps, vec!["step[0]", "step[1]", "step[2]"]);
    let started: Vec<u64> = (0..3).map(|i| detail.atoms[&format!("step[{i}]")].started_at.unwrap_or(0)).collect();
    assert!(started.windows(2).all(|w| w[0] <= w[1]), "{started:?}");
}

#[tokio::test]
async fn provision_cluster_succeeds_retries_and_reverts() {
    let (kinds, _) = kinds();
    let file = parse(PROVISION, &kinds);

    let ran = run(&file, json!({"nodes": 3, "step_ms": 1}), kinds.clone()).await;
    assert_state(&ran, FlowState::Success);
    assert_eq!(ran.outcome.results["cluster"], json!({"nodes": 3, "configured": true}));

    let ran = run(&file, json!({"nodes": 2, "step_ms": 1, "fail_until": 3}), kinds.clone()).await;
    assert_state(&ran, FlowState::Success);
    let detail = ran.book.flows.values().next().expect("one flow");
    assert_eq!(detail.atoms["wait-for-server[1]"].executions, 3);
    assert_eq!(detail.atoms["node[1]_retry"].attempts.len(), 3);

    let ran = run(&file, json!({"nodes": 2, "step_ms": 1, "fail_until": 6}), kinds).await;
    assert_state(&ran, FlowState::Reverted);
    let detail = ran.book.flows.values().next().expect("one flow");
    assert_eq!(detail.atoms["create-server[0]"].executions, 5);
    assert_eq!(detail.atoms["create-server[0]"].state, flows::AtomState::Reverted);
}
