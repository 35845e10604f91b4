//! `baton demo`: a conductor on an embedded board, in this process, running one demo job.
//!
//! The README's first command. It needs nothing but this binary: the board is
//! a SQLite file in a temporary directory (or `--data-dir`), the conductor
//! listens on a free loopback port, and the job is followed through the same
//! gRPC client every other subcommand uses.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, Context};
use proto::pb;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::commands::finish;
use super::fleet::{Fleet, Timeouts};
use super::{DemoArgs, DemoFlow, Output};
use crate::config::Config;

/// How long the in-process conductor gets to stop after the job.
const STOP_WAIT: Duration = Duration::from_secs(15);

/// The demo job for `flow`: its flow name and store.
pub fn demo_job(flow: DemoFlow) -> (&'static str, Value) {
    match flow {
        // node 0's wait-for-server fails once, so its subflow is reverted and retried.
        DemoFlow::ProvisionCluster => ("provision-cluster", json!({"nodes": 3, "step_ms": 300, "flaky": 1})),
        DemoFlow::Chain => ("chain", json!({"steps": 5, "step_ms": 300})),
    }
}

/// Runs the demo; exit 0 if the job succeeded.
pub async fn run(args: DemoArgs, out: Output, timeouts: Timeouts) -> anyhow::Result<ExitCode> {
    // Held until the end: dropping it removes the temporary board.
    let temp_dir;
    let data_dir = match args.data_dir {
        Some(dir) => dir,
        None => {
            temp_dir = tempfile::Builder::new()
                .prefix("baton-demo-")
                .tempdir()
                .context("cannot create a temporary data dir")?;
            temp_dir.path().to_path_buf()
        }
    };
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.context("cannot listen on 127.0.0.1")?;
    let address = listener.local_addr().context("cannot read the listen address")?;
    let mut config = Config::embedded(&data_dir);
    config.listen = address;
    let endpoint = format!("http://{address}");
    eprintln!("baton demo: conductor {} on {endpoint}, embedded board in {}", config.name, data_dir.display());

    let shutdown = CancellationToken::new();
    let mut daemon = tokio::spawn(crate::daemon::run(config, listener, shutdown.clone().cancelled_owned()));
    let result = tokio::select! {
        result = post_and_follow(&endpoint, args.flow, out, timeouts) => result,
        ended = &mut daemon => Err(match ended {
            Ok(Ok(())) => anyhow!("the demo conductor stopped before the job ended"),
            Ok(Err(error)) => anyhow!(error).context("the demo conductor failed"),
            Err(join) => anyhow!(join).context("the demo conductor panicked"),
        }),
    };
    shutdown.cancel();
    if !daemon.is_finished() {
        match tokio::time::timeout(STOP_WAIT, &mut daemon).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => tracing::warn!(%error, "demo conductor stopped with an error"),
            Ok(Err(join)) => tracing::warn!(error = %join, "demo conductor task failed"),
            Err(_) => {
                tracing::warn!("demo conductor did not stop in time");
                daemon.abort();
            }
        }
    }
    result
}

async fn post_and_follow(endpoint: &str, flow: DemoFlow, out: Output, timeouts: Timeouts) -> anyhow::Result<ExitCode> {
    let fleet = Fleet::new(endpoint, timeouts)?;
    let (name, store) = demo_job(flow);
    let request = &pb::PostJobRequest {
        flow: name.to_owned(),
        store_json: store.to_string(),
        priority: 0,
        idempotency_key: None,
    };
    let job = fleet.call(|c| async move { c.post_job(request.clone()).await }).await;
    let job = job.with_context(|| format!("cannot post the {name} demo job"))?;
    eprintln!("posted job {} ({name} with {store})", job.id);
    finish(&fleet, &job.id, out).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_jobs_satisfy_their_flows() {
        let registry = crate::demo_flows::registry();
        for flow in [DemoFlow::ProvisionCluster, DemoFlow::Chain] {
            let (name, store) = demo_job(flow);
            let store = store.as_object().cloned().unwrap_or_default();
            registry.validate(name, &store).unwrap();
            registry.build(name, &store).unwrap();
        }
    }
}
