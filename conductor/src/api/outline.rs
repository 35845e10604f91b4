//! A job's atoms in flow order, before they are in its logbook.
//!
//! The engine records an atom in the logbook when it first touches it, so the
//! logbook alone cannot say how many tasks a job has left. The flow factory
//! can: building the job's flow from its store and compiling it gives every
//! atom, in depth-first order. `GetJob` and `WatchJob` merge the two, so
//! progress reads `3/7 tasks done` from the first snapshot on.

use std::collections::{BTreeMap, HashSet};

use flows::{AtomDetail, AtomKind, Compiled, Flow, FlowFactory, LogBook, Node};
use jobboard::Job;

/// One atom of a job's flow: its name and whether it is a task or a retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutlineAtom {
    /// The atom's name.
    pub name: String,
    /// Task or retry controller.
    pub kind: AtomKind,
}

/// A job's flow as built for it: its atoms in flow order, and the compiled flow
/// (which knows what each atom provides, for the job's outputs).
#[derive(Debug, Clone)]
pub struct Shape {
    /// The atoms in flow order.
    pub atoms: Vec<OutlineAtom>,
    /// The compiled flow.
    pub compiled: Compiled,
}

/// The shape of the job's flow built by `factory` (its Rust flow or pinned version);
/// `None` if the factory refuses the job's store.
pub fn outline(factory: &FlowFactory, job: &Job) -> Option<Shape> {
    let flow = factory.build(&job.store).ok()?;
    let compiled = flows::compile(&flow, job.store.keys().cloned()).ok()?;
    let mut tasks = HashSet::new();
    collect_tasks(&flow, &mut tasks);
    let atoms = compiled
        .atom_names()
        .into_iter()
        .map(|name| OutlineAtom {
            name: name.to_owned(),
            // Compilation adds the flows' retry controllers; every other atom is a task.
            kind: if tasks.contains(name) { AtomKind::Task } else { AtomKind::Retry },
        })
        .collect();
    Some(Shape { atoms, compiled })
}

/// Every name the job's finished atoms provided, with its value (`fetch_all`).
pub fn outputs(shape: Option<&Shape>, atoms: &[AtomDetail]) -> serde_json::Map<String, serde_json::Value> {
    let Some(shape) = shape else { return serde_json::Map::new() };
    let done: BTreeMap<&str, &serde_json::Value> = atoms
        .iter()
        .filter(|a| a.state == flows::AtomState::Success)
        .filter_map(|a| a.result.as_ref().map(|r| (a.name.as_str(), r)))
        .collect();
    shape.compiled.outputs(|name| done.get(name).copied())
}

fn collect_tasks<'a>(flow: &'a Flow, tasks: &mut HashSet<&'a str>) {
    for child in flow.children() {
        match child {
            Node::Task(_) => {
                tasks.insert(child.name());
            }
            Node::Flow(sub) => collect_tasks(sub, tasks),
        }
    }
}

/// The atoms to show: the outline's order with the logbook's records, atoms
/// not yet recorded as fresh PENDING ones; without an outline, the logbook's
/// atoms in the order they started. A resumed run may have recorded several
/// flow details; the latest record of each atom wins.
pub fn merge(book: Option<&LogBook>, outline: Option<&[OutlineAtom]>) -> Vec<AtomDetail> {
    let mut recorded: BTreeMap<&str, &AtomDetail> = BTreeMap::new();
    for flow in book.iter().flat_map(|b| b.flows.values()) {
        for atom in flow.atoms.values() {
            if recorded.get(atom.name.as_str()).is_none_or(|seen| seen.version <= atom.version) {
                recorded.insert(&atom.name, atom);
            }
        }
    }
    let mut atoms = Vec::new();
    if let Some(outline) = outline {
        for entry in outline {
            match recorded.remove(entry.name.as_str()) {
                Some(atom) => atoms.push(atom.clone()),
                None => atoms.push(AtomDetail::new(entry.name.clone(), entry.kind)),
            }
        }
    }
    // Whatever the outline did not name (or all of it, without one), by start time.
    let mut rest: Vec<&AtomDetail> = recorded.into_values().collect();
    rest.sort_by(|a, b| (a.started_at.unwrap_or(u64::MAX), &a.name).cmp(&(b.started_at.unwrap_or(u64::MAX), &b.name)));
    atoms.extend(rest.into_iter().cloned());
    atoms
}

