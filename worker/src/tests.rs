//! Unit tests of the SDK's pure parts: settings checks and failures on the wire.

use serde_json::{json, Value};

use crate::{TaskError, Worker, WorkerError};

#[test]
fn bad_settings_are_refused_with_every_problem() {
    let built = Worker::builder(Vec::<String>::new())
        .slots(0)
        .revert("missing", |_ctx, _args, _undo| async { Ok(Value::Null) })
        .build();
    let Err(WorkerError::Config(message)) = built else { panic!("expected a configuration error") };
    for wanted in ["no endpoints", "no tasks", "slots must be at least 1", "revert for \"missing\""] {
        assert!(message.contains(wanted), "{wanted:?} missing from {message:?}");
    }
}

#[test]
fn a_worker_gets_a_process_unique_id_unless_given_one() {
    let task = |_ctx, _args| async { Ok(Value::Null) };
    let a = Worker::builder(["http://127.0.0.1:1"]).task("t", task).build().expect("builds");
    let b = Worker::builder(["http://127.0.0.1:1"]).task("t", task).build().expect("builds");
    assert_ne!(a.id(), b.id());
    let named = Worker::builder(["http://127.0.0.1:1"]).id("w-7").task("t", task).build().expect("builds");
    assert_eq!(named.id(), "w-7");
}

#[test]
fn failures_keep_kind_message_details_and_causes_on_the_wire() {
    let mut failure = TaskError::new("CardDeclined", "declined").caused_by(TaskError::new("BankSaidNo", "no funds"));
    failure.details = Some(json!({"code": 51}));
    let wire = failure.to_wire();
    assert_eq!(wire.causes.len(), 1);
    assert_eq!(TaskError::from_wire(&wire), failure);
}
