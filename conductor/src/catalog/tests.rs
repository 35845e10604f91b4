//! The catalog over a real embedded board: names, the claim filter, lookups and their refusals.

use std::sync::Arc;

use flowfile::{FlowFile, Kinds};
use jobboard::embedded::EmbeddedBoard;
use jobboard::{ApplyRule, BoardConfig, JobBoard, NewFlowVersion};

use super::*;

const HELLO: &str = "name: hello\nflow:\n  linear:\n    - task: hi\n      kind: noop\n";
const SHELLY: &str =
    "name: shelly\nflow:\n  linear:\n    - task: run\n      kind: shell\n      with: {run: [\"true\"]}\n";
const CHAIN: &str = "name: chain\nflow:\n  linear:\n    - task: a\n      kind: noop\n";

async fn apply(board: &dyn JobBoard, text: &str) -> u32 {
    let file = FlowFile::parse("test.yaml", text).expect("a sound file");
    let def = NewFlowVersion { name: file.name().into(), hash: file.hash().into(), source: text.into() };
    board.apply_flow(def, ApplyRule::NewUnlessCurrent).await.expect("apply").version
}

fn catalog() -> Catalog {
    Catalog::new(Arc::new(crate::demo_flows::registry()), Arc::new(Kinds::default_allowed()))
}

#[tokio::test]
async fn the_filter_holds_rust_flows_and_the_file_flows_that_run_here() {
    let dir = tempfile::tempdir().expect("temp dir");
    let board = EmbeddedBoard::open(&dir.path().join("b.sqlite3"), BoardConfig::new("t")).expect("board");
    for text in [HELLO, SHELLY, CHAIN] {
        apply(&board, text).await;
    }
    let catalog = catalog();
    let mut changes = catalog.changes();
    catalog.refresh(&board).await.expect("refresh");
    assert!(changes.has_changed().expect("open"), "a refresh that changes the flows wakes the claimer");
    changes.mark_unchanged();
    let mut names = catalog.filter().flows;
    names.sort();
    // shelly needs shell (not allowed); the file named chain is refused: chain is a Rust flow here.
    assert_eq!(names, ["chain", "hello", "provision-cluster"]);
    assert!(!catalog.current().contains_key("chain"), "the Rust flow wins its name");
    catalog.refresh(&board).await.expect("refresh");
    assert!(!changes.has_changed().expect("open"), "an unchanged refresh wakes nobody");
}

#[tokio::test]
async fn posts_pin_the_current_or_asked_version_and_refuse_what_cannot_be() {
    let dir = tempfile::tempdir().expect("temp dir");
    let board = EmbeddedBoard::open(&dir.path().join("b.sqlite3"), BoardConfig::new("t")).expect("board");
    apply(&board, HELLO).await;
    let v2 = apply(&board, &HELLO.replace("task: hi", "task: hey")).await;
    let catalog = catalog();
    catalog.refresh(&board).await.expect("refresh");
    let current = catalog.for_post(&board, "hello", None).await.expect("current");
    assert_eq!(current.pin.map(|p| p.version), Some(v2));
    let older = catalog.for_post(&board, "hello", Some(1)).await.expect("v1");
    assert_eq!(older.pin.map(|p| p.version), Some(1));
    assert!(matches!(catalog.for_post(&board, "chain", None).await, Ok(Resolved { pin: None, .. })));
    assert!(matches!(
        catalog.for_post(&board, "hello", Some(9)).await,
        Err(CatalogError::UnknownVersion { version: 9, .. })
    ));
    assert!(matches!(catalog.for_post(&board, "chain", Some(1)).await, Err(CatalogError::NotVersioned { .. })));
    match catalog.for_post(&board, "nope", None).await {
        Err(CatalogError::UnknownFlow { known, .. }) => assert!(known.contains(&"hello".to_owned()), "{known:?}"),
        other => panic!("expected an unknown flow, got {other:?}"),
    }
    // A flow applied after the last refresh is still found (one read).
    apply(&board, SHELLY).await;
    let shelly = catalog.for_post(&board, "shelly", None).await.expect("found on the board");
    let Resolving::File(parsed) = shelly.factory else { panic!("a file flow") };
    assert_eq!(parsed.missing, ["shell"], "posted, though this conductor cannot run it");
}
