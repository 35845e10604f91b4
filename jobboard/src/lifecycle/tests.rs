//! The lifecycle table, checked against an independent statement of it: every
//! legal transition lands where it should, every other one is refused.

use super::*;
use crate::job::JobState::{Claimed, Complete, Parked, Trashed, Unclaimed};

const STATES: [JobState; 5] = [Unclaimed, Claimed, Parked, Complete, Trashed];

/// The expected table, written out row by row (one column per from-state, in
/// `STATES` order; `None` = refused), apart from `TRANSITIONS`.
fn expected(event: Event) -> [Option<JobState>; 5] {
    match event {
        Event::Claim => [Some(Claimed), None, None, None, None],
        Event::Quarantine => [Some(Trashed), None, None, None, None],
        Event::Cancel => [Some(Complete), Some(Claimed), Some(Unclaimed), None, None],
        Event::Consume => [None, Some(Complete), None, None, None],
        Event::Abandon => [None, Some(Unclaimed), None, None, None],
        Event::Trash => [None, Some(Trashed), None, None, None],
        Event::Release => [None, Some(Unclaimed), None, None, None],
        Event::Park => [None, Some(Parked), None, None, None],
        Event::Deliver => [None, None, Some(Unclaimed), None, None],
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
                (Err(refused), None) => assert_eq!(refused, IllegalTransition { event, from }),
                (got, want) => panic!("{event} from {from}: got {got:?}, want {want:?}"),
            }
        }
    }
    assert_eq!(legal, TRANSITIONS.len(), "the table has an entry the expected table lacks");
}

#[test]
fn finished_states_are_final_and_jobs_are_posted_unclaimed() {
    assert_eq!(POSTED, Unclaimed);
    for from in [Complete, Trashed] {
        for event in Event::ALL {
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
    let claimed = IllegalTransition { event: Event::Claim, from: Claimed }.into_error(job, Some("c1"));
    assert!(matches!(claimed, Error::AlreadyClaimed { job: j, ref owner } if j == job && owner == "c1"), "{claimed:?}");
    for event in [Event::Claim, Event::Quarantine] {
        for from in [Complete, Trashed] {
            let err = IllegalTransition { event, from }.into_error(job, None);
            assert!(matches!(err, Error::NotClaimable { job: j, state } if j == job && state == from), "{err:?}");
        }
    }
    let refused = IllegalTransition { event: Event::Consume, from: Complete };
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
        outcome: None,
        failure: None,
        trash_reason: None,
        cancel_requested: false,
        finished_at: None,
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
