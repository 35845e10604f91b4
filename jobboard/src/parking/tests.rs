//! The completion rules, decided once: every answer the issue names, for a
//! token and for an operator, and the entry a parked atom's write creates.

use flows::park::{CallbackToken, ParkRecord, TokenName};
use flows::{AtomDetail, AtomKind, AtomState};
use serde_json::json;

use super::*;

fn token(job: JobId, attempt: u32) -> CallbackToken {
    CallbackToken::mint(TokenName { job, atom: "approve".into(), attempt })
}

fn entry(token: &CallbackToken, deadline: Millis) -> ParkEntry {
    ParkEntry {
        atom: "approve".into(),
        attempt: token.name().attempt,
        token_hash: token.hash(),
        deadline,
        state: ParkState::Parked,
        outcome: None,
        by: None,
        settled_at: None,
        previous: Vec::new(),
    }
}

fn yes() -> TaskOutcome {
    TaskOutcome::Result(json!("yes"))
}

#[test]
fn a_token_completes_once_then_repeats_are_ok_and_others_conflict() {
    let job = JobId::new_v4();
    let t = token(job, 1);
    let parked = entry(&t, 1_000);
    let Ok(Verdict::Complete(done)) = decide_complete(job, Some(&parked), &Presenter::Token(&t), &yes(), 10) else {
        panic!("completes")
    };
    assert_eq!(done.state, ParkState::Completed);
    assert_eq!(done.by.as_deref(), Some("token"));
    let delivery = done.delivery().expect("delivery");
    assert_eq!((delivery.outcome, delivery.completed_by), (Ok(json!("yes")), None), "a token names nobody");
    let again = decide_complete(job, Some(&done), &Presenter::Token(&t), &yes(), 11).expect("answers");
    assert_eq!(again, Verdict::Answer(Completed::Already));
    let other = decide_complete(job, Some(&done), &Presenter::Token(&t), &TaskOutcome::Result(json!("no")), 11);
    assert!(matches!(other, Err(Error::CompletionConflict { .. })), "{other:?}");
}

#[test]
fn wrong_tokens_and_guessed_prefixes_are_not_found_alike() {
    let job = JobId::new_v4();
    let t = token(job, 1);
    let parked = entry(&t, 1_000);
    let guessed = CallbackToken::mint(t.name().clone());
    let other_job = token(JobId::new_v4(), 1);
    for bad in [&guessed, &other_job] {
        let got = decide_complete(job, Some(&parked), &Presenter::Token(bad), &yes(), 10);
        assert!(matches!(got, Err(Error::TokenNotFound)), "{got:?}");
    }
    let none = decide_complete(job, None, &Presenter::Token(&t), &yes(), 10);
    assert!(matches!(none, Err(Error::TokenNotFound)), "{none:?}");
    assert_eq!(Error::TokenNotFound.to_string(), "no parked task matches this token");
}

