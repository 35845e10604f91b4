//! The lifecycle table, checked against an independent statement of it: every
//! legal transition lands where it should, every other one is refused.

use super::*;
use crate::job::JobState::{Claimed, Complete, Parked, Suspended, Trashed, Unclaimed};

const STATES: [JobState; 6] = [Unclaimed, Claimed, Parked, Suspended, Complete, Trashed];

/// The expected table, written out row by row (one column per from-state, in
/// `STATES` order; `None` = refused), apart from `TRANSITIONS`.
fn expected(event: Event) -> [Option<JobState>; 6] {
    match event {
        Event::Claim => [Some(Claimed), None, None, None, None, None],
        Event::Quarantine => [Some(Trashed), None, None, None, None, None],
        Event::Cancel => [Some(Complete), Some(Claimed), Some(Unclaimed), Some(Unclaimed), None, None],
        Event::Consume => [None, Some(Complete), None, None, None, None],
        Event::Abandon => [None, Some(Unclaimed), None, None, None, None],
        Event::Trash => [None, Some(Trashed), None, None, None, None],
        Event::Release => [None, Some(Unclaimed), None, None, None, None],
        Event::Park => [None, Some(Parked), None, None, None, None],
        Event::Deliver => [None, None, Some(Unclaimed), Some(Suspended), None, None],
        Event::Suspend => [Some(Suspended), Some(Claimed), Some(Suspended), None, None, None],
        Event::Halt => [None, Some(Suspended), None, None, None, None],
        Event::Resume => [None, None, None, Some(Unclaimed), None, None],
        Event::Retry => [None, None, None, None, Some(Unclaimed), Some(Unclaimed)],
    }
}

#[test]
fn every_event_from_every_state_is_allowed_or_refused_as_specified() {
    let mut legal = 0;
    for event in Event::ALL {
        for (from, want) in STATES.into_iter().zip(expected(event)) {
            match (next_state(from, event), want) {
                (Ok(to), Some(want)) => {
                    assert_eq!(to, want, "{event} from {from}");
                    legal += 1;
                }
                (Err(refused), None) => assert_eq!(refused, IllegalTransition { event, from, why: None }),
                (got, want) => panic!("{event} from {from}: got {got:?}, want {want:?}"),
            }
        }
    }
    assert_eq!(legal, TRANSITIONS.len(), "the table has an entry the expected table lacks");
}

#[test]
fn finished_states_are_final_but_for_retry_and_jobs_are_posted_unclaimed() {
    assert_eq!(POSTED, Unclaimed);
    for from in [Complete, Trashed] {
        for event in Event::ALL.into_iter().filter(|e| *e != Event::Retry) {
            assert!(next_state(from, event).is_err(), "{event} leaves the final state {from}");
        }
    }
    // Every state is reachable from a posted job.
    for state in STATES {
        assert!(state == POSTED || TRANSITIONS.iter().any(|(_, _, to)| *to == state), "{state} is unreachable");
    }
}

#[test]
fn refusals_become_the_errors_the_board_promises() {
    let job = JobId::new_v4();
    let claimed = IllegalTransition { event: Event::Claim, from: Claimed, why: None }.into_error(job, Some("c1"));
    assert!(matches!(claimed, Error::AlreadyClaimed { job: j, ref owner } if j == job && owner == "c1"), "{claimed:?}");
    for event in [Event::Claim, Event::Quarantine] {
        for from in [Complete, Trashed] {
            let err = IllegalTransition { event, from, why: None }.into_error(job, None);
            assert!(matches!(err, Error::NotClaimable { job: j, state } if j == job && state == from), "{err:?}");
        }
    }
    let refused = IllegalTransition { event: Event::Consume, from: Complete, why: None };
    let err = refused.into_error(job, None);
    assert!(matches!(err, Error::IllegalTransition { job: j, refused: r } if j == job && r == refused), "{err:?}");
    assert_eq!(err.to_string(), format!("job {job}: cannot consume a job that is COMPLETE"));
    assert!(!err.is_retryable());
}

