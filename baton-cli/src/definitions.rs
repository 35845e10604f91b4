//! `baton flows apply|get|history|delete|graph`: flow files stored on the board.
//!
//! `apply` checks every file here first, exactly as `flows validate` does: a file with a
//! problem refuses them all (every problem on stderr as `FILE:LINE:COLUMN: path: what`,
//! exit 1) and nothing is sent. The conductor checks them again, and applies them only if
//! every one is sound. Each file is stored by the hash of its canonical form, so applying
//! an unchanged file is a no-op, reported as `unchanged`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, Context};
use flowfile::FlowFile;
use proto::pb;
use serde_json::{json, Value};

use crate::args::{FlowsCommand, GraphFormat, Output};
use crate::commands::{emit, print_json};
use crate::fleet::Fleet;
use crate::output::table;
use crate::report::io_words;
use crate::time::format_time;
use crate::{inputs, store};

/// Runs one `baton flows` subcommand but `validate` (which needs no server).
pub async fn run(fleet: &Fleet, command: FlowsCommand, out: Output) -> anyhow::Result<ExitCode> {
    match command {
        FlowsCommand::Validate { .. } => Err(anyhow!("flows validate runs offline; it is not sent to a conductor")),
        FlowsCommand::Apply { files } => apply(fleet, &files, out).await,
        FlowsCommand::Get { name, version } => {
            let name = &name;
            let def = fleet.call(|c| async move { c.get_flow(name.as_str(), version).await }).await;
            let def = def.with_context(|| format!("cannot get flow {name}"))?;
            match out {
                Output::Json => print_json(&definition_json(&def, true))?,
                Output::Table => emit(&def.source)?,
            }
            Ok(ExitCode::SUCCESS)
        }
        FlowsCommand::History { name } => {
            let name = &name;
            let versions = fleet.call(|c| async move { c.flow_history(name.as_str()).await }).await;
            let versions = versions.with_context(|| format!("cannot read the history of flow {name}"))?;
            match out {
                Output::Json => print_json(&versions.iter().map(|v| definition_json(v, false)).collect())?,
                Output::Table => {
                    let rows = versions.iter().map(|v| {
                        let current = if v.current { "current" } else { "" };
                        vec![
                            v.version.to_string(),
                            format_time(v.applied_ms),
                            v.hash[..12.min(v.hash.len())].to_owned(),
                            current.to_owned(),
                        ]
                    });
                    emit(&table(&["VERSION", "APPLIED", "HASH", ""], rows))?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        FlowsCommand::Delete { name } => {
            let name = &name;
            fleet
                .call(|c| async move { c.delete_flow(name.as_str()).await })
                .await
                .with_context(|| format!("cannot delete flow {name}"))?;
            match out {
                Output::Json => print_json(&json!({"name": name, "deleted": true}))?,
                Output::Table => emit(&format!("flow {name} deleted\n"))?,
            }
            Ok(ExitCode::SUCCESS)
        }
        FlowsCommand::Graph { name, version, format, store, store_file } => {
            let mut inputs_given = store::read_optional(store_file.as_deref())?;
            if !store.is_empty() {
                let flows = fleet.call(|c| async move { c.list_flows().await }).await.context("cannot list flows")?;
                let schema = flows.iter().find(|f| f.name == name).map(inputs::schema_of).unwrap_or_default();
                inputs_given.extend(inputs::coerce_pairs(&schema, &store));
            }
            let request = &pb::FlowGraphRequest {
                name: name.clone(),
                version,
                format: match format {
                    GraphFormat::Dot => "dot",
                    GraphFormat::Mermaid => "mermaid",
                }
                .to_owned(),
                store_json: Value::Object(inputs_given).to_string(),
            };
            let text = fleet.call(|c| async move { c.flow_graph(request.clone()).await }).await;
            let text = text.with_context(|| format!("cannot draw flow {name}"))?;
            match out {
                Output::Json => print_json(&json!({"name": name, "format": request.format, "graph": text}))?,
                Output::Table => emit(&text)?,
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Checks every file here, then applies them all in one request.
async fn apply(fleet: &Fleet, files: &[PathBuf], out: Output) -> anyhow::Result<ExitCode> {
    let mut problems = Vec::new();
    let mut texts = Vec::new();
    for path in files {
        let file = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => {
                if let Err(found) = FlowFile::parse(&file, &text) {
                    problems.extend(found.lines());
                }
                texts.push(pb::FlowFileText { file, text });
            }
            Err(error) => problems.push(format!("{file}:1:1: cannot read the file: {}", io_words(&error))),
        }
    }
    if !problems.is_empty() {
        for line in &problems {
            eprintln!("{line}");
        }
        let s = if problems.len() == 1 { "" } else { "s" };
        return Err(anyhow!("{} problem{s} in the flow files; nothing applied", problems.len()));
    }
    let texts = &texts;
    let applied = fleet.call(|c| async move { c.apply_flows(texts.clone()).await }).await;
    let applied = applied.context("cannot apply the flow files")?;
    match out {
        Output::Json => print_json(
            &applied
                .iter()
                .map(|a| {
                    json!({
                        "file": a.file, "name": a.name, "version": a.version, "created": a.created,
                        "current": a.current, "hash": a.hash,
                    })
                })
                .collect(),
        )?,
        Output::Table => {
            let lines: String = applied
                .iter()
                .map(|a| {
                    let what = if a.created { "created" } else { "unchanged" };
                    format!("{}: flow {} version {} {what}\n", a.file, a.name, a.version)
                })
                .collect();
            emit(&lines)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn definition_json(def: &pb::FlowDefinition, with_source: bool) -> Value {
    let mut value = json!({
        "name": def.name, "version": def.version, "hash": def.hash, "applied_at": def.applied_ms,
        "current": def.current,
    });
    if with_source {
        value["source"] = json!(def.source);
    }
    value
}
