//! Listing by state: every filtered listing, followed page by page, is the
//! unfiltered listing filtered, in content and order. Backends may serve the
//! state filters from indexes (etcd does for CLAIMED and UNCLAIMED); this is
//! what keeps them honest.

use std::sync::Arc;

use jobboard::{Job, JobBoard, JobId, JobState, ListQuery, NewJob, Outcome};

use super::{list_all, post, store, wait_for_state, BoardFactory};

/// Every state filter, with and without a flow filter.
const STATES: [Option<JobState>; 5] =
    [None, Some(JobState::Unclaimed), Some(JobState::Claimed), Some(JobState::Complete), Some(JobState::Trashed)];

/// A board of finished, claimed, released, abandoned and waiting jobs of two
/// flows and three priorities lists, under every filter and page size, exactly
/// what filtering its unfiltered listing gives.
pub async fn list_by_state_matches_filtered_full_list(f: &impl BoardFactory) {
    let (a, b, c) = (f.session("a").await, f.session("b").await, f.session("c").await);
    let mut ids = Vec::new();
    for n in 0..14 {
        let mut new = NewJob::new(if n % 2 == 0 { "alpha" } else { "beta" }, store(n));
        // Claim order (priority first) differs from listing order (creation).
        new.priority = (n % 3) as i32 - 1;
        ids.push(post(&b, new).await.id);
    }
    for n in [0, 3, 7] {
        a.claim(ids[n]).await.expect("claim failed").consume(Outcome::Success, None).await.expect("consume failed");
    }
    a.claim(ids[9]).await.expect("claim failed").trash("broken").await.expect("trash failed");
    b.request_cancel(ids[5]).await.expect("cancel of an unclaimed job failed");
    a.claim(ids[8]).await.expect("claim failed").abandon().await.expect("abandon failed");
    let mut live = Vec::new();
    for n in [1, 4, 10, 13] {
        live.push(a.claim(ids[n]).await.expect("claim failed"));
    }
    // A job whose holder crashed comes back as UNCLAIMED, with its claim counted.
    let _lost = c.claim(ids[6]).await.expect("claim failed");
    f.kill_session("c").await;
    let released = wait_for_state(&b, ids[6], JobState::Unclaimed).await;
    assert_eq!((released.owner, released.claims), (None, 1));

    let all = list_all(&b).await;
    assert_eq!(all.iter().map(|j| j.id).collect::<Vec<_>>(), ids, "the full listing is in creation order");
    let count = |state| all.iter().filter(|j| j.state == state).count();
    assert_eq!(
        [JobState::Unclaimed, JobState::Claimed, JobState::Complete, JobState::Trashed].map(count),
        [5, 4, 4, 1],
        "the board is not in the intended mix"
    );
    assert_filtered_listings_agree(&b, &["alpha", "beta", "nobody"]).await;
    drop(live);
}

/// A listing shows every write acknowledged before it, whichever session made it: a job
/// posted, claimed, given back or finished on one session is listed so, under every open
/// state and flow filter, by another at once. (The etcd board serves CLAIMED and
/// UNCLAIMED from its watch's copy of the indexes: that copy must not lag.)
pub async fn listings_show_other_sessions_writes_at_once(f: &impl BoardFactory) {
    let (writer, lister) = (f.session("writer").await, f.session("lister").await);
    // In posting (= listing) order.
    let mut expected: Vec<(JobId, JobState, &str)> = Vec::new();
    let mut held = Vec::new();
    for n in 0..6usize {
        let flow = if n % 2 == 0 { "even" } else { "odd" };
        let id = post(&writer, NewJob::new(flow, store(n as i64))).await.id;
        expected.push((id, JobState::Unclaimed, flow));
        assert_listed(&lister, &expected, &format!("job {n} posted")).await;
        let claim = writer.claim(id).await.expect("claim failed");
        let now = |state| (id, state, flow);
        expected[n] = now(JobState::Claimed);
        assert_listed(&lister, &expected, &format!("job {n} claimed")).await;
        match n % 3 {
            0 => {
                claim.consume(Outcome::Success, None).await.expect("consume failed");
                expected[n] = now(JobState::Complete);
            }
            1 => {
                claim.abandon().await.expect("abandon failed");
                expected[n] = now(JobState::Unclaimed);
            }
            _ => held.push(claim),
        }
        assert_listed(&lister, &expected, &format!("job {n} finished, given back or kept")).await;
    }
    drop(held);
}

