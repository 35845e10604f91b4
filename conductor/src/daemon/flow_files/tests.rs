//! Loading a flows directory: registered, left out for kinds, refused with every problem.

use super::*;
use crate::workers::{HubSettings, WorkerHub};

const NOOP_FLOW: &str = "name: hello\nflow:\n  linear:\n    - task: hi\n      kind: noop\n";
const SHELL_FLOW: &str = "name: shelly\nflow:\n  linear:\n    - task: a\n      kind: noop\n      \
                          revert: {kind: shell, with: {run: [\"true\"]}}\n";

fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).expect("write flow file");
    }
    dir
}

fn rust_flows() -> FlowRegistry {
    crate::demo_flows::registry()
}

fn config_error(result: Result<Loaded, Error>) -> String {
    match result {
        Err(Error::Config(message)) => message,
        Err(other) => panic!("expected a config error, got {other}"),
        Ok(loaded) => panic!("expected a config error, loaded {:?}", loaded.registered),
    }
}

#[test]
fn files_join_the_rust_flows_and_other_entries_are_ignored() {
    let dir = dir_with(&[("hello.yaml", NOOP_FLOW), ("notes.txt", "not a flow"), (".hidden.yaml", "garbage: [")]);
    let loaded = load(dir.path(), &Arc::new(Kinds::default_allowed()), &rust_flows()).expect("loads");
    assert_eq!(loaded.registry.names(), vec!["chain", "hello", "provision-cluster"]);
    assert_eq!(loaded.registered, vec![(dir.path().join("hello.yaml"), "hello".to_owned())]);
    assert!(loaded.skipped.is_empty());
}

#[test]
fn a_flow_using_a_kind_not_allowed_anywhere_is_left_out_naming_it() {
    let dir = dir_with(&[("shelly.yml", SHELL_FLOW), ("hello.yaml", NOOP_FLOW)]);
    let loaded = load(dir.path(), &Arc::new(Kinds::default_allowed()), &FlowRegistry::new()).expect("loads");
    assert_eq!(loaded.registry.names(), vec!["hello"]);
    assert_eq!(
        loaded.skipped,
        vec![Skipped { file: dir.path().join("shelly.yml"), flow: "shelly".into(), missing: vec!["shell".into()] }]
    );
    let with_shell = Kinds::allowing(&["noop", "shell"]).expect("known kinds");
    let loaded = load(dir.path(), &Arc::new(with_shell), &FlowRegistry::new()).expect("loads");
    assert_eq!(loaded.registry.names(), vec!["hello", "shelly"]);
}

#[test]
fn every_problem_of_every_file_is_listed_with_its_position() {
    let bad = "name: bad\nflow:\n  linear:\n    - task: a\n      kind: noop\n      retyr: {times: 2}\n    - task: b\n      kind: shel\n";
    let dir = dir_with(&[("bad.yaml", bad), ("broken.yaml", "name: [unclosed\n"), ("hello.yaml", NOOP_FLOW)]);
    let message = config_error(load(dir.path(), &Arc::new(Kinds::default_allowed()), &FlowRegistry::new()));
    let bad_path = dir.path().join("bad.yaml").display().to_string();
    let broken_path = dir.path().join("broken.yaml").display().to_string();
    assert!(message.contains(&format!("{bad_path}:6:7: flow.linear[0].retyr: unknown key \"retyr\"")), "{message}");
    assert!(message.contains("did you mean \"retry\"?"), "{message}");
    assert!(message.contains(&format!("{bad_path}:8:13: flow.linear[1].kind")), "{message}");
    assert!(message.contains("did you mean \"shell\"?"), "{message}");
    assert!(message.contains(&format!("{broken_path}:2:1: YAML syntax")), "{message}");
    assert!(message.starts_with("3 problems in the flow files of --flows-dir"), "{message}");
}

#[test]
fn a_name_taken_twice_is_refused_naming_both() {
    let chain = "name: chain\nflow:\n  linear:\n    - task: a\n      kind: noop\n";
    let dir = dir_with(&[("a.yaml", NOOP_FLOW), ("b.yaml", NOOP_FLOW), ("c.yaml", chain)]);
    let message = config_error(load(dir.path(), &Arc::new(Kinds::default_allowed()), &rust_flows()));
    let path = |name: &str| dir.path().join(name).display().to_string();
    assert!(
        message.contains(&format!("{}: name: flow \"hello\" is also declared by {}", path("b.yaml"), path("a.yaml"))),
        "{message}"
    );
    assert!(message.contains(&format!("{}: name: flow \"chain\" is already a Rust flow", path("c.yaml"))), "{message}");
}

#[test]
fn a_missing_flows_dir_or_secrets_dir_is_bad_configuration() {
    let gone = tempfile::tempdir().expect("tempdir").path().join("gone");
    let message = config_error(load(&gone, &Arc::new(Kinds::default_allowed()), &FlowRegistry::new()));
    assert!(message.contains("--flows-dir") && message.contains("gone"), "{message}");
    let mut config = Config::embedded("unused");
    config.secrets_dir = Some(gone);
    match kinds(&config, Arc::new(WorkerHub::new(HubSettings::new("test")))) {
        Err(Error::Config(message)) => assert!(message.contains("--secrets-dir"), "{message}"),
        other => panic!("expected a config error, got {other:?}"),
    }
}
