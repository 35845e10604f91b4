//! Demo flow factories shipped with the stock binary, with simulated work.
//!
//! - `provision-cluster` (`nodes`; optional `step_ms`, `flaky`): the blog
//!   seed's flow. An unordered flow of per-node linear subflows
//!   (create-server, then wait-for-server), each under `Retry::times(5)`, then
//!   configure-cluster once every node is up. `flaky: N` (a whole number) makes
//!   node 0's wait-for-server fail on its first N executions, so the node's
//!   subflow is reverted and retried (N >= 5 exhausts the retry and the whole
//!   flow reverts, deleting every server); `flaky: P` with 0 < P < 1 makes every
//!   wait-for-server execution fail with probability P.
//! - `chain` (`steps`, `step_ms`): `steps` timed steps in a line, for handoff tests.
//!
//! Every task sleeps `step_ms` milliseconds as its "work" and has a revert.
//! The inputs are typed and bounded, so a bad store is refused when posted; the
//! build closures receive a checked store with defaults filled in.

use std::time::Duration;

use flows::{task_fn, Failure, Flow, FlowFactory, FlowRegistry, InputSpec, Retry, TaskSpec};
use serde_json::{json, Map, Value};

/// Attempts per node subflow of `provision-cluster`.
pub const NODE_ATTEMPTS: usize = 5;
/// The most nodes `provision-cluster` accepts.
const MAX_NODES: f64 = 1000.0;
/// The most steps `chain` accepts.
const MAX_STEPS: f64 = 10_000.0;
/// The longest simulated step: one hour.
const MAX_STEP_MS: f64 = 3_600_000.0;
/// `provision-cluster`'s step when none is given.
const DEFAULT_STEP_MS: u64 = 100;

/// The registry of every demo flow.
pub fn registry() -> FlowRegistry {
    let mut registry = FlowRegistry::new();
    registry.register(provision_cluster()).register(chain());
    registry
}

/// `provision-cluster`: per-node create and wait in parallel, then configure.
pub fn provision_cluster() -> FlowFactory {
    FlowFactory::new("provision-cluster", |store| {
        let nodes = whole_number(store, "nodes")?;
        let step = Duration::from_millis(whole_number(store, "step_ms")?);
        let flaky = flakiness(store)?;
        let servers = (0..nodes).map(|node| node_flow(node, step, flaky));
        Ok(Flow::linear("provision-cluster")
            .add(Flow::unordered("servers").add_all(servers))
            .add(configure_cluster(nodes, step)))
    })
    .input("nodes", InputSpec::integer().minimum(1.0).maximum(MAX_NODES).describe("servers to create"))
    .input("step_ms", step_ms().default(json!(DEFAULT_STEP_MS)))
    .input(
        "flaky",
        InputSpec::number().minimum(0.0).default(json!(0)).describe(
            "node 0's first N waits fail (a whole number), or every wait fails with probability P (0 < P < 1)",
        ),
    )
    .describe("create and wait for N servers in parallel (each retried), then configure the cluster")
}

/// `chain`: N timed steps, one after the other.
pub fn chain() -> FlowFactory {
    FlowFactory::new("chain", |store| {
        let steps = whole_number(store, "steps")?;
        let step = Duration::from_millis(whole_number(store, "step_ms")?);
        Ok(Flow::linear("chain").add_all((1..=steps).map(|n| chain_step(n, step))))
    })
    .input("steps", InputSpec::integer().minimum(1.0).maximum(MAX_STEPS).describe("steps in the line"))
    .input("step_ms", step_ms())
    .describe("N timed steps in a line")
}

/// How `wait-for-server` fails on purpose.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Flaky {
    /// Never.
    Off,
    /// Node 0 fails its first N executions.
    Count(u32),
    /// Every execution fails with this probability.
    Probability(f64),
}