#[cfg(test)]
mod tests {
    use flows::{AtomState, FlowDetail};
    use serde_json::json;
    use uuid::Uuid;

    use super::*;

    fn chain_job(steps: u64) -> Job {
        Job {
            id: Uuid::new_v4(),
            flow: "chain".into(),
            store: json!({"steps": steps, "step_ms": 1}).as_object().cloned().unwrap_or_default(),
            priority: 0,
            idempotency_key: None,
            created_at: 0,
            state: jobboard::JobState::Unclaimed,
            owner: None,
            claims: 0,
            outcome: None,
            failure: None,
            trash_reason: None,
            cancel_requested: false,
            finished_at: None,
            pin: None,
            requires: Vec::new(),
            deadline: None,
            rerun_of: None,
            suspend_requested: false,
            claim_base: 0,
            actions: Vec::new(),
        }
    }

    #[test]
    fn outline_lists_every_atom_in_flow_order() {
        let registry = crate::demo_flows::registry();
        let chain = registry.get("chain").unwrap();
        let atoms = outline(chain, &chain_job(3)).unwrap().atoms;
        assert_eq!(atoms.len(), 3, "{atoms:?}");
        assert!(atoms.iter().all(|a| a.kind == AtomKind::Task));
        let job = Job {
            flow: "provision-cluster".into(),
            store: json!({"nodes": 2, "step_ms": 1}).as_object().cloned().unwrap_or_default(),
            ..chain_job(1)
        };
        let atoms = outline(registry.get("provision-cluster").unwrap(), &job).unwrap().atoms;
        let retries = atoms.iter().filter(|a| a.kind == AtomKind::Retry).count();
        let tasks = atoms.iter().filter(|a| a.kind == AtomKind::Task).count();
        assert_eq!((retries, tasks), (2, 5), "{atoms:?}");
    }

    #[test]
    fn merge_fills_unrecorded_atoms_as_pending() {
        let registry = crate::demo_flows::registry();
        let job = chain_job(3);
        let outline = outline(registry.get("chain").unwrap(), &job).unwrap().atoms;
        let mut book = LogBook::new(job.id, "chain");
        let mut flow = FlowDetail::new(Uuid::new_v4(), "chain");
        let mut first = AtomDetail::new(outline[0].name.clone(), AtomKind::Task);
        first.state = AtomState::Success;
        first.executions = 1;
        flow.atoms.insert(first.name.clone(), first);
        book.flows.insert(flow.id, flow);
        let atoms = merge(Some(&book), Some(&outline));
        let names: Vec<&str> = atoms.iter().map(|a| a.name.as_str()).collect();
        let expected: Vec<&str> = outline.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, expected);
        assert_eq!(atoms[0].state, AtomState::Success);
        assert_eq!(atoms[1].state, AtomState::Pending);
        assert_eq!(atoms[1].executions, 0);
    }

    #[test]
    fn merge_without_outline_orders_by_start() {
        let mut book = LogBook::new(Uuid::new_v4(), "x");
        let mut flow = FlowDetail::new(Uuid::new_v4(), "x");
        for (name, started) in [("b", Some(10)), ("a", Some(20)), ("0", None)] {
            let mut atom = AtomDetail::new(name, AtomKind::Task);
            atom.started_at = started;
            flow.atoms.insert(name.to_owned(), atom);
        }
        book.flows.insert(flow.id, flow);
        let names: Vec<String> = merge(Some(&book), None).into_iter().map(|a| a.name).collect();
        assert_eq!(names, ["b", "a", "0"]);
    }
}