#[test]
fn quarantine_rule_counts_claims_and_zero_never_quarantines() {
    let rule = QuarantineRule::new(3);
    assert_eq!([0, 1, 2, 3, 4].map(|claims| rule.applies(claims)), [false, false, false, true, true]);
    assert_eq!(rule.claim_event(2), Event::Claim);
    assert_eq!(rule.claim_event(3), Event::Quarantine);
    let never = QuarantineRule::new(0);
    assert!([0, 1, u32::MAX].iter().all(|&claims| !never.applies(claims)));
    assert_eq!(never.claim_event(u32::MAX), Event::Claim);
    assert_eq!(rule.reason(3), "quarantined: claimed 3 times without finishing (limit 3)");
}

fn status(state: JobState) -> Status {
    Status {
        state,
        claims: 2,
        // A COMPLETE job here is one a retry may take (a revert failed).
        outcome: (state == Complete).then_some(Outcome::Failure),
        failure: None,
        trash_reason: None,
        cancel_requested: false,
        finished_at: None,
        suspend_requested: false,
        claim_base: 0,
        actions: Vec::new(),
    }
}

#[test]
fn apply_writes_what_each_event_carries() {
    let now = 1_700_000_000_000;
    let claimed = status(Unclaimed).apply(&Change::Claim, now).expect("claim refused");
    assert_eq!((claimed.state, claimed.claims, claimed.finished_at), (Claimed, 3, None));

    let rule = QuarantineRule::new(2);
    let poisoned = status(Unclaimed).apply(&Change::Quarantine(rule), now).expect("quarantine refused");
    assert_eq!(poisoned.state, Trashed);
    assert_eq!(poisoned.trash_reason, Some(rule.reason(2)));
    assert_eq!((poisoned.claims, poisoned.finished_at), (2, Some(now)));

    let cancelled = status(Unclaimed).apply(&Change::Cancel, now).expect("cancel refused");
    assert_eq!(
        (cancelled.state, cancelled.outcome, cancelled.finished_at),
        (Complete, Some(Outcome::Cancelled), Some(now))
    );
    assert!(!cancelled.cancel_requested);
    let flagged = status(Claimed).apply(&Change::Cancel, now).expect("cancel refused");
    assert_eq!((flagged.state, flagged.outcome, flagged.finished_at), (Claimed, None, None));
    assert!(flagged.cancel_requested);

    let failure = Failure::new("Boom", "it broke");
    let consumed = status(Claimed)
        .apply(&Change::Consume(Outcome::Reverted, Some(failure.clone())), now)
        .expect("consume refused");
    assert_eq!(
        (consumed.state, consumed.outcome, consumed.finished_at),
        (Complete, Some(Outcome::Reverted), Some(now))
    );
    assert_eq!(consumed.failure, Some(failure));

    let trashed = status(Claimed).apply(&Change::Trash("no disk".into()), now).expect("trash refused");
    assert_eq!(
        (trashed.state, trashed.trash_reason.as_deref(), trashed.finished_at),
        (Trashed, Some("no disk"), Some(now))
    );

    for change in [Change::Abandon, Change::Release] {
        let back = status(Claimed).apply(&change, now).expect("refused");
        assert_eq!(back, Status { state: Unclaimed, ..status(Claimed) }, "{:?} changes only the state", change.event());
    }

    let parked = status(Claimed).apply(&Change::Park, now).expect("park refused");
    assert_eq!(parked, Status { state: Parked, ..status(Claimed) }, "park changes only the state");
    let delivered = parked.apply(&Change::Deliver, now).expect("deliver refused");
    assert_eq!(delivered, Status { state: Unclaimed, ..status(Claimed) });
    let cancelled = parked.apply(&Change::Cancel, now).expect("cancel refused");
    assert_eq!((cancelled.state, cancelled.cancel_requested, cancelled.outcome), (Unclaimed, true, None));
}

