//! Flow files on the board through the API: apply, get, history, delete, graph, and
//! the file flows `ListFlows` shows.
//!
//! An apply checks every file first (every problem of every file, positioned) and
//! refuses the whole request if any has one, so nothing is half applied. A name is
//! one flow across the fleet: a file may not take the name of a Rust flow of this
//! conductor or of any live conductor (`ConductorInfo::rust_flows`).

use std::collections::BTreeMap;

use flowfile::FlowFile;
use jobboard::{ApplyRule, NewFlowVersion};
use proto::pb;
use tonic::Status;

use super::convert::{definition_to_pb, flow_to_pb};
use super::service::parse_store;
use super::status::{from_board, from_catalog, from_registry, invalid};
use super::{limits, ApiState};
use crate::catalog::Catalog;

/// The board's file flows as `ListFlows` shows them (from the catalog's memory).
pub fn file_flows(catalog: &Catalog) -> Vec<pb::Flow> {
    catalog
        .current()
        .values()
        .filter_map(|current| {
            let parsed = current.parsed.as_ref().ok()?;
            let mut flow = flow_to_pb(&parsed.factory);
            flow.kind = "file".to_owned();
            flow.version = current.version.version;
            flow.runs_here = parsed.missing.is_empty();
            Some(flow)
        })
        .collect()
}

/// `ApplyFlows`.
pub async fn apply(state: &ApiState, req: pb::ApplyFlowsRequest) -> Result<pb::ApplyFlowsResponse, Status> {
    if req.files.is_empty() {
        return Err(invalid("files", "give at least one flow file"));
    }
    let mut problems = Vec::new();
    let mut parsed = Vec::new();
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    for file in &req.files {
        match FlowFile::parse(&file.file, &file.text) {
            Ok(flow) => {
                if let Some(first) = names.insert(flow.name().to_owned(), file.file.clone()) {
                    problems.push(format!("{}: name: flow {:?} is also declared by {first}", file.file, flow.name()));
                }
                parsed.push((file, flow));
            }
            Err(found) => problems.extend(found.lines()),
        }
    }
    if !problems.is_empty() {
        let s = if problems.len() == 1 { "" } else { "s" };
        let message = format!("{} problem{s}; nothing applied:\n{}", problems.len(), problems.join("\n"));
        return Err(Status::invalid_argument(limits::message(message)));
    }
    let board = state.board()?;
    let conductors = board.conductors().await.map_err(|e| from_board(&e))?;
    for (file, flow) in &parsed {
        let name = flow.name();
        let here = state.catalog.rust().get(name).is_some().then(|| "this conductor".to_owned());
        let elsewhere = conductors.iter().find(|c| c.rust_flows.iter().any(|f| f == name)).map(|c| c.name.clone());
        if let Some(owner) = here.or(elsewhere) {
            return Err(Status::failed_precondition(format!(
                "{}: flow file {name:?} takes the name of the Rust flow {name:?} built into conductor {owner}; \
                 rename the file's flow; nothing applied",
                file.file
            )));
        }
    }
    let mut applied = Vec::new();
    for (file, flow) in parsed {
        let def =
            NewFlowVersion { name: flow.name().to_owned(), hash: flow.hash().to_owned(), source: file.text.clone() };
        let done = board.apply_flow(def, ApplyRule::NewUnlessCurrent).await.map_err(|e| from_board(&e))?;
        tracing::info!(flow = flow.name(), version = done.version, created = done.created, "flow file applied");
        applied.push(pb::AppliedFlow {
            file: file.file.clone(),
            name: flow.name().to_owned(),
            version: done.version,
            created: done.created,
            current: done.current,
            hash: flow.hash().to_owned(),
        });
    }
    // This conductor sees its own apply at once; the others hear of it through the board.
    if let Err(error) = state.catalog.refresh(board.as_ref()).await {
        tracing::warn!(%error, "cannot re-read the flow definitions after an apply");
    }
    Ok(pb::ApplyFlowsResponse { flows: applied })
}

/// `GetFlow`.
pub async fn get(state: &ApiState, req: pb::GetFlowRequest) -> Result<pb::FlowDefinition, Status> {
    let board = state.board()?;
    let def = board.flow_version(&req.name, req.version).await.map_err(|e| from_board(&e))?;
    let current = match req.version {
        None => true,
        Some(_) => board.flow_version(&req.name, None).await.map_err(|e| from_board(&e))?.version == def.version,
    };
    Ok(definition_to_pb(&def, current, true))
}

/// `FlowHistory`.
pub async fn history(state: &ApiState, name: &str) -> Result<pb::FlowHistoryResponse, Status> {
    let board = state.board()?;
    let versions = board.flow_history(name).await.map_err(|e| from_board(&e))?;
    let current = board.flow_version(name, None).await.map_err(|e| from_board(&e))?.version;
    Ok(pb::FlowHistoryResponse {
        versions: versions.iter().map(|v| definition_to_pb(v, v.version == current, false)).collect(),
    })
}

/// `DeleteFlow`.
pub async fn delete(state: &ApiState, name: &str) -> Result<(), Status> {
    let board = state.board()?;
    board.delete_flow(name).await.map_err(|e| from_board(&e))?;
    tracing::info!(flow = name, "flow file deleted");
    if let Err(error) = state.catalog.refresh(board.as_ref()).await {
        tracing::warn!(%error, "cannot re-read the flow definitions after a delete");
    }
    Ok(())
}

/// `FlowGraph`: the flow built from the given inputs over its defaults, exported.
pub async fn graph(state: &ApiState, req: pb::FlowGraphRequest) -> Result<pb::FlowGraphResponse, Status> {
    let board = state.board()?;
    let resolved =
        state.catalog.for_post(board.as_ref(), &req.name, req.version).await.map_err(|e| from_catalog(&e))?;
    let factory = resolved.factory.factory();
    let store = parse_store(&req.store_json)?;
    let store = factory.complete(&store).map_err(|e| {
        let status = from_registry(&e);
        Status::invalid_argument(format!(
            "the graph of flow {:?} is built from its inputs; give the missing ones with --store K=V: {}",
            req.name,
            status.message()
        ))
    })?;
    let flow = factory.build(&store).map_err(|e| from_registry(&e))?;
    let compiled = flows::compile(&flow, store.keys().cloned())
        .map_err(|e| Status::invalid_argument(format!("flow {:?} does not compile: {e}", req.name)))?;
    let text = match req.format.as_str() {
        "" | "dot" => compiled.to_dot(),
        "mermaid" => compiled.to_mermaid(),
        other => return Err(invalid("format", format_args!("{}: expected dot or mermaid", limits::shown(other)))),
    };
    Ok(pb::FlowGraphResponse { text })
}
