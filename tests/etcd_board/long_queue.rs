//! A long queue on etcd: a board that starts with more queued jobs than its first listing
//! page (the rest is listed in the background) claims every job exactly once, in priority
//! order, including jobs posted while it lists.

use std::collections::HashSet;

use futures::stream::{self, StreamExt, TryStreamExt};
use jobboard::{FlowFilter, Job, JobBoard, JobId, NewJob, Outcome};
use serde_json::Map;
use tests::etcd::unique_prefix;

use super::{connect, shared_endpoint};

/// More than the first page a board lists before its first claim (1,000).
const QUEUED: usize = 1500;
/// High-priority jobs posted after the claimer started.
const URGENT: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_longer_than_the_first_listing_is_claimed_whole_and_in_order() {
    let endpoint = shared_endpoint().await;
    let prefix = unique_prefix("long-queue");
    let poster = connect(&endpoint, &prefix, "poster", 10).await;
    let posted: Vec<Job> = stream::iter(0..QUEUED)
        .map(|_| poster.post(NewJob::new("work", Map::new())))
        .buffered(16)
        .try_collect()
        .await
        .expect("posting failed");
    let mut normal: Vec<JobId> = posted.iter().map(|job| job.id).collect();
    // Same priority: claim order is key order, and ids are time-ordered.
    normal.sort();

    let claimer = connect(&endpoint, &prefix, "claimer", 10).await;
    let filter = FlowFilter::flows(vec!["work".into()]);
    let mut claimed = Vec::new();
    let mut urgent = HashSet::new();
    while let Some(claim) = claimer.claim_next(&filter).await.expect("claim failed") {
        claimed.push(claim.id());
        claim.consume(Outcome::Success, None).await.expect("consume failed");
        // Posted while the claimer's view is still being listed (and after): claimed next.
        if claimed.len() % 100 == 1 && urgent.len() < URGENT {
            let mut job = NewJob::new("work", Map::new());
            job.priority = 10;
            let job = poster.post(job).await.expect("posting an urgent job failed");
            urgent.insert(job.id);
            let next = claimer.claim_next(&filter).await.expect("claim failed").expect("the queue ran dry");
            assert_eq!(next.id(), job.id, "an urgent job waited behind normal ones");
            claimed.push(next.id());
            next.consume(Outcome::Success, None).await.expect("consume failed");
        }
    }
    let in_order: Vec<JobId> = claimed.iter().copied().filter(|id| !urgent.contains(id)).collect();
    assert_eq!(in_order.len(), QUEUED, "every queued job was claimed once");
    assert!(in_order == normal, "jobs of one priority were claimed out of order");
    assert_eq!(claimed.len(), QUEUED + urgent.len());
    assert_eq!(claimed.iter().collect::<HashSet<_>>().len(), claimed.len(), "a job was claimed twice");
    claimer.close().await.expect("close failed");
    poster.close().await.expect("close failed");
}
