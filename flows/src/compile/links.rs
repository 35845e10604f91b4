//! Graph flows: explicit links plus links inferred from provides/requires,
//! and the cycle check that refuses a graph before anything runs.

use std::collections::{HashMap, HashSet};

use super::{Builder, Child, CompileProblem};
use crate::pattern::{Decider, Flow};

impl Builder<'_> {
    /// Adds a graph flow's explicit and inferred links, refusing cycles.
    pub(super) fn graph_edges(
        &mut self,
        flow: &Flow,
        children: &[Child],
        child_requires: &[Vec<String>],
        provides: &HashMap<String, Vec<usize>>,
    ) {
        let position: HashMap<&str, usize> = flow.children.iter().enumerate().map(|(i, c)| (c.name(), i)).collect();
        let mut links: Vec<(usize, usize, Option<Decider>)> = Vec::new();
        let mut seen: HashSet<(usize, usize)> = HashSet::new();
        for link in &flow.links {
            let from = position.get(link.from.as_str()).copied();
            let to = position.get(link.to.as_str()).copied();
            for (name, found) in [(&link.from, from), (&link.to, to)] {
                if found.is_none() {
                    self.problems.push(CompileProblem::UnknownLink { flow: flow.name.clone(), name: name.clone() });
                }
            }
            if let (Some(from), Some(to)) = (from, to) {
                seen.insert((from, to));
                links.push((from, to, link.decider.clone()));
            }
        }
        for (pos, reqs) in child_requires.iter().enumerate() {
            for name in reqs {
                let Some(candidates) = provides.get(name) else { continue };
                let others: Vec<usize> = candidates.iter().copied().filter(|&q| q != pos).collect();
                if others.len() == 1 {
                    if seen.insert((others[0], pos)) {
                        links.push((others[0], pos, None));
                    }
                } else if others.len() > 1 && !self.store.contains(name) {
                    self.problems.push(CompileProblem::Ambiguous {
                        name: name.clone(),
                        atom: flow.children[pos].name().to_owned(),
                        providers: others.iter().map(|&q| flow.children[q].name().to_owned()).collect(),
                    });
                }
            }
        }
        if let Some(cycle) = find_cycle(children.len(), &links) {
            let names = cycle.into_iter().map(|i| flow.children[i].name().to_owned()).collect();
            self.problems.push(CompileProblem::Cycle(names));
            return;
        }
        for (from, to, decider) in links {
            let (u, v) = (children[from].exit, children[to].entry);
            self.edge(u, v);
            if let Some(d) = decider {
                self.nodes[v].deciders.push((u, d));
            }
        }
    }
}

/// The nodes left on cycles (and between cycles) of a small graph, if any.
fn find_cycle(n: usize, links: &[(usize, usize, Option<Decider>)]) -> Option<Vec<usize>> {
    let mut indeg = vec![0usize; n];
    let mut outdeg = vec![0usize; n];
    let mut succs = vec![Vec::new(); n];
    let mut preds = vec![Vec::new(); n];
    for (u, v, _) in links {
        indeg[*v] += 1;
        outdeg[*u] += 1;
        succs[*u].push(*v);
        preds[*v].push(*u);
    }
    let mut removed = vec![false; n];
    // Peel sources, then sinks: what is left sits on a cycle.
    let mut stack: Vec<usize> = (0..n).filter(|&i| indeg[i] == 0).collect();
    while let Some(u) = stack.pop() {
        removed[u] = true;
        for &v in &succs[u] {
            indeg[v] -= 1;
            if indeg[v] == 0 {
                stack.push(v);
            }
        }
    }
    for u in 0..n {
        outdeg[u] = succs[u].iter().filter(|&&v| !removed[v]).count();
    }
    let mut stack: Vec<usize> = (0..n).filter(|&i| !removed[i] && outdeg[i] == 0).collect();
    for &u in &stack {
        removed[u] = true;
    }
    while let Some(u) = stack.pop() {
        for &p in &preds[u] {
            if !removed[p] {
                outdeg[p] -= 1;
                if outdeg[p] == 0 {
                    removed[p] = true;
                    stack.push(p);
                }
            }
        }
    }
    let left: Vec<usize> = (0..n).filter(|&i| !removed[i]).collect();
    (!left.is_empty()).then_some(left)
}
