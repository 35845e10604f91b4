//! Posting and reading: idempotency, typed errors for bad input, listing, conductors.

use flows::logbook::now_millis;
use jobboard::{ConductorInfo, Error, FlowFilter, JobId, JobState, ListQuery, NewJob, MAX_NAME_BYTES};
use serde_json::{json, Map};

use super::{job, list_all, post, store, suite_config, BoardFactory};

/// Posting twice with one idempotency key returns the first job and writes nothing.
pub async fn idempotent_post(f: &impl BoardFactory) {
    let board = f.session("a").await;
    let keyed = |n| NewJob { idempotency_key: Some("order-42".into()), ..job("work", n) };
    let first = post(&board, keyed(1)).await;
    let again = post(&board, keyed(2)).await;
    assert_eq!(again, first, "the same key must return the same job, unchanged");
    let other = post(&board, NewJob { idempotency_key: Some("order-43".into()), ..job("work", 3) }).await;
    assert_ne!(other.id, first.id);
    let all = list_all(&board).await;
    assert_eq!(all.iter().map(|j| j.id).collect::<Vec<_>>(), vec![first.id, other.id]);
    // The key still holds once the job is claimed.
    let _claim = board.claim(first.id).await.expect("claim failed");
    assert_eq!(post(&board, keyed(4)).await.id, first.id);
}

/// Every bad input gives its typed error and writes nothing.
pub async fn bad_inputs_write_nothing(f: &impl BoardFactory) {
    let board = f.session("a").await;
    let before = list_all(&board).await;

    match board.post(NewJob::new("", store(1))).await {
        Err(Error::InvalidInput(message)) => {
            assert!(message.contains("flow"), "message does not name the flow: {message}")
        }
        other => panic!("an empty flow name gave {other:?}"),
    }
    let limit = suite_config("any").max_value_bytes;
    let mut huge = Map::new();
    huge.insert("blob".into(), json!("x".repeat(limit + 1)));
    match board.post(NewJob::new("work", huge)).await {
        Err(err @ Error::TooLarge { .. }) => {
            let Error::TooLarge { limit: got, .. } = &err else { unreachable!("matched just above") };
            assert_eq!(*got, limit);
            assert!(err.to_string().contains(&limit.to_string()), "message does not name the limit: {err}");
        }
        other => panic!("an oversize store gave {other:?}"),
    }

    match board.post(NewJob { idempotency_key: Some("  ".into()), ..job("work", 1) }).await {
        Err(Error::InvalidInput(message)) => {
            assert!(message.contains("idempotency key"), "message does not name the key: {message}")
        }
        other => panic!("a blank idempotency key gave {other:?}"),
    }
    let long = "f".repeat(MAX_NAME_BYTES + 1);
    let overlong = [
        ("flow name", NewJob::new(long.clone(), store(1))),
        ("idempotency key", NewJob { idempotency_key: Some(long.clone()), ..job("work", 1) }),
    ];
    for (what, new) in overlong {
        match board.post(new).await {
            Err(Error::TooLarge { what: got, limit, .. }) => {
                assert_eq!((got.as_str(), limit), (what, MAX_NAME_BYTES), "the error names the {what} and its limit")
            }
            other => panic!("an overlong {what} gave {other:?}"),
        }
    }

    let unknown = JobId::new_v4();
    let not_found = |what: &str, result: Result<(), Error>| match result {
        Err(Error::NotFound(id)) => assert_eq!(id, unknown, "{what} named another job"),
        other => panic!("{what} of an unknown job gave {other:?}"),
    };
    not_found("get", board.get(unknown).await.map(drop));
    not_found("claim", board.claim(unknown).await.map(drop));
    not_found("request_cancel", board.request_cancel(unknown).await.map(drop));
    not_found("watch_job", board.watch_job(unknown).await.map(drop));

    assert_eq!(list_all(&board).await, before, "a refused request wrote something");
    assert!(board.claim_next(&FlowFilter::any()).await.expect("claim_next failed").is_none());
}

/// `list` filters by state and flow and pages oldest first.
pub async fn list_filters_and_pages(f: &impl BoardFactory) {
    let board = f.session("a").await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let flow = if n % 2 == 0 { "even" } else { "odd" };
        ids.push(post(&board, job(flow, n)).await.id);
    }
    let _claim = board.claim(ids[2]).await.expect("claim failed");

    let mut query = ListQuery { limit: 2, ..ListQuery::default() };
    let mut pages = Vec::new();
    loop {
        let page = board.list(&query).await.expect("list failed");
        assert!(page.jobs.len() <= 2, "a page is larger than its limit");
        pages.push(page.jobs.iter().map(|j| j.id).collect::<Vec<_>>());
        match page.next {
            Some(next) => query.page_token = Some(next),
            None => break,
        }
    }
    assert_eq!(pages.concat(), ids, "paging must list every job once, oldest first");
    assert!(pages.len() >= 3);

    let claimed = board.list(&ListQuery { state: Some(JobState::Claimed), ..ListQuery::default() }).await;
    assert_eq!(claimed.expect("list failed").jobs.iter().map(|j| j.id).collect::<Vec<_>>(), vec![ids[2]]);
    let odd = board.list(&ListQuery { flow: Some("odd".into()), ..ListQuery::default() }).await;
    assert_eq!(odd.expect("list failed").jobs.iter().map(|j| j.id).collect::<Vec<_>>(), vec![ids[1], ids[3]]);
    let even_waiting =
        ListQuery { state: Some(JobState::Unclaimed), flow: Some("even".into()), ..ListQuery::default() };
    let even_waiting = board.list(&even_waiting).await.expect("list failed");
    assert_eq!(even_waiting.jobs.iter().map(|j| j.id).collect::<Vec<_>>(), vec![ids[0], ids[4]]);
}

/// Conductors register on their session, show the jobs they hold, can be
/// told to drain, and vanish with their session.
pub async fn conductors_register_and_drain(f: &impl BoardFactory) {
    let (worker, admin) = (f.session("worker").await, f.session("admin").await);
    let info = ConductorInfo {
        name: "worker".into(),
        address: "127.0.0.1:7000".into(),
        since: now_millis(),
        draining: false,
        jobs: 0,
        task_kinds: vec!["noop".into(), "sleep".into()],
        rust_flows: vec!["chain".into()],
        features: vec!["file-flow".into(), "kind:noop".into()],
    };
    worker.register_conductor(&info).await.expect("register_conductor failed");
    let posted = post(&admin, job("work", 1)).await;
    let _claim = worker.claim(posted.id).await.expect("claim failed");

    let listed = admin.conductors().await.expect("conductors failed");
    let found = listed.iter().find(|c| c.name == "worker").expect("the registered conductor is not listed");
    assert_eq!((found.address.as_str(), found.jobs, found.draining), ("127.0.0.1:7000", 1, false));

    admin.set_draining("worker", true).await.expect("set_draining failed");
    let listed = admin.conductors().await.expect("conductors failed");
    assert!(listed.iter().any(|c| c.name == "worker" && c.draining), "draining was not recorded");
    let found = listed.iter().find(|c| c.name == "worker").expect("the registered conductor is not listed");
    assert_eq!((&found.task_kinds, &found.rust_flows), (&info.task_kinds, &info.rust_flows), "what it can run is kept");
    assert_eq!(found.features, info.features, "the features it has are kept");
    assert!(matches!(admin.set_draining("nobody", true).await, Err(Error::InvalidInput(_))));

    worker.close().await.expect("close failed");
    let listed = admin.conductors().await.expect("conductors failed");
    assert!(listed.iter().all(|c| c.name != "worker"), "a closed session's conductor is still listed");
}
