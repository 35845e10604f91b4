//! Name lookup: inject, then store, then the nearest predecessor; unordered
//! siblings do not see each other; rebind, optional defaults, provides_fields.

use serde_json::json;

use super::{ok, run};
use crate::{task_fn, CompileProblem, ExecuteContext, Flow, FlowState};

fn echo(name: &str, args: &[&'static str]) -> crate::TaskSpec {
    let args: Vec<&'static str> = args.to_vec();
    task_fn(name, move |ctx: ExecuteContext| {
        let args = args.clone();
        async move {
            let mut out = serde_json::Map::new();
            for a in args {
                out.insert(a.to_owned(), ctx.get(a).cloned().unwrap_or(json!(null)));
            }
            Ok(serde_json::Value::Object(out))
        }
    })
}

#[tokio::test]
async fn inject_beats_store_beats_predecessors_and_nearest_predecessor_wins() {
    let flow = Flow::linear("f")
        .add(ok("p1").provides("x"))
        .add(ok("p2").provides("x"))
        .add(ok("ps").provides("s"))
        .add(echo("near", &["x"]).requires(["x"]).provides("near"))
        .add(echo("stored", &["s"]).requires(["s"]).provides("stored"))
        .add(echo("injected", &["s"]).requires(["s"]).inject("s", json!("own")).provides("injected"));
    let ran = run(flow, json!({ "s": "from store" }), 1).await;
    assert_eq!(ran.outcome.state, FlowState::Success);
    let r = &ran.outcome.results;
    assert_eq!(r["near"], json!({ "x": "p2" }));
    assert_eq!(r["stored"], json!({ "s": "from store" }));
    assert_eq!(r["injected"], json!({ "s": "own" }));
}

#[tokio::test]
async fn rebind_optional_defaults_and_provides_fields() {
    let flow = Flow::linear("f")
        .add(
            task_fn("split", |_| async { Ok(json!({ "host": "h1", "port": 80, "extra": true })) })
                .provides_fields(["host", "port"]),
        )
        .add(
            echo("use", &["server", "port", "tls"])
                .requires(["server", "port"])
                .rebind("server", "host")
                .optional("tls", json!(false))
                .provides("used"),
        );
    let ran = run(flow, json!({}), 1).await;
    assert_eq!(ran.outcome.results["used"], json!({ "server": "h1", "port": 80, "tls": false }));
    assert_eq!(ran.outcome.results["host"], json!("h1"));
    assert!(!ran.outcome.results.contains_key("extra"));
}

#[test]
fn unordered_siblings_do_not_see_each_other() {
    let flow = Flow::unordered("u").add(ok("p").provides("x")).add(ok("c").requires(["x"]));
    let err = crate::compile(&flow, Vec::<String>::new()).expect_err("c cannot see p");
    assert_eq!(err.problems, [CompileProblem::MissingInput { input: "x".into(), atom: "c".into() }]);
}

#[tokio::test]
async fn a_graph_flow_links_consumers_after_providers() {
    // Added in reverse order: the graph infers c after b after a from the data.
    let flow = Flow::graph("g")
        .add(echo("c", &["y"]).requires(["y"]).provides("z"))
        .add(echo("b", &["x"]).requires(["x"]).provides("y"))
        .add(ok("a").provides("x"));
    let ran = run(flow, json!({}), 1).await;
    super::check(&ran, FlowState::Success, &["a SUCCESS", "b SUCCESS", "c SUCCESS"]);
    assert_eq!(ran.outcome.results["z"], json!({ "y": { "x": "a" } }));
}

#[tokio::test]
async fn a_later_flow_sees_the_outputs_of_an_earlier_subflow() {
    let flow = Flow::linear("f")
        .add(Flow::unordered("u").add(ok("p").provides("x")).add(ok("q").provides("y")))
        .add(echo("c", &["x", "y"]).requires(["x", "y"]).provides("c"));
    let ran = run(flow, json!({}), 3).await;
    assert_eq!(ran.outcome.results["c"], json!({ "x": "p", "y": "q" }));
}