fn node_flow(node: u64, step: Duration, flaky: Flaky) -> Flow {
    let server = format!("server_{node}");
    let create = task_fn(format!("create-server-{node}"), move |ctx| async move {
        work(step).await;
        let id = format!("srv-{node}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        tracing::debug!(node, server = %id, attempt = ctx.attempt(), "server created");
        Ok(json!(id))
    })
    .provides(server.clone())
    .revert_fn(move |ctx| async move {
        work(step / 2).await;
        tracing::info!(node, server = ?ctx.result(), "server deleted (revert)");
        Ok(())
    });
    let wait = task_fn(format!("wait-for-server-{node}"), move |ctx| async move {
        work(step).await;
        let fail = match flaky {
            Flaky::Off => false,
            Flaky::Count(n) => node == 0 && ctx.attempt() <= n,
            Flaky::Probability(p) => rand::random::<f64>() < p,
        };
        if fail {
            return Err(Failure::task(format!(
                "server of node {node} did not come up (flaky, attempt {})",
                ctx.attempt()
            )));
        }
        let server = ctx.require("server")?.clone();
        Ok(json!({ "node": node, "server": server, "status": "ACTIVE" }))
    })
    .requires(["server"])
    .rebind("server", server)
    .revert_fn(move |_ctx| async move {
        tracing::debug!(node, "stopped waiting for server (revert)");
        Ok(())
    });
    Flow::linear(format!("node-{node}")).add(create).add(wait).retry(Retry::times(NODE_ATTEMPTS))
}

fn configure_cluster(nodes: u64, step: Duration) -> TaskSpec {
    task_fn("configure-cluster", move |_ctx| async move {
        work(step).await;
        tracing::debug!(nodes, "cluster configured");
        Ok(json!({ "nodes": nodes, "configured": true }))
    })
    .revert_fn(move |_ctx| async move {
        work(step / 2).await;
        tracing::info!(nodes, "cluster configuration removed (revert)");
        Ok(())
    })
}

fn chain_step(n: u64, step: Duration) -> TaskSpec {
    task_fn(format!("step-{n}"), move |ctx| async move {
        work(step).await;
        tracing::debug!(step = n, attempt = ctx.attempt(), "step done");
        Ok(json!({ "step": n }))
    })
    .revert_fn(move |_ctx| async move {
        tracing::info!(step = n, "step undone (revert)");
        Ok(())
    })
}

/// How long each simulated step takes: a required input unless given a default.
fn step_ms() -> InputSpec {
    InputSpec::integer().minimum(0.0).maximum(MAX_STEP_MS).describe("milliseconds each step sleeps")
}

/// A whole number from a checked store (the schema has judged type and bounds).
fn whole_number(store: &Map<String, Value>, key: &str) -> Result<u64, String> {
    store.get(key).and_then(Value::as_u64).ok_or_else(|| format!("input {key:?} must be a whole number"))
}

/// `flaky` from a checked store: a number >= 0, read as a count or a probability.
fn flakiness(store: &Map<String, Value>) -> Result<Flaky, String> {
    match store.get("flaky").and_then(Value::as_f64) {
        None | Some(0.0) => Ok(Flaky::Off),
        Some(v) if v > 0.0 && v < 1.0 => Ok(Flaky::Probability(v)),
        Some(v) if v >= 1.0 && v.fract() == 0.0 && v <= f64::from(u32::MAX) => Ok(Flaky::Count(v as u32)),
        Some(v) => Err(format!(
            "input \"flaky\" must be a failure count (a whole number) or a probability between 0 and 1, got {v}"
        )),
    }
}

#[cfg(test)]
mod tests;

/// A step's "work": sleeping `step`. A zero step does not touch the timer at all:
/// tokio rounds every sleep up to its next millisecond tick, so even `sleep(0)`
/// would cost up to a millisecond, which is more than a whole step of the board.
async fn work(step: Duration) {
    if !step.is_zero() {
        tokio::time::sleep(step).await;
    }
}
