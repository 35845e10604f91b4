//! This conductor's own flows: `word-count` (split, then count, then report).
//!
//! Tasks are plain async functions of their named inputs (`flows::task_fn`);
//! a flow factory declares typed inputs (checked when a job is posted) and
//! builds the flow from a job's store.

use std::collections::BTreeMap;

use flows::{task_fn, Failure, Flow, FlowFactory, FlowRegistry, InputSpec};
use serde_json::{json, Value};

/// The registry this conductor runs.
pub fn registry() -> FlowRegistry {
    let mut registry = FlowRegistry::new();
    registry.register(word_count());
    registry
}

/// `word-count`: the words of `text`, counted, and the most frequent reported.
fn word_count() -> FlowFactory {
    FlowFactory::new("word-count", |_store| {
        let split = task_fn("split", |ctx| async move {
            let text = ctx.inputs().require("text")?.as_str().unwrap_or_default().to_owned();
            Ok(json!(text.split_whitespace().map(str::to_lowercase).collect::<Vec<_>>()))
        })
        .requires(["text"])
        .provides("words");
        let count = task_fn("count", |ctx| async move {
            let words = ctx.inputs().require("words")?.as_array().cloned().unwrap_or_default();
            let mut counts = BTreeMap::<String, u64>::new();
            for word in words.iter().filter_map(Value::as_str) {
                *counts.entry(word.to_owned()).or_default() += 1;
            }
            Ok(json!(counts))
        })
        .requires(["words"])
        .provides("counts");
        let report = task_fn("report", |ctx| async move {
            let counts = ctx.inputs().require("counts")?.as_object().cloned().unwrap_or_default();
            let top = counts.iter().max_by_key(|(word, n)| (n.as_u64().unwrap_or(0), std::cmp::Reverse(word.as_str())));
            match top {
                Some((word, n)) => Ok(json!({"top": word, "times": n})),
                None => Err(Failure::new("EmptyText", "there are no words to count")),
            }
        })
        .requires(["counts"])
        .provides("report");
        Ok(Flow::linear("word-count").add(split).add(count).add(report))
    })
    .input("text", InputSpec::string().describe("the text whose words are counted"))
    .describe("split a text into words, count them, report the most frequent")
}