/// The CLAIMED, UNCLAIMED and COMPLETE listings of `board`, of every flow and of each, are `expected`'s.
async fn assert_listed(board: &Arc<dyn JobBoard>, expected: &[(JobId, JobState, &str)], after: &str) {
    for state in [JobState::Unclaimed, JobState::Claimed, JobState::Complete] {
        for flow in [None, Some("even"), Some("odd")] {
            let query = ListQuery { state: Some(state), flow: flow.map(str::to_string), ..ListQuery::default() };
            let page = board.list(&query).await.unwrap_or_else(|e| panic!("list({query:?}) failed: {e}"));
            let want: Vec<JobId> = expected
                .iter()
                .filter(|(_, s, f)| *s == state && flow.is_none_or(|flow| flow == *f))
                .map(|(id, _, _)| *id)
                .collect();
            let got: Vec<JobId> = page.jobs.iter().map(|job| job.id).collect();
            assert_eq!(got, want, "{state:?} jobs of flow {flow:?}, listed right after {after}");
        }
    }
}

/// Checks every state filter (none and each state) with no flow filter and
/// with each of `flows`, at the default page size and at 2 following page
/// tokens to the end: the jobs are the unfiltered listing's, filtered, in its
/// order; only full pages announce a next one, and no page but a lone first
/// one is empty (a next page is announced only when a job follows). The board must not change meanwhile.
pub async fn assert_filtered_listings_agree(board: &Arc<dyn JobBoard>, flows: &[&str]) {
    assert_filtered_listings_agree_at(board, flows, &[0, 2]).await;
}

/// [`assert_filtered_listings_agree`] at the given page sizes (0: the default).
pub async fn assert_filtered_listings_agree_at(board: &Arc<dyn JobBoard>, flows: &[&str], limits: &[usize]) {
    let all = list_all(board).await;
    let flow_filters = std::iter::once(None).chain(flows.iter().map(|f| Some(f.to_string())));
    for flow in flow_filters {
        for state in STATES {
            let expected: Vec<&Job> = all
                .iter()
                .filter(|j| state.is_none_or(|s| j.state == s) && flow.as_ref().is_none_or(|f| j.flow == *f))
                .collect();
            for &limit in limits {
                let query = ListQuery { state, flow: flow.clone(), limit, page_token: None };
                let got = list_pages(board, query).await;
                let what = format!("list(state {state:?}, flow {flow:?}, limit {limit})");
                assert_eq!(
                    got.iter().map(|j| j.id).collect::<Vec<_>>(),
                    expected.iter().map(|j| j.id).collect::<Vec<_>>(),
                    "{what} lists other jobs than the filtered full listing"
                );
                assert!(got.iter().zip(&expected).all(|(g, e)| g == *e), "{what} lists a job differently");
            }
        }
    }
}

/// Every page of `query`, concatenated, checking page sizes on the way.
async fn list_pages(board: &Arc<dyn JobBoard>, mut query: ListQuery) -> Vec<Job> {
    let mut jobs = Vec::new();
    for page_number in 0.. {
        let page = board.list(&query).await.unwrap_or_else(|e| panic!("list({query:?}) failed: {e}"));
        if query.limit > 0 {
            assert!(page.jobs.len() <= query.limit, "a page of {query:?} is larger than its limit");
        }
        assert!(page_number == 0 || !page.jobs.is_empty(), "page {page_number} of {query:?} is empty");
        if page.next.is_some() && query.limit > 0 {
            assert_eq!(page.jobs.len(), query.limit, "a page of {query:?} that announces a next one is not full");
        }
        jobs.extend(page.jobs);
        match page.next {
            Some(next) => query.page_token = Some(next),
            None => break,
        }
    }
    jobs
}
