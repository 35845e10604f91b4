//! Name lookup: which value each argument of each atom receives.
//!
//! The order is TaskFlow's: the atom's own injected value, then the flow's
//! store, then the nearest predecessor that provides the name, walking up
//! the flow tree from the atom. At each level only predecessors are visible:
//! earlier siblings in a linear flow (nearest first), the unique provider in
//! a graph flow (which it is linked after), nothing in an unordered flow;
//! then the level's retry. Done once at compile time, so a run never searches.

use serde_json::Value;

use crate::compile::{Binding, Builder, Child, CompileProblem, NodeKind, Source};
use crate::pattern::FlowKind;

/// What a lookup found.
enum Found {
    Node(usize),
    Nothing,
    /// Several candidates the consumer cannot choose between.
    Ambiguous(Vec<usize>),
}

impl Builder<'_> {
    /// Resolves the arguments of every task and retry.
    pub(crate) fn bind_all(&mut self) {
        for n in 0..self.nodes.len() {
            let args: Vec<(String, String, Option<Value>, Option<Value>)> = match &self.nodes[n].kind {
                NodeKind::Task(spec) => spec
                    .arguments()
                    .map(|(arg, default)| {
                        (
                            arg.to_owned(),
                            spec.source_name(arg).to_owned(),
                            default.cloned(),
                            spec.inject.get(arg).cloned(),
                        )
                    })
                    .collect(),
                NodeKind::Retry { retry, .. } => {
                    retry.controller.requires().into_iter().map(|a| (a.clone(), a, None, None)).collect()
                }
                NodeKind::Join => continue,
            };
            let mut bindings = Vec::with_capacity(args.len());
            for (arg, name, default, injected) in args {
                let source = if let Some(v) = injected {
                    Source::Inject(v)
                } else if self.store.contains(&name) {
                    Source::Store(name.clone())
                } else {
                    match self.lookup(n, &name) {
                        Found::Node(p) => Source::Atom { node: p, name: name.clone() },
                        Found::Ambiguous(providers) => {
                            self.problems.push(CompileProblem::Ambiguous {
                                name: name.clone(),
                                atom: self.nodes[n].name.clone(),
                                providers: providers.iter().map(|&p| self.nodes[p].name.clone()).collect(),
                            });
                            continue;
                        }
                        Found::Nothing => match &default {
                            Some(v) => Source::Default(v.clone()),
                            None => {
                                self.problems.push(CompileProblem::MissingInput {
                                    input: name.clone(),
                                    atom: self.nodes[n].name.clone(),
                                });
                                continue;
                            }
                        },
                    }
                };
                bindings.push(Binding { arg, source, default });
            }
            self.nodes[n].bindings = bindings;
        }
    }

    /// The nearest visible provider of `name` for atom `node`.
    fn lookup(&self, node: usize, name: &str) -> Found {
        let Some(&(mut flow, mut pos)) = self.lookup_from.get(&node) else { return Found::Nothing };
        loop {
            let info = &self.flows[flow];
            if let Some(positions) = info.provides.get(name) {
                let candidate = match info.kind {
                    Some(FlowKind::Linear) => {
                        let before = positions.partition_point(|&p| p < pos);
                        before.checked_sub(1).map(|i| vec![positions[i]]).unwrap_or_default()
                    }
                    Some(FlowKind::Graph) => positions.iter().copied().filter(|&p| p != pos).collect(),
                    _ => Vec::new(),
                };
                match candidate.len() {
                    0 => {}
                    1 => return self.inside(info.children[candidate[0]], name),
                    _ => {
                        let mut all = Vec::new();
                        for p in candidate {
                            match self.inside(info.children[p], name) {
                                Found::Node(n) => all.push(n),
                                Found::Ambiguous(ns) => all.extend(ns),
                                Found::Nothing => {}
                            }
                        }
                        return Found::Ambiguous(all);
                    }
                }
            }
            if let Some(r) = info.retry {
                if r != node && self.nodes[r].provides.names().contains(&name) {
                    return Found::Node(r);
                }
            }
            match info.parent {
                Some((f, p)) => {
                    flow = f;
                    pos = p;
                }
                None => return Found::Nothing,
            }
        }
    }

    /// The atom inside `child` that publishes `name` last (what a successor sees).
    fn inside(&self, child: Child, name: &str) -> Found {
        let Some(fid) = child.flow else { return Found::Node(child.entry) };
        let info = &self.flows[fid];
        match info.provides.get(name) {
            Some(positions) => match info.kind {
                Some(FlowKind::Linear) => {
                    let last = *positions.last().expect("provider lists are never empty");
                    self.inside(info.children[last], name)
                }
                _ if positions.len() == 1 => self.inside(info.children[positions[0]], name),
                _ => Found::Ambiguous(
                    positions
                        .iter()
                        .filter_map(|&p| match self.inside(info.children[p], name) {
                            Found::Node(n) => Some(n),
                            _ => None,
                        })
                        .collect(),
                ),
            },
            None => match info.retry {
                Some(r) => Found::Node(r),
                None => Found::Nothing,
            },
        }
    }
}
