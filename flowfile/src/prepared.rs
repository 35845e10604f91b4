//! The engine objects of a flow file's tasks, built once per file version (when its
//! factory is made), so that a job's build only wires them: per job only what depends
//! on the store is made afresh (`each` copies of tasks that publish fields, injected
//! defaults, retry controllers, links).

use std::sync::Arc;

use flows::Task;

use crate::build::Builder;
use crate::kinds::Kinds;
use crate::model::{Element, FlowDef, PatternDef, TaskDef};

/// Each task's [`FileTask`](crate::task::FileTask) for the top scope, by the address of its [`TaskDef`] in
/// `def` (boxed, so the addresses stay put), sorted for a binary search.
pub(crate) struct Prepared {
    def: Box<FlowDef>,
    tasks: Vec<(usize, Arc<dyn Task>)>,
}

impl Prepared {
    /// Builds every task of `def` with `kinds`; a task whose kind `kinds` lacks is left
    /// out (its job's build then reports it, as without preparation).
    pub(crate) fn new(def: FlowDef, kinds: &Kinds) -> Self {
        let def = Box::new(def);
        let mut tasks = Vec::new();
        collect(&def, &def.flow, kinds, &mut tasks);
        tasks.sort_unstable_by_key(|(at, _)| *at);
        Prepared { def, tasks }
    }

    /// The file's model.
    pub(crate) fn def(&self) -> &FlowDef {
        &self.def
    }

    /// The prepared engine task of `t` (a task of [`Prepared::def`]), if any.
    pub(crate) fn task(&self, t: &TaskDef) -> Option<&Arc<dyn Task>> {
        let at = std::ptr::from_ref(t) as usize;
        self.tasks.binary_search_by_key(&at, |(a, _)| *a).ok().map(|i| &self.tasks[i].1)
    }
}

fn collect(def: &FlowDef, p: &PatternDef, kinds: &Kinds, out: &mut Vec<(usize, Arc<dyn Task>)>) {
    let store = serde_json::Map::new();
    let builder = Builder::new(def, &store, kinds);
    for child in &p.children {
        match child {
            Element::Task(t) => {
                if let Ok(task) = builder.top_task(t) {
                    let task: Arc<dyn Task> = Arc::new(task);
                    out.push((std::ptr::from_ref(t) as usize, task));
                }
            }
            Element::Pattern(inner) => collect(def, inner, kinds, out),
        }
    }
}
