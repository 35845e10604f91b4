//! Golden errors: each validation rule, with its position and path.

use super::problems;

#[track_caller]
fn golden(text: &str, expected: &[&str]) {
    assert_eq!(problems(text), expected, "problems of:\n{text}");
}

#[test]
fn yaml_syntax_error_has_a_position() {
    golden(
        "name: x\nflow: {linear: [\n",
        &["f.yaml:3:1: YAML syntax: while parsing a node, did not find expected node content"],
    );
}

#[test]
fn unknown_keys_and_bad_names_are_refused_with_suggestions() {
    golden(
        "name: Bad Name\ndescripton: hi\nflow:\n  linear:\n    - task: a\n      kind: noop\n      provide: x\n",
        &[
            r#"f.yaml:1:7: name: "Bad Name" is not a valid flow name (use a-z, 0-9, '.', '_' and '-')"#,
            r#"f.yaml:2:1: descripton: unknown key "descripton"; did you mean "description"?"#,
            r#"f.yaml:7:7: flow.linear[0].provide: unknown key "provide"; did you mean "provides"?"#,
        ],
    );
}

#[test]
fn kinds_settings_and_task_names() {
    golden(
        "name: x\nflow:\n  linear:\n    - task: a\n      kind: nop\n    - task: b\n      kind: sleep\n      with: {duraton: 1s}\n    - task: c\n      kind: sleep\n      with: {duration: soon}\n    - task: a\n      kind: fail\n",
        &[
            r#"f.yaml:5:13: flow.linear[0].kind: unknown kind "nop"; did you mean "noop"?; known kinds: await, fail, http, noop, record, remote, shell, sleep"#,
            r#"f.yaml:8:13: flow.linear[1].with: missing required setting "duration""#,
            r#"f.yaml:8:14: flow.linear[1].with.duraton: sleep takes no setting "duraton"; did you mean "duration"?; it takes: duration"#,
            r#"f.yaml:11:14: flow.linear[2].with.duration: "soon" is not a duration such as 500ms or 2s (expected number at 0)"#,
            r#"f.yaml:12:13: flow.linear[3].task: duplicate task name "a" (first at line 4, column 13)"#,
        ],
    );
}

#[test]
fn pattern_shapes_after_outside_graphs_timeouts_and_retry_strategies() {
    golden(
        "name: x\nflow:\n  linear:\n    - linear: []\n      graph: []\n    - {kind: noop}\n    - 5\n    - task: t\n      kind: noop\n      after: [a]\n      timeout: later\n  retry: {times: 0, for_each: [1]}\n",
        &[
            "f.yaml:5:7: flow.linear[0].graph: a pattern has exactly one of linear, unordered or graph",
            "f.yaml:6:7: flow.linear[1]: a task needs a name: add `task: NAME`",
            "f.yaml:7:7: flow.linear[2]: expected a task (task: NAME) or a pattern (linear, unordered or graph), found a scalar",
            "f.yaml:10:7: flow.linear[3].after: only tasks and patterns inside a graph take `after` links",
            r#"f.yaml:11:16: flow.linear[3].timeout: "later" is not a duration such as 500ms, 2s or 1m (expected number at 0)"#,
            "f.yaml:12:21: flow.retry.for_each: a retry has only one of times, for_each, for_each_from, always_revert, always_revert_all",
        ],
    );
}

#[test]
fn retry_values_references_reverts_and_provides_paths() {
    golden(
        "name: x\nflow:\n  linear:\n    - task: a\n      kind: noop\n      with: {result: \"${a + 1}\"}\n      retry: {times: 2, backoff: 0.5, jitter: 2}\n      revert: undo\n    - task: b\n      kind: noop\n      with: {result: \"${secret.../x}\"}\n      provides: {x: id}\n    - task: c\n      kind: noop\n      retry: {times: 0}\n",
        &[
            r#"f.yaml:6:14: flow.linear[0].with.result: "${a + 1}" is not a reference: use ${name} or ${name.field} (no expressions)"#,
            "f.yaml:7:25: flow.linear[0].retry.backoff: needs a `delay` to act on",
            "f.yaml:7:34: flow.linear[0].retry.backoff: the backoff factor is at least 1 (1 keeps the delay fixed)",
            "f.yaml:7:39: flow.linear[0].retry.jitter: needs a `delay` to act on",
            "f.yaml:7:47: flow.linear[0].retry.jitter: jitter is a fraction of the delay, from 0 to 1",
            r#"f.yaml:8:15: flow.linear[0].revert: expected `none` or a mapping with kind and with, found "undo""#,
            r#"f.yaml:11:14: flow.linear[1].with.result: "${secret.../x}" is not a reference: use ${name} or ${name.field} (no expressions)"#,
            r#"f.yaml:12:21: flow.linear[1].provides.x: "id" is not a path such as $.id or $.items[0].name"#,
            "f.yaml:15:22: flow.linear[2].retry.times: times counts attempts in all: at least 1",
        ],
    );
}

