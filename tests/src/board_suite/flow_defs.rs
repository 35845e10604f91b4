//! Flow definitions on the board: versions, the apply rule, concurrent applies, deletion.

use std::sync::Arc;

use jobboard::{ApplyRule, Error, FlowFilter, JobBoard, NewFlowVersion, Outcome};

use super::{job, post, BoardFactory};

fn def(name: &str, content: &str) -> NewFlowVersion {
    NewFlowVersion { name: name.into(), hash: format!("hash-of-{content}"), source: content.into() }
}

async fn apply(board: &Arc<dyn JobBoard>, name: &str, content: &str, rule: ApplyRule) -> jobboard::Applied {
    board.apply_flow(def(name, content), rule).await.expect("apply failed")
}

/// New content gets the next version and becomes current; the same content again writes
/// nothing; older content moves current back only under `NewUnlessCurrent`.
pub async fn flow_versions_follow_the_apply_rule(f: &impl BoardFactory) {
    let board = f.session("ops").await;
    let first = apply(&board, "cake", "v1", ApplyRule::NeverBack).await;
    assert_eq!((first.version, first.created, first.current), (1, true, 1));
    let again = apply(&board, "cake", "v1", ApplyRule::NewUnlessCurrent).await;
    assert_eq!((again.version, again.created, again.current), (1, false, 1), "unchanged content is a no-op");
    let second = apply(&board, "cake", "v2", ApplyRule::NeverBack).await;
    assert_eq!((second.version, second.created, second.current), (2, true, 2));

    let back = apply(&board, "cake", "v1", ApplyRule::NeverBack).await;
    assert_eq!((back.version, back.created, back.current), (1, false, 2), "a rolling update never flips back");
    assert_eq!(board.flow_version("cake", None).await.expect("current").version, 2);
    let explicit = apply(&board, "cake", "v1", ApplyRule::NewUnlessCurrent).await;
    assert_eq!((explicit.version, explicit.created, explicit.current), (3, true, 3));

    let history = board.flow_history("cake").await.expect("history");
    let seen: Vec<(u32, &str)> = history.iter().map(|v| (v.version, v.source.as_str())).collect();
    assert_eq!(seen, [(1, "v1"), (2, "v2"), (3, "v1")]);
    let old = board.flow_version("cake", Some(2)).await.expect("version 2");
    assert_eq!((old.name.as_str(), old.hash.as_str(), old.source.as_str()), ("cake", "hash-of-v2", "v2"));
    assert!(old.applied_ms > 0);

    apply(&board, "bread", "b1", ApplyRule::NeverBack).await;
    let current: Vec<(String, u32)> =
        board.current_flows().await.expect("current flows").into_iter().map(|v| (v.name, v.version)).collect();
    assert_eq!(current, [("bread".to_owned(), 1), ("cake".to_owned(), 3)]);
}

/// Unknown names and versions are `UnknownFlow`; bad names are refused before anything is written.
pub async fn unknown_flows_and_bad_names_are_refused(f: &impl BoardFactory) {
    let board = f.session("ops").await;
    assert!(matches!(board.flow_version("nope", None).await, Err(Error::UnknownFlow { version: None, .. })));
    assert!(matches!(board.flow_history("nope").await, Err(Error::UnknownFlow { .. })));
    apply(&board, "cake", "v1", ApplyRule::NeverBack).await;
    assert!(matches!(board.flow_version("cake", Some(7)).await, Err(Error::UnknownFlow { version: Some(7), .. })));
    for bad in ["", "Cake", "a/b", "with space"] {
        let refused = board.apply_flow(def(bad, "x"), ApplyRule::NeverBack).await;
        assert!(matches!(refused, Err(Error::InvalidInput(_))), "{bad:?}: {refused:?}");
    }
    assert!(matches!(board.delete_flow("nope").await, Err(Error::UnknownFlow { .. })));
}

/// Eight sessions apply different contents at once: every version exists, numbered 1 to 8,
/// none lost, and the current one is one of them.
pub async fn concurrent_applies_each_get_a_version(f: &impl BoardFactory) {
    let mut sessions = Vec::new();
    for n in 0..8 {
        sessions.push(f.session(&format!("applier-{n}")).await);
    }
    let applies = sessions.iter().enumerate().map(|(n, board)| {
        let board = board.clone();
        async move { board.apply_flow(def("raced", &format!("content-{n}")), ApplyRule::NeverBack).await }
    });
    let results = futures::future::join_all(applies).await;
    let mut versions: Vec<u32> = results.into_iter().map(|r| r.expect("every apply lands").version).collect();
    versions.sort_unstable();
    assert_eq!(versions, (1..=8).collect::<Vec<_>>(), "one version each, none lost");
    let history = sessions[0].flow_history("raced").await.expect("history");
    let mut contents: Vec<String> = history.iter().map(|v| v.source.clone()).collect();
    contents.sort();
    assert_eq!(contents, (0..8).map(|n| format!("content-{n}")).collect::<Vec<_>>());
    let current = sessions[0].flow_version("raced", None).await.expect("current");
    assert!(history.iter().any(|v| v.version == current.version && v.source == current.source));
}

/// A definition an unfinished job uses cannot be deleted; once the job is done it can.
pub async fn a_flow_in_use_is_not_deleted(f: &impl BoardFactory) {
    let board = f.session("ops").await;
    apply(&board, "cake", "v1", ApplyRule::NeverBack).await;
    let queued = post(&board, job("cake", 1)).await;
    assert!(matches!(board.delete_flow("cake").await, Err(Error::FlowInUse { job, .. }) if job == queued.id));
    let claim = board.claim_next(&FlowFilter::any()).await.expect("claim_next").expect("a job");
    assert!(matches!(board.delete_flow("cake").await, Err(Error::FlowInUse { .. })), "claimed is unfinished too");
    claim.consume(Outcome::Success, None).await.expect("consume");
    board.delete_flow("cake").await.expect("deleted once no job uses it");
    assert!(matches!(board.flow_version("cake", None).await, Err(Error::UnknownFlow { .. })));
    assert!(matches!(board.flow_history("cake").await, Err(Error::UnknownFlow { .. })));
    let fresh = apply(&board, "cake", "v9", ApplyRule::NeverBack).await;
    assert_eq!(fresh.version, 1, "a deleted flow starts again from version 1");
}

/// A job keeps the definition version it was posted against, and another session
/// hears of an apply or a delete through `flow_changes`.
pub async fn pins_persist_and_flow_changes_wake(f: &impl BoardFactory) {
    let ops = f.session("ops").await;
    let other = f.session("other").await;
    let mut changes = other.flow_changes();
    let applied = apply(&ops, "cake", "v1", ApplyRule::NeverBack).await;
    super::within("flow_changes after an apply", changes.changed()).await.expect("flow_changes closed");
    let pin = jobboard::FlowPin { version: applied.version, hash: "hash-of-v1".into() };
    let posted = post(&ops, jobboard::NewJob { pin: Some(pin.clone()), ..job("cake", 1) }).await;
    assert_eq!(posted.pin.as_ref(), Some(&pin));
    assert_eq!(other.get(posted.id).await.expect("get").pin, Some(pin), "another session reads the pin");
    assert_eq!(post(&ops, job("rusty", 2)).await.pin, None, "a job posted without a pin has none");
    let claim = other.claim(posted.id).await.expect("claim");
    claim.consume(Outcome::Success, None).await.expect("consume");
    ops.delete_flow("cake").await.expect("delete");
    super::within("flow_changes after a delete", changes.changed()).await.expect("flow_changes closed");
}
