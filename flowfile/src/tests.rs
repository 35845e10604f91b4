//! Tests of flow files: golden errors with positions, and flows built from
//! files run in-process on `flows::Engine` with a `MemoryStorage` logbook.

mod awaiting;
mod errors;
mod examples;
mod for_each_from;
mod fuzz;
mod patterns;
mod revert;
mod values;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use flows::{Engine, Failure, FlowState, LogBook, MemoryStorage, RunOutcome, Storage};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::{Call, FlowFile, Kind, Kinds};

/// Every call a [`Record`] kind saw: `"<atom> <label>"` (label from `with.label`),
/// reverts as `"revert <atom> <label>"`.
#[derive(Default, Clone)]
pub(crate) struct Calls(Arc<Mutex<Vec<String>>>);

impl Calls {
    pub(crate) fn all(&self) -> Vec<String> {
        self.0.lock().expect("calls lock").clone()
    }
}

/// A test-only kind that records its calls and returns `with.result` (or its whole `with`).
pub(crate) struct Record(pub(crate) Calls);

#[async_trait]
impl Kind for Record {
    fn name(&self) -> &'static str {
        "record"
    }
    fn settings(&self) -> &'static [&'static str] {
        &["label", "result", "value"]
    }
    fn check(&self, _with: &Map<String, Value>) -> Vec<String> {
        Vec::new()
    }
    async fn run(&self, mut with: Map<String, Value>, call: &Call) -> Result<Value, Failure> {
        let label =
            with.get("label").map(|l| l.as_str().map_or_else(|| l.to_string(), str::to_owned)).unwrap_or_default();
        let prefix = if call.reverting { "revert " } else { "" };
        self.0 .0.lock().expect("calls lock").push(format!("{prefix}{} {label}", call.atom).trim_end().to_owned());
        Ok(with.remove("result").unwrap_or(Value::Object(with)))
    }
}

/// Every built-in kind plus `record`, and the calls it records.
pub(crate) fn kinds() -> (Kinds, Calls) {
    let calls = Calls::default();
    (Kinds::all().with(Record(calls.clone())), calls)
}

/// Parses `text`, panicking with the problems if it does not parse.
pub(crate) fn parse(text: &str, kinds: &Kinds) -> FlowFile {
    FlowFile::parse_with("test.yaml", text, kinds).unwrap_or_else(|p| panic!("does not parse:\n{p}"))
}

/// The problems of a file that must not parse, as lines.
pub(crate) fn problems(text: &str) -> Vec<String> {
    let (kinds, _) = kinds();
    match FlowFile::parse_with("f.yaml", text, &kinds) {
        Ok(_) => panic!("parsed, but should not have:\n{text}"),
        Err(p) => p.lines(),
    }
}

/// A finished run and its logbook.
pub(crate) struct Ran {
    pub(crate) outcome: RunOutcome,
    pub(crate) book: LogBook,
}

/// Builds the file's flow through its factory for `store` and runs it to the end.
pub(crate) async fn run(file: &FlowFile, store: Value, kinds: Kinds) -> Ran {
    let store: Map<String, Value> = store.as_object().cloned().unwrap_or_default();
    // As a conductor does: the store completed with the declared defaults feeds both.
    let factory = file.factory(Arc::new(kinds));
    let store = factory.complete(&store).unwrap_or_else(|e| panic!("inputs: {e}"));
    let flow = factory.build(&store).unwrap_or_else(|e| panic!("builds: {e}"));
    let storage = Arc::new(MemoryStorage::new());
    let (book, flow_id) = (Uuid::new_v4(), Uuid::new_v4());
    storage.save_book(&LogBook::new(book, "test")).await.expect("book saved");
    let mut engine = Engine::builder(flow)
        .store(store)
        .storage(storage.clone(), book, flow_id)
        .max_concurrency(4)
        .build()
        .await
        .unwrap_or_else(|e| panic!("engine builds: {e}"));
    let outcome = engine.run().await.expect("engine runs");
    let book = storage.load_book(book).await.expect("book loads").expect("book exists");
    Ran { outcome, book }
}

#[track_caller]
pub(crate) fn assert_state(ran: &Ran, state: FlowState) {
    assert_eq!(ran.outcome.state, state, "outcome: {:#?}", ran.outcome);
}
