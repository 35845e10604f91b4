//! How the listing benchmark fills a board: many real finished jobs, fast, through an
//! in-process board (the same code a conductor runs), and a few open ones.

use std::time::Instant;

use futures::{StreamExt, TryStreamExt};
use jobboard::etcd::{EtcdBoard, EtcdConfig};
use jobboard::{BoardConfig, Claim, JobBoard, NewJob, Outcome};
use serde_json::Map;
use tests::conductor::HarnessResult;

const IN_FLIGHT: usize = 64;
/// The two flows jobs alternate between (a flow filter matches half of them).
pub const FLOWS: [&str; 2] = ["chain", "report"];

pub async fn connect(endpoint: &str, prefix: &str, owner: &str) -> HarnessResult<EtcdBoard> {
    let mut config = EtcdConfig::new(vec![endpoint.to_string()], BoardConfig::new(owner));
    config.prefix = prefix.to_string();
    Ok(EtcdBoard::connect(config).await?)
}

/// What [`finished_jobs`] made.
pub struct Filled {
    pub cancelled: usize,
    pub completed: usize,
    pub trashed: usize,
    pub seconds: f64,
}

/// Posts `n` jobs and finishes each at once: 8 in 10 cancelled while queued (COMPLETE,
/// outcome CANCELLED), 1 claimed and consumed (COMPLETE, SUCCESS), 1 claimed and trashed
/// (TRASHED); none has a logbook (no task ran). Flows alternate between [`FLOWS`].
pub async fn finished_jobs(endpoint: &str, prefix: &str, n: usize) -> HarnessResult<Filled> {
    let board = connect(endpoint, prefix, "filler").await?;
    let started = Instant::now();
    let board = &board;
    futures::stream::iter(0..n)
        .map(|i| async move {
            let job = board.post(NewJob::new(FLOWS[i % 2], Map::new())).await?;
            match i % 10 {
                8 => board.claim(job.id).await?.consume(Outcome::Success, None).await.map(|_| ()),
                9 => board.claim(job.id).await?.trash("bench").await,
                _ => board.request_cancel(job.id).await.map(|_| ()),
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .try_collect::<Vec<()>>()
        .await?;
    let seconds = started.elapsed().as_secs_f64();
    board.close().await?;
    let (completed, trashed) = ((0..n).filter(|i| i % 10 == 8).count(), (0..n).filter(|i| i % 10 == 9).count());
    Ok(Filled { cancelled: n - completed - trashed, completed, trashed, seconds })
}

/// Open jobs after the finished ones: `queued` left queued, and `claimed` claimed by a
/// board that holds them (returned: drop it to let them go).
pub async fn open_jobs(
    endpoint: &str,
    prefix: &str,
    queued: usize,
    claimed: usize,
) -> HarnessResult<(EtcdBoard, Vec<Claim>)> {
    let board = connect(endpoint, prefix, "holder").await?;
    let mut claims = Vec::new();
    for _ in 0..claimed {
        let job = board.post(NewJob::new(FLOWS[0], Map::new())).await?;
        claims.push(board.claim(job.id).await?);
    }
    for i in 0..queued {
        board.post(NewJob::new(FLOWS[i % 2], Map::new())).await?;
    }
    Ok((board, claims))
}
