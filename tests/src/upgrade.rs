//! Boards written by a previous release, for the upgrade tests (`tests/upgrade.rs`).
//!
//! [`write_jobs`] puts the fixture's jobs on a board with the code of the day: a flow file
//! applied, one job left UNCLAIMED, one finished, and one mid-run (claimed, its first task
//! recorded SUCCESS in the logbook, then the writer "crashed": neither consumed nor
//! abandoned). `make_upgrade_fixtures` (in `src/bin/`) runs it on an embedded board file and
//! on an etcd prefix and checks the results in under `tests/fixtures/upgrade/`:
//! the SQLite file as it is, the etcd keys as JSON lines ([`dump_etcd`], read back by
//! [`load_etcd`]). A release that changes a board format regenerates them after its tests
//! pass on the old ones (see `tests/fixtures/upgrade/README.md`).

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use etcd_client::{Client, GetOptions, Txn, TxnOp};
use flowfile::{FlowFile, Kinds};
use flows::{AtomEvent, AtomState, Engine, EngineControl, Listener};
use jobboard::{ApplyRule, FlowFilter, JobBoard, NewFlowVersion, NewJob, Outcome};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::conductor::HarnessResult;

/// The fixture's flow: a greeting, a short pause, then a result built from the greeting.
pub const FLOW: &str = "name: upgrade-demo
description: a flow stored on a board written by an older release
inputs:
  who: {type: string}
flow:
  linear:
    - task: greet
      kind: noop
      with: {result: \"hello ${who}\"}
      provides: greeting
    - task: pause
      kind: sleep
      with: {duration: 10ms}
    - task: finish
      kind: noop
      with: {result: \"${greeting}!\"}
      provides: done
";

/// The jobs of a fixture, by role: what the test expects of each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixtureJobs {
    /// Posted, never claimed.
    pub waiting: String,
    /// Claimed; `greet` recorded SUCCESS; the writer died before anything else.
    pub mid_run: String,
    /// Ran to COMPLETE/SUCCESS.
    pub finished: String,
}

/// Where the fixtures live in the source tree.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures").join("upgrade")
}

/// Suspends the engine once `greet` is recorded SUCCESS (a listener hears only what is stored).
struct SuspendAfterGreet(Arc<OnceLock<EngineControl>>);

impl Listener for SuspendAfterGreet {
    fn on_atom(&self, event: &AtomEvent<'_>) {
        if event.atom == "greet" && event.to == AtomState::Success {
            if let Some(control) = self.0.get() {
                control.suspend();
            }
        }
    }
}

/// Applies [`FLOW`] and leaves the three jobs of [`FixtureJobs`] on `board`. The mid-run
/// claim is dropped without a word, as a crash would leave it; drop the board without
/// `close` afterwards for the same reason.
pub async fn write_jobs(board: &dyn JobBoard) -> HarnessResult<FixtureJobs> {
    let file = FlowFile::parse("upgrade-demo.yaml", FLOW).map_err(|p| p.lines().join("; "))?;
    let def = NewFlowVersion { name: file.name().to_owned(), hash: file.hash().to_owned(), source: FLOW.to_owned() };
    let applied = board.apply_flow(def, ApplyRule::NewUnlessCurrent).await?;
    let pin = jobboard::FlowPin { version: applied.version, hash: file.hash().to_owned() };
    let post = |who: &str| {
        let mut store = Map::new();
        store.insert("who".into(), json!(who));
        let mut job = NewJob::new("upgrade-demo", store);
        job.pin = Some(pin.clone());
        job.idempotency_key = Some(format!("fixture-{who}"));
        job
    };
    let finished = board.post(post("done")).await?;
    let mid_run = board.post(post("mid")).await?;
    let waiting = board.post(post("waiting")).await?;
    let factory = file.factory(Arc::new(Kinds::default_allowed()));

    let claim = board.claim(finished.id).await?;
    let store = factory.complete(&finished.store).map_err(|e| e.to_string())?;
    let mut engine = Engine::builder(factory.build(&store)?)
        .store(store)
        .storage(claim.storage(), finished.id, finished.id)
        .build()
        .await?;
    let outcome = engine.run().await?;
    if outcome.state != flows::FlowState::Success {
        return Err(format!("the finished job ended {:?}", outcome.state).into());
    }
    claim.consume(Outcome::Success, None).await?;

    let claim = board.claim(mid_run.id).await?;
    let store = factory.complete(&mid_run.store).map_err(|e| e.to_string())?;
    let control = Arc::new(OnceLock::new());
    let mut engine = Engine::builder(factory.build(&store)?)
        .store(store)
        .storage(claim.storage(), mid_run.id, mid_run.id)
        .listener(Arc::new(SuspendAfterGreet(control.clone())))
        .build()
        .await?;
    let _ = control.set(engine.control());
    let outcome = engine.run().await?;
    if outcome.state != flows::FlowState::Suspended {
        return Err(format!("the mid-run job ended {:?}, not suspended after greet", outcome.state).into());
    }
    drop(claim);
    if board.claim_next(&FlowFilter::flows(vec!["nothing-here".into()])).await?.is_some() {
        return Err("a filter naming no flow claimed a job".into());
    }
    Ok(FixtureJobs {
        waiting: waiting.id.to_string(),
        mid_run: mid_run.id.to_string(),
        finished: finished.id.to_string(),
    })
}

