//! Suite: required features. A claimer never gets a job needing a feature it lacks, and a
//! job posted by older code (requiring nothing) goes to anyone.

use std::sync::Arc;

use jobboard::{FlowFilter, JobBoard, NewJob};

use super::{job, post, BoardFactory};

fn needing(n: i64, requires: &[&str]) -> NewJob {
    NewJob { requires: requires.iter().map(|s| s.to_string()).collect(), ..job("feat", n) }
}

fn having(filter: FlowFilter, features: &[&str]) -> FlowFilter {
    filter.having(features.iter().map(|s| s.to_string()).collect())
}

async fn next(board: &Arc<dyn JobBoard>, filter: &FlowFilter) -> Option<uuid::Uuid> {
    board.claim_next(filter).await.expect("claim_next failed").map(|claim| claim.id())
}

/// An older conductor (lacking `parking`) skips the job needing it, though it is first in
/// the queue, through the all-flows queue and through its flow's own; it takes the job of
/// older code and one needing only what it has. A conductor with `parking` gets the rest.
pub async fn claims_honour_required_features(f: &impl BoardFactory) {
    let old = f.session("old").await;
    let new = f.session("new").await;
    let parking = post(&new, needing(1, &["file-flow", "parking"])).await;
    let older_code = post(&new, needing(2, &[])).await;
    let plain = post(&new, needing(3, &["file-flow"])).await;
    assert_eq!(parking.requires, ["file-flow", "parking"], "post returns what the job requires");
    let read = new.get(parking.id).await.expect("get failed");
    assert_eq!(read.requires, ["file-flow", "parking"], "requires reads back as posted");
    assert!(new.get(older_code.id).await.expect("get failed").requires.is_empty());

    let lacking = having(FlowFilter::any(), &["file-flow", "kind:noop"]);
    let lacking_by_flow = having(FlowFilter::flows(vec!["feat".into()]), &["file-flow"]);
    assert_eq!(next(&old, &lacking).await, Some(older_code.id), "the job of older code goes to anyone");
    assert_eq!(next(&old, &lacking_by_flow).await, Some(plain.id), "what it has is enough");
    assert_eq!(next(&old, &lacking).await, None, "never the job needing parking");
    assert_eq!(next(&old, &lacking_by_flow).await, None, "nor through its flow's queue");

    let full = having(FlowFilter::flows(vec!["feat".into()]), &["file-flow", "parking"]);
    assert_eq!(next(&new, &full).await, Some(parking.id), "a conductor with every feature runs it");
}
