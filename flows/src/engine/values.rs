//! Values flowing between atoms: inputs from bindings, decider arguments and
//! the run's published results.

use std::panic::AssertUnwindSafe;

use serde_json::{Map, Value};

use super::job::panic_failure;
use super::run::Run;
use crate::compile::Source;
use crate::failure::Failure;
use crate::state::AtomState;
use crate::task::Inputs;

impl Run<'_> {
    /// False if a decider on an edge into `n` says no; a failure if one panics.
    pub(crate) fn deciders_allow(&self, n: usize) -> Result<bool, Failure> {
        let nodes = &self.shared.compiled.nodes;
        for (p, decider) in &nodes[n].deciders {
            let p = *p;
            if self.details[p].state != AtomState::Success {
                continue;
            }
            let value = if nodes[p].is_join() {
                // A subflow's "result" is the results of its last atoms, by name.
                let mut map = Map::new();
                for &q in &nodes[p].preds {
                    if let (false, Some(v)) = (nodes[q].is_join(), &self.details[q].result) {
                        map.insert(nodes[q].name.clone(), v.clone());
                    }
                }
                Value::Object(map)
            } else {
                self.details[p].result.clone().unwrap_or(Value::Null)
            };
            let decided = std::panic::catch_unwind(AssertUnwindSafe(|| decider(&value)));
            match decided {
                Ok(true) => {}
                Ok(false) => return Ok(false),
                Err(panic) => {
                    let edge = format!("decider on {} -> {}", nodes[p].name, nodes[n].name);
                    return Err(panic_failure(&edge, panic.as_ref()));
                }
            }
        }
        Ok(true)
    }

    /// The arguments of atom `n`, from its compiled bindings.
    pub(crate) fn inputs(&self, n: usize) -> Result<Inputs, Failure> {
        let nodes = &self.shared.compiled.nodes;
        let mut map = Map::new();
        for b in &nodes[n].bindings {
            let value = match &b.source {
                Source::Inject(v) | Source::Default(v) => Some(v.clone()),
                Source::Store(key) => self.engine.store.get(key).cloned(),
                Source::Atom { node, name } => {
                    let d = &self.details[*node];
                    let visible = matches!(d.state, AtomState::Success | AtomState::Failure | AtomState::Reverting);
                    d.result.as_ref().filter(|_| visible).and_then(|r| nodes[*node].provides.extract(name, r)).cloned()
                }
            };
            match value.or_else(|| b.default.clone()) {
                Some(v) => {
                    map.insert(b.arg.clone(), v);
                }
                None => {
                    return Err(Failure::new(
                        Failure::NOT_FOUND,
                        format!("input {:?} of {} has no value", b.arg, nodes[n].name),
                    ))
                }
            }
        }
        Ok(Inputs::new(map))
    }

    /// Published values of every SUCCESS atom, later atoms (in node order) winning.
    pub(crate) fn results(&self) -> Map<String, Value> {
        let mut out = Map::new();
        for (node, detail) in self.shared.compiled.nodes.iter().zip(&self.details) {
            if node.is_join() || detail.state != AtomState::Success {
                continue;
            }
            if let Some(result) = &detail.result {
                for name in node.provides.names() {
                    if let Some(v) = node.provides.extract(name, result) {
                        out.insert(name.to_owned(), v.clone());
                    }
                }
            }
        }
        out
    }
}