/// One etcd key of a dump, relative to the board prefix.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DumpedKey {
    /// The key after the prefix.
    pub key: String,
    /// The value, as text (every board value is JSON or empty).
    pub value: String,
    /// It was on a lease (an owner key, a conductor's registration): gone with its writer.
    #[serde(default)]
    pub leased: bool,
}

/// Every key under `prefix`, as JSON lines of [`DumpedKey`], in key order.
pub async fn dump_etcd(endpoint: &str, prefix: &str) -> HarnessResult<String> {
    let mut client = Client::connect([endpoint], None).await?;
    let response = client.get(prefix, Some(GetOptions::new().with_prefix())).await?;
    let mut out = String::new();
    for kv in response.kvs() {
        let key = kv.key_str()?.strip_prefix(prefix).ok_or("a key outside the prefix")?.to_owned();
        let value = kv.value_str()?.to_owned();
        out.push_str(&serde_json::to_string(&DumpedKey { key, value, leased: kv.lease() != 0 })?);
        out.push('\n');
    }
    Ok(out)
}

/// Writes a dump under `prefix`, as a restore from that release would find the board after
/// its conductors died: keys that were on a lease are left out (their lease ended). One
/// transaction, so that keys written together (a job's state and its queue entries) share a
/// revision, as the board's claim compares them (etcd allows 128 operations in one).
pub async fn load_etcd(endpoint: &str, prefix: &str, dump: &str) -> HarnessResult<usize> {
    let mut client = Client::connect([endpoint], None).await?;
    let mut puts = Vec::new();
    for line in dump.lines().filter(|l| !l.trim().is_empty()) {
        let entry: DumpedKey = serde_json::from_str(line)?;
        if !entry.leased {
            puts.push(TxnOp::put(format!("{prefix}{}", entry.key), entry.value, None));
        }
    }
    let loaded = puts.len();
    client.txn(Txn::new().and_then(puts)).await?;
    Ok(loaded)
}

/// Reads the fixture's job ids.
pub fn fixture_jobs(name: &str) -> HarnessResult<FixtureJobs> {
    let text = std::fs::read_to_string(fixtures_dir().join(name))?;
    Ok(serde_json::from_str::<FixtureJobs>(&text)?)
}

/// The JSON of a fixture's job ids.
pub fn jobs_json(jobs: &FixtureJobs) -> HarnessResult<String> {
    Ok(serde_json::to_string_pretty(&json!(jobs)).map(|s| s + "\n")?)
}

/// Whether a value is the fixture flow's expected result for `who`.
pub fn finish_result(who: &str) -> Value {
    json!(format!("hello {who}!"))
}