#[test]
fn typed_inputs_and_each_sources() {
    golden(
        "name: x\ninputs:\n  nodes: {type: array, items: {type: strin}}\n  n: {type: integer, default: 1.5}\n  flag: {type: boolean, default: yes}\n  s: {type: string, default: on}\nflow:\n  unordered:\n    - each: {in: node, as: x}\n      linear: []\n    - each: {in: s, as: x}\n      linear: []\n",
        &[
            r#"f.yaml:3:38: inputs.nodes.items.type: unknown type "strin"; did you mean "string"?; one of string, integer, number, boolean, object, array"#,
            r#"f.yaml:4:31: inputs.n.default: expected a whole number, found "1.5""#,
            // YAML 1.1 would have read `yes` as true; here a boolean is `true` or `false`, nothing else.
            r#"f.yaml:5:34: inputs.flag.default: expected true or false, found "yes""#,
            r#"f.yaml:9:18: flow.unordered[0].each.in: "node" is not a declared input; did you mean "nodes"?"#,
            r#"f.yaml:11:18: flow.unordered[1].each.in: input "s" is not an array or an integer"#,
        ],
    );
}

#[test]
fn graph_links_and_conditions() {
    golden(
        "name: x\nflow:\n  graph:\n    - task: a\n      kind: noop\n      after: [b, {id: c, when: {equal: {path: $.ok, value: true}}}]\n    - task: b\n      kind: noop\n      after: {id: a, when: {equals: {path: ok, value: 1}}}\n    - task: d\n      kind: noop\n      after: [d, e]\n",
        &[
            r#"f.yaml:6:33: flow.graph[0].after[1].when.equal: unknown key "equal"; did you mean "equals"?"#,
            r#"f.yaml:9:44: flow.graph[1].after.when.equals.path: "ok" is not a path such as $.id or $.items[0].name"#,
            "f.yaml:12:15: flow.graph[2].after[0]: a task cannot run after itself",
            r#"f.yaml:12:18: flow.graph[2].after[1]: "e" is not a task or named pattern of this graph"#,
        ],
    );
}

#[test]
fn engine_compile_problems_are_named_by_task() {
    golden(
        "name: x\nflow:\n  linear:\n    - task: a\n      kind: noop\n      with: {result: \"${missing}\"}\n",
        &[
            r#"f.yaml:4:7: flow.linear[0]: input "missing" required by "a" is neither provided by a predecessor nor in the store"#,
        ],
    );
    golden(
        "name: x\nflow:\n  graph:\n    - task: a\n      kind: noop\n      provides: p\n      requires: q\n    - task: c\n      kind: noop\n      provides: q\n    - task: b\n      kind: noop\n      provides: q\n",
        &[r#"f.yaml:4:7: flow.graph[0]: "a" cannot tell which of c, b provides "q""#],
    );
    golden(
        "name: x\nflow:\n  graph:\n    - task: a\n      kind: noop\n      provides: p\n      requires: q\n    - task: b\n      kind: noop\n      provides: q\n      with: {result: \"${p}\"}\n",
        &["f.yaml:4:7: flow.graph[0]: cycle between a, b"],
    );
}

#[test]
fn yaml_1_1_booleans_stay_text_where_text_is_expected() {
    let (kinds, _) = super::kinds();
    let text = "name: x\ninputs:\n  mode: {type: string, default: on, enum: [on, off, yes, no]}\nflow:\n  linear:\n    - task: no\n      kind: fail\n      with: {message: yes}\n";
    let file = super::parse(text, &kinds);
    let mode = &file.inputs()["mode"];
    assert_eq!(mode.default, Some(serde_json::json!("on")));
    assert_eq!(
        mode.one_of,
        Some(vec![
            serde_json::json!("on"),
            serde_json::json!("off"),
            serde_json::json!("yes"),
            serde_json::json!("no")
        ])
    );
    assert!(file.canonical().contains(r#""message":"yes""#), "{}", file.canonical());
    assert!(file.canonical().contains(r#""name":"no""#), "{}", file.canonical());
}
