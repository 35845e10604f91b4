//! Parking: an execute that returned [`Park`] becomes PARKED with a fresh
//! token's hash and a deadline; the task's `parked` hook runs only after that is
//! written (it is queued here and launched by the next dispatch, which flushes
//! first); deliveries move a parked atom on as if its execute had just ended.
//!
//! A park whose hook never finished (the process died) is parked again on the
//! next run with a new token for the same attempt, and the hook runs again; the
//! old token's hash is gone, so it completes nothing.

use std::time::Duration;

use super::job::Action;
use super::run::Run;
use crate::failure::Failure;
use crate::logbook::now_millis;
use crate::park::{CallbackToken, Delivery, Park, ParkRecord, ParkedContext, TokenName};
use crate::state::AtomState;

impl Run<'_> {
    /// Records atom `n` PARKED for its current attempt and queues its hook (unless
    /// the atom is being reverted: then nobody is told, it is undone instead).
    pub(crate) fn park(&mut self, n: usize, park: Park) {
        let notify = !self.rt[n].undo;
        let attempt = self.details[n].executions;
        let context = self.mint(n, attempt, park.timeout());
        if !self.try_transition(n, AtomState::Parked) {
            return;
        }
        if notify {
            self.to_notify.push((n, context));
        } else {
            self.consider_undo(n);
        }
    }

    /// Mints a token for `attempt` of atom `n` and stages its park record.
    fn mint(&mut self, n: usize, attempt: u32, timeout: Duration) -> ParkedContext {
        let detail = &mut self.details[n];
        let name = TokenName { job: self.shared.book, atom: detail.name.clone(), attempt };
        let token = CallbackToken::mint(name);
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let deadline = now_millis().saturating_add(timeout_ms);
        detail.set_park(&ParkRecord { attempt, token_hash: token.hash(), deadline, notified: false });
        self.save_detail(n);
        let inputs = self.inputs(n).unwrap_or_default();
        ParkedContext::new(self.details[n].name.clone(), token, deadline).with_inputs(inputs)
    }

    /// On resume: parked atoms whose hook never finished get a new token and run it again.
    pub(crate) fn repark_unnotified(&mut self) {
        for n in 0..self.details.len() {
            if self.details[n].state != AtomState::Parked {
                continue;
            }
            let Some(record) = self.details[n].park() else { continue };
            if record.notified {
                continue;
            }
            let left = record.deadline.saturating_sub(now_millis());
            if let Some(context) = self.mint_again(n, record, left) {
                self.to_notify.push((n, context));
            }
        }
    }

    /// A new token for the same attempt and deadline.
    fn mint_again(&mut self, n: usize, record: ParkRecord, left_ms: u64) -> Option<ParkedContext> {
        let mut context = self.mint(n, record.attempt, Duration::from_millis(left_ms));
        // The deadline stays what it was (the mint counted from now).
        let mut again = self.details[n].park()?;
        again.deadline = record.deadline;
        self.details[n].set_park(&again);
        context.deadline = record.deadline;
        Some(context)
    }

    /// The next queued hook whose atom is still parked in the same attempt, as a job to launch.
    pub(crate) fn next_notify(&mut self) -> Option<(usize, Action)> {
        while let Some((n, context)) = self.to_notify.pop() {
            let current = self.details[n].park().is_some_and(|r| r.attempt == context.attempt());
            if self.details[n].state == AtomState::Parked && current && !self.rt[n].in_flight && !self.rt[n].undo {
                self.rt[n].in_flight = true;
                self.in_flight += 1;
                return Some((n, Action::Notify(context)));
            }
        }
        None
    }

    /// The hook of atom `n` ended: the park is handed out, or the attempt fails.
    pub(crate) fn notified(&mut self, n: usize, attempt: u32, outcome: Result<(), Failure>) {
        let current = self.details[n].park().filter(|r| r.attempt == attempt);
        let (true, Some(mut record)) = (self.details[n].state == AtomState::Parked, current) else {
            // A delivery (or a revert) got there first.
            return;
        };
        if self.rt[n].undo {
            self.consider_undo(n);
            return;
        }
        match outcome {
            Ok(()) => {
                record.notified = true;
                self.details[n].set_park(&record);
                self.save_detail(n);
            }
            Err(failure) => self.settle(n, Err(failure)),
        }
    }

    /// Folds in every delivery that can be: one for a parked atom's current attempt
    /// settles it; one for an atom busy with its hook waits; the rest are stale.
    pub(crate) fn fold_deliveries(&mut self) {
        self.deliveries.extend(self.engine.control.take_deliveries());
        let waiting = std::mem::take(&mut self.deliveries);
        for delivery in waiting {
            let Some(&n) = self.shared.compiled.by_name.get(&delivery.atom) else { continue };
            if self.rt[n].in_flight {
                self.deliveries.push(delivery);
                continue;
            }
            let current = self.details[n].park().is_some_and(|r| r.attempt == delivery.attempt);
            if self.details[n].state != AtomState::Parked || !current || self.rt[n].undo {
                continue;
            }
            if let Some(by) = &delivery.completed_by {
                let by = serde_json::to_value(by).unwrap_or_default();
                self.details[n].meta.insert(crate::park::COMPLETED_BY.into(), by);
            }
            self.settle(n, delivered(delivery));
        }
    }

    /// True if any atom is parked (the run may end PARKED).
    pub(crate) fn any_parked(&self) -> bool {
        self.details.iter().any(|d| d.state == AtomState::Parked)
    }
}

/// A delivery's outcome; a failure that claims to be a park is a plain failure here.
fn delivered(delivery: Delivery) -> Result<serde_json::Value, Failure> {
    match delivery.outcome {
        Err(failure) if failure.kind == Failure::PARKED => Err(Failure::task(failure.message)),
        other => other,
    }
}
