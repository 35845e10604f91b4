//! Claiming: racing claimers, claim order, flow filters, abandon, consume, trash, quarantine.

use std::sync::Arc;

use flows::Failure;
use jobboard::{Error, FlowFilter, JobState, NewJob, Outcome};
use tokio::sync::Barrier;

use super::{job, post, suite_config, BoardFactory};

/// How many claimers race, and for how many rounds.
const CLAIMERS: usize = 20;
const ROUNDS: usize = 100;

/// 20 claimers race for one job, 100 rounds: exactly one wins each round,
/// and every loser that then asks for that job is told who holds it.
pub async fn twenty_claimers_race(f: &impl BoardFactory) {
    let poster = f.session("poster").await;
    let mut claimers = Vec::new();
    for i in 0..CLAIMERS {
        claimers.push(f.session(&format!("claimer-{i}")).await);
    }
    for round in 0..ROUNDS {
        let posted = post(&poster, job("race", round as i64)).await;
        let barrier = Arc::new(Barrier::new(CLAIMERS));
        let mut racers = Vec::new();
        for claimer in &claimers {
            let (claimer, barrier) = (claimer.clone(), barrier.clone());
            racers.push(tokio::spawn(async move {
                barrier.wait().await;
                claimer.claim_next(&FlowFilter::any()).await
            }));
        }
        let mut winners = Vec::new();
        for (i, racer) in racers.into_iter().enumerate() {
            let outcome = racer.await.unwrap_or_else(|e| panic!("claimer {i} panicked: {e}"));
            match outcome {
                Ok(Some(claim)) => winners.push((i, claim)),
                Ok(None) => {}
                Err(e) => panic!("round {round}: claimer {i} failed: {e}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: {} claimers won the one job", winners.len());
        let (winner, claim) = winners.pop().expect("exactly one winner was just checked");
        assert_eq!(claim.id(), posted.id, "round {round}: the winner claimed another job");
        assert_eq!(claim.job().owner.as_deref(), Some(format!("claimer-{winner}").as_str()));
        let loser = &claimers[(winner + 1) % CLAIMERS];
        match loser.claim(posted.id).await {
            Err(Error::AlreadyClaimed { job, owner }) => {
                assert_eq!(job, posted.id);
                assert_eq!(owner, format!("claimer-{winner}"));
            }
            other => panic!("round {round}: a loser claiming the held job got {other:?}"),
        }
        claim.consume(Outcome::Success, None).await.unwrap_or_else(|e| panic!("round {round}: consume failed: {e}"));
    }
}

/// Three boards, four claim loops each, drain one backlog at once, as a fleet does. Boards
/// that lose races pick candidates at random (etcd), so this checks that path too: every
/// job is claimed exactly once and consumed, none is left behind, none claimed twice.
pub async fn a_fleet_drains_a_backlog_claiming_each_job_once(f: &impl BoardFactory) {
    const JOBS: usize = 120;
    let poster = f.session("poster").await;
    let mut posted = Vec::new();
    for n in 0..JOBS {
        posted.push(post(&poster, job("fleet", (n % 3) as i64)).await.id);
    }
    let mut loops = Vec::new();
    for board in 0..3 {
        let session = f.session(&format!("fleet-{board}")).await;
        for _ in 0..4 {
            let session = session.clone();
            loops.push(tokio::spawn(async move {
                let mut consumed = Vec::new();
                while let Some(claim) = session.claim_next(&FlowFilter::any()).await? {
                    consumed.push((claim.id(), claim.job().claims));
                    claim.consume(Outcome::Success, None).await?;
                }
                Ok::<_, Error>(consumed)
            }));
        }
    }
    let mut consumed = Vec::new();
    for (i, claim_loop) in loops.into_iter().enumerate() {
        let outcome = claim_loop.await.unwrap_or_else(|e| panic!("claim loop {i} panicked: {e}"));
        consumed.extend(outcome.unwrap_or_else(|e| panic!("claim loop {i} failed: {e}")));
    }
    let mut ids: Vec<_> = consumed.iter().map(|(id, _)| *id).collect();
    ids.sort();
    posted.sort();
    assert_eq!(ids, posted, "every job consumed exactly once");
    assert!(consumed.iter().all(|(_, claims)| *claims == 1), "a job was claimed twice: {consumed:?}");
    for id in posted {
        assert_eq!(poster.get(id).await.expect("get").state, JobState::Complete);
    }
}

/// Higher priority first; within a priority, oldest first.
pub async fn priority_then_fifo(f: &impl BoardFactory) {
    let board = f.session("a").await;
    let mut ids = Vec::new();
    for (n, priority) in [0, 10, 0, 10, 5].into_iter().enumerate() {
        let new = NewJob { priority, ..job("ordered", n as i64) };
        ids.push(post(&board, new).await.id);
    }
    let expected = [ids[1], ids[3], ids[4], ids[0], ids[2]];
    for (turn, want) in expected.into_iter().enumerate() {
        let claim = board.claim_next(&FlowFilter::any()).await.expect("claim_next failed");
        let claim = claim.unwrap_or_else(|| panic!("turn {turn}: nothing claimable"));
        assert_eq!(claim.id(), want, "turn {turn}: claimed out of order");
    }
    assert!(board.claim_next(&FlowFilter::any()).await.expect("claim_next failed").is_none());
}

/// A claimer restricted to some flows gets only jobs of those flows.
pub async fn flow_filter(f: &impl BoardFactory) {
    let board = f.session("a").await;
    let alpha = post(&board, job("alpha", 1)).await;
    let beta = post(&board, job("beta", 2)).await;
    let only = |names: &[&str]| FlowFilter::flows(names.iter().map(|s| s.to_string()).collect());
    assert!(board.claim_next(&only(&["gamma"])).await.expect("claim_next failed").is_none());
    let got = board.claim_next(&only(&["beta", "gamma"])).await.expect("claim_next failed");
    assert_eq!(got.map(|c| c.id()), Some(beta.id), "the filter let another flow through");
    let got = board.claim_next(&FlowFilter::any()).await.expect("claim_next failed");
    assert_eq!(got.map(|c| c.id()), Some(alpha.id));
}

/// An abandoned job is UNCLAIMED again, and the next claim counts and fences anew.
pub async fn abandon_then_reclaim(f: &impl BoardFactory) {
    let (a, b) = (f.session("a").await, f.session("b").await);
    let posted = post(&a, job("work", 1)).await;
    let first = a.claim(posted.id).await.expect("first claim failed");
    assert_eq!(first.job().state, JobState::Claimed);
    assert_eq!(first.job().claims, 1);
    let first_token = first.token();
    first.abandon().await.expect("abandon failed");
    let released = a.get(posted.id).await.expect("get failed");
    assert_eq!((released.state, released.owner.as_deref(), released.claims), (JobState::Unclaimed, None, 1));

    let second =
        b.claim_next(&FlowFilter::any()).await.expect("claim_next failed").expect("abandoned job not claimable");
    assert_eq!(second.id(), posted.id);
    assert_eq!(second.job().claims, 2);
    assert_eq!(second.job().owner.as_deref(), Some("b"));
    assert!(second.token() > first_token, "a new claim must have a greater fencing token");
}

/// A consumed job is COMPLETE with its outcome and failure; a trashed one keeps
/// its reason; neither can be claimed again.
pub async fn consume_and_trash(f: &impl BoardFactory) {
    let board = f.session("a").await;
    let (ok, bad, junk) =
        (post(&board, job("work", 1)).await, post(&board, job("work", 2)).await, post(&board, job("work", 3)).await);

    let done = board.claim(ok.id).await.expect("claim failed").consume(Outcome::Success, None).await;
    let done = done.expect("consume failed");
    assert_eq!((done.state, done.outcome, done.owner.as_deref()), (JobState::Complete, Some(Outcome::Success), None));

    let failure = Failure::task("disk full").with_cause(Failure::new("Io", "no space left on device"));
    let claim = board.claim(bad.id).await.expect("claim failed");
    claim.consume(Outcome::Reverted, Some(failure.clone())).await.expect("consume failed");
    let reverted = board.get(bad.id).await.expect("get failed");
    assert_eq!(reverted.state, JobState::Complete);
    assert_eq!(reverted.outcome, Some(Outcome::Reverted));
    assert_eq!(reverted.failure, Some(failure), "the failure must stay readable after completion");
    assert!(reverted.finished_at.is_some());

    board.claim(junk.id).await.expect("claim failed").trash("bad input data").await.expect("trash failed");
    let trashed = board.get(junk.id).await.expect("get failed");
    assert_eq!(trashed.state, JobState::Trashed);
    assert_eq!(trashed.trash_reason.as_deref(), Some("bad input data"));
    assert_eq!(trashed.outcome, None, "a trashed job is not reported as complete");

    // A reason over the size limit is refused, naming the limit, and changes nothing.
    let limit = suite_config("any").max_value_bytes;
    let kept = post(&board, job("work", 4)).await;
    match board.claim(kept.id).await.expect("claim failed").trash("x".repeat(limit + 1)).await {
        Err(Error::TooLarge { what, limit: got, .. }) => assert_eq!((what.as_str(), got), ("trash reason", limit)),
        other => panic!("an oversize trash reason gave {other:?}"),
    }
    let still = board.get(kept.id).await.expect("get failed");
    assert_eq!((still.state, still.trash_reason), (JobState::Claimed, None), "a refused trash wrote something");

    for (id, state) in [(ok.id, JobState::Complete), (junk.id, JobState::Trashed)] {
        match board.claim(id).await {
            Err(Error::NotClaimable { job, state: got }) => assert_eq!((job, got), (id, state)),
            other => panic!("claiming a {state} job gave {other:?}"),
        }
    }
    assert!(board.claim_next(&FlowFilter::any()).await.expect("claim_next failed").is_none());
}

/// A job claimed `quarantine_after` times without finishing is trashed on its
/// next claim attempt, with a reason, and keeps its logbook.
pub async fn quarantine_after_n_claims(f: &impl BoardFactory) {
    let limit = suite_config("any").quarantine_after;
    let board = f.session("a").await;
    let poison = post(&board, job("poison", 1)).await;
    for attempt in 1..=limit {
        let claim = board.claim_next(&FlowFilter::any()).await.expect("claim_next failed");
        let claim = claim.unwrap_or_else(|| panic!("attempt {attempt}: poison job not claimable yet"));
        assert_eq!(claim.job().claims, attempt);
        if attempt == 1 {
            let book = flows::LogBook::new(poison.id, "poison book");
            claim.storage().save_book(&book).await.expect("save_book failed");
        }
        claim.abandon().await.expect("abandon failed");
    }
    let healthy = post(&board, job("healthy", 2)).await;
    post(&board, job("healthy", 4)).await;
    // The next attempt quarantines the poison job and moves on to the healthy one, the
    // oldest left: a quarantine is no lost race, so a lone claimer keeps its order.
    let next = board.claim_next(&FlowFilter::any()).await.expect("claim_next failed");
    assert_eq!(next.map(|c| c.id()), Some(healthy.id));
    let trashed = board.get(poison.id).await.expect("get failed");
    assert_eq!(trashed.state, JobState::Trashed);
    assert!(trashed.trash_reason.as_deref().is_some_and(|r| !r.is_empty()), "quarantine must give a reason");
    assert_eq!(trashed.claims, limit);
    let book = board.logbook(poison.id).await.expect("logbook failed");
    assert_eq!(book.map(|b| b.name), Some("poison book".to_string()), "a quarantined job keeps its logbook");

    // Claiming a poison job by id quarantines it too.
    let other = post(&board, job("poison", 3)).await;
    for _ in 0..limit {
        board.claim(other.id).await.expect("claim failed").abandon().await.expect("abandon failed");
    }
    match board.claim(other.id).await {
        Err(Error::NotClaimable { job, state: JobState::Trashed }) => assert_eq!(job, other.id),
        result => panic!("claim of a poison job gave {:?}", result.map(|c| c.id())),
    }
}

/// A claimer restricted to some flows gets its jobs in priority then FIFO
/// order, whether they are at the head of the queue or behind more jobs of
/// other flows than one claim attempt reads.
pub async fn filtered_claims_keep_order(f: &impl BoardFactory) {
    let board = f.session("a").await;
    let with = |flow: &str, n: i64, priority: i32| NewJob { priority, ..job(flow, n) };
    let mine = FlowFilter::flows(vec!["mine".into(), "also-mine".into(), "absent".into()]);
    let low = post(&board, with("mine", 1, 0)).await.id;
    let mut others = Vec::new();
    for n in 0..40 {
        others.push(post(&board, with("other", 100 + n, 5)).await.id);
    }
    let low_later = post(&board, with("also-mine", 2, 0)).await.id;
    let middle = post(&board, with("mine", 3, 3)).await.id;
    // At the head, ahead of every job of the other flow.
    let head = post(&board, with("also-mine", 4, 9)).await.id;
    let head_later = post(&board, with("mine", 5, 9)).await.id;
    let top = post(&board, with("mine", 6, 10)).await.id;

    for (turn, want) in [top, head, head_later, middle, low, low_later].into_iter().enumerate() {
        let claim = board.claim_next(&mine).await.expect("claim_next failed");
        let claim = claim.unwrap_or_else(|| panic!("turn {turn}: none of the filter's jobs was claimable"));
        assert_eq!(claim.id(), want, "turn {turn}: claimed out of order");
    }
    assert!(board.claim_next(&mine).await.expect("claim_next failed").is_none(), "only other flows' jobs are left");
    let next = board.claim_next(&FlowFilter::any()).await.expect("claim_next failed");
    assert_eq!(next.map(|c| c.id()), Some(others[0]), "the other flow's jobs stay queued, in order");
}