#[test]
fn apply_agrees_with_the_table() {
    let changes = [
        Change::Claim,
        Change::Quarantine(QuarantineRule::new(1)),
        Change::Cancel,
        Change::Consume(Outcome::Success, None),
        Change::Abandon,
        Change::Trash("x".into()),
        Change::Release,
        Change::Park,
        Change::Deliver,
        Change::Suspend,
        Change::Halt,
        Change::Resume,
        Change::Retry,
    ];
    assert_eq!(changes.iter().map(Change::event).collect::<Vec<_>>(), Event::ALL.to_vec());
    for change in &changes {
        for from in STATES {
            let before = status(from);
            match (before.apply(change, 1), next_state(from, change.event())) {
                (Ok(after), Ok(to)) => assert_eq!(after.state, to),
                (Err(refused), Err(want)) => assert_eq!(refused, want),
                (got, want) => panic!("{:?} from {from}: apply gave {got:?}, the table {want:?}", change.event()),
            }
        }
    }
}

#[test]
fn operators_requests_carry_their_rules() {
    let now = 1_700_000_000_000;
    // Suspend: at once when nobody runs it; flagged for an owner, who halts.
    assert_eq!(status(Unclaimed).apply(&Change::Suspend, now).expect("suspend").state, Suspended);
    let flagged = status(Claimed).apply(&Change::Suspend, now).expect("suspend");
    assert_eq!((flagged.state, flagged.suspend_requested), (Claimed, true));
    let again = flagged.apply(&Change::Suspend, now).expect_err("a pending suspension is refused");
    assert_eq!(again.why, Some("its suspension is pending"));
    let halted = flagged.apply(&Change::Halt, now).expect("halt");
    assert_eq!((halted.state, halted.suspend_requested), (Suspended, false));
    // A park after the request is the suspension; a cancel after it makes the halt an abandon.
    assert_eq!(flagged.apply(&Change::Park, now).expect("park").state, Suspended);
    let both = flagged.apply(&Change::Cancel, now).expect("cancel");
    assert_eq!(both.apply(&Change::Halt, now).expect("halt").state, Unclaimed);
    let cancelling = status(Claimed).apply(&Change::Cancel, now).expect("cancel");
    assert_eq!(cancelling.apply(&Change::Suspend, now).expect_err("refused").why, Some("its cancellation is pending"));
    // Resume: only a suspended job; completions recorded meanwhile wait for it.
    assert_eq!(halted.apply(&Change::Deliver, now).expect("deliver").state, Suspended);
    assert_eq!(halted.apply(&Change::Resume, now).expect("resume").state, Unclaimed);
    // Retry: a FAILURE or TRASHED job, claims counted afresh, its outcome cleared.
    let mut trashed = status(Trashed);
    trashed.claims = 5;
    trashed.trash_reason = Some("quarantined".into());
    trashed.finished_at = Some(now);
    let retried = trashed.apply(&Change::Retry, now).expect("retry");
    assert_eq!((retried.state, retried.claims, retried.claim_base), (Unclaimed, 5, 5));
    assert_eq!((retried.trash_reason, retried.finished_at), (None, None));
    let succeeded = Status { outcome: Some(Outcome::Success), ..status(Complete) };
    let refused = succeeded.apply(&Change::Retry, now).expect_err("a SUCCESS job cannot be retried");
    assert!(refused.to_string().contains("its outcome is SUCCESS"), "{refused}");
}

#[test]
fn a_deadline_cancel_ends_the_job_with_deadline_exceeded_whoever_consumes_it() {
    let now = 1_700_000_000_000;
    let expire = Change::Expire(operate::deadline_failure(now - 1));
    let at_once = status(Unclaimed).apply(&expire, now).expect("expire");
    assert_eq!(at_once.outcome, Some(Outcome::Cancelled));
    assert_eq!(at_once.failure.as_ref().map(|f| f.kind.as_str()), Some(operate::DEADLINE_EXCEEDED));
    let flagged = status(Claimed).apply(&expire, now).expect("expire");
    assert!(flagged.cancel_requested);
    let reverted = Failure::new(flows::CANCELLED, "cancelled");
    let consumed = flagged.apply(&Change::Consume(Outcome::Cancelled, Some(reverted.clone())), now).expect("consume");
    let failure = consumed.failure.expect("a failure");
    assert_eq!(failure.kind, operate::DEADLINE_EXCEEDED);
    assert_eq!(failure.cause.as_deref(), Some(&reverted));
}
