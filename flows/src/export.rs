//! Export of a compiled flow as DOT (Graphviz) and Mermaid text.
//!
//! Joins (flow entry/exit points) are drawn as small points so the nesting
//! stays visible without cluttering the atoms; decider edges are dashed.

use std::fmt::Write;

use crate::compile::{Compiled, NodeKind};

impl Compiled {
    /// The execution graph in Graphviz DOT.
    pub fn to_dot(&self) -> String {
        let mut out = format!("digraph {:?} {{\n  rankdir=LR;\n", self.name);
        for (i, n) in self.nodes.iter().enumerate() {
            let attrs = match n.kind {
                NodeKind::Task(_) => "shape=box".to_owned(),
                NodeKind::Retry { .. } => "shape=diamond".to_owned(),
                NodeKind::Join => "shape=point".to_owned(),
            };
            let _ = writeln!(out, "  n{i} [label={:?}, {attrs}];", n.name);
        }
        for (i, n) in self.nodes.iter().enumerate() {
            for &s in &n.succs {
                let dashed = self.nodes[s].deciders.iter().any(|(p, _)| *p == i);
                let style = if dashed { " [style=dashed, label=\"decider\"]" } else { "" };
                let _ = writeln!(out, "  n{i} -> n{s}{style};");
            }
        }
        out.push_str("}\n");
        out
    }

    /// The execution graph as a Mermaid flowchart.
    pub fn to_mermaid(&self) -> String {
        let mut out = String::from("flowchart LR\n");
        for (i, n) in self.nodes.iter().enumerate() {
            let label = n.name.replace('"', "'");
            let _ = match n.kind {
                NodeKind::Task(_) => writeln!(out, "  n{i}[\"{label}\"]"),
                NodeKind::Retry { .. } => writeln!(out, "  n{i}{{\"{label}\"}}"),
                NodeKind::Join => writeln!(out, "  n{i}((\" \"))"),
            };
        }
        for (i, n) in self.nodes.iter().enumerate() {
            for &s in &n.succs {
                let arrow = if self.nodes[s].deciders.iter().any(|(p, _)| *p == i) { "-.->" } else { "-->" };
                let _ = writeln!(out, "  n{i} {arrow} n{s}");
            }
        }
        out
    }
}
