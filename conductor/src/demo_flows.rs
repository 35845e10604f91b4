//! Demo flow factories shipped with the stock binary, with simulated work.
//!
//! - `provision-cluster` (`nodes`, `step_ms`; optional `flaky`): the blog
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
//! Numbers may be given as JSON numbers or as numeric strings (`--store nodes=3`).

use std::time::Duration;

use flows::{task_fn, Failure, Flow, FlowFactory, FlowRegistry, Retry, TaskSpec};
use serde_json::{json, Map, Value};

/// Attempts per node subflow of `provision-cluster`.
pub const NODE_ATTEMPTS: usize = 5;
/// The most nodes `provision-cluster` accepts.
const MAX_NODES: u64 = 1000;
/// The most steps `chain` accepts.
const MAX_STEPS: u64 = 10_000;
/// The longest simulated step: one hour.
const MAX_STEP_MS: u64 = 3_600_000;

/// The registry of every demo flow.
pub fn registry() -> FlowRegistry {
    let mut registry = FlowRegistry::new();
    registry.register(provision_cluster()).register(chain());
    registry
}

/// `provision-cluster`: per-node create and wait in parallel, then configure.
pub fn provision_cluster() -> FlowFactory {
    FlowFactory::new("provision-cluster", |store| {
        let nodes = whole_number(store, "nodes", 1, MAX_NODES)?;
        let step = step_duration(store)?;
        let flaky = flakiness(store)?;
        let servers = (0..nodes).map(|node| node_flow(node, step, flaky));
        Ok(Flow::linear("provision-cluster")
            .add(Flow::unordered("servers").add_all(servers))
            .add(configure_cluster(nodes, step)))
    })
    .requires(["nodes", "step_ms"])
    .optional(["flaky"])
    .describe("create and wait for N servers in parallel (each retried), then configure the cluster")
}

/// `chain`: N timed steps, one after the other.
pub fn chain() -> FlowFactory {
    FlowFactory::new("chain", |store| {
        let steps = whole_number(store, "steps", 1, MAX_STEPS)?;
        let step = step_duration(store)?;
        Ok(Flow::linear("chain").add_all((1..=steps).map(|n| chain_step(n, step))))
    })
    .requires(["steps", "step_ms"])
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
        tokio::time::sleep(step).await;
        let id = format!("srv-{node}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        tracing::debug!(node, server = %id, attempt = ctx.attempt(), "server created");
        Ok(json!(id))
    })
    .provides(server.clone())
    .revert_fn(move |ctx| async move {
        tokio::time::sleep(step / 2).await;
        tracing::info!(node, server = ?ctx.result(), "server deleted (revert)");
        Ok(())
    });
    let wait = task_fn(format!("wait-for-server-{node}"), move |ctx| async move {
        tokio::time::sleep(step).await;
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
        tokio::time::sleep(step).await;
        tracing::debug!(nodes, "cluster configured");
        Ok(json!({ "nodes": nodes, "configured": true }))
    })
    .revert_fn(move |_ctx| async move {
        tokio::time::sleep(step / 2).await;
        tracing::info!(nodes, "cluster configuration removed (revert)");
        Ok(())
    })
}

fn chain_step(n: u64, step: Duration) -> TaskSpec {
    task_fn(format!("step-{n}"), move |ctx| async move {
        tokio::time::sleep(step).await;
        tracing::debug!(step = n, attempt = ctx.attempt(), "step done");
        Ok(json!({ "step": n }))
    })
    .revert_fn(move |_ctx| async move {
        tracing::info!(step = n, "step undone (revert)");
        Ok(())
    })
}

/// A number from the store, as a JSON number or a numeric string.
fn number(store: &Map<String, Value>, key: &str) -> Result<Option<f64>, String> {
    match store.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_f64().map(Some).ok_or_else(|| format!("input {key:?} is not a number")),
        Some(Value::String(s)) => {
            s.trim().parse::<f64>().map(Some).map_err(|_| format!("input {key:?} must be a number, got {s:?}"))
        }
        Some(other) => Err(format!("input {key:?} must be a number, got {other}")),
    }
}

fn whole_number(store: &Map<String, Value>, key: &str, min: u64, max: u64) -> Result<u64, String> {
    let value = number(store, key)?.ok_or_else(|| format!("input {key:?} is required"))?;
    if value.fract() != 0.0 || value < min as f64 || value > max as f64 {
        return Err(format!("input {key:?} must be a whole number from {min} to {max}, got {value}"));
    }
    Ok(value as u64)
}

fn step_duration(store: &Map<String, Value>) -> Result<Duration, String> {
    Ok(Duration::from_millis(whole_number(store, "step_ms", 0, MAX_STEP_MS)?))
}

fn flakiness(store: &Map<String, Value>) -> Result<Flaky, String> {
    match number(store, "flaky")? {
        None => Ok(Flaky::Off),
        Some(0.0) => Ok(Flaky::Off),
        Some(v) if v > 0.0 && v < 1.0 => Ok(Flaky::Probability(v)),
        Some(v) if v >= 1.0 && v.fract() == 0.0 && v <= f64::from(u32::MAX) => Ok(Flaky::Count(v as u32)),
        Some(v) => Err(format!(
            "input \"flaky\" must be a failure count (a whole number) or a probability between 0 and 1, got {v}"
        )),
    }
}

#[cfg(test)]
mod tests;
