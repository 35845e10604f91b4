//! The CLI's commands against a real API server (embedded board, loopback port):
//! exit statuses, and that refused input writes nothing.

use std::process::ExitCode;

use clap::Parser;
use jobboard::{JobBoard, ListQuery, Outcome};

use super::{run, Cli};
use crate::api::tests::serve;

async fn baton(endpoint: &str, args: &[&str]) -> anyhow::Result<ExitCode> {
    let argv = ["baton", "--endpoint", endpoint, "--output", "json"].into_iter().chain(args.iter().copied());
    run(Cli::try_parse_from(argv)?).await
}

async fn job_count(board: &std::sync::Arc<dyn JobBoard>) -> usize {
    board.list(&ListQuery::default()).await.map(|page| page.jobs.len()).unwrap_or(usize::MAX)
}

#[tokio::test]
async fn refused_posts_fail_and_write_nothing() {
    let server = serve().await;
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("list.yaml");
    std::fs::write(&list, "- 1\n- 2\n").unwrap();
    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, "steps: [1\n").unwrap();
    let cases: [&[&str]; 4] = [
        &["post", "no-such-flow"],
        &["post", "chain", "--store", "steps=2"],
        &["post", "chain", "--store-file", list.to_str().unwrap()],
        &["post", "chain", "--store-file", broken.to_str().unwrap()],
    ];
    for args in cases {
        let err = baton(&server.endpoint, args).await.unwrap_err();
        assert!(!format!("{err:#}").is_empty());
    }
    assert_eq!(job_count(&server.board).await, 0);
}

#[tokio::test]
async fn unreachable_endpoint_says_what_to_do() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let err = format!("{:#}", baton(&endpoint, &["list"]).await.unwrap_err());
    assert!(err.contains("cannot reach baton at") && err.contains("BATON_ENDPOINT"), "{err}");
}

#[tokio::test]
async fn the_first_endpoint_that_answers_is_used() {
    let server = serve().await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let both = format!("{down}, {}", server.endpoint);
    let code = baton(&both, &["post", "chain", "-s", "steps=1", "-s", "step_ms=0"]).await.unwrap();
    assert_eq!(code, ExitCode::SUCCESS);
    assert_eq!(job_count(&server.board).await, 1, "posted through the second endpoint");

    let err = format!("{:#}", baton(&format!("{down},{down}"), &["list"]).await.unwrap_err());
    assert!(err.contains(&format!("cannot reach baton at {down}, {down}")), "{err}");
    let err = format!("{:#}", baton(&format!("{},not a url", server.endpoint), &["list"]).await.unwrap_err());
    assert!(err.contains("invalid endpoint \"not a url\""), "{err}");
}

#[tokio::test]
async fn store_file_and_pairs_reach_the_board() {
    let server = serve().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("store.yaml");
    std::fs::write(&file, "steps: 2\nstep_ms: 5\nlabel: web\n").unwrap();
    let code =
        baton(&server.endpoint, &["post", "chain", "--store-file", file.to_str().unwrap(), "-s", "steps=3"]).await;
    assert_eq!(code.unwrap(), ExitCode::SUCCESS);
    let jobs = server.board.list(&ListQuery::default()).await.unwrap().jobs;
    assert_eq!(jobs.len(), 1);
    let store = serde_json::Value::Object(jobs[0].store.clone());
    assert_eq!(store, serde_json::json!({"steps": 3, "step_ms": 5, "label": "web"}));
}

#[tokio::test]
async fn watch_exits_zero_only_on_success() {
    let server = serve().await;
    let good = server.client.post_job(post_chain()).await.unwrap();
    let claim = server.board.claim(good.id.parse().unwrap()).await.unwrap();
    claim.consume(Outcome::Success, None).await.unwrap();
    assert_eq!(baton(&server.endpoint, &["watch", &good.id]).await.unwrap(), ExitCode::SUCCESS);

    let cancelled = server.client.post_job(post_chain()).await.unwrap();
    assert_eq!(baton(&server.endpoint, &["cancel", &cancelled.id]).await.unwrap(), ExitCode::SUCCESS);
    assert_eq!(
        baton(&server.endpoint, &["watch", &cancelled.id]).await.unwrap(),
        ExitCode::from(super::EXIT_JOB_FAILED)
    );
    assert!(baton(&server.endpoint, &["get", &uuid::Uuid::new_v4().to_string()]).await.is_err());
}

fn post_chain() -> proto::pb::PostJobRequest {
    proto::pb::PostJobRequest {
        flow: "chain".into(),
        store_json: r#"{"steps": 1, "step_ms": 5}"#.into(),
        priority: 0,
        idempotency_key: None,
    }
}