#[test]
fn after_the_deadline_a_cancel_or_a_new_attempt_the_park_is_closed() {
    let job = JobId::new_v4();
    let t = token(job, 1);
    let parked = entry(&t, 1_000);
    let Ok(Verdict::Expire(expired)) = decide_complete(job, Some(&parked), &Presenter::Token(&t), &yes(), 1_000) else {
        panic!("expires")
    };
    assert_eq!(expired.state, ParkState::TimedOut);
    assert!(expired.delivery().expect("delivery").outcome.is_err());
    let late = decide_complete(job, Some(&expired), &Presenter::Token(&t), &yes(), 1_001);
    assert!(matches!(late, Err(Error::ParkClosed { .. })), "{late:?}");

    let cancelled = cancel_entry(&parked, 5).expect("cancels");
    assert!(cancel_entry(&cancelled, 6).is_none(), "once");
    let after = decide_complete(job, Some(&cancelled), &Presenter::Token(&t), &yes(), 7);
    assert!(matches!(after, Err(Error::ParkClosed { .. })), "{after:?}");

    // Attempt 2 parks: attempt 1's real token is told it is superseded, a guess is not found.
    let t2 = token(job, 2);
    let mut atom = AtomDetail::new("approve", AtomKind::Task);
    atom.state = AtomState::Parked;
    atom.meta.insert(
        flows::PARK_META.into(),
        serde_json::to_value(ParkRecord { attempt: 2, token_hash: t2.hash(), deadline: 9_000, notified: false })
            .expect("json"),
    );
    let second = ParkEntry::for_atom(&atom, Some(&cancelled)).expect("entry");
    assert_eq!(second.previous, vec![(1, t.hash())]);
    let old = decide_complete(job, Some(&second), &Presenter::Token(&t), &yes(), 10);
    assert!(matches!(old, Err(Error::ParkClosed { .. })), "{old:?}");
    let guess = decide_complete(job, Some(&second), &Presenter::Token(&token(job, 1)), &yes(), 10);
    assert!(matches!(guess, Err(Error::TokenNotFound)), "{guess:?}");
    assert!(matches!(
        decide_complete(job, Some(&second), &Presenter::Token(&t2), &yes(), 10),
        Ok(Verdict::Complete(_))
    ));
}

#[test]
fn timeouts_apply_only_to_the_due_parked_attempt() {
    let job = JobId::new_v4();
    let parked = entry(&token(job, 3), 1_000);
    assert!(decide_timeout(&parked, 3, 999).is_none(), "not due");
    assert!(decide_timeout(&parked, 2, 1_000).is_none(), "another attempt");
    let out = decide_timeout(&parked, 3, 1_000).expect("times out");
    assert!(decide_timeout(&out, 3, 2_000).is_none(), "once");
}

#[test]
fn an_operator_completes_the_current_attempt_and_is_named() {
    let job = JobId::new_v4();
    let parked = entry(&token(job, 1), 1_000);
    let failure = TaskOutcome::Failure(Failure::task("rejected"));
    let Ok(Verdict::Complete(done)) = decide_complete(job, Some(&parked), &Presenter::Operator("alice"), &failure, 5)
    else {
        panic!("completes")
    };
    assert_eq!(done.by.as_deref(), Some("alice"));
    let delivery = done.delivery().expect("delivery");
    assert_eq!(delivery.outcome, Err(Failure::task("rejected")));
    assert_eq!(delivery.completed_by, Some(flows::CompletedBy { who: "alice".into(), at: 5 }), "for the logbook");
}

#[test]
fn only_a_parked_not_yet_notified_atom_makes_an_entry() {
    let mut atom = AtomDetail::new("approve", AtomKind::Task);
    assert!(ParkEntry::for_atom(&atom, None).is_none());
    atom.state = AtomState::Parked;
    let record = ParkRecord { attempt: 1, token_hash: "ab".into(), deadline: 5, notified: true };
    atom.meta.insert(flows::PARK_META.into(), serde_json::to_value(&record).expect("json"));
    assert!(ParkEntry::for_atom(&atom, None).is_none(), "the notified flag's write leaves the entry alone");

    // A re-issued token (same attempt, not notified) never overwrites a completion that landed first.
    let job = JobId::new_v4();
    let t = token(job, 1);
    let record = ParkRecord { attempt: 1, token_hash: t.hash(), deadline: 9_000, notified: false };
    atom.meta.insert(flows::PARK_META.into(), serde_json::to_value(&record).expect("json"));
    let Ok(Verdict::Complete(done)) = decide_complete(job, Some(&entry(&t, 9_000)), &Presenter::Token(&t), &yes(), 1)
    else {
        panic!("completes")
    };
    assert!(ParkEntry::for_atom(&atom, Some(&done)).is_none());
    assert!(ParkEntry::for_atom(&atom, Some(&entry(&t, 9_000))).is_some(), "a parked one is re-issued");
}
