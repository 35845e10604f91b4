//! The engine objects of a flow file's tasks, built once per file version (when its
//! factory is made), so that a job's build only wires them: per job only what depends
//! on the store is made afresh (`each` copies of tasks that publish fields, injected
//! defaults, retry controllers, links). A top-scope task that needs no name keeps its
//! whole wiring (its `TaskSpec`), which a job's build copies.

use std::sync::Arc;

use flows::{Task, TaskSpec};

use crate::build::Builder;
use crate::kinds::Kinds;
use crate::model::{Element, FlowDef, PatternDef, TaskDef};

/// One task's prepared engine object and, where nothing of it depends on the store, its wiring.
pub(crate) struct Wired {
    /// Its [`FileTask`](crate::task::FileTask), for the top scope.
    pub(crate) task: Arc<dyn Task>,
    /// Its spec at the top scope, when the task needs no name.
    pub(crate) spec: Option<TaskSpec>,
}

/// Each task's [`Wired`] for the top scope, by the task's [`TaskDef::slot`] in `def`.
pub(crate) struct Prepared {
    def: FlowDef,
    tasks: Vec<Option<Wired>>,
}

impl Prepared {
    /// Numbers every task of `def` and builds it with `kinds`; a task whose kind `kinds`
    /// lacks is left out (its job's build then reports it, as without preparation).
    pub(crate) fn new(mut def: FlowDef, kinds: &Kinds) -> Self {
        let mut count = 0;
        number(&mut def.flow, &mut count);
        let mut tasks = Vec::with_capacity(count);
        tasks.resize_with(count, || None);
        collect(&def, &def.flow, kinds, &mut tasks);
        Prepared { def, tasks }
    }

    /// The file's model.
    pub(crate) fn def(&self) -> &FlowDef {
        &self.def
    }

    /// The prepared engine task of `t` (a task of [`Prepared::def`]), if any.
    pub(crate) fn task(&self, t: &TaskDef) -> Option<&Wired> {
        self.tasks.get(t.slot).and_then(Option::as_ref)
    }
}

/// Gives every task of `p` its slot, in file order.
fn number(p: &mut PatternDef, count: &mut usize) {
    for child in &mut p.children {
        match child {
            Element::Task(t) => {
                t.slot = *count;
                *count += 1;
            }
            Element::Pattern(inner) => number(inner, count),
        }
    }
}

fn collect(def: &FlowDef, p: &PatternDef, kinds: &Kinds, out: &mut [Option<Wired>]) {
    let store = serde_json::Map::new();
    let builder = Builder::new(def, &store, kinds);
    for child in &p.children {
        match child {
            Element::Task(t) => {
                if let Ok(task) = builder.top_task(t) {
                    let task: Arc<dyn Task> = Arc::new(task);
                    let spec = builder.top_spec(t, task.clone());
                    if let Some(slot) = out.get_mut(t.slot) {
                        *slot = Some(Wired { task, spec });
                    }
                }
            }
            Element::Pattern(inner) => collect(def, inner, kinds, out),
        }
    }
}
