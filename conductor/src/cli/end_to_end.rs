//! The CLI's commands against a real API server (embedded board, loopback port):
//! exit statuses, that refused input writes nothing, and failover past endpoints that
//! refuse or never answer.

use std::process::ExitCode;

use clap::Parser;
use jobboard::{JobBoard, ListQuery, Outcome};

use super::{run, Cli};
use crate::api::tests::serve;

async fn baton(endpoint: &str, args: &[&str]) -> anyhow::Result<ExitCode> {
    let argv = ["baton", "--endpoint", endpoint, "--output", "json", "--connect-timeout", "1s", "--timeout", "1s"];
    run(Cli::try_parse_from(argv.into_iter().chain(args.iter().copied()))?).await
}

/// The one line a person would see for `error`.
fn line(error: &anyhow::Error) -> String {
    super::report::render(error, false)
}

/// An endpoint where nothing listens (a port that was free a moment ago).
fn dead_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

/// A listener that accepts connections and never says a word, as a stopped process's
/// socket does; the connections stay open until the test ends.
async fn silent_endpoint() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (endpoint, task)
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
    let endpoint = dead_endpoint();
    let err = line(&baton(&endpoint, &["list"]).await.unwrap_err());
    assert_eq!(
        err,
        format!(
            "baton: cannot list jobs: no conductor answered ({endpoint}: connection refused); check that a \
             conductor runs there, or point --endpoint (or BATON_ENDPOINT) at one that does"
        )
    );
}

#[tokio::test]
async fn the_first_endpoint_that_answers_is_used() {
    let server = serve().await;
    let down = dead_endpoint();
    let both = format!("{down}, {}", server.endpoint);
    let code = baton(&both, &["post", "chain", "-s", "steps=1", "-s", "step_ms=0"]).await.unwrap();
    assert_eq!(code, ExitCode::SUCCESS);
    assert_eq!(job_count(&server.board).await, 1, "posted through the second endpoint");

    let err = line(&baton(&format!("{down},{down}"), &["list"]).await.unwrap_err());
    assert!(err.contains(&format!("({down}: connection refused; {down}: connection refused)")), "{err}");
    let err = line(&baton(&format!("{},not a url", server.endpoint), &["list"]).await.unwrap_err());
    assert!(err.contains("invalid endpoint \"not a url\""), "{err}");
}

#[tokio::test]
async fn an_endpoint_that_never_answers_is_passed_by() {
    let server = serve().await;
    let (silent, _held) = silent_endpoint().await;
    let both = format!("{silent},{}", server.endpoint);
    assert_eq!(baton(&both, &["list"]).await.unwrap(), ExitCode::SUCCESS);
    let code = baton(&both, &["post", "chain", "-s", "steps=1", "-s", "step_ms=0"]).await.unwrap();
    assert_eq!(code, ExitCode::SUCCESS);
    assert_eq!(job_count(&server.board).await, 1);

    let err = line(&baton(&silent, &["list"]).await.unwrap_err());
    assert!(err.starts_with(&format!("baton: cannot list jobs: no conductor answered ({silent}: no ")), "{err}");
    assert!(
        err.ends_with(
            "within 1s); check that a conductor runs there, or point --endpoint (or BATON_ENDPOINT) at one that does"
        ),
        "{err}"
    );
}

#[tokio::test]
async fn a_post_without_a_key_gets_one_of_its_own() {
    let server = serve().await;
    for _ in 0..2 {
        baton(&server.endpoint, &["post", "chain", "-s", "steps=1", "-s", "step_ms=0"]).await.unwrap();
    }
    let jobs = server.board.list(&ListQuery::default()).await.unwrap().jobs;
    let keys: Vec<Option<&str>> = jobs.iter().map(|job| job.idempotency_key.as_deref()).collect();
    assert_eq!(keys.len(), 2, "{keys:?}");
    for key in &keys {
        assert!(key.is_some_and(|k| uuid::Uuid::parse_str(k).is_ok()), "{keys:?}");
    }
    assert_ne!(keys[0], keys[1], "each invocation has a key of its own");
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
